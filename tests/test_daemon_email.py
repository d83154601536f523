"""Scheduled digest emails: ``claimwatch daemon --email-schedule`` against a real SMTP server.

The end-to-end test starts an aiosmtpd server on 127.0.0.1 and ``claimwatch daemon`` as a
subprocess (helpers from tests/test_daemon.py) on a temporary SQLite database holding
flagged articles, then stops and restarts the SMTP server: the digest that could not be
sent waits in the outbox, the error is recorded and reported, and the next run sends it.
The in-process tests check the windows (``since-last``, late-stored articles, durations)
and the outbox bookkeeping of :func:`claimwatch.daemon.email_digests`.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from claimwatch.daemon import SINCE_LAST, email_digests, parse_email_since
from claimwatch.digest.mail import Outbox, SmtpSettings
from claimwatch.health import digest_deliveries
from storage.db import open_db
from storage.models import DigestDelivery
from storage.repository import Store
from tests.test_daemon import DB, Daemon, run_cli, wait_for, write_topic
from tests.test_storage import record

TOPIC = "email-test"
SENDER = "claimwatch@example.org"
RECIPIENT = "desk@example.org"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [BytesParser(policy=policy.default).parsebytes(e.content)
                for e in self.envelopes]


class SmtpServer:
    """A real SMTP server on a fixed free port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.recorder = Recorder()
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def env(self, outbox: Path) -> dict[str, str]:
        return {
            "CLAIMWATCH_SMTP_HOST": "127.0.0.1",
            "CLAIMWATCH_SMTP_PORT": str(self.port),
            "CLAIMWATCH_SMTP_STARTTLS": "false",  # aiosmtpd here has no certificate
            "CLAIMWATCH_SMTP_FROM": f"claimwatch <{SENDER}>",
            "CLAIMWATCH_SMTP_TO": RECIPIENT,
            "CLAIMWATCH_SMTP_TIMEOUT": "5",
            "CLAIMWATCH_OUTBOX": str(outbox),
        }

    def settings(self) -> SmtpSettings:
        return SmtpSettings(host="127.0.0.1", port=self.port, starttls=False, sender=SENDER,
                            recipients=[RECIPIENT], timeout=5)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    url = f"sqlite:///{tmp_path / 'email.sqlite'}"
    engine, sessions = open_db(url)
    yield url, Store(sessions)
    engine.dispose()


def flagged(store: Store, n: int, title: str, **kw: Any) -> int:
    """Store a flagged article (a known-claim match with a conflict, a new-claim candidate)."""
    return store.save(record(n, topic=TOPIC, title=title, **kw)).id


def deliveries(store: Store) -> list[DigestDelivery]:
    with store.sessions() as session:
        return list(session.scalars(select(DigestDelivery).order_by(DigestDelivery.id)))


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


# --------------------------------------------------------------------------- the daemon


def test_daemon_emails_the_digest_keeps_it_while_smtp_is_down_and_sends_it_later(
        tmp_path: Path, store: tuple[str, Store], smtp: SmtpServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    db_url, articles = store
    first = flagged(articles, 1, "Twitter cut child safety staff, report says")
    second = flagged(articles, 2, "Wire copy: Twitter child safety team shrinks")
    outbox = tmp_path / "outbox"
    for name, value in smtp.env(outbox).items():
        monkeypatch.setenv(name, value)
    # No schedules on the source: this daemon only emails.
    topic = write_topic(tmp_path / "topic.yaml",
                        [{"name": "wire", "kind": "feed", "url": "http://127.0.0.1:9/feed.xml"}],
                        name=TOPIC)
    daemon = Daemon(tmp_path, [topic], db_url, "--email-schedule", "every 2s").wait_ready()
    try:
        # 1. The digest arrives: multipart/alternative, text and HTML naming the articles.
        wait_for(lambda: smtp.recorder.envelopes, 20, "the digest email", daemon)
        [msg] = smtp.recorder.messages()
        assert msg["To"] == RECIPIENT and SENDER in msg["From"]
        assert msg["Subject"].startswith(f"claimwatch digest: {TOPIC} — 2 flagged since ")
        assert msg.get_content_type() == "multipart/alternative"
        text, html = parts(msg)
        for title in ("Twitter cut child safety staff, report says",
                      "Wire copy: Twitter child safety team shrinks"):
            assert title in text and title in html
        assert "https://a.example/1" in html and "https://a.example/2" in text
        [sent] = deliveries(articles)
        assert (sent.status, sorted(sent.article_ids), sent.error) == ("sent", [first, second],
                                                                       None)
        assert sent.message_id == msg["Message-ID"]
        health = daemon.health()
        email = health["email"]
        assert email["ok"] and health["status"] == "ok", health
        assert email["last_sent"] and email["waiting"] == 0 and email["last_error"] is None
        assert email["trigger"] == "interval[0:00:02]" and email["next_run"]
        assert health["scheduler"]["jobs"] == []  # the crawl jobs; the email job is above

        # Nothing new: the next runs mail nothing.
        wait_for(lambda: "is empty: not emailed" in daemon.text(), 10, "an empty run", daemon)
        assert len(smtp.recorder.envelopes) == 1

        # 2. The SMTP server goes away; a new article is flagged: its digest waits.
        smtp.stop()
        third = flagged(articles, 3, "Twitter dissolves its Trust and Safety Council")
        wait_for(lambda: list(outbox.glob("*.eml")), 15, "the digest in the outbox", daemon)
        queued = wait_for(lambda: [d for d in deliveries(articles) if d.status == "queued"],
                          10, "the failure to be recorded", daemon)[0]
        assert queued.article_ids == [third] and queued.sent_at is None
        assert queued.error and queued.error.startswith(
            f"cannot connect to SMTP server 127.0.0.1:{smtp.port}")
        assert "kept in the outbox" in daemon.text()
        # Later runs retry the outbox, and fail again, while the server is down.
        wait_for(lambda: deliveries(articles)[-1].attempts >= 2, 10, "a retry", daemon)
        health = daemon.health()
        assert health["status"] == "alarm" and not health["email"]["ok"]
        assert health["email"]["waiting"] == 1 and health["email"]["queued"] == 1
        assert health["email"]["last_error"]["error"].startswith("cannot connect to SMTP server")
        assert len(list(outbox.glob("*.eml"))) == 1  # retries queue nothing new

        # 3. The server is back: the next run sends the waiting digest, once.
        smtp.start()
        wait_for(lambda: smtp.recorder.envelopes[1:], 15, "the waiting digest", daemon)
        wait_for(lambda: deliveries(articles)[-1].status == "sent", 10, "it recorded", daemon)
        assert list(outbox.glob("*.eml")) == []
        late = smtp.recorder.messages()[1]
        assert late["Message-ID"] == queued.message_id
        assert late.get_content_type() == "multipart/alternative"
        text, html = parts(late)
        assert "Twitter dissolves its Trust and Safety Council" in text
        assert "Twitter dissolves its Trust and Safety Council" in html
        assert "Twitter cut child safety staff" not in text  # already in the first digest
        resent = deliveries(articles)[-1]
        assert resent.attempts >= 3 and resent.sent_at and resent.error  # the error is kept
        health = daemon.health()
        assert health["status"] == "ok" and health["email"]["ok"], health
        assert health["email"]["waiting"] == 0 and health["email"]["queued"] == 0
        assert health["email"]["last_sent"] > email["last_sent"]
        empty_runs = daemon.text().count("is empty: not emailed")
        wait_for(lambda: daemon.text().count("is empty: not emailed") > empty_runs, 10,
                 "another empty run", daemon)
        assert len(smtp.recorder.envelopes) == 2

        assert daemon.stop(signal.SIGTERM) == 0
        assert "claimwatch daemon stopped" in daemon.text()
        assert "Traceback" not in daemon.text()
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def test_daemon_refuses_to_start_without_smtp_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SmtpServer().env(tmp_path):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLAIMWATCH_EMAIL_SCHEDULE", "0 7 * * *")  # as the option
    topic = write_topic(tmp_path / "topic.yaml",
                        [{"name": "wire", "kind": "feed", "url": "http://127.0.0.1:9/feed.xml"}],
                        name=TOPIC)
    db = DB(f"sqlite:///{tmp_path / 'refused.sqlite'}")
    result = run_cli("daemon", str(topic), "--db", db.url, "--listen", "none", timeout=30)
    assert result.returncode == 1
    assert result.stderr == ("Error: --email-schedule needs the SMTP settings: "
                             "CLAIMWATCH_SMTP_HOST is not set: set it to the SMTP server's host "
                             "name, e.g. smtp.example.org\n")

    bad = run_cli("daemon", str(topic), "--db", db.url, "--listen", "none",
                  "--email-schedule", "every fortnight", "--email-since", "3x", timeout=30)
    assert bad.returncode == 2 and "--email-schedule" in bad.stderr
    assert "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- the windows


T0 = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)


def run(url_store: tuple[str, Store], smtp: SmtpServer, outbox: Path, now: datetime,
        **kw: Any) -> list[Any]:
    return email_digests(url_store[1].sessions, [TOPIC], smtp.settings(), Outbox(outbox),
                         now=now, lookback=timedelta(hours=1), **kw)


def test_since_last_windows_follow_each_other_and_catch_late_stored_articles(
        tmp_path: Path, store: tuple[str, Store], smtp: SmtpServer) -> None:
    _, articles = store
    outbox = tmp_path / "outbox"
    old = flagged(articles, 1, "Too old for the first digest", fetched_at=T0 - timedelta(hours=30))
    a = flagged(articles, 2, "Fetched an hour ago", fetched_at=T0 - timedelta(hours=1))
    [first] = run(store, smtp, outbox, T0)
    assert (first.status, first.articles, first.since) == ("sent", 1, T0 - timedelta(hours=24))
    assert deliveries(articles)[0].article_ids == [a] and old != a

    # Nothing new: not mailed, not recorded; the window still starts at the first digest.
    [empty] = run(store, smtp, outbox, T0 + timedelta(hours=1))
    assert (empty.status, empty.since) == ("empty", T0)
    assert len(smtp.recorder.envelopes) == 1 and len(deliveries(articles)) == 1

    # Fetched before the first digest but stored after it (a long crawl): in the next one,
    # and the article the first digest had is not repeated.
    late = flagged(articles, 3, "Fetched before, stored after",
                   fetched_at=T0 - timedelta(minutes=10))
    fresh = flagged(articles, 4, "Fetched after", fetched_at=T0 + timedelta(hours=1))
    [second] = run(store, smtp, outbox, T0 + timedelta(hours=2))
    assert (second.status, second.articles, second.since) == ("sent", 2, T0)
    assert sorted(deliveries(articles)[1].article_ids) == [late, fresh]
    text, _ = parts(smtp.recorder.messages()[1])
    assert "Fetched before, stored after" in text and "Fetched an hour ago" not in text
    assert smtp.recorder.messages()[1]["Subject"].endswith("since 2024-05-06 07:00 UTC")

    # --email-empty mails an empty digest too.
    [mailed] = run(store, smtp, outbox, T0 + timedelta(hours=3), send_empty=True)
    assert (mailed.status, mailed.articles) == ("sent", 0)
    assert "Nothing new since" in parts(smtp.recorder.messages()[2])[0]

    # A duration window ignores what was mailed before.
    [day] = run(store, smtp, outbox, T0 + timedelta(hours=3), since="24h")
    assert (day.status, day.articles) == ("sent", 3)  # 2, 3 and 4; not 1 (30 hours old)


def test_queued_digests_are_flushed_first_and_rows_follow_the_outbox(
        tmp_path: Path, store: tuple[str, Store], smtp: SmtpServer) -> None:
    _, articles = store
    outbox = tmp_path / "outbox"
    flagged(articles, 1, "First story", fetched_at=T0 - timedelta(hours=2))
    smtp.stop()
    [down] = run(store, smtp, outbox, T0)
    assert down.status == "queued" and "cannot connect" in (down.error or "")
    # Still down, and a new article: a second digest waits, with only the new article.
    b = flagged(articles, 2, "Second story", fetched_at=T0 + timedelta(minutes=5))
    [again] = run(store, smtp, outbox, T0 + timedelta(hours=1))
    assert (again.status, again.articles, again.since) == ("queued", 1, T0)
    rows = deliveries(articles)
    assert [r.status for r in rows] == ["queued", "queued"] and rows[1].article_ids == [b]
    assert rows[0].attempts == 2 and rows[0].error_at == T0 + timedelta(hours=1)
    with articles.sessions() as session:
        report = digest_deliveries(session, [TOPIC])
    assert report["queued"] == 2 and report["last_sent"] is None
    assert report["last_error"]["error"].startswith("cannot connect to SMTP server")

    # Someone sends the second one by hand (digest --email flushes the same outbox)...
    newest = sorted(outbox.glob("*.eml"))[-1]
    newest.unlink()
    smtp.start()
    [up] = run(store, smtp, outbox, T0 + timedelta(hours=2))
    assert up.status == "empty"  # both stories are in the digests already
    rows = deliveries(articles)
    assert [r.status for r in rows] == ["sent", "gone"]
    assert rows[0].sent_at == T0 + timedelta(hours=2) and rows[0].attempts == 3
    assert [m["Subject"] for m in smtp.recorder.messages()] == [
        f"claimwatch digest: {TOPIC} — 1 flagged since 2024-05-05 07:00 UTC"]
    with articles.sessions() as session:
        report = digest_deliveries(session, [TOPIC])
    assert report["last_sent"] == (T0 + timedelta(hours=2)).isoformat()
    assert report["queued"] == 0 and report["last_digest"]["status"] == "gone"


@pytest.mark.parametrize(("value", "expected"), [
    ("since-last", SINCE_LAST), (" Last ", SINCE_LAST), ("24h", "24h"), ("7 d", "7d"),
    ("90m", "90m"), ("2w", "2w"),
])
def test_parse_email_since(value: str, expected: str) -> None:
    assert parse_email_since(value) == expected


@pytest.mark.parametrize("value", ["", "0h", "yesterday", "2024-05-06", "24"])
def test_parse_email_since_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="expected since-last or a duration"):
        parse_email_since(value)
