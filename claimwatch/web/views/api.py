"""The JSON API's own routes: health, crawl runs, crawl now, and the OpenAPI document.

The other /api/v1/ routes (articles, claims, search, export, review actions) are the
pages' JSON twins, registered next to their pages; every /api/v1/ route is described
in claimwatch/web/openapi.py and the old paths (/api/health, /api/runs, /api/crawl,
/articles.json, ...) stay as aliases.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select

from claimwatch.web.access import json_post
from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import arg, iso, json_response, strict_int_arg
from claimwatch.web.state import DaemonControl, desk
from storage.models import CrawlRun

bp = Blueprint("api", __name__)

RUN_STATUSES = ("running", "ok", "failed", "timeout", "interrupted")


def run_dict(run: CrawlRun) -> dict[str, Any]:
    return {
        "id": run.id, "topic": run.topic, "source": run.source, "trigger": run.trigger,
        "status": run.status, "started": iso(run.started), "finished": iso(run.finished),
        "duration": round((run.finished - run.started).total_seconds(), 3)
        if run.finished and run.started else None,
        "counts": dict(run.counts or {}), "error": run.error, "pid": run.pid,
        "exit_code": run.exit_code,
    }


def _control() -> DaemonControl:
    control = desk().control
    if control is None:
        raise HTTPError(404, f"{request.path} is served by the daemon (claimwatch daemon), "
                             "not by claimwatch serve")
    return control


@bp.get("/api/health")
@bp.get("/api/v1/health", endpoint="health_v1")
def health() -> Response:
    data = _control().health()
    strict = arg("strict") not in ("", "0", "false", "no")
    return json_response(data, 503 if strict and data.get("status") != "ok" else 200)


@bp.get("/api/runs")
@bp.get("/runs.json", endpoint="runs_json")
@bp.get("/api/v1/runs", endpoint="runs_v1")
def runs() -> Response:
    limit = strict_int_arg("limit", 50, low=1, high=1000)
    before = strict_int_arg("before", 0, low=0)
    query = select(CrawlRun).order_by(CrawlRun.id.desc()).limit(limit)
    for name in ("topic", "source", "trigger"):
        if arg(name):
            query = query.where(getattr(CrawlRun, name) == arg(name))
    status = arg("status")
    if status:
        if status not in RUN_STATUSES:
            raise HTTPError(400, f"unknown status {status!r} (one of {', '.join(RUN_STATUSES)})")
        query = query.where(CrawlRun.status == status)
    if before:
        query = query.where(CrawlRun.id < before)
    with desk().read() as session:
        found = [run_dict(run) for run in session.scalars(query)]
    return json_response({"runs": found})


@bp.get("/api/runs/<int:run_id>")
@bp.get("/api/v1/runs/<int:run_id>", endpoint="run_v1")
def one_run(run_id: int) -> Response:
    with desk().read() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            raise HTTPError(404, f"no crawl run {run_id}")
        return json_response(run_dict(run))


@bp.post("/api/crawl")
@json_post
def crawl() -> Response:
    return _crawl()


@bp.post("/api/v1/crawl")
@json_post
def crawl_v1() -> Response:
    return _crawl()


def _crawl() -> Response:
    """Start crawls now: ``{"topic": "t", "source": "s"}`` (either may be left out when
    unambiguous); 202 with the runs started, 409 when the sources are busy."""
    control = _control()
    try:
        body = request.get_json(silent=False) if request.get_data() else {}
    except RecursionError:
        raise HTTPError(400, "request body is not valid JSON: nested too deep") from None
    except Exception:  # noqa: BLE001 - werkzeug's BadRequest on malformed JSON
        raise HTTPError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HTTPError(400, 'send a JSON object such as {"topic": "t", "source": "s"}')
    values: dict[str, str | None] = {}
    for name in ("topic", "source"):
        value = body.get(name, request.args.get(name))
        if value is not None and not isinstance(value, str):
            raise HTTPError(400, f"{name!r} must be a string")
        values[name] = value or None
    result = control.trigger(values["topic"], values["source"])
    return json_response(result, 202 if result.get("runs") else 409)


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    from claimwatch.web.openapi import document

    return json_response(document(current_app))
