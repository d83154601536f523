"""Build the digest (the JSON contract of DESIGN.md) from the database."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from storage.models import Article, ClaimCandidate, KnownClaim, SourceState, utcnow

FLAGS = ("new_report", "duplicate", "conflict", "new_claim_candidate")
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
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
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


def _folded(text: str) -> str:
    return " ".join(text.split())


def open_candidates(article: Article) -> list[ClaimCandidate]:
    """Open candidates, less those a copy shares with its original (offered there already)."""
    candidates = [c for c in article.candidates if c.status == "open"]
    original = article.duplicate_of
    if original is None or not candidates:
        return candidates
    original_text = _folded(original.text)
    return [c for c in candidates if _folded(c.sentence) not in original_text]


def article_flags(article: Article) -> list[str]:
    flags = ["duplicate" if article.duplicate_of_id else "new_report"]
    if any(c.conflict and c.review != "rejected" for c in article.claims):
        flags.append("conflict")
    if open_candidates(article):
        flags.append("new_claim_candidate")
    if any(c.stance == "disputes" and c.review != "rejected" for c in article.claims):
        flags.append("disputes")
    return flags


def article_entry(article: Article) -> dict[str, Any]:
    claims = [c for c in article.claims if c.review != "rejected"]
    original = article.duplicate_of
    return {
        "id": article.id,
        "url": article.url,
        "canonical_url": article.canonical_url,
        "title": article.title,
        "outlet": article.outlet,
        "published": _iso(article.published),
        "fetched_at": _iso(article.fetched_at),
        "source": article.source,
        "flags": article_flags(article),
        "duplicate_of": (
            {"id": original.id, "url": original.url,
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
            for c in open_candidates(article)
        ],
        "review": {"status": article.review_status, "note": article.review_note},
    }


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
    query = (
        select(Article)
        .where(Article.fetched_at >= since)
        .options(
            selectinload(Article.claims),
            selectinload(Article.candidates),
            selectinload(Article.duplicate_of),
        )
        .order_by(Article.id)
    )
    if topic:
        query = query.where(Article.topic == topic)
    if not include_reviewed:
        query = query.where(Article.review_status == "open")
    articles = [article_entry(a) for a in session.scalars(query)]
    if flags:
        articles = [a for a in articles if set(a["flags"]) & set(flags)]
    articles.sort(key=lambda a: (a["published"] is None, a["published"] or "", a["id"]))

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
