"""Live progress of a crawl, per source: pages fetched and queued, articles analysed.

On a terminal one status line is redrawn in place (``\\r``, erased with ``ESC[K``) and
the last state is left on screen when the crawl ends; anywhere else (a log file, a
pipe, the daemon's crawl process) a plain line per source is written at most every
``every`` seconds, and only when something changed. It reads Scrapy's stats only:
``scheduler/enqueued`` minus ``scheduler/dequeued`` is what is queued,
``downloader/response_count`` what was fetched, ``item_scraped_count`` what went
through the analysis, ``claimwatch/stored/new`` what was stored.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass(frozen=True)
class SourceProgress:
    source: str
    fetched: int
    queued: int
    analysed: int
    stored: int
    errors: int

    @classmethod
    def from_stats(cls, source: str, stats: Mapping[str, Any]) -> SourceProgress:
        def n(key: str) -> int:
            try:
                return int(stats.get(key, 0) or 0)
            except (TypeError, ValueError):
                return 0

        return cls(
            source=source,
            fetched=n("downloader/response_count"),
            queued=max(n("scheduler/enqueued") - n("scheduler/dequeued"), 0),
            analysed=n("item_scraped_count") + n("item_dropped_count"),
            stored=n("claimwatch/stored/new"),
            errors=sum(int(v) for k, v in stats.items()
                       if k.startswith("claimwatch/errors/") and isinstance(v, int)),
        )

    def text(self) -> str:
        errors = f", {self.errors} errors" if self.errors else ""
        return (f"{self.source}: {self.fetched} fetched, {self.queued} queued, "
                f"{self.analysed} analysed, {self.stored} new{errors}")


class ProgressPrinter:
    """Writes progress to ``stream``: redrawn on a terminal, plain lines elsewhere."""

    def __init__(self, stream: TextIO, *, every: float = 5.0, tty: bool | None = None,
                 clock: Any = time.monotonic) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.every = every
        self.clock = clock
        self._last_line: dict[str, str] = {}
        self._last_time = float("-inf")
        self._drawn = False
        self._started = clock()

    def update(self, progress: list[SourceProgress]) -> None:
        if not progress:
            return
        if self.tty:
            self._redraw(progress)
            return
        now = self.clock()
        if now - self._last_time < self.every:
            return
        changed = [p for p in progress if self._last_line.get(p.source) != p.text()]
        if not changed:
            return
        self._last_time = now
        elapsed = now - self._started
        for p in changed:
            self._last_line[p.source] = p.text()
            self.stream.write(f"progress {elapsed:6.0f}s  {p.text()}\n")
        self.stream.flush()

    def _redraw(self, progress: list[SourceProgress]) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        total = SourceProgress(
            source=f"{len(progress)} source{'s' if len(progress) != 1 else ''}"
            if len(progress) > 1 else progress[0].source,
            fetched=sum(p.fetched for p in progress), queued=sum(p.queued for p in progress),
            analysed=sum(p.analysed for p in progress), stored=sum(p.stored for p in progress),
            errors=sum(p.errors for p in progress))
        line = f"{self.clock() - self._started:5.0f}s  {total.text()}"
        self.stream.write("\r" + line[: max(width - 1, 20)] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """End the redrawn line (the summary table is printed below it)."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
