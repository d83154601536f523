"""Digest emails of ``claimwatch daemon --email-schedule``.

One job in the daemon's job store, the module-level :func:`scheduled_digest` (plain
arguments: database URL, topic names, window), emails each topic's digest
(:func:`email_digests`): it first flushes the outbox, where a digest that could not be
sent waits for the next run; every digest is recorded in ``digest_deliveries``, which
also gives the next ``since-last`` window.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from claimwatch.web import iso
from config.cron import schedule_trigger
from storage.db import make_engine, session_factory
from storage.models import DigestDelivery, utcnow

logger = logging.getLogger(__name__)

EMAIL_JOB_ID = "email-digest"  # no "/": never a topic/source job's id
# A textual reference, the one the job store keeps (stable across module moves).
EMAIL_JOB_FUNC = "claimwatch.daemon:scheduled_digest"
SINCE_LAST = "since-last"
FIRST_DIGEST_WINDOW = timedelta(hours=24)  # a since-last digest with no earlier one


class EmailOptionError(ValueError):
    """``--email-schedule`` / ``--email-since`` / the SMTP settings are unusable."""



def parse_email_since(value: str) -> str:
    """``since-last`` or a duration (``24h``, ``90m``, ``7d``, ``2w``), normalized.

    Raises ``ValueError`` with a one-line reason.
    """
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


def check_email_options(schedule: str | None, since: str) -> None:
    """With ``schedule``: a valid schedule, window and SMTP settings, or EmailOptionError."""
    if not schedule:
        return
    from claimwatch.digest.mail import MailConfigError, SmtpSettings

    try:
        schedule_trigger(schedule)
    except ValueError as exc:
        raise EmailOptionError(f"--email-schedule {schedule!r}: {exc}") from exc
    try:
        parse_email_since(since)
    except ValueError as exc:
        raise EmailOptionError(f"--email-since: {exc}") from exc
    try:
        SmtpSettings.from_env()
    except MailConfigError as exc:
        raise EmailOptionError(f"--email-schedule needs the SMTP settings: {exc}") from exc
