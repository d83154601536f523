"""The daemon: scheduled crawls that never silently stop, manual triggers, crash safety.

- APScheduler 3 with its job store in the project database (table ``apscheduler_jobs``):
  one job per scheduled source, coalesced, with a misfire grace time and at most one
  instance at a time. A job is the module-level :func:`scheduled_crawl` with plain
  arguments (topic file, source name), as the job store pickles both.
- Each crawl runs in its own subprocess (``python -m crawler.run``), as scrapyd does, so
  a crash, hang or leak in one crawl never harms the daemon; a crawl that outlives its
  timeout (the source's ``timeout`` option, else ``--crawl-timeout``) is stopped:
  SIGTERM, then SIGKILL.
- Every crawl takes the source's lease (``storage/leases.py``) first, the same lease
  ``claimwatch crawl`` takes, so a source is never crawled twice at once; its
  ``crawl_runs`` row is written before the subprocess starts and completed after.
- On start, runs left ``running`` by a killed daemon are marked ``interrupted``. One
  daemon per database (``daemon_locks``, with a heartbeat): a second one refuses to start.
- Topic files are re-read on SIGHUP or when they change. SIGTERM/SIGINT stop scheduling,
  give running crawls ``--grace`` to finish, then stop them; the daemon exits 0.
- With ``--email-schedule``, one more job in the same job store, the module-level
  :func:`scheduled_digest` (plain arguments: database URL, topic names, window), emails
  each topic's digest (:func:`email_digests`): it first flushes the outbox, where a
  digest that could not be sent waits for the next run; every digest is recorded in
  ``digest_deliveries``, which also gives the next ``since-last`` window.

Only :class:`Daemon` is stateful; :func:`run_daemon` is what the CLI calls.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from claimwatch.health import AlarmPolicy, recent_runs, source_alarm
from claimwatch.web import ApiServer, HTTPError, iso
from config.cron import is_interval, parse_duration, parse_interval, schedule_trigger
from config.loader import ConfigError, load_topic
from config.models import Source, Topic
from storage import leases
from storage.db import describe, make_engine, session_factory
from storage.leases import Holder, LeaseBusy, LeaseKeeper
from storage.models import CrawlRun, DigestDelivery, SourceState, utcnow
from storage.repository import Store
from storage.schema import SchemaError, ensure_schema

logger = logging.getLogger(__name__)

JOB_FUNC = "claimwatch.daemon:scheduled_crawl"
JOBS_TABLE = "apscheduler_jobs"
EMAIL_JOB_ID = "email-digest"  # no "/": never a topic/source job's id
EMAIL_JOB_FUNC = "claimwatch.daemon:scheduled_digest"
SINCE_LAST = "since-last"
FIRST_DIGEST_WINDOW = timedelta(hours=24)  # a since-last digest with no earlier one

# The running daemon, for scheduled_crawl (APScheduler jobs are plain function references).
_ACTIVE: Daemon | None = None


class DaemonError(RuntimeError):
    """The daemon cannot start (lock held, bad topic file, address in use)."""


def scheduled_crawl(topic_path: str, source: str) -> None:
    """The APScheduler job for one scheduled source: crawl it now, in a subprocess."""
    daemon = _ACTIVE
    if daemon is None:
        logger.error("scheduled crawl of %s in %s fired with no daemon running", source, topic_path)
        return
    daemon.run_scheduled(topic_path, source)


# --------------------------------------------------------------------------- digest emails


def parse_email_since(value: str) -> str:
    """``since-last`` or a duration (``24h``, ``90m``, ``7d``, ``2w``), normalized.

    Raises ``ValueError`` with a one-line reason.
    """
    import re

    text = value.strip().lower()
    if text in (SINCE_LAST, "last"):
        return SINCE_LAST
    match = re.fullmatch(r"(\d+)\s*([mhdw])", text)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"expected {SINCE_LAST} or a duration such as 24h, 90m or 7d, "
                         f"got {value!r}")
    return f"{int(match.group(1))}{match.group(2)}"


def scheduled_digest(db_url: str, topics: Sequence[str], since: str = SINCE_LAST,
                     send_empty: bool = False, lookback_seconds: float = 3600) -> None:
    """The APScheduler job of ``--email-schedule``: email each topic's digest. Never raises.

    SMTP settings (``CLAIMWATCH_SMTP_*``) and the outbox (``CLAIMWATCH_OUTBOX``) come
    from the environment, so no password is pickled into the job store.
    """
    from claimwatch.digest.mail import MailConfigError, Outbox, SmtpSettings, outbox_dir

    try:
        settings = SmtpSettings.from_env()
    except MailConfigError as exc:
        logger.error("scheduled digest not emailed: %s", exc)
        return
    try:
        engine = make_engine(db_url)
    except Exception:  # noqa: BLE001 - a job must never take the scheduler down
        logger.exception("scheduled digest not emailed: cannot open the database")
        return
    try:
        email_digests(session_factory(engine), list(topics), settings, Outbox(outbox_dir()),
                      since=since, send_empty=send_empty,
                      lookback=timedelta(seconds=lookback_seconds))
    except Exception:  # noqa: BLE001
        logger.exception("scheduled digest email failed; it is tried again on the next run")
    finally:
        engine.dispose()


@dataclass
class DigestOutcome:
    """One topic's digest in one run of :func:`email_digests`."""

    topic: str
    status: str  # sent | queued | failed | empty (not mailed)
    articles: int
    since: datetime
    error: str | None = None
    message_id: str | None = None


def digest_window(session: Any, topic: str, since: str, *, lookback: timedelta,
                  now: datetime) -> tuple[datetime, datetime, set[int]]:
    """``(start, query_from, already_mailed)`` of the next digest of ``topic``.

    ``since-last``: it starts where the topic's last digest that was sent or kept ended
    (24 hours back for the first). Articles are stored some time after they are
    fetched (``fetched_at``), up to a crawl's length, so articles fetched ``lookback``
    before the start are looked at too, less those an earlier digest already had.
    A duration (``24h``): that long before ``now``, whatever was mailed before.
    """
    from claimwatch.digest import parse_since

    if since != SINCE_LAST:
        start = parse_since(since, now)
        return start, start, set()
    kept = ("sent", "queued", "gone")
    last = session.scalar(select(func.max(DigestDelivery.until))
                          .where(DigestDelivery.topic == topic, DigestDelivery.status.in_(kept)))
    if last is None:
        start = now - FIRST_DIGEST_WINDOW
        return start, start, set()
    query_from = last - lookback
    mailed: set[int] = set()
    for ids in session.scalars(select(DigestDelivery.article_ids).where(
            DigestDelivery.topic == topic, DigestDelivery.status.in_(kept),
            DigestDelivery.until >= query_from)):
        mailed.update(int(i) for i in ids or ())
    return last, query_from, mailed


def _reconcile_outbox(sessions: Any, outbox: Any, result: Any, now: datetime) -> None:
    """Bring ``queued`` rows up to date after the outbox was flushed."""
    flushed = [m for m in result.flushed if m]
    pending: set[str] = set()
    for path in outbox.pending():
        try:
            pending.add(str(outbox.load(path)["Message-ID"] or ""))
        except (OSError, ValueError):
            continue
    with sessions.begin() as session:
        queued = list(session.scalars(select(DigestDelivery)
                                      .where(DigestDelivery.status == "queued")))
        for row in queued:
            if row.message_id in flushed:
                row.status, row.sent_at, row.attempts = "sent", now, row.attempts + 1
                logger.info("digest of %s from %s sent from the outbox (attempt %d)",
                            row.topic, iso(row.created), row.attempts)
            elif row.message_id not in pending:
                row.status = "gone"
                logger.warning("digest of %s from %s left the outbox without this daemon "
                               "sending it (sent by `claimwatch digest --email`, or removed)",
                               row.topic, iso(row.created))
            elif result.flush_error:
                row.attempts += 1
                row.error, row.error_at = result.flush_error, now


def email_digests(sessions: Any, topics: Sequence[str], settings: Any, outbox: Any, *,
                  since: str = SINCE_LAST, send_empty: bool = False,
                  lookback: timedelta = timedelta(hours=1), now: datetime | None = None,
                  smtp_factory: Any = None) -> list[DigestOutcome]:
    """Flush the outbox, then email each topic's digest and record it in
    ``digest_deliveries``. An empty digest is not mailed unless ``send_empty``.

    A digest that cannot be sent waits in the outbox (``queued``) and goes out with the
    next run's flush; the error is logged and recorded. ``settings`` and ``outbox`` are
    :class:`claimwatch.digest.mail.SmtpSettings` and :class:`claimwatch.digest.mail.Outbox`.
    """
    from claimwatch.digest.mail import deliver_digest

    now = now or utcnow()
    flush = deliver_digest(None, settings, outbox, smtp_factory=smtp_factory)
    if flush.flushed:
        logger.info("sent %d digest(s) that waited in the outbox %s", len(flush.flushed),
                    outbox.directory)
    if flush.waiting:
        logger.warning("%d digest(s) still wait in the outbox %s: %s", flush.waiting,
                       outbox.directory, flush.flush_error or "another process is sending them")
    _reconcile_outbox(sessions, outbox, flush, now)
    outcomes = []
    for topic in topics:
        try:
            outcome = _email_topic(sessions, topic, settings, outbox, since=since,
                                   send_empty=send_empty, lookback=lookback, now=now,
                                   smtp_factory=smtp_factory)
        except Exception as exc:  # noqa: BLE001 - the other topics still get theirs
            logger.exception("digest of %s not emailed", topic)
            outcome = DigestOutcome(topic, "failed", 0, now, f"{type(exc).__name__}: {exc}")
        outcomes.append(outcome)
    return outcomes


def _email_topic(sessions: Any, topic: str, settings: Any, outbox: Any, *, since: str,
                 send_empty: bool, lookback: timedelta, now: datetime,
                 smtp_factory: Any) -> DigestOutcome:
    from claimwatch.digest import build_digest
    from claimwatch.digest.mail import MailSendError, deliver_digest

    with sessions() as session:
        start, query_from, mailed = digest_window(session, topic, since, lookback=lookback,
                                                  now=now)
        digest = build_digest(session, topic=topic, since=query_from, now=now)
        if os.environ.get("CLAIMWATCH_BASE_URL"):  # items link to their review pages
            digest["review_base"] = os.environ["CLAIMWATCH_BASE_URL"]
    digest["since"] = iso(start)
    digest["articles"] = [a for a in digest["articles"] if a["id"] not in mailed]
    ids = [int(a["id"]) for a in digest["articles"]]
    if not ids and not send_empty:
        logger.info("digest of %s since %s is empty: not emailed", topic, iso(start))
        return DigestOutcome(topic, "empty", 0, start)
    error: str | None = None
    try:
        result = deliver_digest(digest, settings, outbox, flush=False,
                                smtp_factory=smtp_factory)
    except MailSendError as exc:  # neither sent nor kept: lost; the next window covers it
        status, error = "failed", str(exc)
        message_id = str(exc.email["Message-ID"]) if exc.email is not None else None
    else:
        status = "sent" if result.sent else "queued"
        error, message_id = result.error, result.message_id
    with sessions.begin() as session:
        session.add(DigestDelivery(
            topic=topic, since=start, until=now, article_ids=ids, status=status,
            message_id=message_id, created=now, sent_at=now if status == "sent" else None,
            attempts=1, error=error, error_at=now if error else None))
    if status == "sent":
        logger.info("digest of %s (%d article(s) since %s) sent to %s", topic, len(ids),
                    iso(start), ", ".join(settings.recipients))
    elif status == "queued":
        logger.warning("digest of %s not sent, kept in the outbox %s for the next run: %s",
                       topic, outbox.directory, error)
    else:
        logger.error("digest of %s not sent and not kept: %s", topic, error)
    return DigestOutcome(topic, status, len(ids), start, error, message_id)


@dataclass
class DaemonOptions:
    topic_files: Sequence[Path]
    db_url: str
    listen: tuple[str, int] | None = ("127.0.0.1", 8750)
    settings: Mapping[str, str] = field(default_factory=dict)  # --set, passed to every crawl
    crawl_timeout: timedelta = timedelta(hours=1)  # unless the source sets `timeout`
    grace: timedelta = timedelta(seconds=30)  # for running crawls at shutdown
    kill_grace: timedelta = timedelta(seconds=10)  # between SIGTERM and SIGKILL of a crawl
    misfire_grace: timedelta = timedelta(minutes=5)
    max_parallel: int = 4  # scheduled crawls at once
    lease_ttl: timedelta | None = None  # None: CLAIMWATCH_LEASE_TTL
    watch_interval: float = 2.0  # seconds between checks of the topic files
    crawl_verbose: int = 0  # -v flags for the crawl subprocesses
    token: str | None = None  # API/review page access token (needed off loopback)
    python: str = sys.executable
    email_schedule: str | None = None  # cron or "every 1d": email the digest (SMTP from env)
    email_since: str = SINCE_LAST  # or a duration such as 24h
    email_empty: bool = False  # also mail a digest with nothing in it


@dataclass
class LoadedTopic:
    path: str
    topic: Topic
    stamp: tuple[int, int]  # (mtime_ns, size) when loaded


@dataclass
class ActiveRun:
    run_id: int
    topic: str
    source: str
    trigger: str
    topic_path: str
    timeout: float
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=utcnow)
    pid: int | None = None
    stop_reason: str | None = None  # timeout | shutdown | lease_lost
    term_sent: float | None = None
    kill_sent: bool = False


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


def source_timeout(source: Source, default: timedelta) -> timedelta:
    """The source's ``timeout`` option (``90``, ``90s``, ``10m``, ``1h``) or ``default``."""
    value = source.options.get("timeout")
    if value is None:
        return default
    timeout = parse_duration(value)  # type: ignore[arg-type]
    if timeout <= timedelta(0):
        raise ValueError("the crawl timeout must be positive")
    return timeout


def _project_root() -> str | None:
    spec = importlib.util.find_spec("crawler")
    if spec is None or not spec.origin:
        return None
    return str(Path(spec.origin).resolve().parent.parent)


class Daemon:
    """Schedules and supervises crawls of the topic files' sources. See the module doc."""

    def __init__(self, options: DaemonOptions) -> None:
        from crawler.settings import CLAIMWATCH_LEASE_TTL

        self.options = options
        self.db = describe(options.db_url)
        self.engine = make_engine(options.db_url)
        try:
            # A service never migrates a database holding data behind the operator's back.
            ensure_schema(self.engine)
        except SchemaError as exc:
            self.engine.dispose()
            raise DaemonError(str(exc)) from exc
        self.sessions = session_factory(self.engine)
        self.holder = Holder.new("daemon")
        ttl = options.settings.get("CLAIMWATCH_LEASE_TTL", CLAIMWATCH_LEASE_TTL)
        self.ttl = options.lease_ttl or timedelta(seconds=float(ttl))
        self.policy = AlarmPolicy.from_settings(options.settings)
        # Distributed: with a Redis URL, scheduled crawls are queued for `claimwatch worker`s
        # (crawler/distributed.py) instead of run here.
        # (As crawler.distributed.redis_url_from_env, without importing Scrapy into the daemon:
        # its crawls run in subprocesses, and its memory should stay small.)
        self.redis_url = (options.settings.get("CLAIMWATCH_REDIS_URL")
                          or os.environ.get("CLAIMWATCH_REDIS_URL") or None)
        self.redis_prefix = str(options.settings.get("CLAIMWATCH_REDIS_PREFIX")
                                or os.environ.get("CLAIMWATCH_REDIS_PREFIX") or "claimwatch")
        self.keeper = LeaseKeeper(self.sessions, self.holder, self.ttl, on_lost=self._lease_lost)
        self.topics: dict[str, LoadedTopic] = {}
        self.config_errors: dict[str, str] = {}
        self.skipped: dict[str, int] = {}  # job id -> fires skipped (busy, missed)
        self.started_at = utcnow()
        self.scheduler: Any = None
        self.api: ApiServer | None = None
        self.app: Any = None
        self.review: Any = None  # the web app (claimwatch/web/): pages and JSON API
        self.exit_code = 0
        self._active: dict[int, ActiveRun] = {}
        self._threads: set[threading.Thread] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._force = threading.Event()
        self._reload = threading.Event()
        self._stopping = False
        self._locked = False
        self._child_env = dict(os.environ)
        root = _project_root()
        if root:
            path = self._child_env.get("PYTHONPATH")
            self._child_env["PYTHONPATH"] = root + (os.pathsep + path if path else "")

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

    def check_email(self) -> None:
        """With ``--email-schedule``: a valid schedule and SMTP settings, or DaemonError."""
        if not self.options.email_schedule:
            return
        from claimwatch.digest.mail import MailConfigError, SmtpSettings

        try:
            schedule_trigger(self.options.email_schedule)
        except ValueError as exc:
            raise DaemonError(f"--email-schedule {self.options.email_schedule!r}: {exc}"
                              ) from exc
        try:
            parse_email_since(self.options.email_since)
        except ValueError as exc:
            raise DaemonError(f"--email-since: {exc}") from exc
        try:
            SmtpSettings.from_env()
        except MailConfigError as exc:
            raise DaemonError(f"--email-schedule needs the SMTP settings: {exc}") from exc

    def sync_jobs(self) -> None:
        """Make the job store match the topic files. Unchanged jobs keep their next run."""
        if self.scheduler is None:
            return
        with self._lock:
            desired = self.desired_jobs()
            email = self.email_job_args()
            existing = {job.id: job for job in self.scheduler.get_jobs()}
            keep = desired.keys() | ({EMAIL_JOB_ID} if email is not None else set())
            for job_id in existing.keys() - keep:
                self.scheduler.remove_job(job_id)
                logger.info("unscheduled %s", job_id)
            if email is not None and self.options.email_schedule:
                trigger = schedule_trigger(self.options.email_schedule)
                job = existing.get(EMAIL_JOB_ID)
                if not (job is not None and str(job.trigger) == str(trigger)
                        and list(job.args) == email and job.func_ref == EMAIL_JOB_FUNC):
                    self.scheduler.add_job(scheduled_digest, trigger, args=email,
                                           id=EMAIL_JOB_ID, name="digest email",
                                           replace_existing=True)
                    logger.info("scheduled the digest email of %s: %s (%s)",
                                ", ".join(email[1]), self.options.email_schedule,
                                self.options.email_since)
            for job_id, (schedule, args) in desired.items():
                trigger = schedule_trigger(schedule)
                job = existing.get(job_id)
                if (job is not None and str(job.trigger) == str(trigger)
                        and list(job.args) == args and job.func_ref == JOB_FUNC):
                    continue
                self.scheduler.add_job(
                    scheduled_crawl, trigger, args=args, id=job_id, name=job_id,
                    replace_existing=True,
                )
                logger.info("scheduled %s: %s", job_id, schedule)

    # -- running crawls --------------------------------------------------------------------------

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
            try:
                run = self.begin(item, source, "schedule")
            except LeaseBusy as exc:
                job_id = f"{item.topic.name}/{source_name}"
                with self._lock:
                    self.skipped[job_id] = self.skipped.get(job_id, 0) + 1
                logger.info("scheduled crawl skipped: %s", exc)
                return
            self.supervise(run)
        except Exception:  # noqa: BLE001 - a job must never take the scheduler down
            logger.exception("scheduled crawl of %s in %s failed", source_name, topic_path)

    def trigger(self, topic: str | None, source: str | None) -> dict[str, Any]:
        """Start crawls now (the API's ``POST /api/crawl``); busy sources are refused."""
        if self._stopping:
            raise HTTPError(503, "the daemon is shutting down")
        item, sources = self.find(topic, source)
        started: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for src in sources:
            try:
                run = self.begin(item, src, "manual")
            except LeaseBusy as exc:
                refused.append({"source": src.name, "reason": str(exc),
                                "holder": exc.lease.describe()})
                continue
            thread = threading.Thread(target=self._manual, args=(run,), daemon=True,
                                      name=f"claimwatch-manual-{run.run_id}")
            with self._lock:
                self._threads.add(thread)
            thread.start()
            started.append({"id": run.run_id, "source": src.name, "status": "running",
                            "url": f"/api/runs/{run.run_id}"})
        result: dict[str, Any] = {"topic": item.topic.name, "runs": started, "refused": refused}
        if refused and not started:
            result["error"] = refused[0]["reason"]
        return result

    def _manual(self, run: ActiveRun) -> None:
        try:
            self.supervise(run)
        except Exception:  # noqa: BLE001
            logger.exception("manual crawl run %s failed", run.run_id)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def begin(self, item: LoadedTopic, source: Source, trigger: str) -> ActiveRun:
        """Take the source's lease and write its ``running`` row. Raises LeaseBusy."""
        topic = item.topic.name
        leases.acquire(self.sessions, topic, source.name, self.holder, self.ttl)
        try:
            self.keeper.add(topic, source.name)
            with self.sessions.begin() as session:
                row = CrawlRun(topic=topic, source=source.name, trigger=trigger,
                               started=utcnow(), status="running", counts={},
                               holder=self.holder.id)
                session.add(row)
                session.flush()
                run_id = int(row.id)
        except BaseException:
            self.keeper.discard(topic, source.name)
            leases.release(self.sessions, topic, source.name, self.holder)
            raise
        timeout = source_timeout(source, self.options.crawl_timeout).total_seconds()
        run = ActiveRun(run_id=run_id, topic=topic, source=source.name, trigger=trigger,
                        topic_path=item.path, timeout=timeout)
        with self._lock:
            self._active[run_id] = run
        logger.info("crawl run %s started: %s/%s (%s)", run_id, topic, source.name, trigger)
        return run

    def _command(self, run: ActiveRun) -> list[str]:
        command = [self.options.python, "-m", "crawler.run", run.topic_path,
                   "--source", run.source, "--db", self.options.db_url,
                   "--trigger", run.trigger, "--run-id", str(run.run_id),
                   "--parent-pid", str(os.getpid())]
        for name, value in self.options.settings.items():
            command += ["--set", f"{name}={value}"]
        command += ["-v"] * self.options.crawl_verbose
        return command

    def supervise(self, run: ActiveRun) -> None:
        """Run the crawl subprocess to its end (or stop it), then record the outcome."""
        code: int | None = None
        try:
            try:
                proc = subprocess.Popen(
                    self._command(run), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    env=self._child_env, start_new_session=True, close_fds=True,
                )
            except OSError as exc:
                logger.error("crawl run %s: could not start the crawl process: %s",
                             run.run_id, exc)
            else:
                run.pid = proc.pid
                self._set_pid(run)
                code = self._wait(run, proc)
        finally:
            try:
                self._settle(run, code)
            finally:
                self.keeper.discard(run.topic, run.source)
                try:
                    leases.release(self.sessions, run.topic, run.source, self.holder)
                except Exception:  # noqa: BLE001 - it expires anyway
                    logger.exception("could not release the lease on %s/%s",
                                     run.topic, run.source)
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

    def _set_pid(self, run: ActiveRun) -> None:
        try:
            with self.sessions.begin() as session:
                session.execute(update(CrawlRun).where(CrawlRun.id == run.run_id)
                                .values(pid=run.pid))
        except Exception:  # noqa: BLE001 - the crawl goes on; only the pid is missing
            logger.exception("crawl run %s: could not record its pid", run.run_id)

    def _signal(self, proc: subprocess.Popen[bytes], signum: int) -> None:
        try:
            os.killpg(proc.pid, signum)  # the crawl's own session: it and its children
        except (ProcessLookupError, PermissionError):
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass

    def _wait(self, run: ActiveRun, proc: subprocess.Popen[bytes]) -> int:
        kill_grace = self.options.kill_grace.total_seconds()
        while True:
            try:
                return proc.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if run.stop_reason is None:
                if now - run.started > run.timeout:
                    run.stop_reason = "timeout"
                    logger.warning("crawl run %s (%s/%s) timed out after %gs: stopping it",
                                   run.run_id, run.topic, run.source, run.timeout)
                elif self._force.is_set():
                    run.stop_reason = "shutdown"
            if run.stop_reason and run.term_sent is None:
                run.term_sent = now
                self._signal(proc, signal.SIGTERM)
            elif run.term_sent is not None and not run.kill_sent \
                    and now - run.term_sent > kill_grace:
                run.kill_sent = True
                logger.warning("crawl run %s did not stop within %gs of SIGTERM: SIGKILL",
                               run.run_id, kill_grace)
                self._signal(proc, signal.SIGKILL)

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
            values: dict[str, Any] = {"exit_code": code}
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
            session.execute(update(CrawlRun).where(CrawlRun.id == run.run_id).values(**values))
            status = values.get("status", before)
            error = values.get("error", row.error)
            counts = dict(row.counts or {})
        if count_failure:
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
        """Alerts of the topic's channels (digest/notify.py) after each crawl: never raises."""
        from claimwatch.digest.notify import notify_after_crawl

        with self._lock:
            loaded = next((item for item in self.topics.values()
                           if item.topic.name == topic_name), None)
        if loaded is not None and loaded.topic.notify:
            for report in notify_after_crawl(self.sessions, loaded.topic):
                if report.error:
                    logger.warning("notify %s: %s", topic_name, report.line())

    # -- health ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The daemon's state for ``/api/health``; a database outage is reported, not
        raised (the scheduler retries its job store and the crawls theirs meanwhile)."""
        from sqlalchemy.exc import DBAPIError

        try:
            data = self._health()
        except DBAPIError as exc:
            first = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
            logger.warning("health: the database %s cannot be read: %s", self.db, first)
            with self._lock:
                active = list(self._active.values())
            return {
                "status": "stopping" if self._stopping else "alarm",
                "database": {"ok": False, "db": self.db, "error": first},
                "daemon": {"pid": os.getpid(), "host": self.holder.host, "db": self.db,
                           "started": iso(self.started_at),
                           "listen": self.api.address if self.api else None},
                "running": [{"run_id": run.run_id, "topic": run.topic, "source": run.source,
                             "trigger": run.trigger, "started": iso(run.started_at),
                             "pid": run.pid} for run in sorted(active, key=lambda r: r.run_id)],
                "alarms": [{"kind": "database", "error": first}],
            }
        data["database"] = {"ok": True, "db": self.db}
        return data

    def _health(self) -> dict[str, Any]:
        now = utcnow()
        with self._lock:
            topics = list(self.topics.values())
            active = list(self._active.values())
            errors = dict(self.config_errors)
            skipped = dict(self.skipped)
        jobs: list[dict[str, Any]] = []
        email_job: dict[str, Any] | None = None
        late: list[str] = []
        running_scheduler = False
        if self.scheduler is not None:
            from apscheduler.schedulers.base import STATE_RUNNING

            running_scheduler = self.scheduler.state == STATE_RUNNING
            for job in self.scheduler.get_jobs():
                next_run = job.next_run_time
                if job.id == EMAIL_JOB_ID:
                    email_job = {"trigger": str(job.trigger), "next_run": iso(next_run),
                                 "skipped": skipped.get(job.id, 0)}
                else:
                    jobs.append({"id": job.id, "topic": job.id.split("/", 1)[0],
                                 "source": job.args[1], "trigger": str(job.trigger),
                                 "next_run": iso(next_run), "skipped": skipped.get(job.id, 0)})
                if next_run is not None and running_scheduler and \
                        now - next_run > self.options.misfire_grace + timedelta(seconds=30):
                    late.append(job.id)
        busy = {(run.topic, run.source) for run in active}
        sources: list[dict[str, Any]] = []
        alarms: list[dict[str, Any]] = []
        with self.sessions() as session:
            states = {(s.topic, s.source): s for s in session.scalars(select(SourceState))}
            for item in topics:
                for source in item.topic.sources:
                    state = states.get((item.topic.name, source.name))
                    every = (parse_interval(source.schedule)
                             if source.schedule and is_interval(source.schedule) else None)
                    alarm = source_alarm(
                        consecutive_failures=state.consecutive_failures if state else 0,
                        last_error=state.last_error if state else None,
                        runs=recent_runs(session, item.topic.name, source.name),
                        now=now, policy=self.policy, scheduled=bool(source.schedule),
                        every=every,
                    )
                    entry = {
                        "topic": item.topic.name, "source": source.name,
                        "schedule": source.schedule,
                        "running": (item.topic.name, source.name) in busy,
                        "last_attempt": iso(state.last_attempt) if state else None,
                        "last_success": iso(state.last_success) if state else None,
                        "last_new_article": iso(state.last_new_article) if state else None,
                        "last_error": state.last_error if state else None,
                        "consecutive_failures": state.consecutive_failures if state else 0,
                        "alarm": alarm.as_dict() if alarm else None,
                    }
                    sources.append(entry)
                    if alarm:
                        alarms.append({"topic": item.topic.name, "source": source.name,
                                       **alarm.as_dict()})
            email = self._email_health(session, topics, email_job)
        if self._stopping:
            status = "stopping"
        elif (alarms or late or errors or not running_scheduler
              or (email is not None and not email["ok"])):
            status = "alarm"
        else:
            status = "ok"
        return {
            "status": status,
            "daemon": {"pid": os.getpid(), "host": self.holder.host, "db": self.db,
                       "started": iso(self.started_at),
                       "listen": self.api.address if self.api else None},
            "scheduler": {"running": running_scheduler, "jobs": jobs, "late": late},
            "running": [{"run_id": run.run_id, "topic": run.topic, "source": run.source,
                         "trigger": run.trigger, "started": iso(run.started_at), "pid": run.pid}
                        for run in sorted(active, key=lambda r: r.run_id)],
            "config_errors": [{"file": path, "error": error} for path, error in errors.items()],
            "sources": sources,
            "alarms": alarms,
            "email": email,
        }

    def _email_health(self, session: Any, topics: list[LoadedTopic],
                      job: dict[str, Any] | None) -> dict[str, Any] | None:
        """The ``email`` part of :meth:`health` (None without ``--email-schedule``).

        ``ok`` is false while digests wait in the outbox or the newest one was lost.
        """
        if not self.options.email_schedule:
            return None
        from claimwatch.digest.mail import Outbox, outbox_dir
        from claimwatch.health import digest_deliveries

        outbox = Outbox(outbox_dir())
        waiting = len(outbox.pending())
        names = sorted({item.topic.name for item in topics})
        report = digest_deliveries(session, names)
        newest = report["last_digest"]
        return {
            "ok": not waiting and not (newest and newest["status"] == "failed"),
            "schedule": self.options.email_schedule, "since": self.options.email_since,
            "send_empty": self.options.email_empty, "topics": names,
            "next_run": job["next_run"] if job else None,
            "trigger": job["trigger"] if job else None,
            "outbox": str(outbox.directory), "waiting": waiting, **report,
        }

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load topics, take the database's daemon lock, start the API and the scheduler."""
        global _ACTIVE
        self.check_email()
        self.load_topics()
        try:
            leases.acquire_daemon_lock(self.sessions, self.holder, db=self.db, ttl=self.ttl)
        except leases.DaemonLockHeld as exc:
            raise DaemonError(str(exc)) from exc
        self._locked = True
        try:
            reaped = leases.reap_interrupted_runs(self.sessions)
            if reaped:
                logger.warning("marked %d crawl run(s) left running by a stopped process as "
                               "interrupted", reaped)
            if self.options.listen is not None:
                host, port = self.options.listen
                self.app = self.review = self._review_app()  # pages and API: one app
                try:
                    self.api = ApiServer(self.app, host, port).start()
                except OSError as exc:
                    raise DaemonError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                      " (use --listen HOST:PORT, or --listen none)") from exc
                leases.renew_daemon_lock(self.sessions, self.holder, self.ttl,
                                         listen=self.api.address)
            self.keeper.start()
            _ACTIVE = self
            self.scheduler = self._make_scheduler()
            self.scheduler.start(paused=True)
            self.sync_jobs()
            self.scheduler.resume()
        except BaseException:
            self._teardown()
            raise
        scheduled = len(self.desired_jobs())
        logger.info("claimwatch daemon started (pid %s): %d topic(s), %d scheduled source(s), "
                    "database %s%s", os.getpid(), len(self.topics), scheduled, self.db,
                    f", API at http://{self.api.address}/api/health" if self.api else "")

    def _review_app(self) -> Any:
        """The web app (review pages and JSON API) with this daemon as its control."""
        from claimwatch.web import CrawlRefused, create_app

        def crawl_now(topic_name: str, source_name: str) -> str:
            try:
                result = self.trigger(topic_name, source_name)
            except HTTPError as exc:
                raise CrawlRefused(exc.message) from None
            if not result["runs"]:
                raise CrawlRefused(result.get("error") or "the source is being crawled already")
            return f"crawl run {result['runs'][0]['id']} started"

        with self._lock:
            topics = {item.topic.name: item.topic for item in self.topics.values()}
        return create_app(self.sessions, topics, token=self.options.token,
                          trigger_crawl=crawl_now, control=self)

    def _update_review_topics(self) -> None:
        topics = getattr(self.review, "topics", None)
        if isinstance(topics, dict):
            topics.clear()
            topics.update({item.topic.name: item.topic for item in self.topics.values()})

    def install_signal_handlers(self) -> None:
        def stop(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                logger.warning("second %s: stopping running crawls now",
                               signal.Signals(signum).name)
                self._force.set()
            else:
                logger.info("%s: stopping", signal.Signals(signum).name)
                self._stop.set()

        def reload(signum: int, frame: Any) -> None:
            self._reload.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, reload)

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def loop(self) -> None:
        """Heartbeat, topic-file watch and housekeeping until asked to stop."""
        heartbeat_every = max(self.ttl.total_seconds() / 3, 0.5)
        next_heartbeat = next_watch = time.monotonic()
        next_reap = time.monotonic() + 60
        while not self._stop.wait(0.2):
            now = time.monotonic()
            try:
                if now >= next_heartbeat:
                    next_heartbeat = now + heartbeat_every
                    if not leases.renew_daemon_lock(self.sessions, self.holder, self.ttl):
                        logger.critical(
                            "another daemon took over this database's daemon lock (this one "
                            "missed its heartbeat for over %s): stopping", _seconds(self.ttl))
                        self.exit_code = 1
                        self._locked = False
                        self._stop.set()
                        break
                if self._reload.is_set():
                    self._reload.clear()
                    logger.info("SIGHUP: re-reading the topic files")
                    self.reload(force=True)
                elif now >= next_watch and self._topics_changed():
                    self.reload()
                if now >= next_watch:
                    next_watch = now + self.options.watch_interval
                    from claimwatch.living import tick  # re-match on a changed claims

                    tick(self)  # table; revisit recent articles for edits
                if now >= next_reap:
                    next_reap = now + 60
                    with self._lock:
                        mine = list(self._active)
                    leases.reap_interrupted_runs(self.sessions, exclude=mine)
            except Exception:  # noqa: BLE001 - e.g. the database restarting: retry
                logger.exception("daemon housekeeping failed; retrying")

    def shutdown(self) -> None:
        """Stop scheduling, let running crawls finish within the grace period, stop the rest."""
        self._stopping = True
        if self.scheduler is not None:
            try:
                self.scheduler.pause()
            except Exception:  # noqa: BLE001
                logger.exception("could not pause the scheduler")
        with self._lock:
            running = len(self._active)
        if running:
            logger.info("waiting up to %s for %d running crawl(s) to finish",
                        _seconds(self.options.grace), running)
        deadline = time.monotonic() + self.options.grace.total_seconds()
        while time.monotonic() < deadline and not self._force.is_set():
            with self._lock:
                if not self._active:
                    break
            time.sleep(0.1)
        with self._lock:
            left = len(self._active)
        if left:
            logger.warning("stopping %d crawl(s) still running after the grace period", left)
        self._force.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
        self._teardown()
        logger.info("claimwatch daemon stopped")

    def _teardown(self) -> None:
        global _ACTIVE
        self._stopping = True
        self._force.set()
        if self.scheduler is not None:
            try:
                self.scheduler.shutdown(wait=True)
            except Exception:  # noqa: BLE001 - not started
                logger.debug("scheduler shutdown", exc_info=True)
            self.scheduler = None
        if self.api is not None:
            self.api.stop()
        self.keeper.stop()
        try:
            leases.release_all(self.sessions, self.holder)
            if self._locked:
                leases.release_daemon_lock(self.sessions, self.holder)
                self._locked = False
        except Exception:  # noqa: BLE001 - they expire
            logger.exception("could not release the daemon's leases")
        if _ACTIVE is self:
            _ACTIVE = None
        self.engine.dispose()


def run_daemon(options: DaemonOptions) -> int:
    """Run the daemon in this (main) thread until SIGTERM/SIGINT; returns the exit status."""
    daemon = Daemon(options)
    daemon.install_signal_handlers()
    daemon.start()
    try:
        daemon.loop()
    finally:
        daemon.shutdown()
    return daemon.exit_code
