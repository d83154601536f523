"""Signing in and out with a named account (claimwatch/accounts.py), and the session's
CSRF token for scripts."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request

from claimwatch.web import access
from claimwatch.web.helpers import arg, field, json_response, safe_next, url
from claimwatch.web.state import desk

logger = logging.getLogger(__name__)

bp = Blueprint("accounts", __name__)


def _login_form(problem: str = "", name: str = "") -> Response:
    given = field("next") if request.method == "POST" else arg("next")
    page = render_template("login.html", problem=problem, name=name,
                           next_url=safe_next(given, "/"))
    status = 200 if not problem else 401 if "wrong" in problem else 429
    return Response(page, status, mimetype="text/html")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    from claimwatch.accounts import check_password

    if request.method == "GET":
        if not access._accounts_on():
            return redirect(url("/"), 303)
        return _login_form()
    name = field("name")[:80]
    key = f"{request.remote_addr or ''}|{name.lower()}"
    state = desk()
    if not state.login_allowed(key):
        return _login_form("too many failed attempts: wait a minute", name)
    with state.write() as session:
        user = check_password(session, name, field("password"))
    if user is None:
        state.login_failed(key)
        return _login_form("wrong name or password", name)
    access.sign_in(user.id)
    logger.info("web: %s signed in", user.name)
    return redirect(request.script_root + safe_next(field("next"), "/"), 303)


@bp.post("/logout")
def logout() -> Any:
    access.sign_in(None)
    return redirect(url("/login"), 303)


@bp.get("/session.json")
@bp.get("/api/v1/session", endpoint="session_v1")
def session_json() -> Response:
    return json_response({"csrf": access.csrf_token()})
