"""Scrapy item pipelines: thin adapters from items to the pure stages.

Order (crawler/settings.py ITEM_PIPELINES): extract -> topic filter -> claims
-> dedup -> store. Items are dicts; each stage adds its keys. Outcomes are
counted in ``crawler.stats`` under ``claimwatch/...``; the crawl summary reads
them.

The CPU-bound work of extract, topic filter and claims (and the content hash
and band keys of dedup) is one pure step, :class:`pipeline.workers.Analyser`,
that the extract stage runs in worker processes (``CLAIMWATCH_WORKERS``) and
awaits; the stages after it read its :class:`~pipeline.workers.Analysis`
(``item["analysis"]``) and do what needs the database on the reactor thread.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.exceptions import DropItem

from pipeline.context import store_for, topic_for
from pipeline.dedup import best_match, classify, find_original_reference
from pipeline.urls import canonical_url, cross_site_canonical
from pipeline.workers import Analysis, ArticleJob, analysis_for
from storage.repository import ArticleRecord, CandidateRecord, MatchRecord

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

    async def with_database(self, work: Any, item: dict[str, Any]) -> dict[str, Any]:
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


async def _sleep(seconds: float) -> None:
    from scrapy.utils.defer import maybe_deferred_to_future
    from twisted.internet import reactor
    from twisted.internet.task import deferLater

    await maybe_deferred_to_future(deferLater(reactor, seconds, lambda: None))


class ExtractPipeline(_Stage):
    """HTML -> text and metadata (trafilatura). Pages with no article are counted and dropped.

    Runs the whole pure analysis of the page (pipeline/workers.py), in a worker
    process when the pool is up, and awaits it: the reactor goes on fetching.
    """

    def open_spider(self) -> None:
        self.analysis = analysis_for(self.crawler)

    def close_spider(self) -> None:
        self.analysis.close()

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        job = ArticleJob(url=item["url"], body=item.pop("body", b""),  # not needed further
                         encoding=item.get("encoding"), listed_title=item.get("listed_title"))
        analysis: Analysis = await self.analysis.analyse(job)
        if analysis.error is not None:
            self.count(f"extract/{analysis.error}")
            logger.warning("%s: no article extracted from %s: %s", item["source"], item["url"],
                           analysis.error_detail)
            raise DropItem(f"{item['url']}: {analysis.error_detail}")
        self.count("extract/ok")
        item["extracted"] = analysis.extracted
        item["analysis"] = analysis
        return item


class TopicFilterPipeline(_Stage):
    """Drops articles the topic query does not match (counted as off_topic)."""

    def open_spider(self) -> None:
        self.topic = topic_for(self.crawler).name
        self.store = store_for(self.crawler)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        extracted = item["extracted"]
        if not item["analysis"].on_topic:  # the query, on the title and text
            self.count("filter/off_topic")
            urls = {item["url"], item.get("requested_url") or item["url"],
                    canonical_url(item["url"], declared=extracted.declared_canonical)}
            self.store.mark_skipped(self.topic, urls, "off_topic")
            raise DropItem(f"{item['url']}: off topic")
        self.count("filter/on_topic")
        return item


class ClaimsPipeline(_Stage):
    """Known-claim matches (linked/suggested, conflicts) and new-claim candidates."""

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        # matched with the claims index built once per worker (pipeline/workers.py)
        matches = list(item["analysis"].matches)
        candidates = list(item["analysis"].candidates)
        item["matches"] = matches
        item["candidates"] = candidates
        if matches:
            self.count("claims/articles_matched")
            self.count("claims/matches", len(matches))
        if any(m.conflict for m in matches):
            self.count("claims/conflicts")
        if candidates:
            self.count("claims/candidates", len(candidates))
        return item


class DedupPipeline(_DatabaseStage):
    """Finds the original of a copy or rewrite: flags it, never drops it.

    Evidence, in order: the same canonical URL (already stored: dropped as
    seen), the same normalised text, a rel=canonical or "originally published
    by" link to a stored article, then near-duplicate candidates from the LSH
    band index confirmed by :func:`pipeline.dedup.best_match`
    (exact > copy > rewrite, then similarity).
    """

    def open_spider(self) -> None:
        self.store = store_for(self.crawler)
        self.topic = topic_for(self.crawler).name
        self.max_candidates = self.settings.getint("CLAIMWATCH_DEDUP_MAX_CANDIDATES", 20)

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return await self.with_database(self._dedup, item)

    def _dedup(self, item: dict[str, Any]) -> dict[str, Any]:
        extracted = item["extracted"]
        canonical = canonical_url(item["url"], declared=extracted.declared_canonical)
        item["canonical_url"] = canonical
        if self.store.find_by_url(self.topic, canonical) is not None:
            self.count("dedup/seen")
            raise DropItem(f"{item['url']}: already stored as {canonical}")
        text = extracted.text
        item["content_hash"] = item["analysis"].content_hash
        item["band_keys"] = list(item["analysis"].band_keys)
        # A copy keeps its candidates: which article of a family is the original is
        # only known once the earliest one is stored, so the digest folds them.
        item["duplicate"] = self._find_original(item, canonical, text)
        if item["duplicate"] is not None:
            self.count(f"dedup/{item['duplicate'][1]}")
        return item

    def _find_original(
        self, item: dict[str, Any], canonical: str, text: str
    ) -> tuple[int, str, float] | None:
        """(root article id, kind, similarity) or None for an original."""
        exact = self.store.find_by_hash(self.topic, item["content_hash"])
        if exact is not None:
            [same] = self.store.texts([exact])
            return same.root_id, "exact", 1.0
        declared = cross_site_canonical(item["url"], item["extracted"].declared_canonical)
        referenced = [declared] if declared else []
        if find_original_reference(text):
            referenced += [href for href, _ in item["extracted"].links]
        for url in referenced:
            referenced_id = self.store.find_by_url(self.topic, canonical_url(url))
            if referenced_id is not None:
                [original] = self.store.texts([referenced_id])
                # The page names its original; the similarity says how much it kept.
                similarity = classify(original.text, text).similarity
                return original.root_id, "declared", float(similarity)
        candidates = self.store.band_candidates(
            self.topic, item["band_keys"], limit=self.max_candidates
        )
        oldest_first = sorted(self.store.texts(candidates), key=lambda s: s.id)
        found = best_match(text, [(s, s.text) for s in oldest_first])
        if found is None:
            return None
        original, verdict = found
        return original.root_id, str(verdict.kind), float(verdict.similarity)


class StorePipeline(_DatabaseStage):
    """Upserts the article and everything found about it, in one transaction."""

    def open_spider(self) -> None:
        self.store = store_for(self.crawler)

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return await self.with_database(self._store, item)

    def _store(self, item: dict[str, Any]) -> dict[str, Any]:
        extracted = item["extracted"]
        duplicate = item.get("duplicate")
        record = ArticleRecord(
            topic=item["topic"],
            source=item["source"],
            url=item["url"],
            canonical_url=item["canonical_url"],
            declared_canonical=extracted.declared_canonical,
            text=extracted.text,
            content_hash=item["content_hash"],
            title=extracted.title or item.get("listed_title"),
            author=extracted.author,
            outlet=extracted.outlet,
            language=extracted.language,
            published=extracted.published or item.get("listed_published"),
            fetched_at=item.get("fetched_at"),
            duplicate_of_id=duplicate[0] if duplicate else None,
            duplicate_kind=duplicate[1] if duplicate else None,
            duplicate_similarity=duplicate[2] if duplicate else None,
            matches=[
                MatchRecord(
                    claim_id=m.claim_id, sentence=m.sentence, sentence_index=m.sentence_index,
                    score=float(m.score), tier=m.tier, conflict=m.conflict,
                    claim_numbers=list(m.claim_numbers), article_numbers=list(m.article_numbers),
                    stance=m.stance,
                )
                for m in item.get("matches", [])
            ],
            candidates=[
                CandidateRecord(sentence=c.sentence, sentence_index=c.sentence_index,
                                score=float(c.score))
                for c in item.get("candidates", [])
            ],
            band_keys=item.get("band_keys", ()),
        )
        result = self.store.save(record)
        if result.created:
            self.count("stored/new")
            if duplicate:
                self.count("stored/duplicates")
        else:
            self.count("stored/existing")
        item["article_id"] = result.id
        # Keep the in-memory item small: the text lives in the database now.
        item.pop("extracted", None)
        item.pop("band_keys", None)
        item.pop("analysis", None)
        return item
