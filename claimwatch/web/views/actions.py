"""Review actions: mark an article (alone, with its copies, or in bulk), confirm or
reject a match, promote or reject a new-claim candidate, and undo the last action.
Each answers with a 303 back and a flash, or JSON when asked (``Accept:
application/json``); each records who did it (claimwatch/accounts.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session

from claimwatch.accounts import record
from claimwatch.cleaner import clean
from claimwatch.review import (
    ReviewError,
    decide_candidate,
    mark_article,
    promote_candidate,
    review_match,
)
from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import Answer, actor, done, fail, field, form_data, plural, session_id
from claimwatch.web.state import desk
from storage.models import Article, ArticleClaim, ClaimCandidate

bp = Blueprint("actions", __name__)

VERBS = {"reviewed": "marked reviewed", "dismissed": "dismissed", "open": "reopened"}


def _review_state(session: Session, ids: list[int],
                  with_copies: bool) -> list[tuple[int, str, str | None]]:
    """(id, status, note) of these articles (and their copies): what undo restores."""
    condition: Any = Article.id.in_(ids)
    if with_copies:
        condition = condition | Article.duplicate_of_id.in_(ids)
    query = select(Article.id, Article.review_status, Article.review_note).where(condition)
    return [(int(r[0]), str(r[1]), r[2]) for r in session.execute(query)]


@bp.post("/article/<int:article_id>/review")
@bp.post("/api/v1/articles/<int:article_id>/review", endpoint="post_review_v1")
def post_review(article_id: int) -> Answer:
    status = field("status")
    note = form_data().get("note")
    with_copies = field("with_copies") in ("1", "true", "on", "yes")
    try:
        with desk().write() as session:
            before = _review_state(session, [article_id], with_copies)
            article = mark_article(session, article_id, status, note[0] if note else None,
                                   with_copies=with_copies)
            title = clean(article.title or article.url)
            record(session, article_id, actor(), f"marked {status}",
                   note=note[0] if note else None, with_copies=with_copies or None)
    except ReviewError as exc:
        return fail(exc, f"/article/{article_id}")
    message = f"#{article_id} {title[:80]} {VERBS[status]}" + (
        " with its copies" if with_copies else "")
    desk().remember_undo(session_id(), {"kind": "review", "items": before, "label": message})
    return done(message, {"article_id": article_id, "status": status, "undo": True},
                f"/article/{article_id}")


@bp.post("/articles/review")
@bp.post("/api/v1/articles/review", endpoint="post_bulk_review_v1")
def post_bulk_review() -> Answer:
    status = field("status")
    raw = form_data().get("ids", [])[:500]
    ids = list(dict.fromkeys(int(v) for v in raw if v.isdigit() and len(v) < 19))
    if not ids:
        return fail(ReviewError("select at least one article first"), "/")
    try:
        with desk().write() as session:
            before = _review_state(session, ids, False)
            for aid in ids:
                mark_article(session, aid, status)
                record(session, aid, actor(), f"marked {status}", bulk=len(ids))
    except ReviewError as exc:
        return fail(exc, "/")
    message = f"{plural(len(ids), 'article')} {VERBS[status]}"
    desk().remember_undo(session_id(), {"kind": "review", "items": before, "label": message})
    return done(message, {"article_ids": ids, "status": status, "undo": True}, "/")


@bp.post("/article/<int:article_id>/match")
@bp.post("/api/v1/articles/<int:article_id>/match", endpoint="post_match_v1")
def post_match(article_id: int) -> Answer:
    claim_id, decision = field("claim_id"), field("decision")
    try:
        with desk().write() as session:
            previous = session.scalar(select(ArticleClaim.review).where(
                ArticleClaim.article_id == article_id, ArticleClaim.claim_id == claim_id))
            review = review_match(session, article_id, claim_id, decision).review
            record(session, article_id, actor(), f"match {review}", claim_id=claim_id)
    except ReviewError as exc:
        return fail(exc, f"/article/{article_id}")
    message = f"match of #{article_id} to {claim_id}: {review}"
    desk().remember_undo(session_id(), {"kind": "match",
                                        "items": [(article_id, claim_id, previous)],
                                        "label": message})
    return done(message, {"article_id": article_id, "claim_id": claim_id, "review": review,
                          "undo": True}, f"/article/{article_id}")


def _candidate_article(candidate_id: int) -> tuple[int, str]:
    with desk().read() as session:
        row = session.execute(
            select(ClaimCandidate.article_id, Article.topic)
            .join(Article, Article.id == ClaimCandidate.article_id)
            .where(ClaimCandidate.id == candidate_id)).first()
    if row is None:
        raise HTTPError(404, f"no claim candidate with id {candidate_id}")
    return int(row[0]), str(row[1])


@bp.post("/candidate/<int:candidate_id>/promote")
@bp.post("/api/v1/candidates/<int:candidate_id>/promote", endpoint="post_promote_v1")
def post_promote(candidate_id: int) -> Answer:
    aid, topic_name = _candidate_article(candidate_id)
    topic = desk().topics.get(topic_name)
    back = f"/article/{aid}"
    if topic is None:
        return fail(ReviewError(
            f"topic {topic_name!r} was not loaded here: serve the page with its topic file "
            "to promote claims"), back, 409)
    try:
        with desk().write() as session:
            claim = promote_candidate(session, candidate_id, field("new_id"), topic,
                                      text=field("text") or None)
            record(session, aid, actor(), "promoted a candidate", claim_id=claim.id,
                   text=claim.text)
    except ReviewError as exc:
        return fail(exc, back)
    from claimwatch.rematch import start_in_background

    start_in_background(topic.path, desk().sessions)  # the stored articles, re-matched
    return done(f"new claim {claim.id} added to {topic.claims_path}",
                {"claim_id": claim.id, "text": claim.text, "candidate_id": candidate_id}, back)


@bp.post("/candidate/<int:candidate_id>/decide")
@bp.post("/api/v1/candidates/<int:candidate_id>/decide", endpoint="post_candidate_v1")
def post_candidate(candidate_id: int) -> Answer:
    aid, _ = _candidate_article(candidate_id)
    try:
        with desk().write() as session:
            status = decide_candidate(session, candidate_id, field("decision")).status
            record(session, aid, actor(), f"candidate {status}", candidate_id=candidate_id)
    except ReviewError as exc:
        return fail(exc, f"/article/{aid}")
    return done(f"candidate {candidate_id}: {status}",
                {"candidate_id": candidate_id, "status": status}, f"/article/{aid}")


@bp.post("/undo")
@bp.post("/api/v1/undo", endpoint="post_undo_v1")
def post_undo() -> Answer:
    action: dict[str, Any] | None = desk().pending_undo(session_id())
    if action is None:
        return fail(ReviewError("nothing to undo"), "/", 409)
    try:
        with desk().write() as session:
            if action["kind"] == "review":
                for aid, status, note in action["items"]:
                    mark_article(session, aid, status, note if note is not None else "")
                    record(session, aid, actor(), f"undo: back to {status}")
            else:
                decisions = {"confirmed": "confirm", "rejected": "reject", "open": "reopen"}
                for aid, claim_id, previous in action["items"]:
                    review_match(session, aid, claim_id,
                                 decisions.get(previous or "open", "reopen"))
                    record(session, aid, actor(), f"undo: match {previous or 'open'}",
                           claim_id=claim_id)
    except ReviewError as exc:
        return fail(exc, "/")
    desk().forget_undo(session_id())
    ids = sorted({item[0] for item in action["items"]})
    return done(f"undone: {action['label']}", {"article_ids": ids}, "/")
