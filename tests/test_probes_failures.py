"""Probes: the twelve failures a hostile probe found on main (issue 12), each kept fixed.

1 file:// links with private addresses allowed; 2 corrupted SQLite files; 3 a billion-laughs
feed; 4 a UTF-8 page with a stray byte; 5 non-ASCII CSRF tokens; 6 oversized numbers;
7 deeply nested JSON; 8 formula injection into claims.csv; 9 the access token in the log;
10 source options checked at load; 11 over-long feed links; 12 ``kill -9`` of a crawl.
The crawl cases (1, 3, 4, 11) share one crawl in a subprocess to keep the suite fast.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from claimwatch.cli import main
from config.loader import ConfigError, load_claims, load_topic
from storage.db import open_db
from storage.models import Article, ClaimCandidate, CrawlRun, KnownClaim
from tests.crawl_helpers import (
    REPO,
    CrawlResult,
    Handler,
    Site,
    run_crawl_in_subprocess,
    serve,
    write_topic,
)
from tests.review_fixtures import World
from tests.test_api import FakeDaemon
from tests.test_api import call as api_call
from tests.test_web import Client

TOKEN = "probe-token-0123456789abcdef"


def page(n: int, extra: str = "") -> bytes:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Twitter child safety {n}"
        f"</title></head><body><article><h1>Twitter child safety report {n}</h1>"
        f"<p>Twitter's child safety team was cut again this week, former employees said. {extra}</p>"
        f"<p>Advocates who report child exploitation material say replies now take days ({n}).</p>"
        f"<p>Regulators in Europe asked how the platform protects children from abuse ({n}).</p>"
        f"<p>Former moderators described queues of unreviewed reports growing every week.</p>"
        "</article></body></html>"
    ).encode()


def rss(items: list[tuple[str, str]], doctype: str = "") -> bytes:
    body = "".join(f"<item><title>{t}</title><link>{link}</link></item>" for t, link in items)
    return (f'<?xml version="1.0"?>{doctype}<rss version="2.0"><channel><title>probe</title>'
            f"{body}</channel></rss>").encode()


def _send(body: bytes, ctype: str = "text/html; charset=utf-8") -> Any:
    def route(h: Handler) -> None:
        h.send(200, body, ctype)

    return route


LOL = '<!ENTITY lol "lol">' + "".join(
    f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
STRAY_TEXT = "Twitter said it’s still working with the café owners on child safety."


def routes(site_url: str) -> dict[str, Any]:
    long_link = f"{site_url}/long/{'x' * 2100}.html"
    stray = page(20, STRAY_TEXT).replace(b"</h1>", b"</h1><p>bad byte here: \xff.</p>")
    return {
        "/file.xml": _send(rss([("Twitter child safety leak", "file:///etc/passwd"),
                                ("Twitter child safety good", f"{site_url}/a/1.html")]),
                           "application/rss+xml"),
        "/bomb.xml": _send(rss([("&lol9;", f"{site_url}/a/2.html"),
                                ("Twitter child safety real", f"{site_url}/a/3.html")],
                               f"<!DOCTYPE rss [{LOL}]>"), "application/rss+xml"),
        "/stray.xml": _send(rss([("Twitter child safety stray", f"{site_url}/stray.html")]),
                            "application/rss+xml"),
        "/long.xml": _send(rss([("Twitter child safety long", long_link),
                                ("Twitter child safety short", f"{site_url}/a/4.html")]),
                           "application/rss+xml"),
        "/stray.html": _send(stray),
        **{f"/a/{n}.html": _send(page(n)) for n in range(1, 5)},
    }


@pytest.fixture(scope="module")
def probe_site() -> Iterator[Site]:
    with serve() as site:
        site.routes.update(routes(site.url))
        yield site


@pytest.fixture(scope="module")
def probe_crawl(tmp_path_factory: pytest.TempPathFactory,
                probe_site: Site) -> tuple[CrawlResult, str]:
    tmp = tmp_path_factory.mktemp("probe-crawl")
    topic = write_topic(tmp / "probe.yaml", "probe", [
        {"name": name, "kind": "feed", "url": f"{probe_site.url}/{name}.xml"}
        for name in ("file", "bomb", "stray", "long")
    ])
    db_url = f"sqlite:///{tmp / 'probe.sqlite'}"
    return run_crawl_in_subprocess(topic, db_url), db_url


def stored(db_url: str) -> dict[str, Article]:
    engine, sessions = open_db(db_url)
    try:
        with sessions() as session:
            return {a.url: a for a in session.scalars(select(Article))}
    finally:
        engine.dispose()


# -- 1. file:// ---------------------------------------------------------------------------------


def test_1_file_links_are_refused_even_with_private_addresses_allowed(
        probe_crawl: tuple[CrawlResult, str], probe_site: Site) -> None:
    result, db_url = probe_crawl
    urls = stored(db_url)
    assert not [u for u in urls if not u.startswith("http")], urls
    assert not any("root:" in a.text for a in urls.values())
    assert f"{probe_site.url}/a/1.html" in urls  # the good entry of the same feed is stored
    assert result.stat("file", "refused/scheme") == 1
    assert result.counts("file")["refused"] == 1
    assert "refused file:///etc/passwd: only http(s) links are fetched" in result.stderr


@pytest.mark.parametrize("allow_private", [True, False])
def test_1_address_guard_refuses_other_schemes_whatever_the_settings(allow_private: bool) -> None:
    from scrapy import Request
    from scrapy.utils.test import get_crawler

    from crawler.middlewares import AddressGuardMiddleware, RefusedRequest

    crawler = get_crawler(settings_dict={"CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES": allow_private})
    crawler.stats.open_spider()
    guard = AddressGuardMiddleware.from_crawler(crawler)
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x", "data:text/html,hi"):
        with pytest.raises(RefusedRequest) as refused:
            asyncio.run(guard.process_request(Request(url)))
        assert refused.value.reason == "scheme"
    assert crawler.stats.get_value("claimwatch/refused/scheme") == 3


# -- 2. corrupted SQLite -----------------------------------------------------------------------


def _random_file(path: Path) -> None:
    path.write_bytes(os.urandom(200_000))


def _truncated_file(path: Path) -> None:
    engine, _ = open_db(f"sqlite:///{path}")
    engine.dispose()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3 + 5])


def _overwritten_file(path: Path) -> None:
    engine, _ = open_db(f"sqlite:///{path}")
    engine.dispose()
    with path.open("r+b") as fh:
        fh.write(b"this is not a database, it is a shopping list\n" * 100)


@pytest.mark.parametrize("damage", [_random_file, _truncated_file, _overwritten_file])
def test_2_a_damaged_sqlite_file_gives_one_line_naming_it(tmp_path: Path, damage: Any) -> None:
    db = tmp_path / "damaged.sqlite"
    damage(db)
    runner = CliRunner()
    commands = [["digest"], ["review", "mark", "1", "reviewed"], ["db", "upgrade"],
                ["claims", "promote", "1", "--id", "x"], ["review", "match", "1", "c1", "confirm"]]
    for args in commands:
        result = runner.invoke(main, args, env={"CLAIMWATCH_DB": f"sqlite:///{db}"})
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output
        errors = [line for line in lines if line.startswith("Error:")]
        assert len(errors) == 1 and str(db) in errors[0], (args, result.output)
        assert not isinstance(result.exception, sqlite3.Error | AssertionError)


def test_2_a_mistyped_database_path_is_announced(tmp_path: Path) -> None:
    typo = tmp_path / "no" / "such.sqlite"
    result = subprocess.run(
        [sys.executable, "-m", "claimwatch.cli", "digest", "--format", "json", "--db",
         f"sqlite:///{typo}"], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert f"Warning: {typo} does not exist: creating a new, empty database there" in \
        result.stderr
    assert json.loads(result.stdout)["articles"] == []  # stdout stays clean
    again = subprocess.run(  # it exists now: no warning
        [sys.executable, "-m", "claimwatch.cli", "review", "mark", "1", "reviewed", "--db",
         f"sqlite:///{typo}"], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "does not exist" not in again.stderr


# -- 3. billion laughs --------------------------------------------------------------------------


def test_3_an_entity_bomb_feed_counts_as_an_error_with_the_reason(
        probe_crawl: tuple[CrawlResult, str]) -> None:
    result, _ = probe_crawl
    bomb = result.sources["bomb"]
    assert bomb["status"] == "failed"
    assert result.stat("bomb", "errors/feed") == 1 and bomb["counts"]["errors"] >= 1
    assert "amplification" in result.stderr and "later entries are lost" in result.stderr


def test_3_parse_feed_reports_where_the_parser_gave_up() -> None:
    from pipeline.feeds import FeedError, parse_feed

    body = rss([("&lol9;", "http://e.example/1"), ("real", "http://e.example/2")],
               f"<!DOCTYPE rss [{LOL}]>")
    problems: list[str] = []
    parse_feed(body, "http://e.example/", problems)
    assert problems and "stopped reading the feed early" in problems[0]
    with pytest.raises(FeedError, match="amplification"):
        parse_feed(body, "http://e.example/")
    loop = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "&b;"><!ENTITY b "&a;">]><rss><channel><item><title>&a;</title></item></channel></rss>'
    with pytest.raises(FeedError, match="loop"):
        parse_feed(loop, "http://e.example/")
    # ordinary sloppiness (an unescaped &, an HTML entity) is still recovered silently
    sloppy = rss([("A & B&nbsp;", "http://e.example/1"), ("C", "http://e.example/2")])
    problems = []
    assert len(parse_feed(sloppy, "http://e.example/", problems)) == 2 and problems == []


# -- 4. stray byte in UTF-8 ---------------------------------------------------------------------


def test_4_a_utf8_page_with_a_stray_byte_stays_utf8(probe_crawl: tuple[CrawlResult, str],
                                                    probe_site: Site) -> None:
    result, db_url = probe_crawl
    article = stored(db_url)[f"{probe_site.url}/stray.html"]
    assert "it’s" in article.text and "café" in article.text
    assert "â€" not in article.text and "Ã©" not in article.text
    assert result.stat("stray", "charset/bad_bytes_replaced") == 1
    assert result.stat("stray", "errors/charset") == 0


# -- 11. over-long links ------------------------------------------------------------------------


def test_11_over_long_feed_links_are_counted_as_skipped_with_the_reason(
        probe_crawl: tuple[CrawlResult, str], probe_site: Site) -> None:
    result, db_url = probe_crawl
    assert result.stat("long", "skipped/url_too_long") == 1
    assert result.counts("long")["skipped"] == 1
    assert "over URLLENGTH_LIMIT 2083" in result.stderr
    assert f"{probe_site.url}/a/4.html" in stored(db_url)


def test_11_the_crawl_summary_names_skip_reasons() -> None:
    from claimwatch.cli.crawl import format_summary
    from crawler.runner import CrawlSummary, SourceSummary

    summary = CrawlSummary("t", [SourceSummary(
        "wire", "feed", 1, counts={"skipped": 3},
        stats={"claimwatch/skipped/url_too_long": 2, "claimwatch/skipped/bad_url": 1})])
    text = format_summary(summary)
    assert "skipped" in text.splitlines()[1]
    assert "wire: links skipped: 1 unsupported scheme, 2 URL over URLLENGTH_LIMIT" in text


# -- 5, 6, 7: the web page and the API ----------------------------------------------------------


@pytest.fixture
def api(world: World) -> Iterator[Any]:
    from claimwatch.web import create_app

    engine, sessions = open_db(world.db_url)
    yield create_app(sessions, control=FakeDaemon(sessions))
    engine.dispose()


def test_5_a_non_ascii_csrf_token_is_refused_with_403(client: Client, world: World) -> None:
    client.csrf()  # a session cookie
    url = f"/article/{world.ids['original']}/review"
    assert client.post(url, {"csrf": "é", "status": "reviewed"}).status == 403
    reply = client.post(url, {"status": "reviewed"}, headers={"X-CSRF-Token": "\xe9\u2603"})
    assert reply.status == 403 and "Traceback" not in reply.text
    assert client.post(url, {"csrf": client.csrf(), "status": "reviewed"}).status == 303


BIG = "99999999999999999999"


def test_6_oversized_numbers_give_4xx_on_the_web_page(client: Client) -> None:
    for url in (f"/digest?since={BIG}d", f"/?since={BIG}d", f"/articles.json?since={BIG}d",
                f"/article/{BIG}", f"/article/{BIG}.json", f"/article/{'9' * 5000}",
                f"/?since={'9' * 5000}h", f"/runs.json?limit={BIG}"):
        reply = client.get(url)
        assert 400 <= reply.status < 500 or reply.status == 200, (url, reply.status)
        assert reply.status != 500 and "Traceback" not in reply.text
    assert client.get(f"/article/{BIG}").status == 404
    assert client.get(f"/digest?since={BIG}d").status == 400
    token = client.csrf()
    assert client.post(f"/article/{BIG}/review", {"csrf": token, "status": "reviewed"}).status == 404
    assert client.post(f"/candidate/{BIG}/promote", {"csrf": token, "id": "x"}).status == 404


def test_6_oversized_numbers_give_4xx_on_the_api(api: Any) -> None:
    assert api_call(api, "GET", f"/api/runs/{BIG}999")[0] == 404
    assert api_call(api, "GET", f"/api/runs/{'9' * 5000}")[0] == 404
    status, _, data = api_call(api, "GET", f"/api/runs?before={BIG}999")
    assert status == 400 and "before" in data["error"]
    assert api_call(api, "GET", f"/api/runs?before={'9' * 5000}")[0] == 400
    assert api_call(api, "GET", "/api/runs?before=9223372036854775807")[0] == 200


def test_6_oversized_numbers_give_one_line_errors_on_the_cli(world: World) -> None:
    runner = CliRunner()
    env = {"CLAIMWATCH_DB": world.db_url}
    for args in (["digest", "--since", "1000000d"], ["digest", "--since", f"{BIG}w"],
                 ["review", "mark", BIG, "reviewed"], ["review", "match", BIG, "c1", "confirm"],
                 ["claims", "promote", BIG, "--id", "x", "--topic-file", str(world.topic_file)]):
        result = runner.invoke(main, args, env=env)
        assert result.exit_code in (1, 2), (args, result.output)
        assert "Traceback" not in result.output
        assert isinstance(result.exception, SystemExit), (args, result.exception)
        assert [line for line in result.output.splitlines() if line.startswith("Error")]


def test_7_deeply_nested_json_gives_400(client: Client, api: Any) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    status, _, data = api_call(api, "POST", "/api/crawl", deep)
    assert status == 400 and "nested too deep" in data["error"]
    obj = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    assert api_call(api, "POST", "/api/crawl", obj)[0] in (400, 413)
    token = client.csrf()
    reply = client.request("POST", "/article/1/review", body=deep,
                        headers={"Content-Type": "application/json", "X-CSRF-Token": token})
    assert reply.status == 400


# -- 8. formula injection -----------------------------------------------------------------------


FORMULAS = ['=HYPERLINK("http://evil.example/x","Twitter cut 25 staff")', "+1+cmd|' /C calc'!A0",
            "-2+3 Twitter staff", "@SUM(1+1)*cmd|' /C calc'!A0"]


def test_8_formulas_are_neutralised_in_claims_csv_and_intact_elsewhere(world: World) -> None:
    from claimwatch.review import promote_candidate

    engine, sessions = open_db(world.db_url)
    try:
        with sessions.begin() as session:
            cid = session.scalars(select(ClaimCandidate.id)).first()
            assert cid is not None
            promote_candidate(session, cid, "evil-formula", world.topic, text=FORMULAS[0])
        with sessions() as session:
            known = session.scalars(select(KnownClaim).where(KnownClaim.claim_id == "evil-formula")
                                    ).one()
            assert known.text == FORMULAS[0]  # the database keeps the text as it was
    finally:
        engine.dispose()
    raw = world.claims_file.read_text(encoding="utf-8")
    row = [line for line in raw.splitlines() if line.startswith("evil-formula,")][0]
    cells = row.split(",", 1)[1]
    assert cells.startswith("\"'=HYPERLINK(") or cells.startswith("'=HYPERLINK(")
    claims = {c.id: c for c in load_claims(world.claims_file)}
    assert claims["evil-formula"].text == FORMULAS[0]  # read back intact


@pytest.mark.parametrize("value", [*FORMULAS, "\tTAB", "plain text", "'=quoted already"])
def test_8_csv_cells_round_trip(value: str) -> None:
    from config.loader import csv_safe, csv_unsafe

    safe = csv_safe(value)
    assert not safe.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert csv_unsafe(safe) == value


# -- 9. secrets in the log ----------------------------------------------------------------------


def test_9_the_access_token_is_never_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    from claimwatch.web import make_app, make_server

    engine, sessions = open_db(world.db_url)
    server = make_server("127.0.0.1", 0, make_app(sessions, [world.topic], token=TOKEN,
                                                  control=FakeDaemon(sessions)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.DEBUG):
            for port in (server.server_port,):
                for path in (f"/?token={TOKEN}", f"/api/health?x=1&token={TOKEN}&y=2",
                             f"/?TOKEN={TOKEN}"):
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
                    except urllib.error.HTTPError:
                        pass
        assert "GET /?token=***" in caplog.text
        assert TOKEN not in caplog.text
    finally:
        server.shutdown()
        server.server_close()
        engine.dispose()


def test_also_half_open_connections_are_closed_after_the_idle_timeout(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from claimwatch.web import make_app, make_server, server

    assert server.IDLE_TIMEOUT and server.IDLE_TIMEOUT <= 30
    monkeypatch.setattr(server, "IDLE_TIMEOUT", 1)
    engine, sessions = open_db(world.db_url)
    served = make_server("127.0.0.1", 0, make_app(sessions, [world.topic]))
    threading.Thread(target=served.serve_forever, daemon=True).start()
    try:
        socks = [socket.create_connection(("127.0.0.1", served.server_port)) for _ in range(20)]
        for s in socks[:10]:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        time.sleep(3.5)
        for s in socks:
            s.settimeout(5)
            assert s.recv(100) == b""  # closed by the server
            s.close()
        reply = urllib.request.urlopen(f"http://127.0.0.1:{served.server_port}/", timeout=10)
        assert reply.status == 200  # and it still serves
    finally:
        served.shutdown()
        served.server_close()
        engine.dispose()


# -- 10. source options at load -----------------------------------------------------------------


@pytest.mark.parametrize("option, problem", [
    ('lastmod_days: "two"', "lastmod_days must be a positive number"),
    ("lastmod_days: -1", "lastmod_days must be a positive number"),
    ("max_depth: -1", "max_depth must be a whole number >= 1"),
    ("max_depth: 1.5", "max_depth must be a whole number >= 1"),
    ('max_depth: "2"', "max_depth must be a whole number >= 1"),
    ('allow_offsite: "yes"', "allow_offsite must be true or false"),
    ('timeout: "soon"', "timeout: expected a duration"),
    ("timeout: 0", "timeout must be positive"),
])
def test_10_source_options_are_checked_at_load_with_file_and_key(
        tmp_path: Path, option: str, problem: str) -> None:
    path = tmp_path / "bad-options.yaml"
    path.write_text(
        "name: t\nquery: {any: [Twitter]}\nsources:\n"
        "  - {name: ok, kind: feed, url: 'https://x.org/rss.xml'}\n"
        f"  - {{name: s, kind: sitemap, url: 'https://x.org/sitemap.xml', {option}}}\n",
        encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_topic(path)
    message = str(error.value)
    assert "bad-options.yaml" in message and problem in message
    assert f"sources[1].{option.split(':')[0]}" in message
    result = CliRunner().invoke(main, ["serve", "--listen", "127.0.0.1:0", "--db",
                                       f"sqlite:///{tmp_path / 'x.sqlite'}", str(path)])
    assert result.exit_code == 1 and "bad-options.yaml" in result.output
    assert "Traceback" not in result.output


def test_10_good_source_options_still_load(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(
        "name: t\nquery: {any: [Twitter]}\nsources:\n"
        "  - {name: a, kind: sitemap, url: 'https://x.org/s.xml', lastmod_days: 2.5,"
        " allow_offsite: true, timeout: 10m}\n"
        "  - {name: b, kind: sitemap, url: 'https://x.org/t.xml', lastmod_days: null}\n"
        "  - {name: c, kind: listing, url: 'https://x.org/', max_depth: 2, timeout: 90}\n",
        encoding="utf-8")
    topic = load_topic(path)
    assert topic.sources[0].options["lastmod_days"] == 2.5
    assert topic.sources[2].options == {"max_depth": 2, "timeout": 90}


# -- 12. kill -9 of a crawl ---------------------------------------------------------------------


def test_12_a_killed_crawl_is_marked_interrupted_with_the_counts_of_what_it_stored(
        tmp_path: Path) -> None:
    release = threading.Event()

    def slow(n: int) -> Any:
        def route(h: Handler) -> None:
            release.wait(60)
            h.send(200, page(n))
        return route

    with serve() as site:
        site.routes["/feed.xml"] = _send(rss(
            [(f"Twitter child safety {n}", f"{site.url}/k/{n}.html") for n in range(1, 7)]),
            "application/rss+xml")
        site.routes.update({f"/k/{n}.html": _send(page(n)) for n in (1, 2)})
        site.routes.update({f"/k/{n}.html": slow(n) for n in range(3, 7)})
        topic = write_topic(tmp_path / "kill.yaml", "kill",
                            [{"name": "wire", "kind": "feed", "url": f"{site.url}/feed.xml"}])
        db_url = f"sqlite:///{tmp_path / 'kill.sqlite'}"
        args = [sys.executable, "-m", "claimwatch.cli", "crawl", str(topic), "--db", db_url,
                "--set", "CLAIMWATCH_ALLOW_PRIVATE_ADDRESSES=True", "--set", "DOWNLOAD_DELAY=0",
                "--set", "AUTOTHROTTLE_ENABLED=False", "--set", "CLAIMWATCH_RUN_COUNTS_INTERVAL=0.2",
                "--set", "ROBOTSTXT_OBEY=False",
                "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=8"]  # the fast pages need no slot
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        engine, sessions = open_db(db_url)
        try:
            deadline = time.monotonic() + 60
            counts: dict[str, Any] = {}
            while time.monotonic() < deadline:
                with sessions() as session:
                    run = session.scalars(select(CrawlRun)).first()
                    counts = dict(run.counts or {}) if run else {}
                if counts.get("new") == 2:
                    break
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                time.sleep(0.1)
            assert counts.get("new") == 2, counts  # written while the crawl runs
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            with sessions() as session:
                run = session.scalars(select(CrawlRun)).one()
                assert run.status == "running"  # nobody could say otherwise yet
                killed_id = run.id
            release.set()  # the next crawl gets the slow pages at once
            result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                                    timeout=120)
            assert result.returncode == 0, result.stderr[-3000:]
            with sessions() as session:
                killed = session.get(CrawlRun, killed_id)
                assert killed is not None and killed.status == "interrupted"
                assert "pid" in (killed.error or "") and killed.finished is not None
                assert killed.counts["new"] == 2
                runs = session.scalars(select(CrawlRun).order_by(CrawlRun.id)).all()
                assert [r.status for r in runs] == ["interrupted", "ok"]
                assert runs[1].counts["new"] == 4
                assert session.query(Article).count() == 6
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
            if proc.stderr:
                proc.stderr.close()
            engine.dispose()


def test_12_counts_of_a_dead_run_are_recomputed_from_what_it_stored(world: World) -> None:
    from datetime import timedelta

    from storage import leases
    from storage.models import utcnow

    engine, sessions = open_db(world.db_url)
    try:
        with sessions.begin() as session:
            dead = CrawlRun(topic="review-test", source="wire", trigger="manual",
                            status="running", started=utcnow() - timedelta(days=1),
                            counts={}, holder="crawl:nohost:999999:abcd")
            session.add(dead)
            session.flush()
            dead_id = dead.id
        assert leases.reap_interrupted_runs(sessions) == 1
        with sessions() as session:
            run = session.get(CrawlRun, dead_id)
            assert run is not None
            stored_by_wire = session.query(Article).filter_by(topic="review-test",
                                                              source="wire").count()
            assert run.status == "interrupted" and run.counts["new"] == stored_by_wire >= 1
    finally:
        engine.dispose()


def _json(reply: Any) -> Any:
    return json.loads(reply.body)
