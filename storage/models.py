"""SQLAlchemy 2 models. One schema for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class PageColumns:
    """The columns of an extracted page, one definition for the two tables that keep
    one: ``articles`` and ``off_topic_pages`` (a page the topic query rejected, which
    ``claimwatch rematch`` may store as an article). ``sort_order=-1`` puts them first,
    where the tables have always had them."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-1)
    topic: Mapped[str] = mapped_column(String(200), sort_order=-1)
    source: Mapped[str] = mapped_column(String(200), sort_order=-1)
    url: Mapped[str] = mapped_column(Text, sort_order=-1)
    canonical_url: Mapped[str] = mapped_column(String(2000), sort_order=-1)
    declared_canonical: Mapped[str | None] = mapped_column(Text, sort_order=-1)
    title: Mapped[str | None] = mapped_column(Text, sort_order=-1)
    author: Mapped[str | None] = mapped_column(Text, sort_order=-1)
    outlet: Mapped[str | None] = mapped_column(String(300), sort_order=-1)
    language: Mapped[str | None] = mapped_column(String(20), sort_order=-1)
    published: Mapped[datetime | None] = mapped_column(UTCDateTime(), sort_order=-1)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, sort_order=-1)
    text: Mapped[str] = mapped_column(Text, sort_order=-1)


class Article(PageColumns, Base):
    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("topic", "canonical_url", name="uq_articles_topic_canonical_url"),
        Index("ix_articles_topic_hash", "topic", "content_hash"),
        Index("ix_articles_topic_fetched", "topic", "fetched_at"),
        # The review list and the digest, newest first, paged by (fetched_at, id):
        # per topic and status, and across topics.
        Index("ix_articles_topic_status_fetched", "topic", "review_status", "fetched_at", "id"),
        Index("ix_articles_status_fetched", "review_status", "fetched_at", "id"),
        Index("ix_articles_fetched", "fetched_at", "id"),
        # The crawl asks whether a listed URL is stored (Store.known_among): URLs have no
        # length limit, so PostgreSQL indexes their hash (a B-tree entry must fit a third
        # of a page); SQLite's B-tree takes any length.
        Index("ix_articles_url", "url", postgresql_using="hash"),
    )

    # the columns of an extracted page: PageColumns
    content_hash: Mapped[str] = mapped_column(String(64))
    # Dedup: the original of this article's story family (null for an original).
    duplicate_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    duplicate_kind: Mapped[str | None] = mapped_column(String(20))  # exact|copy|rewrite|declared
    duplicate_similarity: Mapped[float | None] = mapped_column(Float)
    # open | reviewed | dismissed
    review_status: Mapped[str] = mapped_column(String(20), default="open")
    review_note: Mapped[str | None] = mapped_column(Text)
    # The claims table (pipeline.analysis.claims_version) the article was last matched
    # against: `claimwatch rematch` re-matches the articles behind the current table.
    claims_version: Mapped[str | None] = mapped_column(String(16))
    # A revisit found a new revision of it (storage/revisions.py keeps every one).
    revised: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")

    claims: Mapped[list[ArticleClaim]] = relationship(
        back_populates="article", cascade="all, delete-orphan", order_by="ArticleClaim.id"
    )
    candidates: Mapped[list[ClaimCandidate]] = relationship(
        back_populates="article", cascade="all, delete-orphan", order_by="ClaimCandidate.id"
    )
    duplicate_of: Mapped[Article | None] = relationship(remote_side="Article.id")


class ArticleClaim(Base):
    """A known claim repeated (or contradicted) by one sentence of an article."""

    __tablename__ = "article_claims"
    __table_args__ = (
        UniqueConstraint("article_id", "claim_id", name="uq_article_claims_article_claim"),
        Index("ix_article_claims_claim", "claim_id"),
        # The list filtered by claim: the claim's articles without reading their rows.
        Index("ix_article_claims_claim_review", "claim_id", "review", "article_id"),
        Index("ix_article_claims_stance", "stance", "article_id"),  # the disputes filter
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    claim_id: Mapped[str] = mapped_column(String(200))
    sentence: Mapped[str] = mapped_column(Text)
    sentence_index: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    tier: Mapped[str] = mapped_column(String(20))  # linked|suggested
    conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    claim_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    article_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    review: Mapped[str] = mapped_column(String(20), default="open")  # open|confirmed|rejected
    # does the sentence repeat the claim, dispute it or discuss it (pipeline.claims.stance)
    stance: Mapped[str] = mapped_column(String(20), default="repeats", server_default="repeats")
    # the claims table (pipeline.analysis.claims_version) this match was made against
    claims_version: Mapped[str | None] = mapped_column(String(16))

    article: Mapped[Article] = relationship(back_populates="claims")


class ClaimCoverageRow(Base):
    """Per (topic, claim): its non-rejected matches, kept by every write that changes them.

    The claims page reads these (one row per claim) instead of aggregating every match
    of the topic. ``Store.save`` adds an article's matches; a review that rejects (or
    un-rejects) a match recounts that claim (``storage.repository.recount_claim``).
    """

    __tablename__ = "claim_coverage"
    __table_args__ = (
        UniqueConstraint("topic", "claim_id", name="uq_claim_coverage_topic_claim"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    claim_id: Mapped[str] = mapped_column(String(200))
    articles: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ClaimOutletRow(Base):
    """Per (topic, claim, outlet): non-rejected matches; the claim's outlets are its rows
    with ``articles > 0`` (outlet: the article's outlet, else its source); it repeats the
    claim where ``articles > disputes`` and disputes it where ``disputes > 0``."""

    __tablename__ = "claim_outlets"
    __table_args__ = (
        UniqueConstraint("topic", "claim_id", "outlet", name="uq_claim_outlets_topic_claim"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    claim_id: Mapped[str] = mapped_column(String(200))
    outlet: Mapped[str] = mapped_column(String(300))
    articles: Mapped[int] = mapped_column(Integer, default=0)
    disputes: Mapped[int] = mapped_column(Integer, default=0)  # of them, disputing the claim


class ClaimCandidate(Base):
    """A claim-like sentence that matches no known claim: maybe a new claim."""

    __tablename__ = "claim_candidates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    sentence: Mapped[str] = mapped_column(Text)
    sentence_index: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open|promoted|rejected
    promoted_claim_id: Mapped[str | None] = mapped_column(String(200))

    article: Mapped[Article] = relationship(back_populates="candidates")


class ArticleBand(Base):
    """Near-duplicate index: one row per LSH band key of an article's signatures.

    A lookup is one indexed query on ``band_key``, so its cost does not grow
    with the number of stored articles.
    """

    __tablename__ = "article_bands"
    # (band_key, article_id): a lookup reads the index alone, never the table.
    __table_args__ = (Index("ix_article_bands_key_article", "band_key", "article_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    band_key: Mapped[int] = mapped_column(BigInteger)


class SourceState(Base):
    """Per-source crawl state: conditional-GET validators and health."""

    __tablename__ = "source_states"
    __table_args__ = (UniqueConstraint("topic", "source", name="uq_source_states_topic_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_attempt: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_new_article: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    items_seen: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)


class CrawlRun(Base):
    """One crawl of one source: written when it starts and when it ends."""

    __tablename__ = "crawl_runs"
    __table_args__ = (
        Index("ix_crawl_runs_topic_source", "topic", "source", "started"),
        # recent runs, newest first: of every topic, of one topic
        Index("ix_crawl_runs_started", "started", "id"),
        Index("ix_crawl_runs_topic_started", "topic", "started", "id"),
        # /api/v1/runs?topic=: a topic's runs, newest id first, keyset-paged by id
        Index("ix_crawl_runs_topic_id", "topic", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(20), default="manual")  # schedule|manual|revisit
    started: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # running|ok|failed|timeout|interrupted (a run whose process died is "interrupted")
    status: Mapped[str] = mapped_column(String(20), default="running")
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer)  # the crawl's process
    exit_code: Mapped[int | None] = mapped_column(Integer)  # of a daemon's crawl subprocess
    # The lease holder (storage/leases.py) that ran it: a run still "running" whose
    # holder no longer holds the source's lease was interrupted.
    holder: Mapped[str | None] = mapped_column(String(200))


class CrawlLease(Base):
    """Who is crawling a source right now: one row per (topic, source), taken atomically.

    Shared by the daemon and ``claimwatch crawl`` so a source is never crawled twice at
    once. Renewed while the crawl runs; an expired lease, or one whose holder process
    is gone (same host), can be taken over. See ``storage/leases.py``.
    """

    __tablename__ = "crawl_leases"
    __table_args__ = (UniqueConstraint("topic", "source", name="uq_crawl_leases_topic_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    holder: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime())


class DaemonLock(Base):
    """The one daemon allowed per database (one APScheduler per job store), with heartbeat."""

    __tablename__ = "daemon_locks"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)  # "daemon"
    holder: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired: Mapped[datetime] = mapped_column(UTCDateTime())
    expires: Mapped[datetime] = mapped_column(UTCDateTime())  # heartbeat: renewed while alive
    listen: Mapped[str | None] = mapped_column(String(300))  # the API address, for messages


class KnownClaim(Base):
    """The topic's claims table as of its last crawl (the file stays the source of truth)."""

    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("topic", "claim_id", name="uq_claims_topic_claim"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    claim_id: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    first_reported: Mapped[str | None] = mapped_column(String(40))
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)


class SkippedUrl(Base):
    """A fetched page that was not stored (off topic): not fetched again by later crawls."""

    __tablename__ = "skipped_urls"
    __table_args__ = (UniqueConstraint("topic", "url", name="uq_skipped_urls_topic_url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    reason: Mapped[str] = mapped_column(String(40))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UnstoredPage(Base):
    """Why a page a crawl met was not stored (robots.txt, a refused address, a download
    error, too little text, a canonical URL already stored), for ``claimwatch explain``.

    One row per (topic, URL), overwritten by the latest crawl that met it and removed when
    the page is stored. Unlike :class:`SkippedUrl` it never stops a later crawl fetching
    the page again: it only says what happened last time.
    """

    __tablename__ = "unstored_pages"
    __table_args__ = (UniqueConstraint("topic", "url", name="uq_unstored_pages_topic_url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    reason: Mapped[str] = mapped_column(String(40))  # robots|refused|error|too_short|seen|...
    detail: Mapped[str | None] = mapped_column(String(500))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ArticleRevision(Base):
    """One revisit of a stored article: a new revision with its classified changes, the
    original text (kept when the first revision arrives), or an outcome that is not a
    revision (``failed``, ``redirected``, ``different``, ``removed``), recorded only."""

    __tablename__ = "article_revisions"
    __table_args__ = (Index("ix_article_revisions_article", "article_id", "fetched_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # original|revised|removed|failed|redirected|different
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)  # original and revised rows only
    changes: Mapped[list[str]] = mapped_column(JSON, default=list)
    removed: Mapped[list[str]] = mapped_column(JSON, default=list)  # sentences
    added: Mapped[list[str]] = mapped_column(JSON, default=list)
    claims: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)


class OffTopicPage(PageColumns, Base):
    """A page the topic query rejected, kept with its extracted text (marked off-topic,
    not forgotten): ``claimwatch rematch`` runs the query again, and a page it now
    matches is stored as an article (and this row removed)."""

    __tablename__ = "off_topic_pages"
    __table_args__ = (
        UniqueConstraint("topic", "canonical_url", name="uq_off_topic_pages_topic_canonical"),
        Index("ix_off_topic_pages_topic_fetched", "topic", "fetched_at", "id"),
    )

    # the columns of an extracted page: PageColumns
    requested_url: Mapped[str | None] = mapped_column(Text)


class DigestDelivery(Base):
    """One digest email of the daemon's ``--email-schedule``: its window and its fate.

    ``status``: ``sent``; ``queued`` (not sent, kept in the outbox: ``sent`` once a later
    run flushes it); ``failed`` (neither sent nor kept); ``gone`` (it left the outbox
    without the daemon sending it: ``claimwatch digest --email`` sent it, or someone
    removed it). The next ``since-last`` digest of a topic starts where its last digest
    that was not ``failed`` ended.
    """

    __tablename__ = "digest_deliveries"
    __table_args__ = (Index("ix_digest_deliveries_topic_until", "topic", "until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime] = mapped_column(UTCDateTime())  # the window it covers
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    article_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20))  # sent|queued|failed|gone
    message_id: Mapped[str | None] = mapped_column(String(300), index=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str | None] = mapped_column(Text)  # the last failure (kept once sent)
    error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())



class NotifyState(Base):
    """How far one notification channel of a topic has been told (claimwatch/digest/notify.py).

    ``channel`` is a hash of the channel's URL (which may hold a secret). Articles up
    to ``last_article_id`` have been notified; ``alarms`` maps each source to the alarm
    kind last announced, so an alarm is announced once, when it starts or changes.
    """

    __tablename__ = "notify_states"
    __table_args__ = (UniqueConstraint("topic", "channel", name="uq_notify_states_topic_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(64))
    last_article_id: Mapped[int] = mapped_column(Integer, default=0)
    alarms: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    last_sent: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class User(Base):
    """A named account of the review page (claimwatch/accounts.py): reviewer or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # reviewer|admin
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)


class ApiToken(Base):
    """A user's API token: only its SHA-256 is kept; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReviewEvent(Base):
    """Who did what to an article, and when: the review history on its page."""

    __tablename__ = "review_events"
    __table_args__ = (Index("ix_review_events_article", "article_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

# The full-text search index over articles is the database's own (storage/fts.py).
from storage.fts import attach as _attach_search_index  # noqa: E402

_attach_search_index(Article.__table__)
