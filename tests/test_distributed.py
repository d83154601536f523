"""Distributed crawling: `claimwatch worker` processes sharing a crawl through Redis.

Against the local Redis (127.0.0.1:6379) and PostgreSQL (127.0.0.1:5432, database
``test``): every test uses its own Redis key prefix and PostgreSQL schema and
deletes them afterwards. Without the services the tests are skipped, with the reason.

The end-to-end tests generate a site of a few hundred distinct on-topic articles,
serve it with an access log, start two workers as subprocesses, queue the crawl
and check that every page was fetched exactly once and stored exactly once, that
both workers did work, and that killing one worker (SIGKILL) mid-crawl loses no page.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider
from scrapy.http import Request
from scrapy.utils.request import request_from_dict
from sqlalchemy import func, select

from config.loader import ConfigError
from crawler.distributed import (
    DistributedError,
    JobQueue,
    Keys,
    TaggedJSON,
    enqueue_crawl,
    job_result,
    open_jobs,
    redis_client,
    wait_for_jobs,
)
from storage.db import make_engine, session_factory
from storage.models import Article, CrawlRun
from tests.conftest import REPO
from tests.services import delete_redis_keys, redis_prefix
from tests.sitegen import AccessLog, Site, make_site, serve_logged

PAGES = 250
WORKER_SETTINGS = {
    "AUTOTHROTTLE_ENABLED": "False",
    "DOWNLOAD_DELAY": "0",
    "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": "True",
    "CLAIMWATCH_WORKER_HEARTBEAT_TTL": "10",
    "CLAIMWATCH_WORKER_POLL_INTERVAL": "0.2",
    "CLAIMWATCH_WORKER_TICK": "0.25",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    prefix = redis_prefix()
    yield prefix
    delete_redis_keys(redis_url, prefix)


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    client = redis_client(redis_url)
    yield client
    client.close()


def small_topic(tmp_path: Path, url: str = "http://127.0.0.1:9/rss.xml", *,
                extra: str = "") -> Path:
    path = tmp_path / "topic.yaml"
    path.write_text(
        "name: dist\nquery: {any: [Twitter]}\nsources:\n"
        f'  - {{name: feed-a, kind: feed, url: "{url}"}}\n'
        f'  - {{name: feed-b, kind: feed, url: "{url}"}}\n' + extra,
        encoding="utf-8",
    )
    return path


# -- the pieces, against the real Redis -------------------------------------------------------


class _Spider(Spider):
    name = "s"

    def parse_article(self, response: Any) -> None:  # pragma: no cover - never called
        pass


def test_requests_survive_the_trip_through_redis_as_json() -> None:
    spider = _Spider()
    request = Request(
        "https://example.org/a?b=1", callback=spider.parse_article, method="POST",
        body=b"\x00\xffbinary", headers={"X-Thing": "1"}, priority=3, dont_filter=True,
        meta={"listed_published": datetime(2022, 12, 15, 9, tzinfo=UTC),
              "pair": (1, "two"), "by_bytes": {b"k": [b"v"]}, "__bytes__": "not a tag",
              "depth": 2},
        cb_kwargs={"page": 4},
    )
    data = TaggedJSON.dumps(request.to_dict(spider=spider))
    assert b"pickle" not in data and data.startswith(b"{")
    back = request_from_dict(TaggedJSON.loads(data), spider=spider)
    assert (back.url, back.method, back.body, back.priority, back.dont_filter) == (
        request.url, "POST", b"\x00\xffbinary", 3, True)
    assert back.callback == spider.parse_article and back.cb_kwargs == {"page": 4}
    assert back.headers.get("X-Thing") == b"1"
    assert back.meta == request.meta
    with pytest.raises(TypeError, match="cannot queue a request holding a object"):
        TaggedJSON.dumps({"meta": {"x": object()}})


def test_a_source_has_one_open_job_at_a_time(redis_url: str, prefix: str, client: Any,
                                             tmp_path: Path) -> None:
    topic = small_topic(tmp_path)
    first = enqueue_crawl(redis_url, topic, "feed-a", prefix=prefix)
    again = enqueue_crawl(redis_url, topic, "feed-a", prefix=prefix)
    other = enqueue_crawl(redis_url, topic, "feed-b", prefix=prefix)
    assert first.created and not again.created and other.created
    assert again.job == first.job and other.job.id != first.job.id
    assert first.job.topic_path == str(topic.resolve()) and first.job.kind == "feed"
    assert [j.id for j in open_jobs(client, prefix)] == [first.job.id, other.job.id]


def test_a_job_no_worker_started_does_not_block_its_source(
    redis_url: str, prefix: str, client: Any, tmp_path: Path
) -> None:
    topic = small_topic(tmp_path)
    stuck = enqueue_crawl(redis_url, topic, "feed-a", prefix=prefix).job
    JobQueue(client, stuck.id, prefix=prefix, worker_id="w").add_error("no such file here")
    assert not enqueue_crawl(redis_url, topic, "feed-a", prefix=prefix, stale_after=60).created
    fresh = enqueue_crawl(redis_url, topic, "feed-a", prefix=prefix, stale_after=0)
    assert fresh.created and fresh.job.id != stuck.id
    assert [j.id for j in open_jobs(client, prefix)] == [fresh.job.id]
    given_up = job_result(client, stuck.id, prefix)
    assert given_up is not None and given_up["cancelled"]
    assert given_up["errors"][0] == "w: no such file here"
    assert "never started" in given_up["errors"][1]
    # A job a worker has started (seeded) is never given up.
    assert JobQueue(client, fresh.job.id, prefix=prefix, worker_id="w").claim_seed()
    again = enqueue_crawl(redis_url, topic, "feed-a", prefix=prefix, stale_after=0)
    assert not again.created and again.job.id == fresh.job.id


def test_enqueue_refuses_what_workers_cannot_crawl(redis_url: str, prefix: str,
                                                   tmp_path: Path) -> None:
    topic = small_topic(tmp_path)
    with pytest.raises(DistributedError, match="no source 'nope'"):
        enqueue_crawl(redis_url, topic, "nope", prefix=prefix)
    (tmp_path / "site").mkdir()
    served = tmp_path / "served.yaml"
    served.write_text("name: d\nserve_dir: site\nsources:\n"
                      '  - {name: f, kind: feed, url: "${SITE}/rss.xml"}\n', encoding="utf-8")
    with pytest.raises(DistributedError, match="serve_dir"):
        enqueue_crawl(redis_url, served, "f", prefix=prefix)
    with pytest.raises(ConfigError):
        enqueue_crawl(redis_url, tmp_path / "missing.yaml", "f", prefix=prefix)
    with pytest.raises(DistributedError, match="CLAIMWATCH_REDIS_PREFIX"):
        enqueue_crawl(redis_url, topic, "feed-a", prefix="bad prefix%")


def _queue_raw(client: Any, jobs: JobQueue, *payloads: bytes) -> None:
    for payload in payloads:
        client.zadd(jobs.requests_key, {payload: 0})


def test_in_flight_requests_of_a_dead_worker_go_back_to_the_queue(
    redis_url: str, prefix: str, client: Any, tmp_path: Path
) -> None:
    job = enqueue_crawl(redis_url, small_topic(tmp_path), "feed-a", prefix=prefix).job
    dead = JobQueue(client, job.id, prefix=prefix, worker_id="dead")
    live = JobQueue(client, job.id, prefix=prefix, worker_id="live")
    client.set(Keys(prefix).worker("live"), "1", ex=30)  # live's heartbeat; dead has none
    _queue_raw(client, dead, b"r1", b"r2", b"r3")

    token1, data1 = dead.pop()  # type: ignore[misc]
    token2, _ = dead.pop()  # type: ignore[misc]
    assert dead.pending() == (1, 2)
    assert dead.ack(token2)  # done with r2
    live_token, _ = live.pop()  # type: ignore[misc]
    assert live.pending() == (0, 2)

    assert live.requeue_dead() == 1  # dead's r1 only; live's own request stays in flight
    assert live.pending() == (1, 1)
    assert not dead.ack(token1)  # too late: it was re-queued
    assert dead.requeue_dead() == 0  # live is alive: nothing of it is touched
    again = live.pop()
    assert again is not None and again[1] == data1
    assert live.ack(again[0]) and live.ack(live_token)
    assert live.pending() == (0, 0)


def test_a_job_finishes_once_seeded_and_drained(redis_url: str, prefix: str, client: Any,
                                                tmp_path: Path) -> None:
    job = enqueue_crawl(redis_url, small_topic(tmp_path), "feed-a", prefix=prefix).job
    a = JobQueue(client, job.id, prefix=prefix, worker_id="a")
    b = JobQueue(client, job.id, prefix=prefix, worker_id="b")
    assert b.try_finish(60) == 0  # not seeded yet
    assert a.claim_seed() and not b.claim_seed()
    _queue_raw(client, a, b"feed")
    a.mark_seeded()
    assert b.try_finish(60) == 0  # queued work
    token, _ = b.pop()  # type: ignore[misc]
    assert a.try_finish(60) == 0  # in-flight work
    b.ack(token)
    b.add_error("something went wrong on b")
    assert a.try_finish(60) == 1
    assert b.try_finish(60) == -1 and not b.is_open() and not b.claim_seed()
    result = job_result(client, job.id, prefix)
    assert result is not None and result["finished_by"] == "a"
    assert result["errors"] == ["b: something went wrong on b"]
    leftovers = [k.decode() for k in client.scan_iter(f"{prefix}:job:{job.id}:*")]
    assert leftovers == []
    # The source can be queued again once its job is finished.
    assert enqueue_crawl(redis_url, job.topic_path, "feed-a", prefix=prefix).created


def test_a_dead_seeder_gives_the_seed_back(redis_url: str, prefix: str, client: Any,
                                           tmp_path: Path) -> None:
    job = enqueue_crawl(redis_url, small_topic(tmp_path), "feed-a", prefix=prefix).job
    dead = JobQueue(client, job.id, prefix=prefix, worker_id="dead")
    live = JobQueue(client, job.id, prefix=prefix, worker_id="live")
    client.set(Keys(prefix).worker("live"), "1", ex=30)
    assert dead.claim_seed() and not live.seed_free()
    live.requeue_dead()
    assert live.seed_free() and live.claim_seed()


class _LosesReplies:
    """Makes a Redis client lose the replies to its next ``times`` commands named ``command``
    after Redis ran them, as when Redis is stopped (or the link cut) between running a
    command and sending its answer: redis-py then retries the command (10 times by default)."""

    def __init__(self, client: Any) -> None:
        import redis

        self.armed: dict[str, int] = {}
        armed = self.armed

        class Connection(redis.Connection):
            sent = ""

            def send_command(self, *args: Any, **kwargs: Any) -> None:
                super().send_command(*args, **kwargs)  # (re)connecting sends commands too
                self.sent = str(args[0]).upper()

            def read_response(self, *args: Any, **kwargs: Any) -> Any:
                # Redis did run it (a NOSCRIPT error is no run: redis-py loads the script)
                response = super().read_response(*args, **kwargs)
                if armed.get(self.sent, 0) > 0:
                    armed[self.sent] -= 1
                    self.disconnect()
                    raise redis.ConnectionError("the reply was lost (test)")
                return response

        client.connection_pool.disconnect()
        client.connection_pool.connection_class = Connection

    def lose(self, command: str, times: int = 1) -> None:
        self.armed[command.upper()] = times


def test_a_pop_whose_reply_is_lost_leaves_no_request_stranded_in_flight(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """The job could never finish if a retried pop left the first popped request in flight
    under a live worker that does not know it holds it (a Redis restart mid-crawl)."""
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    job = enqueue_crawl(redis_url, small_topic(tmp_path), "feed-a", prefix=prefix).job
    client = redis_client(redis_url)
    try:
        faults = _LosesReplies(client)
        jobs = JobQueue(client, job.id, prefix=prefix, worker_id="w")
        _queue_raw(client, jobs, b"r1", b"r2", b"r3")
        faults.lose("EVALSHA")  # redis-py's own retry runs the pop again
        token, data = jobs.pop()  # type: ignore[misc]
        assert data == b"r1" and jobs.pending() == (2, 1)
        assert jobs.ack(token) and jobs.pending() == (2, 0)
        # Every retry lost too (Redis away longer): the next pop with the same token gets
        # the request that the failed one moved into flight.
        client.connection_pool.set_retry(Retry(NoBackoff(), 1))
        token = jobs.new_token()
        faults.lose("EVALSHA", 2)
        with pytest.raises(RedisConnectionError):
            jobs.pop(token)
        assert jobs.pending() == (1, 1)
        again = jobs.pop(token)
        assert again == (token, b"r2") and jobs.pending() == (1, 1)
        assert jobs.ack(token) and jobs.pending() == (1, 0)
    finally:
        client.close()


def test_a_push_whose_reply_is_lost_queues_the_request_once(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """A new request is seen by the dupefilter and queued in one step: a retried push
    can neither drop it (seen, not queued) nor queue it twice."""
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    job = enqueue_crawl(redis_url, small_topic(tmp_path), "feed-a", prefix=prefix).job
    client = redis_client(redis_url)
    try:
        faults = _LosesReplies(client)
        jobs = JobQueue(client, job.id, prefix=prefix, worker_id="w")
        faults.lose("EVALSHA")
        jobs.push("fp1", 0, b"r1")
        assert client.zrange(jobs.requests_key, 0, -1) == [b"r1"]
        assert not jobs.push("fp1", 0, b"r1 again")  # a duplicate is not queued
        client.connection_pool.set_retry(Retry(NoBackoff(), 1))
        faults.lose("EVALSHA", 2)
        with pytest.raises(RedisConnectionError):
            jobs.push("fp2", -1, b"r2")  # it ran, but the worker does not know
        jobs.push("fp2", -1, b"r2")  # handed over again once Redis answers
        assert client.zrange(jobs.requests_key, 0, -1) == [b"r2", b"r1"]
        assert jobs.push("", 0, b"r1") and jobs.pending() == (2, 0)  # dont_filter
    finally:
        client.close()


def test_a_seed_claim_whose_reply_is_lost_is_still_this_workers(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    job = enqueue_crawl(redis_url, small_topic(tmp_path), "feed-a", prefix=prefix).job
    client = redis_client(redis_url)
    try:
        faults = _LosesReplies(client)
        mine = JobQueue(client, job.id, prefix=prefix, worker_id="w")
        other = JobQueue(client, job.id, prefix=prefix, worker_id="other")
        faults.lose("EVALSHA")
        assert mine.claim_seed()  # the retry finds the claim its lost first try made
        assert not other.claim_seed()
    finally:
        client.close()


# -- two worker processes, a few hundred pages --------------------------------------------------


@dataclass
class Deployment:
    site: Site
    access: AccessLog
    db: str
    redis_url: str
    prefix: str
    tmp: Path
    workers: list[subprocess.Popen[str]]
    feed_gate: threading.Event

    def release_feed_when_crawling(self, *names: str) -> None:
        """Answer the feed once every worker's crawler for the job is open (all can work)."""
        def opened() -> bool:
            return all("Spider opened" in self.log(name) for name in names)

        wait_until(opened, 60, f"the crawlers of {', '.join(names)}")
        self.feed_gate.set()

    def start_worker(self, name: str, **settings: str) -> subprocess.Popen[str]:
        args = [sys.executable, "-m", "claimwatch.cli", "-v", "worker", "--redis", self.redis_url,
                "--db", self.db, "--prefix", self.prefix, "--id", name]
        for key, value in {**WORKER_SETTINGS, **settings}.items():
            args += ["--set", f"{key}={value}"]
        log = open(self.tmp / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        self.workers.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(encoding="utf-8")

    def wait_for_workers(self, *names: str) -> None:
        def started() -> bool:
            return all("waiting for jobs" in self.log(name) for name in names)

        wait_until(started, 60, f"workers {', '.join(names)} to start")

    def stored(self) -> list[str]:
        engine = make_engine(self.db)
        try:
            with session_factory(engine)() as session:
                return list(session.scalars(select(Article.url)))
        finally:
            engine.dispose()

    def runs(self) -> list[CrawlRun]:
        engine = make_engine(self.db)
        try:
            with session_factory(engine)() as session:
                return list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))
        finally:
            engine.dispose()


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def deployment(tmp_path: Path, redis_url: str, postgres_url: str, prefix: str, *,
               delay: float = 0.0) -> Iterator[Deployment]:
    from tests.services import empty_tables

    empty_tables(postgres_url)
    root = tmp_path / "site"
    root.mkdir()
    gate = threading.Event()
    with ExitStack() as stack:
        base, access = stack.enter_context(serve_logged(root, delay=delay, feed_gate=gate))
        site = make_site(root, PAGES, base_url=base)
        dep = Deployment(site, access, postgres_url, redis_url, prefix, tmp_path, [], gate)
        try:
            yield dep
        finally:
            for proc in dep.workers:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(10)
                if proc.stdout:
                    proc.stdout.close()


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return proc.returncode, out


def article_fetches(access: AccessLog) -> dict[str, int]:
    return {p: n for p, n in access.snapshot().items() if p.startswith("/news/")}


def test_two_workers_share_a_crawl_each_page_fetched_and_stored_once(
    tmp_path: Path, redis_url: str, postgres_url: str, prefix: str
) -> None:
    with deployment(tmp_path, redis_url, postgres_url, prefix) as dep:
        workers = [dep.start_worker("w1"), dep.start_worker("w2")]
        dep.wait_for_workers("w1", "w2")
        job = enqueue_crawl(redis_url, dep.site.topic_file, "gazette", prefix=prefix).job
        dep.release_feed_when_crawling("w1", "w2")
        [result] = wait_for_jobs(redis_url, [job.id], timeout=120, prefix=prefix).values()
        assert result["errors"] == []
        # Each worker writes its share once its crawler has closed.
        runs = wait_until(lambda: len(dep.runs()) == 2 and dep.runs(), 30, "two crawl runs")
        outputs = [stop(w) for w in workers]

        fetches = article_fetches(dep.access)
        assert sorted(fetches) == sorted(dep.site.paths)  # every page fetched...
        assert set(fetches.values()) == {1}  # ...exactly once
        assert dep.access.snapshot()["/rss.xml"] == 1  # the feed once, by one worker
        stored = dep.stored()
        assert len(stored) == len(set(stored)) == PAGES  # every page stored exactly once
        assert {r.holder for r in runs} == {"worker:w1", "worker:w2"}
        assert all(r.status == "ok" and r.counts["fetched"] > 0 for r in runs)  # both worked
        assert sum(r.counts["fetched"] for r in runs) == PAGES
        assert sum(r.counts["new"] for r in runs) == PAGES
        for code, out in outputs:
            assert code == 0
            assert f"generated/gazette job {job.id}: ok" in out
        client = redis_client(redis_url)
        try:
            assert open_jobs(client, prefix) == []
            assert [k for k in client.scan_iter(f"{prefix}:job:*")] == []
            assert [k for k in client.scan_iter(f"{prefix}:worker:*")] == []  # heartbeats gone
        finally:
            client.close()


def test_killing_a_worker_mid_crawl_loses_no_page(
    tmp_path: Path, redis_url: str, postgres_url: str, prefix: str
) -> None:
    with deployment(tmp_path, redis_url, postgres_url, prefix, delay=0.02) as dep:
        # A killed worker counts as dead 2 s after its last heartbeat.
        victim = dep.start_worker("victim", CLAIMWATCH_WORKER_HEARTBEAT_TTL="2")
        survivor = dep.start_worker("survivor", CLAIMWATCH_WORKER_HEARTBEAT_TTL="2")
        dep.wait_for_workers("victim", "survivor")
        job = enqueue_crawl(redis_url, dep.site.topic_file, "gazette", prefix=prefix).job
        dep.release_feed_when_crawling("victim", "survivor")
        wait_until(lambda: len(dep.stored()) >= PAGES // 4, 60, "a quarter of the pages")
        victim.kill()  # SIGKILL: no goodbye, its in-flight requests are only in Redis
        victim.wait(10)
        assert len(dep.stored()) < PAGES, "the crawl was over before the kill"

        [result] = wait_for_jobs(redis_url, [job.id], timeout=120, prefix=prefix).values()
        assert result["finished_by"] == "survivor"
        wait_until(lambda: any(r.holder == "worker:survivor" for r in dep.runs()), 30,
                   "the survivor's crawl run")
        code, _ = stop(survivor)
        assert code == 0

        fetches = article_fetches(dep.access)
        assert sorted(fetches) == sorted(dep.site.paths)  # no page lost...
        stored = dep.stored()
        assert len(stored) == len(set(stored)) == PAGES  # ...and none stored twice
        refetched = [p for p, n in fetches.items() if n > 1]
        # Only what the victim had in flight is fetched again: its downloads (16 at a
        # time) plus responses and items still queued inside it, far fewer than the
        # quarter of the site already stored (a crawl restarted from scratch would
        # fetch that quarter again).
        assert len(refetched) < PAGES // 4, refetched
        assert "worker victim is gone" in dep.log("survivor")
        runs = dep.runs()
        assert [r.holder for r in runs] == ["worker:survivor"]  # the victim recorded nothing


def test_worker_refuses_an_outdated_database(tmp_path: Path, redis_url: str,
                                             prefix: str) -> None:
    from storage.schema import BASELINE_REVISION, known_revisions, upgrade

    db = f"sqlite:///{tmp_path / 'old.sqlite'}"
    if len(known_revisions()) > 1:
        upgrade(db, BASELINE_REVISION, migrate_fresh=True)
        expected = f"is at revision {BASELINE_REVISION}"
    else:  # only one revision: a database from before migrations is "older"
        upgrade(db, migrate_fresh=True)
        engine = make_engine(db)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE alembic_version")
        engine.dispose()
        expected = "created before schema migrations"
    result = subprocess.run(
        [sys.executable, "-m", "claimwatch.cli", "worker", "--redis", redis_url, "--db", db,
         "--prefix", prefix, "--burst"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert expected in result.stderr
    assert f"run `claimwatch db upgrade --db {db}`" in result.stderr
    assert "Traceback" not in result.stderr


def test_enqueue_command_and_a_burst_worker(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """`claimwatch enqueue --wait` with one `--burst` worker, which exits when done (SQLite)."""
    root = tmp_path / "site"
    root.mkdir()
    db = f"sqlite:///{tmp_path / 'burst.sqlite'}"
    with serve_logged(root) as (base, access):
        site = make_site(root, 8, base_url=base)
        enqueue = subprocess.Popen(
            [sys.executable, "-m", "claimwatch.cli", "enqueue", str(site.topic_file), "--redis",
             redis_url, "--prefix", prefix, "--wait", "90"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        args = [sys.executable, "-m", "claimwatch.cli", "worker", "--redis", redis_url,
                "--db", db, "--prefix", prefix, "--burst", "--id", "solo"]
        for key, value in WORKER_SETTINGS.items():
            args += ["--set", f"{key}={value}"]
        assert enqueue.stdout is not None
        queued = enqueue.stdout.readline()  # the job is queued: a burst worker will find it
        worker = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
        out, err = enqueue.communicate(timeout=120)
    assert enqueue.returncode == 0, err
    assert "generated/gazette: queued as job" in queued and "generated/gazette: finished" in out
    assert worker.returncode == 0, worker.stderr
    assert "generated/gazette job" in worker.stdout and ": ok (fetched 8, new 8" in worker.stdout
    assert sorted(p for p in access.snapshot() if p.startswith("/news/")) == sorted(site.paths)


def test_the_daemon_queues_scheduled_crawls_for_the_workers(
    tmp_path: Path, redis_url: str, prefix: str, client: Any
) -> None:
    """With CLAIMWATCH_REDIS_URL the daemon's scheduled job queues the crawl, not runs it."""
    from claimwatch.daemon import Daemon, DaemonOptions

    topic = small_topic(tmp_path)
    db = f"sqlite:///{tmp_path / 'daemon.sqlite'}"
    daemon = Daemon(DaemonOptions(
        topic_files=[topic], db_url=db, listen=None,
        settings={"CLAIMWATCH_REDIS_URL": redis_url, "CLAIMWATCH_REDIS_PREFIX": prefix},
    ))
    try:
        daemon.load_topics()
        daemon.run_scheduled(str(topic.resolve()), "feed-a")
        daemon.run_scheduled(str(topic.resolve()), "feed-a")  # still open: not queued twice
        with daemon.sessions() as session:
            assert session.scalar(select(func.count()).select_from(CrawlRun)) == 0
    finally:
        daemon.engine.dispose()
    [job] = open_jobs(client, prefix)
    assert (job.topic, job.source, job.trigger) == ("dist", "feed-a", "schedule")
    assert job.topic_path == str(topic.resolve())
