"""Article analysis in worker processes (pipeline/workers.py).

The pool is real (spawned processes); the crawl test runs two crawls of the demo
site, one analysing every article in workers and one in the crawl's own process,
and compares what they stored.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from config.loader import load_claims, load_topic
from config.models import Query
from pipeline import workers
from pipeline.dedup import all_band_keys, content_hash
from pipeline.workers import (
    WORKER_GC_THRESHOLD,
    Analyser,
    Analysis,
    AnalysisConfig,
    ArticleJob,
    WorkerPool,
)
from storage.models import Article, ArticleBand, ArticleClaim, ClaimCandidate
from tests.conftest import DEMO_SITE, DEMO_TOPIC, REPO
from tests.crawl_helpers import run_crawl_in_subprocess

CLAIMS = load_claims(REPO / "config" / "topics" / "claims.csv")
QUERY = load_topic(DEMO_TOPIC).query
PAGES = sorted(p for p in DEMO_SITE.rglob("*.html") if p.name != "index.html")


def jobs() -> list[ArticleJob]:
    return [ArticleJob(url=f"http://news.example/{p.relative_to(DEMO_SITE)}", body=p.read_bytes(),
                       encoding="utf-8") for p in PAGES]


def comparable(analysis: Analysis) -> Analysis:
    return replace(analysis, cpu_seconds=0.0, logs=())


@pytest.fixture(scope="module")
def analyser() -> Analyser:
    return Analyser(AnalysisConfig(claims=CLAIMS, query=QUERY))


def test_analysis_is_what_the_stages_need(analyser: Analyser) -> None:
    results = [analyser.analyse(job) for job in jobs()]
    on_topic = [r for r in results if r.on_topic]
    assert on_topic and len(on_topic) < len(results)  # the demo site has off-topic stories
    assert any(r.matches for r in on_topic) and any(r.candidates for r in on_topic)
    for r in on_topic:
        assert r.error is None and r.extracted is not None
        assert r.content_hash == content_hash(r.extracted.text)
        assert list(r.band_keys) == all_band_keys(r.extracted.text)
    for r in results:
        if not r.on_topic:
            assert not r.matches and not r.candidates and r.content_hash is None


def test_empty_query_accepts_everything_and_errors_are_reasons() -> None:
    analyser = Analyser(AnalysisConfig(claims=(), query=Query()))
    assert all(analyser.analyse(job).on_topic for job in jobs())
    empty = analyser.analyse(ArticleJob(url="http://x.example/", body=b"  "))
    assert (empty.error, empty.extracted, empty.on_topic) == ("empty", None, False)
    short = analyser.analyse(ArticleJob(url="http://x.example/", body=b"<html><p>Hi</p></html>"))
    assert short.error in ("too_short", "no_text")


def test_pool_analyses_as_the_crawl_would_and_bounds_its_queue(analyser: Analyser) -> None:
    pool = WorkerPool(analyser.config, workers=2, max_pending=2)
    outstanding: list[int] = []
    work = jobs() * 2

    async def main() -> list[Analysis]:
        pool.start()
        executor = pool._executor
        assert executor is not None
        submit = executor.submit

        def counting_submit(fn: Any, *args: Any) -> Any:
            future = submit(fn, *args)
            outstanding.append(sum(1 for f in live if not f.done()) + 1)
            live.append(future)
            return future

        live: list[Any] = []
        executor.submit = counting_submit  # type: ignore[method-assign,assignment]
        return await asyncio.gather(*(pool.analyse(job) for job in work))

    try:
        results = asyncio.run(main())
    finally:
        pool.close()
    assert [comparable(r) for r in results] == [comparable(analyser.analyse(j)) for j in work]
    assert max(outstanding) <= 2  # back-pressure: never more than max_pending in the pool
    assert pool.restarts == 0 and pool.failed is None


def _collector_state() -> tuple[int, bool]:
    """In a worker: its young generation's threshold, and whether its analyser is frozen
    out of the collector's passes (frozen objects are in no generation)."""
    analyser = workers._WORKER
    assert analyser is not None
    return gc.get_threshold()[0], not any(o is analyser for o in gc.get_objects())


def test_workers_collect_garbage_less_often(analyser: Analyser) -> None:
    pool = WorkerPool(analyser.config, workers=1, max_pending=1)
    pool.start()
    try:
        assert pool._executor is not None
        threshold, analyser_frozen = pool._executor.submit(_collector_state).result(timeout=300)
    finally:
        pool.close()
    assert threshold == WORKER_GC_THRESHOLD != gc.get_threshold()[0]  # the worker's only
    assert analyser_frozen


def test_a_dead_worker_is_replaced_and_the_article_analysed(analyser: Analyser) -> None:
    pool = WorkerPool(analyser.config, workers=1, max_pending=1)
    job = jobs()[0]

    async def main() -> Analysis:
        pool.start()
        while not pool.ready:
            await asyncio.sleep(0.05)
        executor = pool._executor
        assert executor is not None
        [pid] = [p.pid for p in executor._processes.values() if p.pid is not None]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not executor._broken and time.monotonic() < deadline:  # noticed by its manager
            await asyncio.sleep(0.05)
        return await pool.analyse(job)

    try:
        result = asyncio.run(main())
    finally:
        pool.close()
    assert comparable(result) == comparable(analyser.analyse(job))
    assert pool.restarts == 1 and pool.failed is None


def stored(db_url: str) -> dict[str, Any]:
    """What a crawl stored, keyed by URL path (the two crawls serve on different ports)."""
    engine = create_engine(db_url)
    out: dict[str, Any] = {}
    with Session(engine) as session:
        paths: dict[int | None, str] = {
            a.id: urlparse(a.url).path for a in session.scalars(select(Article))}
        for a in session.scalars(select(Article)):
            out[paths[a.id]] = {
                "text": a.text, "title": a.title, "hash": a.content_hash,
                "duplicate_of": paths.get(a.duplicate_of_id), "kind": a.duplicate_kind,
                "claims": sorted((c.claim_id, c.sentence, c.score, c.tier, c.conflict)
                                 for c in session.scalars(select(ArticleClaim)
                                                          .where(ArticleClaim.article_id == a.id))),
                "candidates": sorted((c.sentence, c.score) for c in session.scalars(
                    select(ClaimCandidate).where(ClaimCandidate.article_id == a.id))),
                "bands": sorted(session.scalars(select(ArticleBand.band_key)
                                                .where(ArticleBand.article_id == a.id))),
            }
    engine.dispose()
    return out


def test_a_crawl_through_workers_stores_what_an_inline_crawl_stores(tmp_path: Path) -> None:
    results = {}
    for name, n_workers in (("pool", 2), ("inline", 0)):
        db = f"sqlite:///{tmp_path / name}.sqlite"
        crawl = run_crawl_in_subprocess(DEMO_TOPIC, db, settings={
            "CLAIMWATCH_WORKERS": n_workers, "CLAIMWATCH_WORKERS_MIN_ITEMS": 0,
            "CLAIMWATCH_SITE_PORT": 0,
            # one download at a time: both crawls get the pages in the same order (what
            # is stored first matters: the first of a family is its original)
            "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        })
        [source] = crawl.sources
        results[name] = (crawl.stats(source), stored(db))
    (pool_stats, pool_db), (inline_stats, inline_db) = results["pool"], results["inline"]
    fetched = pool_stats["claimwatch/fetched"]
    assert fetched == len(PAGES)
    assert pool_stats["claimwatch/workers/pool"] == fetched  # min items 0: all in workers
    assert "claimwatch/workers/inline" not in pool_stats
    assert inline_stats["claimwatch/workers/inline"] == fetched
    assert "claimwatch/workers/pool" not in inline_stats
    assert pool_db and pool_db == inline_db
    for key in ("claimwatch/stored/new", "claimwatch/stored/duplicates",
                "claimwatch/filter/off_topic", "claimwatch/claims/matches"):
        assert pool_stats.get(key) == inline_stats.get(key), key
