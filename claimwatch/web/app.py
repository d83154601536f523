"""The app factory: one Flask app for the review pages and the JSON API.

Every response carries a Content-Security-Policy that allows no inline script (only
/static/review.js) and the usual hardening headers; every error (400-500, including a
bug in a view) becomes a short HTML page or a JSON ``{"error": ...}``, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Response, g, render_template, request
from flask.sessions import SecureCookieSessionInterface
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from claimwatch.cleaner import clean, is_http
from claimwatch.web import access
from claimwatch.web.errors import HTTPError
from claimwatch.web.helpers import (
    MAX_ID,
    Answer,
    fmt_dt,
    json_response,
    plural,
    quoted,
    short_title,
    url,
    wants_json,
)
from claimwatch.web.server import redact
from claimwatch.web.state import DaemonControl, Desk, SessionFactory, TriggerCrawl, desk
from config.models import Topic

logger = logging.getLogger(__name__)

PAGE_CSP = (  # script: only our own file (static/review.js), never inline
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
MAX_BODY = 1024 * 1024


def create_app(
    sessions: SessionFactory,
    topics: Iterable[Topic] | Mapping[str, Topic] = (),
    *,
    token: str | None = None,
    trigger_crawl: TriggerCrawl | None = None,
    crawl_unavailable: str | None = None,
    secret: bytes | None = None,
    control: DaemonControl | None = None,
) -> Flask:
    """The web app (a WSGI application).

    ``sessions`` makes SQLAlchemy sessions; ``topics`` are the loaded topic files (to
    promote claims and crawl now). ``token``: require it (bearer header, or ``?token=``
    once, then a cookie); without it only loopback clients are answered, unless named
    accounts exist. ``trigger_crawl(topic, source)`` starts a crawl for the "crawl now"
    buttons (it may raise :class:`CrawlRefused`); ``crawl_unavailable`` says why there is
    none. ``secret`` keys cookies and CSRF tokens (random per process). ``control``: the
    daemon, which adds ``/api/v1/health`` and ``POST /api/v1/crawl``.
    """
    from claimwatch.web.views import register

    app = Flask(__name__, static_folder=None)
    app.jinja_options = {**app.jinja_options, "finalize": _finalize}
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, SEND_FILE_MAX_AGE_DEFAULT=300,
                      TEMPLATES_AUTO_RELOAD=False, **SESSION_CONFIG)
    app.extensions["claimwatch"] = Desk(
        sessions, topics, token=token, trigger_crawl=trigger_crawl,
        crawl_unavailable=crawl_unavailable, secret=secret, control=control)
    app.secret_key = app.extensions["claimwatch"].secret  # signs the session cookie
    app.session_interface = _SessionCookies()
    app.jinja_env.autoescape = True  # every template, whatever its name
    app.jinja_env.globals.update(u=url, csrf_token=access.csrf_token, plural=plural)
    app.jinja_env.filters.update(dt=fmt_dt, short=short_title, quoted=quoted, pair=_pair)
    app.jinja_env.tests["http_url"] = is_http
    app.url_value_preprocessor(_no_huge_ids)
    app.before_request(_before)
    app.after_request(_after)
    app.context_processor(_page_context)
    app.register_error_handler(HTTPError, _http_error)
    app.register_error_handler(HTTPException, _werkzeug_error)
    app.register_error_handler(Exception, _internal_error)
    register(app)
    app.add_url_rule("/static/<name>", "static", _static)
    app.topics = app.extensions["claimwatch"].topics  # type: ignore[attr-defined]
    return app  # (the daemon updates app.topics in place when its topic files change)


#: Flask's signed session cookie carries Flask-WTF's CSRF token (nothing else): HttpOnly,
#: SameSite=Strict, Secure over https (_SessionCookies). A token stays valid for the
#: session, so a page left open on the desk all day can still post.
SESSION_CONFIG = {"SESSION_COOKIE_NAME": "cw_form", "SESSION_COOKIE_HTTPONLY": True,
                  "SESSION_COOKIE_SAMESITE": "Strict", "WTF_CSRF_FIELD_NAME": "csrf",
                  "WTF_CSRF_TIME_LIMIT": None}


class _SessionCookies(SecureCookieSessionInterface):
    """Flask's signed cookie session, marked Secure when the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


STATIC_TYPES = {"review.css": "text/css", "review.js": "text/javascript"}


def _static(name: str) -> Response:
    """The page's CSS and its one script (read whole: a few kB, no file handle left open)."""
    from importlib.resources import files

    if name not in STATIC_TYPES:
        raise HTTPError(404, f"no page at {request.path}")
    body = files("claimwatch.web").joinpath("static", name).read_bytes()
    response = Response(body, 200, content_type=STATIC_TYPES[name] + "; charset=utf-8")
    response.headers["Cache-Control"] = "no-cache"
    return response


def _finalize(value: Any) -> Any:
    """Every ``{{ value }}`` of every template: scraped text loses control, zero-width and
    bidi characters (claimwatch/cleaner.py) before autoescape; None shows as nothing."""
    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return clean(value)
    return value


def _pair(value: str, space: str = "") -> tuple[str, str]:
    """An option of a select box: (value, label)."""
    return value, value.replace(space, " ") if space else value


def _no_huge_ids(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """No stored id is bigger than a database integer: 404, not an overflow."""
    if values and any(isinstance(v, int) and v > MAX_ID for v in values.values()):
        raise HTTPError(404, f"no page at {request.path}")


def _before() -> Answer | None:
    answer = access.authorise()
    if answer is not None:
        return answer
    if request.routing_exception is not None:  # 404 or 405, after access is settled
        raise request.routing_exception
    if request.method in ("GET", "HEAD", "OPTIONS"):
        access.start_session()
    else:
        access.check_csrf(_view(request.url_rule.endpoint if request.url_rule else None))
    return None


def _view(endpoint: str | None) -> Any:
    from flask import current_app

    return current_app.view_functions.get(endpoint or "")


def _after(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    logger.info("%s %s %s", request.remote_addr,  # the access log, never with ?token=
                redact(f"{request.method} {request.full_path.rstrip('?')}"),
                response.status_code)
    return access.send_cookies(response)


def _page_context() -> dict[str, Any]:
    def flashes() -> list[tuple[str, str]]:
        return desk().pop_flashes(str(g.get("session_id") or ""))

    def undo() -> dict[str, Any] | None:
        if request.method not in ("GET", "HEAD"):
            return None
        return desk().pending_undo(str(g.get("session_id") or ""))

    return {"flashes": flashes, "pending_undo": undo, "user": g.get("user"),
            "here": request.full_path.rstrip("?")}


# -- errors ----------------------------------------------------------------------------------

REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
           415: "Unsupported Media Type", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}


def error_response(status: int, message: str, **extra: Any) -> Response:
    """JSON for scripts and the API, a short page for people."""
    if wants_json():
        return json_response({"error": message, **extra}, status)
    try:
        bare = status in (401, 403) or "session_id" not in g
        page = render_template("error_bare.html" if bare else "error.html", status=status,
                               message=message, reason=REASONS.get(status, "Error"))
    except Exception:  # noqa: BLE001 - the layout itself failed (e.g. the database)
        logger.exception("error page failed")
        page = f"<!DOCTYPE html><title>{status}</title><h1>{status}</h1>"
    return Response(page, status, mimetype="text/html")


def _http_error(exc: HTTPError) -> Response:
    return error_response(exc.status, exc.message, **exc.extra)


def _werkzeug_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    if isinstance(exc, MethodNotAllowed):
        allowed = sorted(set(exc.valid_methods or []) - {"HEAD", "OPTIONS"})
        response = error_response(405, f"use {' or '.join(allowed)} for {request.path}",
                                  allowed=allowed)
        response.headers["Allow"] = ", ".join(allowed)
        return response
    messages = {404: f"no page at {request.path}",
                413: f"request body over {MAX_BODY} bytes",
                400: "bad request"}
    return error_response(status, messages.get(status, REASONS.get(status, "error")))


def _internal_error(exc: Exception) -> Response:
    logger.error("%s %s failed", request.method, request.path, exc_info=exc)
    return error_response(500, "internal error; the log has the details")
