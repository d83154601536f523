"""Keeping an article's revisions: each revisit's outcome, in one transaction.

A new revision replaces the article's text (the original is kept as the first
``article_revisions`` row when the first revision arrives), its exact-text hash
and band keys, flags it ``revised``, and replaces its matches and candidates with
those of the new text (storage/rematch.py's :func:`apply_rematch`: a review
decision stays while its claim still matches; a conflict is re-evaluated on the
new figures). All of it, with the revision row, is one transaction. A revisit
that is not a revision (failed, redirected, a different article) is recorded
only; a removed page is recorded and flags the article.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from storage.models import Article, ArticleBand, ArticleRevision, utcnow
from storage.rematch import ArticleRematch, apply_rematch
from storage.repository import CandidateRecord, MatchRecord


def record_revisit(session: Session, article_id: int, outcome: str, detail: str,
                   fetched_at: datetime | None = None, changes: Sequence[str] = ()) -> None:
    """A revisit that stored no revision (``removed`` also flags the article revised)."""
    session.add(ArticleRevision(article_id=article_id, fetched_at=fetched_at or utcnow(),
                                outcome=outcome, detail=detail, changes=list(changes),
                                removed=[], added=[], claims=[]))
    if outcome == "removed":
        article = session.get(Article, article_id)
        if article is not None:
            article.revised = True


def store_revision(session: Session, article_id: int, *, title: str | None, text: str,
                   content_hash: str, band_keys: Sequence[int], diff: Any,
                   matches: Sequence[MatchRecord], candidates: Sequence[CandidateRecord],
                   claims_version: str, fetched_at: datetime | None = None,
                   detail: str = "") -> ArticleRematch | None:
    """Keep a new revision of the article and re-run its claims; None if it is gone."""
    article = session.get(Article, article_id)
    if article is None:
        return None
    has_original = session.scalar(select(exists().where(
        ArticleRevision.article_id == article_id, ArticleRevision.outcome == "original")))
    if not has_original:
        session.add(ArticleRevision(article_id=article_id, fetched_at=article.fetched_at,
                                    outcome="original", title=article.title, text=article.text,
                                    changes=[], removed=[], added=[], claims=[]))
    session.add(ArticleRevision(
        article_id=article_id, fetched_at=fetched_at or utcnow(), outcome="revised",
        detail=detail, title=title, text=text, changes=list(diff.changes),
        removed=list(diff.removed), added=list(diff.added), claims=list(diff.claims)))
    article.title = title or article.title
    article.text = text
    article.content_hash = content_hash
    article.revised = True
    session.execute(delete(ArticleBand).where(ArticleBand.article_id == article_id))
    session.add_all(ArticleBand(article_id=article_id, band_key=int(k))
                    for k in dict.fromkeys(band_keys))
    return apply_rematch(session, article_id, matches, candidates, claims_version)


def revisions_of(session: Session, article_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Per article, its revisits that found something, oldest first, as plain data
    (the digest JSON's ``revisions``: fetched_at, changes, removed and added sentences)."""
    ids = list(dict.fromkeys(article_ids))
    out: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return out
    rows = session.scalars(
        select(ArticleRevision)
        .where(ArticleRevision.article_id.in_(ids),
               ArticleRevision.outcome.in_(("revised", "removed")))
        .order_by(ArticleRevision.article_id, ArticleRevision.fetched_at, ArticleRevision.id))
    for row in rows:
        out.setdefault(row.article_id, []).append({
            "fetched_at": row.fetched_at.isoformat(), "changes": list(row.changes),
            "removed": list(row.removed), "added": list(row.added),
            "claims": list(row.claims), "outcome": row.outcome})
    return out


def revisit_log(session: Session, article_id: int, limit: int = 50) -> list[ArticleRevision]:
    """The article's revisits, newest first (the review page's history)."""
    return list(session.scalars(
        select(ArticleRevision).where(ArticleRevision.article_id == article_id)
        .order_by(ArticleRevision.fetched_at.desc(), ArticleRevision.id.desc()).limit(limit)))


def due_for_revisit(session: Session, topic: str, source: str, first_seen_after: datetime,
                    limit: int = 500) -> list[tuple[int, str, datetime]]:
    """(article id, URL, when it was last fetched) of the source's articles first fetched
    after ``first_seen_after``, least recently fetched first: what a revisit fetches."""
    last_revisit = func.max(ArticleRevision.fetched_at)
    rows = session.execute(
        select(Article.id, Article.url, Article.fetched_at, last_revisit)
        .outerjoin(ArticleRevision, ArticleRevision.article_id == Article.id)
        .where(Article.topic == topic, Article.source == source,
               Article.fetched_at >= first_seen_after)
        .group_by(Article.id, Article.url, Article.fetched_at)
        .order_by(func.coalesce(last_revisit, Article.fetched_at), Article.id)
        .limit(limit))
    out = []
    for article_id, url, fetched, revisited in rows:
        last = max(t for t in (fetched, _utc(revisited)) if t is not None)
        out.append((article_id, url, last))
    return out


def _utc(value: Any) -> datetime | None:
    """A max() of a date column: a string on SQLite, a datetime on PostgreSQL."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
