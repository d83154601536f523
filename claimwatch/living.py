"""The daemon's share of the living store, called once per watch interval from its loop.

- a topic's claims file changed: its stored articles are re-matched
  (:func:`claimwatch.rematch.watch_claims_files`);
- every ``CLAIMWATCH_REVISIT_INTERVAL`` seconds (default 6 h) per topic, its recent
  articles are revisited for edits: ``claimwatch crawl TOPIC_FILE --revisit`` in a
  process of its own (as the daemon's crawls are), which takes each source's lease, so
  a source being crawled is not revisited at the same time (it is reported busy and
  revisited next time).

Kept out of claimwatch/daemon.py so the daemon needs one call: :func:`tick`.
"""

from __future__ import annotations

import logging
import subprocess
import time
import weakref
from typing import Any

from claimwatch.rematch import watch_claims_files

logger = logging.getLogger(__name__)

DEFAULT_REVISIT_INTERVAL = 6 * 3600.0


class _Revisits:
    """Per daemon: when each topic was last revisited, and the revisit running for it."""

    def __init__(self) -> None:
        self.started_at = time.monotonic()
        self.last: dict[str, float] = {}
        self.running: dict[str, subprocess.Popen[bytes]] = {}


_STATE: weakref.WeakKeyDictionary[Any, _Revisits] = weakref.WeakKeyDictionary()


def revisit_interval(daemon: Any) -> float:
    settings = getattr(daemon.options, "settings", {}) or {}
    value = settings.get("CLAIMWATCH_REVISIT_INTERVAL")
    return DEFAULT_REVISIT_INTERVAL if value in (None, "") else float(value)


def revisit_command(daemon: Any, topic_path: str) -> list[str]:
    options = daemon.options
    command = [options.python, "-m", "claimwatch.cli", "crawl", str(topic_path), "--revisit",
               "--trigger", "schedule", "--db", options.db_url, "--no-notify",
               "--no-progress"]
    for name, value in (getattr(options, "settings", {}) or {}).items():
        command += ["--set", f"{name}={value}"]
    return command


def schedule_revisits(daemon: Any, now: float | None = None) -> list[str]:
    """Start the revisits that are due; returns the topic files started."""
    state = _STATE.setdefault(daemon, _Revisits())
    now = time.monotonic() if now is None else now
    every = revisit_interval(daemon)
    started = []
    for path in list(daemon.topics):
        key = str(path)
        proc = state.running.get(key)
        if proc is not None:
            if proc.poll() is None:
                continue  # still revisiting
            if proc.returncode:
                logger.warning("revisit of %s ended with status %s", key, proc.returncode)
            del state.running[key]
        if now - state.last.get(key, state.started_at) < every:
            continue
        state.last[key] = now
        try:
            state.running[key] = subprocess.Popen(
                revisit_command(daemon, key), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                close_fds=True)
        except OSError as exc:
            logger.error("could not start the revisit of %s: %s", key, exc)
            continue
        logger.info("revisiting the recent articles of %s", key)
        started.append(key)
    return started


def stop(daemon: Any, timeout: float = 30.0) -> None:
    """Wait for the revisits this daemon started (a shutting-down daemon, tests)."""
    state = _STATE.get(daemon)
    for proc in list(state.running.values()) if state else []:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()


def tick(daemon: Any) -> None:
    """The daemon's one call, once per watch interval."""
    watch_claims_files(daemon)
    schedule_revisits(daemon)
