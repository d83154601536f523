"""Full-text search over stored articles (storage/search.py) with its filters."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import Blueprint, render_template, request

from claimwatch.digest import DigestError, parse_since
from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import arg, int_arg, json_response
from claimwatch.web.state import desk
from storage.search import FLAGS as SEARCH_FLAGS
from storage.search import (
    MARK_END,
    MARK_START,
    REVIEW_STATUSES,
    SearchError,
    SearchFilters,
    highlight,
    search_articles,
)

bp = Blueprint("search", __name__)

PAGE_SIZE = 20


def date_arg(value: str, name: str) -> tuple[datetime | None, str]:
    if not value:
        return None, ""
    try:
        return parse_since(value), ""
    except DigestError:
        return None, f"{name}: {value!r} is not a duration like 7d or an ISO date"


def _filters() -> tuple[SearchFilters | None, list[str]]:
    since, problem_since = date_arg(arg("since"), "since")
    until, problem_until = date_arg(arg("until"), "until")
    problems = [p for p in (problem_since, problem_until) if p]
    try:
        filters = SearchFilters(
            topic=arg("topic") or None, flag=arg("flag") or None, claim=arg("claim") or None,
            outlet=arg("outlet") or None, language=arg("language") or None, since=since,
            until=until, review=arg("review") or None)
    except SearchError as exc:
        return None, [*problems, str(exc)]
    return filters, problems


def _search() -> tuple[Any, list[str]]:
    query = arg("q")
    filters, problems = _filters()
    if not query or filters is None or problems:
        return None, problems
    offset = int_arg("offset", 0, 0, 10_000)
    try:
        with desk().read() as session:
            return search_articles(session, query, filters, limit=PAGE_SIZE, offset=offset), []
    except SearchError as exc:
        return None, [str(exc)]


@bp.get("/search.json")
@bp.get("/api/v1/search", endpoint="json_search_v1")
def json_search() -> Any:
    if not arg("q"):
        raise HTTPError(400, "q: give the words to search for")
    page, problems = _search()
    if problems:
        raise HTTPError(400, "; ".join(problems))
    return json_response({
        "query": page.query, "offset": page.offset, "next_offset": page.next_offset,
        "results": [{"id": hit.id, "topic": hit.topic, "title": hit.title, "url": hit.url,
                     "outlet": hit.outlet, "language": hit.language,
                     "published": hit.published, "fetched_at": hit.fetched_at,
                     "review": hit.review_status, "duplicate_of": hit.duplicate_of_id,
                     "snippet": highlight(hit.snippet, str, "", "")}
                    for hit in page.hits]})


def snippet_runs(snippet: str) -> list[tuple[str, bool]]:
    """A snippet as runs of (text, is a hit): the template escapes and marks them."""
    runs: list[tuple[str, bool]] = []
    marked = False
    for piece in re.split(f"([{MARK_START}{MARK_END}])", snippet):
        if piece in (MARK_START, MARK_END):
            marked = piece == MARK_START
        elif piece:
            runs.append((piece, marked))
    return runs


@bp.get("/search")
def page_search() -> str:
    page, problems = _search()
    with desk().read() as session:
        topics = desk().topic_names(session)
    flat = {k: v for k, v in request.args.items() if k != "offset"}
    return render_template(
        "search.html", page=page, problems=problems, topics=topics, flat=flat,
        flags=SEARCH_FLAGS, reviews=REVIEW_STATUSES, page_size=PAGE_SIZE,
        snippet=snippet_runs, ids=",".join(str(h.id) for h in page.hits) if page else "")
