"""Who may use the app, in one place for pages and the JSON API.

* A bearer ``Authorization`` header with the app's token, or a named user's API token
  (claimwatch/accounts.py), is enough for anything; such requests need no CSRF token
  (a browser never sends that header on its own).
* Once a named account exists, everybody else signs in (``/login``): a signed
  ``cw_user`` cookie, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over https.
* Without accounts and without a token, only loopback clients naming a loopback host
  are answered (no DNS rebinding); with a token, ``?token=TOKEN`` once sets a cookie.
* Every POST needs a same-origin ``Origin`` (when sent) and the CSRF token (Flask-WTF's,
  tied to Flask's signed session cookie ``cw_form``) in the ``csrf`` field or the
  ``X-CSRF-Token`` header;
  the daemon's JSON-only POSTs (``/api/crawl``) instead need ``Content-Type:
  application/json``, which another origin cannot send without a CORS preflight.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Response, g, redirect, request
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import Answer, field, full_path, url, wants_json
from claimwatch.web.server import is_loopback
from claimwatch.web.state import desk

logger = logging.getLogger(__name__)

SESSION_COOKIE = "cw_session"
AUTH_COOKIE = "cw_auth"
USER_COOKIE = "cw_user"  # a signed-in account: "<user id>.<expiry>.<signature>"
LOGIN_HOURS = 12
OPEN_ENDPOINTS = ("accounts.login", "static")  # reachable before signing in
HEALTH_ENDPOINTS = ("api.health", "api.health_v1")  # asks nothing of the database
JSON_POST_ATTR = "claimwatch_json_post"


def sign(purpose: str, value: str) -> str:
    return hmac.new(desk().secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def set_cookie(name: str, value: str, samesite: str, max_age: int | None = None) -> None:
    """Queue a cookie for this response (app.after_request sends it)."""
    g.setdefault("cookies", []).append((name, value, samesite, max_age))


def send_cookies(response: Response) -> Response:
    secure = request.scheme == "https"
    for name, value, samesite, max_age in g.get("cookies", []):
        response.set_cookie(name, value, max_age=max_age, path=request.script_root or "/",
                            httponly=True, samesite=samesite, secure=secure)
    return response


def json_post(view: Any) -> Any:
    """Mark a view as a JSON-only POST of the API (no form, so no CSRF field)."""
    setattr(view, JSON_POST_ATTR, True)
    return view


# -- the checks ------------------------------------------------------------------------------

def authorise() -> Answer | None:
    """app.before_request: who is asking, or an answer that ends the request."""
    auth = request.headers.get("Authorization", "")
    bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    state = desk()
    if bearer and state.token and _same(bearer, state.token):
        g.bearer, g.actor = True, "token"
        return None
    if (bearer or request.endpoint not in HEALTH_ENDPOINTS) and _accounts_on():
        return _authorise_account(bearer)
    if state.token is None:
        remote = request.remote_addr or "127.0.0.1"
        host = request.headers.get("Host", "")
        host_name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not is_loopback(remote):
            raise HTTPError(403, "this app only answers the machine it runs on; serve it "
                                 "with --token, or add accounts (claimwatch users add), to "
                                 "open it from elsewhere")
        if host and not is_loopback(host_name):
            raise HTTPError(403, f"unexpected Host {host!r}: open the page as "
                                 "http://127.0.0.1:PORT/")
        g.actor = "local"
        return None
    g.actor = "token"
    cookie = request.cookies.get(AUTH_COOKIE, "")
    if cookie and _same(cookie, sign("auth", state.token)):
        return None
    given = request.args.get("token", "")
    if given and _same(given, state.token):
        set_cookie(AUTH_COOKIE, sign("auth", state.token), "Lax")
        if request.method in ("GET", "HEAD"):  # drop the token from the address bar
            rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
            return redirect(request.script_root + request.path
                            + ("?" + urlencode(rest) if rest else ""), 303)
        return None
    raise HTTPError(401, "this app needs its access token: open it once as "
                         "http://HOST:PORT/?token=TOKEN, or send Authorization: Bearer TOKEN")


def _accounts_on() -> bool:
    """Named accounts exist: everybody signs in (checked per request: one indexed row)."""
    from claimwatch.accounts import has_accounts

    try:
        with desk().read() as session:
            return has_accounts(session)
    except Exception as exc:  # noqa: BLE001 - the database is down: say so
        logger.warning("accounts check failed: %s", exc)
        raise HTTPError(503, "the database is not reachable; see /api/health") from exc


def _authorise_account(bearer: str) -> Answer | None:
    """With accounts: a signed-in user, or a user's API token (Bearer)."""
    from claimwatch.accounts import account_for_token

    if bearer:
        with desk().write() as session:
            user = account_for_token(session, bearer)
        if user is None:
            raise HTTPError(401, "unknown or revoked API token")
        g.bearer = True
    else:
        user = signed_in()
    if user is not None:
        g.user, g.actor = user, user.name
        return None
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if request.method in ("GET", "HEAD") and not wants_json():
        return redirect(url("/login", next=full_path()), 303)
    raise HTTPError(401, "sign in first (/login), or send Authorization: Bearer API_TOKEN "
                         "(claimwatch users token NAME)")


def signed_in() -> Any:
    """The account of a valid ``cw_user`` cookie, or None."""
    from claimwatch.accounts import account

    parts = request.cookies.get(USER_COOKIE, "").split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    if not _same(parts[2], sign("user", f"{parts[0]}.{parts[1]}")):
        return None
    if int(parts[1]) < datetime.now(UTC).timestamp() or len(parts[0]) > 18:
        return None
    with desk().read() as session:
        return account(session, int(parts[0]))


def sign_in(user_id: int | None) -> None:
    """Set (or, with None, clear) the signed account cookie, with a new session id."""
    if user_id is None:
        set_cookie(USER_COOKIE, "", "Lax", 0)
        return
    expiry = int(datetime.now(UTC).timestamp()) + LOGIN_HOURS * 3600
    value = f"{user_id}.{expiry}"
    set_cookie(SESSION_COOKIE, secrets.token_urlsafe(24), "Strict")  # no session fixation
    set_cookie(USER_COOKIE, f"{value}.{sign('user', value)}", "Lax", LOGIN_HOURS * 3600)


def require_admin() -> None:
    user = g.get("user")
    if user is not None and not user.is_admin:
        raise HTTPError(403, f"{user.name} is a reviewer: this needs an admin account")


def start_session() -> None:
    """GET: the session id (made on first visit), which keys CSRF, flashes and undo."""
    sid = request.cookies.get(SESSION_COOKIE, "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", sid):
        sid = secrets.token_urlsafe(24)
        set_cookie(SESSION_COOKIE, sid, "Strict")
    g.session_id = sid


def csrf_token() -> str:
    """The form's CSRF token: Flask-WTF's, signed with the app's secret and tied to the
    raw token in the browser's signed session cookie (app.py configures both)."""
    return generate_csrf()


def check_csrf(view: Any) -> None:
    """POST: same origin and the session's CSRF token (the one place this is checked)."""
    if g.get("bearer"):
        return  # a bearer header is never sent by a browser on its own: no CSRF
    origin = request.headers.get("Origin", "")
    if origin and origin != "null":
        if urlsplit(origin).netloc.lower() != request.headers.get("Host", "").lower():
            raise HTTPError(403, "cross-origin request refused")
    sid = request.cookies.get(SESSION_COOKIE, "")
    g.session_id = sid
    if getattr(view, JSON_POST_ATTR, False):
        if request.mimetype != "application/json":
            raise HTTPError(415, "send the request body as Content-Type: application/json")
        return
    given = field("csrf") or request.headers.get("X-CSRF-Token", "")
    try:
        validate_csrf(given)
    except (ValidationError, UnicodeError):
        raise HTTPError(403, "the form's security token is missing or stale: reload the "
                             "page and try again") from None
