"""The daemon's HTTP layer: a small WSGI app with a router, and its JSON API.

The server is the standard library's ``wsgiref`` with one thread per request
(``ThreadingMixIn``), run in a background thread of the daemon: no extra
dependency, and plenty for one reviewer and a monitoring probe. Any WSGI server
can serve :class:`App` instead.

More routes (the review page) are added to the same app and port::

    app = build_api(daemon)

    @app.route("GET", "/review/{article_id:int}")
    def review_page(request: Request, article_id: int) -> Response:
        return Response.html(render_review(article_id))

JSON API (``curl -s http://127.0.0.1:8750/api/health``):

- ``GET /api/health``: daemon, scheduler and per-source health with gap alarms
  (``?strict=1`` answers 503 while any source has an alarm, for probes);
- ``GET /api/runs?topic=&source=&status=&limit=50&before=ID``: crawl history, newest first;
- ``GET /api/runs/{id}``: one run;
- ``POST /api/crawl`` with ``{"topic": "...", "source": "..."}`` (both optional when
  unambiguous; no source means every source of the topic): start a crawl now.
  ``202`` with the started runs, ``409`` when the source is being crawled already.

Access: without a token the API answers only loopback clients that name a loopback
host (so another site cannot reach it through DNS rebinding), and
:func:`check_listen` refuses a non-loopback address; with a token every API request
needs ``Authorization: Bearer TOKEN``. ``POST`` requests must be
``Content-Type: application/json``, which a page on another origin cannot send
without a CORS preflight (never granted here). Paths no route matches go to the
``fallback`` app (the review page, which checks access its own way).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import CrawlRun

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
MIN_TOKEN_LENGTH = 16
MAX_ID = 2**63 - 1  # the biggest id a database integer column holds
RUN_STATUSES = ("running", "ok", "failed", "timeout", "interrupted")


# ---------------------------------------------------------------------------
# Requests, responses, routing
# ---------------------------------------------------------------------------


class HTTPError(Exception):
    """Raised by a handler: becomes a JSON ``{"error": message, ...}`` response."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


@dataclass
class Request:
    environ: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", "GET")).upper()

    @property
    def path(self) -> str:
        return str(self.environ.get("PATH_INFO", "") or "/")

    @property
    def query(self) -> dict[str, str]:
        parsed = parse_qs(str(self.environ.get("QUERY_STRING", "")), keep_blank_values=True)
        return {name: values[-1] for name, values in parsed.items()}

    def body(self) -> bytes:
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HTTPError(400, "bad Content-Length") from None
        if length > MAX_BODY:
            raise HTTPError(413, f"request body larger than {MAX_BODY} bytes")
        return self.environ["wsgi.input"].read(length) if length > 0 else b""

    def json(self) -> Any:
        """The JSON body (``{}`` when empty); 415 unless it is sent as application/json."""
        content_type = str(self.environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
        if content_type != "application/json":
            raise HTTPError(415, "send the request body as Content-Type: application/json")
        raw = self.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise HTTPError(400, "request body is not valid JSON: nested too deep") from None

    def int_arg(self, name: str, default: int, low: int = 0, high: int | None = None) -> int:
        value = self.query.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise HTTPError(400, f"query parameter {name!r} must be a whole number") from None
        high = MAX_ID if high is None else high
        if number < low or number > high:
            bounds = f"{low}..{high}"
            raise HTTPError(400, f"query parameter {name!r} must be {bounds}")
        return number


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        text = json.dumps(data, ensure_ascii=False, indent=1, default=_json_default)
        return cls((text + "\n").encode("utf-8"), status)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(text.encode("utf-8"), status, "text/html; charset=utf-8")

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(text.encode("utf-8"), status, "text/plain; charset=utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


Handler = Callable[..., Response]
_PARAM = re.compile(r"\{(\w+)(?::(int))?\}")


@dataclass
class Route:
    method: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str]
    converters: dict[str, Callable[[str], Any]]


def _route_int(text: str) -> int:
    """A path's number; one of more than 19 digits (no id is that big) as MAX_ID + 1."""
    return int(text) if len(text) <= 19 else MAX_ID + 1


def _compile(pattern: str) -> tuple[re.Pattern[str], dict[str, Callable[[str], Any]]]:
    converters: dict[str, Callable[[str], Any]] = {}
    regex, last = "", 0
    for match in _PARAM.finditer(pattern):
        regex += re.escape(pattern[last:match.start()])
        name, kind = match.group(1), match.group(2)
        regex += rf"(?P<{name}>\d+)" if kind == "int" else rf"(?P<{name}>[^/]+)"
        converters[name] = _route_int if kind == "int" else str
        last = match.end()
    regex += re.escape(pattern[last:])
    return re.compile(f"^{regex}$"), converters


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.localdomain", "ip6-localhost") or name.endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_listen(host: str, token: str | None) -> None:
    """Refuse a non-loopback address without an access token (``ValueError``)."""
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the access token is {len(token)} characters long; use at least "
            f"{MIN_TOKEN_LENGTH}, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    if not is_loopback(host) and not token:
        raise ValueError(
            f"refusing to listen on {host}, which is not a loopback address, without an "
            "access token: pass --token (or set CLAIMWATCH_WEB_TOKEN), or listen on 127.0.0.1"
        )


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class App:
    """A WSGI application: routes map (method, path pattern) to ``handler(request, **params)``.

    ``token``: every routed request needs ``Authorization: Bearer TOKEN``; without
    one, only loopback clients naming a loopback host are answered. Requests no
    route matches go to ``fallback`` (another WSGI app) when there is one.
    """

    def __init__(self, *, token: str | None = None, fallback: WSGIApp | None = None,
                 sessions: Any = None) -> None:
        self.routes: list[Route] = []
        self.token = token or None
        self.fallback = fallback
        # With a database: named accounts' API tokens (claimwatch/accounts.py) are accepted,
        # and once an account exists every request but /api/health needs a token.
        self.sessions = sessions

    def mount(self, fallback: WSGIApp) -> None:
        """Send requests that no route matches to ``fallback``."""
        self.fallback = fallback

    def matches(self, path: str) -> bool:
        return any(route.regex.match(path) for route in self.routes)

    def _authorise_account(self, request: Request, bearer: str) -> bool:
        """With accounts: True when ``bearer`` is a user's API token; raises when the request
        needs one; False when there are no accounts (the token / loopback rules apply)."""
        from claimwatch.accounts import account_for_token, has_accounts

        try:
            with self.sessions.begin() as session:
                user = account_for_token(session, bearer) if bearer else None
                accounts = bearer == "" and has_accounts(session)
        except Exception as exc:  # noqa: BLE001 - the database is down: say so
            raise HTTPError(503, "the database is not reachable; see /api/health") from exc
        if bearer and user is None:
            raise HTTPError(401, "unknown or revoked API token")
        if user is not None:
            request.environ["claimwatch.actor"] = user.name
            return True
        if accounts:
            raise HTTPError(401, "accounts are in use: send a user's API token "
                                 "(claimwatch users token NAME) as Authorization: Bearer")
        return False

    def authorise(self, request: Request) -> None:
        auth = str(request.environ.get("HTTP_AUTHORIZATION") or "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if bearer and self.token and hmac.compare_digest(
                bearer.encode("utf-8", "replace"), self.token.encode()):
            return
        # (/api/health asks nothing of the database here: it reports its outages.)
        if self.sessions is not None and (bearer or request.path != "/api/health") \
                and self._authorise_account(request, bearer):
            return
        if self.token is None:
            remote = str(request.environ.get("REMOTE_ADDR") or "127.0.0.1")
            host = str(request.environ.get("HTTP_HOST") or "")
            name = host if host.endswith("]") else host.rsplit(":", 1)[0]
            if not is_loopback(remote):
                raise HTTPError(403, "this API only answers the machine it runs on; start the "
                                     "daemon with --token to use it from elsewhere")
            if host and not is_loopback(name):
                raise HTTPError(403, f"unexpected Host {host!r}: use http://127.0.0.1:PORT/")
            return
        raise HTTPError(401, "send the daemon's access token: Authorization: Bearer TOKEN")

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        regex, converters = _compile(pattern)
        self.routes.append(Route(method.upper(), pattern, handler, regex, converters))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.add_route(method, pattern, handler)
            return handler

        return decorate

    def dispatch(self, request: Request) -> Response:
        allowed: list[str] = []
        for route in self.routes:
            match = route.regex.match(request.path)
            if not match:
                continue
            method = "GET" if request.method == "HEAD" else request.method
            if route.method != method:
                allowed.append(route.method)
                continue
            params = {name: route.converters[name](value)
                      for name, value in match.groupdict().items()}
            if any(isinstance(v, int) and v > MAX_ID for v in params.values()):
                raise HTTPError(404, f"no such resource: {request.path}")  # no id that big
            return route.handler(request, **params)
        if allowed:
            error = HTTPError(405, f"{request.method} is not allowed on {request.path}",
                              allowed=sorted(set(allowed)))
            response = _error_response(error)
            response.headers.append(("Allow", ", ".join(sorted(set(allowed)))))
            return response
        raise HTTPError(404, f"no such resource: {request.path}")

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if self.fallback is not None and not self.matches(request.path):
            return self.fallback(environ, start_response)
        try:
            self.authorise(request)
            response = self.dispatch(request)
        except HTTPError as exc:
            response = _error_response(exc)
        except Exception:  # noqa: BLE001 - a handler bug must not take the server down
            logger.exception("error handling %s %s", request.method, request.path)
            response = Response.json({"error": "internal error (see the daemon's log)"}, 500)
        phrase = HTTPStatus(response.status).phrase
        headers = [("Content-Type", response.content_type),
                   ("Content-Length", str(len(response.body))),
                   ("Cache-Control", "no-store"), *response.headers]
        start_response(f"{response.status} {phrase}", headers)
        return [b""] if request.method == "HEAD" else [response.body]


def _error_response(error: HTTPError) -> Response:
    return Response.json({"error": error.message, **error.extra}, error.status)


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


# Seconds a connection may sit without sending its request (or reading the answer) before
# the server closes it: a half-open or stalled client must not hold a thread for ever.
IDLE_TIMEOUT = 15.0
_SECRET_IN_QUERY = re.compile(r"([?&](?:token|access_token)=)[^&\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """A request line fit for the log: ``?token=SECRET`` becomes ``?token=***``."""
    return _SECRET_IN_QUERY.sub(r"\1***", text)


class QuietErrorsMixin:
    """A client that times out or hangs up is not a server error: no traceback on stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (TimeoutError, ConnectionError)):
            logger.debug("connection from %s closed: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)  # type: ignore[misc]


class _ThreadingWSGIServer(QuietErrorsMixin, ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    timeout = IDLE_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("api: %s", redact(format % args))


def parse_listen(value: str) -> tuple[str, int] | None:
    """``HOST:PORT``, ``[v6]:PORT`` or ``PORT`` (host 127.0.0.1); ``none`` for no API.

    Raises ``ValueError`` with a one-line reason.
    """
    text = value.strip()
    if text.lower() in ("", "none", "off", "no"):
        return None
    match = re.match(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+)$", text)
    if match:
        host = match.group("v6") or match.group("host") or "127.0.0.1"
        port = int(match.group("port"))
    elif text.isdigit():
        host, port = "127.0.0.1", int(text)
    else:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8750), a port, or none")
    if port > 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host, port


class ApiServer:
    """Serves a WSGI app on ``host:port`` (port 0: any free port) in a background thread."""

    def __init__(self, app: WSGIApp, host: str, port: int) -> None:
        server_class = _ThreadingWSGIServer6 if ":" in host else _ThreadingWSGIServer
        self._server = make_server(host, port, app, server_class=server_class,
                                   handler_class=_QuietHandler)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="claimwatch-api", daemon=True)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------------------
# The JSON API
# ---------------------------------------------------------------------------


class DaemonControl(Protocol):
    """What the API needs of the daemon (claimwatch/daemon.py)."""

    sessions: sessionmaker[Session]

    def trigger(self, topic: str | None, source: str | None) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]: ...


def run_dict(run: CrawlRun) -> dict[str, Any]:
    return {
        "id": run.id, "topic": run.topic, "source": run.source, "trigger": run.trigger,
        "status": run.status, "started": iso(run.started), "finished": iso(run.finished),
        "duration": round((run.finished - run.started).total_seconds(), 3)
        if run.finished and run.started else None,
        "counts": dict(run.counts or {}), "error": run.error, "pid": run.pid,
        "exit_code": run.exit_code,
    }


def build_api(control: DaemonControl, app: App | None = None) -> App:
    """The daemon's JSON API on ``app`` (a new :class:`App` by default)."""
    app = app or App()

    @app.route("GET", "/api/health")
    def health(request: Request) -> Response:
        data = control.health()
        strict = request.query.get("strict", "") not in ("", "0", "false", "no")
        status = 503 if strict and data.get("status") != "ok" else 200
        return Response.json(data, status)

    @app.route("GET", "/api/runs")
    def runs(request: Request) -> Response:
        limit = request.int_arg("limit", 50, low=1, high=1000)
        before = request.int_arg("before", 0, low=0)
        query = select(CrawlRun).order_by(CrawlRun.id.desc()).limit(limit)
        for name in ("topic", "source", "trigger"):
            if request.query.get(name):
                query = query.where(getattr(CrawlRun, name) == request.query[name])
        status = request.query.get("status")
        if status:
            if status not in RUN_STATUSES:
                known = ", ".join(RUN_STATUSES)
                raise HTTPError(400, f"unknown status {status!r} (one of {known})")
            query = query.where(CrawlRun.status == status)
        if before:
            query = query.where(CrawlRun.id < before)
        with control.sessions() as session:
            found = [run_dict(run) for run in session.scalars(query)]
        return Response.json({"runs": found})

    @app.route("GET", "/api/runs/{run_id:int}")
    def one_run(request: Request, run_id: int) -> Response:
        with control.sessions() as session:
            run = session.get(CrawlRun, run_id)
            if run is None:
                raise HTTPError(404, f"no crawl run {run_id}")
            return Response.json(run_dict(run))

    @app.route("POST", "/api/crawl")
    def crawl(request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise HTTPError(400, 'send a JSON object such as {"topic": "t", "source": "s"}')
        values: dict[str, str | None] = {}
        for name in ("topic", "source"):
            value = body.get(name, request.query.get(name))
            if value is not None and not isinstance(value, str):
                raise HTTPError(400, f"{name!r} must be a string")
            values[name] = value or None
        result = control.trigger(values["topic"], values["source"])
        status = 202 if result.get("runs") else 409
        return Response.json(result, status)

    return app
