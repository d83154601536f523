"""Sources and runs: the configured sources with "crawl now", the running crawls with
their live counts, recent runs; and the digest as the page and email render it."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, render_template, request
from sqlalchemy import select

from claimwatch.digest import DigestError, build_digest, parse_since
from claimwatch.digest.render import FORMATS, render
from claimwatch.review import ReviewError, recent_runs
from claimwatch.web.access import require_admin
from claimwatch.web.errors import CrawlRefused, HTTPError
from claimwatch.web.helpers import Answer, arg, done, fail, field, url
from claimwatch.web.state import desk
from claimwatch.web.views.api import run_dict
from storage.models import SourceState

logger = logging.getLogger(__name__)

bp = Blueprint("sources", __name__)

# The HTML digest is an email document: inline styles, nothing else.
DIGEST_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _running(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    items = []
    for r in runs:
        if r["status"] != "running":
            continue
        started = datetime.fromisoformat(r["started"]) if r["started"] else now
        took = max(int((now - started).total_seconds()), 0)
        items.append({**r, "took": f"{took // 60}m {took % 60:02d}s"})
    return items


@bp.get("/sources")
def page_sources() -> str:
    state = desk()
    with state.read() as session:
        states = {(s.topic, s.source): s for s in session.scalars(select(SourceState))}
        runs = [run_dict(r) for r in recent_runs(session, None, 25)]
    return render_template("sources.html", topics=list(state.topics.values()), states=states,
                           runs=runs, running=_running(runs),
                           can_crawl=state.trigger_crawl is not None,
                           unavailable=state.crawl_unavailable)


@bp.post("/crawl")
def post_crawl() -> Answer:
    require_admin()
    state = desk()
    topic_name, source_name = field("topic"), field("source")
    topic = state.topics.get(topic_name)
    if topic is None or source_name not in {s.name for s in topic.sources}:
        return fail(ReviewError(f"no source {source_name!r} in topic {topic_name!r} here"),
                    "/sources", 404)
    if state.trigger_crawl is None:
        return fail(CrawlRefused(state.crawl_unavailable), "/sources", 503)
    try:
        result = state.trigger_crawl(topic_name, source_name)
    except CrawlRefused as exc:
        return fail(exc, "/sources", 409)
    except Exception as exc:  # the trigger is a collaborator: report, do not crash
        logger.exception("crawl now of %s/%s failed to start", topic_name, source_name)
        return fail(CrawlRefused(f"the crawl could not start: {exc}"), "/sources", 500)
    message = f"crawl of {topic_name}/{source_name} started"
    if isinstance(result, Mapping):  # the daemon's trigger: {"runs": [...]} or an error
        started = result.get("runs") or []
        if not started:
            reason = result.get("error") or result.get("message") or "nothing was started"
            return fail(CrawlRefused(str(reason)), "/sources", 409)
        ids = [str(r.get("id")) for r in started if isinstance(r, Mapping) and r.get("id")]
        if ids:
            message += f": run {', '.join(ids)}"
    elif isinstance(result, str) and result:
        message = f"crawl of {topic_name}/{source_name}: {result}"
    return done(message, {"topic": topic_name, "source": source_name}, "/sources")


@bp.get("/digest")
def page_digest() -> Answer:
    fmt = arg("format", "html")
    if fmt not in FORMATS:
        raise HTTPError(400, f"format {fmt!r}: use one of {', '.join(FORMATS)}")
    try:
        since = parse_since(arg("since", "24h") or "24h")
    except DigestError as exc:
        raise HTTPError(400, str(exc).replace("--since", "since")) from exc
    with desk().read() as session:
        data = build_digest(session, topic=arg("topic") or None, since=since,
                            include_reviewed=arg("all") in ("1", "true", "yes"))
    host = request.headers.get("Host", "")
    if fmt != "json" and host and re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
        data["review_base"] = f"{request.scheme}://{host}" + url("")  # items link here
    ctype = {"html": "text/html", "json": "application/json",
             "atom": "application/atom+xml"}.get(fmt, "text/plain")
    response = Response(render(data, fmt), 200, content_type=ctype + "; charset=utf-8")
    response.headers["Content-Security-Policy"] = (
        DIGEST_CSP if fmt == "html" else "default-src 'none'")
    return response
