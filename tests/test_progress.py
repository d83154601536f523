"""Live crawl progress (crawler/progress.py): redrawn on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from crawler.progress import ProgressPrinter, SourceProgress

STATS = {"downloader/response_count": 12, "scheduler/enqueued": 20, "scheduler/dequeued": 13,
         "item_scraped_count": 9, "item_dropped_count": 1, "claimwatch/stored/new": 7,
         "claimwatch/errors/fetch": 2}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_from_stats() -> None:
    p = SourceProgress.from_stats("wire", STATS)
    assert (p.fetched, p.queued, p.analysed, p.stored, p.errors) == (12, 7, 10, 7, 2)
    assert p.text() == "wire: 12 fetched, 7 queued, 10 analysed, 7 new, 2 errors"
    empty = SourceProgress.from_stats("x", {"scheduler/dequeued": 3, "odd": "text"})
    assert empty.text() == "x: 0 fetched, 0 queued, 0 analysed, 0 new"


def test_plain_lines_when_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, every=5, tty=False, clock=clock)
    printer.update([SourceProgress.from_stats("wire", STATS)])
    clock.now = 2
    printer.update([SourceProgress.from_stats("wire", {**STATS, "item_scraped_count": 10})])
    clock.now = 6
    printer.update([SourceProgress.from_stats("wire", STATS)])  # unchanged: nothing
    clock.now = 12
    printer.update([SourceProgress.from_stats("wire", {**STATS, "claimwatch/stored/new": 8})])
    printer.close()
    lines = out.getvalue().splitlines()
    assert lines == ["progress      0s  wire: 12 fetched, 7 queued, 10 analysed, 7 new, 2 errors",
                     "progress     12s  wire: 12 fetched, 7 queued, 10 analysed, 8 new, 2 errors"]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_one_redrawn_line_on_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    printer = ProgressPrinter(out, tty=True, clock=clock)
    printer.update([SourceProgress.from_stats("a", STATS), SourceProgress.from_stats("b", STATS)])
    clock.now = 1
    printer.update([SourceProgress.from_stats("a", STATS)])
    printer.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\x1b[K\n")
    assert "2 sources: 24 fetched, 14 queued, 20 analysed, 14 new, 4 errors" in text
    assert "a: 12 fetched" in text.split("\r")[-1]


def test_crawl_command_shows_progress_and_the_page_shows_running_crawls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`claimwatch crawl` (stderr not a terminal: plain lines), then a run still running
    as the sources page shows it."""
    import socket
    import subprocess
    import sys

    from claimwatch.web import make_app
    from config.loader import load_topic
    from storage.db import open_db
    from storage.models import CrawlRun, utcnow
    from tests.conftest import DEMO_TOPIC, REPO
    from tests.test_web import Client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    crawl = subprocess.run(  # slowed down, so that it lasts a few ticks of the progress
        [sys.executable, "-m", "claimwatch.cli", "crawl", str(DEMO_TOPIC), "--db", db,
         "--set", f"CLAIMWATCH_SITE_PORT={port}", "--set", "DOWNLOAD_DELAY=0.25",
         "--set", "CLAIMWATCH_RUN_COUNTS_INTERVAL=0.5"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert crawl.returncode == 0, crawl.stderr
    lines = [line for line in crawl.stderr.splitlines() if line.startswith("progress")]
    assert lines and "demo-wire:" in lines[0] and " fetched, " in lines[0], crawl.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "claimwatch.cli", "crawl", str(DEMO_TOPIC), "--db", db,
         "--set", f"CLAIMWATCH_SITE_PORT={port}", "--no-progress"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "progress" not in quiet.stderr
    engine, sessions = open_db(db)
    try:
        with sessions.begin() as session:
            session.add(CrawlRun(topic="demo-twitter-child-safety", source="demo-wire",
                                 trigger="manual", started=utcnow(), status="running",
                                 counts={"fetched": 7, "new": 3, "duplicates": 1, "errors": 0}))
        page = Client(make_app(sessions, [load_topic(DEMO_TOPIC)])).get("/sources").text
    finally:
        engine.dispose()
    assert "Running now" in page
    assert "7 fetched, 3 new, 1 duplicates, 0 errors" in page
