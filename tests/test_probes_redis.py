"""Probes: distributed workers under faults (issue 12): Redis restarted under them, and
one SIGKILLed inside the store transaction of an article.

The test starts its own ``redis-server`` (own port, own directory, append-only file on,
as a production Redis that must not lose its queue would run) and NEVER touches the
shared one on 6379. Two workers crawl a queued job; Redis is restarted in the middle;
the job must finish once, every page stored exactly once, and the workers must
reconnect and take the next job.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from crawler.distributed import JobQueue, enqueue_crawl, redis_client, wait_for_jobs
from tests.test_distributed import (
    PAGES,
    Deployment,
    article_fetches,
    deployment,
    stop,
    wait_until,
)

REDIS_SERVER = shutil.which("redis-server")


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = redis_client(self.url)
                client.ping()
                client.close()
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        raise AssertionError("the test's redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis's own clean shutdown
            self.proc.wait(10)


def job_state(url: str, job_id: str, prefix: str) -> str:
    """The job's queue, in-flight requests (whose) and seed, for a stalled job's message."""
    client = redis_client(url)
    try:
        jobs = JobQueue(client, job_id, prefix=prefix)
        queued, _ = jobs.pending()
        inflight = sorted(t.decode() for t in client.hkeys(jobs.inflight_key))
        seed = client.get(jobs.seed_key)
        return f"job {job_id}: {queued} queued, in flight {inflight}, seed {seed!r}"
    finally:
        client.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed: cannot restart a Redis of the test's own")
    directory = tmp_path / "redis"
    directory.mkdir()
    redis = OwnRedis(directory)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@contextmanager
def crawling(tmp_path: Path, url: str, postgres_url: str,
             prefix: str) -> Iterator[tuple[Deployment, Any, Any, Any]]:
    """Two workers crawling a queued job, a fifth of its pages stored: (dep, w1, w2, job)."""
    with deployment(tmp_path, url, postgres_url, prefix, delay=0.02) as dep:
        w1, w2 = dep.start_worker("w1"), dep.start_worker("w2")
        dep.wait_for_workers("w1", "w2")
        job = enqueue_crawl(url, dep.site.topic_file, "gazette", prefix=prefix).job
        dep.release_feed_when_crawling("w1", "w2")
        wait_until(lambda: len(dep.stored()) >= PAGES // 5, 60, "a fifth of the pages")
        yield dep, w1, w2, job


def test_workers_survive_a_redis_restart_and_no_crawl_is_lost_or_run_twice(
        tmp_path: Path, own_redis: OwnRedis, postgres_url: str) -> None:
    prefix = "cwprobe"
    url = own_redis.url
    with crawling(tmp_path, url, postgres_url, prefix) as (dep, w1, w2, job):
        own_redis.stop()
        time.sleep(1.0)  # the workers see it gone
        own_redis.start()
        assert len(dep.stored()) < PAGES, "the crawl was over before the restart"
        try:
            [result] = wait_for_jobs(url, [job.id], timeout=180, prefix=prefix).values()
        except TimeoutError as stalled:  # say what the workers and the job's queue hold
            tails = "\n".join(f"--- {name}.log (last 4,000 characters):\n{dep.log(name)[-4000:]}"
                               for name in ("w1", "w2"))
            raise AssertionError(f"{stalled}; {len(dep.stored())} of {PAGES} pages stored; "
                                 f"workers alive: {w1.poll() is None}, {w2.poll() is None}; "
                                 f"{job_state(url, job.id, prefix)}\n" + tails) from stalled
        assert w1.poll() is None and w2.poll() is None  # reconnected, not crashed
        stored = dep.stored()
        assert len(stored) == len(set(stored)) == PAGES, result  # nothing lost or doubled
        fetches = article_fetches(dep.access)
        assert sorted(fetches) == sorted(dep.site.paths)
        # the workers took the next job after the restart
        again = enqueue_crawl(url, dep.site.topic_file, "gazette", prefix=prefix).job
        [second] = wait_for_jobs(url, [again.id], timeout=120, prefix=prefix).values()
        assert second["errors"] == [], second
        for worker in (w1, w2):
            code, _ = stop(worker)
            assert code == 0


def test_workers_lose_nothing_when_their_redis_connections_are_cut_again_and_again(
        tmp_path: Path, own_redis: OwnRedis, postgres_url: str) -> None:
    """Redis drops every worker connection every 10 ms for 3 s mid-crawl. A connection cut
    after Redis ran a command but before its answer left (what a restart also does to
    the last commands it ran) makes redis-py run the command again: a pop then strands a
    request in flight under a live worker (the job never finishes), a dupefilter mark
    without its push loses the page. Neither may happen."""
    prefix = "cwcut"
    url = own_redis.url
    with crawling(tmp_path, url, postgres_url, prefix) as (dep, w1, w2, job):
        cuts = 0  # connections cut while pages were still to be stored
        cutter = redis_client(url)
        try:
            until = time.monotonic() + 3
            while time.monotonic() < until:
                killed = int(cutter.client_kill_filter(_type="normal", skipme=True))
                if len(dep.stored()) >= PAGES:
                    break  # a quiet machine can finish the crawl inside the 3 s
                cuts += killed
                time.sleep(0.01)
        finally:
            cutter.close()
        assert cuts > 0, "no connection was cut while the crawl was running"
        try:
            [result] = wait_for_jobs(url, [job.id], timeout=120, prefix=prefix).values()
        except TimeoutError as stalled:
            raise AssertionError(f"{stalled}; {len(dep.stored())} of {PAGES} pages stored "
                                 f"after {cuts} connections cut; "
                                 f"{job_state(url, job.id, prefix)}") from stalled
        assert result["errors"] == [], result
        stored = dep.stored()
        assert len(stored) == len(set(stored)) == PAGES, f"{cuts} connections cut"
        assert sorted(article_fetches(dep.access)) == sorted(dep.site.paths)
        for worker in (w1, w2):
            code, _ = stop(worker)
            assert code == 0


@pytest.mark.parametrize("stage", ["store"])
def test_a_worker_killed_inside_the_store_transaction_loses_no_page(
        tmp_path: Path, redis_url: str, postgres_url: str, stage: str) -> None:
    """A distributed worker SIGKILLed between writing an article's rows and committing
    them: the survivor finishes the job, every page stored exactly once."""
    from tests.services import delete_redis_keys, redis_prefix

    prefix = redis_prefix()
    try:
        with deployment(tmp_path, redis_url, postgres_url, prefix, delay=0.02) as dep:
            victim = dep.start_worker(
                "victim", CLAIMWATCH_WORKER_HEARTBEAT_TTL="2",
                EXTENSIONS='{"tests.fault_hooks.Faults": 0}',
                CLAIMWATCH_TEST_KILL_STAGE=stage, CLAIMWATCH_TEST_KILL_AT="20")
            survivor = dep.start_worker("survivor", CLAIMWATCH_WORKER_HEARTBEAT_TTL="2")
            dep.wait_for_workers("victim", "survivor")
            job = enqueue_crawl(redis_url, dep.site.topic_file, "gazette", prefix=prefix).job
            dep.release_feed_when_crawling("victim", "survivor")
            assert victim.wait(120) == -9  # it killed itself in the store stage
            [result] = wait_for_jobs(redis_url, [job.id], timeout=120, prefix=prefix).values()
            assert result["finished_by"] == "survivor"
            code, _ = stop(survivor)
            assert code == 0
            stored = dep.stored()
            assert len(stored) == len(set(stored)) == PAGES  # none lost, none twice
    finally:
        delete_redis_keys(redis_url, prefix)
