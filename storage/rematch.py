"""Storing a re-analysis: one article's new matches and candidates, in one transaction.

Re-analysis (pipeline/rematch.py) runs the analysis chain again over stored
articles when the claims table or the topic query changed. What it found for an
article replaces what was stored, here, in one transaction per article: a run
killed half way (kill -9) leaves every article either re-matched or as it was.
A review decision stays with its match while the same claim still matches the
article (the sentence and score are updated); a match that no longer holds is
removed with its decision. Candidates the reviewer decided on (promoted,
rejected) stay; open ones are replaced by the new ones.

The per-claim coverage counters are recounted once per run
(:func:`recount_topic`), not per article: a recount reads a claim's matches, and
per article that would grow with the store. A run that was killed leaves them to
the next run, which recounts them whatever it re-matched.

Off-topic pages (``off_topic_pages``) keep their text so that a corrected query
can bring them back: :func:`keep_off_topic` stores one, :func:`off_topic_batch`
pages through them, :func:`forget_off_topic` removes one once it is stored as an
article.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from storage.models import (
    Article,
    ArticleClaim,
    ClaimCandidate,
    ClaimCoverageRow,
    KnownClaim,
    OffTopicPage,
    SkippedUrl,
    utcnow,
)
from storage.repository import CandidateRecord, MatchRecord, insert_ignore, recount_claim

# What of a match the re-analysis may change; its id, article and review stay.
_MATCH_FIELDS = ("sentence", "sentence_index", "score", "tier", "conflict", "claim_numbers",
                 "article_numbers", "stance")


@dataclass
class ArticleRematch:
    """What re-matching one article changed."""

    added: list[str]  # claim ids matched now and not before
    removed: list[str]  # claim ids matched before and not now
    kept: list[str]  # claim ids matched before and now
    reviews_kept: int  # of the kept matches, those with a review decision (kept with them)
    reviews_dropped: int  # of the removed matches, those that had a review decision
    changed: bool  # anything at all (a score, a stance, a candidate) differs

    @property
    def touched(self) -> set[str]:
        return {*self.added, *self.removed, *self.kept}


@dataclass(frozen=True)
class StoredArticle:
    """What re-analysis reads of a stored article (or of an off-topic page)."""

    id: int
    source: str
    url: str
    canonical_url: str
    text: str
    title: str | None
    published: datetime | None
    language: str | None
    outlet: str | None
    author: str | None
    declared_canonical: str | None
    fetched_at: datetime | None
    requested_url: str | None = None


def articles_behind(session: Session, topic: str, version: str, *, since: datetime | None,
                    after: int, limit: int, every: bool = False) -> list[StoredArticle]:
    """The next ``limit`` articles of ``topic`` (id > ``after``) not matched against
    ``version`` (all of them with ``every``), fetched since ``since``; by id."""
    query = select(Article).where(Article.topic == topic, Article.id > after)
    if not every:
        query = query.where(or_(Article.claims_version.is_(None),
                                Article.claims_version != version))
    if since is not None:
        query = query.where(Article.fetched_at >= since)
    rows = session.scalars(query.order_by(Article.id).limit(limit)).all()
    return [StoredArticle(a.id, a.source, a.url, a.canonical_url, a.text, a.title, a.published,
                          a.language, a.outlet, a.author, a.declared_canonical, a.fetched_at)
            for a in rows]


def apply_rematch(session: Session, article_id: int, matches: Sequence[MatchRecord],
                  candidates: Sequence[CandidateRecord], version: str) -> ArticleRematch:
    """Replace one article's matches and open candidates with a re-analysis's.

    Call it inside a transaction (one per article); nothing is committed here.
    """
    article = session.get(Article, article_id)
    if article is None:  # deleted meanwhile: nothing to re-match
        return ArticleRematch([], [], [], 0, 0, False)
    old = {row.claim_id: row for row in article.claims}
    new = {m.claim_id: m for m in matches}
    changed = False
    result = ArticleRematch(added=sorted(new.keys() - old.keys()),
                            removed=sorted(old.keys() - new.keys()),
                            kept=sorted(old.keys() & new.keys()), reviews_kept=0,
                            reviews_dropped=0, changed=False)
    for claim_id in result.removed:
        row = old[claim_id]
        result.reviews_dropped += row.review != "open"
        session.delete(row)
    for claim_id in result.kept:
        row, match = old[claim_id], new[claim_id]
        result.reviews_kept += row.review != "open"
        for name in _MATCH_FIELDS:
            value = getattr(match, name)
            value = list(value) if name.endswith("_numbers") else value
            if getattr(row, name) != value:
                setattr(row, name, value)
                changed = True
        row.claims_version = version
    for claim_id in result.added:
        m = new[claim_id]
        session.add(ArticleClaim(
            article_id=article_id, claim_id=m.claim_id, sentence=m.sentence,
            sentence_index=m.sentence_index, score=m.score, tier=m.tier, conflict=m.conflict,
            claim_numbers=list(m.claim_numbers), article_numbers=list(m.article_numbers),
            stance=m.stance, review="open", claims_version=version))
    changed = _replace_open_candidates(session, article, candidates) or changed
    article.claims_version = version
    result.changed = changed or bool(result.added or result.removed)
    return result


def _replace_open_candidates(session: Session, article: Article,
                             candidates: Sequence[CandidateRecord]) -> bool:
    """Open candidates become the new ones; decided ones (promoted, rejected) stay."""
    decided = {c.sentence for c in article.candidates if c.status != "open"}
    wanted = {c.sentence: c for c in candidates if c.sentence not in decided}
    changed = False
    for row in list(article.candidates):
        if row.status == "open" and row.sentence not in wanted:
            session.delete(row)
            changed = True
        elif row.status == "open":
            wanted.pop(row.sentence)
    for c in wanted.values():
        session.add(ClaimCandidate(article_id=article.id, sentence=c.sentence,
                                   sentence_index=c.sentence_index, score=c.score))
        changed = True
    return changed


def recount_topic(session: Session, topic: str, claim_ids: Iterable[str] = ()) -> int:
    """Recount the coverage counters of every claim of ``topic`` (the table's, the
    counters', and ``claim_ids``); returns how many claims were recounted."""
    claims = set(claim_ids)
    claims.update(session.scalars(select(KnownClaim.claim_id).where(KnownClaim.topic == topic)))
    claims.update(session.scalars(
        select(ClaimCoverageRow.claim_id).where(ClaimCoverageRow.topic == topic)))
    for claim_id in sorted(claims):
        recount_claim(session, topic, claim_id)
    return len(claims)


# -- off-topic pages ----------------------------------------------------------------------------


def keep_off_topic(session: Session, page: dict[str, Any]) -> None:
    """Keep a page the query rejected, with its text (a page kept already stays as it is)."""
    insert_ignore(session, OffTopicPage.__table__, {"fetched_at": utcnow(), **page})


def off_topic_batch(session: Session, topic: str, *, since: datetime | None, after: int,
                    limit: int) -> list[StoredArticle]:
    query = select(OffTopicPage).where(OffTopicPage.topic == topic, OffTopicPage.id > after)
    if since is not None:
        query = query.where(OffTopicPage.fetched_at >= since)
    rows = session.scalars(query.order_by(OffTopicPage.id).limit(limit)).all()
    return [StoredArticle(p.id, p.source, p.url, p.canonical_url, p.text, p.title, p.published,
                          p.language, p.outlet, p.author, p.declared_canonical, p.fetched_at,
                          p.requested_url)
            for p in rows]


def forget_off_topic(session: Session, topic: str, page: StoredArticle) -> None:
    """The page is on topic now (and stored as an article): it is no longer skipped."""
    session.execute(delete(OffTopicPage).where(OffTopicPage.id == page.id))
    urls = {page.url, page.canonical_url, page.requested_url or page.url}
    session.execute(delete(SkippedUrl).where(SkippedUrl.topic == topic,
                                             SkippedUrl.url.in_(urls)))
