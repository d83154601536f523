"""Article analysis off the reactor thread: extraction and matching in worker processes.

Scrapy runs every item pipeline on its reactor thread. trafilatura alone takes
about 10-25 ms of CPU per page and claim matching a few more, so a crawl that
analyses its pages in the reactor is capped at what one core extracts (under
100 pages/s) and its downloads stall while it does. Here the pure, CPU-bound part
of the pipeline runs in a pool of worker processes, so every core works and the
reactor stays free for the network and the database:

- :class:`Analyser` is that part, for one article: the chain of
  pipeline/analysis.py (extract -> topic filter -> sentences -> claims ->
  candidates -> dedup keys; :meth:`Analyser.analyse`: :class:`ArticleJob` ->
  :class:`Analysis`, or :meth:`Analyser.reanalyse` on a stored text for
  re-analysis). Pure and picklable in and out; it knows nothing of Scrapy.
  Its claims index and compiled query are built once per process: once in each
  worker (the pool initializer), and in the crawl's own process only if it
  analyses articles itself.
- :class:`WorkerPool` is a ``ProcessPoolExecutor`` (forked from a forkserver that
  loaded the analysis chain once, :func:`pool_context`: the workers inherit no
  reactor, threads or sockets, and share the read-only pages) with back-pressure:
  at most ``max_pending`` articles are queued to or running in the workers; the
  other items wait in the pipeline, and Scrapy stops downloading once the responses
  waiting there pass ``SCRAPER_SLOT_MAX_ACTIVE_SIZE`` (5 MB), so memory stays bounded
  however fast pages arrive. A worker that dies (a crash in a C library on a hostile page)
  breaks the pool: it is restarted and the article tried once more; an article
  that kills a worker twice is dropped and counted ``claimwatch/extract/worker_crashed``.
- :class:`ArticleAnalysis` is what the pipeline stage uses (``analysis_for``): it
  sends articles to the pool, or analyses them in the crawl's process while the
  pool is not worth starting. A crawl with fewer than ``CLAIMWATCH_WORKERS_MIN_ITEMS``
  articles to analyse (those analysed, queued and downloading) analyses them itself
  (a scheduled crawl of a dozen new articles costs no worker start-up); once it has
  more, it starts the pool, and from then on every article goes to a worker (the
  first ones wait for the workers to start): the crawl's process never holds a
  second analyser (trafilatura, dateparser's tables, the claims index) beside the
  workers'. With 0, the pool starts with the first article. The crawlers of one
  process (the sources of one topic) share one pool.

What needs the database (dedup lookups against stored articles, the store)
stays in the reactor process, in :mod:`pipeline.pipelines`. Settings:
``CLAIMWATCH_WORKERS`` (None: one per CPU; 0: no workers),
``CLAIMWATCH_WORKERS_MIN_ITEMS``, ``CLAIMWATCH_WORKERS_MAX_PENDING``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Any

from config.models import Topic
from pipeline.analysis import (
    Analysis,
    AnalysisChain,
    AnalysisConfig,
    ArticleJob,
    StoredJob,
)
from pipeline.extract import MIN_TEXT_CHARS

__all__ = ["Analysis", "AnalysisConfig", "Analyser", "ArticleJob", "ReanalysisPool",
           "StoredJob", "WorkerPool", "analysis_for", "config_for", "topic_config"]

logger = logging.getLogger(__name__)

# A pool that broke this many times in one crawl is given up: the crawl goes on in its
# own process (with a logged error), rather than spend its time restarting workers.
MAX_RESTARTS = 10
# Seconds to wait for the workers' start-up (imports + claims index) before giving up
# on them; the crawl analyses in its own process meanwhile.
START_TIMEOUT = 300.0


# --------------------------------------------------------------------------- the pure part


class Analyser(AnalysisChain):
    """The chain (pipeline/analysis.py) as a worker process holds it, built once per process."""


# --------------------------------------------------------------------------- in a worker

_WORKER: Analyser | None = None


class _Capture(logging.Handler):
    """Keeps what a worker logs for the page at hand, to be replayed by the crawl."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append((record.name, record.levelno, record.getMessage()))
        except Exception:  # noqa: BLE001 - a bad log call must not lose the page
            self.handleError(record)


_CAPTURE = _Capture()


def _init_worker(config: AnalysisConfig, log_level: int, parent: int | None = None) -> None:
    """Pool initializer: build this worker's analyser (claims index, query) once."""
    global _WORKER
    # Ctrl-C reaches the whole process group: the crawl handles it and stops the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        _die_with_parent()
    if parent is not None:
        _watch_parent(parent)
    root = logging.getLogger()
    root.handlers[:] = [_CAPTURE]
    root.setLevel(log_level)
    return_freed_memory()
    _WORKER = Analyser(config)
    collect_less()


# The young generation's threshold in a worker (Python's default: 700 allocations).
WORKER_GC_THRESHOLD = 10_000


def collect_less() -> None:
    """Fewer passes of the cyclic garbage collector in a worker (after its analyser is built).

    Analysing a page leaves almost no reference cycles (the collector freed ~320 objects
    in all over the 338 pages of benchmarks/crawl_throughput.py), so its ~3 passes per
    page (1,100 over those pages, 8 of them full passes over the worker's heap) were
    almost pure cost: 1.5-1.8 ms of CPU per page. What the worker holds from now on (its
    analyser, claims index, caches) is frozen out of the passes, and a pass comes every
    WORKER_GC_THRESHOLD allocations instead of 700: 64 passes, none full, 0.65-0.71 ms
    per page (benchmarks/worker_chain.py). The cycles a page does make are still
    collected, a few pages later.
    """
    import gc

    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(WORKER_GC_THRESHOLD, second, third)


def _die_with_parent() -> None:
    """SIGKILL this worker when the crawl process dies (kill -9, OOM): no orphans."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        pass


def _watch_parent(parent: int, interval: float = 1.0) -> None:
    """Exit when the crawl process that made this worker is gone.

    PR_SET_PDEATHSIG misses a parent that died while this worker was still starting
    (spawn imports for a second or more before the initializer runs): such a worker
    would wait on the pool's queue for ever, under pid 1, with the resource tracker
    (seen after ``make test``). So check at once, then every ``interval`` seconds.
    The worker's own parent is the crawl process, or the forkserver the crawl
    process started (:func:`pool_context`): gone when it is reparented or the crawl
    process is.
    """
    import threading

    forked_by = os.getppid()

    def gone() -> bool:
        if os.getppid() != forked_by:
            return True
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # pragma: no cover - a pid reused by another user
            return True
        return False

    if gone():
        os._exit(0)

    def watch() -> None:
        while not gone():
            time.sleep(interval)
        os._exit(0)

    threading.Thread(target=watch, name="claimwatch-parent-watch", daemon=True).start()


def _ready() -> int:
    return os.getpid()


def return_freed_memory() -> None:
    """Make glibc give large freed blocks back to the system (no-op elsewhere).

    Pages (200 KB and more) pass through the crawl's process and its workers one after
    the other; glibc raises its mmap threshold after the first such block is freed, and
    from then on keeps them in a heap that only grows. A fixed threshold (glibc's
    initial 128 KiB) maps each large block and unmaps it when freed; two arenas at most
    (M_ARENA_MAX) for the pool's helper threads.
    """
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    mallopt(-8, 2)  # M_ARENA_MAX


# The modules the forkserver imports once, before it forks the workers (see pool_context).
PRELOAD = "pipeline.preload"


def pool_context() -> Any:
    """The ``multiprocessing`` context of the worker processes: a forkserver (Linux).

    The forkserver is a clean process (no reactor, threads or sockets: what ``spawn``
    gave) that imports the analysis chain and loads its read-only models once
    (:mod:`pipeline.preload`); each worker is forked from it, so the workers share
    those pages (counted once in the crawl's memory) and start without importing
    again. Where there is no forkserver, ``spawn``.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")  # pragma: no cover - not POSIX
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD])
    return context


def preload() -> None:
    """Load what every worker's analyser reads and never changes (in the forkserver)."""
    import gc

    from pipeline.claims import rerank
    from pipeline.claims.semantic import embedder
    from pipeline.stance import _model

    try:
        embedder()
        _model()
        rerank.model()
    except Exception:  # noqa: BLE001 - each worker loads (and reports) it again
        logger.debug("preloading the workers' models failed", exc_info=True)
    _preload_justext_stoplist()
    # what is loaded stays where it is: the collector does not write to the shared pages
    gc.collect()
    gc.freeze()


def _preload_justext_stoplist() -> None:
    """Build trafilatura's all-languages justext stop list once, in the forkserver.

    trafilatura's justext fallback (a page whose language it is not told) classifies
    paragraphs against the union of justext's ~100 stop lists: a tuple of ~150,000
    words (``trafilatura.external.JT_STOPLIST``, built on first use) and justext's
    cached lower-cased frozenset of it (``justext.core.define_stoplist``), ~28 MB that
    every worker built for itself on its first such page. Built here, the workers share
    them: a lookup in a frozenset of strings writes to none of its strings (CPython's
    set lookup compares exact strings without a reference count), so the pages stay
    shared. The same words, so the same classification: only where they are built moves.
    """
    try:
        from justext.core import define_stoplist
        from trafilatura import external

        define_stoplist(external.JT_STOPLIST or external.jt_stoplist_init())
    except Exception:  # noqa: BLE001 - trafilatura builds it on first use, as before
        logger.debug("preloading the justext stop list failed", exc_info=True)


def _analyse_in_worker(job: ArticleJob) -> Analysis:
    assert _WORKER is not None, "worker not initialised"
    _CAPTURE.records = []
    result = _WORKER.analyse(job)
    if _CAPTURE.records:
        result = replace(result, logs=tuple(_CAPTURE.records))
        _CAPTURE.records = []
    return result


def _reanalyse_in_worker(jobs: list[StoredJob]) -> list[Analysis]:
    """Re-analysis of a batch of stored texts (one task per batch: less pickling per page).

    The extracted text is not sent back: the caller has it.
    """
    assert _WORKER is not None, "worker not initialised"
    _CAPTURE.records = []
    results = [replace(_WORKER.reanalyse(job), extracted=None) for job in jobs]
    _CAPTURE.records = []
    return results


class ReanalysisPool:
    """Worker processes for re-analysing stored articles (``claimwatch rematch``).

    Plain ``concurrent.futures`` (no reactor): batches go in, analyses come back in
    order. With ``workers=0`` every batch is analysed in this process.
    """

    def __init__(self, config: AnalysisConfig, workers: int | None = None) -> None:
        self.config = config
        self.workers = default_workers() if workers is None else max(0, workers)
        self._executor: ProcessPoolExecutor | None = None
        self._local: Analyser | None = None

    def __enter__(self) -> ReanalysisPool:
        if self.workers:
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=pool_context(),
                initializer=_init_worker, initargs=(self.config, _log_level(), os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, jobs: list[StoredJob]) -> Future[list[Analysis]]:
        """The analyses of ``jobs``, from a worker (or at once, in this process)."""
        if self._executor is not None:
            return self._executor.submit(_reanalyse_in_worker, jobs)
        if self._local is None:
            self._local = Analyser(self.config)
        done: Future[list[Analysis]] = Future()
        done.set_result([replace(self._local.reanalyse(job), extracted=None) for job in jobs])
        return done


# --------------------------------------------------------------------------- the pool


class WorkerCrashed(RuntimeError):
    """The article killed a worker process twice."""


class WorkerPool:
    """Worker processes, each with its own :class:`Analyser`; bounded in-flight work."""

    def __init__(self, config: AnalysisConfig, workers: int, max_pending: int,
                 log_level: int = logging.WARNING) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.config = config
        self.workers = workers
        self.max_pending = max(1, max_pending)
        self.log_level = log_level
        self.restarts = 0
        self.failed: str | None = None  # why the pool was given up
        self._executor: ProcessPoolExecutor | None = None
        self._warmups: list[Future[int]] = []
        self._started_at = 0.0
        self._slots: asyncio.Semaphore | None = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    def start(self) -> None:
        if self._executor is not None or self.failed:
            return
        return_freed_memory()
        self._started_at = time.monotonic()
        self._executor = ProcessPoolExecutor(
            self.workers,
            mp_context=pool_context(),
            initializer=_init_worker,
            initargs=(self.config, self.log_level, os.getpid()),
        )
        # one per worker: each worker runs the initializer before its first task
        self._warmups = [self._executor.submit(_ready) for _ in range(self.workers)]
        logger.info("starting %s worker processes for article analysis", self.workers)

    @property
    def ready(self) -> bool:
        """At least one worker is up (the others join as they come)."""
        if self._executor is None or self.failed:
            return False
        done = [f for f in self._warmups if f.done()]
        if any(f.exception() is None for f in done):
            return True
        if len(done) == len(self._warmups):
            error = next((f.exception() for f in done), None)
            self._give_up(f"the worker processes did not start: {error}")
        elif time.monotonic() - self._started_at > START_TIMEOUT:
            self._give_up(f"the worker processes did not start within {START_TIMEOUT:.0f} s")
        return False

    async def wait_ready(self) -> None:
        """Until :attr:`ready` (or the pool is given up)."""
        while self._executor is not None and not self.ready and not self.failed:
            await asyncio.sleep(0.05)

    async def analyse(self, job: ArticleJob) -> Analysis:
        """Analyse ``job`` in a worker; at most ``max_pending`` jobs are in the pool at once."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_pending)
        async with self._slots:
            for attempt in (1, 2):
                executor = self._executor
                if executor is None:
                    raise WorkerCrashed(self.failed or "the worker pool is closed")
                try:
                    return await asyncio.wrap_future(executor.submit(_analyse_in_worker, job))
                except BrokenProcessPool as exc:
                    logger.warning("a worker process died while analysing %s (attempt %s): %s",
                                   job.url, attempt, exc)
                    self._restart(executor)
            raise WorkerCrashed(f"{job.url} killed a worker process twice")

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is not broken:
            return  # another job restarted it already
        broken.shutdown(wait=False, cancel_futures=True)
        self._executor = None
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            self._give_up(f"the worker processes died {self.restarts} times")
            return
        self.start()

    def _give_up(self, why: str) -> None:
        if self.failed:
            return
        self.failed = why
        logger.error("%s; analysing articles in the crawl's own process from now on", why)
        executor, self._executor = self._executor, None
        if executor is not None:
            # not cancel_futures: a job awaiting its future gets its result or the pool's
            # error (then it is analysed in the crawl's process), never a cancellation
            executor.shutdown(wait=False)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


# --------------------------------------------------------------------------- per crawl


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Shared:
    """What the crawlers of one process share for one configuration."""

    def __init__(self, config: AnalysisConfig, workers: int, max_pending: int) -> None:
        self.config = config
        self.users = 0
        self.pool = WorkerPool(config, workers, max_pending, _log_level()) if workers else None
        self._local: Analyser | None = None

    @property
    def local(self) -> Analyser:
        if self._local is None:
            self._local = Analyser(self.config)
        return self._local

    def drop_local(self) -> None:
        """Free this process's analyser (its claims index) once the workers do the work."""
        self._local = None


_SHARED: dict[tuple[AnalysisConfig, int, int], _Shared] = {}


def _log_level() -> int:
    """The lowest level this process's logging would show (what workers should capture).

    Not simply the root logger's level: Scrapy leaves it at NOTSET and filters in its
    handler, and a worker capturing every DEBUG record of trafilatura runs far slower.
    """
    root = logging.getLogger()
    handlers = [h.level for h in root.handlers] or [logging.WARNING]  # else: lastResort
    return max(root.getEffectiveLevel(), min(handlers))


class ArticleAnalysis:
    """A crawler's access to article analysis: in worker processes or in this one."""

    def __init__(self, crawler: Any, config: AnalysisConfig) -> None:
        settings = crawler.settings
        self.stats = crawler.stats
        self.crawler = crawler
        workers = settings.get("CLAIMWATCH_WORKERS")
        self.workers = default_workers() if workers in (None, "") else int(workers)
        if self.workers < 0:
            raise ValueError(f"CLAIMWATCH_WORKERS must be 0 or more, got {workers!r}")
        if self.workers and not _asyncio_reactor():
            logger.warning("worker processes need Scrapy's asyncio reactor (TWISTED_REACTOR = "
                           "'twisted.internet.asyncioreactor.AsyncioSelectorReactor'); "
                           "analysing articles in the crawl's own process")
            self.workers = 0
        self.min_items = settings.getint("CLAIMWATCH_WORKERS_MIN_ITEMS", 20)
        pending = settings.get("CLAIMWATCH_WORKERS_MAX_PENDING")
        self.max_pending = 2 * self.workers if pending in (None, "") else int(pending)
        self.key = (config, self.workers, self.max_pending)
        self.seen = 0
        self.closed = False
        self._issued = 0  # pages handed to analyse(), in order
        self._turn = 0  # the page whose analysis is handed back next
        self._finished: set[int] = set()
        self._waiting: dict[int, asyncio.Future[None]] = {}
        shared = _SHARED.get(self.key)
        if shared is None:
            shared = _SHARED[self.key] = _Shared(config, self.workers, self.max_pending)
        shared.users += 1
        self.shared = shared

    def count(self, key: str, n: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"claimwatch/{key}", n)

    async def analyse(self, job: ArticleJob) -> Analysis:
        """The page's :class:`Analysis`, from a worker when the pool is up.

        Analyses run in parallel but are handed back in the order the pages came in:
        what the stages after this one do with the database (which copy is stored
        first and becomes the original) is what a crawl without workers would do.
        """
        seq = self._issued
        self._issued += 1
        try:
            result = await self._analyse(job)
            if self._turn != seq:
                waiter = asyncio.get_running_loop().create_future()
                self._waiting[seq] = waiter
                await waiter
            return result
        finally:
            # The stages after this one are synchronous: they finish with this item
            # before the next one, woken here, resumes.
            self._finished.add(seq)
            while self._turn in self._finished:
                self._finished.remove(self._turn)
                self._turn += 1
            next_up = self._waiting.pop(self._turn) if self._turn in self._waiting else None
            if next_up is not None and not next_up.done():
                next_up.set_result(None)

    async def _analyse(self, job: ArticleJob) -> Analysis:
        self.seen += 1
        pool = self.shared.pool
        if pool is not None and not pool.failed:
            if not pool.started and self.seen + self._queued() > self.min_items:
                pool.start()
            if pool.started:
                # every article in a worker, none in this process (no second copy of the
                # analyser here): the first ones wait for the workers to start
                await pool.wait_ready()
            if pool.ready:
                self.shared.drop_local()
                restarts = pool.restarts
                try:
                    result = await pool.analyse(job)
                except WorkerCrashed as exc:
                    self._count_restarts(pool.restarts - restarts)
                    if pool.failed:
                        logger.debug("%s", exc)
                    else:
                        return Analysis(error="worker_crashed", error_detail=str(exc))
                else:
                    self._count_restarts(pool.restarts - restarts)
                    self.count("workers/pool")
                    result.replay_logs()
                    return result
        self.count("workers/inline")
        return self.shared.local.analyse(job)

    def _queued(self) -> int:
        """Requests this crawl has waiting in its scheduler and downloader (0 if unknown)."""
        engine = getattr(self.crawler, "engine", None)
        try:
            scheduler = engine.scheduler if engine is not None else None
            queued = len(scheduler) if scheduler is not None else 0
            return queued + len(engine.downloader.active) if engine is not None else 0
        except Exception:  # noqa: BLE001 - a scheduler without a length: count what is seen
            return 0

    def _count_restarts(self, n: int) -> None:
        if n > 0:
            self.count("workers/restarts", n)

    def close(self) -> None:
        """Release this crawler's share; the last one stops the workers."""
        if self.closed:
            return
        self.closed = True
        self.shared.users -= 1
        if self.shared.users <= 0:
            _SHARED.pop(self.key, None)
            if self.shared.pool is not None:
                self.shared.pool.close()


def _asyncio_reactor() -> bool:
    """Can the pipeline await asyncio futures (Scrapy's asyncio reactor, or a running loop)?"""
    from scrapy.utils.asyncio import is_asyncio_available

    try:
        return is_asyncio_available()
    except RuntimeError:  # no reactor installed: not in a crawl
        return False


def topic_config(topic: Topic, settings: Any = None) -> AnalysisConfig:
    """The :class:`AnalysisConfig` of ``topic`` under ``settings`` (a Scrapy ``Settings``;
    None: the defaults of crawler/settings.py, as ``claimwatch rematch`` runs)."""
    if settings is None:
        from scrapy.settings import Settings

        settings = Settings()
        settings.setmodule("crawler.settings", priority="project")

    def optional_float(name: str) -> float | None:
        value = settings.get(name)
        return None if value in (None, "") else float(value)

    return AnalysisConfig(
        claims=tuple(topic.claims),
        query=topic.query,
        favor_precision=settings.getbool("CLAIMWATCH_EXTRACT_FAVOR_PRECISION", True),
        min_chars=settings.getint("CLAIMWATCH_EXTRACT_MIN_CHARS", MIN_TEXT_CHARS),
        linked_min=optional_float("CLAIMWATCH_CLAIM_LINKED_MIN"),
        suggested_min=optional_float("CLAIMWATCH_CLAIM_SUGGESTED_MIN"),
        candidate_min=optional_float("CLAIMWATCH_CANDIDATE_MIN"),
    )


def config_for(crawler: Any) -> AnalysisConfig:
    """The crawl's :class:`AnalysisConfig`: its topic's claims and query, and the settings."""
    from pipeline.context import topic_for

    return topic_config(topic_for(crawler), crawler.settings)


def analysis_for(crawler: Any) -> ArticleAnalysis:
    """The crawler's :class:`ArticleAnalysis`, made once (close it in ``close_spider``)."""
    analysis = getattr(crawler, "_claimwatch_analysis", None)
    if analysis is None or analysis.closed:
        analysis = ArticleAnalysis(crawler, config_for(crawler))
        crawler._claimwatch_analysis = analysis
    return analysis
