"""Source leases and the daemon lock: atomic on SQLite and PostgreSQL, reclaimable when stale."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from storage import leases
from storage.db import init_db, make_engine, session_factory
from storage.leases import DaemonLockHeld, Holder, LeaseBusy, LeaseKeeper
from storage.models import CrawlLease, CrawlRun, utcnow

PG_URL = os.environ.get("CLAIMWATCH_TEST_PG",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TTL = timedelta(seconds=30)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database (skipped when no server answers)."""
    try:
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL at {PG_URL} ({type(exc).__name__}); set CLAIMWATCH_TEST_PG")
    name = f"cw_leases_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'leases.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    init_db(engine)
    with engine.begin() as conn:  # each test starts empty
        conn.execute(text("DELETE FROM crawl_leases"))
        conn.execute(text("DELETE FROM daemon_locks"))
        conn.execute(text("DELETE FROM crawl_runs"))
    engine.dispose()
    return url


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    init_db(engine)
    yield session_factory(engine)
    engine.dispose()


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_one_holder_at_a_time(sessions: sessionmaker[Session]) -> None:
    daemon, cli = Holder.new("daemon"), Holder.new("crawl")
    lease = leases.acquire(sessions, "t", "s", daemon, TTL)
    assert lease.holder == daemon.id and lease.expires - lease.acquired == TTL
    with pytest.raises(LeaseBusy) as info:
        leases.acquire(sessions, "t", "s", cli, TTL)
    message = str(info.value)
    assert "source 's' of topic 't' is already being crawled by the claimwatch daemon" in message
    assert f"(pid {os.getpid()} on host " in message
    # another source is free; not even the holder can take its lease twice
    assert leases.try_acquire(sessions, "t", "other", cli, TTL) is not None
    assert leases.try_acquire(sessions, "t", "s", daemon, TTL) is None
    # only the holder can give it back
    assert not leases.release(sessions, "t", "s", cli)
    assert leases.release(sessions, "t", "s", daemon)
    assert leases.acquire(sessions, "t", "s", cli, TTL).holder == cli.id
    assert {(lease.key, lease.holder) for lease in leases.live_leases(sessions)} == {
        (("t", "s"), cli.id), (("t", "other"), cli.id)}


def test_an_expired_lease_is_taken_over_and_its_holder_knows(
        sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    # The leases' clock moves only when the test moves it: on a loaded machine 200 ms of
    # real time could pass before the second holder's first try, which then took it.
    clock = [utcnow()]
    monkeypatch.setattr(leases, "utcnow", lambda: clock[0])
    first, second = Holder.new("crawl"), Holder.new("daemon")
    leases.acquire(sessions, "t", "s", first, timedelta(milliseconds=200))
    assert leases.try_acquire(sessions, "t", "s", second, TTL) is None
    clock[0] += timedelta(milliseconds=300)
    assert not leases.is_live(leases.current(sessions, "t", "s"))
    assert leases.acquire(sessions, "t", "s", second, TTL).holder == second.id
    assert not leases.renew(sessions, "t", "s", first, TTL)  # lost it
    assert leases.renew(sessions, "t", "s", second, TTL)


def test_a_lease_left_by_a_dead_process_is_taken_over_at_once(
        sessions: sessionmaker[Session]) -> None:
    ghost = Holder(role="crawl", host=Holder.new("crawl").host, pid=dead_pid(), token="0dead")
    leases.acquire(sessions, "t", "s", ghost, timedelta(hours=1))
    assert not leases.is_live(leases.current(sessions, "t", "s"))
    me = Holder.new("daemon")
    assert leases.acquire(sessions, "t", "s", me, TTL).holder == me.id


def test_a_dead_pid_on_another_host_waits_for_expiry(sessions: sessionmaker[Session]) -> None:
    remote = Holder(role="daemon", host="elsewhere.example", pid=dead_pid(), token="abcd")
    leases.acquire(sessions, "t", "s", remote, timedelta(hours=1))
    assert leases.is_live(leases.current(sessions, "t", "s"))
    with pytest.raises(LeaseBusy, match="pid .* on host elsewhere.example"):
        leases.acquire(sessions, "t", "s", Holder.new("crawl"), TTL)


def test_our_pid_with_a_token_we_never_made_is_an_earlier_process(
        sessions: sessionmaker[Session]) -> None:
    me = Holder.new("daemon")
    earlier = Holder(role="daemon", host=me.host, pid=os.getpid(), token="feedbeef")
    leases.acquire(sessions, "t", "s", earlier, timedelta(hours=1))
    assert leases.acquire(sessions, "t", "s", me, TTL).holder == me.id


def _contend(url: str, barrier: threading.Barrier, results: list[str]) -> None:
    engine = make_engine(url)
    try:
        holder = Holder.new("crawl")
        sessions = session_factory(engine)
        barrier.wait()
        if leases.try_acquire(sessions, "t", "race", holder, TTL) is not None:
            results.append(holder.id)
    finally:
        engine.dispose()


def test_concurrent_threads_one_winner(db_url: str) -> None:
    engine = make_engine(db_url)
    init_db(engine)
    engine.dispose()
    barrier = threading.Barrier(12)
    winners: list[str] = []
    threads = [threading.Thread(target=_contend, args=(db_url, barrier, winners))
               for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(winners) == 1


def _contend_process(url: str, start: object, done: object, queue: object) -> None:
    engine = make_engine(url)
    holder = Holder.new("crawl")
    start.wait()  # type: ignore[attr-defined]
    won = leases.try_acquire(session_factory(engine), "t", "race", holder, TTL) is not None
    queue.put(won)  # type: ignore[attr-defined]
    done.wait()  # type: ignore[attr-defined]  # stay alive: a dead winner may be replaced
    engine.dispose()


def test_concurrent_processes_one_winner(db_url: str) -> None:
    engine = make_engine(db_url)
    init_db(engine)
    engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    count = 5
    start, done, queue = ctx.Barrier(count), ctx.Barrier(count + 1), ctx.Queue()
    procs = [ctx.Process(target=_contend_process, args=(db_url, start, done, queue))
             for _ in range(count)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=60) for _ in range(count)]
    done.wait(timeout=30)
    for proc in procs:
        proc.join(30)
    assert sorted(results) == [False] * (count - 1) + [True]


def test_keeper_renews_and_reports_a_lost_lease(sessions: sessionmaker[Session]) -> None:
    lost: list[tuple[str, str]] = []
    holder = Holder.new("crawl")
    ttl = timedelta(seconds=1)
    keeper = LeaseKeeper(sessions, holder, ttl, interval=0.1,
                         on_lost=lambda t, s: lost.append((t, s)))
    leases.acquire(sessions, "t", "a", holder, ttl)
    leases.acquire(sessions, "t", "b", holder, ttl)
    keeper.add("t", "a")
    keeper.add("t", "b")
    with keeper:
        time.sleep(1.5)  # longer than the TTL: only renewal keeps them
        assert leases.is_live(leases.current(sessions, "t", "a"))
        # someone steals b (as after an expiry): the keeper notices
        with sessions.begin() as session:
            session.execute(update(CrawlLease).where(CrawlLease.source == "b")
                            .values(holder="crawl:x:1:x"))
        deadline = time.monotonic() + 3
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
    assert lost == [("t", "b")]
    assert leases.is_live(leases.current(sessions, "t", "a"))


def test_a_lease_taken_while_the_keeper_renews_is_not_lost(
        sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    # The daemon takes leases while its keeper renews (a burst of due sources): one taken
    # after the renewal read the held leases back is not in that list, yet is not lost.
    holder = Holder.new("daemon")
    ttl = timedelta(seconds=30)
    keeper = LeaseKeeper(sessions, holder, ttl)
    leases.acquire(sessions, "t", "a", holder, ttl)
    keeper.add("t", "a")
    renew_all = leases.renew_all

    def renew_then_take(*args: object, **kwargs: object) -> set[tuple[str, str]]:
        held = renew_all(*args, **kwargs)  # type: ignore[arg-type]
        leases.acquire(sessions, "t", "late", holder, ttl)
        keeper.add("t", "late")
        return held

    monkeypatch.setattr(leases, "renew_all", renew_then_take)
    assert keeper.renew_now() == set()
    monkeypatch.setattr(leases, "renew_all", renew_all)
    assert keeper.renew_now() == set()  # and the next renewal counts it as held
    assert leases.is_live(leases.current(sessions, "t", "late"))


def test_a_lease_given_back_and_taken_again_while_the_keeper_renews_is_not_lost(
        sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    # The daemon's run of a source ends (lease given back) and its next run of the same
    # source begins (lease taken again) while the keeper renews: the renewal read no lease
    # on the source, yet the new run's lease is not lost (it was, and its crawl stopped).
    lost: list[tuple[str, str]] = []
    holder = Holder.new("daemon")
    ttl = timedelta(seconds=30)
    keeper = LeaseKeeper(sessions, holder, ttl, on_lost=lambda t, s: lost.append((t, s)))
    leases.acquire(sessions, "t", "a", holder, ttl)
    keeper.add("t", "a")
    renew_all = leases.renew_all

    def end_renew_begin(*args: object, **kwargs: object) -> set[tuple[str, str]]:
        keeper.discard("t", "a")  # the first run ends
        leases.release(sessions, "t", "a", holder)
        held = renew_all(*args, **kwargs)  # type: ignore[arg-type]
        leases.acquire(sessions, "t", "a", holder, ttl)  # the next run begins
        keeper.add("t", "a")
        return held

    monkeypatch.setattr(leases, "renew_all", end_renew_begin)
    assert keeper.renew_now() == set() and lost == []
    monkeypatch.setattr(leases, "renew_all", renew_all)
    assert keeper.renew_now() == set() and lost == []  # still expected, and held
    with sessions.begin() as session:  # and a real loss of the new lease is still noticed
        session.execute(update(CrawlLease).where(CrawlLease.source == "a")
                        .values(holder="crawl:x:1:x"))
    assert keeper.renew_now() == {("t", "a")} and lost == [("t", "a")]


def test_one_daemon_per_database(sessions: sessionmaker[Session]) -> None:
    first, second = Holder.new("daemon"), Holder.new("daemon")
    leases.acquire_daemon_lock(sessions, first, db="sqlite:///x", listen="127.0.0.1:8750", ttl=TTL)
    with pytest.raises(DaemonLockHeld) as info:
        leases.acquire_daemon_lock(sessions, second, db="sqlite:///x", ttl=TTL)
    message = str(info.value)
    assert message.startswith("another claimwatch daemon is already running on database "
                              "sqlite:///x: the claimwatch daemon (pid ")
    assert "API at http://127.0.0.1:8750" in message and f"kill -TERM {os.getpid()}" in message
    assert leases.renew_daemon_lock(sessions, first, TTL)
    assert not leases.renew_daemon_lock(sessions, second, TTL)
    assert leases.release_daemon_lock(sessions, first)
    leases.acquire_daemon_lock(sessions, second, db="sqlite:///x", ttl=TTL)
    lock = leases.daemon_lock(sessions)
    assert lock is not None and lock.holder == second.id


def test_daemon_lock_of_a_killed_daemon_is_taken_over(sessions: sessionmaker[Session]) -> None:
    me = Holder.new("daemon")
    killed = Holder(role="daemon", host=me.host, pid=dead_pid(), token="9999")
    leases.acquire_daemon_lock(sessions, killed, db="db", ttl=timedelta(hours=1))
    assert leases.acquire_daemon_lock(sessions, me, db="db", ttl=TTL).holder == me.id


def test_runs_left_running_by_a_dead_holder_are_marked_interrupted(
        sessions: sessionmaker[Session]) -> None:
    alive = Holder.new("daemon")
    dead = Holder(role="daemon", host=alive.host, pid=dead_pid(), token="0bad")
    leases.acquire(sessions, "t", "live", alive, TTL)
    leases.acquire(sessions, "t", "ghost", dead, TTL)
    with sessions.begin() as session:
        session.add_all([
            CrawlRun(topic="t", source="live", trigger="schedule", status="running",
                     holder=alive.id, started=utcnow()),
            CrawlRun(topic="t", source="ghost", trigger="schedule", status="running",
                     holder=dead.id, started=utcnow()),
            CrawlRun(topic="t", source="nolease", trigger="manual", status="running",
                     holder="crawl:h:1:1", started=utcnow()),
            CrawlRun(topic="t", source="done", trigger="manual", status="ok", holder=None,
                     started=utcnow(), finished=utcnow()),
        ])
    assert leases.reap_interrupted_runs(sessions) == 2
    with sessions() as session:
        status = dict(session.execute(select(CrawlRun.source, CrawlRun.status)).all())
        error = session.scalar(select(CrawlRun.error).where(CrawlRun.source == "ghost"))
    assert status == {"live": "running", "ghost": "interrupted", "nolease": "interrupted",
                      "done": "ok"}
    assert error == (f"interrupted: the claimwatch daemon (pid {dead.pid} on host {dead.host})"
                     " stopped before the run finished")
    assert leases.reap_interrupted_runs(sessions) == 0
