"""The daemon's health report (``/api/health``): scheduler, running crawls, sources, alarms.

The alarm rules themselves (failing, stalled, silent sources) are in
``claimwatch/health.py``, which the digest and the notifications use too.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from claimwatch.daemon.digests import EMAIL_JOB_ID
from claimwatch.daemon.scheduling import (
    REVISIT_JOB_FUNC,
    REVISIT_JOB_PREFIX,
    DaemonState,
    LoadedTopic,
)
from claimwatch.health import AlarmPolicy, recent_runs, source_alarm
from claimwatch.web import iso
from config.cron import is_interval, parse_interval
from storage.models import SourceState, utcnow

logger = logging.getLogger(__name__)


class HealthReport(DaemonState):
    """The daemon's state as data (a part of :class:`claimwatch.daemon.Daemon`)."""

    db: str
    started_at: Any
    api: Any
    policy: AlarmPolicy
    _active: dict[int, Any]
    _procs: list[Any]
    _queue: Any
    processes_started: int

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
        revisits: list[dict[str, Any]] = []
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
                elif job.func_ref == REVISIT_JOB_FUNC:
                    revisits.append({"id": job.id, "topic": job.id.removeprefix(
                        REVISIT_JOB_PREFIX), "trigger": str(job.trigger),
                        "next_run": iso(next_run), "skipped": skipped.get(job.id, 0)})
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
            "scheduler": {"running": running_scheduler, "jobs": jobs, "revisits": revisits,
                          "late": late},
            "crawl_processes": self._crawl_processes(),
            "running": [{"run_id": run.run_id, "topic": run.topic, "source": run.source,
                         "trigger": run.trigger, "started": iso(run.started_at), "pid": run.pid}
                        for run in sorted(active, key=lambda r: r.run_id)],
            "config_errors": [{"file": path, "error": error} for path, error in errors.items()],
            "sources": sources,
            "alarms": alarms,
            "email": email,
        }

    def _crawl_processes(self) -> dict[str, Any]:
        """The long-lived crawl processes: how many crawls each ran, its memory, its batch."""
        with self._lock:
            procs = list(self._procs)
            queued = len(self._queue)
        return {"queued": queued, "started": self.processes_started,
                "processes": [{"pid": item.pid, "crawls": item.crawls, "rss_mb":
                               round(item.rss / 1e6, 1), "busy": len(item.runs),
                               "retiring": item.retiring} for item in procs]}

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
