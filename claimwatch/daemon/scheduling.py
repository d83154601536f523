"""Scheduling: the topic files, their sources' jobs in APScheduler 3, and what a job does.

- APScheduler 3 with its job store in the project database (table ``apscheduler_jobs``):
  one job per scheduled source, coalesced, with a misfire grace time. A job is the
  module-level :func:`scheduled_crawl` with plain arguments (topic file, source name),
  as the job store pickles both; its function is kept as the textual reference
  ``claimwatch.daemon:scheduled_crawl``, so jobs stored by an older layout still run.
- A job only hands its crawl to the supervisor (``supervision.py``) and returns: due
  sources wait in one queue, where the sources of one topic due together are batched
  into one crawl. A source whose crawl is still queued or running is skipped (its lease).
- Topic files are re-read on SIGHUP or when they change.
- Another kind of job is one more entry in :meth:`Scheduling.extra_jobs` with a
  module-level function of its own: :meth:`Scheduling.sync_jobs` keeps the job store in
  step with it as it does with the sources. Two are there: the digest email, and each
  topic's revisits (every ``CLAIMWATCH_REVISIT_INTERVAL`` seconds, default 6 h): a
  revisit is a crawl run like any other (trigger ``revisit``: its lease, ``crawl_runs``
  row, crawl process and timeout), of each source with revisits on, so a source being
  crawled is not revisited at the same time (skipped, revisited next time).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from claimwatch.daemon.digests import EMAIL_JOB_FUNC, EMAIL_JOB_ID
from claimwatch.daemon.options import DaemonError
from claimwatch.web import HTTPError
from config.cron import parse_duration, schedule_trigger
from config.loader import ConfigError, load_topic, revisit_window
from config.models import Source, Topic
from storage.leases import LeaseBusy

logger = logging.getLogger(__name__)

JOB_FUNC = "claimwatch.daemon:scheduled_crawl"
JOBS_TABLE = "apscheduler_jobs"
REVISIT_JOB_FUNC = "claimwatch.daemon:scheduled_revisit"
REVISIT_JOB_PREFIX = "revisit:"  # + the topic's name
REVISIT_TRIGGER = "revisit"  # a revisit run's trigger in crawl_runs

# The running daemon, for scheduled_crawl (APScheduler jobs are plain function references).
_ACTIVE: Any = None


def set_active(daemon: Any) -> None:
    """Make ``daemon`` the one :func:`scheduled_crawl` hands its jobs to (None: no daemon)."""
    global _ACTIVE
    _ACTIVE = daemon


def active() -> Any:
    return _ACTIVE


def scheduled_crawl(topic_path: str, source: str) -> None:
    """The APScheduler job for one scheduled source: queue its crawl now."""
    daemon = _ACTIVE
    if daemon is None:
        logger.error("scheduled crawl of %s in %s fired with no daemon running", source, topic_path)
        return
    daemon.run_scheduled(topic_path, source)


def scheduled_revisit(topic_path: str) -> None:
    """The APScheduler job for one topic's revisits: queue them now."""
    daemon = _ACTIVE
    if daemon is None:
        logger.error("revisits of %s fired with no daemon running", topic_path)
        return
    daemon.run_revisits(topic_path)


def revisit_interval(settings: Any) -> timedelta:
    """How often the daemon revisits each topic: ``CLAIMWATCH_REVISIT_INTERVAL`` seconds
    (``--set``, else crawler/settings.py's). Raises :class:`DaemonError` when it is not a
    number of seconds >= 1."""
    from crawler.settings import CLAIMWATCH_REVISIT_INTERVAL

    value = settings.get("CLAIMWATCH_REVISIT_INTERVAL", CLAIMWATCH_REVISIT_INTERVAL)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds >= 1:  # also NaN
        raise DaemonError(f"CLAIMWATCH_REVISIT_INTERVAL must be a number of seconds, at "
                          f"least 1, not {value!r}")
    return timedelta(seconds=int(seconds))


@dataclass
class LoadedTopic:
    path: str
    topic: Topic
    stamp: tuple[int, int]  # (mtime_ns, size) when loaded


@dataclass(frozen=True)
class ExtraJob:
    """A job of another kind than a source's crawl (the digest email, a revisit, ...).

    ``func`` is a textual reference (``module:function``) to a module-level function,
    ``args`` plain values: the job store pickles both.
    """

    id: str  # no "/": never a topic/source job's id
    func: str
    schedule: str  # cron or "every 1d"
    args: tuple[Any, ...]
    name: str


class _ShutdownRaceFilter(logging.Filter):
    """Drop APScheduler 3's error for a job falling due during ``shutdown()``.

    ``BackgroundScheduler.shutdown`` stops the executors, then wakes its thread, which
    processes due jobs once more without checking that it is stopped, and logs an
    error with a traceback for each ("cannot schedule new futures after shutdown").
    The job was not run and stays due in the job store, so it runs (once) when the
    daemon starts again, within the misfire grace time: nothing is lost.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (record.getMessage().startswith("Error submitting job")
                    and isinstance(exc, RuntimeError) and "after shutdown" in str(exc))


_SHUTDOWN_RACE_FILTER = _ShutdownRaceFilter()
logging.getLogger("apscheduler.scheduler").addFilter(_SHUTDOWN_RACE_FILTER)


def _stamp(path: str) -> tuple[int, int]:
    try:
        stat = os.stat(path)
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)



def _seconds(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:g}s"

def source_timeout(source: Source, default: timedelta) -> timedelta:
    """The source's ``timeout`` option (``90``, ``90s``, ``10m``, ``1h``) or ``default``."""
    value = source.options.get("timeout")
    if value is None:
        return default
    timeout = parse_duration(value)  # type: ignore[arg-type]
    if timeout <= timedelta(0):
        raise ValueError("the crawl timeout must be positive")
    return timeout



class DaemonState:
    """What the daemon's parts (:class:`Scheduling`, ``Supervision``, ``HealthReport``)
    share, set by :class:`claimwatch.daemon.Daemon`'s ``__init__``: declared once here."""

    options: Any
    sessions: Any
    engine: Any
    holder: Any
    scheduler: Any
    topics: dict[str, LoadedTopic]
    config_errors: dict[str, str]
    skipped: dict[str, int]
    _lock: threading.RLock
    _stopping: bool


class Scheduling(DaemonState):
    """The daemon's topics and jobs (a part of :class:`claimwatch.daemon.Daemon`).

    Uses the daemon's ``options``, ``engine``, ``_lock``, ``_stopping`` and its
    supervisor's :meth:`begin` / :meth:`submit`.
    """

    begin: Callable[..., Any]
    submit: Callable[..., Any]
    redis_url: str | None
    redis_prefix: str

    # -- topics ----------------------------------------------------------------------------------

    def _load(self, path: str) -> LoadedTopic:
        stamp = _stamp(path)
        topic = load_topic(path)
        for index, source in enumerate(topic.sources):
            try:
                source_timeout(source, self.options.crawl_timeout)
            except ValueError as exc:
                raise ConfigError(path, f"sources[{index}].timeout", str(exc)) from None
        return LoadedTopic(path=path, topic=topic, stamp=stamp)

    def load_topics(self) -> None:
        """Load every topic file; raises :class:`DaemonError` (startup: fail fast)."""
        loaded: dict[str, LoadedTopic] = {}
        names: dict[str, str] = {}
        for file in self.options.topic_files:
            path = str(Path(file).resolve())
            try:
                item = self._load(path)
            except ConfigError as exc:
                raise DaemonError(str(exc)) from exc
            if item.topic.name in names and names[item.topic.name] != path:
                raise DaemonError(f"{path}: topic name {item.topic.name!r} is also used by "
                                  f"{names[item.topic.name]}; topic names must be unique")
            names[item.topic.name] = path
            loaded[path] = item
        self.topics = loaded

    def reload(self, force: bool = False) -> None:
        """Re-read changed topic files (every one with ``force``, as on SIGHUP).

        A file that has an error now keeps its previous version, and the error is
        reported in the log and the health endpoint until the file is fixed.
        """
        changed = False
        with self._lock:
            for path, old in list(self.topics.items()):
                if not force and _stamp(path) == old.stamp:
                    continue
                try:
                    item = self._load(path)
                except ConfigError as exc:
                    if self.config_errors.get(path) != str(exc):
                        logger.error("%s; keeping the topic's previous schedules (its crawls "
                                     "fail until the file is fixed)", exc)
                    self.config_errors[path] = str(exc)
                    old.stamp = _stamp(path)  # report once per change
                    continue
                other = next((p for p, t in self.topics.items()
                              if p != path and t.topic.name == item.topic.name), None)
                if other:
                    message = (f"{path}: topic name {item.topic.name!r} is also used by {other};"
                               " keeping the topic's previous version")
                    logger.error("%s", message)
                    self.config_errors[path] = message
                    old.stamp = item.stamp
                    continue
                self.config_errors.pop(path, None)
                self.topics[path] = item
                changed = True
                logger.info("reloaded topic %s from %s", item.topic.name, path)
            if changed:
                self.sync_jobs()
                self._update_review_topics()

    def _topics_changed(self) -> bool:
        return any(_stamp(path) != item.stamp for path, item in self.topics.items())

    def find(self, topic_name: str | None, source_name: str | None
             ) -> tuple[LoadedTopic, list[Source]]:
        with self._lock:
            topics = list(self.topics.values())
        if topic_name is None:
            if len(topics) != 1:
                names = ", ".join(sorted(t.topic.name for t in topics))
                raise HTTPError(400, f"name the topic: one of {names}")
            item = topics[0]
        else:
            found = [t for t in topics if t.topic.name == topic_name]
            if not found:
                names = ", ".join(sorted(t.topic.name for t in topics))
                raise HTTPError(404, f"no topic {topic_name!r} (topics: {names})")
            item = found[0]
        if source_name is None:
            return item, list(item.topic.sources)
        try:
            return item, [item.topic.source(source_name)]
        except KeyError as exc:
            raise HTTPError(404, str(exc.args[0])) from None

    # -- scheduling ------------------------------------------------------------------------------

    def _make_scheduler(self) -> Any:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.engine, tablename=JOBS_TABLE)},
            executors={"default": ThreadPoolExecutor(max_workers=self.options.max_parallel)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(int(self.options.misfire_grace.total_seconds()), 1),
            },
        )

        def skipped(event: Any) -> None:
            with self._lock:
                self.skipped[event.job_id] = self.skipped.get(event.job_id, 0) + 1
            why = "missed" if event.code == EVENT_JOB_MISSED else "still running"
            logger.debug("scheduled crawl %s skipped (%s)", event.job_id, why)

        scheduler.add_listener(skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        return scheduler

    def desired_jobs(self) -> dict[str, tuple[str, list[str]]]:
        jobs: dict[str, tuple[str, list[str]]] = {}
        for path, item in self.topics.items():
            for source in item.topic.sources:
                if source.schedule:
                    jobs[f"{item.topic.name}/{source.name}"] = (source.schedule,
                                                                [path, source.name])
        return jobs

    def email_job_args(self) -> list[Any] | None:
        """Arguments of :func:`scheduled_digest` (None without ``--email-schedule``)."""
        if not self.options.email_schedule:
            return None
        names = sorted({item.topic.name for item in self.topics.values()})
        # How long after its fetch an article may be stored: a crawl's longest run.
        longest = max([self.options.crawl_timeout] + [
            source_timeout(source, self.options.crawl_timeout)
            for item in self.topics.values() for source in item.topic.sources])
        lookback = longest + self.options.kill_grace + timedelta(minutes=1)
        return [self.options.db_url, names, self.options.email_since, self.options.email_empty,
                lookback.total_seconds()]

    def extra_jobs(self) -> list[ExtraJob]:
        """The jobs that are not a source's crawl. Another kind of job is one more entry."""
        jobs: list[ExtraJob] = []
        email = self.email_job_args()
        if email is not None and self.options.email_schedule:
            jobs.append(ExtraJob(EMAIL_JOB_ID, EMAIL_JOB_FUNC, self.options.email_schedule,
                                 tuple(email), "digest email"))
        every = f"every {int(revisit_interval(self.options.settings).total_seconds())}s"
        for path, item in sorted(self.topics.items()):
            if any(revisit_window(source) is not None for source in item.topic.sources):
                jobs.append(ExtraJob(REVISIT_JOB_PREFIX + item.topic.name, REVISIT_JOB_FUNC,
                                     every, (path,), f"revisits of {item.topic.name}"))
        return jobs

    def sync_jobs(self) -> None:
        """Make the job store match the topic files. Unchanged jobs keep their next run."""
        if self.scheduler is None:
            return
        with self._lock:
            desired = self.desired_jobs()
            extra = {job.id: job for job in self.extra_jobs()}
            existing = {job.id: job for job in self.scheduler.get_jobs()}
            for job_id in existing.keys() - desired.keys() - extra.keys():
                self.scheduler.remove_job(job_id)
                logger.info("unscheduled %s", job_id)
            for job_id, item in extra.items():
                if self._add_job(existing.get(job_id), job_id, item.func, item.schedule,
                                 list(item.args), item.name):
                    logger.info("scheduled %s: %s", item.name, item.schedule)
            for job_id, (schedule, args) in desired.items():
                if self._add_job(existing.get(job_id), job_id, JOB_FUNC, schedule, args, job_id):
                    logger.info("scheduled %s: %s", job_id, schedule)

    def _add_job(self, job: Any, job_id: str, func: str, schedule: str, args: list[Any],
                 name: str) -> bool:
        """Add or replace one job unless it is already there as asked (False then)."""
        trigger = schedule_trigger(schedule)
        if (job is not None and str(job.trigger) == str(trigger) and list(job.args) == args
                and job.func_ref == func):
            return False
        self.scheduler.add_job(func, trigger, args=args, id=job_id, name=name,
                               replace_existing=True)
        return True

    # -- what a job does -------------------------------------------------------------------------

    def run_scheduled(self, topic_path: str, source_name: str) -> None:
        """Body of a scheduled job (runs in the scheduler's thread pool). Never raises."""
        try:
            if self._stopping:
                return
            with self._lock:
                item = self.topics.get(topic_path)
            if item is None or source_name not in {s.name for s in item.topic.sources}:
                logger.warning("scheduled crawl of %s in %s: no such source any more",
                               source_name, topic_path)
                return
            source = item.topic.source(source_name)
            if self.redis_url:  # the workers crawl it
                from crawler.distributed import enqueue_crawl

                queued = enqueue_crawl(self.redis_url, topic_path, source_name,
                                       trigger="schedule", prefix=self.redis_prefix)
                logger.info("scheduled crawl of %s/%s %s job %s", item.topic.name, source_name,
                            "queued as" if queued.created else "already queued or running as",
                            queued.job.id)
                return
            run = self._begin_or_skip(item, source, "schedule",
                                      f"{item.topic.name}/{source_name}")
            if run is not None:
                self.submit(run)
        except Exception:  # noqa: BLE001 - a job must never take the scheduler down
            logger.exception("scheduled crawl of %s in %s failed", source_name, topic_path)

    def run_revisits(self, topic_path: str) -> None:
        """Body of a topic's revisit job: a revisit run of each of its sources with
        revisits on, queued together (one batch). Never raises."""
        runs: list[Any] = []
        try:
            if self._stopping:
                return
            with self._lock:
                item = self.topics.get(topic_path)
            if item is None:
                logger.warning("revisits of %s: no such topic file any more", topic_path)
                return
            for source in item.topic.sources:
                if revisit_window(source) is not None:
                    run = self._begin_or_skip(item, source, REVISIT_TRIGGER,
                                              REVISIT_JOB_PREFIX + item.topic.name)
                    runs += [run] if run is not None else []
        except Exception:  # noqa: BLE001 - a job must never take the scheduler down
            logger.exception("revisits of %s failed", topic_path)
        finally:
            if runs:  # begun: their leases and rows are settled by the supervisor
                self.submit(*runs)

    def _begin_or_skip(self, item: LoadedTopic, source: Source, trigger: str,
                       job_id: str) -> Any:
        """:meth:`begin` the run, or None when the source is busy (counted as a skip)."""
        try:
            return self.begin(item, source, trigger)
        except LeaseBusy as exc:
            with self._lock:
                self.skipped[job_id] = self.skipped.get(job_id, 0) + 1
            logger.info("%s skipped: %s", "revisit" if trigger == REVISIT_TRIGGER
                        else "scheduled crawl", exc)
            return None

    def trigger(self, topic: str | None, source: str | None) -> dict[str, Any]:
        """Start crawls now (the API's ``POST /api/crawl``); busy sources are refused."""
        if self._stopping:
            raise HTTPError(503, "the daemon is shutting down")
        item, sources = self.find(topic, source)
        started: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        runs = []
        for src in sources:
            try:
                run = self.begin(item, src, "manual")
            except LeaseBusy as exc:
                refused.append({"source": src.name, "reason": str(exc),
                                "holder": exc.lease.describe()})
                continue
            runs.append(run)
            started.append({"id": run.run_id, "source": src.name, "status": "running",
                            "url": f"/api/runs/{run.run_id}"})
        self.submit(*runs)  # together: one batch when a crawl process is free
        result: dict[str, Any] = {"topic": item.topic.name, "runs": started, "refused": refused}
        if refused and not started:
            result["error"] = refused[0]["reason"]
        return result

