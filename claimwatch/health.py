"""Gap alarms: sources that keep failing, have gone quiet, or are no longer crawled.

A monitor that silently stops is worse than none, so each source is judged from
its own history in ``crawl_runs`` and ``source_states``:

- ``failing``: it failed ``CLAIMWATCH_ALARM_FAILURES`` (3) times in a row;
- ``stalled``: no scheduled crawl started for ``CLAIMWATCH_ALARM_GAP_FACTOR`` (3)
  times its usual interval between scheduled crawls (the scheduler stopped firing,
  or the daemon is down: the digest reports it even then);
- ``silent``: it is crawled, but nothing new has come from it for that factor times
  the longest gap between new articles in its recent history.

Gap alarms need ``CLAIMWATCH_ALARM_MIN_HISTORY`` (4) runs of history first. The
judging is pure (:func:`source_alarm`); :func:`source_alarms` reads the database.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import CrawlRun, DigestDelivery, SourceState, utcnow

HISTORY_RUNS = 50  # recent runs per source that the gap alarms look at


@dataclass(frozen=True)
class AlarmPolicy:
    max_failures: int = 3
    gap_factor: float = 3.0
    min_history: int = 4

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | Any | None = None) -> AlarmPolicy:
        """From ``CLAIMWATCH_ALARM_*`` in a mapping or Scrapy settings; defaults from
        ``crawler/settings.py``."""
        from crawler import settings as defaults

        def get(name: str) -> Any:
            value = settings.get(name) if settings is not None else None
            return getattr(defaults, name) if value is None else value

        return cls(max_failures=int(get("CLAIMWATCH_ALARM_FAILURES")),
                   gap_factor=float(get("CLAIMWATCH_ALARM_GAP_FACTOR")),
                   min_history=int(get("CLAIMWATCH_ALARM_MIN_HISTORY")))


@dataclass(frozen=True)
class RunPoint:
    """What the alarms need of one crawl run."""

    started: datetime
    status: str
    trigger: str = "schedule"
    new: int = 0


@dataclass(frozen=True)
class Alarm:
    kind: str  # failing | stalled | silent
    message: str
    since: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message,
                "since": self.since.astimezone(UTC).isoformat() if self.since else None}


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            return f"{whole}{unit}" if rest * 10 < size else f"{seconds / size:.1f}{unit}"
    return f"{seconds}s"


def _gaps(times: Sequence[datetime]) -> list[timedelta]:
    ordered = sorted(times)
    return [b - a for a, b in zip(ordered, ordered[1:], strict=False) if b > a]


def source_alarms(
    *,
    consecutive_failures: int,
    last_error: str | None,
    runs: Sequence[RunPoint],
    now: datetime,
    policy: AlarmPolicy = AlarmPolicy(),
    scheduled: bool = True,
    every: timedelta | None = None,
) -> list[Alarm]:
    """Every alarm that applies to one source, most severe first.

    ``scheduled=False`` (the source has no schedule any more) skips the stalled
    check; ``every`` is the schedule's interval when known (else the history's).
    """
    alarms: list[Alarm] = []
    if consecutive_failures >= policy.max_failures:
        failed = sorted(r.started for r in runs if r.status in ("failed", "timeout"))
        since = failed[-consecutive_failures] if len(failed) >= consecutive_failures else None
        alarms.append(Alarm(
            "failing",
            f"failed {consecutive_failures} times in a row"
            + (f" (last error: {last_error})" if last_error else ""),
            since,
        ))

    started = sorted(r.started for r in runs if r.trigger == "schedule")
    if scheduled and len(started) >= policy.min_history:
        gaps = [gap.total_seconds() for gap in _gaps(started)] or [0.0]
        usual = every or timedelta(seconds=statistics.median(gaps))
        quiet = now - started[-1]
        if usual > timedelta(0) and quiet > usual * policy.gap_factor:
            alarms.append(Alarm(
                "stalled",
                f"no scheduled crawl for {_human(quiet)} (usually every {_human(usual)}):"
                " is the daemon running?",
                started[-1],
            ))

    productive = sorted(r.started for r in runs if r.status == "ok" and r.new > 0)
    attempted = [r.started for r in runs if r.status == "ok"]
    if len(productive) >= policy.min_history and attempted and max(attempted) > productive[-1]:
        longest = max(_gaps(productive) or [timedelta(0)])
        quiet = now - productive[-1]
        if longest > timedelta(0) and quiet > longest * policy.gap_factor:
            alarms.append(Alarm(
                "silent",
                f"nothing new for {_human(quiet)} although it was crawled since"
                f" (the longest quiet spell before was {_human(longest)})",
                productive[-1],
            ))
    return alarms


def source_alarm(**kwargs: Any) -> Alarm | None:
    """The most severe alarm for one source, or None (arguments as :func:`source_alarms`)."""
    alarms = source_alarms(**kwargs)
    return alarms[0] if alarms else None


def recent_runs(session: Session, topic: str, source: str,
                limit: int = HISTORY_RUNS) -> list[RunPoint]:
    rows = session.execute(
        select(CrawlRun.started, CrawlRun.status, CrawlRun.trigger, CrawlRun.counts)
        .where(CrawlRun.topic == topic, CrawlRun.source == source)
        .order_by(CrawlRun.started.desc())
        .limit(limit)
    ).all()
    return [RunPoint(started=row.started, status=row.status, trigger=row.trigger,
                     new=int((row.counts or {}).get("new", 0))) for row in rows]


def alarm_for_state(session: Session, state: SourceState, *, now: datetime | None = None,
                    policy: AlarmPolicy | None = None) -> Alarm | None:
    """The alarm for one ``source_states`` row, judged from its recent runs."""
    return source_alarm(
        consecutive_failures=state.consecutive_failures or 0,
        last_error=state.last_error,
        runs=recent_runs(session, state.topic, state.source),
        now=now or utcnow(),
        policy=policy or AlarmPolicy.from_settings(),
    )


def digest_deliveries(session: Session, topics: Sequence[str] | None = None) -> dict[str, Any]:
    """What the scheduled digest emails (``digest_deliveries``) did: when one last went
    out, the last error, how many wait in the outbox or were lost, the newest's status."""

    def where(query: Any) -> Any:
        return query.where(DigestDelivery.topic.in_(list(topics))) if topics is not None \
            else query

    def iso(value: datetime | None) -> str | None:
        return value.astimezone(UTC).isoformat() if value else None

    last_sent = session.scalar(where(select(func.max(DigestDelivery.sent_at))))
    newest = session.scalars(where(select(DigestDelivery))
                             .order_by(DigestDelivery.created.desc(), DigestDelivery.id.desc())
                             .limit(1)).first()
    error = session.scalars(where(select(DigestDelivery))
                            .where(DigestDelivery.error.is_not(None))
                            .order_by(DigestDelivery.error_at.desc(), DigestDelivery.id.desc())
                            .limit(1)).first()
    counts = {status: int(n) for status, n in session.execute(
        where(select(DigestDelivery.status, func.count())).group_by(DigestDelivery.status))}
    return {
        "last_sent": iso(last_sent),
        "last_digest": None if newest is None else {
            "topic": newest.topic, "status": newest.status, "created": iso(newest.created),
            "articles": len(newest.article_ids or []), "since": iso(newest.since)},
        "last_error": None if error is None else {
            "topic": error.topic, "at": iso(error.error_at), "error": error.error,
            "status": error.status},
        "queued": counts.get("queued", 0),
        "failed": counts.get("failed", 0),
        "sent": counts.get("sent", 0),
    }
