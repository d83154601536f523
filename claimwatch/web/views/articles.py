"""The article list (filters, keyset pages, bulk selection) and one article's page."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from claimwatch.cleaner import clean
from claimwatch.digest import FLAGS, DigestError, article_entry, entries, list_query, parse_since
from claimwatch.digest.render import FLAG_LABELS
from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import (
    arg,
    int_arg,
    json_response,
    plural,
    suggest_claim_id,
    url,
)
from claimwatch.web.state import desk
from storage.models import Article, KnownClaim

bp = Blueprint("articles", __name__)

PAGE_SIZE = 50  # articles per list page (newest first; "Older articles" pages on)
MAX_LIST = 300  # the most articles one list page or JSON request returns
MAX_COUNT = 1000  # a list counts its articles up to this many ("more than 1,000")
MAX_LIST_ROUNDS = 20
STATUSES = ("open", "reviewed", "dismissed", "all")


@dataclass
class ListPage:
    """One page of the article list."""

    articles: list[dict[str, Any]]
    problem: str
    next: str | None  # the id to pass as ``before`` for the next (older) page
    total: int | None  # articles matching the filters, counted up to MAX_COUNT + 1


def list_filters() -> dict[str, str]:
    status = arg("status", "open")
    flag = arg("flag")
    return {"topic": arg("topic"), "status": status if status in STATUSES else "open",
            "flag": flag if flag in FLAGS else "", "claim": arg("claim"), "since": arg("since")}


def page_url(filters: Mapping[str, str], before: str = "", path: str = "/", **extra: str) -> str:
    params = {k: v for k, v in filters.items() if v and not (k == "status" and v == "open")}
    params.update(extra)
    if before:
        params["before"] = before
    return url(path, **params)


def load_page(session: Session, filters: Mapping[str, str], before: str = "",
              limit: int = PAGE_SIZE) -> ListPage:
    """One page of the list, newest fetched first, keyset-paged by (fetched_at, id):
    ``before`` is the id of the last article of the previous page. Columns only (no
    text), and the matches and candidates of the page's articles alone."""
    problem = ""
    since = None
    if filters["since"]:
        try:
            since = parse_since(filters["since"])
        except DigestError as exc:
            problem = str(exc).replace("--since", "since")
    flag = filters["flag"] or None
    query = list_query(topic=filters["topic"] or None, since=since,
                       status=None if filters["status"] == "all" else filters["status"],
                       flag=flag, claim=filters["claim"] or None)
    key = None
    if before.isdigit() and len(before) <= 19:
        fetched = session.scalar(select(Article.fetched_at).where(Article.id == int(before)))
        if fetched is not None:
            key = (fetched, int(before))
    order = (Article.fetched_at.desc(), Article.id.desc())
    shown: list[dict[str, Any]] = []
    more = exhausted = False
    for _ in range(MAX_LIST_ROUNDS):
        page = query if key is None else query.where(
            tuple_(Article.fetched_at, Article.id) < tuple_(*key))
        rows = session.execute(page.order_by(*order).limit(limit + 1)).all()
        if rows:
            key = (rows[-1].fetched_at, rows[-1].id)
        # a copy whose only candidates are its original's has not the candidate flag
        shown += entries(session, rows, flag if flag == "new_claim_candidate" else None)
        exhausted = len(rows) <= limit
        if len(shown) > limit or exhausted:
            break
    next_id = None
    if len(shown) > limit:
        shown, more = shown[:limit], True
        next_id = str(shown[-1]["id"])
    elif not exhausted and key is not None:  # rounds spent on rows the filter dropped
        more, next_id = True, str(key[1])
    if not before and not more:
        total: int | None = len(shown)
    elif flag in ("conflict", "new_claim_candidate") or filters["claim"]:
        total = None  # counting them would read every match of the topic: not counted
    else:
        total = int(session.scalar(select(func.count()).select_from(
            query.with_only_columns(Article.id).limit(MAX_COUNT + 1).subquery())) or 0)
    return ListPage(shown, problem, next_id, total)


def _summary(filters: Mapping[str, str], listed: ListPage, before: str) -> str:
    label = {"open": "open", "reviewed": "reviewed", "dismissed": "dismissed",
             "all": ""}[filters["status"]]
    if listed.total is None:
        summary = f"{label} articles".strip().capitalize()
    elif listed.total > MAX_COUNT:
        summary = f"more than {MAX_COUNT:,} {label} articles".replace("  ", " ")
    else:
        summary = plural(listed.total, f"{label} article".strip())
    if filters["claim"]:
        summary += f" repeating claim {filters['claim']}"
    if before or listed.next:
        summary += (f"; showing {len(listed.articles)} older ones" if before
                    else f"; showing the newest {len(listed.articles)}")
    return summary


@bp.get("/")
def page_articles() -> str:
    filters = list_filters()
    before = arg("before")
    state = desk()
    with state.read() as session:
        listed = load_page(session, filters, before)
        topic_names = state.topic_names(session)
        ids = [a["id"] for a in listed.articles]
        copies = dict(session.execute(
            select(Article.duplicate_of_id, func.count(Article.id))
            .where(Article.duplicate_of_id.in_(ids)).group_by(Article.duplicate_of_id)
        ).all()) if ids else {}
    return render_template(
        "articles.html", filters=filters, topics=topic_names, listed=listed, copies=copies,
        summary=_summary(filters, listed, before), before=before,
        flags=[(f, FLAG_LABELS.get(f, f)) for f in FLAGS], flag_labels=FLAG_LABELS,
        newest_url=page_url(filters), older_url=page_url(filters, listed.next or ""),
        export_filters={k: filters[k] for k in ("topic", "status", "flag", "claim", "since")})


@bp.get("/articles.json")
@bp.get("/api/v1/articles", endpoint="json_articles_v1")
def json_articles() -> Any:
    filters = list_filters()
    limit = int_arg("limit", PAGE_SIZE, 1, MAX_LIST)
    with desk().read() as session:
        listed = load_page(session, filters, arg("before"), limit)
    if listed.problem:
        raise HTTPError(400, listed.problem)
    return json_response({
        "count": None if listed.total is None else min(listed.total, MAX_COUNT + 1),
        "more_than": listed.total is not None and listed.total > MAX_COUNT,
        "filters": filters, "articles": listed.articles,
        "next": (page_url(filters, listed.next, request.path, limit=str(limit))
                 if listed.next else None)})


# -- one article ------------------------------------------------------------------------------

def load_article(session: Session, article_id: int) -> Article:
    article = session.scalar(
        select(Article).where(Article.id == article_id)
        .options(selectinload(Article.claims), selectinload(Article.candidates),
                 selectinload(Article.duplicate_of)))
    if article is None:
        raise HTTPError(404, f"no article with id {article_id}")
    return article


def article_data(session: Session, article: Article) -> dict[str, Any]:
    entry = article_entry(article)
    entry.update(text=article.text, author=article.author, topic=article.topic)
    entry["all_claims"] = [
        {"claim_id": c.claim_id, "score": round(c.score, 1), "sentence": c.sentence,
         "tier": c.tier, "review": c.review, "conflict": c.conflict,
         "stance": c.stance or "repeats",
         "claim_numbers": list(c.claim_numbers), "article_numbers": list(c.article_numbers)}
        for c in sorted(article.claims, key=lambda c: -c.score)]
    entry["all_candidates"] = [
        {"id": c.id, "sentence": c.sentence, "score": round(c.score, 3), "status": c.status,
         "promoted_claim_id": c.promoted_claim_id}
        for c in article.candidates]
    entry["copies"] = [
        {"id": c.id, "url": c.url, "title": c.title, "outlet": c.outlet,
         "published": c.published.isoformat() if c.published else None,
         "similarity": round(c.duplicate_similarity or 0.0, 3), "kind": c.duplicate_kind,
         "review": c.review_status}
        for c in session.scalars(
            select(Article).where(Article.duplicate_of_id == article.id).order_by(Article.id))]
    original = article.duplicate_of
    if original is not None and entry["duplicate_of"] is not None:
        entry["duplicate_of"].update(title=original.title, outlet=original.outlet)
    entry["claim_texts"] = dict(session.execute(
        select(KnownClaim.claim_id, KnownClaim.text).where(KnownClaim.topic == article.topic)
    ).all())
    return entry


@bp.get("/article/<int:article_id>.json")
@bp.get("/api/v1/articles/<int:article_id>", endpoint="json_article_v1")
def json_article(article_id: int) -> Any:
    with desk().read() as session:
        data = article_data(session, load_article(session, article_id))
    return json_response(data)


@bp.get("/article/<int:article_id>")
def page_article(article_id: int) -> str:
    from claimwatch.accounts import history
    from claimwatch.revisions_view import revision_history

    state = desk()
    with state.read() as session:
        a = article_data(session, load_article(session, article_id))
        events = history(session, article_id)
        revisions = revision_history(session, article_id)
    topic = state.topics.get(a["topic"])
    outlets = {clean(c.get("outlet")) for c in a["copies"]} | {clean(a.get("outlet"))}
    # The "why?" panel is not computed here (tens of ms): static/review.js fetches
    # why.json when it is opened; without script, its link opens the /why page.
    return render_template(
        "article.html", a=a, flag_labels=FLAG_LABELS, outlets=len(outlets),
        paragraphs=highlighted(a), events=[(e, _detail(e)) for e in events],
        revisions=revisions,
        can_promote=topic is not None and topic.claims_path is not None,
        suggest=suggest_claim_id, title=clean(a.get("title") or f"article {article_id}"))


# -- one article's "why?" panel (claimwatch/explain.py), only when asked for ------------------

WHY_UNLOADED = "The topic file is not loaded here."


def why_lines(article_id: int) -> tuple[str, list[str] | None]:
    """The article's title and explain report (plain lines, without the heading line);
    None when its topic file is not loaded here. A 404 for an unknown article."""
    from claimwatch.explain import explain_article, explain_lines

    state = desk()
    with state.read() as session:
        row = session.execute(select(Article.topic, Article.title)
                              .where(Article.id == article_id)).one_or_none()
    if row is None:
        raise HTTPError(404, f"no article with id {article_id}")
    title = clean(row.title or f"article {article_id}")
    topic = state.topics.get(row.topic)
    if topic is None:
        return title, None
    return title, explain_lines(explain_article(state.sessions, topic, article_id))[1:]


@bp.get("/article/<int:article_id>/why")
def page_why(article_id: int) -> str:
    title, lines = why_lines(article_id)
    return render_template("why.html", aid=article_id, why=lines, unloaded=WHY_UNLOADED,
                           title=f"Why? {title}")


@bp.get("/article/<int:article_id>/why.json")
def json_why(article_id: int) -> Any:
    _, lines = why_lines(article_id)
    return json_response({"article_id": article_id, "lines": lines,
                          "message": None if lines is not None else WHY_UNLOADED})


def _detail(event: Any) -> str:
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in
                     (event.detail or {}).items() if v is not True)


def highlighted(a: Mapping[str, Any]) -> list[list[tuple[str, str, str]]]:
    """The article's paragraphs as runs of (text, mark class, mark title): the matched
    sentences marked; the template escapes every run."""
    text = a.get("text") or ""
    marks: dict[str, tuple[str, list[str]]] = {}
    for c in a["all_claims"]:
        if c["review"] == "rejected":
            continue
        cls = "hl-conflict" if c["conflict"] else (
            "hl-suggested" if c["tier"] == "suggested" else "hl-claim")
        prev = marks.get(c["sentence"])
        if prev is None or cls == "hl-conflict":
            marks[c["sentence"]] = (cls, (prev[1] if prev else []) + [c["claim_id"]])
        else:
            prev[1].append(c["claim_id"])
    for c in a["all_candidates"]:
        if c["status"] != "rejected":
            marks.setdefault(c["sentence"], ("hl-candidate", ["new claim candidate"]))
    spans: list[tuple[int, int, str, str]] = []
    for sentence, (cls, titles) in marks.items():
        start = text.find(sentence) if sentence else -1
        if start >= 0:
            spans.append((start, start + len(sentence), cls, ", ".join(titles)))
    spans.sort()
    kept: list[tuple[int, int, str, str]] = []
    for span in spans:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    paragraphs = []
    for para in re.finditer(r"[^\n]+", text):
        p_start, p_end = para.span()
        runs, cursor = [], p_start
        for start, end, cls, title in kept:
            if end <= p_start or start >= p_end:
                continue
            start, end = max(start, p_start), min(end, p_end)
            runs.append((clean(text[cursor:start]), "", ""))
            runs.append((clean(text[start:end]), cls, clean(title)))
            cursor = end
        runs.append((clean(text[cursor:p_end]), "", ""))
        paragraphs.append(runs)
    return paragraphs
