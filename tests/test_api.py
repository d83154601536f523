"""The JSON API of the web app (claimwatch/web/) in-process, as the daemon serves it:
routing, access control, JSON errors, the /api/v1 paths and their OpenAPI document."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from claimwatch.web import HTTPError, check_listen, create_app
from claimwatch.web import parse_api_listen as parse_listen
from storage.db import open_db
from storage.models import CrawlRun, utcnow


def build_api(daemon: Any, token: str | None = None) -> Any:
    """The daemon's app: pages and API, with ``daemon`` as its control."""
    return create_app(daemon.sessions, token=token, control=daemon)


def call(app: Any, method: str, path: str, body: bytes | None = None, *,
         content_type: str = "application/json", host: str = "127.0.0.1:8750",
         remote: str = "127.0.0.1", headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], Any]:
    path, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "CONTENT_TYPE": content_type if body is not None else "",
        "CONTENT_LENGTH": str(len(body)) if body is not None else "",
        "wsgi.input": io.BytesIO(body or b""), "HTTP_HOST": host, "REMOTE_ADDR": remote,
        "wsgi.url_scheme": "http", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8750",
        "SCRIPT_NAME": "", "wsgi.errors": io.StringIO(),
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    status: list[str] = []
    sent: dict[str, str] = {}

    def start_response(line: str, hdrs: list[tuple[str, str]]) -> None:
        status.append(line)
        sent.update(hdrs)

    result = app(environ, start_response)
    raw = b"".join(result)
    getattr(result, "close", lambda: None)()
    payload = json.loads(raw) if sent.get("Content-Type") == "application/json" and raw else raw
    return int(status[0].split()[0]), sent, payload


class FakeDaemon:
    def __init__(self, sessions: Any) -> None:
        self.sessions = sessions
        self.triggered: list[tuple[str | None, str | None]] = []
        self.busy = False

    def trigger(self, topic: str | None, source: str | None) -> dict[str, Any]:
        self.triggered.append((topic, source))
        if source == "nope":
            raise HTTPError(404, "topic 't' has no source 'nope'")
        if self.busy:
            return {"topic": "t", "runs": [], "refused": [{"source": source, "reason": "busy"}],
                    "error": "busy"}
        return {"topic": "t", "runs": [{"id": 7, "source": source, "status": "running"}],
                "refused": []}

    def health(self) -> dict[str, Any]:
        return {"status": "alarm", "alarms": [{"kind": "failing"}]}


@pytest.fixture
def daemon(sqlite_url: str) -> Any:
    engine, sessions = open_db(sqlite_url)
    now = utcnow()
    with sessions.begin() as session:
        for i, status in enumerate(["ok", "failed", "ok"], start=1):
            session.add(CrawlRun(topic="t", source=f"s{i % 2}", trigger="schedule",
                                 status=status, started=now, finished=now, counts={"new": i},
                                 exit_code=0))
    yield FakeDaemon(sessions)
    engine.dispose()


def test_runs_newest_first_with_filters(daemon: FakeDaemon) -> None:
    app = build_api(daemon)
    status, headers, data = call(app, "GET", "/api/runs")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert [r["id"] for r in data["runs"]] == [3, 2, 1]
    assert data["runs"][0]["counts"] == {"new": 3} and data["runs"][0]["duration"] == 0.0
    _, _, data = call(app, "GET", "/api/runs?status=ok&source=s1&limit=1")
    assert [r["id"] for r in data["runs"]] == [3]
    _, _, data = call(app, "GET", "/api/runs?before=3")
    assert [r["id"] for r in data["runs"]] == [2, 1]
    status, _, data = call(app, "GET", "/api/runs/2")
    assert status == 200 and data["status"] == "failed"
    assert call(app, "GET", "/api/runs/99")[0] == 404
    status, _, data = call(app, "GET", "/api/runs?limit=0")
    assert status == 400 and "limit" in data["error"]
    assert call(app, "GET", "/api/runs?status=weird")[0] == 400


def test_crawl_trigger_answers_202_or_409(daemon: FakeDaemon) -> None:
    app = build_api(daemon)
    status, _, data = call(app, "POST", "/api/crawl", b'{"topic": "t", "source": "s1"}')
    assert status == 202 and data["runs"][0]["id"] == 7
    assert daemon.triggered == [("t", "s1")]
    daemon.busy = True
    status, _, data = call(app, "POST", "/api/crawl", b'{"source": "s1"}')
    assert status == 409 and data["error"] == "busy"
    status, _, data = call(app, "POST", "/api/crawl", b'{"source": "nope"}')
    assert status == 404 and data == {"error": "topic 't' has no source 'nope'"}
    assert call(app, "POST", "/api/crawl", b"")[0] == 409  # {} is fine: every source


def test_crawl_trigger_wants_a_json_object(daemon: FakeDaemon) -> None:
    app = build_api(daemon)
    status, _, data = call(app, "POST", "/api/crawl", b"source=s1",
                           content_type="application/x-www-form-urlencoded")
    assert status == 415 and "application/json" in data["error"]
    assert call(app, "POST", "/api/crawl", b"{not json")[0] == 400
    assert call(app, "POST", "/api/crawl", b"[1]")[0] == 400
    assert call(app, "POST", "/api/crawl", b'{"source": 5}')[0] == 400
    assert daemon.triggered == []


def test_health_strict_is_503_on_alarm(daemon: FakeDaemon) -> None:
    app = build_api(daemon)
    assert call(app, "GET", "/api/health")[0] == 200
    assert call(app, "GET", "/api/health?strict=1")[0] == 503


def test_unknown_paths_and_methods(daemon: FakeDaemon) -> None:
    app = build_api(daemon)
    status, headers, data = call(app, "DELETE", "/api/runs")
    assert status == 405 and headers["Allow"] == "GET" and data["allowed"] == ["GET"]
    assert call(app, "GET", "/api/crawl")[0] == 405
    assert call(app, "GET", "/api/nothing")[0] == 404
    assert call(app, "HEAD", "/api/health")[2] == b""


def test_without_a_token_only_loopback_clients_and_hosts(daemon: FakeDaemon) -> None:
    app = build_api(daemon)
    assert call(app, "GET", "/api/health", remote="10.0.0.5")[0] == 403
    status, _, data = call(app, "GET", "/api/health", host="evil.example:8750")
    assert status == 403 and "unexpected Host" in data["error"]  # DNS rebinding
    assert call(app, "GET", "/api/health", host="localhost:8750")[0] == 200
    assert call(app, "GET", "/api/health", host="[::1]:8750", remote="::1")[0] == 200


def test_with_a_token_every_request_needs_it(daemon: FakeDaemon) -> None:
    token = "s3cret-token-0123456789"
    app = build_api(daemon, token=token)
    assert call(app, "GET", "/api/health", remote="10.0.0.5")[0] == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert call(app, "GET", "/api/health", remote="10.0.0.5", host="mon.example",
                headers=bearer)[0] == 200
    assert call(app, "GET", "/api/health", headers={"Authorization": "Bearer wrong"})[0] == 401


def test_v1_paths_and_pages_share_one_app(daemon: FakeDaemon) -> None:
    app = build_api(daemon)
    assert call(app, "GET", "/api/v1/health")[2]["status"] == "alarm"
    status, _, data = call(app, "GET", "/api/v1/runs?limit=1")
    assert status == 200 and [r["id"] for r in data["runs"]] == [3]
    assert call(app, "GET", "/api/v1/runs/2")[2]["status"] == "failed"
    status, _, data = call(app, "POST", "/api/v1/crawl", b'{"topic": "t", "source": "s1"}')
    assert status == 202 and data["runs"][0]["id"] == 7
    status, headers, page = call(app, "GET", "/claims")
    assert status == 200 and headers["Content-Type"].startswith("text/html")


def test_openapi_lists_every_v1_route(daemon: FakeDaemon) -> None:
    """Every /api/v1 route of the app is in the document, and nothing else is."""
    import re

    app = build_api(daemon)
    status, _, doc = call(app, "GET", "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(
                m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(item) for path, item in doc["paths"].items()}
    assert routes == documented
    for path, item in doc["paths"].items():
        for operation in item.values():
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), path


def test_a_handler_bug_is_a_json_500(daemon: FakeDaemon, caplog: pytest.LogCaptureFixture
                                     ) -> None:
    def boom() -> dict[str, Any]:
        raise ZeroDivisionError("x")

    daemon.health = boom  # type: ignore[method-assign]
    status, _, data = call(build_api(daemon), "GET", "/api/health")
    assert status == 500 and data == {"error": "internal error; the log has the details"}
    assert "GET /api/health failed" in caplog.text
    assert "Traceback" not in json.dumps(data)


@pytest.mark.parametrize(
    ("value", "address"),
    [("127.0.0.1:8750", ("127.0.0.1", 8750)), ("8750", ("127.0.0.1", 8750)),
     ("[::1]:0", ("::1", 0)), ("0.0.0.0:80", ("0.0.0.0", 80)), ("none", None)],
)
def test_parse_listen(value: str, address: tuple[str, int] | None) -> None:
    assert parse_listen(value) == address


@pytest.mark.parametrize("value", ["localhost", "1.2.3.4:x", "1.2.3.4:70000", "::1:80"])
def test_parse_listen_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(value)


def test_check_listen() -> None:
    check_listen("127.0.0.1", None)
    check_listen("0.0.0.0", "a-long-enough-token-123")
    with pytest.raises(ValueError, match="without an access token"):
        check_listen("0.0.0.0", None)
    with pytest.raises(ValueError, match="use at least 16"):
        check_listen("127.0.0.1", "short")
