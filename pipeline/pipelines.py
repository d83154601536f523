"""Scrapy item pipelines: thin adapters from items to the pure stages.

Order (crawler/settings.py ITEM_PIPELINES): analyse -> dedup -> store, each a
stage that does work. Items are :class:`pipeline.items.PageItem` dicts; each
stage adds its keys. Outcomes are counted in ``crawler.stats`` under
``claimwatch/...``; the crawl summary reads them.

The analysis itself is one visible chain, pipeline/analysis.py (extract ->
topic filter -> sentences -> claims -> candidates -> dedup keys), that the
analyse stage runs in worker processes (``CLAIMWATCH_WORKERS``) and awaits; the
stages after it read its :class:`~pipeline.analysis.Analysis`
(``item["analysis"]``) and do what needs the database on the reactor thread.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.exceptions import DropItem

from pipeline.analysis import Analysis, ArticleJob
from pipeline.context import store_for, topic_for
from pipeline.extract import Extracted
from pipeline.family import new_to_family
from pipeline.items import Duplicate, PageItem
from pipeline.persist import article_record, find_original
from pipeline.unstored import unstored_for
from pipeline.urls import canonical_url
from pipeline.workers import analysis_for

logger = logging.getLogger(__name__)


class _Stage:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.settings = crawler.settings

    @classmethod
    def from_crawler(cls, crawler: Any) -> _Stage:
        return cls(crawler)

    def count(self, key: str, n: int = 1) -> None:
        self.crawler.stats.inc_value(f"claimwatch/{key}", n)


class _DatabaseStage(_Stage):
    """A stage that reads or writes the database, through :meth:`with_database`.

    A lost connection (PostgreSQL restarted, the network cut) is retried after
    ``CLAIMWATCH_DB_RETRY_DELAYS`` seconds each; the work is one transaction that an
    error rolls back, and storing is an upsert, so a retry never stores twice. A full
    disk, or a connection still lost after the retries, stops the crawl with one clear
    error (``claimwatch/errors/database``); what was committed before stays.
    """

    async def with_database(self, work: Any, item: PageItem) -> PageItem:
        from sqlalchemy.exc import DBAPIError

        from storage.errors import LOST, database_problem

        delays = [float(d) for d in self.settings.getlist("CLAIMWATCH_DB_RETRY_DELAYS",
                                                          [1, 3, 10])]
        for attempt in range(len(delays) + 1):
            try:
                return work(item)
            except DBAPIError as exc:
                problem = database_problem(exc)
                if problem is None:
                    raise
                first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) \
                    else type(exc).__name__
                if problem == LOST and attempt < len(delays):
                    self.count("database/retries")
                    logger.warning("the database connection was lost (%s): %s again in %.0f s",
                                   first, item.get("url"), delays[attempt])
                    await _sleep(delays[attempt])
                    continue
                why = ("the database is full" if problem != LOST else
                       f"the database cannot be reached after {len(delays)} retries")
                self._stop_crawl(f"{why} ({first}): the crawl stops; what it stored is kept",
                                 f"database_{problem}")
                raise DropItem(f"{item.get('url')}: not stored: {why}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _stop_crawl(self, message: str, reason: str) -> None:
        stats = self.crawler.stats
        if stats.get_value("claimwatch/database_problem"):
            return  # said once; the crawl is closing
        self.count("errors/database")
        stats.set_value("claimwatch/database_problem", message)
        logger.error("%s", message)
        from scrapy.utils.defer import deferred_from_coro

        deferred_from_coro(self.crawler.engine.close_spider_async(reason=reason))


def _page_urls(item: PageItem) -> set[str]:
    """The URL a page was requested at and the one it ended at (after redirects)."""
    return {item["url"], item.get("requested_url") or item["url"]}


async def _sleep(seconds: float) -> None:
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class AnalysePipeline(_Stage):
    """The analysis chain (pipeline/analysis.py) on the page, in a worker process.

    extract -> topic filter -> sentences -> claims -> candidates -> dedup keys, run
    by the worker pool (pipeline/workers.py) and awaited: the reactor goes on
    fetching. A page with no article is counted and dropped; an off-topic page is
    counted, kept with its text (marked off-topic, so a corrected query brings it
    back on ``claimwatch rematch``) and dropped.
    """

    def open_spider(self) -> None:
        self.analysis = analysis_for(self.crawler)
        self.store = store_for(self.crawler)
        self.topic = topic_for(self.crawler).name

    def close_spider(self) -> None:
        self.analysis.close()

    async def process_item(self, item: PageItem) -> PageItem:
        if "revisit_of" in item:
            return self._revisit(item)
        job = ArticleJob(url=item["url"], body=item.pop("body", b""),  # not needed further
                         encoding=item.get("encoding"), listed_title=item.get("listed_title"))
        analysis: Analysis = await self.analysis.analyse(job)
        if analysis.error is not None or analysis.extracted is None:
            self.count(f"extract/{analysis.error}")
            logger.warning("%s: no article extracted from %s: %s", item["source"], item["url"],
                           analysis.error_detail)
            self._unstored(item, "too_short" if analysis.error == "too_short" else "no_article",
                           analysis.error_detail.removeprefix(f"{analysis.error}: "))
            raise DropItem(f"{item['url']}: {analysis.error_detail}")
        self.count("extract/ok")
        if not analysis.on_topic:
            self._keep_off_topic(item, analysis.extracted)
            raise DropItem(f"{item['url']}: off topic")
        self.count("filter/on_topic")
        self._count_claims(analysis)
        item["analysis"] = analysis
        return item

    def _unstored(self, item: PageItem, reason: str, detail: str) -> None:
        """Why the page is dropped, under the URL it was requested at and the one it
        ended at (a redirect), for ``claimwatch explain``."""
        log = unstored_for(self.crawler)
        for url in _page_urls(item):
            log.add(url, reason, detail)

    def _revisit(self, item: PageItem) -> PageItem:
        """A revisit of a stored article (crawler/spiders/revisit.py): pipeline/revisit.py
        keeps what it found; the stages after this one pass it on."""
        from pipeline.revisions import Fetched
        from pipeline.revisit import apply_revisit

        fetched = Fetched(item.get("status"), item["url"], item.get("error"))
        outcome = apply_revisit(self.store, self.analysis.shared.local, item["revisit_of"],
                                fetched, item.pop("body", b""), encoding=item.get("encoding"),
                                fetched_at=item.get("fetched_at"))
        self.count(f"revisit/{outcome}")
        item["revisit_outcome"] = outcome
        return item

    def _keep_off_topic(self, item: PageItem, extracted: Extracted) -> None:
        """Not fetched again, and kept with its text so a corrected query brings it back."""
        from storage.rematch import keep_off_topic

        self.count("filter/off_topic")
        canonical = canonical_url(item["url"], declared=extracted.declared_canonical)
        urls = {item["url"], item.get("requested_url") or item["url"], canonical}
        self.store.mark_skipped(self.topic, urls, "off_topic")
        with self.store.sessions.begin() as session:
            keep_off_topic(session, {
                "topic": self.topic, "source": item["source"], "url": item["url"],
                "requested_url": item.get("requested_url"), "canonical_url": canonical,
                "declared_canonical": extracted.declared_canonical,
                "title": extracted.title or item.get("listed_title"),
                "author": extracted.author, "outlet": extracted.outlet,
                "language": extracted.language,
                "published": extracted.published or item.get("listed_published"),
                "fetched_at": item.get("fetched_at"), "text": extracted.text})

    def _count_claims(self, analysis: Analysis) -> None:
        if analysis.matches:
            self.count("claims/articles_matched")
            self.count("claims/matches", len(analysis.matches))
        if any(m.conflict for m in analysis.matches):
            self.count("claims/conflicts")


class DedupPipeline(_DatabaseStage):
    """Finds the original of a copy or rewrite: flags it, never drops it.

    The same canonical URL already stored is dropped as seen; otherwise the
    evidence of :func:`pipeline.persist.find_original` (the same normalised text,
    a declared original, near-duplicate candidates from the LSH band index).
    """

    def open_spider(self) -> None:
        self.store = store_for(self.crawler)
        self.topic = topic_for(self.crawler).name
        self.max_candidates = self.settings.getint("CLAIMWATCH_DEDUP_MAX_CANDIDATES", 20)

    async def process_item(self, item: PageItem) -> PageItem:
        if "revisit_of" in item:
            return item  # kept by the analyse stage
        return await self.with_database(self._dedup, item)

    def _dedup(self, item: PageItem) -> PageItem:
        analysis = item["analysis"]
        extracted = analysis.extracted
        assert extracted is not None
        canonical = canonical_url(item["url"], declared=extracted.declared_canonical)
        item["canonical_url"] = canonical
        with self.store.lookups() as store:  # the page's reads in one session
            stored = store.find_by_url(self.topic, canonical)
            # A copy keeps its candidates: which article of a family is the original is
            # only known once the earliest one is stored, so the digest folds them.
            duplicate = None if stored is not None else find_original(
                store, self.topic, item["url"], extracted, analysis, self.max_candidates)
        if stored is not None:
            self.count("dedup/seen")
            detail = f"already stored as article #{stored} ({canonical})"
            log = unstored_for(self.crawler)
            for url in _page_urls(item) - {canonical}:
                log.add(url, "seen", detail)
            raise DropItem(f"{item['url']}: {detail}")
        item["duplicate"] = duplicate
        if duplicate is not None:
            self.count(f"dedup/{duplicate['kind']}")
        return item


class StorePipeline(_DatabaseStage):
    """Upserts the article and everything found about it, in one transaction."""

    def open_spider(self) -> None:
        self.store = store_for(self.crawler)

    def _count_candidates(self, candidates: list[Any], duplicate: Duplicate | None) -> None:
        """New-claim candidates of a new article, less those a copy shares with its
        original (the digest offers those on the original): the digest's count."""
        sentences = [c.sentence for c in candidates]
        if duplicate is not None and sentences:
            original = self.store.texts([duplicate["root_id"]])
            sentences = new_to_family(sentences, original[0].text if original else None)
        if sentences:
            self.count("claims/candidates", len(sentences))

    async def process_item(self, item: PageItem) -> PageItem:
        if "revisit_of" in item:
            return item  # kept by the analyse stage
        return await self.with_database(self._store, item)

    def _store(self, item: PageItem) -> PageItem:
        duplicate = item.get("duplicate")
        record = article_record(
            topic=item["topic"], source=item["source"], url=item["url"],
            canonical=item["canonical_url"], analysis=item["analysis"], duplicate=duplicate,
            fetched_at=item.get("fetched_at"), listed_title=item.get("listed_title"),
            listed_published=item.get("listed_published"))
        result = self.store.save(record)
        unstored_for(self.crawler).forget(_page_urls(item) | {item["canonical_url"]})
        if result.created:
            self.count("stored/new")
            if duplicate:
                self.count("stored/duplicates")
            self._count_candidates(record.candidates, duplicate)
        else:
            self.count("stored/existing")
        item["article_id"] = result.id
        # Keep the in-memory item small: the text lives in the database now.
        item.pop("analysis", None)
        return item
