"""What the app keeps between requests, in one object per app (``app.extensions``): the
database sessions, the loaded topics, the crawl trigger, and the small per-session
memories (flash messages, the last undoable action, recent failed sign-ins)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.models import Topic
from storage.models import Article

SessionFactory = Callable[[], Session]
TriggerCrawl = Callable[[str, str], object]

UNDO_MINUTES = 15  # the last action of a session can be undone for this long
LOGIN_WINDOW = 60.0
LOGIN_FAILURES = 5  # failed sign-ins per name and address in LOGIN_WINDOW
MAX_MEMORY = 1000  # sessions remembered (flashes, undo), the oldest forgotten first


class DaemonControl(Protocol):
    """What the daemon's API routes need of the daemon (claimwatch/daemon.py)."""

    def trigger(self, topic: str | None, source: str | None) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]: ...


class Desk:
    """The app's state; views reach it through :func:`desk`."""

    def __init__(self, sessions: SessionFactory, topics: Iterable[Topic] | Mapping[str, Topic],
                 *, token: str | None, trigger_crawl: TriggerCrawl | None,
                 crawl_unavailable: str | None, secret: bytes | None,
                 control: DaemonControl | None) -> None:
        self.sessions = sessions
        # The daemon updates this dict in place when its topic files change.
        self.topics: dict[str, Topic] = dict(topics) if isinstance(topics, Mapping) else {
            t.name: t for t in topics}
        self.token = token or None
        self.trigger_crawl = trigger_crawl
        self.crawl_unavailable = crawl_unavailable or (
            "Crawl now is not available here: run `claimwatch daemon`, or "
            "`claimwatch crawl TOPIC_FILE --source NAME` in a terminal.")
        self.secret = secret or secrets.token_bytes(32)
        self.control = control
        self._flashes: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        self._undo: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    # -- database ----------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            yield session

    def topic_names(self, session: Session) -> list[str]:
        """Loaded and stored topics. A loose index scan (one index probe per topic), not
        DISTINCT over every article."""
        stored: set[str] = set()
        topic = session.scalar(select(func.min(Article.topic)))
        while topic is not None and len(stored) < 1000:
            stored.add(topic)
            topic = session.scalar(select(func.min(Article.topic)).where(Article.topic > topic))
        return sorted(set(self.topics) | stored)

    # -- per-session memory --------------------------------------------------------------------

    def flash(self, sid: str, kind: str, message: str) -> None:
        with self._lock:
            self._flashes.setdefault(sid, []).append((kind, message))
            self._flashes.move_to_end(sid)
            while len(self._flashes) > MAX_MEMORY:
                self._flashes.popitem(last=False)

    def pop_flashes(self, sid: str) -> list[tuple[str, str]]:
        with self._lock:
            return self._flashes.pop(sid, [])

    def remember_undo(self, sid: str, action: dict[str, Any]) -> None:
        if not sid:
            return
        with self._lock:
            self._undo[sid] = {**action, "at": time.monotonic()}
            self._undo.move_to_end(sid)
            while len(self._undo) > MAX_MEMORY:
                self._undo.popitem(last=False)

    def pending_undo(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            action = self._undo.get(sid)
        if action is None or time.monotonic() - action["at"] > UNDO_MINUTES * 60:
            return None
        return action

    def forget_undo(self, sid: str) -> None:
        with self._lock:
            self._undo.pop(sid, None)

    def login_allowed(self, key: str) -> bool:
        with self._lock:
            recent = [t for t in self._failures.get(key, [])
                      if time.monotonic() - t < LOGIN_WINDOW]
            if recent:
                self._failures[key] = recent
            else:
                self._failures.pop(key, None)
            return len(recent) < LOGIN_FAILURES

    def login_failed(self, key: str) -> None:
        with self._lock:
            self._failures.setdefault(key, []).append(time.monotonic())
            if len(self._failures) > 10_000:
                self._failures.clear()


def desk() -> Desk:
    """The state of the app handling this request."""
    state: Desk = current_app.extensions["claimwatch"]
    return state
