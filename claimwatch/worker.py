"""``claimwatch worker``: one of N processes, on any machines, that crawl the queued jobs.

A deployment has one scheduler (``claimwatch daemon`` with ``CLAIMWATCH_REDIS_URL``
set, or ``claimwatch enqueue`` from cron) that queues crawl jobs in Redis, any
number of workers, and one PostgreSQL database. Each worker runs one Twisted
reactor for its whole life and, for every open job, a Scrapy crawler of its own
that shares the job's request queue and dupefilter with the other workers' (see
``crawler/distributed.py``). When a job is finished the worker writes its share
of it as a ``crawl_runs`` row (``holder`` = ``worker:<worker id>``, with its
counts) and updates the source's state.

The worker refuses to start on a database whose schema is older than the code
(``claimwatch db upgrade`` first); it creates the schema in an empty one.
SIGTERM or SIGINT stops it gracefully: requests it is processing are finished,
the ones still queued stay in Redis for the other workers. A worker killed
outright loses nothing either: the others put its in-flight requests back in the
queue once its heartbeat lapses.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from config.loader import ConfigError, load_topic
from crawler.distributed import (
    DEFAULT_PREFIX,
    CrawlJob,
    DistributedError,
    Heartbeat,
    JobQueue,
    check_prefix,
    distributed_spider,
    job_settings,
    new_worker_id,
    open_jobs,
    redis_client,
)
from crawler.runner import (
    SOURCE_ERRORS,
    SourceSummary,
    _record_source_state,
    base_settings,
    summarise_stats,
)
from storage.db import describe, make_engine, session_factory
from storage.models import CrawlRun, utcnow
from storage.repository import Store
from storage.schema import ensure_schema

logger = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    redis_url: str
    db_url: str
    prefix: str = DEFAULT_PREFIX
    settings: Mapping[str, Any] = field(default_factory=dict)  # --set NAME=VALUE
    worker_id: str | None = None  # default: host:pid:random
    max_jobs: int | None = None  # default: CLAIMWATCH_WORKER_MAX_JOBS
    burst: bool = False  # exit once no job is open and none is running here


@dataclass
class JobOutcome:
    """This worker's share of one job."""

    job_id: str
    topic: str
    source: str
    status: str  # ok | failed | interrupted
    counts: dict[str, int]
    seeded: bool
    run_id: int | None
    error: str | None = None


class Worker:
    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.id = options.worker_id or new_worker_id()
        self.prefix = check_prefix(options.prefix)
        overrides = {
            **dict(options.settings),
            "CLAIMWATCH_DB_URL": options.db_url,
            "CLAIMWATCH_REDIS_URL": options.redis_url,
            "CLAIMWATCH_REDIS_PREFIX": self.prefix,
        }
        self.settings = base_settings(overrides)
        # The caller (the CLI) configures logging; Scrapy only gets its level.
        self.settings.set("LOG_INSTALL_ROOT_HANDLER", not logging.getLogger().handlers,
                          priority="cmdline")
        self.max_jobs = options.max_jobs or self.settings.getint("CLAIMWATCH_WORKER_MAX_JOBS", 8)
        self.poll_interval = self.settings.getfloat("CLAIMWATCH_WORKER_POLL_INTERVAL", 1.0)
        self.client = redis_client(options.redis_url)
        try:
            self.client.ping()
        except Exception as exc:
            self.client.close()
            raise DistributedError(f"Redis not reachable at {options.redis_url}: {exc}") from exc
        self.engine = make_engine(options.db_url)
        try:
            ensure_schema(self.engine)  # SchemaOutdated: `claimwatch db upgrade` first
        except Exception:
            self.engine.dispose()
            self.client.close()
            raise
        if self.engine.dialect.name == "sqlite":
            logger.warning("worker %s stores into SQLite (%s): workers on other machines need "
                           "one shared database (PostgreSQL)", self.id, describe(options.db_url))
        self.store = Store(session_factory(self.engine))
        self.heartbeat = Heartbeat(self.client, self.id, prefix=self.prefix,
                                   ttl=self.settings.getfloat("CLAIMWATCH_WORKER_HEARTBEAT_TTL",
                                                              15.0))
        self.running: dict[str, Any] = {}  # job id -> crawler
        self.skipped: set[str] = set()  # jobs this worker cannot run (bad topic file here)
        self.outcomes: list[JobOutcome] = []
        self.stopping = False
        self._idle_polls = 0
        self._process: Any = None
        self._poller: Any = None

    # -- life cycle ------------------------------------------------------------------------------

    def run(self) -> list[JobOutcome]:
        """Work until stopped (SIGTERM/SIGINT) or, with ``burst``, until no job is left."""
        from scrapy.crawler import CrawlerProcess
        from scrapy.utils.reactor import install_reactor, is_reactor_installed

        if not is_reactor_installed():
            install_reactor(self.settings["TWISTED_REACTOR"],
                            self.settings["ASYNCIO_EVENT_LOOP"])
        from twisted.internet import reactor as _reactor
        from twisted.internet import task

        reactor: Any = _reactor
        self._process = CrawlerProcess(self.settings)
        logging.getLogger("scrapy").setLevel(self.settings.get("LOG_LEVEL"))
        self._poller = task.LoopingCall(self._poll)
        reactor.callWhenRunning(self._poller.start, self.poll_interval)
        reactor.addSystemEventTrigger("before", "shutdown", self._before_shutdown)
        self.heartbeat.start()
        logger.info("worker %s: waiting for jobs in %s (prefix %s), storing into %s",
                    self.id, self.options.redis_url, self.prefix, describe(self.options.db_url))
        try:
            self._process.start(stop_after_crawl=False)
        finally:
            self.heartbeat.stop()
            self.client.close()
            self.engine.dispose()
        logger.info("worker %s stopped after %s job(s)", self.id, len(self.outcomes))
        return self.outcomes

    def _before_shutdown(self) -> None:
        self.stopping = True
        if self._poller is not None and self._poller.running:
            self._poller.stop()

    def _stop(self) -> None:
        from twisted.internet import reactor as _reactor

        reactor: Any = _reactor
        self._before_shutdown()
        if reactor.running:
            reactor.stop()

    # -- jobs ------------------------------------------------------------------------------------

    def _poll(self) -> None:
        if self.stopping:
            return
        try:
            jobs = open_jobs(self.client, self.prefix)
        except Exception as exc:  # Redis briefly away: try again next poll
            logger.warning("worker %s: cannot list jobs: %s", self.id, exc)
            return
        for job in jobs:
            if job.id in self.running or job.id in self.skipped:
                continue
            if len(self.running) >= self.max_jobs:
                break
            try:
                self._start_job(job)
            except Exception:  # never let one job stop the polling (LoopingCall would stop)
                logger.exception("worker %s cannot start job %s (%s/%s)", self.id, job.id,
                                 job.topic, job.source)
                self.running.pop(job.id, None)
                self.skipped.add(job.id)
        if self.options.burst:
            runnable = [j for j in jobs if j.id not in self.skipped]
            self._idle_polls = 0 if (runnable or self.running) else self._idle_polls + 1
            if self._idle_polls >= 2:
                logger.info("worker %s: no job left (--burst): stopping", self.id)
                self._stop()

    def _start_job(self, job: CrawlJob) -> None:
        from scrapy.crawler import Crawler

        try:
            topic = load_topic(job.topic_path)
            topic.source(job.source)
            spidercls = distributed_spider(job.kind)
        except (ConfigError, KeyError, DistributedError) as exc:
            message = str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
            logger.error("worker %s cannot run job %s (%s/%s): %s", self.id, job.id, job.topic,
                         job.source, message)
            JobQueue(self.client, job.id, prefix=self.prefix, worker_id=self.id) \
                .add_error(message)
            self.skipped.add(job.id)
            return
        self._sync_claims(topic)
        settings = self.settings.copy()
        settings.setdict(job_settings(job, redis_url=self.options.redis_url, worker_id=self.id,
                                      prefix=self.prefix), priority="cmdline")
        crawler: Any = Crawler(spidercls, settings)
        crawler._claimwatch_store = self.store  # one engine for every job (pipeline/context.py)
        crawler._claimwatch_topic = topic
        started = utcnow()
        self.running[job.id] = crawler
        logger.info("worker %s joins job %s (%s/%s)", self.id, job.id, job.topic, job.source)
        deferred = self._process.crawl(crawler, source=job.source)
        deferred.addBoth(self._job_done, job, crawler, started)

    def _sync_claims(self, topic: Any) -> None:
        # Workers starting jobs of one topic at once may race to insert the same claims.
        for attempt in range(3):
            try:
                self.store.sync_claims(topic.name, topic.claims)
                return
            except (IntegrityError, OperationalError) as exc:
                if attempt == 2:
                    logger.warning("claims table of %s not mirrored: %s", topic.name, exc)
                time.sleep(0.1 * (attempt + 1))

    def _job_done(self, result: Any, job: CrawlJob, crawler: Any, started: Any) -> None:
        from twisted.python.failure import Failure

        self.running.pop(job.id, None)
        try:
            stats = dict(crawler.stats.get_stats())
        except RuntimeError:  # the crawl failed before it had stats
            stats = {}
        counts = summarise_stats(stats)
        spider = getattr(crawler, "spider", None)
        seeded = bool(getattr(spider, "job_seeded_here", False))
        reason = stats.get("finish_reason")
        error: str | None = None
        if isinstance(result, Failure):
            status, error = "failed", result.getErrorMessage()
            logger.error("worker %s: job %s (%s/%s) crashed: %s", self.id, job.id, job.topic,
                         job.source, error)
            self.skipped.add(job.id)
        elif reason == "shutdown":
            status, error = "interrupted", "worker stopped before the job finished"
        elif reason != "finished":
            status, error = "failed", f"crawl ended: {reason or 'did not start'}"
        elif any(stats.get(key) for key in SOURCE_ERRORS):
            status, error = "failed", f"the source's {job.kind} could not be fetched or parsed"
        else:
            status = "ok"
        run_id = None
        # A worker that joined a job and found nothing to do leaves no trace in crawl_runs.
        if seeded or status != "ok" or any(counts.values()):
            run_id = self._record(job, started, status, counts, error, stats)
        outcome = JobOutcome(job.id, job.topic, job.source, status, counts, seeded, run_id, error)
        self.outcomes.append(outcome)
        logger.info("worker %s: job %s (%s/%s) %s: %s", self.id, job.id, job.topic, job.source,
                    status, ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "no work")

    def _record(self, job: CrawlJob, started: Any, status: str, counts: dict[str, int],
                error: str | None, stats: dict[str, Any]) -> int | None:
        # Written once the job is done, never "running": a running row without a lease would
        # be marked interrupted by the daemon's reaper (storage/leases.py).
        try:
            with self.store.sessions.begin() as session:
                run = CrawlRun(topic=job.topic, source=job.source, trigger=job.trigger,
                               started=started, finished=utcnow(), status=status, counts=counts,
                               error=error, pid=os.getpid(), holder=f"worker:{self.id}")
                session.add(run)
                session.flush()
                run_id = int(run.id)
            summary = SourceSummary(source=job.source, kind=job.kind, run_id=run_id,
                                    status=status, counts=counts, stats=stats, error=error)
            _record_source_state(self.store, job.topic, summary)
            return run_id
        except Exception:
            logger.exception("worker %s: could not record job %s", self.id, job.id)
            return None


def run_worker(options: WorkerOptions) -> list[JobOutcome]:
    """Run a worker in this process (once: a Twisted reactor cannot be restarted)."""
    return Worker(options).run()
