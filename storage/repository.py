"""Reads and writes the pipeline needs, in one place, dialect-correct.

Every article is written in one transaction with its claim matches,
candidates and near-duplicate band keys, upserted on (topic, canonical URL):
a crawl run twice, or killed half way, never stores anything twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import String, case, delete, func, literal_column, select, union_all, update
from sqlalchemy.orm import Session, sessionmaker

from config.models import Claim
from storage.models import (
    Article,
    ArticleBand,
    ArticleClaim,
    ClaimCandidate,
    ClaimCoverageRow,
    ClaimOutletRow,
    KnownClaim,
    SkippedUrl,
    SourceState,
    UnstoredPage,
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
    claims_version: str | None = None  # the claims table the matches were made against


@dataclass(frozen=True)
class StoredText:
    id: int
    text: str
    published: datetime | None
    root_id: int  # the original of its family (itself for an original)
    url: str


@dataclass(frozen=True)
class UnstoredRecord:
    """Why one page was not stored (a row of ``unstored_pages``)."""

    url: str
    reason: str
    detail: str | None
    seen_at: datetime


MAX_UNSTORED_DETAIL = 500  # characters: the column's length


@dataclass(frozen=True)
class SaveResult:
    id: int
    created: bool


@lru_cache(maxsize=64)
def _insert_ignore_statement(dialect: str, table: Any) -> Any:
    """One INSERT ... ON CONFLICT DO NOTHING RETURNING <key> per table and dialect.

    The values go in as parameters, not ``.values(**values)``: a statement built anew
    per row is a new cache key for SQLAlchemy to generate and look up each time (the
    article insert cost more in the crawl's process than the SQL it runs).
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING, not rowcount: psycopg reports rowcount -1 for this statement.
    return insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)


def insert_ignore_keys(session: Session, table: Any, values: dict[str, Any]) -> list[Any]:
    """INSERT ... ON CONFLICT DO NOTHING; the primary key rows inserted (none: it existed)."""
    statement = _insert_ignore_statement(session.get_bind().dialect.name, table)
    return list(session.execute(statement, values).fetchall())


def insert_ignore(session: Session, table, values: dict) -> int:  # type: ignore[no-untyped-def]
    """INSERT ... ON CONFLICT DO NOTHING for SQLite and PostgreSQL; returns rows inserted."""
    return len(insert_ignore_keys(session, table, values))


def _upsert(session: Session, table: Any, values: dict[str, Any] | list[dict[str, Any]],
            keys: Sequence[str], set_: Any) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE for one row or many (one statement);
    ``set_`` is the update, or a function of the ``excluded`` row that gives it."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).values(values)
    session.execute(statement.on_conflict_do_update(
        index_elements=list(keys), set_=set_(statement.excluded) if callable(set_) else set_))


def forget_unstored(session: Session, topic: str, urls: Iterable[str]) -> None:
    """A page now stored: its record of why it was not stored is out of date.

    A Core DELETE on the table, not the ORM's (which would look for loaded rows to
    synchronise and costs twice the CPU; the crawl runs it for every stored article)."""
    table = UnstoredPage.__table__
    session.execute(delete(table).where(table.c.topic == topic, table.c.url.in_(set(urls))))


def count_matches(session: Session, topic: str, seen: datetime, outlet: str,
                  matches: Iterable[Any]) -> None:
    """Add the (new, so not rejected) ``matches`` of one article, published or fetched at
    ``seen`` by ``outlet``, to the coverage counters of their claims."""
    coverage = ClaimCoverageRow.__table__
    outlets = ClaimOutletRow.__table__
    for m in matches:
        conflict = 1 if m.conflict else 0
        _upsert(session, coverage,
                {"topic": topic, "claim_id": m.claim_id, "articles": 1, "conflicts": conflict,
                 "first_seen": seen, "last_seen": seen},
                ("topic", "claim_id"),
                lambda new: {
                    "articles": coverage.c.articles + 1,
                    "conflicts": coverage.c.conflicts + new.conflicts,
                    "first_seen": case((coverage.c.first_seen.is_(None), new.first_seen),
                                       (new.first_seen < coverage.c.first_seen, new.first_seen),
                                       else_=coverage.c.first_seen),
                    "last_seen": case((coverage.c.last_seen.is_(None), new.last_seen),
                                      (new.last_seen > coverage.c.last_seen, new.last_seen),
                                      else_=coverage.c.last_seen),
                })
        disputes = 1 if getattr(m, "stance", "repeats") == "disputes" else 0
        _upsert(session, outlets,
                {"topic": topic, "claim_id": m.claim_id, "outlet": outlet, "articles": 1,
                 "disputes": disputes},
                ("topic", "claim_id", "outlet"),
                lambda new: {"articles": outlets.c.articles + 1,
                             "disputes": outlets.c.disputes + new.disputes})


def recount_claim(session: Session, topic: str, claim_id: str) -> None:
    """Recount one claim's coverage from its matches (after a review rejected one, or
    took a rejection back): reads the claim's matches only."""
    seen = func.coalesce(Article.published, Article.fetched_at)
    live = (
        select(Article.id, Article.outlet, Article.source, seen.label("seen"),
               ArticleClaim.conflict, ArticleClaim.stance)
        .join(Article, Article.id == ArticleClaim.article_id)
        .where(ArticleClaim.claim_id == claim_id, ArticleClaim.review != "rejected",
               Article.topic == topic)
    ).subquery()
    row = session.execute(select(
        func.count(), func.sum(case((live.c.conflict, 1), else_=0)),
        func.min(live.c.seen), func.max(live.c.seen))).one()
    by_outlet = session.execute(
        select(func.coalesce(live.c.outlet, live.c.source), func.count(),
               func.sum(case((live.c.stance == "disputes", 1), else_=0)))
        .group_by(func.coalesce(live.c.outlet, live.c.source))).all()
    session.execute(ClaimCoverageRow.__table__.delete().where(
        ClaimCoverageRow.topic == topic, ClaimCoverageRow.claim_id == claim_id))
    session.execute(ClaimOutletRow.__table__.delete().where(
        ClaimOutletRow.topic == topic, ClaimOutletRow.claim_id == claim_id))
    if row[0]:
        session.execute(ClaimCoverageRow.__table__.insert().values(
            topic=topic, claim_id=claim_id, articles=row[0], conflicts=int(row[1] or 0),
            first_seen=_as_utc(row[2]), last_seen=_as_utc(row[3])))
        session.execute(ClaimOutletRow.__table__.insert(), [
            {"topic": topic, "claim_id": claim_id, "outlet": outlet, "articles": n,
             "disputes": int(disputes or 0)}
            for outlet, n, disputes in by_outlet])


def _as_utc(value: Any) -> datetime | None:
    """A min()/max() of a date column: a string on SQLite, a datetime on PostgreSQL."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _insert_many(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` into ``model``'s table in one executemany (column defaults applied)."""
    if rows:
        session.execute(model.__table__.insert(), rows)


def _topic_checked_last(session: Session) -> Any:
    """``articles.topic`` as a term no plan starts from: on SQLite "+topic" keeps the
    planner (without statistics) from walking the topic's articles through an index on
    the topic instead of the few rows another index finds."""
    if session.get_bind().dialect.name == "sqlite":
        return literal_column("+articles.topic", String)
    return Article.topic


class _OneSession:
    """A session factory that hands out one open session for every read
    (``with sessions() as session``) and is closed by its owner (:meth:`Store.lookups`)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def __call__(self) -> nullcontext[Session]:
        return nullcontext(self.session)

    def begin(self) -> Any:
        raise TypeError("Store.lookups() is for reads; write through the Store itself")


class Store:
    """The pipeline's view of the database. Sessions come from an injected factory."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @contextmanager
    def lookups(self) -> Iterator[Store]:
        """This store with every read of the block in one session (one connection).

        The dedup stage asks up to five questions per page (URL, hash, referenced URLs,
        band candidates, texts); each in a session of its own checked a connection out
        of the pool and back (a ping on PostgreSQL, a rollback on return). The reads
        see what they saw before: nothing is written between them, and no transaction
        is held open past the block.
        """
        with self.sessions() as session:
            yield Store(_OneSession(session))  # type: ignore[arg-type]

    # -- lookups -------------------------------------------------------------------------------

    def known_among(self, topic: str, urls: Iterable[str]) -> set[str]:
        """Those of ``urls`` already stored (as an article's URL or canonical URL) or
        skipped for ``topic``: incremental crawls do not fetch them again.

        One query per 500 URLs, three indexed lookups (``ix_articles_url``, the (topic,
        canonical URL) and (topic, URL) unique indexes): the cost follows the URLs a feed
        or page lists, not the articles stored.
        """
        wanted = list(dict.fromkeys(urls))
        known: set[str] = set()
        with self.sessions() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                known.update(session.scalars(union_all(
                    select(Article.url).where(
                        Article.url.in_(chunk), _topic_checked_last(session) == topic),
                    select(Article.canonical_url).where(
                        Article.topic == topic, Article.canonical_url.in_(chunk)),
                    select(SkippedUrl.url).where(
                        SkippedUrl.topic == topic, SkippedUrl.url.in_(chunk)))))
        return known

    def mark_skipped(self, topic: str, urls: Iterable[str], reason: str) -> None:
        """Remember pages fetched but not stored (e.g. off topic) so they are not fetched again."""
        with self.sessions.begin() as session:
            for url in dict.fromkeys(urls):
                insert_ignore(session, SkippedUrl.__table__,
                              {"topic": topic, "url": url, "reason": reason, "seen_at": utcnow()})

    def record_unstored(self, topic: str, records: Iterable[UnstoredRecord]) -> int:
        """Upsert why each page was not stored: one statement for the whole batch, one row
        per (topic, URL) kept (the latest). Returns the rows written."""
        latest = {r.url[:2000]: r for r in records}
        if not latest:
            return 0
        rows = [{"topic": topic, "url": url, "reason": r.reason[:40],
                 "detail": (r.detail or "")[:MAX_UNSTORED_DETAIL] or None,
                 "seen_at": r.seen_at} for url, r in latest.items()]
        with self.sessions.begin() as session:
            _upsert(session, UnstoredPage.__table__, rows, ["topic", "url"],
                    lambda new: {"reason": new.reason, "detail": new.detail,
                                 "seen_at": new.seen_at})
        return len(rows)

    def find_by_url(self, topic: str, canonical_url: str) -> int | None:
        with self.sessions() as session:
            return session.scalar(
                select(Article.id).where(
                    Article.topic == topic, Article.canonical_url == canonical_url
                )
            )

    def find_by_urls(self, topic: str, canonical_urls: Iterable[str]) -> dict[str, int]:
        """``{canonical URL: article id}`` of those of ``canonical_urls`` stored in ``topic``.

        One query per 500 URLs (the (topic, canonical URL) index), not one per URL: a page
        that says where it was first published has its in-body links looked up.
        """
        urls = list(dict.fromkeys(canonical_urls))
        found: dict[str, int] = {}
        with self.sessions() as session:
            for start in range(0, len(urls), 500):
                rows = session.execute(
                    select(Article.canonical_url, Article.id).where(
                        Article.topic == topic,
                        Article.canonical_url.in_(urls[start:start + 500]),
                    )
                )
                found.update({url: article_id for url, article_id in rows})
        return found

    def find_root_by_hash(self, topic: str, content_hash: str) -> int | None:
        """The original of the family of the earliest stored article with this exact
        normalised text (the root :meth:`texts` would give it, in one query that reads
        no text: an exact copy needs only that)."""
        with self.sessions() as session:
            return session.scalar(
                select(func.coalesce(Article.duplicate_of_id, Article.id))
                .where(Article.topic == topic, Article.content_hash == content_hash)
                .order_by(Article.id)
                .limit(1)
            )

    def band_candidates(self, topic: str, keys: Iterable[int], limit: int = 20) -> list[int]:
        """Stored articles sharing LSH band keys, most shared first (one indexed query).

        The join order does not depend on planner statistics: the band rows of ``keys``
        are grouped first (a derived table read from ``ix_article_bands_key_article``),
        then each article found is checked for ``topic`` by its primary key. A plan that
        starts from the topic's articles walks all of them (tests/test_query_plans.py).
        """
        keys = list(dict.fromkeys(int(k) for k in keys))
        if not keys:
            return []
        shared = func.count().label("shared")
        found = (
            select(ArticleBand.article_id.label("article_id"), shared)
            .where(ArticleBand.band_key.in_(keys))
            .group_by(ArticleBand.article_id)
            .subquery("found")
        )
        with self.sessions() as session:
            rows = session.execute(
                select(found.c.article_id, found.c.shared)
                .select_from(found)
                .join(Article, Article.id == found.c.article_id)
                .where(_topic_checked_last(session) == topic)
                .order_by(found.c.shared.desc(), found.c.article_id)
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
            "claims_version": record.claims_version,
        }
        with self.sessions.begin() as session:
            inserted = insert_ignore_keys(session, Article.__table__, values)
            if not inserted:
                existing = session.scalar(
                    select(Article.id).where(Article.topic == record.topic,
                                             Article.canonical_url == record.canonical_url)
                )
                assert existing is not None
                return SaveResult(existing, created=False)
            article_id = inserted[0][0]
            forget_unstored(session, record.topic, {record.url, record.canonical_url})
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
                    "claims_version": record.claims_version,
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
            count_matches(session, record.topic, values["published"] or values["fetched_at"],
                          values["outlet"] or values["source"], record.matches)
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
