"""What the daemon is started with, and the error it refuses to start with."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from claimwatch.daemon.digests import SINCE_LAST


class DaemonError(RuntimeError):
    """The daemon cannot start (lock held, bad topic file, address in use)."""


@dataclass
class DaemonOptions:
    topic_files: Sequence[Path]
    db_url: str
    listen: tuple[str, int] | None = ("127.0.0.1", 8750)
    settings: Mapping[str, str] = field(default_factory=dict)  # --set, passed to every crawl
    crawl_timeout: timedelta = timedelta(hours=1)  # unless the source sets `timeout`
    grace: timedelta = timedelta(seconds=30)  # for running crawls at shutdown
    kill_grace: timedelta = timedelta(seconds=10)  # between SIGTERM and SIGKILL of a crawl
    misfire_grace: timedelta = timedelta(minutes=5)
    max_parallel: int = 4  # crawl processes (each runs one batch of a topic's sources at once)
    lease_ttl: timedelta | None = None  # None: CLAIMWATCH_LEASE_TTL
    watch_interval: float = 2.0  # seconds between checks of the topic files
    crawl_verbose: int = 0  # -v flags for the crawl processes
    token: str | None = None  # API/review page access token (needed off loopback)
    python: str = sys.executable
    email_schedule: str | None = None  # cron or "every 1d": email the digest (SMTP from env)
    email_since: str = SINCE_LAST  # or a duration such as 24h
    email_empty: bool = False  # also mail a digest with nothing in it
