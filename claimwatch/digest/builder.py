"""Build the digest (the JSON contract of DESIGN.md) from the database."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from pipeline.family import new_to_family
from storage.models import (
    Article,
    ArticleClaim,
    ClaimCandidate,
    KnownClaim,
    SourceState,
    utcnow,
)

FLAGS = ("new_report", "duplicate", "conflict", "new_claim_candidate", "disputes")
_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class DigestError(ValueError):
    pass


def parse_since(value: str | None, now: datetime | None = None) -> datetime:
    """``24h``, ``7d``, ``30m``, ``2w`` or an ISO-8601 date/time (UTC if no zone)."""
    now = now or utcnow()
    if value is None or not value.strip():
        return now - timedelta(hours=24)
    match = _RELATIVE.match(value)
    if match:
        try:
            return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        except (OverflowError, ValueError):  # 99999999999d: before year 1
            raise DigestError(f"--since {value!r} is too far back") from None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise DigestError(
            f"--since {value!r} is neither a duration like 24h/7d nor an ISO date"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _open_candidates(candidates: Sequence[Any], original_text: str | None) -> list[Any]:
    """Open candidates, by pipeline.family.new_to_family's rule (the crawl counts so too)."""
    open_ = [c for c in candidates if c.status == "open"]
    kept = set(new_to_family((c.sentence for c in open_), original_text))
    return [c for c in open_ if c.sentence in kept]


def open_candidates(article: Article) -> list[ClaimCandidate]:
    """Open candidates, less those a copy shares with its original (offered there already)."""
    original = article.duplicate_of
    return _open_candidates(article.candidates, original.text if original is not None else None)


def article_flags(article: Article) -> list[str]:
    return _flags(article, article.claims, open_candidates(article))


def _flags(article: Any, claims: Sequence[Any], candidates: Sequence[Any]) -> list[str]:
    flags = ["duplicate" if article.duplicate_of_id else "new_report"]
    if any(c.conflict and c.review != "rejected" for c in claims):
        flags.append("conflict")
    if candidates:
        flags.append("new_claim_candidate")
    if any(c.stance == "disputes" and c.review != "rejected" for c in claims):
        flags.append("disputes")
    if getattr(article, "revised", False):  # a revisit found a new revision (or it is gone)
        flags.append("revised")
    return flags


def article_entry(article: Article) -> dict[str, Any]:
    original = article.duplicate_of
    return _entry(article, article.claims, open_candidates(article),
                  (original.id, original.url) if original is not None else None)


def _entry(article: Any, all_claims: Sequence[Any], candidates: Sequence[Any],
           original: tuple[int, str] | None) -> dict[str, Any]:
    """One article of the JSON contract, from an ORM article or a list row (columns only)."""
    claims = [c for c in all_claims if c.review != "rejected"]
    return {
        "id": article.id,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "title": article.title,
        "outlet": article.outlet,
        "published": _iso(article.published),
        "fetched_at": _iso(article.fetched_at),
        "source": article.source,
        "flags": _flags(article, all_claims, candidates),
        "duplicate_of": (
            {"id": original[0], "url": original[1],
             "similarity": round(article.duplicate_similarity or 0.0, 3),
             "kind": article.duplicate_kind}
            if original is not None else None
        ),
        "claims": [
            {"claim_id": c.claim_id, "score": round(c.score, 1), "sentence": c.sentence,
             "tier": c.tier, "review": c.review, "stance": c.stance or "repeats"}
            for c in sorted(claims, key=lambda c: -c.score)
        ],
        "conflicts": [
            {"claim_id": c.claim_id, "sentence": c.sentence,
             "claim_numbers": list(c.claim_numbers), "article_numbers": list(c.article_numbers)}
            for c in claims if c.conflict
        ],
        "candidates": [
            {"id": c.id, "sentence": c.sentence, "score": round(c.score, 3)}
            for c in candidates
        ],
        "review": {"status": article.review_status, "note": article.review_note},
    }


# -- lists: columns only, paged by keyset ------------------------------------------------------

#: What a list row needs of an article: never its text.
LIST_COLUMNS = (
    Article.id, Article.url, Article.canonical_url, Article.title, Article.outlet,
    Article.published, Article.fetched_at, Article.source, Article.duplicate_of_id,
    Article.duplicate_kind, Article.duplicate_similarity, Article.review_status,
    Article.review_note, Article.revised,
)
BATCH = 500


def list_query(
    *,
    topic: str | None = None,
    since: datetime | None = None,
    status: str | None = "open",
    flag: str | None = None,
    claim: str | None = None,
) -> Select[Any]:
    """The articles of a list (columns only), unordered: every filter is in SQL.

    ``status`` None means any status. The ``new_claim_candidate`` flag selects articles
    with an open candidate; :func:`entries` drops the copies whose only candidates are
    their original's.
    """
    query = select(*LIST_COLUMNS)
    if topic:
        query = query.where(Article.topic == topic)
    if status:
        query = query.where(Article.review_status == status)
    if since is not None:
        query = query.where(Article.fetched_at >= since)
    if flag == "duplicate":
        query = query.where(Article.duplicate_of_id.is_not(None))
    elif flag == "new_report":
        query = query.where(Article.duplicate_of_id.is_(None))
    elif flag == "conflict":
        query = query.where(exists().where(
            ArticleClaim.article_id == Article.id, ArticleClaim.conflict.is_(True),
            ArticleClaim.review != "rejected"))
    elif flag == "new_claim_candidate":
        query = query.where(exists().where(
            ClaimCandidate.article_id == Article.id, ClaimCandidate.status == "open"))
    elif flag == "disputes":
        query = query.where(exists().where(
            ArticleClaim.article_id == Article.id, ArticleClaim.stance == "disputes",
            ArticleClaim.review != "rejected"))
    if claim:
        query = query.where(exists().where(
            ArticleClaim.article_id == Article.id, ArticleClaim.claim_id == claim,
            ArticleClaim.review != "rejected"))
    return query


def entries(session: Session, rows: Sequence[Any], flag: str | None = None) -> list[dict]:
    """Digest entries of list rows: their matches, candidates and original, three queries
    for the whole batch (an original's text only for a copy with open candidates)."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    claims: dict[int, list[Any]] = {i: [] for i in ids}
    for c in session.execute(
        select(ArticleClaim.article_id, ArticleClaim.claim_id, ArticleClaim.score,
               ArticleClaim.sentence, ArticleClaim.tier, ArticleClaim.review,
               ArticleClaim.conflict, ArticleClaim.claim_numbers, ArticleClaim.article_numbers,
               ArticleClaim.stance)
        .where(ArticleClaim.article_id.in_(ids)).order_by(ArticleClaim.id)
    ):
        claims[c.article_id].append(c)
    candidates: dict[int, list[Any]] = {i: [] for i in ids}
    for c in session.execute(
        select(ClaimCandidate.article_id, ClaimCandidate.id, ClaimCandidate.sentence,
               ClaimCandidate.score, ClaimCandidate.status)
        .where(ClaimCandidate.article_id.in_(ids), ClaimCandidate.status == "open")
        .order_by(ClaimCandidate.id)
    ):
        candidates[c.article_id].append(c)
    original_ids = {r.duplicate_of_id for r in rows if r.duplicate_of_id is not None}
    originals: dict[int, tuple[int, str]] = {}
    texts: dict[int, str] = {}
    if original_ids:
        originals = {
            o.id: (o.id, o.url)
            for o in session.execute(select(Article.id, Article.url)
                                     .where(Article.id.in_(original_ids)))
        }
        need_text = {r.duplicate_of_id for r in rows
                     if r.duplicate_of_id in originals and candidates[r.id]}
        if need_text:
            texts = dict(session.execute(select(Article.id, Article.text)
                                         .where(Article.id.in_(need_text))).all())
    out = []
    for r in rows:
        original = originals.get(r.duplicate_of_id) if r.duplicate_of_id is not None else None
        shown = _open_candidates(candidates[r.id], texts.get(r.duplicate_of_id)
                                 if original is not None else None)
        entry = _entry(r, claims[r.id], shown, original)
        if flag and flag not in entry["flags"]:
            continue
        out.append(entry)
    return out


def iter_entries(session: Session, query: Select[Any], flags: Sequence[str] | None = None,
                 batch: int = BATCH) -> Iterator[dict[str, Any]]:
    """Every article of ``query`` as a digest entry, oldest id first, ``batch`` rows at a
    time (keyset on id): memory is bounded by a batch, whatever the size of the store."""
    after = 0
    wanted = set(flags or ())
    while True:
        rows = session.execute(
            query.where(Article.id > after).order_by(Article.id).limit(batch)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        for entry in entries(session, rows):
            if not wanted or wanted & set(entry["flags"]):
                yield entry
        if len(rows) < batch:
            return


def _alarm(session: Session, state: SourceState, now: datetime) -> dict[str, Any] | None:
    """A gap alarm (claimwatch/health.py): failing, stalled or silent; None when healthy."""
    from claimwatch.health import alarm_for_state

    alarm = alarm_for_state(session, state, now=now)
    return alarm.as_dict() if alarm else None


def build_digest(
    session: Session,
    *,
    topic: str | None = None,
    since: datetime | None = None,
    include_reviewed: bool = False,
    flags: Sequence[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Articles fetched since ``since`` (default: the last 24 hours), newest story first."""
    now = now or utcnow()
    since = since or now - timedelta(hours=24)
    query = list_query(topic=topic, since=since,
                       status=None if include_reviewed else "open")
    articles = list(iter_entries(session, query, flags))
    articles.sort(key=lambda a: (a["published"] is None, a["published"] or "", a["id"]))
    from storage.revisions import revisions_of  # the contract's per-article revisions list

    revisions = revisions_of(session, [a["id"] for a in articles])
    for entry in articles:
        entry["revisions"] = revisions.get(entry["id"], [])

    claim_query = select(KnownClaim)
    if topic:
        claim_query = claim_query.where(KnownClaim.topic == topic)
    claims = {c.claim_id: c.text for c in session.scalars(claim_query)}
    state_query = select(SourceState)
    if topic:
        state_query = state_query.where(SourceState.topic == topic)
    sources = [
        {"name": s.source, "topic": s.topic, "last_success": _iso(s.last_success),
         "last_error": s.last_error, "consecutive_failures": s.consecutive_failures,
         "alarm": _alarm(session, s, now)}
        for s in session.scalars(state_query.order_by(SourceState.source))
    ]
    return {
        "topic": topic or "all",
        "generated_at": _iso(now),
        "since": _iso(since),
        "articles": articles,
        "claims": claims,
        "sources": sources,
    }
