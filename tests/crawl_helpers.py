"""End-to-end crawl helpers: a programmable local HTTP server and a crawl in a subprocess.

A Twisted reactor cannot be restarted, so every crawl runs in its own Python process
(``python -m tests.crawl_helpers SPEC_JSON``), which prints the crawl summary as JSON
on its last stdout line and logs at INFO to stderr. The HTTP server runs in the test
process, serves a fixture directory (``${SITE}``, ``${OTHER_SITE}``, ``${NOW}`` and
``${OLD}`` substituted; ``X.gz`` is ``X`` gzipped; ETag/Last-Modified and 304s), plus
programmable routes for hostile cases, and records every request it gets.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
SITES = Path(__file__).resolve().parent / "fixtures" / "sites"

# Settings every test crawl uses: fast, quiet about politeness delays, loopback allowed.
FAST_SETTINGS: dict[str, Any] = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "RETRY_TIMES": 1,
    "DOWNLOAD_TIMEOUT": 5,
    "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": True,
    "CLAIMWATCH_RETRY_AFTER_MAX": 5,
    "LOG_LEVEL": "INFO",
}


@dataclass
class Seen:
    method: str
    path: str
    host: str
    headers: dict[str, str]
    at: float


Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        site = self.server.site
        path = urlsplit(self.path).path
        site.record(self, path)
        with site.inflight():
            try:
                route = site.routes.get(path)
                if route is not None:
                    route(self)
                else:
                    site.serve_file(self, path)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeouts, size limits): expected here

    def send(self, status: int, body: bytes = b"", content_type: str = "text/html; charset=utf-8",
             headers: Mapping[str, str] | None = None, length: bool = True) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    site: Site

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a real bug in a test route


@dataclass
class Site:
    """A local site: fixture files under ``root`` plus ``routes`` (path -> handler)."""

    root: Path | None = None
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    max_inflight: int = 0
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight = 0
        self._server: _Server | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Site:
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.site = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other_url(self) -> str:
        """The same server under another site name (offsite for ``url``)."""
        return f"http://localhost:{self.port}"

    # -- recording --------------------------------------------------------------------------

    def record(self, handler: Handler, path: str) -> None:
        seen = Seen(handler.command, path, handler.headers.get("Host", ""),
                    {k.lower(): v for k, v in handler.headers.items()}, time.monotonic())
        with self._lock:
            self.requests.append(seen)

    class _Inflight:
        def __init__(self, site: Site) -> None:
            self.site = site

        def __enter__(self) -> None:
            with self.site._lock:
                self.site._inflight += 1
                self.site.max_inflight = max(self.site.max_inflight, self.site._inflight)

        def __exit__(self, *exc: object) -> None:
            with self.site._lock:
                self.site._inflight -= 1

    def inflight(self) -> Site._Inflight:
        return Site._Inflight(self)

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_inflight = 0

    # -- content ------------------------------------------------------------------------------

    def render(self, text: str) -> str:
        return (text.replace("${SITE}", self.url).replace("${OTHER_SITE}", self.other_url)
                .replace("${NOW}", self.now.isoformat(timespec="seconds"))
                .replace("${OLD}", (self.now - timedelta(days=400)).date().isoformat()))

    def serve_file(self, handler: Handler, path: str) -> None:
        if self.root is None:
            handler.send(404, b"not found", "text/plain")
            return
        gz = path.endswith(".gz")
        rel = path.lstrip("/")[: -3 if gz else None]
        file = (self.root / rel).resolve()
        if file.is_dir() or path.endswith("/"):
            file = file / "index.html"
        if self.root.resolve() not in file.parents or not file.is_file():
            handler.send(404, b"<html><body>not found</body></html>")
            return
        body = self.render(file.read_text(encoding="utf-8")).encode("utf-8")
        if file.suffix == ".xml":
            ctype = "application/xml"
        elif file.suffix == ".txt":
            ctype = "text/plain; charset=utf-8"
        else:
            ctype = "text/html; charset=utf-8"
        if gz:
            body, ctype = gzip.compress(body, mtime=0), "application/gzip"
        self.send_cacheable(handler, body, ctype)

    def send_cacheable(self, handler: Handler, body: bytes, ctype: str) -> None:
        """200 with an ETag and Last-Modified, or 304 when the client's validators match."""
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        modified = "Thu, 15 Dec 2022 09:00:00 GMT"
        if handler.headers.get("If-None-Match") == etag:
            handler.send(304, b"", "", {"ETag": etag}, length=False)
            return
        handler.send(200, body, ctype, {"ETag": etag, "Last-Modified": modified})


@contextmanager
def serve(root: Path | None = None, routes: Mapping[str, Route] | None = None) -> Iterator[Site]:
    site = Site(root=root, routes=dict(routes or {})).start()
    try:
        yield site
    finally:
        site.stop()


# -- crawls in a subprocess ---------------------------------------------------------------------


@dataclass
class CrawlResult:
    returncode: int
    sources: dict[str, dict[str, Any]]  # name -> {status, error, counts, stats}
    stderr: str
    stdout: str

    def stats(self, source: str) -> dict[str, Any]:
        return self.sources[source]["stats"]

    def counts(self, source: str) -> dict[str, int]:
        return self.sources[source]["counts"]

    def stat(self, source: str, key: str) -> int:
        return int(self.sources[source]["stats"].get(f"claimwatch/{key}", 0))


def run_crawl_in_subprocess(topic: Path, db_url: str, settings: Mapping[str, Any] | None = None,
                            sources: list[str] | None = None, timeout: float = 180) -> CrawlResult:
    spec = {"topic": str(topic), "db": db_url, "sources": sources,
            "settings": {**FAST_SETTINGS, **(settings or {})}}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CLAIMWATCH_DB", None)
    proc = subprocess.run([sys.executable, "-m", "tests.crawl_helpers", json.dumps(spec)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"crawl failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    data = json.loads(lines[-1])
    return CrawlResult(proc.returncode, data, proc.stderr, proc.stdout)


def write_topic(path: Path, name: str, sources: list[dict[str, Any]],
                query: Mapping[str, list[str]] | None = None) -> Path:
    import yaml

    query = query or {"any": ["Twitter", "Musk"], "and_any": ["child"], "none": ["Tesla recall"]}
    path.write_text(yaml.safe_dump({"name": name, "query": dict(query), "sources": sources},
                                   sort_keys=False), encoding="utf-8")
    return path


def _main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    from crawler.runner import run_crawl

    summary = run_crawl(spec["topic"], sources=spec.get("sources"), db_url=spec["db"],
                        settings=spec["settings"])
    out = {
        s.source: {"status": s.status, "error": s.error, "counts": s.counts,
                   "stats": {k: v for k, v in s.stats.items()
                             if isinstance(v, (int, float, str))}}
        for s in summary.sources
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
