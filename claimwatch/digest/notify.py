"""Alerts where the team already is: Slack, Matrix, Telegram, Discord, email, webhooks.

Delivery is Apprise's (one URL per channel, the library changedetection.io uses);
this module decides what to say. A topic file lists its channels under ``notify``
(config/loader.py), each with the events it wants:

- ``conflict``: a stored article carries figures that contradict a known claim;
- ``dispute``: an article disputes a known claim (denies it, calls it false...);
- ``new_report``: a new original article (not a copy) repeats a watched claim
  (the target's ``claims``; every claim when it names none);
- ``source_alarm``: a source starts failing, stalls or goes silent (claimwatch/health.py).

Each channel keeps its own place in ``notify_states``: the newest article it was
told about and the alarms it announced. A channel is told about each article once;
one that cannot be reached keeps its place and is told on the next run, so nothing
is lost and nothing is said twice to one channel. A channel new to a topic starts
with the articles of the last day (never the whole history). Called after every
crawl (``claimwatch crawl``, the daemon) and by ``claimwatch notify``. Never raises
for a channel's failure: it is recorded and reported.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from config.models import NotifyTarget, Topic
from storage.models import Article, NotifyState, SourceState, utcnow
from storage.repository import insert_ignore

logger = logging.getLogger(__name__)

MAX_ARTICLES = 500  # articles looked at per channel and run (the rest on the next run)
MAX_ITEMS = 25  # items listed in one message ("and N more")
FIRST_LOOKBACK = timedelta(hours=24)
BASE_URL_ENV = "CLAIMWATCH_BASE_URL"
_LABELS = {"conflict": "conflict", "dispute": "dispute", "new_report": "new report",
           "source_alarm": "source alarm"}


class NotifyError(ValueError):
    """A notification channel that cannot be used as configured."""


@dataclass(frozen=True)
class Event:
    kind: str  # one of config.models.NOTIFY_EVENTS
    text: str  # one line, markdown
    article_id: int | None = None


@dataclass
class ChannelReport:
    channel: str  # the URL as written in the topic file, secrets not expanded
    events: list[Event] = field(default_factory=list)
    sent: bool = False
    error: str | None = None

    def line(self) -> str:
        if self.error:
            return f"{self.channel}: FAILED ({self.error}); kept for the next run"
        if not self.events:
            return f"{self.channel}: {'test message sent' if self.sent else 'nothing new'}"
        return f"{self.channel}: sent {summary(self.events)}"


Sender = Callable[[str, str, str], None]  # (url, title, body) -> None, raises NotifyError


def channel_id(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def summary(events: Sequence[Event]) -> str:
    counts: dict[str, int] = {}
    for event in events:
        counts[event.kind] = counts.get(event.kind, 0) + 1
    parts = []
    for kind, n in counts.items():
        label = _LABELS[kind]
        parts.append(f"{n} {label}{'' if n == 1 else 's'}")
    return ", ".join(parts)


def review_link(article: Article, base_url: str | None) -> str:
    if base_url:
        return f"{base_url.rstrip('/')}/article/{article.id}"
    return article.url


def _md(text: str | None, limit: int = 240) -> str:
    """Scraped text as one safe markdown line: no markup, links or mentions survive."""
    text = " ".join((text or "").split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    for char in "\\`*_[]<>#|":
        text = text.replace(char, "\\" + char)
    return text.replace("@", "@\u200b")


def article_events(article: Article, target: NotifyTarget, base_url: str | None) -> list[Event]:
    """What ``target`` wants to hear of one stored article."""
    events: list[Event] = []
    outlet = _md(article.outlet or "unknown outlet", 80)
    title = _md(article.title or article.url, 120)
    where = f"{outlet}: [{title}]({review_link(article, base_url)})"
    links = [c for c in article.claims if c.review != "rejected"]
    if "conflict" in target.events:
        for link in links:
            if link.conflict:
                events.append(Event("conflict", (
                    f"**Conflict** with `{_md(link.claim_id, 80)}` — {where}: "
                    f"the claim says {', '.join(link.claim_numbers) or '?'}, this says "
                    f"{', '.join(link.article_numbers) or '?'}: “{_md(link.sentence)}”"),
                    article.id))
    if "dispute" in target.events:
        for link in links:
            if link.stance == "disputes" and not link.conflict:
                events.append(Event("dispute", (
                    f"**Disputes** `{_md(link.claim_id, 80)}` — {where}: “{_md(link.sentence)}”"),
                    article.id))
    if "new_report" in target.events and article.duplicate_of_id is None:
        watched = set(target.claims)
        repeated = sorted({
            link.claim_id for link in links
            if link.tier == "linked" and not link.conflict
            and (link.stance or "repeats") == "repeats"
            and (not watched or link.claim_id in watched)
        })
        if repeated:
            claims = ", ".join(f"`{_md(c, 80)}`" for c in repeated)
            events.append(Event("new_report", f"**New report** repeating {claims} — {where}",
                                article.id))
    return events


def alarm_events(session: Session, topic: str, announced: dict[str, str],
                 now: datetime) -> tuple[list[Event], dict[str, str]]:
    """Alarms that started or changed since they were last announced; the new state."""
    from claimwatch.health import alarm_for_state

    events: list[Event] = []
    state: dict[str, str] = {}
    for source in session.scalars(select(SourceState).where(SourceState.topic == topic)
                                  .order_by(SourceState.source)):
        alarm = alarm_for_state(session, source, now=now)
        if alarm is None:
            continue
        state[source.source] = alarm.kind
        if announced.get(source.source) != alarm.kind:
            events.append(Event("source_alarm", (
                f"**Source alarm**: {_md(source.source, 80)} is {alarm.kind}: "
                f"{_md(alarm.message)}")))
    return events, state


def apprise_sender(url: str, title: str, body: str) -> None:
    """Send through Apprise; raise :class:`NotifyError` with its reason on failure."""
    import apprise

    client = apprise.Apprise()
    if not client.add(url):
        raise NotifyError("not a notification URL Apprise knows (see its list of services)")
    with apprise.LogCapture(level=logging.WARNING) as captured:
        ok = client.notify(title=title, body=body, body_format=apprise.NotifyFormat.MARKDOWN)
    if not ok:
        lines = [line.strip() for line in captured.getvalue().splitlines() if line.strip()]
        raise NotifyError(lines[-1][:300] if lines else "the service refused the message")


def _state(session: Session, topic: str, channel: str, now: datetime) -> NotifyState:
    row = session.scalar(select(NotifyState).where(NotifyState.topic == topic,
                                                   NotifyState.channel == channel))
    if row is not None:
        return row
    # New channel: start at the last day's articles, never the whole history.
    start = session.scalar(select(func.max(Article.id)).where(
        Article.topic == topic, Article.fetched_at < now - FIRST_LOOKBACK)) or 0
    insert_ignore(session, NotifyState.__table__, {
        "topic": topic, "channel": channel, "last_article_id": start, "alarms": {}})
    row = session.scalar(select(NotifyState).where(NotifyState.topic == topic,
                                                   NotifyState.channel == channel))
    assert row is not None
    return row


def compose(topic: str, events: Sequence[Event]) -> tuple[str, str]:
    """The title and markdown body of one message: conflicts and disputes first."""
    order = {"conflict": 0, "dispute": 1, "source_alarm": 2, "new_report": 3}
    ranked = sorted(events, key=lambda e: order[e.kind])
    lines = [f"- {e.text}" for e in ranked[:MAX_ITEMS]]
    if len(ranked) > MAX_ITEMS:
        lines.append(f"- … and {len(ranked) - MAX_ITEMS} more: see the digest")
    return f"claimwatch · {topic}: {summary(ranked)}", "\n".join(lines)


def notify_topic(sessions: sessionmaker[Session], topic: Topic, *,
                 base_url: str | None = None, now: datetime | None = None,
                 sender: Sender | None = None,
                 targets: Iterable[NotifyTarget] | None = None) -> list[ChannelReport]:
    """Tell each of the topic's channels what is new since it was last told."""
    now = now or utcnow()
    base_url = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or None
    send = sender or apprise_sender
    reports = []
    for target in (topic.notify if targets is None else targets):
        reports.append(_notify_channel(sessions, topic.name, target, base_url, now, send))
    return reports


def _notify_channel(sessions: sessionmaker[Session], topic: str, target: NotifyTarget,
                    base_url: str | None, now: datetime, send: Sender) -> ChannelReport:
    report = ChannelReport(target.shown or "(channel)")
    channel = channel_id(target.url)
    with sessions.begin() as session:
        state = _state(session, topic, channel, now)
        start, announced = state.last_article_id, dict(state.alarms or {})
        articles = list(session.scalars(
            select(Article).where(Article.topic == topic, Article.id > start)
            .options(selectinload(Article.claims)).order_by(Article.id).limit(MAX_ARTICLES)))
        last_id = articles[-1].id if articles else start
        for article in articles:
            report.events.extend(article_events(article, target, base_url))
        alarm_state = announced
        if "source_alarm" in target.events:
            alarms, alarm_state = alarm_events(session, topic, announced, now)
            report.events.extend(alarms)
    if report.events:
        title, body = compose(topic, report.events)
        try:
            send(target.url, title, body)
        except Exception as exc:  # noqa: BLE001 - any failure of a channel is recorded
            report.error = str(exc) if isinstance(exc, NotifyError) else \
                f"{type(exc).__name__}: {exc}"
            logger.warning("notification to %s of topic %s failed: %s", report.channel, topic,
                           report.error)
            with sessions.begin() as session:
                row = _state(session, topic, channel, now)
                row.last_error, row.last_error_at = report.error, now
            return report
        report.sent = True
    with sessions.begin() as session:
        row = _state(session, topic, channel, now)
        row.last_article_id = max(row.last_article_id, last_id)
        row.alarms = alarm_state
        if report.sent:
            row.last_sent = now
            row.last_error = None
    return report


def send_test(topic: Topic, *, sender: Sender | None = None) -> list[ChannelReport]:
    """One test message to each of the topic's channels (``claimwatch notify --test``)."""
    send = sender or apprise_sender
    reports = []
    for target in topic.notify:
        report = ChannelReport(target.shown or "(channel)")
        try:
            send(target.url, f"claimwatch · {topic.name}: test notification",
                 f"This channel gets the topic's {', '.join(target.events)} alerts.")
            report.sent = True
        except Exception as exc:  # noqa: BLE001
            report.error = str(exc) if isinstance(exc, NotifyError) else \
                f"{type(exc).__name__}: {exc}"
        reports.append(report)
    return reports


def notify_after_crawl(sessions: sessionmaker[Session], topic: Topic) -> list[ChannelReport]:
    """The hook the crawl command and the daemon call: never raises."""
    if not topic.notify:
        return []
    try:
        return notify_topic(sessions, topic)
    except Exception:  # noqa: BLE001 - alerts never take a crawl or the daemon down
        logger.exception("notifications of topic %s failed", topic.name)
        return []


