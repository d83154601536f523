"""Hostile input: every bad page, feed or sitemap gives a logged, counted error while the
rest of the crawl goes on and nothing already stored is lost. Also the address guard
(no fetches from loopback, private, link-local or metadata addresses).

Each case is served by a local HTTP server; the big ones (a 50 MB page, a gzip bomb, a
60,000-URL sitemap) are generated when the server starts, never stored. All cases run
in two crawls (one subprocess each) to keep the suite fast.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.crawl_helpers import (
    CrawlResult,
    Handler,
    Site,
    run_crawl_in_subprocess,
    serve,
    write_topic,
)

MB = 1024 * 1024
# DOWNLOAD_TIMEOUT in these crawls; /slow.html takes longer. Not lower: item pipelines run
# on the reactor thread, and a loaded CI machine could then time out healthy pages.
TIMEOUT = 3

SENTENCES = [
    "Twitter's child safety team was cut again this week, former employees said.",
    "Advocates who report child exploitation material say replies now take days.",
    "The company says automated tools catch more abusive accounts than before.",
    "Researchers could not verify the figures Twitter published on Tuesday.",
    "Regulators in Europe asked how the platform protects children from abuse.",
    "Advertisers paused campaigns after their posts appeared beside abusive accounts.",
    "A spokesperson said child safety remained the company's first priority.",
    "Former moderators described queues of unreviewed reports growing every week.",
]


def article(n: int, title: str | None = None, extra: str = "", meta: str = "") -> str:
    rng = random.Random(n)
    paras = rng.sample(SENTENCES, 6)
    body = "".join(f"<p>{s} (Report {n}.{i}.)</p>" for i, s in enumerate(paras))
    title = title or f"Twitter child safety report number {n}"
    return (f"<!DOCTYPE html><html><head>{meta}<title>{title}</title></head><body><article>"
            f"<h1>{title}</h1>{extra}{body}</article></body></html>")


GOOD = {f"/good/{n}.html": article(n).encode() for n in range(1, 4)}
CP1252_TEXT = "Café owners said the “safety council” – disbanded – had helped. Naïve? No."
SJIS_TEXT = ("ツイッターの児童安全チームが縮小されたと元社員が証言した。"
             "児童の性的搾取に関する報告への対応が遅れていると支援団体は述べている。") * 2


def _bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    chunk = b"\0" * MB
    return b"".join([*(packer.compress(chunk) for _ in range(256)), packer.flush()])


def _stream_50mb(h: Handler, declare_length: bool) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "text/html; charset=utf-8")
    if declare_length:
        h.send_header("Content-Length", str(50 * MB))
    h.end_headers()
    chunk = (b"<p>" + b"x" * 1017 + b"</p>\n") * 64  # 64 KB of HTML
    for _ in range(50 * MB // len(chunk)):
        h.wfile.write(chunk)


def _truncated_transfer(h: Handler) -> None:
    body = article(40).encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/html; charset=utf-8")
    h.send_header("Content-Length", str(len(body) * 3))  # promises more than it sends
    h.end_headers()
    h.wfile.write(body)
    h.wfile.flush()
    h.close_connection = True


def _busy_then_ok() -> Any:
    calls = {"n": 0}

    def route(h: Handler) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            h.send(503, b"busy", "text/plain", {"Retry-After": "1"})
        else:
            h.send(200, article(50, "Twitter child safety report after a 503").encode())

    return route


def _slow(h: Handler) -> None:
    time.sleep(TIMEOUT + 3)
    h.send(200, article(60).encode())


def _big_sitemap(now: datetime) -> bytes:
    recent, old = now.isoformat(timespec="seconds"), (now - timedelta(days=90)).date().isoformat()
    rows = [f"<url><loc>/good/{n}.html</loc><lastmod>{recent}</lastmod></url>" for n in (1, 2)]
    rows += [f"<url><loc>/archive/{i}.html</loc><lastmod>{old}</lastmod></url>"
             for i in range(49_998)]
    # past the 50,000-URL limit: recent, but never fetched
    rows += [f"<url><loc>/over/{i}.html</loc><lastmod>{recent}</lastmod></url>"
             for i in range(10_000)]
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset '
            'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            + "".join(rows) + "</urlset>").encode()


HOSTILE_LINKS = [
    "/good/1.html",
    "/cp1252.html", "/sjis.html", "/wrong-charset.html", "/truncated-markup.html",
    "/truncated-transfer.html", "/empty.html", "/binary.html",
    "/huge-declared.html", "/huge-streamed.html", "/bomb.html", "/loop-a.html",
    "/refresh-loop-a.html",
    "/gone-404.html", "/gone-410.html", "/error-500.html", "/busy-503.html",
    "/busy-503-long.html", "/slow.html",
    "/good/2.html", "/good/3.html",
]
FAILING = ["/truncated-transfer.html", "/huge-declared.html", "/huge-streamed.html",
           "/bomb.html", "/loop-a.html", "/refresh-loop-a.html", "/gone-404.html",
           "/gone-410.html", "/error-500.html",
           "/busy-503-long.html", "/slow.html"]


def _feed(links: list[str]) -> bytes:
    items = "".join(f"<item><title>Item {i}</title><link>{link}</link></item>"
                    for i, link in enumerate(links))
    items += "<item><title>An entry without a link</title></item>"
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Hostile</title>{items}'
            "</channel></rss>").encode()


def hostile_routes(now: datetime) -> dict[str, Any]:
    bomb = _bomb()
    routes: dict[str, Any] = {
        "/robots.txt": lambda h: h.send(200, b"User-agent: *\nAllow: /\n", "text/plain"),
        "/feed.xml": lambda h: h.send(200, _feed(HOSTILE_LINKS), "application/rss+xml"),
        "/cp1252.html": lambda h: h.send(200, article(
            10, "Twitter child safety and the café council",
            f"<p>{CP1252_TEXT}</p>", '<meta charset="windows-1252">').encode("cp1252"),
            "text/html"),
        "/sjis.html": lambda h: h.send(200, article(
            11, "Twitter child safety in Japan", f"<p>{SJIS_TEXT}</p>").encode("shift_jis"),
            "text/html; charset=Shift_JIS"),
        "/wrong-charset.html": lambda h: h.send(200, article(
            12, "Twitter child safety, wrongly labelled", f"<p>{CP1252_TEXT}</p>").encode("cp1252"),
            "text/html; charset=utf-8"),
        "/truncated-markup.html": lambda h: h.send(
            200, article(13).encode()[:-60] + b"<p class=\"tr"),
        "/truncated-transfer.html": _truncated_transfer,
        "/empty.html": lambda h: h.send(200, b""),
        "/binary.html": lambda h: h.send(200, random.Random(7).randbytes(64 * 1024)),
        "/huge-declared.html": lambda h: _stream_50mb(h, declare_length=True),
        "/huge-streamed.html": lambda h: _stream_50mb(h, declare_length=False),
        "/bomb.html": lambda h: h.send(200, bomb, "text/html; charset=utf-8",
                                       {"Content-Encoding": "gzip"}),
        "/loop-a.html": lambda h: h.send(302, b"", "", {"Location": "/loop-b.html"}),
        "/loop-b.html": lambda h: h.send(302, b"", "", {"Location": "/loop-a.html"}),
        "/refresh-loop-a.html": lambda h: h.send(
            200, b'<html><head><meta http-equiv="refresh" content="0; url=/refresh-loop-b.html">'
                 b"</head><body>moved</body></html>"),
        "/refresh-loop-b.html": lambda h: h.send(
            200, b'<html><head><meta http-equiv="refresh" '
                 b'content="0;URL=\'/refresh-loop-a.html\'"></head><body>moved</body></html>'),
        "/gone-404.html": lambda h: h.send(404, b"<html><body>Not found</body></html>"),
        "/gone-410.html": lambda h: h.send(410, b"<html><body>Gone</body></html>"),
        "/error-500.html": lambda h: h.send(500, b"<html><body>Oops</body></html>"),
        "/busy-503.html": _busy_then_ok(),
        "/busy-503-long.html": lambda h: h.send(503, b"busy", "text/plain",
                                                {"Retry-After": "3600"}),
        "/slow.html": _slow,
        # feeds and sitemaps that are themselves broken
        "/broken-feed.xml": lambda h: h.send(200, (
            b'<?xml version="1.0"?><rss version="2.0"><channel><title>Broken & unescaped'
            b"<item><title>Recovered</title><link>/good/3.html</link></item>"
            b"<item><title>Cut off</title><link>/good/"), "application/rss+xml"),
        "/not-a-feed.xml": lambda h: h.send(200, b"<html><body><h1>502 Bad Gateway</h1>"
                                                 b"</body></html>"),
        "/big-sitemap.xml": lambda h: h.send(200, _big_sitemap(now), "application/xml"),
        "/garbage-sitemap.xml": lambda h: h.send(200, b"\x00\x01\x02 not xml at all",
                                                 "application/xml"),
    }
    routes.update({path: _page(body) for path, body in GOOD.items()})
    return routes


def _page(body: bytes) -> Any:
    return lambda h: h.send(200, body)


@pytest.fixture(scope="module")
def hostile_site() -> Iterator[Site]:
    now = datetime.now(UTC)
    with serve(routes=hostile_routes(now)) as site:
        yield site


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory: pytest.TempPathFactory, hostile_site: Site) -> tuple[str, dict]:
    """A database holding two articles from an earlier crawl (one of them on the feed)."""
    from storage.db import init_db, make_engine, session_factory
    from storage.repository import ArticleRecord, Store

    url = f"sqlite:///{tmp_path_factory.mktemp('hostile-db') / 'claimwatch.sqlite'}"
    engine = make_engine(url)
    init_db(engine)
    store = Store(session_factory(engine))
    before = {}
    for path, text in [("/good/1.html", "Stored earlier: " + " ".join(SENTENCES)),
                       ("/earlier/story.html", "Another earlier story. " + " ".join(SENTENCES))]:
        full = hostile_site.url + path
        saved = store.save(ArticleRecord(topic="hostile-test", source="hostile", url=full,
                                         canonical_url=full, text=text, content_hash=path,
                                         title=f"Earlier {path}"))
        before[full] = (saved.id, text)
    engine.dispose()
    return url, before


@pytest.fixture(scope="module")
def hostile_crawl(tmp_path_factory: pytest.TempPathFactory, hostile_site: Site,
                  hostile_db: tuple[str, dict]) -> CrawlResult:
    url = hostile_site.url
    topic = write_topic(tmp_path_factory.mktemp("hostile") / "topic.yaml", "hostile-test", [
        {"name": "hostile", "kind": "feed", "url": f"{url}/feed.xml"},
        {"name": "broken-feed", "kind": "feed", "url": f"{url}/broken-feed.xml"},
        {"name": "not-a-feed", "kind": "feed", "url": f"{url}/not-a-feed.xml"},
        {"name": "big-sitemap", "kind": "sitemap", "url": f"{url}/big-sitemap.xml"},
        {"name": "garbage-sitemap", "kind": "sitemap", "url": f"{url}/garbage-sitemap.xml"},
    ])
    hostile_site.reset()
    started = time.monotonic()
    result = run_crawl_in_subprocess(topic, hostile_db[0], {"DOWNLOAD_TIMEOUT": TIMEOUT})
    result.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return result


def _articles(db_url: str) -> dict[str, Any]:
    from storage.db import make_engine, session_factory
    from storage.models import Article

    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            return {a.url: a for a in session.scalars(select(Article))}
    finally:
        engine.dispose()


def test_hostile_pages_are_counted_and_the_good_ones_stored(
        hostile_crawl: CrawlResult, hostile_site: Site, hostile_db: tuple[str, dict]) -> None:
    source = hostile_crawl.sources["hostile"]
    assert source["status"] == "ok", source["error"]
    log = hostile_crawl.stderr
    base = hostile_site.url
    unlogged = [p for p in FAILING if f"could not fetch {base}{p}" not in log]
    assert not unlogged, "\n".join(line for line in log.splitlines()
                                   if "WARNING" in line or "ERROR" in line)
    assert hostile_crawl.stat("hostile", "errors/fetch") == len(FAILING)
    assert hostile_crawl.stat("hostile", "extract/empty") == 1
    assert hostile_crawl.stat("hostile", "extract/binary") == 1
    assert hostile_crawl.stat("hostile", "errors/charset") == 1
    assert hostile_crawl.stat("hostile", "feed/entries_without_link") == 1
    assert hostile_crawl.stat("hostile", "skipped/seen") == 1  # /good/1.html, stored earlier
    stored = _articles(hostile_db[0])
    for path in ["/good/2.html", "/good/3.html", "/cp1252.html", "/sjis.html",
                 "/wrong-charset.html", "/truncated-markup.html", "/busy-503.html"]:
        assert base + path in stored, path
    for path in FAILING + ["/empty.html", "/binary.html"]:
        assert base + path not in stored, path
    # every failure is logged with its URL and why
    assert "larger than download max size (10485760)" in log  # DOWNLOAD_MAXSIZE 10 MB
    assert "DOWNLOAD_MAXSIZE" in log and "decompression" in log  # the gzip bomb
    assert "max redirections" in log.lower() or "redirect" in log.lower()
    assert "Retry-After 3600s" in log
    assert f"no article extracted from {base}/empty.html: empty" in log
    assert f"no article extracted from {base}/binary.html: binary" in log
    assert f"{base}/wrong-charset.html declares charset utf-8" in log


def test_non_utf8_pages_are_decoded_right(hostile_crawl: CrawlResult, hostile_site: Site,
                                          hostile_db: tuple[str, dict]) -> None:
    stored = _articles(hostile_db[0])
    base = hostile_site.url
    assert CP1252_TEXT in stored[base + "/cp1252.html"].text  # declared by <meta charset>
    assert CP1252_TEXT in stored[base + "/wrong-charset.html"].text  # header lied: repaired
    assert SJIS_TEXT[:40] in stored[base + "/sjis.html"].text
    assert "\ufffd" not in stored[base + "/sjis.html"].text


def test_retry_after_is_honoured_and_long_waits_are_not_retried(
        hostile_crawl: CrawlResult, hostile_site: Site) -> None:
    first, second = hostile_site.hits("/busy-503.html")
    assert second.at - first.at >= 0.9  # Retry-After: 1
    assert len(hostile_site.hits("/busy-503-long.html")) == 1  # Retry-After: 3600, no retry
    assert hostile_crawl.stat("hostile", "retry_after/waited") == 1
    assert hostile_crawl.stat("hostile", "retry_after/too_long") == 1
    assert len(hostile_site.hits("/error-500.html")) == 2  # RETRY_TIMES=1 in these crawls


def test_size_limits_stop_big_pages_and_gzip_bombs_early(hostile_crawl: CrawlResult,
                                                         hostile_site: Site) -> None:
    # Scrapy 2.19: a declared Content-Length above DOWNLOAD_MAXSIZE is cancelled on the
    # headers, an undeclared one once 10 MB have arrived, and HttpCompressionMiddleware
    # stops decompressing at DOWNLOAD_MAXSIZE (the bomb inflates to 256 MB).
    stats = hostile_crawl.stats("hostile")
    assert stats["downloader/response_bytes"] < 40 * MB
    assert stats["memusage/max"] < 600 * MB
    assert hostile_crawl.elapsed < 60  # type: ignore[attr-defined]
    # not retried: a size limit is not a transient failure (a lost connection is). The
    # streamed page may time out once under load before it reaches the limit: then retried.
    for path in ("/huge-declared.html", "/bomb.html"):
        assert len(hostile_site.hits(path)) == 1, path
    assert "larger than download max size (10485760) in request <GET " \
        f"{hostile_site.url}/huge-streamed.html>" in hostile_crawl.stderr
    assert len(hostile_site.hits("/truncated-transfer.html")) == 2


def test_broken_feeds_and_sitemaps_fail_their_source_only(
        hostile_crawl: CrawlResult, hostile_site: Site, hostile_db: tuple[str, dict]) -> None:
    # recoverable XML: what could be read is used
    broken = hostile_crawl.sources["broken-feed"]
    assert broken["status"] == "ok" and hostile_crawl.stat("broken-feed", "feed/entries") >= 1
    # an HTML error page where the feed should be: the source fails, visibly
    not_feed = hostile_crawl.sources["not-a-feed"]
    assert not_feed["status"] == "failed" and "could not be fetched or parsed" in not_feed["error"]
    assert hostile_crawl.stat("not-a-feed", "errors/feed") == 1
    assert "not an RSS or Atom feed" in hostile_crawl.stderr
    garbage = hostile_crawl.sources["garbage-sitemap"]
    assert garbage["status"] == "failed"
    assert hostile_crawl.stat("garbage-sitemap", "errors/sitemap") == 1
    assert f"sitemap {hostile_site.url}/garbage-sitemap.xml: not" in hostile_crawl.stderr


def test_sixty_thousand_url_sitemap(hostile_crawl: CrawlResult, hostile_site: Site) -> None:
    assert hostile_crawl.sources["big-sitemap"]["status"] == "ok"
    assert hostile_crawl.stat("big-sitemap", "sitemap/entries") == 50_000
    assert hostile_crawl.stat("big-sitemap", "sitemap/over_limit_urls") == 10_000
    assert hostile_crawl.stat("big-sitemap", "errors/sitemap_over_limit") == 1
    assert hostile_crawl.stat("big-sitemap", "sitemap/skipped_old") == 49_998
    assert "more than CLAIMWATCH_SITEMAP_MAX_URLS" in hostile_crawl.stderr
    assert not [p for p in hostile_site.paths() if p.startswith(("/archive/", "/over/"))]


def test_a_slow_sitemap_parse_does_not_hold_up_the_crawl(tmp_path: Path) -> None:
    """The sitemap is parsed off the reactor thread. On it, the 60,000-URL sitemap above
    (~2 s of CPU, 4-7 s of wall time at load 7) stopped every source of the crawl: no
    download started, no DOWNLOAD_TIMEOUT fired, and /slow.html, answering 6 s after it
    was asked, was read when the reactor came back and stored instead of timing out (2
    of 3 runs at load 5-8). The parse is made 1.5 s slower here (a sleep where the parse
    runs), so the check does not depend on the machine's speed: on the reactor thread the
    reactor cannot tick during it."""
    from storage.db import init_db, make_engine

    recent = datetime.now(UTC).isoformat(timespec="seconds")
    sitemap = ('<?xml version="1.0" encoding="UTF-8"?><urlset '
               'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
               + "".join(f"<url><loc>{path}</loc><lastmod>{recent}</lastmod></url>"
                         for path in GOOD) + "</urlset>").encode()
    routes: dict[str, Any] = {
        "/robots.txt": lambda h: h.send(200, b"User-agent: *\nAllow: /\n", "text/plain"),
        "/sitemap.xml": lambda h: h.send(200, sitemap, "application/xml"),
    }
    routes.update({path: _page(body) for path, body in GOOD.items()})
    db_url = f"sqlite:///{tmp_path / 'claimwatch.sqlite'}"
    engine = make_engine(db_url)
    init_db(engine)
    engine.dispose()
    with serve(routes=routes) as site:
        topic = write_topic(tmp_path / "topic.yaml", "hostile-test", [
            {"name": "sitemap", "kind": "sitemap", "url": f"{site.url}/sitemap.xml"}])
        result = run_crawl_in_subprocess(topic, db_url, {
            "EXTENSIONS": {"tests.fault_hooks.Faults": 0},
            "CLAIMWATCH_TEST_SITEMAP_PARSE_SLEEP": 1.5,
        })
    assert result.sources["sitemap"]["status"] == "ok", result.sources["sitemap"]["error"]
    assert result.stat("sitemap", "sitemap/entries") == len(GOOD)
    assert result.stat("sitemap", "fetched") == len(GOOD)
    # a 0.05 s LoopingCall: ~30 ticks in 1.5 s; none when the parse holds the reactor
    assert result.stat("sitemap", "test/reactor_ticks_during_parse") >= 5


def test_nothing_stored_earlier_is_lost(hostile_crawl: CrawlResult,
                                        hostile_db: tuple[str, dict]) -> None:
    stored = _articles(hostile_db[0])
    for url, (article_id, text) in hostile_db[1].items():
        assert stored[url].id == article_id and stored[url].text == text
    assert len(stored) == len(hostile_db[1]) + sum(
        s["counts"]["new"] for s in hostile_crawl.sources.values())


def test_validators_are_not_stored_when_articles_failed(
        hostile_crawl: CrawlResult, hostile_db: tuple[str, dict]) -> None:
    from storage.db import make_engine, session_factory
    from storage.repository import Store

    engine = make_engine(hostile_db[0])
    try:
        store = Store(session_factory(engine))
        state = store.source_state("hostile-test", "hostile")
        # the feed must be read again next time, so the failed articles are retried
        assert state is not None and state.etag is None and state.last_modified is None
        assert state.last_success is not None
        failed = store.source_state("hostile-test", "not-a-feed")
        assert failed is not None and failed.consecutive_failures == 1 and failed.last_error
    finally:
        engine.dispose()


# -- the address guard --------------------------------------------------------------------------

SSRF_LINKS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/2022/12/16/intranet-story.html",
    "http://192.168.1.1/admin",
    "http://[::1]:{port}/good/1.html",
    "http://127.0.0.2:{port}/good/1.html",
    "http://localhost:{port}/good/2.html",
    "http://2130706433:{port}/good/3.html",  # 127.0.0.1, found only by resolving the name
    "/redirect-to-metadata.html",
    "file:///etc/passwd",
    "/good/1.html",  # on the allowed host: fetched
]


def test_private_loopback_link_local_and_metadata_addresses_are_refused(
        tmp_path: Path, hostile_site: Site) -> None:
    port = hostile_site.port
    links = [link.format(port=port) for link in SSRF_LINKS]
    hostile_site.routes["/ssrf-feed.xml"] = lambda h: h.send(
        200, _feed(links), "application/rss+xml")
    hostile_site.routes["/redirect-to-metadata.html"] = lambda h: h.send(
        302, b"", "", {"Location": "http://169.254.169.254/latest/meta-data/"})
    topic = write_topic(tmp_path / "topic.yaml", "ssrf-test", [
        {"name": "ssrf", "kind": "feed", "url": f"{hostile_site.url}/ssrf-feed.xml"},
        {"name": "intranet", "kind": "feed", "url": "http://127.0.0.3:9/feed.xml"},
    ])
    hostile_site.reset()
    result = run_crawl_in_subprocess(topic, f"sqlite:///{tmp_path / 'db.sqlite'}", {
        "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": False,
        "CLAIMWATCH_ALLOWED_PRIVATE_HOSTS": f"127.0.0.1:{port}",
        "DOWNLOAD_TIMEOUT": 3,
    })
    counts = result.counts("ssrf")
    assert result.sources["ssrf"]["status"] == "ok"
    assert counts["refused"] == 10 and counts["fetched"] == 1 and counts["new"] == 1
    assert counts["errors"] == 0  # nothing was even tried (10.0.0.1 would have timed out)
    assert result.stat("ssrf", "refused/metadata") == 3  # incl. the redirect's target
    assert result.stat("ssrf", "refused/private") == 2
    assert result.stat("ssrf", "refused/loopback") == 4
    assert result.stat("ssrf", "refused/scheme") == 1
    assert "169.254.169.254 is a metadata address" in result.stderr
    assert "CLAIMWATCH_ALLOWED_PRIVATE_HOSTS" in result.stderr
    # only the allowed host was reached, and only for the feed, robots.txt, one article
    # and the redirect
    assert sorted(r.path for r in hostile_site.requests) == sorted(
        ["/robots.txt", "/ssrf-feed.xml", "/good/1.html", "/redirect-to-metadata.html"])
    # a source whose own URL is a private address fails, naming the setting
    intranet = result.sources["intranet"]
    assert intranet["status"] == "failed" and result.stat("intranet", "refused/loopback") == 1


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.216.34", None), ("2606:4700:4700::1111", None), ("8.8.8.8", None),
        ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"), ("100.64.0.1", "private"),  # carrier-grade NAT
        ("169.254.1.1", "link_local"), ("fe80::1", "link_local"),
        ("169.254.169.254", "metadata"), ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("224.0.0.1", "multicast"),
        # special-purpose ranges Python counts as private: refused all the same
        ("240.0.0.1", "private"), ("192.0.2.1", "private"),
        ("not an ip", "invalid"),
    ],
)
def test_address_refusal_reasons(address: str, reason: str | None) -> None:
    from pipeline.addresses import refusal_reason

    assert refusal_reason(address) == reason


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("news.example.org", None),  # a name: resolved, then checked
        ("localhost", "loopback"), ("LOCALHOST.", "loopback"), ("api.localhost", "loopback"),
        ("metadata.google.internal", "metadata"), ("instance-data", "metadata"),
        ("printer.local", "private"), ("db.internal", "private"),
        ("[::1]", "loopback"), ("10.0.0.1", "private"), ("", "invalid"),
    ],
)
def test_host_refusal_reasons_without_resolving(host: str, reason: str | None) -> None:
    from pipeline.addresses import host_refusal_reason

    assert host_refusal_reason(host) == reason
