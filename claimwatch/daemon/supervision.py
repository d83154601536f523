"""Supervision: every crawl's lease, ``crawl_runs`` row, crawl process and outcome.

- Every crawl takes the source's lease (``storage/leases.py``) first, the same lease
  ``claimwatch crawl`` takes, so a source is never crawled twice at once; its
  ``crawl_runs`` row is written before it is queued and completed after it ends.
- Crawls run in long-lived crawl processes (``python -m crawler.crawlproc``, see
  ``crawlpool.py``), at most ``--max-parallel`` of them, each running one batch at a
  time: the queued runs of one topic (same timeout) go together, up to
  ``CLAIMWATCH_CRAWL_BATCH``. A process is replaced after
  ``CLAIMWATCH_CRAWL_PROCESS_MAX_CRAWLS`` crawls or once its memory grew past
  ``CLAIMWATCH_CRAWL_PROCESS_MAX_GROWTH``; one that dies takes only its batch with it:
  those runs are recorded as failed (with how it died) and the next batch gets a new
  process, so a crash, hang or leak in a crawl never harms the daemon.
- A crawl that outlives its timeout (the source's ``timeout`` option, else
  ``--crawl-timeout``, counted from when its process starts it) is stopped with its
  process: SIGTERM, then SIGKILL after ``--kill-grace``. So are crawls still running
  after the shutdown grace period, and a crawl whose lease was taken over.
- One supervisor thread does all of it: it reads the processes' reports, checks the
  timeouts, hands queued runs to idle processes and records outcomes.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import update

from claimwatch.daemon.crawlpool import CrawlProc, PoolLimits, start_crawl_proc, stop_all
from claimwatch.daemon.scheduling import (
    REVISIT_TRIGGER,
    DaemonState,
    LoadedTopic,
    source_timeout,
)
from config.models import Source
from crawler.run import EXIT_FAILED, EXIT_OK  # a run's exit_code when its process reported it
from storage import leases
from storage.models import CrawlRun, utcnow
from storage.repository import Store

logger = logging.getLogger(__name__)

GATHER = 0.05  # seconds the supervisor waits after a wake for more runs to batch


@dataclass
class ActiveRun:
    run_id: int
    topic: str
    source: str
    trigger: str
    topic_path: str
    timeout: float
    started: float = field(default_factory=time.monotonic)  # reset when it starts crawling
    started_at: datetime = field(default_factory=utcnow)
    pid: int | None = None  # its crawl process, once it has one
    stop_reason: str | None = None  # timeout | shutdown | lease_lost


def describe_exit(code: int | None) -> str:
    if code is None:
        return "the crawl process could not be started"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the crawl process was killed by {name} before it recorded an outcome"
    return f"the crawl process exited with status {code} before it recorded an outcome"


def _project_root() -> str | None:
    spec = importlib.util.find_spec("crawler")
    if spec is None or not spec.origin:
        return None
    return str(Path(spec.origin).resolve().parent.parent)


def child_env() -> dict[str, str]:
    """The crawl processes' environment: ours, with this checkout importable."""
    env = dict(os.environ)
    root = _project_root()
    if root:
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
    return env


@dataclass
class _Signals:
    """When a busy process was sent SIGTERM / SIGKILL (by pid)."""

    term: dict[int, float] = field(default_factory=dict)
    kill: set[int] = field(default_factory=set)


class Supervision(DaemonState):
    """The daemon's crawls (a part of :class:`claimwatch.daemon.Daemon`)."""

    ttl: Any
    keeper: Any
    _force: threading.Event

    def _init_supervision(self) -> None:
        self._active: dict[int, ActiveRun] = {}
        # leases begin() took but could not give back (the database away): given back later
        self._leftover_leases: set[tuple[str, str]] = set()
        self._leftover_lock = threading.Lock()
        self._queue: deque[ActiveRun] = deque()
        self._procs: list[CrawlProc] = []
        self._signals = _Signals()
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._child_env = child_env()
        self.limits = PoolLimits.from_settings(self.options.settings)
        self.processes_started = 0

    # -- runs in -----------------------------------------------------------------------------

    def begin(self, item: LoadedTopic, source: Source, trigger: str) -> ActiveRun:
        """Take the source's lease and write its ``running`` row. Raises LeaseBusy."""
        topic = item.topic.name
        with self._leftover_lock:
            self._give_back_leftovers()
            try:
                leases.acquire(self.sessions, topic, source.name, self.holder, self.ttl)
            except leases.LeaseBusy:
                raise
            except BaseException:
                # The database may have written the lease and lost only its answer.
                self._leftover_leases.add((topic, source.name))
                raise
            self.keeper.add(topic, source.name)
        try:
            with self.sessions.begin() as session:
                row = CrawlRun(topic=topic, source=source.name, trigger=trigger,
                               started=utcnow(), status="running", counts={},
                               holder=self.holder.id)
                session.add(row)
                session.flush()
                run_id = int(row.id)
        except BaseException:
            self._give_back(topic, source.name)
            raise
        timeout = source_timeout(source, self.options.crawl_timeout).total_seconds()
        run = ActiveRun(run_id=run_id, topic=topic, source=source.name, trigger=trigger,
                        topic_path=item.path, timeout=timeout)
        with self._lock:
            self._active[run_id] = run
        logger.info("crawl run %s started: %s/%s (%s)", run_id, topic, source.name, trigger)
        return run

    def _give_back(self, topic: str, source: str) -> None:
        """Give a run's lease back now or, the database away, as soon as it answers."""
        with self._leftover_lock:
            self.keeper.discard(topic, source)
            self._leftover_leases.add((topic, source))
            self._give_back_leftovers()

    def give_back_leftover_leases(self) -> None:
        """Give back the leases that could not be given back when their run ended or failed
        to begin (the database away then); the housekeeping loop calls this."""
        if not self._leftover_leases or not self._leftover_lock.acquire(blocking=False):
            return  # none, or begin() holds the lock (and gives them back first)
        try:
            self._give_back_leftovers()
        finally:
            self._leftover_lock.release()

    def _give_back_leftovers(self) -> None:
        # Held under _leftover_lock, which begin() holds from taking a lease until its run
        # is expected by the keeper: a lease the keeper does not expect then is no run's.
        # Left, the keeper (which renews every lease of this holder) would keep it for
        # good and the source would never be crawled again.
        for topic, source in sorted(self._leftover_leases):
            if not self.keeper.expects(topic, source):
                try:
                    leases.release(self.sessions, topic, source, self.holder)
                except Exception as exc:  # noqa: BLE001 - the database still away: later
                    logger.warning("the lease on %s/%s is given back once the database "
                                   "answers: %s", topic, source, exc)
                    return
            self._leftover_leases.discard((topic, source))

    def submit(self, *runs: ActiveRun) -> None:
        """Queue begun runs for the next free crawl process."""
        with self._lock:
            self._queue.extend(runs)
        self._wake.set()

    def start_supervisor(self) -> None:
        self._supervisor = threading.Thread(target=self._supervise_loop, daemon=True,
                                            name="claimwatch-supervisor")
        self._supervisor.start()

    def stop_supervisor(self) -> None:
        """After ``_force``: wait for the supervisor to settle every run, end the processes."""
        self._wake.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        with self._lock:
            procs, self._procs = list(self._procs), []
        stop_all(procs, self.options.kill_grace.total_seconds())

    # -- the supervisor thread ---------------------------------------------------------------

    def _supervise_loop(self) -> None:
        while True:
            if self._wake.wait(0.1):
                # Jobs falling due together fire one after another: gather them so the
                # sources of one topic go out as one batch.
                time.sleep(GATHER)
            self._wake.clear()
            try:
                self._supervise_once()
            except Exception:  # noqa: BLE001 - e.g. the database away: next round
                logger.exception("crawl supervision failed; retrying")
                time.sleep(0.5)
            with self._lock:
                if self._force.is_set() and not self._active:
                    return

    def _supervise_once(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for item in procs:
            self._read(item)
        for item in procs:
            self._check(item)
        self._drop_queued()
        self._dispatch()

    def _read(self, item: CrawlProc) -> None:
        """Settle the runs ``item`` reported, and note the end of its batch."""
        while not item.messages.empty():
            message = item.messages.get_nowait()
            if message.get("op") == "run":
                run = next((r for r in item.runs if r.run_id == message.get("run_id")), None)
                if run is not None:
                    item.runs.remove(run)
                    self._end(run, EXIT_OK if message.get("status") == "ok" else EXIT_FAILED)
            elif message.get("op") == "started" and message.get("batch") == item.batch:
                now = time.monotonic()  # a new process's start-up is not the crawl's time
                for run in item.runs:
                    run.started = now
            elif message.get("op") == "batch" and message.get("batch") == item.batch:
                item.batch = None
                item.crawls = int(message.get("crawls") or 0)
                item.rss = int(message.get("rss") or 0)
                item.first_rss = item.first_rss or item.rss
                worn = item.worn(self.limits)
                if worn:
                    logger.info("crawl process %s replaced after %s", item.pid, worn)
                    item.retire()

    def _check(self, item: CrawlProc) -> None:
        """A process that ended takes its unreported runs with it; enforce the stops."""
        code = item.proc.poll()
        if code is not None:
            time.sleep(0.05)  # its last lines may still be in the pipe
            self._read(item)
            with self._lock:
                self._procs.remove(item)
            if item.runs:
                logger.warning("crawl process %s ended (%s) during %d crawl(s)", item.pid,
                               describe_exit(code).removeprefix("the crawl process "),
                               len(item.runs))
            for run in list(item.runs):
                item.runs.remove(run)
                self._end(run, code)
            self._signals.term.pop(item.pid, None)
            self._signals.kill.discard(item.pid)
            return
        if not item.runs:
            return
        now = time.monotonic()
        for run in item.runs:
            if run.stop_reason is None:
                if now - run.started > run.timeout:
                    run.stop_reason = "timeout"
                    logger.warning("crawl run %s (%s/%s) timed out after %gs: stopping it",
                                   run.run_id, run.topic, run.source, run.timeout)
                elif self._force.is_set():
                    run.stop_reason = "shutdown"
        stopping = any(run.stop_reason for run in item.runs)
        term = self._signals.term.get(item.pid)
        if stopping and term is None:
            self._signals.term[item.pid] = now
            item.signal(signal.SIGTERM)
        elif term is not None and item.pid not in self._signals.kill \
                and now - term > self.options.kill_grace.total_seconds():
            self._signals.kill.add(item.pid)
            logger.warning("crawl process %s did not stop within %gs of SIGTERM: SIGKILL",
                           item.pid, self.options.kill_grace.total_seconds())
            item.signal(signal.SIGKILL)

    def _drop_queued(self) -> None:
        """Queued runs that will not start: the daemon is past its grace, or the lease is gone."""
        with self._lock:
            dropped = [run for run in self._queue if self._force.is_set() or run.stop_reason]
            for run in dropped:
                self._queue.remove(run)
        for run in dropped:
            run.stop_reason = run.stop_reason or "shutdown"
            self._end(run, None)

    def _dispatch(self) -> None:
        """Hand queued runs to idle processes (starting processes up to ``--max-parallel``)."""
        while True:
            with self._lock:
                if not self._queue or self._force.is_set():
                    return
                item = next((p for p in self._procs if p.idle), None)
                live = [p for p in self._procs if not p.retiring]
                if item is None and len(live) >= max(self.options.max_parallel, 1):
                    return
                batch = self._take_batch()
            if item is None:
                item = self._start_process(batch)
                if item is None:
                    continue
            self._send(item, batch)

    def _take_batch(self) -> list[ActiveRun]:
        """The first queued run and the other queued runs of its topic with its timeout."""
        first = self._queue[0]
        batch = [run for run in self._queue
                 if run.topic_path == first.topic_path and run.timeout == first.timeout
                 ][:self.limits.batch]
        for run in batch:
            self._queue.remove(run)
        return batch

    def _command(self) -> list[str]:
        command = [self.options.python, "-m", "crawler.crawlproc", "--db", self.options.db_url,
                   "--parent-pid", str(os.getpid())]
        for name, value in self.options.settings.items():
            command += ["--set", f"{name}={value}"]
        return command + ["-v"] * self.options.crawl_verbose

    def _start_process(self, batch: list[ActiveRun]) -> CrawlProc | None:
        try:
            item = start_crawl_proc(self._command(), self._child_env)
        except OSError as exc:
            logger.error("could not start a crawl process: %s", exc)
            for run in batch:
                self._end(run, None)
            return None
        self.processes_started += 1
        logger.info("crawl process %s started", item.pid)
        with self._lock:
            self._procs.append(item)
        return item

    def _send(self, item: CrawlProc, batch: list[ActiveRun]) -> None:
        number = self.processes_started * 1_000_000 + item.crawls + len(item.runs) + 1
        item.batch, item.runs = number, list(batch)
        now = time.monotonic()
        for run in batch:
            run.started, run.pid = now, item.pid
        self._set_pids(batch, item.pid)
        sent = item.send({"op": "crawl", "batch": number, "topic_path": batch[0].topic_path,
                          "runs": [{"run_id": r.run_id, "source": r.source,
                                    "trigger": r.trigger,
                                    "revisit": r.trigger == REVISIT_TRIGGER} for r in batch]})
        if not sent:  # it died meanwhile: _check records its runs as failed
            logger.warning("crawl process %s is gone: batch %s not sent", item.pid, number)

    def _set_pids(self, runs: list[ActiveRun], pid: int) -> None:
        try:
            with self.sessions.begin() as session:
                session.execute(update(CrawlRun)
                                .where(CrawlRun.id.in_([run.run_id for run in runs]))
                                .values(pid=pid))
        except Exception:  # noqa: BLE001 - the crawl goes on; only the pid is missing
            logger.exception("crawl runs %s: could not record their pid",
                             ", ".join(str(run.run_id) for run in runs))

    # -- runs out ----------------------------------------------------------------------------

    def _end(self, run: ActiveRun, code: int | None) -> None:
        """Record the run's outcome, give its lease back, forget it."""
        try:
            self._settle(run, code)
        except Exception:  # noqa: BLE001 - left running: reaped as interrupted later
            logger.exception("crawl run %s: outcome not recorded", run.run_id)
        finally:
            self._give_back(run.topic, run.source)
            with self._lock:
                self._active.pop(run.run_id, None)

    def _settle(self, run: ActiveRun, code: int | None) -> None:
        """:meth:`_finish`, waiting out a database outage: a run is not left ``running``
        and its lease (renewed with the daemon's others) is not kept for ever because
        the database was away when the crawl ended. Given up when the daemon stops."""
        from sqlalchemy.exc import DBAPIError

        from storage.errors import database_problem

        delay = 1.0
        while True:
            try:
                self._finish(run, code)
                return
            except DBAPIError as exc:
                if database_problem(exc) is None or (self._stopping and delay > 4):
                    raise
                first = (str(exc.orig or exc).strip().splitlines() or ["?"])[0]
                logger.warning("crawl run %s: the database is unavailable (%s): recording "
                               "its outcome again in %.0f s", run.run_id, first, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _lease_lost(self, topic: str, source: str) -> None:
        with self._lock:
            for run in self._active.values():
                if run.topic == topic and run.source == source and run.stop_reason is None:
                    run.stop_reason = "lease_lost"

    def _finish(self, run: ActiveRun, code: int | None) -> None:
        """Complete the run's row: the crawl's own outcome, or why it has none."""
        now = utcnow()
        with self.sessions.begin() as session:
            row = session.get(CrawlRun, run.run_id)
            if row is None:
                return
            before = row.status
            # A run its crawl process reported has its exit code already, written with
            # its outcome (crawler/crawlproc.py); one it never reported gets how it ended,
            # in the same write as ``finished`` below.
            values: dict[str, Any] = {} if row.exit_code is not None else {"exit_code": code}
            count_failure = False
            if run.stop_reason == "timeout":
                values.update(status="timeout", finished=row.finished or now,
                              error=f"killed after the crawl timeout of {run.timeout:g}s")
                count_failure = before in ("running", "interrupted")
            elif run.stop_reason in ("shutdown", "lease_lost") and before in ("running",
                                                                               "interrupted"):
                why = ("the daemon stopped it at shutdown after its grace period"
                       if run.stop_reason == "shutdown" else
                       "its lease expired and was taken over, so it was stopped")
                values.update(status="interrupted", finished=row.finished or now, error=why)
            elif before == "running":  # crashed, killed: it never wrote its outcome
                values.update(status="failed", finished=now, error=describe_exit(code))
                count_failure = True
            if values:
                session.execute(update(CrawlRun).where(CrawlRun.id == run.run_id)
                                .values(**values))
            status = values.get("status", before)
            error = values.get("error", row.error)
            counts = dict(row.counts or {})
        if count_failure and run.trigger != REVISIT_TRIGGER:  # a revisit is not the feed
            store = Store(self.sessions)
            state = store.source_state(run.topic, run.source)
            store.update_source_state(
                run.topic, run.source, last_attempt=now, last_error=error,
                consecutive_failures=(state.consecutive_failures if state else 0) + 1,
            )
        took = time.monotonic() - run.started
        level = logging.INFO if status == "ok" else logging.WARNING
        logger.log(level, "crawl run %s finished: %s/%s %s in %.1fs, new=%s fetched=%s%s",
                   run.run_id, run.topic, run.source, status, took, counts.get("new", 0),
                   counts.get("fetched", 0), f" ({error})" if error and status != "ok" else "")
        self._notify(run.topic)

    def _notify(self, topic_name: str) -> None:
        """Alerts of the topic's channels (claimwatch/notify.py) after each crawl: never raises."""
        from claimwatch.digest.notify import notify_after_crawl

        with self._lock:
            loaded = next((item for item in self.topics.values()
                           if item.topic.name == topic_name), None)
        if loaded is not None and loaded.topic.notify:
            for report in notify_after_crawl(self.sessions, loaded.topic):
                if report.error:
                    logger.warning("notify %s: %s", topic_name, report.line())
