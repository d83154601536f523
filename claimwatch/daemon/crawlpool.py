"""The daemon's side of its long-lived crawl processes (``python -m crawler.crawlproc``).

Each :class:`CrawlProc` is one such process: a batch goes in on its stdin, each run's
outcome and the end of the batch come back on a pipe of their own (JSON lines), read by
a thread into a queue the supervisor drains. A process runs one batch at a time, so a
kill (timeout, shutdown, the OOM killer) touches only that batch's runs. It is replaced
after ``max_crawls`` crawls or once its memory grew past ``max_growth`` times what it
had after its first batch. Nothing here imports Scrapy: the daemon stays small.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class PoolLimits:
    """When a crawl process is replaced, and how many sources one batch holds."""

    max_crawls: int = 500
    max_growth: float = 1.5
    batch: int = 50

    @classmethod
    def from_settings(cls, settings: Any) -> PoolLimits:
        from crawler import settings as defaults

        def get(name: str) -> Any:
            return settings.get(name, getattr(defaults, name))

        return cls(max_crawls=max(int(get("CLAIMWATCH_CRAWL_PROCESS_MAX_CRAWLS")), 1),
                   max_growth=max(float(get("CLAIMWATCH_CRAWL_PROCESS_MAX_GROWTH")), 1.0),
                   batch=max(int(get("CLAIMWATCH_CRAWL_BATCH")), 1))


@dataclass
class CrawlProc:
    """One long-lived crawl process and the batch it is running (empty when idle)."""

    proc: subprocess.Popen[bytes]
    messages: queue.Queue[dict[str, Any]]
    runs: list[Any] = field(default_factory=list)  # the ActiveRuns of its batch, unsettled
    batch: int | None = None
    crawls: int = 0
    first_rss: int = 0  # after its first batch: what it needs to crawl at all
    rss: int = 0
    retiring: bool = False  # told to exit; gone once its process ended

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def idle(self) -> bool:
        return self.batch is None and not self.retiring and self.proc.poll() is None

    def send(self, message: dict[str, Any]) -> bool:
        """Write one line to the process; False when it is gone."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def retire(self) -> None:
        """Let it finish its batch and exit (end of input)."""
        self.retiring = True
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass

    def signal(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)  # its own session: it and its children
        except (ProcessLookupError, PermissionError):
            try:
                self.proc.send_signal(signum)
            except ProcessLookupError:
                pass

    def worn(self, limits: PoolLimits) -> str | None:
        """Why it should be replaced now (it just finished a batch), or None."""
        if self.crawls >= limits.max_crawls:
            return f"{self.crawls} crawls"
        if self.first_rss and self.rss > self.first_rss * limits.max_growth:
            return (f"memory grew from {self.first_rss / 1e6:.0f} MB to "
                    f"{self.rss / 1e6:.0f} MB")
        return None


def start_crawl_proc(command: Sequence[str], env: dict[str, str]) -> CrawlProc:
    """Start ``command`` (``python -m crawler.crawlproc ...`` without ``--result-fd``).

    Raises OSError when it cannot be started.
    """
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [*command, "--result-fd", str(write_fd)], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, env=env, start_new_session=True, close_fds=True,
            pass_fds=(write_fd,),
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    messages: queue.Queue[dict[str, Any]] = queue.Queue()
    threading.Thread(target=_read_results, args=(read_fd, messages, proc.pid), daemon=True,
                     name=f"claimwatch-crawlproc-{proc.pid}").start()
    return CrawlProc(proc=proc, messages=messages)


def _read_results(fd: int, messages: queue.Queue[dict[str, Any]], pid: int) -> None:
    """Lines from a crawl process into ``messages`` until it closes its end."""
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as results:
        for line in results:
            try:
                message = json.loads(line)
            except ValueError:
                logger.warning("crawl process %s wrote an unreadable line: %r", pid, line[:200])
                continue
            if isinstance(message, dict):
                messages.put(message)


def stop_all(procs: Sequence[CrawlProc], wait: float) -> None:
    """End idle processes (end of input), then SIGTERM and SIGKILL what is left."""
    for item in procs:
        item.retire()
    for signum in (None, signal.SIGTERM, signal.SIGKILL):
        for item in procs:
            if signum is not None and item.proc.poll() is None:
                item.signal(signum)
        for item in procs:
            try:
                item.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        if all(item.proc.poll() is not None for item in procs):
            return
