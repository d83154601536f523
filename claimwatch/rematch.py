"""Re-analysis from the app: the ``rematch`` command, after a promotion, and in the daemon.

The work is pipeline/rematch.py's; this module decides when it runs:

- ``claimwatch rematch [TOPIC_FILE] [--since 30d]`` (claimwatch/cli/rematch.py);
- after a candidate is promoted to a claim (:func:`rematch_after_promotion`): the
  CLI waits for it, the page starts it in the background (:func:`start_in_background`)
  so the reviewer is not kept waiting;
- when the daemon sees a topic's claims file change (:func:`watch_claims_files`,
  called from the daemon's watch loop, like its topic-file watch).
"""

from __future__ import annotations

import logging
import threading
import weakref
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from config.loader import load_topic
from config.models import Topic
from pipeline.rematch import RematchSummary, rematch_topic
from storage.repository import Store

logger = logging.getLogger(__name__)


def rematch(topic: Topic, sessions: sessionmaker[Session], *, since: datetime | None = None,
            every: bool = False, workers: int | None = None) -> RematchSummary:
    """Re-match ``topic``'s stored articles against its current claims table and query."""
    return rematch_topic(topic, Store(sessions), since=since, every=every, workers=workers)


def rematch_after_promotion(topic_path: Path, sessions: sessionmaker[Session],
                            workers: int | None = None) -> RematchSummary:
    """After a promotion the claims file has the new claim: read it again and re-match."""
    return rematch(load_topic(topic_path), sessions, workers=workers)


_RUNNING: dict[str, threading.Thread] = {}
_RUNNING_LOCK = threading.Lock()


def start_in_background(topic_path: Path, sessions: sessionmaker[Session]) -> bool:
    """Re-match in a thread (one per topic file at a time); False if one is running.

    A run that starts while another runs would do the same work twice; the next
    promotion or claims change starts a new one, which picks up what this one missed.
    """
    key = str(Path(topic_path).resolve())
    with _RUNNING_LOCK:
        running = _RUNNING.get(key)
        if running is not None and running.is_alive():
            return False

        def run() -> None:
            try:
                rematch_after_promotion(Path(topic_path), sessions)
            except Exception:  # noqa: BLE001 - a background run must not kill its host
                logger.exception("re-matching %s failed; `claimwatch rematch %s` retries it",
                                 topic_path, topic_path)

        thread = threading.Thread(target=run, name=f"claimwatch-rematch-{key}", daemon=True)
        _RUNNING[key] = thread
        thread.start()
        return True


def wait_for_background(timeout: float | None = None) -> None:
    """Wait for the background runs (tests, and a host shutting down)."""
    with _RUNNING_LOCK:
        threads = list(_RUNNING.values())
    for thread in threads:
        thread.join(timeout)


# -- the daemon's claims-file watch ---------------------------------------------------------


def _stamp(path: Path | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


_SEEN: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, int] | None]] = \
    weakref.WeakKeyDictionary()


def watch_claims_files(daemon: Any) -> list[str]:
    """Start a re-match for every topic whose claims file changed since the last look.

    ``daemon`` has ``topics`` (topic file path -> loaded topic with ``.topic``) and
    ``sessions``. The first look only notes the files; returns the topic files whose
    re-match was started.
    """
    seen = _SEEN.setdefault(daemon, {})
    started = []
    for path, loaded in list(daemon.topics.items()):
        stamp = _stamp(loaded.topic.claims_path)
        key = str(path)
        if key not in seen:
            seen[key] = stamp
            continue
        if stamp == seen[key]:
            continue
        seen[key] = stamp
        logger.info("the claims table of %s changed: re-matching its stored articles", path)
        if start_in_background(Path(path), daemon.sessions):
            started.append(key)
    return started
