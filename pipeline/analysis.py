"""The analysis of one article as one visible chain of named steps.

    extract -> topic filter -> sentences -> claims -> candidates -> dedup keys

Each step is a method of :class:`AnalysisChain` that does one job and can be
called on its own (``claimwatch explain`` does, step by step). The chain is pure
and free of Scrapy and of the database, and it is the only place the analysis
happens: the crawl's analyse stage (pipeline/pipelines.py) calls it through the
worker pool (pipeline/workers.py), and re-analysis of stored articles
(:meth:`AnalysisChain.reanalyse`, used by pipeline/rematch.py) enters it after
the extract step with the stored text, so a crawl and a re-match can never
disagree about what an article says.

What the chain needs from the database (which stored article is the original of
a copy) is not here: the dedup stage looks the dedup keys up.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime

from config.models import Claim, Query
from pipeline.claims import (
    DEFAULT_CANDIDATE_MIN,
    DEFAULT_LINKED_MIN,
    DEFAULT_SUGGESTED_MIN,
    ArticleContext,
    Candidate,
    ClaimIndex,
    ClaimMatch,
    find_candidates,
    match_claims,
    rerank,
)
from pipeline.dedup import hash_and_band_keys
from pipeline.extract import MIN_TEXT_CHARS, Extracted, ExtractionError, extract_article
from pipeline.query import compile_query
from pipeline.text import split_sentences


def claims_version(claims: tuple[Claim, ...] | list[Claim]) -> str:
    """A short fingerprint of a claims table (ids, texts, aliases; order ignored) and of
    the matcher that scores against it (the re-ranker's model file).

    Every stored match records the version it was made against, so a re-match
    knows which articles are behind the table or the matcher and the page can say so.
    """
    digest = hashlib.sha256(f"matcher {rerank.model_version()}\n".encode())
    for claim in sorted(claims, key=lambda c: c.id):
        digest.update("\x1f".join([claim.id, claim.text, *claim.aliases]).encode("utf-8"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything an :class:`AnalysisChain` is built from (picklable, hashable)."""

    claims: tuple[Claim, ...] = ()
    query: Query = field(default_factory=Query)
    favor_precision: bool = True
    min_chars: int = MIN_TEXT_CHARS
    linked_min: float | None = None
    suggested_min: float | None = None
    candidate_min: float | None = None

    @property
    def claims_version(self) -> str:
        return claims_version(self.claims)


@dataclass(frozen=True)
class ArticleJob:
    """One fetched page to analyse."""

    url: str
    body: bytes | str
    encoding: str | None = None
    listed_title: str | None = None  # the feed's or sitemap's title, when the page has none


@dataclass(frozen=True)
class StoredJob:
    """One stored article (or off-topic page) to analyse again from its extracted text."""

    key: int  # the article's (or off-topic page's) id
    url: str
    text: str
    title: str | None = None
    published: datetime | None = None
    language: str | None = None
    outlet: str | None = None
    author: str | None = None
    declared_canonical: str | None = None
    # False for a stored article: its claims are matched whatever the query says now
    # (``on_topic`` still reports it); True for an off-topic page, matched only on topic.
    check_topic: bool = True


@dataclass(frozen=True)
class Analysis:
    """What the chain found in one page.

    ``error`` is an :class:`~pipeline.extract.ExtractionError` reason (``empty``,
    ``too_short``...) when no article was extracted; ``on_topic`` is False when
    the topic query rejects it (then no claims, hash or band keys are computed).
    ``claims_version`` is the claims table the matches were made against.
    """

    extracted: Extracted | None = None
    error: str | None = None
    error_detail: str = ""
    on_topic: bool = False
    matches: tuple[ClaimMatch, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    content_hash: str | None = None
    band_keys: tuple[int, ...] = ()
    claims_version: str = ""
    # (logger name, level, message) of what a worker process logged for this page
    logs: tuple[tuple[str, int, str], ...] = ()
    cpu_seconds: float = 0.0

    def replay_logs(self) -> None:
        """Log, in this process, what the worker logged while analysing the page."""
        import logging

        for name, level, message in self.logs:
            target = logging.getLogger(name)
            if target.isEnabledFor(level):
                target.log(level, "%s", message)


@dataclass(frozen=True)
class Findings:
    """The steps after the topic filter, for one on-topic text."""

    matches: tuple[ClaimMatch, ...]
    candidates: tuple[Candidate, ...]
    content_hash: str
    band_keys: tuple[int, ...]


class AnalysisChain:
    """The analysis for one topic; its claims index and query are built once per process."""

    def __init__(self, config: AnalysisConfig) -> None:
        self.config = config
        self.index = ClaimIndex.cached(config.claims)
        self.query = compile_query(config.query)
        self.claims_version = config.claims_version
        self.linked_min = DEFAULT_LINKED_MIN if config.linked_min is None else config.linked_min
        self.suggested_min = (DEFAULT_SUGGESTED_MIN if config.suggested_min is None
                              else config.suggested_min)
        self.candidate_min = (DEFAULT_CANDIDATE_MIN if config.candidate_min is None
                              else config.candidate_min)

    # -- the steps, in order ------------------------------------------------------------------

    def extract(self, job: ArticleJob) -> Extracted:
        """HTML -> text and metadata (raises :class:`ExtractionError` with its reason)."""
        return extract_article(job.body, job.url, encoding=job.encoding,
                               favor_precision=self.config.favor_precision,
                               min_chars=self.config.min_chars)

    def topic_filter(self, title: str | None, text: str) -> bool:
        """Does the topic query match the title and text?"""
        return self.query.matches(title, text)

    def sentences(self, text: str) -> list[str]:
        return split_sentences(text)

    def claims(self, sentences: list[str], context: ArticleContext) -> list[ClaimMatch]:
        """Known claims the sentences repeat (linked/suggested, stance, conflicts)."""
        if not len(self.index):
            return []
        return match_claims(sentences, self.index, linked_min=self.linked_min,
                            suggested_min=self.suggested_min, context=context)

    def candidates(self, sentences: list[str], matches: list[ClaimMatch]) -> list[Candidate]:
        """Claim-like sentences that match no known claim."""
        return find_candidates(sentences, matches, index=self.index,
                               min_score=self.candidate_min)

    @staticmethod
    def dedup_keys(text: str) -> tuple[str, tuple[int, ...]]:
        """The exact-text hash and the near-duplicate band keys the dedup stage looks up."""
        digest, keys = hash_and_band_keys(text)
        return digest, tuple(keys)

    # -- the chain ----------------------------------------------------------------------------

    def findings(self, text: str, context: ArticleContext) -> Findings:
        """sentences -> claims -> candidates -> dedup keys, for an on-topic text."""
        sentences = self.sentences(text)
        matches = self.claims(sentences, context)
        candidates = self.candidates(sentences, matches)
        digest, keys = self.dedup_keys(text)
        return Findings(tuple(matches), tuple(candidates), digest, keys)

    def analyse(self, job: ArticleJob) -> Analysis:
        """The whole chain on a fetched page."""
        started = time.process_time()
        try:
            extracted = self.extract(job)
        except ExtractionError as exc:
            return Analysis(error=exc.reason, error_detail=str(exc),
                            cpu_seconds=time.process_time() - started)
        title = extracted.title or job.listed_title
        return self._from_text(extracted, title, extracted.text, started, check_topic=True)

    def reanalyse(self, job: StoredJob) -> Analysis:
        """The chain from the topic filter on, over a stored article's extracted text."""
        started = time.process_time()
        extracted = Extracted(url=job.url, title=job.title, author=job.author,
                              published=job.published, outlet=job.outlet,
                              language=job.language, text=job.text, description=None,
                              declared_canonical=job.declared_canonical)
        return self._from_text(extracted, job.title, job.text, started,
                               check_topic=job.check_topic)

    def _from_text(self, extracted: Extracted, title: str | None, text: str,
                   started: float, *, check_topic: bool) -> Analysis:
        on_topic = self.topic_filter(title, text)
        if check_topic and not on_topic:
            return Analysis(extracted=extracted, on_topic=False,
                            claims_version=self.claims_version,
                            cpu_seconds=time.process_time() - started)
        context = ArticleContext(title=title, published=extracted.published,
                                 lang=extracted.language)
        found = self.findings(text, context)
        return Analysis(extracted=extracted, on_topic=on_topic, matches=found.matches,
                        candidates=found.candidates, content_hash=found.content_hash,
                        band_keys=found.band_keys, claims_version=self.claims_version,
                        cpu_seconds=time.process_time() - started)
