"""The OpenAPI 3 description of /api/v1/, served at /api/v1/openapi.json.

Written by hand (the routes are plain Flask views, not schema-first), and checked by
tests/test_api.py: every /api/v1 route of the app is described here, and nothing
here lacks a route.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

VERSION = "1"


def _q(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": kind}}


def _p(name: str, kind: str = "integer") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


JSON_OK = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
ERRORS = {code: {"$ref": f"#/components/responses/E{code}"} for code in
          ("400", "401", "403", "404")}
LIST_FILTERS = [
    _q("topic", "topic name"), _q("status", "open (default), reviewed, dismissed or all"),
    _q("flag", "new_report, duplicate, conflict, new_claim_candidate or disputes"),
    _q("claim", "a claim id the articles repeat"), _q("since", "24h, 7d or an ISO date"),
]
ACTION_BODY = {"required": True, "content": {
    "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
    "application/json": {"schema": {"type": "object"}}}}
ACTION_NOTE = (" Send Authorization: Bearer, or the session's X-CSRF-Token "
               "(GET /api/v1/session) with Accept: application/json.")


def _get(summary: str, params: list[dict[str, Any]] | None = None,
         content: str = "application/json") -> dict[str, Any]:
    ok = JSON_OK if content == "application/json" else {
        "description": "OK", "content": {content: {"schema": {"type": "string"}}}}
    return {"get": {"summary": summary, "parameters": params or [],
                    "responses": {"200": ok, **ERRORS}}}


def _post(summary: str, fields: dict[str, str], params: list[dict[str, Any]] | None = None,
          json_only: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {k: {"type": "string", "description": v}
                                         for k, v in fields.items()}}}}}
    if not json_only:
        body["content"]["application/x-www-form-urlencoded"] = body["content"][
            "application/json"]
    return {"post": {"summary": summary + ("" if json_only else ACTION_NOTE),
                     "parameters": params or [], "requestBody": body,
                     "responses": {"200": JSON_OK, "202": JSON_OK, **ERRORS,
                                   "409": {"$ref": "#/components/responses/E409"}}}}


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/openapi.json": _get("This document"),
    "/api/v1/health": _get("Daemon, scheduler and per-source health with gap alarms "
                           "(daemon only; open to loopback without a token)",
                           [_q("strict", "1: answer 503 while any source has an alarm")]),
    "/api/v1/runs": _get("Crawl runs, newest first, with their live counts", [
        _q("topic", "topic"), _q("source", "source"), _q("trigger", "schedule, manual or revisit"),
        _q("status", "running, ok, failed, timeout or interrupted"),
        _q("limit", "1..1000 (50)", "integer"), _q("before", "a run id (keyset page)",
                                                  "integer")]),
    "/api/v1/runs/{run_id}": _get("One crawl run", [_p("run_id")]),
    "/api/v1/crawl": _post("Crawl now (daemon only): 202 with the runs started, 409 when "
                           "busy. Content-Type must be application/json.",
                           {"topic": "topic name (optional when one)",
                            "source": "source name (optional: every source)"},
                           json_only=True),
    "/api/v1/articles": _get("Flagged articles, newest first, keyset-paged (follow next)",
                             [*LIST_FILTERS, _q("limit", "1..300 (50)", "integer"),
                              _q("before", "the last article id of the previous page",
                                 "integer")]),
    "/api/v1/articles/{article_id}": _get("One article with its matches, candidates, "
                                          "original and copies", [_p("article_id")]),
    "/api/v1/articles/{article_id}/review": _post(
        "Mark an article reviewed, dismissed or open", {
            "status": "reviewed, dismissed or open", "note": "optional note",
            "with_copies": "1: its copies too"}, [_p("article_id")]),
    "/api/v1/articles/review": _post("Mark several articles", {
        "status": "reviewed, dismissed or open", "ids": "article ids (repeat the field)"}),
    "/api/v1/articles/{article_id}/match": _post("Confirm, reject or reopen a match", {
        "claim_id": "the claim", "decision": "confirm, reject or reopen"}, [_p("article_id")]),
    "/api/v1/candidates/{candidate_id}/promote": _post(
        "Promote a new-claim candidate to a claim (written to the topic's claims table)",
        {"new_id": "the new claim id", "text": "optional claim text"}, [_p("candidate_id")]),
    "/api/v1/candidates/{candidate_id}/decide": _post(
        "Reject or reopen a new-claim candidate", {"decision": "reject or reopen"},
        [_p("candidate_id")]),
    "/api/v1/undo": _post("Undo this session's last action (within 15 minutes)", {}),
    "/api/v1/claims": _get("Claims with their coverage", [
        _q("topic", "topic"), _q("after", "keyset: a claim row id", "integer"),
        _q("limit", "1..200", "integer")]),
    "/api/v1/claims/{claim_id}": _get("One claim's timeline: every article carrying it",
                                      [_p("claim_id", "string"), _q("topic", "topic")]),
    "/api/v1/search": _get("Full-text search over stored articles", [
        {**_q("q", "words, \"a phrase\", OR, -exclude"), "required": True},
        _q("topic", "topic"), _q("flag", "flag"), _q("claim", "claim id"),
        _q("outlet", "outlet"), _q("language", "language code"),
        _q("since", "24h, 7d or an ISO date"), _q("until", "7d or an ISO date"),
        _q("review", "open, reviewed or dismissed"), _q("offset", "0..10000", "integer")]),
    "/api/v1/export": _get("Download articles and their claim links", [
        _q("format", "csv (default) or jsonl"), *LIST_FILTERS,
        _q("ids", "comma-separated article ids")], "text/csv"),
    "/api/v1/session": _get("The session's CSRF token, for scripts using cookies"),
}


def document(app: Flask | None = None) -> dict[str, Any]:
    """The OpenAPI 3.0 document (``app`` is accepted for the server URL root)."""
    errors = {f"E{code}": {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}} for code, text in (
        ("400", "Bad request"), ("401", "Authentication needed"), ("403", "Forbidden"),
        ("404", "Not found"), ("409", "Conflict"))}
    return {
        "openapi": "3.0.3",
        "info": {"title": "claimwatch", "version": VERSION, "description": (
            "The review desk's JSON API. Without a token or accounts only loopback clients "
            "are answered; with a token send Authorization: Bearer TOKEN; with accounts, a "
            "user's API token (claimwatch users token NAME). The old paths (/api/health, "
            "/api/runs, /api/crawl, /articles.json, /article/ID.json, /claims.json, "
            "/claim/ID.json, /search.json, /runs.json, /session.json) are aliases.")},
        "servers": [{"url": "/"}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {
                "error": {"type": "string"}}, "required": ["error"]}},
            "responses": errors,
        },
        "security": [{"bearer": []}, {}],
    }
