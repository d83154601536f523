"""The daemon's long-lived crawl processes (claimwatch/daemon/supervision.py, crawlpool.py,
crawler/crawlproc.py): batches, recycling, crashes, timeouts and the conditional GET.

Every test starts ``claimwatch daemon`` as a subprocess (tests/test_daemon.py's harness)
against local HTTP servers.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from storage.models import SourceState
from tests import test_daemon as harness
from tests.test_daemon import DB, Daemon, article_html, finished, wait_for, write_topic

# tests/test_daemon.py's fixtures: its feed site, a database, daemons stopped after the test.
site = harness.site
db = harness.db
daemons = harness.daemons


class EtagFeed(BaseHTTPRequestHandler):
    """``/feed.xml``: two articles, ETag ``"v1"``, 304 to a matching If-None-Match;
    ``/art/N``: an article. Every request is counted by path."""

    hits: dict[str, int] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            self.hits[self.path] = self.hits.get(self.path, 0) + 1
        base = f"http://{self.headers['Host']}"
        if self.path == "/feed.xml":
            if self.headers.get("If-None-Match") == '"v1"':
                self.send_response(304)
                self.send_header("ETag", '"v1"')
                self.end_headers()
                return
            items = "".join(f"<item><title>Twitter child safety report e{n}</title>"
                            f"<link>{base}/art/e{n}</link></item>" for n in (1, 2))
            body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                    f"<link>{base}/</link><description>d</description>{items}"
                    "</channel></rss>").encode()
            kind, etag = "application/rss+xml", '"v1"'
        elif self.path.startswith("/art/"):
            body, kind, etag = article_html(self.path[5:]), "text/html; charset=utf-8", None
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def etag_site() -> Iterator[str]:
    EtagFeed.hits = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), EtagFeed)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def done_runs(db: DB, source: str) -> list[Any]:
    """Finished runs (a run's ``finished`` and ``exit_code`` are written together)."""
    return [r for r in db.runs(source) if r.finished is not None]


def test_a_process_runs_crawl_after_crawl_and_is_replaced_after_n(
        tmp_path: Path, site: str, db: DB, daemons: Callable[..., Daemon]) -> None:
    feed = f"{site}/feed.xml?items=art/p1"
    topic = write_topic(tmp_path / "topic.yaml",
                        [{"name": "wire", "kind": "feed", "url": feed, "schedule": "every 1s"}])
    daemon = daemons([topic], db.url, "--set", "CLAIMWATCH_CRAWL_PROCESS_MAX_CRAWLS=3")
    runs = wait_for(lambda: (lambda r: r if len(r) >= 7 else None)(done_runs(db, "wire")), 60,
                    "seven scheduled runs", daemon)
    assert all(r.status == "ok" and r.exit_code == 0 for r in runs), \
        [(r.id, r.status, r.exit_code, r.error) for r in runs]
    pids = [r.pid for r in sorted(runs, key=lambda r: r.id)][:6]
    # Three crawls in one process, then a new process for the next three.
    assert pids[0] == pids[1] == pids[2] != pids[3]
    assert pids[3] == pids[4] == pids[5] and daemon.proc.pid not in pids
    wait_for(lambda: not pid_alive(pids[0]), 10, "the worn process to exit")
    assert runs[0].counts["new"] == 1 and all(r.counts["new"] == 0 for r in runs[1:])
    assert daemon.stop() == 0


def test_a_crash_fails_only_its_batch_and_a_new_process_takes_the_next(
        tmp_path: Path, site: str, db: DB, daemons: Callable[..., Daemon]) -> None:
    token = f"c{time.monotonic_ns()}"
    slow = f"{site}/feed.xml?items=art/{token}a&delay=4"
    topic = write_topic(tmp_path / "topic.yaml", [
        {"name": "one", "kind": "feed", "url": slow},
        {"name": "two", "kind": "feed", "url": slow, "timeout": "15s"},
        {"name": "hang", "kind": "feed", "url": f"{site}/hang.xml", "timeout": "15s"},
    ])
    daemon = daemons([topic], db.url)
    # A manual crawl of two sources of one topic goes out as one batch: one process.
    status, data = daemon.request("POST", "/api/crawl", {"source": "one"})
    assert status == 202, data
    status, data = daemon.request("POST", "/api/crawl", {})
    assert status == 202 and {r["source"] for r in data["runs"]} == {"two", "hang"}, data
    ids = {r["source"]: r["id"] for r in data["runs"]}
    first = wait_for(lambda: [r for r in db.runs("one") if r.pid], 20, "run one's process",
                     daemon)[0]
    two = wait_for(lambda: [r for r in db.runs("two") if r.pid], 20, "run two's process",
                   daemon)[0]
    hang = [r for r in db.runs("hang")][0]
    assert two.pid == hang.pid != first.pid  # batched together, apart from the earlier one
    # The OOM killer takes the first process mid-crawl: its run fails, nothing else does.
    os.kill(first.pid, signal.SIGKILL)
    crashed = wait_for(lambda: finished(db, first.id), 20, "the crash recorded", daemon)
    assert crashed.status == "failed" and crashed.exit_code == -signal.SIGKILL
    assert crashed.error == "the crawl process was killed by SIGKILL before it recorded an outcome"
    # The hanging source times out and its process is stopped; the other run of its
    # batch had finished by then.
    timed_out = wait_for(lambda: finished(db, ids["hang"]), 30, "the timeout", daemon)
    assert timed_out.status == "timeout" and timed_out.error == "killed after the crawl " \
        "timeout of 15s"
    assert finished(db, ids["two"]).status == "ok"
    # The daemon goes on: the next crawl runs in a new process and succeeds.
    status, data = daemon.request("POST", "/api/crawl", {"source": "one"})
    assert status == 202, data
    again = wait_for(lambda: finished(db, data["runs"][0]["id"]), 30, "the next crawl", daemon)
    assert again.status == "ok" and again.pid not in (first.pid, hang.pid), again.error
    assert db.articles().count(f"{site}/art/{token}a") == 1  # stored once, by run two
    processes = daemon.health()["crawl_processes"]
    assert processes["started"] >= 3 and processes["queued"] == 0
    assert again.pid in {p["pid"] for p in processes["processes"]}
    assert daemon.stop() == 0
    assert all(r.status != "running" for r in db.runs())


def test_an_unchanged_feed_costs_a_304_and_is_not_parsed_again(
        tmp_path: Path, etag_site: str, db: DB, daemons: Callable[..., Daemon]) -> None:
    topic = write_topic(tmp_path / "topic.yaml", [
        {"name": "etag", "kind": "feed", "url": f"{etag_site}/feed.xml", "schedule": "every 1s"}])
    daemon = daemons([topic], db.url)
    runs = wait_for(lambda: (lambda r: r if len(r) >= 3 else None)(done_runs(db, "etag")), 40,
                    "three scheduled runs", daemon)
    assert daemon.stop() == 0
    runs = sorted(runs, key=lambda r: r.id)
    assert all(r.status == "ok" for r in runs), [(r.status, r.error) for r in runs]
    assert runs[0].counts["new"] == 2 and runs[0].counts["not_modified"] == 0
    for later in runs[1:]:
        # Counted as unchanged: no page fetched, nothing parsed or stored.
        assert later.counts["not_modified"] == 1, later.counts
        assert later.counts["fetched"] == 0 and later.counts["new"] == 0
        assert later.counts["seen"] == 0 and later.counts["skipped"] == 0
    assert EtagFeed.hits["/art/e1"] == EtagFeed.hits["/art/e2"] == 1
    assert EtagFeed.hits["/feed.xml"] >= len(runs)
    state = db.query(lambda s: s.query(SourceState).one())
    assert state.etag == '"v1"' and state.items_seen == 2  # the 304s listed no entries
    assert state.consecutive_failures == 0 and state.last_success is not None


def test_a_run_is_finished_with_its_exit_code_in_one_write(
        tmp_path: Path, site: str, db: DB) -> None:
    """A crawl process writes each run's outcome and exit code together: when it reports
    a run (before any daemon has read the report) the row is complete, so no reader of
    /api/runs sees a finished run without its exit code."""
    import json
    import subprocess
    import sys

    from storage.db import open_db
    from storage.models import CrawlRun, utcnow

    topic = write_topic(tmp_path / "topic.yaml", [
        {"name": "wire", "kind": "feed", "url": f"{site}/feed.xml?items=art/x1"},
        {"name": "gone", "kind": "feed", "url": f"{site}/no-such-feed.xml"}])
    engine, sessions = open_db(db.url)
    try:
        with sessions.begin() as session:
            rows = [CrawlRun(topic="daemon-test", source=name, trigger="manual",
                             started=utcnow(), status="running", counts={})
                    for name in ("wire", "gone", "unknown")]
            session.add_all(rows)
            session.flush()
            ids = {row.source: row.id for row in rows}
    finally:
        engine.dispose()
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.crawlproc", "--db", db.url, "--result-fd",
         str(write_fd), *harness.CRAWL_SETTINGS], cwd=harness.REPO, stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, pass_fds=(write_fd,),
        env=dict(os.environ, PYTHONPATH=str(harness.REPO)))
    os.close(write_fd)
    try:
        assert proc.stdin is not None
        proc.stdin.write((json.dumps({
            "op": "crawl", "batch": 1, "topic_path": str(topic),
            "runs": [{"run_id": run_id, "source": name, "trigger": "manual"}
                     for name, run_id in ids.items()]}) + "\n").encode())
        proc.stdin.flush()
        seen: dict[str, tuple[Any, ...]] = {}
        with os.fdopen(read_fd, encoding="utf-8") as results:
            for line in results:
                message = json.loads(line)
                if message["op"] == "run":  # read the row at once, as a reader might
                    row = db.query(lambda s, m=message: s.get(CrawlRun, m["run_id"]))
                    seen[message["source"]] = (message["status"], row.status,
                                               row.finished is not None, row.exit_code)
                elif message["op"] == "batch":
                    break
        proc.stdin.close()
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert seen == {"wire": ("ok", "ok", True, 0), "gone": ("failed", "failed", True, 1),
                    "unknown": ("failed", "failed", True, 1)}, seen
