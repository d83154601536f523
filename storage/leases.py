"""Leases in the database: who crawls a source right now, and the one daemon per database.

A source is never crawled twice at once, whether the crawl comes from the daemon's
schedule, its API or ``claimwatch crawl`` in a terminal: each takes the source's
lease (a ``crawl_leases`` row keyed on topic and source) before it starts and gives
it back when it ends. The daemon takes ``daemon_locks`` the same way, so a second
daemon on the same database refuses to start (APScheduler must have one scheduler
per job store).

Taking a lease is atomic on SQLite and PostgreSQL alike: a conditional ``UPDATE``
(the row has expired), else ``INSERT ... ON CONFLICT DO NOTHING``; the row count
says who won. Leases are not re-entrant: a holder is refused a lease it has.

A holder renews its leases while it works (a :class:`LeaseKeeper` does it in a
thread); a lease that was not renewed in time (its holder hung or died on another
host) expires and can be taken over, and one whose holder process is gone from
this host (``kill -9``, a crash) can be taken over at once.

Clocks: expiry times come from each holder's clock, so hosts sharing a database
should keep their clocks in sync (NTP); the lease time-to-live (60 s by default)
dwarfs ordinary skew.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, and_, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from storage.models import Article, CrawlLease, CrawlRun, DaemonLock, utcnow
from storage.repository import insert_ignore

logger = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(seconds=60)
DAEMON_LOCK = "daemon"

ROLE_DESCRIPTIONS = {
    "daemon": "the claimwatch daemon",
    "crawl": "`claimwatch crawl`",
}

# Holder tokens created in this process: a lease that names this process's pid but
# none of these tokens was left by an earlier process that had the same pid.
_LOCAL_TOKENS: set[str] = set()


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a role (daemon, crawl), a host, a process and a random token."""

    role: str
    host: str
    pid: int
    token: str

    @classmethod
    def new(cls, role: str) -> Holder:
        """A holder for this process. Each call gives a new token."""
        token = secrets.token_hex(4)
        _LOCAL_TOKENS.add(token)
        return cls(role=role, host=socket.gethostname(), pid=os.getpid(), token=token)

    @property
    def id(self) -> str:
        return f"{self.role}:{self.host}:{self.pid}:{self.token}"


@dataclass(frozen=True)
class LeaseInfo:
    """A lease row as read from the database."""

    key: tuple[str, ...]  # (topic, source) for a crawl lease, (name,) for the daemon lock
    holder: str
    host: str
    pid: int
    acquired: datetime
    expires: datetime
    listen: str | None = None

    @property
    def role(self) -> str:
        return self.holder.split(":", 1)[0]

    def describe(self) -> str:
        """``the claimwatch daemon (pid 12 on host web1) since 2024-05-01T10:00:00Z``."""
        who = ROLE_DESCRIPTIONS.get(self.role, self.role)
        since = self.acquired.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{who} (pid {self.pid} on host {self.host}) since {since}"


class LeaseBusy(RuntimeError):
    """The source is being crawled by someone else."""

    def __init__(self, topic: str, source: str, lease: LeaseInfo) -> None:
        self.topic, self.source, self.lease = topic, source, lease
        super().__init__(
            f"source {source!r} of topic {topic!r} is already being crawled by "
            f"{lease.describe()}; try again when that crawl has finished"
        )


class DaemonLockHeld(RuntimeError):
    """Another daemon uses this database."""

    def __init__(self, lease: LeaseInfo, db: str) -> None:
        self.lease = lease
        where = f", API at http://{lease.listen}" if lease.listen else ""
        expires = lease.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        super().__init__(
            f"another claimwatch daemon is already running on database {db}: "
            f"{lease.describe()}{where}. Stop it first (kill -TERM {lease.pid} on "
            f"{lease.host}, or systemctl stop claimwatch); if it died, its lock expires "
            f"at {expires}"
        )


# ---------------------------------------------------------------------------
# Is the holder still there?
# ---------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def holder_gone(lease: LeaseInfo, *, host: str | None = None) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    if lease.host != (host or socket.gethostname()):
        return False  # another machine: only expiry tells
    if lease.pid == os.getpid():
        token = lease.holder.rsplit(":", 1)[-1]
        return token not in _LOCAL_TOKENS  # an earlier process that had our pid
    return not pid_alive(lease.pid)


def is_live(lease: LeaseInfo | None, now: datetime | None = None) -> bool:
    """A lease that is held: not expired and its holder's process not known to be gone."""
    if lease is None:
        return False
    return lease.expires > (now or utcnow()) and not holder_gone(lease)


# ---------------------------------------------------------------------------
# The atomic take / renew / give back, for any lease table
# ---------------------------------------------------------------------------


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _rowcount(result: Any) -> int:
    """Rows an UPDATE/DELETE matched (``CursorResult.rowcount``)."""
    return int(getattr(result, "rowcount", 0) or 0)


def _where(table: Table, key: dict[str, str]) -> Any:
    return and_(*(table.c[name] == value for name, value in key.items()))


def _info(table: Table, key: dict[str, str], row: Any) -> LeaseInfo:
    return LeaseInfo(
        key=tuple(key.values()), holder=row.holder, host=row.host, pid=row.pid,
        acquired=row.acquired, expires=row.expires,
        listen=getattr(row, "listen", None) if "listen" in table.c else None,
    )


def _taken_info(key: dict[str, str], values: dict[str, Any]) -> LeaseInfo:
    return LeaseInfo(key=tuple(key.values()), holder=values["holder"], host=values["host"],
                     pid=values["pid"], acquired=values["acquired"], expires=values["expires"],
                     listen=values.get("listen"))


def _read(sessions: sessionmaker[Session], table: Table, key: dict[str, str]) -> LeaseInfo | None:
    with sessions() as session:
        row = session.execute(select(table).where(_where(table, key))).one_or_none()
    return _info(table, key, row) if row is not None else None


def _take(
    sessions: sessionmaker[Session],
    table: Table,
    key: dict[str, str],
    holder: Holder,
    ttl: timedelta,
    extra: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[bool, LeaseInfo | None]:
    """Take the lease if it is free, expired or left by a dead process.

    Not re-entrant: a holder that already has the lease is refused too (the daemon
    is one holder for all its crawls, and must not start a source twice).
    Returns (taken, the lease as it stands).
    """
    for _ in range(3):
        now = now or utcnow()
        values = {"holder": holder.id, "host": holder.host, "pid": holder.pid,
                  "acquired": now, "expires": now + ttl, **(extra or {})}
        with sessions.begin() as session:
            # Expired: one conditional UPDATE decides who takes it over.
            taken = _rowcount(session.execute(
                update(table).where(_where(table, key), table.c.expires <= now).values(**values)
            ))
            if not taken:
                taken = insert_ignore(session, table, {**key, **values})
            if taken:
                return True, _taken_info(key, values)
            row = session.execute(select(table).where(_where(table, key))).one_or_none()
        if row is None:
            continue  # released between our INSERT and SELECT: try again
        current = _info(table, key, row)
        if not holder_gone(current):
            return False, current
        # The holder's process is gone: take over exactly that lease (compare-and-set).
        with sessions.begin() as session:
            taken = _rowcount(session.execute(
                update(table)
                .where(_where(table, key), table.c.holder == current.holder,
                       table.c.acquired == current.acquired)
                .values(**values)
            ))
        if taken:
            what = ("the daemon lock" if table.name == "daemon_locks"
                    else "the lease on " + "/".join(key.values()))
            logger.info("took over %s from %s, whose process is gone", what,
                        current.describe())
            return True, _taken_info(key, values)
        now = None  # someone else took it over first: look again
    return False, _read(sessions, table, key)


def _renew(sessions: sessionmaker[Session], table: Table, key: dict[str, str] | None,
           holder: Holder, ttl: timedelta, extra: dict[str, Any] | None = None) -> int:
    now = utcnow()
    with sessions.begin() as session:
        query = update(table).where(table.c.holder == holder.id)
        if key is not None:
            query = query.where(_where(table, key))
        return _rowcount(session.execute(query.values(expires=now + ttl, **(extra or {}))))


def _give_back(sessions: sessionmaker[Session], table: Table, key: dict[str, str] | None,
               holder: Holder) -> int:
    with sessions.begin() as session:
        query = delete(table).where(table.c.holder == holder.id)
        if key is not None:
            query = query.where(_where(table, key))
        return _rowcount(session.execute(query))


# ---------------------------------------------------------------------------
# Crawl leases
# ---------------------------------------------------------------------------


def _crawl_key(topic: str, source: str) -> dict[str, str]:
    return {"topic": topic, "source": source}


def acquire(sessions: sessionmaker[Session], topic: str, source: str, holder: Holder,
            ttl: timedelta = DEFAULT_TTL) -> LeaseInfo:
    """Take the lease on one source, or raise :class:`LeaseBusy` naming who holds it."""
    table = _table(CrawlLease)
    taken, lease = _take(sessions, table, _crawl_key(topic, source), holder, ttl)
    if not taken:
        assert lease is not None
        raise LeaseBusy(topic, source, lease)
    assert lease is not None
    logger.debug("lease %s/%s taken by %s", topic, source, holder.id)
    return lease


def try_acquire(sessions: sessionmaker[Session], topic: str, source: str, holder: Holder,
                ttl: timedelta = DEFAULT_TTL) -> LeaseInfo | None:
    """Take the lease on one source; None when someone else holds it."""
    try:
        return acquire(sessions, topic, source, holder, ttl)
    except LeaseBusy:
        return None


def renew(sessions: sessionmaker[Session], topic: str, source: str, holder: Holder,
          ttl: timedelta = DEFAULT_TTL) -> bool:
    """Push the lease's expiry forward; False when it is no longer ours."""
    return _renew(sessions, _table(CrawlLease), _crawl_key(topic, source), holder, ttl) == 1


def renew_all(sessions: sessionmaker[Session], holder: Holder,
              ttl: timedelta = DEFAULT_TTL) -> set[tuple[str, str]]:
    """Renew every lease ``holder`` has; returns the (topic, source) pairs still held."""
    table = _table(CrawlLease)
    _renew(sessions, table, None, holder, ttl)
    with sessions() as session:
        rows = session.execute(
            select(table.c.topic, table.c.source).where(table.c.holder == holder.id)
        ).all()
    return {(row.topic, row.source) for row in rows}


def release(sessions: sessionmaker[Session], topic: str, source: str, holder: Holder) -> bool:
    """Give the lease back; False when it was not ours (any more)."""
    released = _give_back(sessions, _table(CrawlLease), _crawl_key(topic, source), holder) == 1
    logger.debug("lease %s/%s released by %s: %s", topic, source, holder.id, released)
    return released


def release_all(sessions: sessionmaker[Session], holder: Holder) -> int:
    return _give_back(sessions, _table(CrawlLease), None, holder)


def current(sessions: sessionmaker[Session], topic: str, source: str) -> LeaseInfo | None:
    """The lease row on a source, live or not (see :func:`is_live`)."""
    return _read(sessions, _table(CrawlLease), _crawl_key(topic, source))


def live_leases(sessions: sessionmaker[Session]) -> list[LeaseInfo]:
    """Every lease that is held right now."""
    table = _table(CrawlLease)
    now = utcnow()
    with sessions() as session:
        rows = session.execute(select(table).order_by(table.c.topic, table.c.source)).all()
    leases = [_info(table, _crawl_key(row.topic, row.source), row) for row in rows]
    return [lease for lease in leases if is_live(lease, now)]


def reap_interrupted_runs(sessions: sessionmaker[Session], *, exclude: Iterable[int] = ()) -> int:
    """Mark ``running`` crawl runs whose holder no longer holds the source as interrupted.

    A run is written (``running``) after its lease is taken and finished before the
    lease is given back, so a running row without its holder's live lease belongs
    to a process that died: a killed daemon, a ``kill -9`` of ``claimwatch crawl``.
    Returns the number of runs marked.
    """
    skip = set(exclude)
    now = utcnow()
    with sessions() as session:
        runs = session.execute(
            select(CrawlRun.id, CrawlRun.topic, CrawlRun.source, CrawlRun.holder,
                   CrawlRun.started, CrawlRun.counts)
            .where(CrawlRun.status == "running")
        ).all()
    marked = 0
    for run in runs:
        if run.id in skip:
            continue
        lease = current(sessions, run.topic, run.source)
        if lease is not None and lease.holder == run.holder and is_live(lease, now):
            continue
        who = _describe_holder(run.holder)
        with sessions.begin() as session:
            counts = _stored_counts(session, run, now)
            marked += _rowcount(session.execute(
                update(CrawlRun)
                .where(CrawlRun.id == run.id, CrawlRun.status == "running")
                .values(status="interrupted", finished=now, counts=counts,
                        error=f"interrupted: {who} stopped before the run finished")
            ))
        logger.warning("crawl run %s (%s/%s) was left running by %s: marked interrupted",
                       run.id, run.topic, run.source, who)
    return marked


def _stored_counts(session: Session, run: Any, now: datetime) -> dict[str, int]:
    """The counts of a run that died, made to match what it stored.

    A crawl writes its counts as it goes (crawler/runner.py), but the last few seconds
    before a ``kill -9`` are missing: the articles of the source fetched while the run
    ran (the lease kept anyone else from storing them) are counted again, and the larger
    figure kept."""
    counts = {str(k): int(v) for k, v in dict(run.counts or {}).items()
              if isinstance(v, int | float)}
    if run.started is None:
        return counts
    window = and_(Article.topic == run.topic, Article.source == run.source,
                  Article.fetched_at >= run.started, Article.fetched_at <= now)
    new = session.scalar(select(func.count()).select_from(Article).where(window)) or 0
    duplicates = session.scalar(
        select(func.count()).select_from(Article)
        .where(window, Article.duplicate_of_id.is_not(None))
    ) or 0
    counts["new"] = max(counts.get("new", 0), int(new))
    counts["duplicates"] = max(counts.get("duplicates", 0), int(duplicates))
    return counts


def _describe_holder(holder_id: str | None) -> str:
    if not holder_id:
        return "its process"
    parts = holder_id.split(":")
    if len(parts) == 4:
        role, host, pid, _ = parts
        return f"{ROLE_DESCRIPTIONS.get(role, role)} (pid {pid} on host {host})"
    return holder_id


# ---------------------------------------------------------------------------
# The daemon lock
# ---------------------------------------------------------------------------


def acquire_daemon_lock(sessions: sessionmaker[Session], holder: Holder, *, db: str,
                        listen: str | None = None, ttl: timedelta = DEFAULT_TTL) -> LeaseInfo:
    """Become the database's one daemon, or raise :class:`DaemonLockHeld`."""
    table = _table(DaemonLock)
    taken, lease = _take(sessions, table, {"name": DAEMON_LOCK}, holder, ttl,
                         extra={"listen": listen})
    if not taken:
        assert lease is not None
        raise DaemonLockHeld(lease, db)
    assert lease is not None
    return lease


def renew_daemon_lock(sessions: sessionmaker[Session], holder: Holder,
                      ttl: timedelta = DEFAULT_TTL, listen: str | None = None) -> bool:
    """The daemon's heartbeat; False when another daemon has taken the lock over."""
    extra = {"listen": listen} if listen is not None else None
    return _renew(sessions, _table(DaemonLock), {"name": DAEMON_LOCK}, holder, ttl, extra) == 1


def release_daemon_lock(sessions: sessionmaker[Session], holder: Holder) -> bool:
    return _give_back(sessions, _table(DaemonLock), {"name": DAEMON_LOCK}, holder) == 1


def daemon_lock(sessions: sessionmaker[Session]) -> LeaseInfo | None:
    return _read(sessions, _table(DaemonLock), {"name": DAEMON_LOCK})


# ---------------------------------------------------------------------------
# Keeping leases while working
# ---------------------------------------------------------------------------


class LeaseKeeper:
    """Renews every crawl lease of one holder in a background thread.

    ``on_lost(topic, source)`` is called (from the thread) for a lease that was
    expected but is no longer held. Database errors are logged and retried at
    the next tick; the lease's time-to-live leaves room for several.
    """

    def __init__(self, sessions: sessionmaker[Session], holder: Holder,
                 ttl: timedelta = DEFAULT_TTL, *, interval: float | None = None,
                 on_lost: Callable[[str, str], None] | None = None) -> None:
        self.sessions, self.holder, self.ttl = sessions, holder, ttl
        self.interval = interval if interval is not None else max(ttl.total_seconds() / 3, 0.2)
        self.on_lost = on_lost
        # each expected lease with the number of the add() that expects it: a lease given
        # back and taken again during a renewal is a new one, not the one the renewal judged
        self._expected: dict[tuple[str, str], int] = {}
        self._adds = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, topic: str, source: str) -> None:
        with self._lock:
            self._adds += 1
            self._expected[(topic, source)] = self._adds

    def discard(self, topic: str, source: str) -> None:
        with self._lock:
            self._expected.pop((topic, source), None)

    def expects(self, topic: str, source: str) -> bool:
        with self._lock:
            return (topic, source) in self._expected

    def renew_now(self) -> set[tuple[str, str]]:
        """Renew now; returns the expected leases that were lost.

        Only leases expected before the renewal and still expected, by the same add(),
        after it are judged: one taken (and added) while it ran, or given back and taken
        again (a source's next run), is not in what it read back, yet is not lost.
        """
        with self._lock:
            before = dict(self._expected)
        held = renew_all(self.sessions, self.holder, self.ttl)
        with self._lock:
            lost = {key for key, add in before.items()
                    if self._expected.get(key) == add and key not in held}
            for key in lost:
                del self._expected[key]
        for topic, source in sorted(lost):
            logger.error("lost the lease on %s/%s (it expired and was taken over)", topic, source)
            if self.on_lost is not None:
                self.on_lost(topic, source)
        return lost

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew_now()
            except Exception:  # noqa: BLE001 - keep renewing; the TTL covers a few misses
                logger.exception("could not renew crawl leases; retrying")

    def start(self) -> LeaseKeeper:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="claimwatch-lease-keeper",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
