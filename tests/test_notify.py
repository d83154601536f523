"""Alerts through Apprise, against a local JSON webhook receiver (no network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimwatch.cli import main
from claimwatch.digest.notify import notify_topic
from config.loader import ConfigError, load_topic
from storage.models import NotifyState
from storage.repository import ArticleRecord, MatchRecord, Store

NOW = datetime.now(UTC)


class Receiver:
    """A JSON webhook endpoint on 127.0.0.1 that records what it is sent."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.status == 200:
                    receiver.messages.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


CLAIMS = "id,text\nlayoffs,Only 25 of 1600 trust and safety workers remain.\n" \
         "priority,Musk said child exploitation is his top priority.\n"


def write_topic(tmp_path: Path, notify: str) -> Path:
    (tmp_path / "claims.csv").write_text(CLAIMS, encoding="utf-8")
    path = tmp_path / "topic.yaml"
    path.write_text(
        "name: t\nquery: {any: [Twitter]}\nclaims: claims.csv\n"
        "sources:\n  - {name: s, kind: feed, url: 'https://example.org/rss.xml'}\n"
        f"notify:\n{notify}", encoding="utf-8")
    return path


def article(n: int, *, matches: list[MatchRecord], **kw: object) -> ArticleRecord:
    values: dict[str, object] = dict(
        topic="t", source="s", url=f"https://a.example/{n}", canonical_url=f"https://a.example/{n}",
        text=f"text {n}", content_hash=f"h{n}", title=f"Title {n}", outlet=f"Outlet {n}",
        fetched_at=NOW, matches=matches)
    values.update(kw)
    return ArticleRecord(**values)  # type: ignore[arg-type]


CONFLICT = MatchRecord("layoffs", "Only 30 of 1,600 workers remain.", 1, 93.0, "linked", True,
                       ["25", "1600"], ["30", "1600"])
REPEAT = MatchRecord("priority", "Musk said child exploitation is his top priority.", 0, 97.0,
                     "linked")


def test_each_event_is_sent_once_per_channel(store: Store, receiver: Receiver,
                                             tmp_path: Path) -> None:
    topic = load_topic(write_topic(tmp_path, f"  - {receiver.url}\n"))
    store.save(article(1, matches=[CONFLICT]))
    store.save(article(2, matches=[REPEAT]))
    store.save(article(3, matches=[REPEAT], duplicate_of_id=None, url="https://a.example/3"))
    [report] = notify_topic(store.sessions, topic, base_url="https://desk.example.org")
    assert report.sent and report.error is None
    [message] = receiver.messages
    assert message["title"] == "claimwatch · t: 1 conflict, 2 new reports"
    body = message["message"]
    assert body.index("**Conflict**") < body.index("**New report**")
    assert "the claim says 25, 1600, this says 30, 1600" in body
    assert "(https://desk.example.org/article/" in body
    # Nothing new: nothing sent. A new article: only it.
    [again] = notify_topic(store.sessions, topic)
    assert not again.events and len(receiver.messages) == 1
    store.save(article(4, matches=[CONFLICT]))
    notify_topic(store.sessions, topic)
    assert len(receiver.messages) == 2
    assert receiver.messages[1]["title"] == "claimwatch · t: 1 conflict"
    assert "Outlet 4" in receiver.messages[1]["message"]


def test_an_unreachable_channel_keeps_its_place(store: Store, receiver: Receiver,
                                                tmp_path: Path) -> None:
    topic = load_topic(write_topic(tmp_path, f"  - {receiver.url}\n"))
    store.save(article(1, matches=[CONFLICT]))
    receiver.status = 500
    [failed] = notify_topic(store.sessions, topic)
    assert not failed.sent and failed.error and "FAILED" in failed.line()
    with store.sessions() as session:
        state = session.query(NotifyState).one()
        assert state.last_error == failed.error and state.last_article_id == 0
    store.save(article(2, matches=[REPEAT]))
    receiver.status = 200
    [sent] = notify_topic(store.sessions, topic)
    assert sent.sent
    [message] = receiver.messages
    assert message["title"] == "claimwatch · t: 1 conflict, 1 new report"


def test_copies_and_unwatched_claims_and_unwanted_events_are_not_sent(
        store: Store, receiver: Receiver, tmp_path: Path) -> None:
    topic = load_topic(write_topic(
        tmp_path, f"  - {{url: '{receiver.url}', events: [new_report], claims: [layoffs]}}\n"))
    original = store.save(article(1, matches=[REPEAT]))
    store.save(article(2, matches=[REPEAT], duplicate_of_id=original.id, duplicate_kind="copy"))
    store.save(article(3, matches=[CONFLICT]))
    [report] = notify_topic(store.sessions, topic)
    assert report.events == [] and receiver.messages == []
    store.save(article(4, matches=[MatchRecord("layoffs", "Only 25 of 1,600 remain.", 0, 96.0,
                                               "linked")]))
    notify_topic(store.sessions, topic)
    [message] = receiver.messages
    assert message["title"] == "claimwatch · t: 1 new report" and "`layoffs`" in message["message"]


def test_a_new_channel_starts_with_the_last_day(store: Store, receiver: Receiver,
                                                tmp_path: Path) -> None:
    topic = load_topic(write_topic(tmp_path, f"  - {receiver.url}\n"))
    store.save(article(1, matches=[CONFLICT], fetched_at=NOW - timedelta(days=3)))
    store.save(article(2, matches=[CONFLICT], fetched_at=NOW - timedelta(hours=1)))
    notify_topic(store.sessions, topic)
    [message] = receiver.messages
    assert "Outlet 2" in message["message"] and "Outlet 1" not in message["message"]


def test_source_alarms_are_announced_when_they_start(store: Store, receiver: Receiver,
                                                     tmp_path: Path) -> None:
    topic = load_topic(write_topic(tmp_path, f"  - {{url: '{receiver.url}', "
                                             "events: [source_alarm]}\n"))
    store.update_source_state("t", "s", consecutive_failures=3, last_error="HTTP 503")
    notify_topic(store.sessions, topic)
    [message] = receiver.messages
    assert "**Source alarm**: s is failing: failed 3 times in a row (last error: HTTP 503)" \
        in message["message"]
    notify_topic(store.sessions, topic)
    assert len(receiver.messages) == 1  # announced once, not on every run
    store.update_source_state("t", "s", consecutive_failures=0)
    notify_topic(store.sessions, topic)
    store.update_source_state("t", "s", consecutive_failures=4)
    notify_topic(store.sessions, topic)
    assert len(receiver.messages) == 2  # it cleared, then started again


def test_scraped_text_cannot_format_or_ping(store: Store, receiver: Receiver,
                                            tmp_path: Path) -> None:
    topic = load_topic(write_topic(tmp_path, f"  - {receiver.url}\n"))
    store.save(article(1, matches=[CONFLICT], title="[click](http://evil.example) @channel **x**",
                       outlet="<b>Evil</b>"))
    notify_topic(store.sessions, topic)
    body = receiver.messages[0]["message"]
    assert "[click](http://evil.example)" not in body and "\\[click\\]" in body
    assert "@channel" not in body and "\\*\\*x\\*\\*" in body and "\\<b\\>" in body


def test_notify_command_tests_every_channel(store: Store, receiver: Receiver,
                                            tmp_path: Path, db_url: str) -> None:
    path = write_topic(tmp_path, f"  - {receiver.url}\n  - json://127.0.0.1:9/closed\n")
    result = CliRunner().invoke(main, ["notify", "--test", str(path), "--db", db_url])
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"t: {receiver.url}: test message sent"
    assert "json://127.0.0.1:9/closed: FAILED" in lines[1]
    assert receiver.messages[0]["title"] == "claimwatch · t: test notification"
    assert "Traceback" not in result.output
    store.save(article(1, matches=[CONFLICT]))
    run = CliRunner().invoke(main, ["notify", str(path), "--db", db_url])
    assert "sent 1 conflict" in run.output and "FAILED" in run.output


@pytest.mark.parametrize("notify, where, fragment", [
    ("  - {url: 'json://x/y', events: [conflicts]}\n", "notify[0].events",
     "unknown event 'conflicts'"),
    ("  - {url: 'json://x/y', claims: [layof]}\n", "notify[0].claims", "no claim 'layof'"),
    ("  - 'slack://${CLAIMWATCH_NO_SUCH_VAR}'\n", "notify[0].url",
     "environment variable CLAIMWATCH_NO_SUCH_VAR is not set"),
    ("  - 'not a url'\n", "notify[0].url", "not a notification URL"),
    ("  - {url: 'json://x/y', evnts: [conflict]}\n", "notify[0].evnts", "unknown key 'evnts'"),
    ("  json://x/y\n", "notify", "must be a list of notification URLs"),
])
def test_bad_notify_config_names_the_key(tmp_path: Path, notify: str, where: str,
                                         fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_topic(write_topic(tmp_path, notify))
    assert caught.value.where == where, str(caught.value)
    assert fragment in caught.value.problem


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_HOOK", "tok3n")
    topic = load_topic(write_topic(tmp_path, "  - 'json://127.0.0.1/${CW_HOOK}'\n"))
    [target] = topic.notify
    assert target.url == "json://127.0.0.1/tok3n" and target.shown == "json://127.0.0.1/${CW_HOOK}"
    assert "tok3n" not in repr(target)


def test_a_crawl_sends_the_topics_alerts(receiver: Receiver, tmp_path: Path) -> None:
    """`claimwatch crawl` of the demo site, as a user runs it, with a webhook channel."""
    import shutil
    import socket
    import subprocess
    import sys

    from tests.conftest import DEMO_TOPIC, REPO

    topics = tmp_path / "topics"
    shutil.copytree(DEMO_TOPIC.parent, topics)
    topic_file = topics / DEMO_TOPIC.name
    topic_file.write_text(topic_file.read_text(encoding="utf-8")
                          + f"notify:\n  - {{url: '{receiver.url}', events: [conflict]}}\n",
                          encoding="utf-8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    crawl = subprocess.run(
        [sys.executable, "-m", "claimwatch.cli", "crawl", str(topic_file), "--db", db,
         "--set", f"CLAIMWATCH_SITE_PORT={port}"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert crawl.returncode == 0, crawl.stderr
    assert f"{receiver.url}: sent 2 conflicts" in crawl.stdout
    [message] = receiver.messages
    assert message["title"] == "claimwatch · demo-twitter-child-safety: 2 conflicts"


def test_disputes_are_sent_and_never_count_as_new_reports(store: Store, receiver: Receiver,
                                                          tmp_path: Path) -> None:
    topic = load_topic(write_topic(tmp_path, f"  - {receiver.url}\n"))
    denial = MatchRecord("priority", "Musk never said child exploitation was a priority.", 0,
                         90.0, "linked", stance="disputes")
    store.save(article(1, matches=[denial]))
    notify_topic(store.sessions, topic)
    [message] = receiver.messages
    assert message["title"] == "claimwatch · t: 1 dispute"
    assert "**Disputes** `priority`" in message["message"]
