"""Reads and writes the pipeline needs, in one place, dialect-correct.

Every article is written in one transaction with its claim matches,
candidates and near-duplicate band keys, upserted on (topic, canonical URL):
a crawl run twice, or killed half way, never stores anything twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from config.models import Claim
from storage.models import (
    Article,
    ArticleBand,
    ArticleClaim,
    ClaimCandidate,
    KnownClaim,
    SkippedUrl,
    SourceState,
    utcnow,
)

logger = logging.getLogger(__name__)


@dataclass
class MatchRecord:
    claim_id: str
    sentence: str
    sentence_index: int
    score: float
    tier: str
    conflict: bool = False
    claim_numbers: Sequence[str] = ()
    article_numbers: Sequence[str] = ()
    stance: str = "repeats"


@dataclass
class CandidateRecord:
    sentence: str
    sentence_index: int
    score: float


@dataclass
class ArticleRecord:
    topic: str
    source: str
    url: str
    canonical_url: str
    text: str
    content_hash: str
    title: str | None = None
    author: str | None = None
    outlet: str | None = None
    language: str | None = None
    published: datetime | None = None
    declared_canonical: str | None = None
    fetched_at: datetime | None = None
    duplicate_of_id: int | None = None
    duplicate_kind: str | None = None
    duplicate_similarity: float | None = None
    matches: list[MatchRecord] = field(default_factory=list)
    candidates: list[CandidateRecord] = field(default_factory=list)
    band_keys: Sequence[int] = ()


@dataclass(frozen=True)
class StoredText:
    id: int
    text: str
    published: datetime | None
    root_id: int  # the original of its family (itself for an original)
    url: str


@dataclass(frozen=True)
class SaveResult:
    id: int
    created: bool


def insert_ignore(session: Session, table, values: dict) -> int:  # type: ignore[no-untyped-def]
    """INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL; returns rows inserted."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING, not rowcount: psycopg reports rowcount -1 for this statement.
    statement = insert(table).values(**values).on_conflict_do_nothing()
    result = session.execute(statement.returning(*table.primary_key.columns))
    return len(result.fetchall())


def _insert_many(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` into ``model``'s table in one executemany (column defaults applied)."""
    if rows:
        session.execute(model.__table__.insert(), rows)


class Store:
    """The pipeline's view of the database. Sessions come from an injected factory."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # -- lookups -------------------------------------------------------------------------------

    def known_urls(self, topic: str) -> set[str]:
        """URLs already stored or skipped for ``topic``: incremental crawls do not fetch them."""
        with self.sessions() as session:
            rows = session.execute(
                select(Article.url, Article.canonical_url).where(Article.topic == topic)
            )
            known: set[str] = set()
            for url, canonical in rows:
                known.add(url)
                known.add(canonical)
            known.update(
                session.scalars(select(SkippedUrl.url).where(SkippedUrl.topic == topic))
            )
            return known

    def mark_skipped(self, topic: str, urls: Iterable[str], reason: str) -> None:
        """Remember pages fetched but not stored (e.g. off topic) so they are not fetched again."""
        with self.sessions.begin() as session:
            for url in dict.fromkeys(urls):
                insert_ignore(session, SkippedUrl.__table__,
                              {"topic": topic, "url": url, "reason": reason, "seen_at": utcnow()})

    def find_by_url(self, topic: str, canonical_url: str) -> int | None:
        with self.sessions() as session:
            return session.scalar(
                select(Article.id).where(
                    Article.topic == topic, Article.canonical_url == canonical_url
                )
            )

    def find_by_hash(self, topic: str, content_hash: str) -> int | None:
        """The earliest stored article with this exact normalised text."""
        with self.sessions() as session:
            return session.scalar(
                select(Article.id)
                .where(Article.topic == topic, Article.content_hash == content_hash)
                .order_by(Article.id)
                .limit(1)
            )

    def band_candidates(self, topic: str, keys: Iterable[int], limit: int = 20) -> list[int]:
        """Stored articles sharing LSH band keys, most shared first (one indexed query)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        shared = func.count(ArticleBand.id).label("shared")
        with self.sessions() as session:
            rows = session.execute(
                select(ArticleBand.article_id, shared)
                .join(Article, Article.id == ArticleBand.article_id)
                .where(ArticleBand.band_key.in_(keys), Article.topic == topic)
                .group_by(ArticleBand.article_id)
                .order_by(shared.desc(), ArticleBand.article_id)
                .limit(limit)
            )
            return [article_id for article_id, _ in rows]

    def texts(self, ids: Iterable[int]) -> list[StoredText]:
        ids = list(ids)
        if not ids:
            return []
        with self.sessions() as session:
            rows = session.execute(
                select(
                    Article.id, Article.text, Article.published, Article.duplicate_of_id,
                    Article.url,
                ).where(Article.id.in_(ids))
            )
            by_id = {
                row.id: StoredText(row.id, row.text, row.published, row.duplicate_of_id or row.id,
                                   row.url)
                for row in rows
            }
        return [by_id[i] for i in ids if i in by_id]

    # -- writes --------------------------------------------------------------------------------

    def save(self, record: ArticleRecord) -> SaveResult:
        """Store one article with everything found about it, in one transaction.

        Keyed on (topic, canonical URL): storing the same article again changes
        nothing and returns ``created=False``. When the record is a duplicate
        published *before* the stored original of its family, it becomes the
        family's original and the family is re-pointed at it.
        """
        values = {
            "topic": record.topic,
            "source": record.source,
            "url": record.url,
            "canonical_url": record.canonical_url,
            "declared_canonical": record.declared_canonical,
            "title": record.title,
            "author": record.author,
            "outlet": record.outlet,
            "language": record.language,
            "published": record.published,
            "fetched_at": record.fetched_at or utcnow(),
            "text": record.text,
            "content_hash": record.content_hash,
            "duplicate_of_id": record.duplicate_of_id,
            "duplicate_kind": record.duplicate_kind,
            "duplicate_similarity": record.duplicate_similarity,
            "review_status": "open",
        }
        with self.sessions.begin() as session:
            inserted = insert_ignore(session, Article.__table__, values)
            article_id = session.scalar(
                select(Article.id).where(
                    Article.topic == record.topic, Article.canonical_url == record.canonical_url
                )
            )
            assert article_id is not None
            if not inserted:
                return SaveResult(article_id, created=False)
            # One executemany per table (not one INSERT per ORM object: an article has
            # ~50 band keys, and the store runs on the crawl's reactor thread).
            _insert_many(session, ArticleClaim, [
                {
                    "article_id": article_id,
                    "claim_id": m.claim_id,
                    "sentence": m.sentence,
                    "sentence_index": m.sentence_index,
                    "score": m.score,
                    "tier": m.tier,
                    "conflict": m.conflict,
                    "claim_numbers": list(m.claim_numbers),
                    "article_numbers": list(m.article_numbers),
                    "stance": m.stance,
                }
                for m in record.matches
            ])
            _insert_many(session, ClaimCandidate, [
                {
                    "article_id": article_id,
                    "sentence": c.sentence,
                    "sentence_index": c.sentence_index,
                    "score": c.score,
                }
                for c in record.candidates
            ])
            _insert_many(session, ArticleBand, [
                {"article_id": article_id, "band_key": int(k)}
                for k in dict.fromkeys(record.band_keys)
            ])
            if record.duplicate_of_id is not None:
                self._maybe_become_original(session, article_id, record)
        return SaveResult(article_id, created=True)

    @staticmethod
    def _maybe_become_original(session: Session, article_id: int, record: ArticleRecord) -> None:
        root = session.get(Article, record.duplicate_of_id)
        if root is None or record.published is None or root.published is None:
            return
        if record.published >= root.published:
            return
        logger.info(
            "article %s predates %s, the original of its family: it becomes the original",
            record.url, root.url,
        )
        # Copies of the old original now point at the new one (their similarity was
        # measured against the old original and is kept).
        session.execute(
            update(Article)
            .where(Article.duplicate_of_id == root.id)
            .values(duplicate_of_id=article_id)
        )
        root.duplicate_of_id = article_id
        root.duplicate_kind = record.duplicate_kind
        root.duplicate_similarity = record.duplicate_similarity
        session.execute(
            update(Article)
            .where(Article.id == article_id)
            .values(duplicate_of_id=None, duplicate_kind=None, duplicate_similarity=None)
        )

    # -- source state --------------------------------------------------------------------------

    def source_state(self, topic: str, source: str) -> SourceState | None:
        with self.sessions() as session:
            return session.scalar(
                select(SourceState).where(SourceState.topic == topic, SourceState.source == source)
            )

    def update_source_state(self, topic: str, source: str, **values: object) -> None:
        with self.sessions.begin() as session:
            insert_ignore(
                session, SourceState.__table__, {"topic": topic, "source": source, "items_seen": 0,
                                                 "consecutive_failures": 0}
            )
            session.execute(
                update(SourceState)
                .where(SourceState.topic == topic, SourceState.source == source)
                .values(**values)
            )

    # -- claims table --------------------------------------------------------------------------

    def sync_claims(self, topic: str, claims: Iterable[Claim]) -> None:
        """Mirror the topic's claims table (the file is the source of truth)."""
        claims = list(claims)
        with self.sessions.begin() as session:
            stored = {
                c.claim_id: c
                for c in session.scalars(select(KnownClaim).where(KnownClaim.topic == topic))
            }
            for claim in claims:
                row = stored.pop(claim.id, None)
                if row is None:
                    row = KnownClaim(topic=topic, claim_id=claim.id)
                    session.add(row)
                row.text = claim.text
                row.source = claim.source
                row.first_reported = claim.first_reported
                row.aliases = list(claim.aliases)
            for row in stored.values():
                session.delete(row)
