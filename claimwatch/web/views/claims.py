"""The claims table (coverage per claim, keyset pages) and one claim's timeline."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import func, select

from claimwatch.review import claim_coverage
from claimwatch.web import charts
from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import arg, int_arg, json_response, url
from claimwatch.web.state import desk
from storage.models import KnownClaim

bp = Blueprint("claims", __name__)

CLAIMS_PAGE = 200  # claims per claims page


def _coverage(limit: int = CLAIMS_PAGE) -> tuple[str, list[Any], str]:
    """One page of claims (``after``: the row id of the last claim shown before)."""
    topic, after = arg("topic"), arg("after")
    with desk().read() as session:
        rows = claim_coverage(session, topic or None,
                              after=int(after) if after.isdigit() and len(after) <= 18
                              else None, limit=limit + 1)
        next_url = ""
        if len([r for r in rows if r.text is not None]) > limit:
            rows = rows[:limit]
            last = session.scalar(select(func.max(KnownClaim.id)).where(
                KnownClaim.topic == rows[-1].topic, KnownClaim.claim_id == rows[-1].claim_id))
            next_url = url(request.path, topic=topic, after=str(last))
    return topic, rows, next_url


@bp.get("/claims.json")
@bp.get("/api/v1/claims", endpoint="json_claims_v1")
def json_claims() -> Any:
    limit = int_arg("limit", CLAIMS_PAGE, 1, CLAIMS_PAGE)
    _, rows, next_url = _coverage(limit)
    if next_url:
        next_url += f"&limit={limit}"
    return json_response({"claims": [r.as_dict() for r in rows], "next": next_url or None})


@bp.get("/claims")
def page_claims() -> str:
    topic, rows, next_url = _coverage()
    return render_template("claims.html", topic=topic, rows=rows, next_url=next_url,
                           title=f"Claims of {topic}" if topic else "Claims")


def _claim(claim_id: str) -> tuple[str, str | None, list[Any]]:
    topic = arg("topic")
    if len(claim_id) > 200:
        raise HTTPError(404, "no such claim")
    with desk().read() as session:
        known = session.query(KnownClaim).filter(KnownClaim.claim_id == claim_id)
        if topic:
            known = known.filter(KnownClaim.topic == topic)
        rows = known.limit(2).all()
        if not topic:
            if len(rows) > 1:
                raise HTTPError(400, f"claim {claim_id!r} is in several topics: add ?topic=")
            if not rows:
                raise HTTPError(404, f"no claim {claim_id!r}")
            topic = rows[0].topic
        text = rows[0].text if rows else None
        points = charts.claim_timeline(session, topic, claim_id)
    if text is None and not points:
        raise HTTPError(404, f"no claim {claim_id!r} in topic {topic!r}")
    return topic, text, points


@bp.get("/claim/<claim_id>.json")
@bp.get("/api/v1/claims/<claim_id>", endpoint="json_claim_v1")
def json_claim(claim_id: str) -> Any:
    topic, text, points = _claim(claim_id)
    return json_response({"topic": topic, "claim_id": claim_id, "text": text,
                          "timeline": charts.as_dicts(points)})


@bp.get("/claim/<claim_id>")
def page_claim(claim_id: str) -> str:
    topic, text, points = _claim(claim_id)
    counts: dict[str, int] = {}
    for p in points:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return render_template(
        "claim.html", topic=topic, claim_id=claim_id, text=text, points=points,
        outlets=len({p.outlet for p in points}), kind_labels=charts.KIND_LABELS,
        said=", ".join(charts.counted(k, n) for k, n in counts.items()),
        geometry=charts.timeline_geometry(points, claim_id) if points else None)
