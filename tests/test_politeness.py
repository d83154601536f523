"""Politeness and limits come from Scrapy settings, and a real crawl keeps to them:
robots.txt first and obeyed, a User-Agent naming claimwatch, per-domain concurrency,
Retry-After; plus the `claimwatch crawl` summary columns."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.middlewares import retry_after_seconds
from crawler.runner import base_settings
from tests.crawl_helpers import REPO, Handler, Site, serve, write_topic
from tests.test_hostile import article


def test_politeness_and_limits_are_scrapy_settings() -> None:
    settings = base_settings()
    assert settings.getbool("ROBOTSTXT_OBEY")
    assert settings.getbool("AUTOTHROTTLE_ENABLED")
    assert settings.getfloat("AUTOTHROTTLE_TARGET_CONCURRENCY") <= 4
    assert 1 <= settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN") <= 8
    assert settings.getint("DOWNLOAD_MAXSIZE") == 10 * 1024 * 1024
    assert 5 <= settings.getint("DOWNLOAD_TIMEOUT") <= 60
    assert 1 <= settings.getint("RETRY_TIMES") <= 5
    codes = {int(code) for code in settings.getlist("RETRY_HTTP_CODES")}
    assert {429, 503} <= codes
    user_agent = settings.get("USER_AGENT")
    assert user_agent.startswith("claimwatch/") and "+http" in user_agent  # who and where
    middlewares = settings.getdict("DOWNLOADER_MIDDLEWARES")
    assert middlewares["scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"] is None
    for name in ("AddressGuardMiddleware", "RobotsTxtMiddleware", "ConditionalGetMiddleware",
                 "RetryAfterMiddleware", "CharsetMiddleware"):
        assert f"crawler.middlewares.{name}" in middlewares, name
    # the guard runs before robots.txt (no request at all), Retry-After before Scrapy's retry
    assert middlewares["crawler.middlewares.AddressGuardMiddleware"] < 100
    assert middlewares["crawler.middlewares.RetryAfterMiddleware"] > 550
    assert not settings.getbool("CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES")


def test_retry_after_header_values() -> None:
    now = datetime(2022, 12, 21, 12, 0, tzinfo=UTC)
    assert retry_after_seconds(b"120") == 120.0
    assert retry_after_seconds("Wed, 21 Dec 2022 12:01:30 GMT", now) == 90.0
    assert retry_after_seconds("Wed, 21 Dec 2022 11:00:00 GMT", now) == 0.0  # in the past
    assert retry_after_seconds(b"soon") is None and retry_after_seconds(None) is None
    later = now + timedelta(hours=1)
    assert retry_after_seconds(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), now) == 3600.0


SLOW_ARTICLES = [f"/2022/12/{10 + n}/twitter-child-safety-story-{n}.html" for n in range(8)]


def _slow_page(n: int):  # type: ignore[no-untyped-def]
    def route(h: Handler) -> None:
        time.sleep(0.4)
        h.send(200, article(100 + n).encode())
    return route


def _feed() -> bytes:
    links = [*SLOW_ARTICLES, "/private/2022/12/20/memo.html"]
    items = "".join(f"<item><title>Story {i}</title><link>{link}</link></item>"
                    for i, link in enumerate(links))
    return f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


@pytest.fixture(scope="module")
def polite_site() -> Iterator[Site]:
    routes = {path: _slow_page(n) for n, path in enumerate(SLOW_ARTICLES)}
    routes["/robots.txt"] = lambda h: h.send(
        200, b"User-agent: *\nDisallow: /private/\n", "text/plain")
    routes["/feed.xml"] = lambda h: h.send(200, _feed(), "application/rss+xml")
    routes["/private/2022/12/20/memo.html"] = lambda h: h.send(200, article(199).encode())
    with serve(routes=routes) as site:
        yield site


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CLAIMWATCH_DB", None)
    return subprocess.run([sys.executable, "-m", "claimwatch.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)


def test_a_crawl_is_polite_and_prints_per_source_counts(tmp_path: Path, polite_site: Site) -> None:
    topic = write_topic(tmp_path / "topic.yaml", "polite-test", [
        {"name": "polite", "kind": "feed", "url": f"{polite_site.url}/feed.xml"},
    ])
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    sets = ["AUTOTHROTTLE_ENABLED=False", "CONCURRENT_REQUESTS_PER_DOMAIN=2",
            "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=True"]
    polite_site.reset()
    proc = _cli("crawl", str(topic), "--db", db, *[f"--set={s}" for s in sets])
    assert proc.returncode == 0, proc.stderr[-3000:]

    requests = polite_site.requests
    expected_agent = base_settings().get("USER_AGENT")
    assert {r.headers.get("user-agent") for r in requests} == {expected_agent}
    assert requests[0].path == "/robots.txt"  # asked before anything else on the host
    assert not [r for r in requests if r.path.startswith("/private/")]
    # per-domain concurrency: the eight slow pages went two at a time, never more
    assert polite_site.max_inflight == 2
    assert sorted(r.path for r in requests if r.path in SLOW_ARTICLES) == sorted(SLOW_ARTICLES)

    header, row = proc.stdout.splitlines()[1:3]
    columns = header.split()
    assert columns[:1] == ["source"] and columns[-1] == "status"
    for name in ("fetched", "not_modified", "new", "seen", "refused", "errors"):
        assert name in columns, name
    values = dict(zip(columns[1:-1], map(int, row.split()[1:len(columns) - 1]), strict=True))
    assert values["fetched"] == 8 and values["new"] == 8 and values["refused"] == 1
    assert values["not_modified"] == 0 and values["errors"] == 0
    assert row.split()[0] == "polite" and row.split()[-1] == "ok"

    # Again: the feed is fetched again (no validators from this server), every article
    # is stored already, so none is fetched.
    polite_site.reset()
    again = _cli("crawl", str(topic), "--db", db, *[f"--set={s}" for s in sets])
    assert again.returncode == 0, again.stderr[-3000:]
    assert not [r for r in polite_site.requests if r.path in SLOW_ARTICLES]
    row = again.stdout.splitlines()[2].split()
    values = dict(zip(columns[1:-1], map(int, row[1:len(columns) - 1]), strict=True))
    assert values["fetched"] == 0 and values["seen"] == 8 and values["refused"] == 1
