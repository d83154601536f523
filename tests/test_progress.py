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
