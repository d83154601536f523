"""Run one crawl of a topic's sources in this process and summarise it.

A Twisted reactor cannot be restarted, so call :func:`run_crawl` at most once
per process; the daemon runs each crawl in a subprocess (``python -m
crawler.run``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from config.loader import load_topic
from config.models import Topic
from crawler.localsite import serve_directory
from crawler.progress import SourceProgress
from storage import leases
from storage.db import (
    default_db_url,
    init_db,
    make_engine,
    refresh_statistics,
    session_factory,
)
from storage.leases import Holder, LeaseKeeper
from storage.models import CrawlRun, utcnow
from storage.repository import Store

logger = logging.getLogger(__name__)

# Summary columns and the stats keys they add up (a key ending in "/" adds up every key
# under it: claimwatch/refused/loopback, claimwatch/refused/robots, ...).
SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "fetched": ("claimwatch/fetched",),
    "not_modified": ("claimwatch/not_modified",),
    "new": ("claimwatch/stored/new",),
    "duplicates": ("claimwatch/stored/duplicates",),
    "matched": ("claimwatch/claims/articles_matched",),
    "conflicts": ("claimwatch/claims/conflicts",),
    "candidates": ("claimwatch/claims/candidates",),
    "off_topic": ("claimwatch/filter/off_topic",),
    "seen": ("claimwatch/skipped/seen", "claimwatch/dedup/seen"),
    "refused": ("claimwatch/refused/",),
    # Links the source listed but the crawl will not fetch: non-http(s) schemes, links
    # over URLLENGTH_LIMIT, entries without a link (each counted under its reason).
    "skipped": ("claimwatch/skipped/bad_url", "claimwatch/skipped/url_too_long",
                "claimwatch/feed/entries_without_link", "urllength/request_ignored_count"),
}
# The reasons behind the "skipped" column, as the summary names them.
SKIP_REASONS = {"claimwatch/skipped/bad_url": "unsupported scheme",
                "claimwatch/skipped/url_too_long": "URL over URLLENGTH_LIMIT",
                "claimwatch/feed/entries_without_link": "entry without a link",
                # Scrapy's UrlLengthMiddleware: a section page or child sitemap too long
                "urllength/request_ignored_count": "other URL over URLLENGTH_LIMIT"}
# A source whose own feed, sitemap or listing page failed has failed (coverage is missing).
SOURCE_ERRORS = ("claimwatch/errors/feed", "claimwatch/errors/sitemap",
                 "claimwatch/errors/listing")
# Items a source listed (feed entries, sitemap URLs, listing article links).
SOURCE_ITEMS = ("claimwatch/feed/entries", "claimwatch/sitemap/entries",
                "claimwatch/listing/articles")


class CrawlError(RuntimeError):
    """The crawl could not start (bad topic, unknown source, unsupported kind)."""


class SourcesBusy(CrawlError):
    """Every source asked for is being crawled already (its lease is held elsewhere)."""


@dataclass
class SourceSummary:
    source: str
    kind: str
    run_id: int | None
    status: str = "ok"
    counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    # A revisit fetches the source's recent articles again, not its feed or listing: its
    # outcome says nothing of the source's health, so it leaves ``source_states`` alone.
    revisit: bool = False


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
    # Unexpected exceptions in callbacks (Scrapy's stat) and item pipelines
    # (claimwatch/errors/item, crawler/logformatter.py). Not log_count/ERROR: Scrapy's
    # LogCounterHandler sits on the root logger, so in a multi-source run every crawler
    # counts every other crawler's ERROR lines, and a page that failed after retries
    # would count twice (Scrapy's "Gave up retrying" plus the spider's own count).
    errors += int(stats.get("spider_exceptions/count", 0))
    return int(errors)


def summarise_stats(stats: Mapping[str, Any]) -> dict[str, int]:
    def total(key: str) -> int:
        if key.endswith("/"):
            return sum(int(v) for k, v in stats.items() if k.startswith(key))
        return int(stats.get(key, 0))

    counts = {name: sum(total(k) for k in keys) for name, keys in SUMMARY_KEYS.items()}
    counts["errors"] = count_errors(stats)
    return counts


@contextmanager
def _local_site(topic: Topic, port: int) -> Iterator[str | None]:
    """Serve the topic's ``serve_dir`` on a fixed port, so stored URLs stay the same
    from one crawl to the next (incremental crawls key on them)."""
    if topic.serve_dir is None:
        yield None
        return
    try:
        site = serve_directory(topic.serve_dir, port=port)
        url = site.__enter__()
    except OSError as exc:
        if port == 0:
            raise
        logger.warning(
            "port %s is busy (%s): serving %s on a random port; its URLs will differ from "
            "earlier crawls', so they are fetched again", port, exc, topic.serve_dir,
        )
        site = serve_directory(topic.serve_dir, port=0)
        url = site.__enter__()
    logger.info("serving %s at %s", topic.serve_dir, url)
    try:
        yield url
    finally:
        site.__exit__(None, None, None)


def run_crawl(
    topic_path: str | os.PathLike[str],
    *,
    sources: Sequence[str] | None = None,
    db_url: str | None = None,
    settings: Mapping[str, Any] | None = None,
    trigger: str = "manual",
    run_ids: Mapping[str, int] | None = None,
    lease: bool = True,
    progress: Callable[[list[SourceProgress]], None] | None = None,
    revisit: bool = False,
) -> CrawlSummary:
    """Crawl the topic's sources (all, or those named) once, in this process.

    Each source's lease (``storage/leases.py``) is taken first, so a source the
    daemon or another ``claimwatch crawl`` is crawling is not crawled twice: it is
    reported with status ``busy`` (:class:`SourcesBusy` when every source is busy).
    The daemon takes the lease and writes the ``crawl_runs`` row itself, then passes
    ``run_ids`` (source name -> run id) and ``lease=False``.
    """
    from crawler.spiders import SPIDERS_BY_KIND
    from crawler.spiders.revisit import RevisitSpider

    topic = load_topic(topic_path)
    chosen = list(topic.sources)
    if sources:
        unknown = [name for name in sources if name not in {s.name for s in topic.sources}]
        if unknown:
            known = ", ".join(s.name for s in topic.sources)
            raise CrawlError(
                f"topic {topic.name!r} has no source {unknown[0]!r} (sources: {known})"
            )
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
    keeper = _lease_keeper(sessions, base_settings(overrides)) if lease else None
    with ExitStack() as stack:
        port = int(base_settings(overrides).getint("CLAIMWATCH_SITE_PORT", 8765))
        site = stack.enter_context(_local_site(topic, port))
        if site is not None:
            overrides.setdefault("CLAIMWATCH_SITE_URL", site)
            overrides.setdefault("CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES", True)
            overrides.setdefault("AUTOTHROTTLE_START_DELAY", 0.0)
        scrapy_settings = base_settings(overrides)
        # The caller (the CLI) configures logging; Scrapy only gets its level.
        scrapy_settings.set("LOG_INSTALL_ROOT_HANDLER", not logging.getLogger().handlers,
                            priority="cmdline")
        process = CrawlerProcess(scrapy_settings)
        logging.getLogger("scrapy").setLevel(scrapy_settings.get("LOG_LEVEL"))
        crawlers = []
        for source in chosen:
            run_id = (run_ids or {}).get(source.name)
            if run_id is None:
                busy = _take_lease(sessions, keeper, topic.name, source.name)
                if busy:
                    summaries.append(SourceSummary(source=source.name, kind=source.kind,
                                                   run_id=None, status="busy", error=busy))
                    continue
                if keeper is not None:
                    # A run still `running` whose holder has no live lease was killed
                    # (kill -9 of a crawl, a crashed daemon): say so before starting anew.
                    leases.reap_interrupted_runs(sessions)
                run_id = _start_run(sessions, topic.name, source.name, trigger,
                                    keeper.holder.id if keeper else None)
            summary = SourceSummary(source=source.name, kind=source.kind, run_id=run_id,
                                    revisit=revisit)
            summaries.append(summary)
            spider_cls = RevisitSpider if revisit else SPIDERS_BY_KIND.get(source.kind)
            if spider_cls is None:
                summary.status, summary.error = "failed", f"source kind {source.kind!r} unsupported"
                continue
            crawler = process.create_crawler(spider_cls)
            crawlers.append((summary, crawler))
            started = process.crawl(crawler, source=source.name)
            started.addErrback(_crawl_failed, summary)
        if summaries and all(s.status == "busy" for s in summaries):
            _release_leases(sessions, keeper)
            raise SourcesBusy(summaries[0].error or "every source is being crawled already")
        if crawlers:
            interval = scrapy_settings.getfloat("CLAIMWATCH_RUN_COUNTS_INTERVAL", 2.0)
            writer = stack.enter_context(_CountsWriter(sessions, crawlers, interval, progress))
            process.start()
            writer.stop()
    for summary, crawler in crawlers:
        conclude(summary, crawler)
    try:
        for summary in summaries:
            if summary.run_id is None:
                continue  # busy: someone else is crawling it
            record_outcome(store, topic.name, summary)
        _release_leases(sessions, keeper)
        refresh_statistics(engine)  # the crawl grew the tables: keep the plans flat
    except DBAPIError as exc:
        # The database went away (or filled up) for good: the crawl's summary still
        # reaches the caller; the runs left `running` are marked interrupted by the
        # next crawl or daemon start, and the leases expire.
        if keeper is not None:
            keeper.stop()
        first = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.error("could not record the crawl's outcome in the database: %s", first)
        for summary in summaries:
            if summary.status == "ok":
                summary.status = "failed"
            summary.error = summary.error or f"outcome not recorded: {first}"
    finally:
        engine.dispose()
    return CrawlSummary(topic=topic.name, sources=summaries)


def conclude(summary: SourceSummary, crawler: Any) -> None:
    """Fill ``summary`` (stats, counts, status, error) from a finished crawler's stats."""
    try:
        stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
    except RuntimeError:  # the spider never started (NotConfigured: a bad option, ...)
        stats = {}
    summary.stats = stats
    summary.counts = summarise_stats(stats)
    reason = stats.get("finish_reason")
    if stats.get("claimwatch/database_problem"):  # full, or lost for good: stopped
        summary.status = "failed"
        summary.error = str(stats["claimwatch/database_problem"])
    elif reason == "shutdown":  # SIGTERM/SIGINT: stopped, not the source's fault
        summary.status = "interrupted"
        summary.error = summary.error or "crawl stopped by a signal before it finished"
    elif reason != "finished":
        summary.status = "failed"
        summary.error = summary.error or f"crawl ended: {reason or 'did not start'}"
    elif any(stats.get(key) for key in SOURCE_ERRORS):
        summary.status = "failed"
        summary.error = f"the source's {summary.kind} could not be fetched or parsed"


def record_outcome(store: Store, topic: str, summary: SourceSummary,
                   exit_code: int | None = None) -> None:
    """Write a finished source's ``crawl_runs`` row and its ``source_states`` row (not for
    a revisit: its success must not reset a failing feed's count and hide its alarm).

    ``exit_code`` (a daemon's crawl process: what it reports for the run) goes in the
    same write as ``finished``: no reader sees a finished run without it."""
    _finish_run(store.sessions, summary, exit_code)
    if not summary.revisit:
        _record_source_state(store, topic, summary)


class _CountsWriter:
    """Writes each running source's counts into its ``crawl_runs`` row every ``interval``
    seconds while the crawl runs, so a crawl killed half way (``kill -9``, a killed
    crawl process) leaves a record that matches what it stored, not ``{}``."""

    def __init__(self, sessions: Any, crawlers: list[tuple[SourceSummary, Any]],
                 interval: float, progress: Callable[[list[SourceProgress]], None] | None = None
                 ) -> None:
        self.sessions = sessions
        self.crawlers = crawlers
        self.interval = interval
        self.progress = progress  # told every tick: pages fetched, queued, analysed per source
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="claimwatch-run-counts",
                                        daemon=True)

    def __enter__(self) -> _CountsWriter:
        if self.interval > 0 or self.progress is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _tell_progress(self) -> None:
        if self.progress is None:
            return
        shown = []
        for summary, crawler in self.crawlers:
            try:
                stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
            except RuntimeError:
                continue
            shown.append(SourceProgress.from_stats(summary.source, stats))
        try:
            self.progress(shown)
        except Exception as exc:  # noqa: BLE001 - a closed terminal never stops a crawl
            logger.debug("progress not shown: %s", exc)

    def _loop(self) -> None:
        last: dict[int, dict[str, int]] = {}
        writes = self.interval > 0  # 0: progress only, no counts written
        tick = 1.0 if self.progress else self.interval
        if writes:
            tick = min(tick, self.interval)
        next_write = 0.0
        while not self._stop.wait(tick):
            self._tell_progress()
            now = time.monotonic()
            if not writes or now < next_write:
                continue
            next_write = now + self.interval - tick / 2
            for summary, crawler in self.crawlers:
                if summary.run_id is None or crawler.stats is None:
                    continue
                try:
                    counts = summarise_stats(dict(crawler.stats.get_stats()))
                except RuntimeError:  # changed while copied, or not started: next time
                    continue
                if last.get(summary.run_id) == counts:
                    continue
                try:
                    with self.sessions.begin() as session:
                        session.execute(
                            update(CrawlRun)
                            .where(CrawlRun.id == summary.run_id, CrawlRun.status == "running")
                            .values(counts=counts)
                        )
                except Exception as exc:  # noqa: BLE001 - progress only; the end writes them
                    logger.warning("could not write the counts of run %s: %s",
                                   summary.run_id, exc)
                    continue
                last[summary.run_id] = counts


def _crawl_failed(failure: Any, summary: SourceSummary) -> None:
    """A source whose spider could not start (NotConfigured says how to fix it) fails
    alone: the other sources of the run go on."""
    summary.error = failure.getErrorMessage() or failure.type.__name__
    logger.error("source %s could not start: %s", summary.source, summary.error)


def _lease_keeper(sessions: Any, settings: Settings) -> LeaseKeeper:
    ttl = timedelta(seconds=settings.getfloat("CLAIMWATCH_LEASE_TTL", 60))
    return LeaseKeeper(sessions, Holder.new("crawl"), ttl).start()


def _take_lease(sessions: Any, keeper: LeaseKeeper | None, topic: str, source: str) -> str | None:
    """Take the source's lease; returns why not when someone else is crawling it."""
    if keeper is None:
        return None
    try:
        leases.acquire(sessions, topic, source, keeper.holder, keeper.ttl)
    except leases.LeaseBusy as exc:
        logger.warning("%s", exc)
        return str(exc)
    keeper.add(topic, source)
    return None


def _release_leases(sessions: Any, keeper: LeaseKeeper | None) -> None:
    if keeper is not None:
        keeper.stop()
        leases.release_all(sessions, keeper.holder)


def _start_run(sessions: Any, topic: str, source: str, trigger: str,
               holder: str | None = None) -> int:
    with sessions.begin() as session:
        run = CrawlRun(topic=topic, source=source, trigger=trigger, started=utcnow(),
                       status="running", counts={}, pid=os.getpid(), holder=holder)
        session.add(run)
        session.flush()
        return int(run.id)


def _finish_run(sessions: Any, summary: SourceSummary, exit_code: int | None = None) -> None:
    values: dict[str, Any] = {"finished": utcnow(), "status": summary.status,
                              "counts": summary.counts, "error": summary.error}
    if exit_code is not None:
        values["exit_code"] = exit_code
    with sessions.begin() as session:
        session.execute(update(CrawlRun).where(CrawlRun.id == summary.run_id).values(**values))


def _record_source_state(store: Store, topic: str, summary: SourceSummary) -> None:
    now: datetime = utcnow()
    state = store.source_state(topic, summary.source)
    failures = state.consecutive_failures if state else 0
    values: dict[str, Any] = {"last_attempt": now}
    if summary.status == "interrupted":
        pass  # stopped by a signal: neither a success nor the source's failure
    elif summary.status == "ok":
        values.update(last_success=now, consecutive_failures=0, last_error=None,
                      items_seen=(state.items_seen if state else 0)
                      + sum(int(summary.stats.get(k, 0)) for k in SOURCE_ITEMS))
        if summary.counts.get("new"):
            values["last_new_article"] = now
    else:
        values.update(consecutive_failures=failures + 1, last_error=summary.error)
    store.update_source_state(topic, summary.source, **values)
