"""Run one crawl of a topic's sources in this process and summarise it.

A Twisted reactor cannot be restarted, so call :func:`run_crawl` at most once
per process; the daemon runs each crawl in a subprocess (``python -m
crawler.run``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from sqlalchemy import update

from config.loader import load_topic
from config.models import Topic
from crawler.localsite import serve_directory
from storage.db import default_db_url, make_engine, session_factory, init_db
from storage.models import CrawlRun, utcnow
from storage.repository import Store

logger = logging.getLogger(__name__)

# Summary columns and the stats keys they add up.
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "fetched": ("claimwatch/fetched",),
    "new": ("claimwatch/stored/new",),
    "duplicates": ("claimwatch/stored/duplicates",),
    "matched": ("claimwatch/claims/articles_matched",),
    "conflicts": ("claimwatch/claims/conflicts",),
    "candidates": ("claimwatch/claims/candidates",),
    "off_topic": ("claimwatch/filter/off_topic",),
    "seen": ("claimwatch/skipped/seen", "claimwatch/dedup/seen"),
}


class CrawlError(RuntimeError):
    """The crawl could not start (bad topic, unknown source, unsupported kind)."""


@dataclass
class SourceSummary:
    source: str
    kind: str
    run_id: int | None
    status: str = "ok"
    counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class CrawlSummary:
    topic: str
    sources: list[SourceSummary]

    def total(self, key: str) -> int:
        return sum(s.counts.get(key, 0) for s in self.sources)

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.sources)


def base_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    if overrides:
        settings.setdict(dict(overrides), priority="cmdline")
    return settings


def count_errors(stats: Mapping[str, Any]) -> int:
    errors = sum(v for k, v in stats.items() if k.startswith("claimwatch/errors/"))
    errors += sum(v for k, v in stats.items()
                  if k.startswith("claimwatch/extract/") and not k.endswith("/ok"))
    errors += int(stats.get("log_count/ERROR", 0))
    return int(errors)


def summarise_stats(stats: Mapping[str, Any]) -> dict[str, int]:
    counts = {name: int(sum(stats.get(k, 0) for k in keys)) for name, keys in SUMMARY_KEYS.items()}
    counts["errors"] = count_errors(stats)
    return counts


@contextmanager
def _local_site(topic: Topic) -> Iterator[str | None]:
    if topic.serve_dir is None:
        yield None
        return
    with serve_directory(topic.serve_dir) as url:
        logger.info("serving %s at %s", topic.serve_dir, url)
        yield url


def run_crawl(
    topic_path: str | os.PathLike[str],
    *,
    sources: Sequence[str] | None = None,
    db_url: str | None = None,
    settings: Mapping[str, Any] | None = None,
    trigger: str = "manual",
) -> CrawlSummary:
    """Crawl the topic's sources (all, or those named) once, in this process."""
    from crawler.spiders import SPIDERS_BY_KIND

    topic = load_topic(topic_path)
    chosen = list(topic.sources)
    if sources:
        unknown = [name for name in sources if name not in {s.name for s in topic.sources}]
        if unknown:
            known = ", ".join(s.name for s in topic.sources)
            raise CrawlError(f"topic {topic.name!r} has no source {unknown[0]!r} (sources: {known})")
        chosen = [s for s in topic.sources if s.name in sources]

    db_url = db_url or default_db_url()
    engine = make_engine(db_url)
    init_db(engine)
    sessions = session_factory(engine)
    store = Store(sessions)
    store.sync_claims(topic.name, topic.claims)

    overrides: dict[str, Any] = {
        "CLAIMWATCH_TOPIC_FILE": str(topic.path),
        "CLAIMWATCH_DB_URL": db_url,
        **(settings or {}),
    }
    summaries: list[SourceSummary] = []
    with ExitStack() as stack:
        site = stack.enter_context(_local_site(topic))
        if site is not None:
            overrides.setdefault("CLAIMWATCH_SITE_URL", site)
            overrides.setdefault("CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES", True)
            overrides.setdefault("AUTOTHROTTLE_START_DELAY", 0.0)
        process = CrawlerProcess(base_settings(overrides), install_root_handler=False)
        crawlers = []
        for source in chosen:
            run_id = _start_run(sessions, topic.name, source.name, trigger)
            summary = SourceSummary(source=source.name, kind=source.kind, run_id=run_id)
            summaries.append(summary)
            spider_cls = SPIDERS_BY_KIND.get(source.kind)
            if spider_cls is None:
                summary.status, summary.error = "failed", f"source kind {source.kind!r} unsupported"
                continue
            crawler = process.create_crawler(spider_cls)
            crawlers.append((summary, crawler))
            process.crawl(crawler, source=source.name)
        if crawlers:
            process.start()
    for summary, crawler in crawlers:
        stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
        summary.stats = stats
        summary.counts = summarise_stats(stats)
        reason = stats.get("finish_reason")
        if reason != "finished":
            summary.status = "failed"
            summary.error = summary.error or f"crawl ended: {reason or 'did not start'}"
        elif stats.get("claimwatch/errors/feed"):
            summary.status = "failed"
            summary.error = "the source's feed could not be fetched or parsed"
    for summary in summaries:
        _finish_run(sessions, summary)
        _record_source_state(store, topic.name, summary)
    engine.dispose()
    return CrawlSummary(topic=topic.name, sources=summaries)


def _start_run(sessions: Any, topic: str, source: str, trigger: str) -> int:
    with sessions.begin() as session:
        run = CrawlRun(topic=topic, source=source, trigger=trigger, started=utcnow(),
                       status="running", counts={}, pid=os.getpid())
        session.add(run)
        session.flush()
        return int(run.id)


def _finish_run(sessions: Any, summary: SourceSummary) -> None:
    with sessions.begin() as session:
        session.execute(
            update(CrawlRun)
            .where(CrawlRun.id == summary.run_id)
            .values(finished=utcnow(), status=summary.status, counts=summary.counts,
                    error=summary.error)
        )


def _record_source_state(store: Store, topic: str, summary: SourceSummary) -> None:
    now: datetime = utcnow()
    state = store.source_state(topic, summary.source)
    failures = state.consecutive_failures if state else 0
    values: dict[str, Any] = {"last_attempt": now}
    if summary.status == "ok":
        values.update(last_success=now, consecutive_failures=0, last_error=None,
                      items_seen=(state.items_seen if state else 0)
                      + summary.stats.get("claimwatch/feed/entries", 0))
        if summary.counts.get("new"):
            values["last_new_article"] = now
    else:
        values.update(consecutive_failures=failures + 1, last_error=summary.error)
    store.update_source_state(topic, summary.source, **values)
