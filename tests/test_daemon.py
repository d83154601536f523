"""The daemon with real processes: scheduled runs, manual triggers, kill -9, crashes, hangs.

Every test starts ``claimwatch daemon`` as a subprocess on a temporary SQLite
database, with 2-second schedules against a local HTTP site (articles, feeds, a
slow feed, a feed that hangs), and checks what it recorded in ``crawl_runs``,
what its JSON API says, and how it exits.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from claimwatch.digest import build_digest
from storage.db import make_engine, session_factory
from storage.leases import pid_alive
from storage.models import Article, CrawlLease, CrawlRun, DaemonLock

REPO = Path(__file__).resolve().parents[1]
CRAWL_SETTINGS = [
    "--set", "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=True",
    "--set", "AUTOTHROTTLE_ENABLED=False",
]

# --------------------------------------------------------------------------- the local site

WORDS = ("moderation staff engineers reports accounts removal policy contractors advertisers "
         "regulators lawmakers volunteers researchers council audit backlog tooling hashes "
         "detection review teams queue escalation partners charities experts").split()


def article_html(name: str) -> bytes:
    """A distinct on-topic article (Twitter, child safety) for each name."""
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(name))
    picks = [WORDS[(seed * (k + 3) + k * k) % len(WORDS)] for k in range(12)]
    paragraphs = [
        f"Twitter said on Tuesday that its child safety work continues, according to report "
        f"{name}. The company described changes to {picks[0]} and {picks[1]} after months of "
        f"criticism about how it handles child sexual exploitation material.",
        f"Critics pointed to {picks[2]}, {picks[3]} and {picks[4]}, and asked how many "
        f"{picks[5]} remain. In document {name}, {seed % 97 + 3} {picks[6]} were said to work "
        f"on the problem, while {picks[7]} and {picks[8]} described delays.",
        f"The article {name} also quoted {picks[9]} who said that {picks[10]} and {picks[11]} "
        "would be reviewed again before the end of the quarter.",
    ]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!doctype html><html><head><title>Twitter child safety report {name}</title>"
            f"</head><body><article><h1>Twitter child safety report {name}</h1>{body}"
            "</article></body></html>").encode()


class Site(BaseHTTPRequestHandler):
    """``/feed.xml?items=art/a1,slow/a3/8&delay=3`` lists articles (``&hold=NAME``: after
    the delay, not before the test opens ``Site.gate(NAME)``, 20 s at most); ``/art/NAME``
    is one, ``/slow/NAME/SECONDS`` one that answers after a delay the first time only;
    ``/hang.xml`` never answers in time; anything else is 404."""

    seen: set[str] = set()
    gates: dict[str, threading.Event] = {}
    lock = threading.Lock()

    @classmethod
    def gate(cls, name: str) -> threading.Event:
        """The gate ``&hold=NAME`` feeds wait for (closed until the test sets it)."""
        with cls.lock:
            return cls.gates.setdefault(name, threading.Event())

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the crawl was killed while we slept
            pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        if url.path == "/feed.xml":
            time.sleep(float(query.get("delay", 0)))
            if query.get("hold"):
                self.gate(query["hold"]).wait(20)  # below the crawl's download timeout
            base = f"http://{self.headers['Host']}"
            items = "".join(
                f"<item><title>Twitter child safety report {item}</title>"
                f"<link>{base}/{item}</link><guid>{base}/{item}</guid></item>"
                for item in query.get("items", "").split(",") if item)
            self._send(f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                       f"<link>{base}/</link><description>d</description>{items}"
                       "</channel></rss>".encode(), "application/rss+xml")
        elif parts[0] == "art" and len(parts) == 2:
            self._send(article_html(parts[1]), "text/html; charset=utf-8")
        elif parts[0] == "slow" and len(parts) == 3:
            with self.lock:
                first = url.path not in self.seen
                self.seen.add(url.path)
            if first:
                time.sleep(float(parts[2]))
            self._send(article_html(parts[1]), "text/html; charset=utf-8")
        elif url.path == "/hang.xml":
            time.sleep(30)
            self._send(b"<rss/>", "application/rss+xml")
        else:
            self._send(b"not found", "text/plain", 404)


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def write_topic(path: Path, sources: list[dict[str, str]], name: str = "daemon-test") -> Path:
    lines = [f"name: {name}", 'query: {any: ["Twitter"], and_any: ["child"]}', "sources:"]
    for source in sources:
        lines.append("  - " + json.dumps(source))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the daemon process


class Daemon:
    """``claimwatch daemon`` in a subprocess, its log in a file, its API at ``self.url``."""

    def __init__(self, tmp_path: Path, topics: list[Path], db_url: str, *extra: str) -> None:
        self.log = tmp_path / f"daemon-{time.monotonic_ns()}.log"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        env.pop("CLAIMWATCH_DB", None)
        command = [sys.executable, "-m", "claimwatch.cli", "daemon", *map(str, topics),
                   "--db", db_url, "--listen", "127.0.0.1:0", "--grace", "6s",
                   "--kill-grace", "2s", *CRAWL_SETTINGS, *extra]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.url = ""

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 20) -> Daemon:
        def ready() -> bool:
            match = re.search(r"API at (http://127\.0\.0\.1:\d+)/api/health", self.text())
            if match:
                self.url = match.group(1)
            assert self.proc.poll() is None, f"daemon exited:\n{self.text()}"
            return bool(match)

        wait_for(ready, timeout, "the daemon to start", self)
        return self

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def health(self) -> dict[str, Any]:
        return self.request("GET", "/api/health")[1]

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 20) -> int:
        self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not stop in {timeout}s:\n{self.text()}") from None


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(topics: list[Path], db_url: str, *extra: str) -> Daemon:
        daemon = Daemon(tmp_path, topics, db_url, *extra)
        started.append(daemon)
        return daemon.wait_ready()

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             daemon: Daemon | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            log = f"\n--- daemon log ---\n{daemon.text()[-6000:]}" if daemon else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{log}")
        time.sleep(0.2)


class DB:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, fn: Callable[[Any], Any]) -> Any:
        engine = make_engine(self.url)
        try:
            with session_factory(engine)() as session:
                return fn(session)
        finally:
            engine.dispose()

    def runs(self, source: str | None = None) -> list[CrawlRun]:
        def get(session: Any) -> list[CrawlRun]:
            query = select(CrawlRun).order_by(CrawlRun.id)
            if source:
                query = query.where(CrawlRun.source == source)
            return list(session.scalars(query))

        return self.query(get)

    def articles(self) -> list[str]:
        return self.query(lambda s: list(s.scalars(select(Article.canonical_url))))

    def count(self, model: type) -> int:
        return self.query(lambda s: s.scalar(select(func.count()).select_from(model)))


@pytest.fixture
def db(tmp_path: Path) -> DB:
    return DB(f"sqlite:///{tmp_path / 'daemon.sqlite'}")


def assert_never_overlapping(runs: list[CrawlRun]) -> None:
    ordered = sorted(runs, key=lambda r: r.started)
    for before, after in zip(ordered, ordered[1:], strict=False):
        assert before.finished is not None and before.finished <= after.started, (
            f"runs {before.id} ({before.trigger}) and {after.id} ({after.trigger}) overlap")


def ok_runs(db: DB, count: int, after: int = 0) -> list[CrawlRun] | None:
    runs = [r for r in db.runs() if r.id > after and r.status == "ok"]
    return runs if len(runs) >= count else None


def finished(db: DB, run_id: int) -> CrawlRun | None:
    run: CrawlRun = db.query(lambda s: s.get(CrawlRun, run_id))
    return run if run.status != "running" else None


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "claimwatch.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- the tests


def test_scheduled_runs_are_recorded_reloads_and_sigterm_exits_0(
        tmp_path: Path, site: str, db: DB, daemons: Callable[..., Daemon]) -> None:
    feed = f"{site}/feed.xml?items=art/s1a,art/s1b"
    topic = write_topic(tmp_path / "topic.yaml",
                        [{"name": "wire", "kind": "feed", "url": feed, "schedule": "every 2s"}])
    daemon = daemons([topic], db.url)

    first, second = wait_for(lambda: ok_runs(db, 2), 30, "two scheduled runs", daemon)[:2]
    assert first.trigger == second.trigger == "schedule"
    assert first.counts["new"] == 2 and second.counts["new"] == 0
    assert first.exit_code == 0 and first.pid and first.pid != daemon.proc.pid
    assert first.finished is not None and second.started >= first.finished
    assert sorted(db.articles()) == [f"{site}/art/s1a", f"{site}/art/s1b"]

    status, data = daemon.request("GET", "/api/runs?source=wire")
    assert status == 200 and {first.id, second.id} <= {r["id"] for r in data["runs"]}
    health = daemon.health()
    assert health["status"] == "ok", health
    assert health["daemon"]["pid"] == daemon.proc.pid
    assert [(j["id"], j["trigger"]) for j in health["scheduler"]["jobs"]] == [
        ("daemon-test/wire", "interval[0:00:02]")]
    assert health["sources"][0]["last_success"] and health["sources"][0]["alarm"] is None
    # The review pages (claimwatch/web/) are served by the same app, outside /api/.
    with urllib.request.urlopen(daemon.url + "/sources", timeout=10) as page:
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "wire" in page.read().decode()

    # A second daemon on the same database refuses to start, naming the first.
    second_daemon = run_cli("daemon", str(topic), "--db", db.url, "--listen", "127.0.0.1:0",
                            timeout=30)
    assert second_daemon.returncode == 1
    assert "another claimwatch daemon is already running on database" in second_daemon.stderr
    assert f"pid {daemon.proc.pid} on host" in second_daemon.stderr
    assert daemon.url.removeprefix("http://") in second_daemon.stderr

    # The topic file changes: the schedule follows without a restart.
    write_topic(topic, [
        {"name": "wire", "kind": "feed", "url": feed, "schedule": "every 1h"},
        {"name": "extra", "kind": "feed", "url": feed, "schedule": "*/5 * * * *"},
    ])
    def jobs() -> dict[str, str]:
        return {job["id"]: job["trigger"] for job in daemon.health()["scheduler"]["jobs"]}

    wait_for(lambda: jobs().get("daemon-test/wire") == "interval[1:00:00]", 10, "the reload",
             daemon)
    assert set(jobs()) == {"daemon-test/wire", "daemon-test/extra"}
    assert jobs()["daemon-test/extra"].startswith("cron[")

    # A broken edit is reported (SIGHUP re-reads at once); the schedules are kept.
    topic.write_text("name: daemon-test\nsources: 5\n", encoding="utf-8")
    daemon.proc.send_signal(signal.SIGHUP)
    health = wait_for(lambda: (lambda h: h if h["config_errors"] else None)(daemon.health()),
                      10, "the config error", daemon)
    assert health["status"] == "alarm"
    assert "topic.yaml: sources: must be a list of sources" in health["config_errors"][0]["error"]
    assert len(health["scheduler"]["jobs"]) == 2

    assert daemon.stop() == 0
    assert "claimwatch daemon stopped" in daemon.text()
    assert db.count(DaemonLock) == 0 and db.count(CrawlLease) == 0
    assert all(r.status != "running" for r in db.runs())


def test_a_source_is_never_crawled_twice_at_once(
        tmp_path: Path, site: str, db: DB, daemons: Callable[..., Daemon]) -> None:
    # Each crawl takes 6 s and more; the first one lasts until the refusals below are
    # checked (the gate): `claimwatch crawl` may take longer than 6 s to start under load.
    hold = f"twice-{time.monotonic_ns()}"
    gate = Site.gate(hold)
    feed = f"{site}/feed.xml?items=art/s2a&delay=6&hold={hold}"
    topic = write_topic(tmp_path / "topic.yaml",
                        [{"name": "slow", "kind": "feed", "url": feed, "schedule": "every 2s"}])
    daemon = daemons([topic], db.url, "--grace", "20s")
    try:
        wait_for(lambda: [r for r in db.runs() if r.status == "running" and r.pid], 20,
                 "a scheduled run", daemon)

        # While the scheduled run lasts, `claimwatch crawl` in a terminal is refused (the
        # same lease) and so is a manual crawl through the API.
        env = dict(os.environ, PYTHONPATH=str(REPO))
        cli = subprocess.Popen(
            [sys.executable, "-m", "claimwatch.cli", "crawl", str(topic), "--source", "slow",
             "--db", db.url, *CRAWL_SETTINGS],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        status, data = daemon.request("POST", "/api/crawl", {"source": "slow"})
        assert status == 409, data
        assert data["runs"] == [] and \
            "already being crawled by the claimwatch daemon" in data["error"]
        _, cli_err = cli.communicate(timeout=60)
        assert cli.returncode == 1, cli_err
        assert "already being crawled by the claimwatch daemon" in cli_err
        first = db.runs()
        assert [(r.trigger, r.status) for r in first] == [("schedule", "running")], first
    finally:
        gate.set()

    # Between scheduled runs a manual trigger is accepted and runs (schedule runs wait).
    def accepted() -> Any:
        status, data = daemon.request("POST", "/api/crawl", {"topic": "daemon-test",
                                                             "source": "slow"})
        return data["runs"][0]["id"] if status == 202 else None

    manual_id = wait_for(accepted, 20, "a manual trigger to be accepted", daemon)
    manual = wait_for(lambda: finished(db, manual_id), 20, "the manual run", daemon)
    assert manual.trigger == "manual" and manual.status == "ok", manual.error
    status, data = daemon.request("GET", f"/api/runs/{manual_id}")
    assert status == 200 and data["trigger"] == "manual" and data["status"] == "ok"

    # SIGTERM during a run: the run may finish within the grace period; exit 0.
    wait_for(lambda: any(r.status == "running" for r in db.runs()), 10, "another run", daemon)
    assert daemon.stop() == 0
    runs = db.runs()
    assert runs[-1].status == "ok", runs[-1].error  # finished within --grace
    assert all(r.status == "ok" for r in runs), [(r.id, r.status, r.error) for r in runs]
    assert_never_overlapping(runs)
    assert db.articles() == [f"{site}/art/s2a"]


def test_kill_9_mid_crawl_then_restart(
        tmp_path: Path, site: str, db: DB, daemons: Callable[..., Daemon]) -> None:
    token = f"k{time.monotonic_ns()}"
    feed = f"{site}/feed.xml?items=art/{token}a,art/{token}b,slow/{token}c/15"
    topic = write_topic(tmp_path / "topic.yaml",
                        [{"name": "wire", "kind": "feed", "url": feed, "schedule": "every 2s"}])
    daemon = daemons([topic], db.url)
    # Two articles stored, the third still loading: kill -9 the daemon.
    wait_for(lambda: len(db.articles()) == 2, 30, "two articles", daemon)
    run = [r for r in db.runs() if r.status == "running"][0]
    daemon.proc.kill()
    daemon.proc.wait(10)
    # The crawl subprocess dies with its daemon.
    assert run.pid is not None
    child = run.pid
    wait_for(lambda: not pid_alive(child), 10, "the crawl process to die")
    assert db.query(lambda s: s.get(CrawlRun, run.id)).status == "running"

    restarted = daemons([topic], db.url)
    interrupted = db.query(lambda s: s.get(CrawlRun, run.id))
    assert interrupted.status == "interrupted" and interrupted.finished is not None
    assert interrupted.counts["new"] == 2  # what it stored before the kill (issue 12)
    assert interrupted.error == (f"interrupted: the claimwatch daemon (pid {daemon.proc.pid} on "
                                 f"host {os.uname().nodename}) stopped before the run finished")
    # The schedule resumes: the next runs complete, the missing article is stored once.
    after = wait_for(lambda: ok_runs(db, 2, after=run.id), 30, "two runs", restarted)
    assert after[0].counts["new"] == 1 and after[1].counts["new"] == 0
    urls = db.articles()
    assert sorted(urls) == sorted({f"{site}/art/{token}a", f"{site}/art/{token}b",
                                   f"{site}/slow/{token}c/15"})
    assert restarted.stop() == 0
    assert_never_overlapping(db.runs())


def test_crashed_hung_and_failing_crawls_are_recorded_and_the_daemon_goes_on(
        tmp_path: Path, site: str, db: DB, daemons: Callable[..., Daemon]) -> None:
    topic = write_topic(tmp_path / "topic.yaml", [
        {"name": "victim", "kind": "feed", "url": f"{site}/feed.xml?items=art/s4a&delay=3",
         "schedule": "every 2s"},
        {"name": "hang", "kind": "feed", "url": f"{site}/hang.xml", "schedule": "every 2s",
         "timeout": "5s"},
        {"name": "broken", "kind": "feed", "url": f"{site}/missing.xml", "schedule": "every 2s"},
        {"name": "sleepy", "kind": "feed", "url": f"{site}/feed.xml?delay=25"},  # manual only
    ])
    daemon = daemons([topic], db.url, "--set", "CLAIMWATCH_ALARM_FAILURES=2", "--grace", "1s")

    # A crawl process that dies (here: SIGKILL, as the OOM killer would) is a failed run.
    victim = wait_for(lambda: [r for r in db.runs("victim") if r.status == "running" and r.pid],
                      20, "a victim run", daemon)[0]
    os.kill(victim.pid, signal.SIGKILL)
    crashed = wait_for(lambda: finished(db, victim.id), 10, "the crash to be recorded", daemon)
    assert crashed.status == "failed" and crashed.exit_code == -signal.SIGKILL
    assert crashed.error == "the crawl process was killed by SIGKILL before it recorded an outcome"
    # ... and the daemon goes on: the next run of the same source succeeds.
    wait_for(lambda: any(r.id > victim.id and r.status == "ok" for r in db.runs("victim")), 40,
             "a later victim run", daemon)

    # A crawl that hangs is stopped after the source's timeout.
    timed_out = wait_for(lambda: [r for r in db.runs("hang") if r.status == "timeout"], 40,
                         "a timeout", daemon)[0]
    assert timed_out.error == "killed after the crawl timeout of 5s"
    assert timed_out.finished is not None
    assert 5 <= (timed_out.finished - timed_out.started).total_seconds() < 15

    # Two failures in a row raise the gap alarm, in the health endpoint and the digest.
    def broken_alarm() -> Any:
        health = daemon.health()
        alarms = [a for a in health["alarms"] if a["source"] == "broken"]
        return (health, alarms[0]) if alarms else None

    health, alarm = wait_for(broken_alarm, 40, "the failing alarm", daemon)
    assert health["status"] == "alarm" and alarm["kind"] == "failing"
    assert alarm["message"].startswith("failed ") and "times in a row" in alarm["message"]
    assert daemon.request("GET", "/api/health?strict=1")[0] == 503
    digest = db.query(lambda s: build_digest(s, topic="daemon-test"))
    by_name = {source["name"]: source for source in digest["sources"]}
    assert by_name["broken"]["consecutive_failures"] >= 2
    assert by_name["victim"]["alarm"] is None

    # SIGTERM with a crawl that outlasts the grace period (1 s): it is stopped, exit 0.
    status, data = daemon.request("POST", "/api/crawl", {"source": "sleepy"})
    assert status == 202, data
    sleepy = data["runs"][0]["id"]
    wait_for(lambda: db.query(lambda s: s.get(CrawlRun, sleepy)).pid, 10, "sleepy's process")
    assert daemon.stop() == 0
    stopped = db.query(lambda s: s.get(CrawlRun, sleepy))
    assert stopped.status == "interrupted" and stopped.trigger == "manual"
    assert stopped.error == "the daemon stopped it at shutdown after its grace period"
    runs = db.runs()
    assert all(r.status != "running" for r in runs)
    for name in ("victim", "hang", "broken"):
        assert_never_overlapping([r for r in runs if r.source == name])


def test_the_revisit_interval_is_a_number_of_seconds() -> None:
    from datetime import timedelta

    from claimwatch.daemon import DaemonError
    from claimwatch.daemon.scheduling import revisit_interval

    assert revisit_interval({}) == timedelta(hours=6)  # crawler/settings.py's default
    assert revisit_interval({"CLAIMWATCH_REVISIT_INTERVAL": "90"}) == timedelta(seconds=90)
    for bad in ("0", "-5", "soon", "nan", ""):
        with pytest.raises(DaemonError, match="CLAIMWATCH_REVISIT_INTERVAL must be"):
            revisit_interval({"CLAIMWATCH_REVISIT_INTERVAL": bad})
