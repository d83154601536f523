"""The review page: a small WSGI application, server-rendered, no framework, no script.

``make_app(sessions, topics)`` returns the application; ``claimwatch serve`` runs it on
its own and the daemon mounts it next to its JSON API (every route here is outside
``/api/``). Pages:

* ``/``: flagged articles with filters (topic, review status, flag, claim, since), each
  with buttons to mark it reviewed or dismissed;
* ``/article/ID``: one article with its matched claims (confirm/reject), conflicting
  figures, new-claim candidates (promote to a claim, or reject), its original and its
  copies, its text with the matched sentences highlighted, and the review form;
* ``/claims``: the claims table with per-claim coverage (articles, outlets, conflicts,
  first and last seen);
* ``/sources``: the configured sources with a "crawl now" button each, and recent runs;
* ``/digest?format=html|text|md|json|atom``: the digest, as ``claimwatch digest`` prints it.

JSON: ``/articles.json``, ``/article/ID.json``, ``/claims.json``, ``/runs.json``,
``/session.json`` (a CSRF token for scripts). Every POST answers with a 303 redirect,
or JSON when the request sends ``Accept: application/json``.

Security: every scraped string is escaped (``html.escape``) and stripped of control and
bidi characters; only ``http(s)`` URLs become links. POSTs need a CSRF token (an HMAC of
the session cookie under a per-process secret) in the ``csrf`` form field or the
``X-CSRF-Token`` header, and a same-origin ``Origin`` when the browser sends one. Pages
carry a Content-Security-Policy without any script. Without an access ``token`` the app
only answers loopback clients that name a loopback host (no DNS rebinding); with one,
every request needs ``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` once, which sets
a cookie. :func:`check_binding` refuses a non-loopback address without a token.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import socket
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from claimwatch.accounts import record
from claimwatch.api import (  # one definition for the API and the page
    IDLE_TIMEOUT,
    QuietErrorsMixin,
    is_loopback,
    redact,
)
from claimwatch.digest import (
    FLAGS,
    DigestError,
    article_entry,
    build_digest,
    entries,
    list_query,
    parse_since,
)
from claimwatch.render import FLAG_LABELS, FORMATS, render
from claimwatch.review import (
    ReviewError,
    claim_coverage,
    decide_candidate,
    mark_article,
    promote_candidate,
    recent_runs,
    review_match,
)
from claimwatch.web_desk import DESK_CSS, DeskViews
from config.models import Topic
from storage.models import Article, ArticleClaim, KnownClaim, SourceState

logger = logging.getLogger(__name__)

__all__ = [
    "CrawlRefused",
    "ReviewApp",
    "WebConfigError",
    "check_binding",
    "is_loopback",
    "make_app",
    "make_server",
    "parse_listen",
]

DEFAULT_LISTEN = "127.0.0.1:8750"
SESSION_COOKIE = "cw_session"
AUTH_COOKIE = "cw_auth"
USER_COOKIE = "cw_user"  # a signed-in account: "<user id>.<expiry>.<signature>"
LOGIN_HOURS = 12
UNDO_MINUTES = 15  # the last action of a session can be undone for this long
OPEN_PATHS = ("/login", "/static/review.css")  # reachable before signing in
MAX_BODY = 256 * 1024
MAX_LIST = 300  # the most articles one list page or /articles.json request returns
PAGE_SIZE = 50  # articles per list page (newest first; "Older articles" pages on)
MAX_COUNT = 1000  # a list counts its articles up to this many ("more than 1,000")
MAX_LIST_ROUNDS = 20
CLAIMS_PAGE = 200  # claims per claims page
MIN_TOKEN_LENGTH = 16
MAX_ID = 2**63 - 1  # the biggest id a database integer column holds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STATUSES = ("open", "reviewed", "dismissed", "all")

SessionFactory = Callable[[], Session]
TriggerCrawl = Callable[[str, str], object]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class ListPage:
    """One page of the article list."""

    articles: list[dict[str, Any]]
    problem: str
    next: str | None  # the id to pass as ``before`` for the next (older) page
    total: int | None  # articles matching the filters, counted up to MAX_COUNT + 1

PAGE_CSP = (  # script: only our own file (static/review.js), never inline
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The HTML digest is an email document: inline styles, nothing else.
DIGEST_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]


class WebConfigError(ValueError):
    """The review page cannot be served as asked (bad --listen, missing token)."""


class CrawlRefused(Exception):
    """Raised by a ``trigger_crawl`` callable that will not start a crawl; the message
    is shown to the user (e.g. "a crawl of this source is already running")."""


# --------------------------------------------------------------------------- binding


def parse_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:8750``, ``[::1]:8750``, ``0.0.0.0:8750`` or a bare port (loopback)."""
    text = value.strip()
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    elif text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise WebConfigError(f"--listen {value!r}: write an IPv6 address as [::1]:8750")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise WebConfigError(f"--listen {value!r} is not HOST:PORT, e.g. 127.0.0.1:8750")
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise WebConfigError(f"--listen {value!r}: {port_text!r} is not a port number")
    return host, int(port_text)


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a long enough access token."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise WebConfigError(
            f"the access token is {len(token)} characters long; use at least "
            f"{MIN_TOKEN_LENGTH}, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    if not is_loopback(host) and not token:
        raise WebConfigError(
            f"refusing to serve the review page on {host}, which is not a loopback address, "
            "without an access token: pass --token (or set CLAIMWATCH_WEB_TOKEN), or listen "
            "on 127.0.0.1"
        )


# --------------------------------------------------------------------------- text helpers

_UNSAFE_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
    "\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
    "\ud800-\udfff\ufffe\uffff]"
)
_HTTP_URL = re.compile(r"https?://[^\s\"'<>\\]+", re.IGNORECASE)
_SLUG = re.compile(r"[^a-z0-9]+")


def clean(value: Any) -> str:
    """Scraped value -> text without control, zero-width or bidi-override characters."""
    if value is None:
        return ""
    return _UNSAFE_CHARS.sub("", str(value))


def h(value: Any) -> str:
    """Escape for HTML text and quoted attribute values."""
    return html.escape(clean(value), quote=True)


def is_http(url: Any) -> bool:
    if not isinstance(url, str) or not _HTTP_URL.fullmatch(url):
        return False
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:
        return False


def external_link(label: str, url: Any) -> str:
    if is_http(url):
        return f'<a href="{h(url)}" rel="noopener noreferrer nofollow">{h(label)}</a>'
    return f'<span class="muted">{h(label)}</span>'


def fmt_dt(value: Any, missing: str = "—") -> str:
    if value is None or value == "":
        return missing
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return clean(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def quoted(sentence: Any) -> str:
    """A sentence in curly quotes (unless it is quoted already), escaped."""
    text = clean(sentence).strip()
    if text[:1] in "\"“‘'" and text[-1:] in "\"”’'":
        return f'<span class="quote">{h(text)}</span>'
    return f'<span class="quote">&ldquo;{h(text)}&rdquo;</span>'


def suggest_claim_id(sentence: str, words: int = 6) -> str:
    folded = unicodedata.normalize("NFKD", sentence.lower()).encode("ascii", "ignore").decode()
    ascii_text = re.sub(r"(?<=\d),(?=\d{3})", "", folded)
    parts = [p for p in _SLUG.split(ascii_text) if p][:words]
    return "-".join(parts)[:80] or "new-claim"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


# --------------------------------------------------------------------------- request/response


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_REASONS = {
    200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
    415: "Unsupported Media Type", 500: "Internal Server Error", 503: "Service Unavailable",
}


@dataclass
class Request:
    environ: dict[str, Any]
    method: str = ""
    path: str = "/"
    script: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    _form: dict[str, list[str]] | None = None

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Request:
        cookies: dict[str, str] = {}
        raw = environ.get("HTTP_COOKIE", "")
        if raw:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(raw)
            except CookieError:
                pass
            cookies = {k: m.value for k, m in jar.items()}
        return cls(
            environ=environ,
            method=environ.get("REQUEST_METHOD", "GET").upper(),
            path=environ.get("PATH_INFO", "") or "/",
            script=environ.get("SCRIPT_NAME", "").rstrip("/"),
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            cookies=cookies,
        )

    def header(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            return str(self.environ.get(key, ""))
        return str(self.environ.get("HTTP_" + key, ""))

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0].strip() if values else default

    @property
    def form(self) -> dict[str, list[str]]:
        if self._form is None:
            self._form = self._read_form()
        return self._form

    def field(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0] if values else default

    def _read_form(self) -> dict[str, list[str]]:
        try:
            length = int(self.header("Content-Length") or 0)
        except ValueError as exc:
            raise HTTPError(400, "bad Content-Length") from exc
        if length > MAX_BODY:
            raise HTTPError(413, f"request body over {MAX_BODY} bytes")
        body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        ctype = self.header("Content-Type").split(";")[0].strip().lower()
        text = body.decode("utf-8", "replace")
        if ctype in ("", "application/x-www-form-urlencoded"):
            return parse_qs(text, keep_blank_values=True)
        if ctype == "application/json":
            try:
                data = json.loads(text or "{}")
            except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
                raise HTTPError(400, "the body is not valid JSON") from exc
            if not isinstance(data, dict):
                raise HTTPError(400, "the JSON body must be an object")
            return {str(k): ["" if v is None else str(v)] for k, v in data.items()}
        raise HTTPError(415, "send application/x-www-form-urlencoded or application/json")

    @property
    def wants_json(self) -> bool:
        return "application/json" in self.header("Accept")

    def url(self, path: str, **params: str) -> str:
        params = {k: v for k, v in params.items() if v not in ("", None)}
        return self.script + path + (("?" + urlencode(params)) if params else "")

    @property
    def full_path(self) -> str:
        qs = self.environ.get("QUERY_STRING", "")
        return self.path + ("?" + qs if qs else "")


@dataclass
class Response:
    body: bytes | str = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    csp: str = PAGE_CSP

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(json.dumps(data, ensure_ascii=False, indent=1, default=str), status,
                   "application/json; charset=utf-8")

    @classmethod
    def redirect(cls, location: str) -> Response:
        return cls(b"", 303, "text/plain; charset=utf-8", [("Location", location)])


# --------------------------------------------------------------------------- the app


Route = tuple[str, re.Pattern[str], Callable[..., Response]]


class ReviewApp(DeskViews):
    """The review page as a WSGI callable. Build it with :func:`make_app`."""

    def __init__(
        self,
        sessions: SessionFactory,
        topics: Iterable[Topic] | Mapping[str, Topic] = (),
        *,
        token: str | None = None,
        trigger_crawl: TriggerCrawl | None = None,
        crawl_unavailable: str | None = None,
        secret: bytes | None = None,
    ) -> None:
        self.sessions = sessions
        topic_list = list(topics.values()) if isinstance(topics, Mapping) else list(topics)
        self.topics: dict[str, Topic] = {t.name: t for t in topic_list}
        self.token = token or None
        self.trigger_crawl = trigger_crawl
        self.crawl_unavailable = crawl_unavailable or (
            "Crawl now is not available here: run `claimwatch daemon`, or "
            "`claimwatch crawl TOPIC_FILE --source NAME` in a terminal."
        )
        self.secret = secret or secrets.token_bytes(32)
        self._flashes: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
        # The last undoable action per session, and recent failed sign-ins per name+address.
        self._undo: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self.routes: list[Route] = [
            ("GET", re.compile(r"/"), self.page_articles),
            ("GET", re.compile(r"/article/(\d+)"), self.page_article),
            ("GET", re.compile(r"/claims"), self.page_claims),
            ("GET", re.compile(r"/sources"), self.page_sources),
            ("GET", re.compile(r"/digest"), self.page_digest),
            ("GET", re.compile(r"/articles\.json"), self.json_articles),
            ("GET", re.compile(r"/article/(\d+)\.json"), self.json_article),
            ("GET", re.compile(r"/claims\.json"), self.json_claims),
            ("GET", re.compile(r"/runs\.json"), self.json_runs),
            ("GET", re.compile(r"/session\.json"), self.json_session),
            ("GET", re.compile(r"/static/review\.css"), self.static_css),
            ("GET", re.compile(r"/login"), self.page_login),
            ("POST", re.compile(r"/login"), self.post_login),
            ("POST", re.compile(r"/articles/review"), self.post_bulk_review),
            ("POST", re.compile(r"/undo"), self.post_undo),
            ("GET", re.compile(r"/static/review\.js"), self.static_js),
            ("POST", re.compile(r"/logout"), self.post_logout),
            ("GET", re.compile(r"/search"), self.page_search),
            ("GET", re.compile(r"/search\.json"), self.json_search),
            ("GET", re.compile(r"/export"), self.export_download),
            ("GET", re.compile(r"/claim/([^/]+)\.json"), self.json_claim),
            ("GET", re.compile(r"/claim/([^/]+)"), self.page_claim),
            ("GET", re.compile(r"/topic/([^/]+)"), self.page_topic),
            ("POST", re.compile(r"/article/(\d+)/review"), self.post_review),
            ("POST", re.compile(r"/article/(\d+)/match"), self.post_match),
            ("POST", re.compile(r"/candidate/(\d+)/promote"), self.post_promote),
            ("POST", re.compile(r"/candidate/(\d+)/decide"), self.post_candidate),
            ("POST", re.compile(r"/crawl"), self.post_crawl),
        ]

    # -- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        req = Request.from_environ(environ)
        set_cookies: list[str] = []
        try:
            response = self._handle(req, set_cookies)
        except HTTPError as exc:
            response = self._error(req, exc.status, exc.message)
        except Exception:  # the edge of the app: log it, never show a traceback
            logger.exception("review page: %s %s failed", req.method, req.path)
            response = self._error(req, 500, "internal error; the log has the details")
        return self._send(req, response, set_cookies, start_response)

    @staticmethod
    def _send(req: Request, response: Response, set_cookies: list[str],
              start_response: Callable[..., Any]) -> list[bytes]:
        if not isinstance(response.body, str | bytes):  # a stream (an export download)
            headers = [("Content-Type", response.content_type), ("Cache-Control", "no-store"),
                       ("Content-Security-Policy", response.csp), *SECURITY_HEADERS,
                       *response.headers, *[("Set-Cookie", c) for c in set_cookies]]
            start_response(f"{response.status} {_REASONS.get(response.status, 'Error')}",
                           headers)
            return [b""] if req.method == "HEAD" else response.body  # type: ignore[return-value]
        body = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
        headers = [("Content-Type", response.content_type),
                   ("Content-Length", str(len(body))),
                   ("Cache-Control", "no-store"),
                   ("Content-Security-Policy", response.csp),
                   *SECURITY_HEADERS, *response.headers]
        headers += [("Set-Cookie", c) for c in set_cookies]
        start_response(f"{response.status} {_REASONS.get(response.status, 'Error')}", headers)
        return [b""] if req.method == "HEAD" else [body]

    def _handle(self, req: Request, set_cookies: list[str]) -> Response:
        denied = self._authorise(req, set_cookies)
        if denied is not None:
            return denied
        method = "GET" if req.method == "HEAD" else req.method
        allowed: list[str] = []
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            if any(len(g) > 19 or (len(g) == 19 and int(g) > MAX_ID)
                   for g in match.groups() if g and g.isdigit()):
                raise HTTPError(404, f"no page at {req.path}")  # no stored id is that big
            if method == "GET":
                req.environ["claimwatch.session_id"] = self._session_id(req, set_cookies)
            else:
                self._check_csrf(req)
            return handler(req, *match.groups())
        if allowed:
            raise HTTPError(405, f"use {' or '.join(allowed)} for {req.path}")
        raise HTTPError(404, f"no page at {req.path}")

    # -- access control ------------------------------------------------------------------------

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self.secret, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def _cookie(self, req: Request, name: str, value: str, samesite: str) -> str:
        return f"{name}={value}; Path={req.script or '/'}; HttpOnly; SameSite={samesite}"

    def _accounts_on(self) -> bool:
        """Named accounts exist: everybody signs in (checked per request: one indexed row)."""
        from claimwatch.accounts import has_accounts

        with self._read() as session:
            return has_accounts(session)

    def _signed_in(self, req: Request) -> Any:
        """The account of a valid ``cw_user`` cookie, or None."""
        from claimwatch.accounts import account

        value = req.cookies.get(USER_COOKIE, "")
        parts = value.split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            return None
        if not hmac.compare_digest(parts[2].encode("utf-8", "replace"),
                                   self._sign("user", f"{parts[0]}.{parts[1]}").encode()):
            return None
        if int(parts[1]) < datetime.now(UTC).timestamp() or len(parts[0]) > 18:
            return None
        with self._read() as session:
            return account(session, int(parts[0]))

    def _user_cookie(self, req: Request, user_id: int | None) -> str:
        secure = "; Secure" if req.environ.get("wsgi.url_scheme") == "https" else ""
        if user_id is None:
            return (f"{USER_COOKIE}=; Path={req.script or '/'}; Max-Age=0; HttpOnly; "
                    f"SameSite=Lax{secure}")
        expiry = int(datetime.now(UTC).timestamp()) + LOGIN_HOURS * 3600
        value = f"{user_id}.{expiry}"
        return (f"{USER_COOKIE}={value}.{self._sign('user', value)}; Path={req.script or '/'}; "
                f"Max-Age={LOGIN_HOURS * 3600}; HttpOnly; SameSite=Lax{secure}")

    def _authorise(self, req: Request, set_cookies: list[str]) -> Response | None:
        auth = req.header("Authorization")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if bearer and self.token and hmac.compare_digest(
                bearer.encode("utf-8", "replace"), self.token.encode()):
            req.environ["claimwatch.bearer"] = True
            req.environ["claimwatch.actor"] = "token"
            return None
        if self._accounts_on():
            return self._authorise_account(req, bearer)
        if self.token is None:
            remote = str(req.environ.get("REMOTE_ADDR") or "127.0.0.1")
            host = req.header("Host") or str(req.environ.get("SERVER_NAME", ""))
            host_name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if not is_loopback(remote):
                raise HTTPError(403, "this review page only answers the machine it runs on; "
                                     "serve it with --token, or add accounts (claimwatch users "
                                     "add), to open it from elsewhere")
            if host and not is_loopback(host_name):
                raise HTTPError(403, f"unexpected Host {host!r}: open the page as "
                                     "http://127.0.0.1:PORT/")
            req.environ["claimwatch.actor"] = "local"
            return None
        req.environ["claimwatch.actor"] = "token"
        cookie = req.cookies.get(AUTH_COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode("utf-8", "replace"),
                                          self._sign("auth", self.token).encode()):
            return None
        given = req.arg("token")
        if given and hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode()):
            set_cookies.append(self._cookie(req, AUTH_COOKIE, self._sign("auth", self.token),
                                            "Lax"))
            if req.method in ("GET", "HEAD"):  # drop the token from the address bar
                rest = {k: v for k, v in req.query.items() if k != "token"}
                return Response.redirect(
                    req.script + req.path + ("?" + urlencode(rest, doseq=True) if rest else "")
                )
            return None
        raise HTTPError(401, "this review page needs its access token: open it once as "
                             "http://HOST:PORT/?token=TOKEN, or send Authorization: Bearer TOKEN")

    def _authorise_account(self, req: Request, bearer: str) -> Response | None:
        """With accounts: a signed-in user, or a user's API token (Bearer)."""
        from claimwatch.accounts import account_for_token

        if bearer:
            with self._write() as session:
                user = account_for_token(session, bearer)
            if user is None:
                raise HTTPError(401, "unknown or revoked API token")
            req.environ["claimwatch.bearer"] = True
        else:
            user = self._signed_in(req)
        if user is not None:
            req.environ["claimwatch.user"] = user
            req.environ["claimwatch.actor"] = user.name
            return None
        if req.path in OPEN_PATHS:
            return None
        if req.method in ("GET", "HEAD") and not (req.wants_json or req.path.endswith(".json")):
            return Response.redirect(req.url("/login", next=req.full_path))
        raise HTTPError(401, "sign in first (/login), or send Authorization: Bearer API_TOKEN "
                             "(claimwatch users token NAME)")

    def _actor(self, req: Request) -> str:
        return str(req.environ.get("claimwatch.actor") or "unknown")

    def _require_admin(self, req: Request) -> None:
        user = req.environ.get("claimwatch.user")
        if user is not None and not user.is_admin:
            raise HTTPError(403, f"{user.name} is a reviewer: this needs an admin account")

    def _session_id(self, req: Request, set_cookies: list[str]) -> str:
        sid = req.cookies.get(SESSION_COOKIE, "")
        if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", sid):
            sid = secrets.token_urlsafe(24)
            set_cookies.append(self._cookie(req, SESSION_COOKIE, sid, "Strict"))
        return sid

    def csrf_token(self, req: Request) -> str:
        return self._sign("csrf", req.environ.get("claimwatch.session_id", ""))

    def _check_csrf(self, req: Request) -> None:
        if req.environ.get("claimwatch.bearer"):
            return  # a bearer header is never sent by a browser on its own: no CSRF
        origin = req.header("Origin")
        if origin and origin != "null":
            host = req.header("Host")
            if urlsplit(origin).netloc.lower() != host.lower():
                raise HTTPError(403, "cross-origin request refused")
        sid = req.cookies.get(SESSION_COOKIE, "")
        given = req.field("csrf") or req.header("X-CSRF-Token")
        if not sid or not given or not hmac.compare_digest(
            given.encode("utf-8", "replace"), self._sign("csrf", sid).encode()
        ):
            raise HTTPError(403, "the form's security token is missing or stale: reload the "
                                 "page and try again")
        req.environ["claimwatch.session_id"] = sid

    # -- flash messages ------------------------------------------------------------------------

    def _flash(self, req: Request, kind: str, message: str) -> None:
        sid = req.environ.get("claimwatch.session_id", "")
        with self._lock:
            self._flashes.setdefault(sid, []).append((kind, message))
            self._flashes.move_to_end(sid)
            while len(self._flashes) > 1000:
                self._flashes.popitem(last=False)

    def _pop_flashes(self, req: Request) -> list[tuple[str, str]]:
        with self._lock:
            return self._flashes.pop(req.environ.get("claimwatch.session_id", ""), [])

    # -- database ------------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            yield session

    def _topic_names(self, session: Session) -> list[str]:
        # A loose index scan (one index probe per topic), not DISTINCT over every article.
        stored: set[str] = set()
        topic = session.scalar(select(func.min(Article.topic)))
        while topic is not None and len(stored) < 1000:
            stored.add(topic)
            topic = session.scalar(select(func.min(Article.topic)).where(Article.topic > topic))
        return sorted(set(self.topics) | stored)

    # -- layout --------------------------------------------------------------------------------

    def _layout(self, req: Request, title: str, body: str, active: str = "") -> Response:
        nav = [("articles", "/", "Articles"), ("search", "/search", "Search"),
               ("claims", "/claims", "Claims"),
               ("sources", "/sources", "Sources &amp; runs"), ("digest", "/digest", "Digest")]
        links = "".join(
            f'<a href="{h(req.url(path))}"{" class=active" if key == active else ""}>{label}</a>'
            for key, path, label in nav
        )
        flashes = "".join(
            f'<p class="flash flash-{h(kind)}" role="status">{h(message)}</p>'
            for kind, message in self._pop_flashes(req)
        ) + (self._undo_bar(req) if req.method in ("GET", "HEAD") else "")
        user = req.environ.get("claimwatch.user")
        if user is not None:
            links += (
                f'<span class="who">{h(user.name)} ({h(user.role)})</span>'
                + self._form(req, "/logout", '<button type="submit" class="muted-btn">'
                             "Sign out</button>", cls="inline signout", next_url="/"))
        page = (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{h(title)} · claimwatch</title>\n"
            f'<link rel="stylesheet" href="{h(req.url("/static/review.css"))}">\n'
            f'<script src="{h(req.url("/static/review.js"))}" defer></script>\n'
            f'</head>\n<body data-undo-url="{h(req.url("/undo"))}">\n'
            f'<header><span class="brand">claimwatch</span><nav>{links}</nav></header>\n'
            f"<main>\n{flashes}{body}\n</main>\n</body>\n</html>\n"
        )
        return Response(page)

    def _error(self, req: Request, status: int, message: str) -> Response:
        if req.wants_json or req.path.endswith(".json"):
            return Response.json({"error": message}, status)
        body = f"<h1>{status} {h(_REASONS.get(status, 'Error'))}</h1><p>{h(message)}</p>"
        if status not in (401, 403):
            body += f'<p><a href="{h(req.url("/"))}">Back to the articles</a></p>'
        page = self._layout(req, str(status), body) if status not in (401, 403) else Response(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{status}</title></head><body>{body}</body></html>"
        )
        page.status = status
        return page

    def _csrf_field(self, req: Request) -> str:
        return f'<input type="hidden" name="csrf" value="{h(self.csrf_token(req))}">'

    def _form(self, req: Request, action: str, inner: str, cls: str = "inline",
              next_url: str | None = None) -> str:
        next_url = next_url if next_url is not None else req.full_path
        return (
            f'<form method="post" action="{h(req.url(action))}" class="{cls}">'
            f"{self._csrf_field(req)}"
            f'<input type="hidden" name="next" value="{h(next_url)}">{inner}</form>'
        )

    def _review_buttons(self, req: Request, article: Mapping[str, Any], copies: int = 0) -> str:
        status = article["review"]["status"]
        aid = article["id"]
        title = h(_short_title(article.get("title") or article.get("url")))
        buttons = []
        if status != "reviewed":
            buttons.append('<button name="status" value="reviewed" class="ok" '
                           f'data-action="reviewed" data-article="{aid}" '
                           f'aria-label="Mark #{aid} reviewed: {title}">Mark reviewed</button>')
        if status != "dismissed":
            buttons.append('<button name="status" value="dismissed" class="muted-btn" '
                           f'data-action="dismissed" data-article="{aid}" '
                           f'aria-label="Dismiss #{aid}: {title}">Dismiss</button>')
        if status != "open":
            buttons.append(f'<button name="status" value="open" data-action="open" '
                           f'data-article="{aid}" aria-label="Reopen #{aid}: {title}">'
                           "Reopen</button>")
        inner = "".join(buttons)
        if copies:
            inner += ('<label class="small"><input type="checkbox" name="with_copies" value="1">'
                      f" and its {_plural(copies, 'copy', 'copies')}</label>")
        return self._form(req, f"/article/{aid}/review", inner)

    # -- pages: articles -----------------------------------------------------------------------

    def _filters(self, req: Request) -> dict[str, str]:
        status = req.arg("status", "open")
        flag = req.arg("flag")
        return {
            "topic": req.arg("topic"),
            "status": status if status in STATUSES else "open",
            "flag": flag if flag in FLAGS else "",
            "claim": req.arg("claim"),
            "since": req.arg("since"),
        }

    def _list(self, session: Session, filters: Mapping[str, str], before: str = "",
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
        query = list_query(
            topic=filters["topic"] or None, since=since,
            status=None if filters["status"] == "all" else filters["status"],
            flag=flag, claim=filters["claim"] or None,
        )
        key = None
        if before.isdigit():
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
            total = len(shown)
        elif flag in ("conflict", "new_claim_candidate") or filters["claim"]:
            total = None  # counting them would read every match of the topic: not counted
        else:
            total = int(session.scalar(
                select(func.count()).select_from(
                    query.with_only_columns(Article.id).limit(MAX_COUNT + 1).subquery())) or 0)
        return ListPage(shown, problem, next_id, total)

    def page_articles(self, req: Request) -> Response:
        filters = self._filters(req)
        before = req.arg("before")
        with self._read() as session:
            listed = self._list(session, filters, before)
            topic_names = self._topic_names(session)
            ids = [a["id"] for a in listed.articles]
            copies = dict(
                session.execute(
                    select(Article.duplicate_of_id, func.count(Article.id))
                    .where(Article.duplicate_of_id.in_(ids))
                    .group_by(Article.duplicate_of_id)
                ).all()
            ) if ids else {}
        parts = [self._filter_form(req, filters, topic_names)]
        if listed.problem:
            parts.append(f'<p class="flash flash-error">{h(listed.problem)}</p>')
        shown = listed.articles
        label = {"open": "open", "reviewed": "reviewed", "dismissed": "dismissed",
                 "all": ""}[filters["status"]]
        if listed.total is None:
            summary = f"{label} articles".strip().capitalize()
        elif listed.total > MAX_COUNT:
            summary = f"more than {MAX_COUNT:,} {label} articles".replace("  ", " ")
        else:
            summary = _plural(listed.total, f"{label} article".strip())
        if filters["claim"]:
            summary += f" repeating claim {filters['claim']}"
        if before or listed.next:
            summary += (f"; showing {len(shown)} older ones" if before
                        else f"; showing the newest {len(shown)}")
        parts.append(f'<p class="count" id="count">{h(summary)}</p>')
        parts.append(self.download_links(
            req, topic=filters["topic"], status=filters["status"], flag=filters["flag"],
            claim=filters["claim"], since=filters["since"]))
        if not shown:
            parts.append('<p class="empty">Nothing to review with these filters.</p>')
        parts.append(self._bulk_bar(req))
        parts.append('<div class="items" id="items">')
        for a in shown:
            parts.append(self._article_card(req, a, copies.get(a["id"], 0)))
        parts.append("</div>")
        pager = []
        if before:
            pager.append(f'<a href="{h(self._page_url(req, filters))}" rel="first">Newest</a>')
        if listed.next:
            pager.append(f'<a href="{h(self._page_url(req, filters, listed.next))}" '
                         'rel="next" id="next">Older articles</a>')
        if pager:
            parts.append(f'<nav class="pager">{" · ".join(pager)}</nav>')
        return self._layout(req, "Articles", "\n".join(parts), "articles")

    def _page_url(self, req: Request, filters: Mapping[str, str], before: str = "",
                  path: str = "/", **extra: str) -> str:
        params = {k: v for k, v in filters.items() if v and not (k == "status" and v == "open")}
        params.update(extra)
        if before:
            params["before"] = before
        return req.url(path, **params)

    def _filter_form(self, req: Request, filters: Mapping[str, str], topics: list[str]) -> str:
        def select_box(name: str, options: Sequence[tuple[str, str]]) -> str:
            opts = "".join(
                f'<option value="{h(v)}"{" selected" if filters[name] == v else ""}>{h(t)}</option>'
                for v, t in options
            )
            return f'<label>{name.capitalize()} <select name="{name}">{opts}</select></label>'

        topic_opts = [("", "all topics"), *((t, t) for t in topics)]
        status_opts = [("open", "open"), ("reviewed", "reviewed"), ("dismissed", "dismissed"),
                       ("all", "any status")]
        flag_opts = [("", "any flag"), *((f, FLAG_LABELS.get(f, f)) for f in FLAGS)]
        claim = (f'<input type="hidden" name="claim" value="{h(filters["claim"])}">'
                 if filters["claim"] else "")
        return (
            f'<form method="get" action="{h(req.url("/"))}" class="filters">'
            + select_box("topic", topic_opts) + select_box("status", status_opts)
            + select_box("flag", flag_opts)
            + f'<label>Since <input name="since" value="{h(filters["since"])}" size="10" '
              'placeholder="24h, 7d, 2024-01-31"></label>'
            + claim + '<button type="submit">Filter</button>'
            + f'<a href="{h(req.url("/"))}" class="small">reset</a></form>'
        )

    def _flag_badges(self, flags: Iterable[str]) -> str:
        return "".join(
            f'<span class="flag flag-{h(f)}">{h(FLAG_LABELS.get(f, f))}</span>' for f in flags
        )

    def _article_card(self, req: Request, a: Mapping[str, Any], copies: int) -> str:
        aid = int(a["id"])
        link = req.url(f"/article/{aid}")
        meta = [f"#{aid}", h(a.get("outlet") or a.get("source") or ""),
                h(fmt_dt(a.get("published"), "no date"))]
        facts = []
        linked = [c for c in a["claims"] if c.get("tier") != "suggested"]
        if linked:
            facts.append(_plural(len(linked), "known claim"))
        if a["conflicts"]:
            facts.append(_plural(len(a["conflicts"]), "conflicting figure"))
        if a["candidates"]:
            facts.append(_plural(len(a["candidates"]), "new claim candidate"))
        dup = a.get("duplicate_of")
        if dup:
            oid = int(dup["id"])
            facts.append(
                f'copy of <a href="{h(req.url(f"/article/{oid}"))}">#{oid}'
                f"</a> (similarity {float(dup.get('similarity') or 0):.2f})"
            )
        if copies:
            facts.append(f"carried by {_plural(copies + 1, 'outlet')} "
                         f"({_plural(copies, 'copy', 'copies')})")
        status = a["review"]["status"]
        note = a["review"].get("note")
        state = "" if status == "open" else (
            f'<span class="state state-{h(status)}">{h(status)}</span>'
            + (f' <span class="note">{h(note)}</span>' if note else "")
        )
        select_box = (
            f'<input type="checkbox" class="select" form="bulk" name="ids" value="{aid}" '
            f'aria-label="Select #{aid}: {h(_short_title(a.get("title") or a.get("url")))}">')
        return (
            f'<article class="item" id="article-{aid}" data-article="{aid}" tabindex="-1">'
            f'<h2>{select_box} <a href="{h(link)}">{h(a.get("title") or a.get("url"))}</a></h2>'
            f'<p class="meta">{" · ".join(meta)} {state}</p>'
            f'<p class="flags">{self._flag_badges(a["flags"])}</p>'
            f'<p class="facts">{" · ".join(facts)}</p>'
            f"{self._review_buttons(req, a, copies)}"
            "</article>"
        )

    # -- pages: one article --------------------------------------------------------------------

    def _load_article(self, session: Session, article_id: int) -> Article:
        article = session.scalar(
            select(Article)
            .where(Article.id == article_id)
            .options(selectinload(Article.claims), selectinload(Article.candidates),
                     selectinload(Article.duplicate_of))
        )
        if article is None:
            raise HTTPError(404, f"no article with id {article_id}")
        return article

    def _article_data(self, session: Session, article: Article) -> dict[str, Any]:
        entry = article_entry(article)
        entry["text"] = article.text
        entry["author"] = article.author
        entry["topic"] = article.topic
        entry["all_claims"] = [
            {"claim_id": c.claim_id, "score": round(c.score, 1), "sentence": c.sentence,
             "tier": c.tier, "review": c.review, "conflict": c.conflict,
             "stance": c.stance or "repeats",
             "claim_numbers": list(c.claim_numbers), "article_numbers": list(c.article_numbers)}
            for c in sorted(article.claims, key=lambda c: -c.score)
        ]
        entry["all_candidates"] = [
            {"id": c.id, "sentence": c.sentence, "score": round(c.score, 3), "status": c.status,
             "promoted_claim_id": c.promoted_claim_id}
            for c in article.candidates
        ]
        entry["copies"] = [
            {"id": c.id, "url": c.url, "title": c.title, "outlet": c.outlet,
             "published": c.published.isoformat() if c.published else None,
             "similarity": round(c.duplicate_similarity or 0.0, 3), "kind": c.duplicate_kind,
             "review": c.review_status}
            for c in session.scalars(
                select(Article).where(Article.duplicate_of_id == article.id).order_by(Article.id)
            )
        ]
        original = article.duplicate_of
        if original is not None and entry["duplicate_of"] is not None:
            entry["duplicate_of"].update(title=original.title, outlet=original.outlet)
        entry["claim_texts"] = dict(
            session.execute(
                select(KnownClaim.claim_id, KnownClaim.text).where(
                    KnownClaim.topic == article.topic
                )
            ).all()
        )
        return entry

    def json_article(self, req: Request, article_id: str) -> Response:
        with self._read() as session:
            data = self._article_data(session, self._load_article(session, int(article_id)))
        return Response.json(data)

    def page_article(self, req: Request, article_id: str) -> Response:
        with self._read() as session:
            a = self._article_data(session, self._load_article(session, int(article_id)))
        aid = int(a["id"])
        status = a["review"]["status"]
        note = a["review"].get("note") or ""
        parts = [
            f'<p class="back"><a href="{h(req.url("/"))}">← all articles</a></p>',
            f'<h1 id="title">{h(a.get("title") or a.get("url"))}</h1>',
            f'<p class="meta">#{aid} · {h(a.get("outlet") or "")} · {h(a.get("source"))} · '
            f'published {h(fmt_dt(a.get("published"), "unknown"))} · fetched '
            f'{h(fmt_dt(a.get("fetched_at")))}'
            + (f' · by {h(a["author"])}' if a.get("author") else "") + "</p>",
            f'<p class="url">{external_link(a["url"], a["url"])}</p>',
            f'<p class="flags">{self._flag_badges(a["flags"])}</p>',
        ]
        review_inner = (
            f'<p>Status: <span class="state state-{h(status)}" id="status">{h(status)}</span></p>'
            f'<label>Note <textarea name="note" rows="2" maxlength="4000">{h(note)}</textarea>'
            "</label><div>"
        )
        for value, label, cls in (("reviewed", "Mark reviewed", "ok"),
                                  ("dismissed", "Dismiss", "muted-btn"),
                                  ("open", "Reopen", "")):
            if value != status:
                review_inner += (f'<button name="status" value="{value}" class="{cls}">'
                                 f"{label}</button>")
        if a["copies"]:
            review_inner += ('<label class="small"><input type="checkbox" name="with_copies" '
                             f'value="1"> and its {_plural(len(a["copies"]), "copy", "copies")}'
                             "</label>")
        review_inner += "</div>"
        parts.append('<section class="box"><h2>Review</h2>'
                     + self._form(req, f"/article/{aid}/review", review_inner, "review") +
                     "</section>")
        parts.append(self._family_section(req, a))
        parts.append(self._claims_section(req, a))
        parts.append(self._candidates_section(req, a))
        parts.append(self._text_section(a))
        parts.append(self._revisions_section(aid))
        parts.append(self._why_section(aid, a))
        parts.append(self._history_section(aid))
        return self._layout(req, clean(a.get("title") or f"article {aid}"), "\n".join(parts))

    def _revisions_section(self, aid: int) -> str:
        """Revisions found by revisits, with a before/after diff (claimwatch/revisions_view.py)."""
        from claimwatch.revisions_view import revision_history

        with self._read() as session:
            history = revision_history(session, aid)
        if not history:
            return ""
        items = []
        for rev in history:
            pairs = "".join(
                "<tr><td>" + (f"<del>{h(old)}</del>" if old else "") + "</td><td>"
                + (f"<ins>{h(new)}</ins>" if new else "") + "</td></tr>"
                for old, new in rev["pairs"])
            claims = "".join(f'<li>{h(c["change"])}: <code>{h(c["claim_id"])}</code></li>'
                             for c in rev["claims"])
            items.append(
                f'<li><p>{h(fmt_dt(rev["fetched_at"]))} · <b>{h(rev["outcome"])}</b>'
                + (f' · {h(", ".join(rev["changes"]))}' if rev["changes"] else "")
                + (f' · <span class="muted">{h(rev["detail"])}</span>' if rev["detail"] else "")
                + "</p>" + (f"<ul>{claims}</ul>" if claims else "")
                + ('<div class="table-wrap"><table class="diff"><thead><tr><th>Before</th>'
                   f"<th>After</th></tr></thead><tbody>{pairs}</tbody></table></div>"
                   if pairs else "") + "</li>")
        return ('<section class="box" id="revisions"><h2>Revisions</h2><ul>' + "".join(items)
                + "</ul></section>")

    def _why_section(self, aid: int, a: Mapping[str, Any]) -> str:
        """The "why?" panel: claimwatch/explain.py's report, every string escaped."""
        from claimwatch.explain import explain_article, explain_lines

        topic = self.topics.get(str(a.get("topic")))
        if topic is None:
            body = '<p class="muted">The topic file is not loaded here.</p>'
        else:
            lines = explain_lines(explain_article(self.sessions, topic, aid))[1:]
            body = "<pre class=\"why\">" + "\n".join(h(line) for line in lines) + "</pre>"
        return ('<section class="box" id="why"><details><summary><h2>Why?</h2></summary>'
                + body + "</details></section>")

    def _history_section(self, aid: int) -> str:
        """Who did what to this article, newest first (claimwatch/accounts.py records it)."""
        from claimwatch.accounts import history

        with self._read() as session:
            events = history(session, aid)
        if not events:
            return ('<section class="box" id="history"><h2>History</h2>'
                    '<p class="muted">No review actions yet.</p></section>')
        rows = []
        for event in events:
            detail = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in
                               (event.detail or {}).items() if v is not True) or ""
            rows.append(f"<tr><td>{h(fmt_dt(event.at))}</td><td>{h(event.actor)}</td>"
                        f"<td>{h(event.action)}</td><td>{h(detail)}</td></tr>")
        return ('<section class="box" id="history"><h2>History</h2><div class="table-wrap">'
                "<table><thead><tr><th>When</th><th>Who</th><th>What</th><th>Details</th></tr>"
                "</thead><tbody>" + "".join(rows) + "</tbody></table></div></section>")

    def _family_section(self, req: Request, a: Mapping[str, Any]) -> str:
        rows = []
        dup = a.get("duplicate_of")
        if dup:
            oid = int(dup["id"])
            rows.append(
                f'<p>A {h(dup.get("kind") or "copy")} (similarity '
                f'{float(dup.get("similarity") or 0):.2f}) of the original '
                f'<a href="{h(req.url(f"/article/{oid}"))}">#{oid} '
                f'{h(dup.get("title") or dup.get("url"))}</a> ({h(dup.get("outlet") or "")}).</p>'
            )
        if a["copies"]:
            items = "".join(
                f'<li><a href="{h(req.url("/article/" + str(int(c["id"]))))}">#{int(c["id"])} '
                f'{h(c.get("title") or c.get("url"))}</a> · {h(c.get("outlet") or "")} · '
                f'{h(c.get("kind") or "copy")}, similarity {float(c["similarity"]):.2f} · '
                f'{h(c["review"])}</li>'
                for c in a["copies"]
            )
            outlets = {clean(c.get("outlet")) for c in a["copies"]} | {clean(a.get("outlet"))}
            rows.append(f"<p>Carried by {_plural(len(outlets), 'outlet')}; "
                        f"{_plural(len(a['copies']), 'copy', 'copies')}:</p><ul>{items}</ul>")
        if not rows:
            rows.append('<p class="muted">No copies of this article are stored, and it copies '
                        "none.</p>")
        return '<section class="box" id="family"><h2>Original and copies</h2>' + "".join(rows) \
            + "</section>"

    def _claims_section(self, req: Request, a: Mapping[str, Any]) -> str:
        claims = a["all_claims"]
        if not claims:
            return ('<section class="box" id="claims"><h2>Known claims</h2>'
                    '<p class="muted">No known claim matched.</p></section>')
        rows = []
        for c in claims:
            cid = c["claim_id"]
            known = a["claim_texts"].get(cid)
            conflict = ""
            if c["conflict"]:
                conflict = (f'<div class="conflict">Figures differ: claim '
                            f'{h(", ".join(c["claim_numbers"]))} · article '
                            f'{h(", ".join(c["article_numbers"]))}</div>')
            buttons = []
            label = h(cid)
            if c["review"] != "confirmed":
                buttons.append('<button name="decision" value="confirm" class="ok" '
                               f'data-action="confirm" aria-label="Confirm match to {label}">'
                               "Confirm</button>")
            if c["review"] != "rejected":
                buttons.append('<button name="decision" value="reject" class="bad" '
                               f'data-action="reject" aria-label="Reject match to {label}">'
                               "Reject</button>")
            if c["review"] != "open":
                buttons.append(f'<button name="decision" value="reopen" data-action="reopen" '
                               f'aria-label="Reopen match to {label}">Reopen</button>')
            form = self._form(
                req, f"/article/{int(a['id'])}/match",
                f'<input type="hidden" name="claim_id" value="{h(cid)}">' + "".join(buttons),
            )
            rows.append(
                f'<tr class="match match-{h(c["review"])}"><td><code>{h(cid)}</code>'
                + (f'<div class="claimtext">{h(known)}</div>' if known else "")
                + f'</td><td>{quoted(c["sentence"])}{conflict}</td>'
                f'<td class="num">{float(c["score"]):.1f}</td><td>{h(c["tier"])}'
                f'<br><span class="stance stance-{h(c["stance"])}">{h(c["stance"])}</span></td>'
                f'<td>{h(c["review"])}</td><td>{form}</td></tr>'
            )
        return (
            '<section class="box" id="claims"><h2>Known claims</h2><table><thead><tr>'
            "<th>Claim</th><th>Sentence in this article</th><th>Score</th><th>Tier</th>"
            "<th>Review</th><th></th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            "</section>"
        )

    def _candidates_section(self, req: Request, a: Mapping[str, Any]) -> str:
        candidates = a["all_candidates"]
        if not candidates:
            return ""
        topic = self.topics.get(a["topic"])
        items = []
        for c in candidates:
            cid = int(c["id"])
            head = (f'{quoted(c["sentence"])} <span class="muted">score '
                    f'{float(c["score"]):.2f} · {h(c["status"])}'
                    + (f' as <code>{h(c["promoted_claim_id"])}</code>'
                       if c["promoted_claim_id"] else "") + "</span>")
            actions = ""
            if c["status"] == "open":
                if topic is not None and topic.claims_path is not None:
                    actions += self._form(
                        req, f"/candidate/{cid}/promote",
                        '<label>New claim id <input name="new_id" required size="28" '
                        'pattern="[a-z0-9][a-z0-9._\\-]*" '
                        f'value="{h(suggest_claim_id(c["sentence"]))}"></label>'
                        f'<label>Text <textarea name="text" rows="2">{h(c["sentence"])}'
                        "</textarea></label>"
                        '<button class="ok">Promote to claim</button>', "promote",
                    )
                else:
                    actions += ('<p class="muted small">To promote it, serve the page with '
                                f"the topic file of {h(a['topic'])}.</p>")
                actions += self._form(
                    req, f"/candidate/{cid}/decide",
                    '<button name="decision" value="reject" class="muted-btn">Not a claim'
                    "</button>",
                )
            elif c["status"] == "rejected":
                actions += self._form(
                    req, f"/candidate/{cid}/decide",
                    '<button name="decision" value="reopen">Reopen</button>',
                )
            items.append(f'<li class="candidate candidate-{h(c["status"])}" id="candidate-{cid}">'
                         f"{head}{actions}</li>")
        return ('<section class="box" id="candidates"><h2>New claim candidates</h2><ul>'
                + "".join(items) + "</ul></section>")

    def _text_section(self, a: Mapping[str, Any]) -> str:
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
            out, cursor = [], p_start
            for start, end, cls, title in kept:
                if end <= p_start or start >= p_end:
                    continue
                start, end = max(start, p_start), min(end, p_end)
                out.append(h(text[cursor:start]))
                out.append(f'<mark class="{cls}" title="{h(title)}">{h(text[start:end])}</mark>')
                cursor = end
            out.append(h(text[cursor:p_end]))
            paragraphs.append("<p>" + "".join(out) + "</p>")
        legend = ('<p class="legend small"><mark class="hl-claim">known claim</mark> '
                  '<mark class="hl-suggested">possible claim</mark> '
                  '<mark class="hl-conflict">conflicting figures</mark> '
                  '<mark class="hl-candidate">new claim candidate</mark></p>')
        return ('<section class="box" id="text"><h2>Text</h2>' + legend
                + '<div class="article-text">' + "\n".join(paragraphs) + "</div></section>")

    # -- pages: claims, sources, digest --------------------------------------------------------

    def _coverage(self, req: Request, limit: int = CLAIMS_PAGE) -> tuple[str, list[Any], str]:
        """One page of claims (``after``: the row id of the last claim shown before)."""
        topic = req.arg("topic")
        after = req.arg("after")
        with self._read() as session:
            rows = claim_coverage(session, topic or None,
                                  after=int(after) if after.isdigit() else None, limit=limit + 1)
            more = len([r for r in rows if r.text is not None]) > limit
            if more:
                rows = rows[:limit]
                last = session.scalar(select(func.max(KnownClaim.id)).where(
                    KnownClaim.topic == rows[-1].topic, KnownClaim.claim_id == rows[-1].claim_id))
                next_url = req.url(req.path, topic=topic, after=str(last))
            else:
                next_url = ""
        return topic, rows, next_url

    def json_claims(self, req: Request) -> Response:
        limit = min(max(_int(req.arg("limit"), CLAIMS_PAGE), 1), CLAIMS_PAGE)
        _, rows, next_url = self._coverage(req, limit)
        if next_url:
            next_url += f"&limit={limit}"
        return Response.json({"claims": [r.as_dict() for r in rows], "next": next_url or None})

    def page_claims(self, req: Request) -> Response:
        topic, rows, next_url = self._coverage(req)
        body_rows = []
        for r in rows:
            articles = (
                f'<a href="{h(req.url("/", topic=r.topic, status="all", claim=r.claim_id))}">'
                f"{r.articles}</a>" if r.articles else "0"
            )
            claim_url = req.url("/claim/" + quote(r.claim_id, safe=""), topic=r.topic)
            text = h(r.text) if r.text is not None else (
                '<span class="muted">not in the claims table any more</span>')
            body_rows.append(
                f'<tr id="claim-{h(r.claim_id)}"><td><a href="{h(claim_url)}">'
                f"<code>{h(r.claim_id)}</code></a></td>"
                f"<td>{text}</td><td class=num>{articles}</td><td class=num>{r.outlets}</td>"
                f"<td class=num>{r.repeating_outlets}</td><td class=num>{r.disputing_outlets}</td>"
                f"<td class=num>{r.conflicts}</td><td>{h(fmt_dt(r.first_seen))}</td>"
                f"<td>{h(fmt_dt(r.last_seen))}</td></tr>"
            )
        title = f"Claims of {topic}" if topic else "Claims"
        body = (
            f"<h1>{h(title)}</h1><p class=count>{_plural(len(rows), 'claim')}; coverage counts "
            "leave out rejected matches.</p>"
            "<table class=claims><thead><tr><th>Claim</th><th>Text</th><th>Articles</th>"
            "<th>Outlets</th><th>Repeat it</th><th>Dispute it</th><th>Conflicts</th>"
            "<th>First seen</th><th>Last seen</th></tr>"
            "</thead><tbody>" + "".join(body_rows) + "</tbody></table>"
        )
        if next_url:
            body += (f'<nav class="pager"><a href="{h(next_url)}" rel="next" id="next">'
                     "More claims</a></nav>")
        return self._layout(req, title, body, "claims")

    def json_runs(self, req: Request) -> Response:
        with self._read() as session:
            runs = recent_runs(session, req.arg("topic") or None, _int(req.arg("limit"), 50))
            data = [_run_dict(r) for r in runs]
        return Response.json({"runs": data})

    def page_sources(self, req: Request) -> Response:
        with self._read() as session:
            states = {(s.topic, s.source): s for s in session.scalars(select(SourceState))}
            runs = [_run_dict(r) for r in recent_runs(session, None, 25)]
        parts = ["<h1>Sources</h1>"]
        if not self.topics:
            parts.append('<p class="muted">No topic files were given to this page; '
                         "pass them to <code>claimwatch serve</code>.</p>")
        if self.trigger_crawl is None:
            parts.append(f'<p class="muted small">{h(self.crawl_unavailable)}</p>')
        for topic in self.topics.values():
            rows = []
            for source in topic.sources:
                st = states.get((topic.name, source.name))
                button = (
                    self._form(
                        req, "/crawl",
                        f'<input type="hidden" name="topic" value="{h(topic.name)}">'
                        f'<input type="hidden" name="source" value="{h(source.name)}">'
                        '<button class="ok">Crawl now</button>',
                        next_url="/sources",
                    ) if self.trigger_crawl is not None else
                    '<button disabled title="not available here">Crawl now</button>'
                )
                health = ""
                if st is not None and st.last_error:
                    health = (f'<div class="conflict">{h(st.last_error)} '
                              f"({_plural(st.consecutive_failures, 'failure')} in a row)</div>")
                rows.append(
                    f"<tr><td>{h(source.name)}</td><td>{h(source.kind)}</td>"
                    f"<td class=url>{external_link(source.url, source.url)}</td>"
                    f"<td><code>{h(source.schedule or 'manual')}</code></td>"
                    f"<td>{h(fmt_dt(st.last_success if st else None, 'never'))}{health}</td>"
                    f"<td>{button}</td></tr>"
                )
            parts.append(
                f"<h2>{h(topic.name)}</h2><table><thead><tr><th>Source</th><th>Kind</th>"
                "<th>URL</th><th>Schedule</th><th>Last success</th><th></th></tr></thead>"
                "<tbody>" + "".join(rows) + "</tbody></table>"
            )
        run_rows = []
        for r in runs:
            counts = r["counts"] or {}
            shown = ", ".join(f"{k} {counts[k]}" for k in ("fetched", "new", "duplicates",
                                                           "matched", "errors") if k in counts)
            run_rows.append(
                f'<tr class="run run-{h(r["status"])}"><td class=num>{int(r["id"])}</td>'
                f'<td>{h(r["topic"])}</td><td>{h(r["source"])}</td><td>{h(r["trigger"])}</td>'
                f'<td>{h(fmt_dt(r["started"]))}</td><td>{h(fmt_dt(r["finished"]))}</td>'
                f'<td>{h(r["status"])}</td><td>{h(shown)}</td><td>{h(r["error"] or "")}</td></tr>'
            )
        running = [r for r in runs if r["status"] == "running"]
        if running:
            now = datetime.now(UTC)
            items = []
            for r in running:
                counts = r["counts"] or {}
                started = datetime.fromisoformat(r["started"]) if r["started"] else now
                took = max(int((now - started).total_seconds()), 0)
                items.append(
                    f'<li id="running-{int(r["id"])}"><strong>{h(r["source"])}</strong> '
                    f'({h(r["topic"])}), running for {took // 60}m {took % 60:02d}s: '
                    f'{int(counts.get("fetched", 0))} fetched, {int(counts.get("new", 0))} new, '
                    f'{int(counts.get("duplicates", 0))} duplicates, '
                    f'{int(counts.get("errors", 0))} errors</li>')
            parts.append('<h2>Running now</h2><ul class="running">' + "".join(items)
                         + '</ul><p class="muted small">Counts are written as the crawl goes; '
                         "reload for the latest.</p>")
        parts.append(
            "<h2>Recent runs</h2>"
            + ("<table><thead><tr><th>Run</th><th>Topic</th><th>Source</th><th>Trigger</th>"
               "<th>Started</th><th>Finished</th><th>Status</th><th>Counts</th><th>Error</th>"
               "</tr></thead><tbody>" + "".join(run_rows) + "</tbody></table>"
               if run_rows else '<p class="muted">No crawl has run yet.</p>')
        )
        return self._layout(req, "Sources & runs", "\n".join(parts), "sources")

    def page_digest(self, req: Request) -> Response:
        fmt = req.arg("format", "html")
        if fmt not in FORMATS:
            raise HTTPError(400, f"format {fmt!r}: use one of {', '.join(FORMATS)}")
        try:
            since = parse_since(req.arg("since", "24h") or "24h")
        except DigestError as exc:
            raise HTTPError(400, str(exc).replace("--since", "since")) from exc
        with self._read() as session:
            data = build_digest(session, topic=req.arg("topic") or None, since=since,
                                include_reviewed=req.arg("all") in ("1", "true", "yes"))
        host = req.header("Host")
        if fmt != "json" and host and re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
            data["review_base"] = f"{req.environ.get('wsgi.url_scheme', 'http')}://{host}" \
                + req.url("")  # items link to their review pages here
        body = render(data, fmt)
        ctype = {"html": "text/html", "json": "application/json",
                 "atom": "application/atom+xml"}.get(fmt, "text/plain")
        return Response(body, 200, ctype + "; charset=utf-8",
                        csp=DIGEST_CSP if fmt == "html" else "default-src 'none'")

    def json_articles(self, req: Request) -> Response:
        filters = self._filters(req)
        limit = min(max(_int(req.arg("limit"), PAGE_SIZE), 1), MAX_LIST)
        with self._read() as session:
            listed = self._list(session, filters, req.arg("before"), limit)
        if listed.problem:
            raise HTTPError(400, listed.problem)
        return Response.json({
            "count": None if listed.total is None else min(listed.total, MAX_COUNT + 1),
            "more_than": listed.total is not None and listed.total > MAX_COUNT,
            "filters": filters, "articles": listed.articles,
            "next": (self._page_url(req, filters, listed.next, "/articles.json",
                                    limit=str(limit))
                     if listed.next else None),
        })

    def json_session(self, req: Request) -> Response:
        return Response.json({"csrf": self.csrf_token(req)})

    def static_css(self, req: Request) -> Response:
        response = Response(CSS + DESK_CSS, 200, "text/css; charset=utf-8")
        return response

    # -- bulk actions and undo ------------------------------------------------------------------

    @staticmethod
    def _review_state(session: Session, ids: list[int],
                      with_copies: bool) -> list[tuple[int, str, str | None]]:
        """(id, status, note) of these articles (and their copies): what undo restores."""
        query = select(Article.id, Article.review_status, Article.review_note)
        condition = Article.id.in_(ids)
        if with_copies:
            condition = condition | Article.duplicate_of_id.in_(ids)
        return [(int(r[0]), str(r[1]), r[2]) for r in session.execute(query.where(condition))]

    def _remember_undo(self, req: Request, action: dict[str, Any]) -> None:
        sid = req.environ.get("claimwatch.session_id") or req.cookies.get(SESSION_COOKIE, "")
        if not sid:
            return
        with self._lock:
            self._undo[sid] = {**action, "at": time.monotonic()}
            self._undo.move_to_end(sid)
            while len(self._undo) > 1000:
                self._undo.popitem(last=False)

    def _pending_undo(self, req: Request) -> dict[str, Any] | None:
        sid = req.environ.get("claimwatch.session_id") or req.cookies.get(SESSION_COOKIE, "")
        with self._lock:
            action = self._undo.get(sid)
        if action is None or time.monotonic() - action["at"] > UNDO_MINUTES * 60:
            return None
        return action

    def post_bulk_review(self, req: Request) -> Response:
        status = req.field("status")
        raw = req.form.get("ids", [])[:500]
        try:
            ids = list(dict.fromkeys(int(v) for v in raw if v.isdigit() and len(v) < 19))
        except ValueError:
            ids = []
        if not ids:
            return self._fail(req, ReviewError("select at least one article first"), "/")
        try:
            with self._write() as session:
                before = self._review_state(session, ids, False)
                for aid in ids:
                    mark_article(session, aid, status)
                    record(session, aid, self._actor(req), f"marked {status}", bulk=len(ids))
        except ReviewError as exc:
            return self._fail(req, exc, "/")
        verb = {"reviewed": "marked reviewed", "dismissed": "dismissed",
                "open": "reopened"}[status]
        message = f"{_plural(len(ids), 'article')} {verb}"
        self._remember_undo(req, {"kind": "review", "items": before, "label": message})
        return self._done(req, message, {"article_ids": ids, "status": status, "undo": True},
                          "/")

    def post_undo(self, req: Request) -> Response:
        action = self._pending_undo(req)
        if action is None:
            return self._fail(req, ReviewError("nothing to undo"), "/", 409)
        try:
            with self._write() as session:
                if action["kind"] == "review":
                    for aid, status, note in action["items"]:
                        mark_article(session, aid, status, note if note is not None else "")
                        record(session, aid, self._actor(req), f"undo: back to {status}")
                else:
                    decisions = {"confirmed": "confirm", "rejected": "reject", "open": "reopen"}
                    for aid, claim_id, previous in action["items"]:
                        review_match(session, aid, claim_id,
                                     decisions.get(previous or "open", "reopen"))
                        record(session, aid, self._actor(req),
                               f"undo: match {previous or 'open'}", claim_id=claim_id)
        except ReviewError as exc:
            return self._fail(req, exc, "/")
        sid = req.environ.get("claimwatch.session_id", "")
        with self._lock:
            self._undo.pop(sid, None)
        ids = sorted({item[0] for item in action["items"]})
        return self._done(req, f"undone: {action['label']}", {"article_ids": ids}, "/")

    def _bulk_bar(self, req: Request) -> str:
        inner = ('<span class="small muted">Selected articles:</span>'
                 '<button name="status" value="reviewed" class="ok" data-bulk="reviewed">'
                 "Mark selected reviewed</button>"
                 '<button name="status" value="dismissed" class="muted-btn" '
                 'data-bulk="dismissed">Dismiss selected</button>')
        form = self._form(req, "/articles/review", inner, cls="inline bulk")
        return form.replace("<form ", '<form id="bulk" ', 1)

    def _undo_bar(self, req: Request) -> str:
        action = self._pending_undo(req)
        if action is None:
            return ""
        button = (f'<button type="submit" aria-label="Undo: {h(action["label"])}">'
                  "Undo</button>")
        return ('<div class="undo" role="status"><span>Last action: '
                f'{h(action["label"])}</span>' + self._form(req, "/undo", button) + "</div>")

    def static_js(self, req: Request) -> Response:
        return Response(_static("review.js"), 200, "text/javascript; charset=utf-8")

    # -- signing in ----------------------------------------------------------------------------

    def _login_form(self, req: Request, problem: str = "", name: str = "") -> Response:
        error = f'<p class="flash flash-error" role="alert">{h(problem)}</p>' if problem else ""
        given = req.field("next") if req.method == "POST" else req.arg("next")
        next_url = _safe_next(given, "/")
        body = (
            f"<h1>Sign in</h1>{error}"
            f'<form method="post" action="{h(req.url("/login"))}" class="login box">'
            f"{self._csrf_field(req)}"
            f'<input type="hidden" name="next" value="{h(next_url)}">'
            f'<label>Name <input name="name" value="{h(name)}" autocomplete="username" '
            "required autofocus></label>"
            '<label>Password <input name="password" type="password" '
            'autocomplete="current-password" required></label>'
            '<button type="submit" class="ok">Sign in</button></form>'
            '<p class="muted small">Accounts are made with <code>claimwatch users add NAME '
            "--role reviewer</code>.</p>")
        response = self._layout(req, "Sign in", body)
        if problem:
            response.status = 401 if "wrong" in problem else 429
        return response

    def page_login(self, req: Request) -> Response:
        if not self._accounts_on():
            return Response.redirect(req.url("/"))
        return self._login_form(req)

    def post_login(self, req: Request) -> Response:
        from claimwatch.accounts import check_password

        name = req.field("name")[:80]
        remote = str(req.environ.get("REMOTE_ADDR") or "")
        if not self._login_allowed(f"{remote}|{name.lower()}"):
            return self._login_form(req, "too many failed attempts: wait a minute", name)
        with self._write() as session:
            user = check_password(session, name, req.field("password"))
        if user is None:
            self._login_failed(f"{remote}|{name.lower()}")
            return self._login_form(req, "wrong name or password", name)
        response = Response.redirect(req.script + _safe_next(req.field("next"), "/"))
        # A new session id on sign-in (no fixation), and the signed account cookie.
        response.headers.append(("Set-Cookie", self._cookie(
            req, SESSION_COOKIE, secrets.token_urlsafe(24), "Strict")))
        response.headers.append(("Set-Cookie", self._user_cookie(req, user.id)))
        logger.info("review page: %s signed in", user.name)
        return response

    def post_logout(self, req: Request) -> Response:
        response = Response.redirect(req.url("/login"))
        response.headers.append(("Set-Cookie", self._user_cookie(req, None)))
        return response

    _LOGIN_WINDOW = 60.0
    _LOGIN_FAILURES = 5

    def _login_allowed(self, key: str) -> bool:
        with self._lock:
            recent = [t for t in self._failures.get(key, [])
                      if time.monotonic() - t < self._LOGIN_WINDOW]
            if recent:
                self._failures[key] = recent
            else:
                self._failures.pop(key, None)
            return len(recent) < self._LOGIN_FAILURES

    def _login_failed(self, key: str) -> None:
        with self._lock:
            self._failures.setdefault(key, []).append(time.monotonic())
            if len(self._failures) > 10_000:
                self._failures.clear()

    # -- actions -------------------------------------------------------------------------------

    def _done(self, req: Request, message: str, data: Mapping[str, Any], default: str,
              kind: str = "ok", status: int = 200) -> Response:
        if req.wants_json:
            return Response.json({"ok": kind == "ok", "message": message, **data}, status)
        self._flash(req, kind, message)
        return Response.redirect(req.script + _safe_next(req.field("next"), default))

    def _fail(self, req: Request, exc: Exception, default: str, status: int = 400) -> Response:
        return self._done(req, str(exc), {"error": str(exc)}, default, "error", status)

    def post_review(self, req: Request, article_id: str) -> Response:
        aid = int(article_id)
        status = req.field("status")
        note = req.form.get("note")
        with_copies = req.field("with_copies") in ("1", "true", "on", "yes")
        try:
            with self._write() as session:
                before = self._review_state(session, [aid], with_copies)
                article = mark_article(session, aid, status, note[0] if note else None,
                                       with_copies=with_copies)
                title = clean(article.title or article.url)
                record(session, aid, self._actor(req), f"marked {status}",
                       note=note[0] if note else None, with_copies=with_copies or None)
        except ReviewError as exc:
            return self._fail(req, exc, f"/article/{aid}")
        verb = {"reviewed": "marked reviewed", "dismissed": "dismissed",
                "open": "reopened"}[status]
        message = f"#{aid} {title[:80]} {verb}" + (" with its copies" if with_copies else "")
        self._remember_undo(req, {"kind": "review", "items": before, "label": message})
        return self._done(req, message, {"article_id": aid, "status": status, "undo": True},
                          f"/article/{aid}")

    def post_match(self, req: Request, article_id: str) -> Response:
        aid = int(article_id)
        claim_id, decision = req.field("claim_id"), req.field("decision")
        try:
            with self._write() as session:
                previous = session.scalar(select(ArticleClaim.review).where(
                    ArticleClaim.article_id == aid, ArticleClaim.claim_id == claim_id))
                match = review_match(session, aid, claim_id, decision)
                review = match.review
                record(session, aid, self._actor(req), f"match {review}", claim_id=claim_id)
        except ReviewError as exc:
            return self._fail(req, exc, f"/article/{aid}")
        message = f"match of #{aid} to {claim_id}: {review}"
        self._remember_undo(req, {"kind": "match", "items": [(aid, claim_id, previous)],
                                  "label": message})
        return self._done(req, message,
                          {"article_id": aid, "claim_id": claim_id, "review": review,
                           "undo": True}, f"/article/{aid}")

    def _candidate_article(self, candidate_id: int) -> tuple[int, str]:
        from storage.models import ClaimCandidate

        with self._read() as session:
            row = session.execute(
                select(ClaimCandidate.article_id, Article.topic)
                .join(Article, Article.id == ClaimCandidate.article_id)
                .where(ClaimCandidate.id == candidate_id)
            ).first()
        if row is None:
            raise HTTPError(404, f"no claim candidate with id {candidate_id}")
        return int(row[0]), str(row[1])

    def post_promote(self, req: Request, candidate_id: str) -> Response:
        cid = int(candidate_id)
        aid, topic_name = self._candidate_article(cid)
        topic = self.topics.get(topic_name)
        back = f"/article/{aid}"
        if topic is None:
            return self._fail(req, ReviewError(
                f"topic {topic_name!r} was not loaded here: serve the page with its topic file "
                "to promote claims"), back, 409)
        new_id = req.field("new_id")
        try:
            with self._write() as session:
                claim = promote_candidate(session, cid, new_id, topic,
                                          text=req.field("text") or None)
                record(session, aid, self._actor(req), "promoted a candidate",
                       claim_id=claim.id, text=claim.text)
        except ReviewError as exc:
            return self._fail(req, exc, back)
        from claimwatch.rematch import start_in_background

        start_in_background(topic.path, self.sessions)  # the stored articles, re-matched
        return self._done(req, f"new claim {claim.id} added to {topic.claims_path}",
                          {"claim_id": claim.id, "text": claim.text, "candidate_id": cid}, back)

    def post_candidate(self, req: Request, candidate_id: str) -> Response:
        cid = int(candidate_id)
        aid, _ = self._candidate_article(cid)
        try:
            with self._write() as session:
                status = decide_candidate(session, cid, req.field("decision")).status
                record(session, aid, self._actor(req), f"candidate {status}", candidate_id=cid)
        except ReviewError as exc:
            return self._fail(req, exc, f"/article/{aid}")
        return self._done(req, f"candidate {cid}: {status}",
                          {"candidate_id": cid, "status": status}, f"/article/{aid}")

    def post_crawl(self, req: Request) -> Response:
        self._require_admin(req)
        topic_name, source_name = req.field("topic"), req.field("source")
        topic = self.topics.get(topic_name)
        if topic is None or source_name not in {s.name for s in topic.sources}:
            return self._fail(req, ReviewError(
                f"no source {source_name!r} in topic {topic_name!r} here"), "/sources", 404)
        if self.trigger_crawl is None:
            return self._fail(req, CrawlRefused(self.crawl_unavailable), "/sources", 503)
        try:
            result = self.trigger_crawl(topic_name, source_name)
        except CrawlRefused as exc:
            return self._fail(req, exc, "/sources", 409)
        except Exception as exc:  # the trigger is a collaborator: report, do not crash
            logger.exception("crawl now of %s/%s failed to start", topic_name, source_name)
            return self._fail(req, CrawlRefused(f"the crawl could not start: {exc}"),
                              "/sources", 500)
        message = f"crawl of {topic_name}/{source_name} started"
        if isinstance(result, Mapping):  # the daemon's trigger: {"runs": [...]} or an error
            runs = result.get("runs") or []
            if not runs:
                reason = result.get("error") or result.get("message") or "nothing was started"
                return self._fail(req, CrawlRefused(str(reason)), "/sources", 409)
            ids = [str(r.get("id")) for r in runs if isinstance(r, Mapping) and r.get("id")]
            if ids:
                message += f": run {', '.join(ids)}"
        elif isinstance(result, str) and result:
            message = f"crawl of {topic_name}/{source_name}: {result}"
        return self._done(req, message, {"topic": topic_name, "source": source_name},
                          "/sources")


def _static(name: str) -> str:
    """A file of claimwatch/static/ (shipped as package data)."""
    from importlib.resources import files

    return files("claimwatch").joinpath("static", name).read_text(encoding="utf-8")


def _short_title(value: Any, limit: int = 60) -> str:
    text = " ".join(clean(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_next(value: str, default: str) -> str:
    """A local path to go back to; anything else (other hosts, schemes) becomes ``default``."""
    value = value.strip()
    if (not value.startswith("/") or value.startswith("//") or "\\" in value
            or any(ord(ch) < 32 for ch in value)):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _int(value: str, default: int) -> int:
    try:
        return max(1, min(int(value), 500))
    except ValueError:
        return default


def _run_dict(run: Any) -> dict[str, Any]:
    return {
        "id": run.id, "topic": run.topic, "source": run.source, "trigger": run.trigger,
        "started": run.started.isoformat() if run.started else None,
        "finished": run.finished.isoformat() if run.finished else None,
        "status": run.status, "counts": dict(run.counts or {}), "error": run.error,
    }


def make_app(
    sessions_factory: SessionFactory,
    topics: Iterable[Topic] | Mapping[str, Topic] = (),
    *,
    token: str | None = None,
    trigger_crawl: TriggerCrawl | None = None,
    crawl_unavailable: str | None = None,
    secret: bytes | None = None,
) -> ReviewApp:
    """The review page as a WSGI application.

    ``sessions_factory`` makes SQLAlchemy sessions (a ``sessionmaker``); ``topics`` are the
    loaded topic files (needed to promote claims and to crawl now). ``token``: require it
    (bearer header, ``?token=`` once, then a cookie); without it only loopback clients are
    answered. ``trigger_crawl(topic_name, source_name)`` starts a crawl for the "crawl now"
    buttons (it may raise :class:`CrawlRefused`); without it the buttons are disabled and
    ``crawl_unavailable`` says why. ``secret`` keys the CSRF tokens (random per process).
    """
    return ReviewApp(sessions_factory, topics, token=token, trigger_crawl=trigger_crawl,
                     crawl_unavailable=crawl_unavailable, secret=secret)


# --------------------------------------------------------------------------- server


class _Handler(WSGIRequestHandler):
    timeout = IDLE_TIMEOUT  # a half-open connection is closed, not held for ever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.info("%s %s", self.address_string(), redact(format % args))  # no ?token=


class _ThreadingServer(QuietErrorsMixin, ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def make_server(host: str, port: int, app: WSGIApp) -> WSGIServer:
    """A threaded WSGI server bound to ``host:port`` (port 0: any free port; read
    ``server.server_port``). Call ``serve_forever()``, then ``shutdown()`` from another
    thread and ``server_close()``."""
    cls = _ThreadingServer6 if ":" in host else _ThreadingServer
    server = cls((host, port), _Handler)
    server.set_app(app)
    return server


# --------------------------------------------------------------------------- style

CSS = """
:root { --fg:#18181b; --muted:#52525b; --line:#e4e4e7; --bg:#f4f4f5; --card:#fff;
  --blue:#1d4ed8; --green:#047857; --red:#b91c1c; --amber:#b45309; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
  color:var(--fg); background:var(--bg); }
header { display:flex; gap:24px; align-items:center; padding:10px 24px; background:#18181b; }
header .brand { color:#fff; font-weight:700; letter-spacing:.02em; }
header nav a { color:#d4d4d8; text-decoration:none; margin-right:16px; }
header nav a.active, header nav a:hover { color:#fff; text-decoration:underline; }
main { max-width:1100px; margin:0 auto; padding:16px 24px 48px; }
h1 { font-size:22px; margin:12px 0 6px; } h2 { font-size:17px; margin:0 0 6px; }
a { color:var(--blue); }
.muted, .meta, .count { color:var(--muted); } .small { font-size:13px; }
.meta { font-size:13px; margin:2px 0; } .url { font-size:13px; word-break:break-all; margin:2px 0; }
.filters { display:flex; flex-wrap:wrap; gap:10px 14px; align-items:center; padding:10px 12px;
  background:var(--card); border:1px solid var(--line); border-radius:6px; font-size:14px; }
.items { display:flex; flex-direction:column; gap:10px; margin-top:8px; }
.item, .box { background:var(--card); border:1px solid var(--line); border-radius:6px;
  padding:12px 16px; }
.box { margin:12px 0; }
.item h2 a { text-decoration:none; color:var(--fg); }
.item h2 a:hover { text-decoration:underline; }
.flags { margin:4px 0; } .facts { margin:4px 0; font-size:14px; }
.flag { display:inline-block; font-size:12px; padding:1px 8px; border-radius:10px; margin-right:6px;
  background:#e0e7ff; color:#3730a3; }
.flag-duplicate { background:#f4f4f5; color:#52525b; border:1px solid var(--line); }
.flag-conflict { background:#fee2e2; color:#991b1b; }
.flag-new_claim_candidate { background:#fef3c7; color:#92400e; }
.state { font-size:12px; padding:1px 8px; border-radius:10px; background:#dcfce7; color:#166534; }
.state-dismissed { background:#f4f4f5; color:#52525b; }
.state-open { background:#e0e7ff; color:#3730a3; }
.note { font-style:italic; }
form.inline { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin:6px 0 0; }
button { font:inherit; font-size:13px; padding:3px 12px; border-radius:4px; cursor:pointer;
  border:1px solid #a1a1aa; background:#fff; color:var(--fg); }
button.ok { border-color:var(--green); color:#fff; background:var(--green); }
button.bad { border-color:var(--red); color:var(--red); }
button.muted-btn { color:var(--muted); }
button[disabled] { opacity:.5; cursor:not-allowed; }
textarea { width:100%; font:inherit; font-size:14px; }
form.review label, form.promote label { display:block; margin:6px 0; }
form.review div { display:flex; flex-wrap:wrap; gap:8px; align-items:center; }
form.review div label { display:inline; margin:0 0 0 8px; }
main > h2 { margin:22px 0 8px; }
form.promote { margin:6px 0; }
table { width:100%; border-collapse:collapse; background:var(--card); font-size:14px; }
th, td { text-align:left; vertical-align:top; padding:6px 8px;
  border-bottom:1px solid var(--line); }
th { font-size:12px; text-transform:uppercase; color:var(--muted); letter-spacing:.03em; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
td.url { word-break:break-all; max-width:320px; }
.claimtext { color:var(--muted); font-size:13px; margin-top:2px; max-width:320px; }
tr.match-rejected { opacity:.55; } tr.run-failed td { color:var(--red); }
.conflict { color:var(--red); font-size:13px; margin-top:4px; }
.candidate { margin:8px 0; } .candidate-promoted, .candidate-rejected { opacity:.6; }
.article-text p { margin:0 0 10px; max-width:75ch; }
mark { padding:0 2px; border-radius:2px; }
mark.hl-claim { background:#bbf7d0; } mark.hl-suggested { background:#dcfce7; }
mark.hl-conflict { background:#fecaca; } mark.hl-candidate { background:#fde68a; }
.flash { padding:8px 12px; border-radius:6px; background:#dcfce7; color:#166534;
  border:1px solid #bbf7d0; }
.flash-error { background:#fef2f2; color:#991b1b; border-color:#fecaca; }
.empty { padding:24px; text-align:center; color:var(--muted); }
code { font-size:13px; }
"""
