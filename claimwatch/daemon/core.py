"""The daemon: scheduled crawls that never silently stop, manual triggers, crash safety.

Its parts, one module each:

- ``scheduling.py``: the topic files and their jobs in APScheduler 3 (job store in the
  project database), re-read on SIGHUP or when they change;
- ``supervision.py`` and ``crawlpool.py``: each crawl's lease and ``crawl_runs`` row, and
  the long-lived crawl processes that run the crawls (batched per topic, timed out,
  replaced after N crawls or on memory growth, a crash never reaching the daemon);
- ``health.py``: ``/api/health``; ``digests.py``: ``--email-schedule``;
  ``server.py``: the API and the review page on one port.

This module holds the life cycle. On start, runs left ``running`` by a killed daemon are
marked ``interrupted``. One daemon per database (``daemon_locks``, with a heartbeat): a
second one refuses to start. SIGTERM/SIGINT stop scheduling, give running crawls
``--grace`` to finish, then stop them; the daemon exits 0.

Only :class:`Daemon` is stateful; :func:`run_daemon` is what the CLI calls.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import timedelta
from typing import Any

from claimwatch.daemon.digests import EmailOptionError, check_email_options
from claimwatch.daemon.health import HealthReport
from claimwatch.daemon.options import DaemonError, DaemonOptions
from claimwatch.daemon.scheduling import (
    LoadedTopic,
    Scheduling,
    _seconds,
    active,
    revisit_interval,
    set_active,
)
from claimwatch.daemon.server import start_server, update_review_topics
from claimwatch.daemon.supervision import Supervision
from claimwatch.health import AlarmPolicy
from claimwatch.web import ApiServer
from storage import leases
from storage.db import describe, make_engine, session_factory
from storage.leases import Holder, LeaseKeeper
from storage.models import utcnow
from storage.schema import SchemaError, ensure_schema

logger = logging.getLogger(__name__)


class Daemon(Scheduling, Supervision, HealthReport):
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
        # its crawls run in crawl processes, and its memory should stay small.)
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
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._force = threading.Event()
        self._reload = threading.Event()
        self._stopping = False
        self._locked = False
        self._init_supervision()

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Load topics, take the database's daemon lock, start the API and the scheduler."""
        try:
            check_email_options(self.options.email_schedule, self.options.email_since)
        except EmailOptionError as exc:
            raise DaemonError(str(exc)) from exc
        revisit_interval(self.options.settings)  # a bad value: fail now, not at each sync
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
                self.app, self.review, self.api = start_server(self, host, port)
                leases.renew_daemon_lock(self.sessions, self.holder, self.ttl,
                                         listen=self.api.address)
            self.keeper.start()
            self.start_supervisor()
            set_active(self)
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

    def _update_review_topics(self) -> None:
        update_review_topics(self.review, {item.topic.name: item.topic
                                           for item in self.topics.values()})

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
                    from claimwatch.rematch import watch_claims_files

                    watch_claims_files(self)  # re-match the articles on a changed claims table
                self.give_back_leftover_leases()
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
        self.stop_supervisor()
        self._teardown()
        logger.info("claimwatch daemon stopped")

    def _teardown(self) -> None:
        self._stopping = True
        self._force.set()
        self.stop_supervisor()
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
        if active() is self:
            set_active(None)
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
