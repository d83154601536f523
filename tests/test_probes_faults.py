"""Probes: faults a crawl must survive (issue 12), tested for real.

- a crawl process SIGKILLed in the dedup stage and inside the store transaction of an
  article (the extraction stage is covered in tests/test_workers.py): nothing half
  written, the next crawl stores the rest once, the dead run is marked interrupted;
- a full disk for the SQLite file (SQLITE_FULL, injected with ``max_page_count`` by
  tests/fault_hooks.py): one clear error, the crawl stops, what it stored stays;
- the PostgreSQL connection cut in the middle of a crawl by a TCP proxy the test owns:
  the crawl retries and stores every article once, or, cut for good, fails cleanly.
"""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from storage.db import open_db
from storage.errors import FULL, LOST, database_problem
from storage.models import Article, ArticleBand, CrawlRun
from tests.crawl_helpers import FAST_SETTINGS, REPO, Handler, Site, serve, write_topic
from tests.sitegen import _article_html, _vocabulary
from tests.test_probes_failures import rss

PAGES = 8  # 1..6 distinct, 7 and 8 copies of 1 and 2


def _route(body: bytes, ctype: str = "text/html; charset=utf-8", delay: float = 0.0) -> Any:
    def route(h: Handler) -> None:
        if delay:
            time.sleep(delay)
        h.send(200, body, ctype)

    return route


_VOCAB = _vocabulary(random.Random(12))


def distinct_page(n: int) -> bytes:
    """An on-topic article with its own text (no two are near-duplicates)."""
    return _article_html(n, random.Random(n), _VOCAB).encode("utf-8")


def make_site(site: Site, pages: int = PAGES, delay: float = 0.0) -> None:
    """A feed of ``pages`` articles; with the default 8, pages 7 and 8 copy 1 and 2."""
    site.routes["/feed.xml"] = _route(rss(
        [(f"Twitter child safety {n}", f"{site.url}/p/{n}.html") for n in range(1, pages + 1)]),
        "application/rss+xml")
    for n in range(1, pages + 1):
        body = distinct_page(n - 6) if n > 6 and pages == PAGES else distinct_page(n)
        site.routes[f"/p/{n}.html"] = _route(body, delay=delay)


def crawl(topic: Path, db_url: str, settings: dict[str, Any] | None = None,
          timeout: float = 120) -> subprocess.CompletedProcess[str]:
    spec = {"topic": str(topic), "db": db_url, "sources": None,
            "settings": {**FAST_SETTINGS, "CLAIMWATCH_RUN_COUNTS_INTERVAL": 0.2,
                         "EXTENSIONS": {"tests.fault_hooks.Faults": 0}, **(settings or {})}}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CLAIMWATCH_DB", None)
    return subprocess.run([sys.executable, "-m", "tests.crawl_helpers", json.dumps(spec)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def summary(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr[-4000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def articles(db_url: str) -> list[Article]:
    engine, sessions = open_db(db_url)
    try:
        with sessions() as session:
            return list(session.scalars(select(Article).order_by(Article.id)))
    finally:
        engine.dispose()


def integrity(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


# -- SIGKILL in the dedup and store stages -------------------------------------------------------


@pytest.mark.parametrize("stage", ["dedup", "store"])
def test_a_crawl_killed_in_the_dedup_or_store_stage_loses_nothing(tmp_path: Path,
                                                                  stage: str) -> None:
    with serve() as site:
        make_site(site)
        topic = write_topic(tmp_path / "kill.yaml", "kill",
                            [{"name": "wire", "kind": "feed", "url": f"{site.url}/feed.xml"}])
        db = tmp_path / "kill.sqlite"
        db_url = f"sqlite:///{db}"
        killed = crawl(topic, db_url, {"CLAIMWATCH_TEST_KILL_STAGE": stage,
                                       "CLAIMWATCH_TEST_KILL_AT": 3,
                                       "CONCURRENT_REQUESTS_PER_DOMAIN": 1})
        assert killed.returncode == -9, killed.stderr[-3000:]
        assert integrity(db) == "ok"
        first = articles(db_url)
        assert len(first) == 2  # the third was being deduplicated/stored: not half there
        engine, sessions = open_db(db_url)
        try:
            with sessions() as session:
                for article in first:  # each stored article is whole: text and band keys
                    assert article.text and article.content_hash
                    assert session.scalar(select(func.count()).select_from(ArticleBand)
                                          .where(ArticleBand.article_id == article.id))
            again = summary(crawl(topic, db_url))
            assert again["wire"]["status"] == "ok"
            assert again["wire"]["counts"]["new"] == PAGES - 2
            stored = articles(db_url)
            assert len(stored) == PAGES
            assert len({a.canonical_url for a in stored}) == PAGES  # none stored twice
            assert sum(1 for a in stored if a.duplicate_of_id) == 2  # copies still found
            with sessions() as session:
                runs = session.scalars(select(CrawlRun).order_by(CrawlRun.id)).all()
                assert [r.status for r in runs] == ["interrupted", "ok"]
                assert runs[0].counts["new"] == 2
        finally:
            engine.dispose()


# -- a full disk ---------------------------------------------------------------------------------


def test_a_full_disk_stops_the_crawl_with_one_clear_error_and_keeps_what_it_stored(
        tmp_path: Path) -> None:
    pages = 40
    with serve() as site:
        make_site(site, pages)
        topic = write_topic(tmp_path / "full.yaml", "full",
                            [{"name": "wire", "kind": "feed", "url": f"{site.url}/feed.xml"}])
        db = tmp_path / "full.sqlite"
        db_url = f"sqlite:///{db}"
        engine, _ = open_db(db_url)  # the schema, so the limit applies to the articles
        engine.dispose()
        # pages analysed as they come (no worker start-up to wait for, during which
        # this small local site would be fetched whole before the disk is found full)
        proc = crawl(topic, db_url, {"CLAIMWATCH_TEST_SQLITE_PAGES": 12,
                                     "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
                                     "CLAIMWATCH_WORKERS_MIN_ITEMS": 1000})
        result = summary(proc)["wire"]
        assert result["status"] == "failed"
        assert "the database is full (database or disk is full)" in result["error"]
        assert "the crawl stops; what it stored is kept" in result["error"]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
        assert len([e for e in errors if "the database is full" in e]) == 1, errors
        assert "Traceback" not in proc.stderr
        stats = result["stats"]
        assert stats["claimwatch/errors/database"] == 1
        assert stats["finish_reason"] == "database_full"
        assert stats["claimwatch/fetched"] < pages  # stopped, not run to the end
        assert integrity(db) == "ok"
        kept = {a.url for a in articles(db_url)}
        assert 1 <= len(kept) < pages
        # room again: the next crawl stores the rest, and nothing stored before is lost
        again = summary(crawl(topic, db_url))["wire"]
        assert again["status"] == "ok"
        after = {a.url for a in articles(db_url)}
        assert kept <= after and len(after) == pages


def test_database_problems_are_told_apart() -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    def op(message: str, sqlstate: str | None = None) -> OperationalError:
        orig = Exception(message)
        orig.sqlstate = sqlstate  # type: ignore[attr-defined]
        return OperationalError("INSERT", {}, orig)

    assert database_problem(op("database or disk is full")) == FULL
    assert database_problem(op("could not extend file", "53100")) == FULL
    assert database_problem(op("server closed the connection unexpectedly")) == LOST
    assert database_problem(op("terminating connection", "57P01")) == LOST
    assert database_problem(op("connection failure", "08006")) == LOST
    assert database_problem(op("no such table: articles")) is None
    assert database_problem(IntegrityError("INSERT", {}, Exception("UNIQUE"))) is None
    assert database_problem(ValueError("x")) is None


# -- PostgreSQL connection cut mid-crawl -----------------------------------------------------------


class CuttingProxy:
    """A TCP proxy to PostgreSQL that the test can cut (close every connection) and
    hold down (refuse new connections) for a while."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = threading.Event()
        self.connections: list[socket.socket] = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.accepted += 1
                self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self.lock:
            conns, self.connections = self.connections, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def proxied_postgres(postgres_url: str) -> Iterator[tuple[str, CuttingProxy]]:
    from sqlalchemy.engine import make_url

    from tests.services import empty_tables

    empty_tables(postgres_url)
    url = make_url(postgres_url)
    proxy = CuttingProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False), proxy
    finally:
        proxy.close()


def test_a_crawl_survives_its_postgresql_connection_being_cut(
        tmp_path: Path, proxied_postgres: tuple[str, CuttingProxy]) -> None:
    db_url, proxy = proxied_postgres
    pages = 12
    with serve() as site:
        make_site(site, pages, delay=0.25)
        topic = write_topic(tmp_path / "cut.yaml", "cut",
                            [{"name": "wire", "kind": "feed", "url": f"{site.url}/feed.xml"}])

        def saboteur() -> None:
            deadline = time.monotonic() + 60
            while len(site.hits("/p/4.html")) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            proxy.down.set()
            proxy.cut()  # every connection of the crawl dies mid-crawl
            time.sleep(1.5)  # and the server stays unreachable for a while
            proxy.down.clear()

        thread = threading.Thread(target=saboteur, daemon=True)
        thread.start()
        result = summary(crawl(topic, db_url, {"CONCURRENT_REQUESTS_PER_DOMAIN": 1,
                                               "CLAIMWATCH_DB_RETRY_DELAYS": [1, 1, 2, 4]}))
        thread.join(5)
    wire = result["wire"]
    assert wire["status"] == "ok", wire["error"]
    assert wire["stats"].get("claimwatch/database/retries", 0) >= 1
    stored = articles(db_url)
    assert len(stored) == pages and len({a.canonical_url for a in stored}) == pages
    assert proxy.accepted >= 2  # it reconnected


def test_a_crawl_whose_postgresql_stays_down_fails_cleanly(
        tmp_path: Path, proxied_postgres: tuple[str, CuttingProxy]) -> None:
    db_url, proxy = proxied_postgres
    pages = 6
    with serve() as site:
        make_site(site, pages, delay=0.25)
        topic = write_topic(tmp_path / "down.yaml", "down",
                            [{"name": "wire", "kind": "feed", "url": f"{site.url}/feed.xml"}])

        def saboteur() -> None:
            deadline = time.monotonic() + 60
            while len(site.hits("/p/3.html")) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            proxy.down.set()
            proxy.cut()

        threading.Thread(target=saboteur, daemon=True).start()
        proc = crawl(topic, db_url, {"CONCURRENT_REQUESTS_PER_DOMAIN": 1,
                                     "CLAIMWATCH_DB_RETRY_DELAYS": [0.2, 0.2]})
    result = summary(proc)["wire"]
    assert result["status"] == "failed"
    assert "the database cannot be reached after 2 retries" in (result["error"] or "")
    assert "Traceback" not in proc.stderr
    proxy.down.clear()
    stored = articles(db_url)
    assert 1 <= len(stored) < pages
    assert len({a.canonical_url for a in stored}) == len(stored)


# -- PostgreSQL connection cut under a running daemon ----------------------------------------------


def test_the_daemon_reports_a_database_outage_and_keeps_scheduling(
        tmp_path: Path, proxied_postgres: tuple[str, CuttingProxy]) -> None:
    from tests.test_daemon import Daemon, wait_for

    db_url, proxy = proxied_postgres
    engine, sessions = open_db(db_url)

    def runs(status: str | None = None) -> list[CrawlRun]:
        with sessions() as session:
            query = select(CrawlRun).order_by(CrawlRun.id)
            if status:
                query = query.where(CrawlRun.status == status)
            return list(session.scalars(query))

    with serve() as site:
        make_site(site, 3)
        topic = write_topic(tmp_path / "daemon.yaml", "outage", [
            {"name": "wire", "kind": "feed", "url": f"{site.url}/feed.xml",
             "schedule": "every 2s"}])
        daemon = Daemon(tmp_path, [topic], db_url)
        try:
            daemon.wait_ready(30)
            wait_for(lambda: len(runs("ok")) >= 1, 40, "a first scheduled run", daemon)
            proxy.down.set()
            proxy.cut()
            health: dict[str, Any] = {}

            def outage_reported() -> bool:
                nonlocal health
                status, health = daemon.request("GET", "/api/health")
                return status == 200 and health.get("database", {}).get("ok") is False

            wait_for(outage_reported, 20, "the outage in /api/health", daemon)
            assert health["status"] == "alarm"
            assert health["alarms"][0]["kind"] == "database" and health["database"]["error"]
            time.sleep(3)  # scheduled runs come due while the database is away
            proxy.down.clear()
            ok_before = len(runs("ok"))
            wait_for(lambda: len(runs("ok")) >= ok_before + 1, 60,
                     "a scheduled run after the outage", daemon)
            wait_for(lambda: daemon.health().get("database", {}).get("ok") is True, 20,
                     "the database back in /api/health", daemon)
            assert daemon.proc.poll() is None
            assert daemon.stop() == 0
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
                daemon.proc.wait()
            proxy.down.clear()
    try:
        # nothing half-written: every run ended in a final state, every article once
        assert not runs("running"), [(r.id, r.status) for r in runs()]
        stored = articles(db_url)
        assert len(stored) == 3 and len({a.canonical_url for a in stored}) == 3
    finally:
        engine.dispose()


# -- no worker-pool processes left behind -----------------------------------------------------------


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
        except OSError:
            continue
        found |= {int(p) for p in text.split()}
    return found


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        children = _children(todo.pop()) - found
        found |= children
        todo.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_a_killed_crawl_leaves_no_worker_pool_processes(tmp_path: Path) -> None:
    """After `make test` three pool processes (two spawn workers and the resource
    tracker) were found under pid 1: a crawl killed while its workers started. The
    workers are now forked by a forkserver (a fourth process): none may be left."""
    with serve() as site:
        make_site(site, 6, delay=0.5)
        topic = write_topic(tmp_path / "pool.yaml", "pool",
                            [{"name": "wire", "kind": "feed", "url": f"{site.url}/feed.xml"}])
        spec = {"topic": str(topic), "db": f"sqlite:///{tmp_path / 'pool.sqlite'}",
                "sources": None, "settings": {**FAST_SETTINGS, "CLAIMWATCH_WORKERS": 2,
                                              "CLAIMWATCH_WORKERS_MIN_ITEMS": 0}}
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "tests.crawl_helpers", json.dumps(spec)],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            children: set[int] = set()
            # the resource tracker, the forkserver and its workers (both, or the first
            # while the second is still being forked)
            while len(children) < 4 and time.monotonic() < deadline:
                children |= _descendants(proc.pid)
                time.sleep(0.01)
            assert len(children) >= 3, children
        finally:
            proc.kill()  # while the workers are still starting up
            proc.wait(10)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in children if _alive(pid)]
        for pid in left:  # do not leave them to the next test run either
            os.kill(pid, 9)
        assert not left, f"processes left behind by the killed crawl: {left}"


# -- a database outage between taking a lease and writing the run's row ----------------------------


def test_a_lease_the_database_could_not_take_back_during_an_outage_is_given_back_after(
        tmp_path: Path) -> None:
    """The database goes away as a run ends, or between a lease taken and its run's row:
    the lease cannot be given back then. The daemon's keeper renews every lease the
    daemon holds, so before, that one was renewed for as long as the daemon lived and the
    source was never crawled again ("already being crawled by the claimwatch daemon":
    the outage probe above timing out). It is given back once the database answers."""
    from sqlalchemy import event

    from claimwatch.daemon import Daemon, DaemonOptions
    from storage import leases

    topic = write_topic(tmp_path / "lease.yaml", "lease", [
        {"name": "wire", "kind": "feed", "url": "http://127.0.0.1:9/feed.xml",
         "schedule": "every 1h"}])
    daemon = Daemon(DaemonOptions(topic_files=[topic], db_url=f"sqlite:///{tmp_path / 'l.db'}",
                                  listen=None))
    away: set[str] = set()

    @event.listens_for(daemon.engine, "before_cursor_execute")
    def outage(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if any(statement.lstrip().upper().startswith(s) for s in away):
            raise sqlite3.OperationalError("disk I/O error (the test's outage)")

    try:
        daemon.load_topics()
        [item] = daemon.topics.values()
        source = item.topic.source("wire")
        away.update({"INSERT INTO CRAWL_RUNS", "DELETE FROM CRAWL_LEASES"})
        with pytest.raises(Exception, match="the test's outage"):
            daemon.begin(item, source, "schedule")
        assert leases.current(daemon.sessions, "lease", "wire") is not None  # left behind
        daemon.keeper.renew_now()  # renewed meanwhile, as the keeper thread does
        away.clear()  # the database is back
        run = daemon.begin(item, source, "schedule")  # not "already being crawled"
        assert leases.current(daemon.sessions, "lease", "wire").holder == daemon.holder.id
        # The run ends as the database goes away (the outage probe cuts it right after the
        # first run's outcome is written): its lease is given back once it answers.
        away.add("DELETE FROM CRAWL_LEASES")
        daemon._end(run, None)
        daemon.keeper.renew_now()
        away.clear()
        run = daemon.begin(item, source, "schedule")
        daemon._end(run, None)
        assert leases.current(daemon.sessions, "lease", "wire") is None
        # A lease left so, whose source is not begun again, is given back by the daemon's
        # housekeeping (a `claimwatch crawl` of the source must not wait for the daemon).
        away.update({"INSERT INTO CRAWL_RUNS", "DELETE FROM CRAWL_LEASES"})
        with pytest.raises(Exception, match="the test's outage"):
            daemon.begin(item, source, "schedule")
        away.clear()
        daemon.give_back_leftover_leases()
        assert leases.current(daemon.sessions, "lease", "wire") is None
    finally:
        daemon.engine.dispose()
