"""Review actions over the database, shared by ``claimwatch review`` and the review page.

Every function takes an open :class:`~sqlalchemy.orm.Session` and commits nothing
itself: callers wrap a call in ``with sessions.begin() as session:``.
:func:`promote_candidate` also appends to the topic's claims table (the file is the
source of truth); it writes the file last, so an error leaves both unchanged.

Errors a user can cause (unknown id, bad status, duplicate claim id) raise
:class:`ReviewError` with a one-line message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from config.loader import ConfigError, append_claim
from config.models import Claim, Topic
from storage.models import (
    Article,
    ArticleClaim,
    ClaimCandidate,
    ClaimCoverageRow,
    ClaimOutletRow,
    CrawlRun,
    KnownClaim,
)
from storage.repository import recount_claim

logger = logging.getLogger(__name__)

ARTICLE_STATUSES = ("open", "reviewed", "dismissed")
MATCH_DECISIONS = {"confirm": "confirmed", "reject": "rejected", "reopen": "open"}
CANDIDATE_DECISIONS = {"reject": "rejected", "reopen": "open"}
CLAIM_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,199}$")
MAX_NOTE = 4000

__all__ = [
    "ARTICLE_STATUSES",
    "ClaimCoverage",
    "ReviewError",
    "claim_coverage",
    "decide_candidate",
    "mark_article",
    "promote_candidate",
    "recent_runs",
    "review_match",
]


class ReviewError(ValueError):
    """A review action that cannot be done as asked; the message says why."""


def _article(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise ReviewError(f"no article with id {article_id}")
    return article


def mark_article(
    session: Session,
    article_id: int,
    status: str,
    note: str | None = None,
    *,
    with_copies: bool = False,
) -> Article:
    """Set an article's review status (``open``, ``reviewed`` or ``dismissed``).

    ``note`` replaces the stored note when given (an empty string clears it);
    ``None`` keeps it. ``with_copies`` gives the same status to every stored copy
    of the article (the articles whose original it is).
    """
    if status not in ARTICLE_STATUSES:
        raise ReviewError(
            f"unknown review status {status!r}: use one of {', '.join(ARTICLE_STATUSES)}"
        )
    article = _article(session, article_id)
    article.review_status = status
    if note is not None:
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise ReviewError(f"the note is {len(note)} characters long; the limit is {MAX_NOTE}")
        article.review_note = note or None
    if with_copies:
        for copy in session.scalars(select(Article).where(Article.duplicate_of_id == article_id)):
            copy.review_status = status
    logger.info("article %s marked %s", article_id, status)
    return article


def review_match(session: Session, article_id: int, claim_id: str, decision: str) -> ArticleClaim:
    """Confirm, reject (or reopen) the match of one article to one known claim.

    A rejected match leaves the digest (and no longer counts as a conflict).
    """
    if decision not in MATCH_DECISIONS:
        raise ReviewError(
            f"unknown decision {decision!r}: use one of {', '.join(MATCH_DECISIONS)}"
        )
    _article(session, article_id)
    match = session.scalar(
        select(ArticleClaim).where(
            ArticleClaim.article_id == article_id, ArticleClaim.claim_id == claim_id
        )
    )
    if match is None:
        raise ReviewError(f"article {article_id} has no match to claim {claim_id!r}")
    before, match.review = match.review, MATCH_DECISIONS[decision]
    if (before == "rejected") != (match.review == "rejected"):
        session.flush()
        recount_claim(session, match.article.topic, claim_id)
    logger.info("match of article %s to claim %s: %s", article_id, claim_id, match.review)
    return match


def decide_candidate(session: Session, candidate_id: int, decision: str) -> ClaimCandidate:
    """Reject (or reopen) a new-claim candidate sentence without promoting it."""
    if decision not in CANDIDATE_DECISIONS:
        raise ReviewError(
            f"unknown decision {decision!r}: use one of {', '.join(CANDIDATE_DECISIONS)}"
        )
    candidate = session.get(ClaimCandidate, candidate_id)
    if candidate is None:
        raise ReviewError(f"no claim candidate with id {candidate_id}")
    if candidate.status == "promoted":
        raise ReviewError(
            f"candidate {candidate_id} was already promoted to claim "
            f"{candidate.promoted_claim_id!r}"
        )
    candidate.status = CANDIDATE_DECISIONS[decision]
    return candidate


def _first_reported(article: Article) -> str | None:
    when = article.published or article.fetched_at
    return when.date().isoformat() if when else None


def promote_candidate(
    session: Session,
    candidate_id: int,
    new_id: str,
    topic: Topic,
    *,
    text: str | None = None,
) -> Claim:
    """Make a candidate sentence a known claim of ``topic``.

    The claim (``text`` or the sentence itself, sourced to the article's URL and dated
    by it) is appended to the topic's claims table, a ``claims`` row is added so the
    page and the digest know it before the next crawl, and the candidate, with every
    open candidate of the topic that has the same sentence (wire copies), is marked
    promoted. Call it inside a transaction and commit after it returns: the file is
    written last, so on any error the file is unchanged and rolling back leaves the
    database unchanged too.
    """
    new_id = new_id.strip()
    if not CLAIM_ID.match(new_id):
        raise ReviewError(
            f"claim id {new_id!r} is not valid: use lower-case letters, digits, '-', '_' "
            "or '.', starting with a letter or digit (e.g. tns-staff-20-of-1500)"
        )
    if topic.claims_path is None:
        raise ReviewError(
            f"topic {topic.name!r} ({topic.path}) has no claims table: add `claims: claims.csv` "
            "to the topic file"
        )
    candidate = session.get(ClaimCandidate, candidate_id)
    if candidate is None:
        raise ReviewError(f"no claim candidate with id {candidate_id}")
    article = candidate.article
    if article.topic != topic.name:
        raise ReviewError(
            f"candidate {candidate_id} belongs to topic {article.topic!r}, "
            f"not {topic.name!r} ({topic.path})"
        )
    if candidate.status == "promoted":
        raise ReviewError(
            f"candidate {candidate_id} was already promoted to claim "
            f"{candidate.promoted_claim_id!r}"
        )
    if session.scalar(
        select(KnownClaim.id).where(KnownClaim.topic == topic.name, KnownClaim.claim_id == new_id)
    ):
        raise ReviewError(f"topic {topic.name!r} already has a claim {new_id!r}")
    claim_text = " ".join((text if text and text.strip() else candidate.sentence).split())
    claim = Claim(id=new_id, text=claim_text, source=article.url,
                  first_reported=_first_reported(article))
    same = session.scalars(
        select(ClaimCandidate)
        .join(Article, Article.id == ClaimCandidate.article_id)
        .where(
            Article.topic == topic.name,
            ClaimCandidate.sentence == candidate.sentence,
            ClaimCandidate.status == "open",
        )
    ).all()
    for row in {candidate, *same}:
        row.status = "promoted"
        row.promoted_claim_id = new_id
    session.add(KnownClaim(topic=topic.name, claim_id=new_id, text=claim.text,
                           source=claim.source, first_reported=claim.first_reported, aliases=[]))
    session.flush()  # database errors surface here, before the file is touched
    try:
        append_claim(topic.claims_path, claim)
    except ConfigError as exc:
        raise ReviewError(str(exc)) from exc
    logger.info("candidate %s promoted to claim %s in %s", candidate_id, new_id,
                topic.claims_path)
    return claim


@dataclass(frozen=True)
class ClaimCoverage:
    topic: str
    claim_id: str
    text: str | None  # None: matched in stored articles but no longer in the claims table
    articles: int
    outlets: int
    conflicts: int
    first_seen: datetime | None
    last_seen: datetime | None
    # outlets whose sentence repeats the claim / disputes it (the match's stance)
    repeating_outlets: int = 0
    disputing_outlets: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "claim_id": self.claim_id,
            "text": self.text,
            "articles": self.articles,
            "outlets": self.outlets,
            "conflicts": self.conflicts,
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "repeating_outlets": self.repeating_outlets,
            "disputing_outlets": self.disputing_outlets,
        }


def claim_coverage(session: Session, topic: str | None = None, *, after: int | None = None,
                   limit: int | None = None) -> list[ClaimCoverage]:
    """Per known claim: articles and outlets repeating it (rejected matches left out),
    conflicting articles, and when it was first and last seen (publication date, else
    fetch date). Claims nobody repeated yet are listed with zero counts; claims matched
    but no longer in the claims table come last.

    Read from the coverage counters every write keeps (``claim_coverage``,
    ``claim_outlets``: one row per claim and outlet), not by aggregating the topic's
    matches, so it costs the same at any number of stored articles. ``limit`` known
    claims after the one whose row id is ``after`` (a page, in table order; the claims
    no longer in the table come with the last page).
    """
    claims_query = select(KnownClaim).order_by(KnownClaim.id)
    if topic:
        claims_query = claims_query.where(KnownClaim.topic == topic)
    if after is not None:
        claims_query = claims_query.where(KnownClaim.id > after)
    if limit is not None:
        claims_query = claims_query.limit(limit + 1)
    claims = list(session.scalars(claims_query))
    last_page = limit is None or len(claims) <= limit
    claims = claims[:limit] if limit is not None else claims
    coverage_query = select(ClaimCoverageRow).where(ClaimCoverageRow.articles > 0)
    outlet_query = (
        select(ClaimOutletRow.topic, ClaimOutletRow.claim_id, func.count(),
               func.sum(case((ClaimOutletRow.articles > ClaimOutletRow.disputes, 1), else_=0)),
               func.sum(case((ClaimOutletRow.disputes > 0, 1), else_=0)))
        .where(ClaimOutletRow.articles > 0)
        .group_by(ClaimOutletRow.topic, ClaimOutletRow.claim_id)
    )
    if topic:
        coverage_query = coverage_query.where(ClaimCoverageRow.topic == topic)
        outlet_query = outlet_query.where(ClaimOutletRow.topic == topic)
    if not last_page:  # only this page's claims
        ids = {c.claim_id for c in claims}
        coverage_query = coverage_query.where(ClaimCoverageRow.claim_id.in_(ids))
        outlet_query = outlet_query.where(ClaimOutletRow.claim_id.in_(ids))
    outlets = {(t, c): (n, repeating, disputing)
               for t, c, n, repeating, disputing in session.execute(outlet_query)}
    counts = {}
    for r in session.scalars(coverage_query):
        n, repeating, disputing = outlets.get((r.topic, r.claim_id), (0, 0, 0))
        counts[(r.topic, r.claim_id)] = (r.articles, n, r.conflicts, r.first_seen, r.last_seen,
                                         repeating, disputing)
    rows: list[ClaimCoverage] = []
    for claim in sorted(claims, key=lambda c: (c.topic, c.id)):
        row = counts.pop((claim.topic, claim.claim_id), None)
        rows.append(_coverage(claim.topic, claim.claim_id, claim.text, row))
    if last_page:
        known_query = select(KnownClaim.topic, KnownClaim.claim_id)
        if topic:
            known_query = known_query.where(KnownClaim.topic == topic)
        known = {(t, c) for t, c in session.execute(known_query)}
        for (claim_topic, claim_id), row in sorted(counts.items()):
            if (claim_topic, claim_id) not in known:
                rows.append(_coverage(claim_topic, claim_id, None, row))
    return rows


def _coverage(topic: str, claim_id: str, text: str | None, row: Any) -> ClaimCoverage:
    if row is None:
        return ClaimCoverage(topic, claim_id, text, 0, 0, 0, None, None)
    return ClaimCoverage(topic, claim_id, text, int(row[0]), int(row[1]), int(row[2] or 0),
                         row[3], row[4], int(row[5] or 0), int(row[6] or 0))


def recent_runs(session: Session, topic: str | None = None, limit: int = 20) -> list[CrawlRun]:
    """The latest crawl runs, newest first."""
    query = select(CrawlRun).order_by(CrawlRun.started.desc(), CrawlRun.id.desc()).limit(limit)
    if topic:
        query = query.where(CrawlRun.topic == topic)
    return list(session.scalars(query))
