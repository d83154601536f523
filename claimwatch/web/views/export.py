"""Export downloads: CSV or JSON Lines of any filtered list (claimwatch/digest/export.py),
streamed from one read session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response, stream_with_context

from claimwatch.digest.export import ExportQuery, export
from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import arg
from claimwatch.web.state import desk
from claimwatch.web.views.search import date_arg
from storage.search import FLAGS as SEARCH_FLAGS
from storage.search import REVIEW_STATUSES

bp = Blueprint("export", __name__)


def _query() -> ExportQuery:
    since, problem = date_arg(arg("since"), "since")
    if problem:
        raise HTTPError(400, problem)
    status = arg("status")
    if status in ("", "all"):
        status = ""
    elif status not in REVIEW_STATUSES:
        raise HTTPError(400, f"status: {status!r} is not one of open, reviewed, dismissed, all")
    ids: tuple[int, ...] | None = None
    if arg("ids"):
        try:
            ids = tuple(int(part) for part in arg("ids").split(",")[:500])
        except ValueError:
            raise HTTPError(400, "ids: a comma-separated list of article ids") from None
        if any(i > 2**62 for i in ids):
            raise HTTPError(400, "ids: an article id is out of range")
    flag = arg("flag")
    if flag and flag not in SEARCH_FLAGS:
        raise HTTPError(400, f"flag: {flag!r} is not one of {', '.join(SEARCH_FLAGS)}")
    return ExportQuery(topic=arg("topic") or None, since=since, status=status or None,
                       ids=ids, flag=flag or None, claim=arg("claim") or None)


@bp.get("/export")
@bp.get("/api/v1/export", endpoint="export_v1")
def export_download() -> Response:
    fmt = arg("format", "csv")
    if fmt not in ("csv", "jsonl"):
        raise HTTPError(400, "format: csv or jsonl")
    query = _query()
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    name = f"claimwatch-{query.topic or 'all'}-{stamp}.{fmt}"
    safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    state = desk()

    def chunks() -> Iterator[bytes]:
        with state.read() as session:
            for chunk in export(session, query, fmt):
                yield chunk.encode("utf-8")

    ctype = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return Response(stream_with_context(chunks()), 200, content_type=ctype,
                    headers={"Content-Disposition": f'attachment; filename="{safe_name}"'})
