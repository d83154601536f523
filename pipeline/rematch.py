"""Re-analysis: stored articles matched again against the topic's current claims and query.

The claims table grows (a promoted candidate, an edited claims file) and the
topic query gets fixed, but an article is analysed once, when it is crawled.
:func:`rematch_topic` runs the analysis chain (pipeline/analysis.py, from the
topic filter on, over the stored text) again:

- over every stored article of the topic not yet matched against the current
  claims table (``articles.claims_version``), or all of them with ``every``;
  each article's new matches replace its old ones in one transaction
  (storage/rematch.py: a review decision stays with its match while the same
  claim still matches);
- over the off-topic pages kept with their text: a page the query matches now
  is stored as an article (the crawl's dedup and store, pipeline/persist.py).

The chain runs in worker processes (:class:`pipeline.workers.ReanalysisPool`),
a batch of articles per task; the database work stays in this process, one
transaction per article, so a run killed half way leaves every article either
re-matched or as it was, and the next run picks up the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from config.models import Topic
from pipeline.analysis import Analysis, StoredJob
from pipeline.persist import article_record, candidate_records, find_original, match_records
from pipeline.workers import AnalysisConfig, ReanalysisPool, topic_config
from storage.rematch import (
    StoredArticle,
    apply_rematch,
    articles_behind,
    forget_off_topic,
    off_topic_batch,
    recount_topic,
)
from storage.repository import Store

logger = logging.getLogger(__name__)

BATCH = 400  # articles read from the database at once
CHUNK = 25  # articles per worker task


@dataclass
class RematchSummary:
    """What a re-analysis changed (``claimwatch rematch`` prints it)."""

    topic: str
    claims_version: str
    articles_checked: int = 0  # stored articles analysed again
    articles_rematched: int = 0  # of them, whose matches or candidates changed
    matches_added: int = 0
    matches_removed: int = 0
    matches_kept: int = 0
    reviews_kept: int = 0  # review decisions kept with their match
    reviews_dropped: int = 0  # decisions on matches that no longer hold
    off_topic_checked: int = 0
    off_topic_returned: int = 0  # off-topic pages the query matches now: stored as articles
    no_longer_on_topic: int = 0  # stored articles the query no longer matches (kept)
    claims_recounted: int = 0
    cpu_seconds: float = 0.0  # analysis CPU time (in the workers)
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The summary as the CLI prints it."""
        return [
            f"topic {self.topic} (claims table {self.claims_version})",
            f"articles re-matched: {self.articles_rematched} changed of "
            f"{self.articles_checked} checked",
            f"matches: {self.matches_added} added, {self.matches_removed} removed, "
            f"{self.matches_kept} kept",
            f"reviews kept: {self.reviews_kept}"
            + (f" ({self.reviews_dropped} dropped with matches that no longer hold)"
               if self.reviews_dropped else ""),
            f"off-topic pages: {self.off_topic_returned} back on topic of "
            f"{self.off_topic_checked} checked"
            + (f"; {self.no_longer_on_topic} stored article(s) no longer match the query "
               "(kept)" if self.no_longer_on_topic else ""),
        ]


def stored_job(article: StoredArticle, *, check_topic: bool) -> StoredJob:
    return StoredJob(key=article.id, url=article.url, text=article.text, title=article.title,
                     published=article.published, language=article.language,
                     outlet=article.outlet, author=article.author,
                     declared_canonical=article.declared_canonical, check_topic=check_topic)


def _analysed(pool: ReanalysisPool, batches: Iterator[list[StoredArticle]], check_topic: bool
              ) -> Iterator[tuple[StoredArticle, Analysis]]:
    """(article, analysis) in order; the next batch is in the workers while this one is
    stored, so the workers do not wait for the database."""
    pending: list[tuple[list[StoredArticle], list[Future[list[Analysis]]]]] = []

    def submit(batch: list[StoredArticle]) -> None:
        chunks = [batch[i:i + CHUNK] for i in range(0, len(batch), CHUNK)]
        pending.append((batch, [pool.submit([stored_job(a, check_topic=check_topic)
                                             for a in chunk]) for chunk in chunks]))

    for batch in batches:
        submit(batch)
        if len(pending) > 1:
            yield from _collect(*pending.pop(0))
    while pending:
        yield from _collect(*pending.pop(0))


def _collect(batch: list[StoredArticle], futures: list[Future[list[Analysis]]]
             ) -> Iterator[tuple[StoredArticle, Analysis]]:
    results = [analysis for future in futures for analysis in future.result()]
    yield from zip(batch, results, strict=True)


def _paged(read: Callable[[int], list[StoredArticle]]) -> Iterator[list[StoredArticle]]:
    after = 0
    while True:
        batch = read(after)
        if not batch:
            return
        yield batch
        after = batch[-1].id


SMALL = 50  # articles and off-topic pages below which re-analysis runs in this process


def _little_to_do(store: Store, topic: str, version: str, since: datetime | None,
                  every: bool) -> bool:
    with store.sessions() as session:
        behind = articles_behind(session, topic, version, since=since, after=0, limit=SMALL,
                                 every=every)
        pages = off_topic_batch(session, topic, since=since, after=0, limit=SMALL)
    return len(behind) + len(pages) < SMALL


def rematch_topic(topic: Topic, store: Store, *, since: datetime | None = None,
                  every: bool = False, workers: int | None = None,
                  config: AnalysisConfig | None = None) -> RematchSummary:
    """Re-match the topic's stored articles and off-topic pages; see the module docstring."""
    config = config or topic_config(topic)
    started = time.monotonic()
    summary = RematchSummary(topic=topic.name, claims_version=config.claims_version)
    store.sync_claims(topic.name, topic.claims)
    touched: set[str] = set()
    if workers is None and _little_to_do(store, topic.name, summary.claims_version, since,
                                         every):
        workers = 0  # a promotion's few articles: no worker start-up (~1-2 s each)
    with ReanalysisPool(config, workers) as pool:
        def behind(after: int) -> list[StoredArticle]:
            with store.sessions() as session:
                return articles_behind(session, topic.name, summary.claims_version,
                                       since=since, after=after, limit=BATCH, every=every)

        for article, analysis in _analysed(pool, _paged(behind), check_topic=False):
            _rematch_one(store, article, analysis, summary, touched)

        def off_topic(after: int) -> list[StoredArticle]:
            with store.sessions() as session:
                return off_topic_batch(session, topic.name, since=since, after=after,
                                       limit=BATCH)

        for page, analysis in _analysed(pool, _paged(off_topic), check_topic=True):
            summary.off_topic_checked += 1
            summary.cpu_seconds += analysis.cpu_seconds
            if analysis.on_topic:
                _bring_back(store, topic.name, page, analysis, summary, touched)
    with store.sessions.begin() as session:
        summary.claims_recounted = recount_topic(session, topic.name, touched)
    summary.wall_seconds = time.monotonic() - started
    logger.info("rematch of %s: %s", topic.name, "; ".join(summary.lines()[1:]))
    return summary


def _rematch_one(store: Store, article: StoredArticle, analysis: Analysis,
                 summary: RematchSummary, touched: set[str]) -> None:
    """One article's new findings, in one transaction."""
    summary.articles_checked += 1
    summary.cpu_seconds += analysis.cpu_seconds
    summary.no_longer_on_topic += not analysis.on_topic
    with store.sessions.begin() as session:
        change = apply_rematch(session, article.id, match_records(analysis),
                               candidate_records(analysis), analysis.claims_version)
    summary.articles_rematched += change.changed
    summary.matches_added += len(change.added)
    summary.matches_removed += len(change.removed)
    summary.matches_kept += len(change.kept)
    summary.reviews_kept += change.reviews_kept
    summary.reviews_dropped += change.reviews_dropped
    touched.update(change.touched)


def _bring_back(store: Store, topic: str, page: StoredArticle, analysis: Analysis,
                summary: RematchSummary, touched: set[str]) -> None:
    """An off-topic page the query matches now: stored as the crawl would store it."""
    from pipeline.extract import Extracted

    extracted = Extracted(url=page.url, title=page.title, author=page.author,
                          published=page.published, outlet=page.outlet,
                          language=page.language, text=page.text, description=None,
                          declared_canonical=page.declared_canonical)
    analysis = replace(analysis, extracted=extracted)
    duplicate = find_original(store, topic, page.url, extracted, analysis)
    record = article_record(topic=topic, source=page.source, url=page.url,
                            canonical=page.canonical_url, analysis=analysis,
                            duplicate=duplicate, fetched_at=page.fetched_at)
    store.save(record)  # an upsert: a run killed after it stores nothing twice
    with store.sessions.begin() as session:
        forget_off_topic(session, topic, page)
    summary.off_topic_returned += 1
    summary.matches_added += len(analysis.matches)
    touched.update(m.claim_id for m in analysis.matches)
    logger.info("%s is on topic now: stored", page.url)
