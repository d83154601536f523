"""Source kinds: sitemap parsing (real sitemaps), article-link shapes, and end-to-end crawls
of feeds, sitemaps (index, gzip, Google News, lastmod window) and listing pages against a
local site, then incremental re-crawls (304s, URLs already stored)."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.links import in_section, looks_like_article, looks_like_listing
from pipeline.sitemaps import (
    SitemapEntry,
    SitemapError,
    gunzip_bounded,
    parse_sitemap,
    parse_w3c_datetime,
    sitemap_urls_from_robots,
    within_window,
)
from tests.crawl_helpers import (
    SITES,
    CrawlResult,
    Site,
    run_crawl_in_subprocess,
    serve,
    write_topic,
)

RES = "feeds-sitemaps/trafilatura-resources"
NOW = datetime(2022, 12, 21, 12, 0, tzinfo=UTC)


# -- sitemap parsing on real sitemaps ------------------------------------------------------------


def test_sitemaps_org_urlset_and_its_gzip_twin(shared_data: Path) -> None:
    plain = parse_sitemap((shared_data / RES / "sitemap.xml").read_bytes(), "https://x.example/")
    assert plain.kind == "urlset" and len(plain.entries) == 84 and plain.over_limit == 0
    assert plain.entries[0].loc == "https://www.sitemaps.org/"
    assert plain.entries[0].lastmod == datetime(2016, 11, 21, tzinfo=UTC)
    body = gunzip_bounded((shared_data / RES / "sitemap.xml.gz").read_bytes(), 10_000_000)
    assert parse_sitemap(body, "https://x.example/").entries == plain.entries


def test_sitemap_index_with_cdata_loc(shared_data: Path) -> None:
    parsed = parse_sitemap((shared_data / RES / "sitemap2.xml").read_bytes(), "https://x.example/")
    assert parsed.kind == "sitemapindex"
    assert [(e.loc, e.lastmod) for e in parsed.entries] == [
        ("http://www.example.com/sitemap1.xml.gz", datetime(2004, 10, 1, 18, 23, 17, tzinfo=UTC)),
        ("http://www.example.com/sitemap2.xml.gz", datetime(2005, 1, 1, tzinfo=UTC)),
    ]


def test_hreflang_alternates_are_kept(shared_data: Path) -> None:
    parsed = parse_sitemap((shared_data / RES / "sitemap-hreflang.xml").read_bytes(), "https://x/")
    first = parsed.entries[0]
    assert first.loc == "http://www.example.com/english/page.html"
    assert "http://www.example.com/schweiz-deutsch/page.html" in first.alternates


def test_google_news_sitemap_keeps_publication_date_and_title(shared_data: Path) -> None:
    path = (shared_data / "feeds-sitemaps/real-snippets"
            / "washingtonpost-politics-news-sitemap-2017-11-23.xml")
    parsed = parse_sitemap(path.read_bytes(), "https://www.washingtonpost.com/sitemap.xml")
    assert len(parsed.entries) == 4
    first = parsed.entries[0]
    # <loc> has surrounding whitespace and newlines in the real file
    assert first.loc.startswith("https://www.washingtonpost.com/politics/the-latest-roy-moore")
    assert first.news_published == datetime(2017, 11, 23, 2, 5, 12, tzinfo=UTC)
    assert first.news_title == "The Latest: Roy Moore thanks Trump in new fundraising appeal"
    assert first.date == first.news_published
    assert all(e.news_published and e.news_title for e in parsed.entries)


def test_relative_locs_resolve_against_the_sitemap_url() -> None:
    body = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc>/civicpost/2022/12/21/a.html</loc></url>
      <url><loc>  b.html </loc></url><url><loc></loc></url><url><loc>javascript:alert(1)</loc></url>
    </urlset>"""
    parsed = parse_sitemap(body, "http://127.0.0.1:8765/news/sitemap.xml")
    assert [e.loc for e in parsed.entries] == [
        "http://127.0.0.1:8765/civicpost/2022/12/21/a.html",
        "http://127.0.0.1:8765/news/b.html",
    ]
    assert parsed.without_loc == 2


def test_not_a_sitemap_and_broken_sitemaps() -> None:
    for body, message in [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not XML"),
        (b"<html><body><p>Not found</p></body></html>", "not a sitemap (root element <html>"),
        (b'<rss version="2.0"><channel/></rss>', "root element <rss>"),
    ]:
        with pytest.raises(SitemapError, match=message.replace("(", r"\(")):
            parse_sitemap(body, "https://x.example/sitemap.xml")
    truncated = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc>https://x.example/a</loc></url><url><loc>https://x.example/b</loc></url>
      <url><loc>https://x.examp"""
    parsed = parse_sitemap(truncated, "https://x.example/sitemap.xml")
    assert [e.loc for e in parsed.entries][:2] == ["https://x.example/a", "https://x.example/b"]


def test_entities_are_never_expanded() -> None:
    body = b"""<?xml version="1.0"?>
    <!DOCTYPE urlset [<!ENTITY xxe SYSTEM "file:///etc/hostname"><!ENTITY a "aaaaaaaaaa">]>
    <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc>https://x.example/&xxe;</loc></url><url><loc>https://x.example/&a;&a;</loc></url>
    </urlset>"""
    parsed = parse_sitemap(body, "https://x.example/")
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    assert all(not hostname or hostname not in e.loc for e in parsed.entries)
    assert all("aaaaaaaaaa" not in e.loc for e in parsed.entries)


def test_sixty_thousand_urls_stop_at_the_protocol_limit() -> None:
    rows = "".join(f"<url><loc>https://x.example/p/{i}</loc><lastmod>2022-12-01</lastmod></url>"
                   for i in range(60_000))
    body = f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</urlset>'.encode()
    started = time.perf_counter()
    parsed = parse_sitemap(body, "https://x.example/sitemap.xml")
    assert time.perf_counter() - started < 10
    assert len(parsed.entries) == 50_000 and parsed.over_limit == 10_000
    assert parsed.entries[-1].loc == "https://x.example/p/49999"


def test_gzip_bomb_is_cut_off_at_the_size_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 200_000
    started = time.perf_counter()
    with pytest.raises(SitemapError, match="gzip bomb"):
        gunzip_bounded(bomb, 1024 * 1024)
    assert time.perf_counter() - started < 1
    with pytest.raises(SitemapError, match="broken gzip"):
        gunzip_bounded(b"\x1f\x8b\x08\x00garbage", 1024)


def test_lastmod_window_truth_table() -> None:
    def entry(lastmod: datetime | None = None, news: datetime | None = None) -> SitemapEntry:
        return SitemapEntry("https://x.example/a", lastmod=lastmod, news_published=news)

    day = timedelta(days=1)
    assert within_window(entry(NOW - day), NOW, 2) is True
    assert within_window(entry(NOW - 3 * day), NOW, 2) is False
    assert within_window(entry(), NOW, 2) is None  # undated: cannot tell
    assert within_window(entry(NOW - 30 * day, news=NOW - day), NOW, 2) is True  # news date wins
    assert within_window(entry(NOW - day, news=NOW - 30 * day), NOW, 2) is False
    assert within_window(entry(NOW - 999 * day), NOW, None) is True  # no window


def test_w3c_datetimes() -> None:
    assert parse_w3c_datetime("2022-12-21") == datetime(2022, 12, 21, tzinfo=UTC)
    assert parse_w3c_datetime("2022-12-20T06:30:00-05:00") == datetime(
        2022, 12, 20, 11, 30, tzinfo=UTC)
    assert parse_w3c_datetime("2017-11-23T02:05:12Z") == datetime(
        2017, 11, 23, 2, 5, 12, tzinfo=UTC)
    assert parse_w3c_datetime("2022-12-21T16:40:00.123+01:00") == datetime(
        2022, 12, 21, 15, 40, 0, 123000, tzinfo=UTC)
    assert parse_w3c_datetime("yesterday") is None and parse_w3c_datetime("  ") is None


def test_sitemap_lines_of_robots_txt() -> None:
    body = b"User-agent: *\nDisallow: /private/\nSitemap: /news.xml\nsitemap:https://x.example/b.xml\n"
    assert sitemap_urls_from_robots(body, "https://x.example/robots.txt") == [
        "https://x.example/news.xml", "https://x.example/b.xml"]


# -- which links on a listing page are articles ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "article", "listing"),
    [
        ("https://n.example/civicpost/2022/12/21/twitter-irwin-account-removals.html", True, False),
        ("https://n.example/2022-12-16-musk-twitter-safety", True, False),
        ("https://n.example/20221216/musk.html", True, False),
        ("https://www.bbc.co.uk/news/world-64012345", True, False),
        ("https://n.example/tech/twitter-child-safety-team-cut", True, False),
        ("https://n.example/article/123456", True, False),
        ("https://n.example/tech/", False, True),
        ("https://n.example/tech/page/2", False, True),
        ("https://n.example/tech?page=2", False, True),
        ("https://n.example/news/2022/12/16/", False, True),  # a day's archive
        ("https://n.example/tag/twitter/", False, False),
        ("https://n.example/about", False, False),
        ("https://n.example/author/jane-doe-smith-x", False, False),
        ("https://n.example/login?next=/", False, False),
        ("https://n.example/img/2022/12/16/photo-of-the-day.jpg", False, False),
        ("https://n.example/rss.xml", False, False),
        ("https://n.example/", False, True),
        ("mailto:tips@n.example", False, False),
    ],
)
def test_link_shapes(url: str, article: bool, listing: bool) -> None:
    assert looks_like_article(url) is article
    assert looks_like_listing(url) is listing


def test_listing_pages_followed_stay_in_the_section() -> None:
    assert in_section("https://n.example/tech/page/2", "https://n.example/tech/")
    assert in_section("https://n.example/tech/ai/", "https://n.example/tech/index.html")
    assert in_section("https://n.example/world/", "https://n.example/index.html")
    assert not in_section("https://n.example/sport/", "https://n.example/tech/")
    assert not in_section("https://n.example/", "https://n.example/index.html")


# -- end-to-end: every source kind against a local site ------------------------------------------


@pytest.fixture(scope="module")
def news_site() -> Iterator[Site]:
    with serve(SITES / "news") as site:
        yield site


@pytest.fixture(scope="module")
def news_topic(tmp_path_factory: pytest.TempPathFactory, news_site: Site) -> Path:
    url = news_site.url
    return write_topic(tmp_path_factory.mktemp("sources") / "topic.yaml", "sources-test", [
        {"name": "rss", "kind": "feed", "url": f"{url}/rss.xml"},
        {"name": "atom", "kind": "feed", "url": f"{url}/atom.xml"},
        {"name": "sitemaps", "kind": "sitemap", "url": f"{url}/robots.txt", "lastmod_days": 2},
        {"name": "front", "kind": "listing", "url": f"{url}/index.html"},
        {"name": "front-deep", "kind": "listing", "url": f"{url}/index.html", "max_depth": 2},
    ])


@pytest.fixture(scope="module")
def news_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sources-db') / 'claimwatch.sqlite'}"


@pytest.fixture(scope="module")
def first_crawl(news_site: Site, news_topic: Path, news_db: str) -> CrawlResult:
    news_site.reset()
    return run_crawl_in_subprocess(news_topic, news_db)


def _stored(db_url: str) -> dict[str, object]:
    from storage.db import make_engine, session_factory
    from storage.models import Article

    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            return {a.canonical_url: a for a in session.scalars(select(Article))}
    finally:
        engine.dispose()


def test_every_source_kind_finishes_cleanly(first_crawl: CrawlResult) -> None:
    for name, source in first_crawl.sources.items():
        assert source["status"] == "ok", (name, source["error"])
        assert source["counts"]["errors"] == 0, (name, source["stats"])


def test_feeds_relative_links_missing_dates_and_linkless_entries(
        first_crawl: CrawlResult, news_site: Site, news_db: str) -> None:
    assert first_crawl.stat("rss", "feed/entries") == 5
    assert first_crawl.stat("rss", "feed/entries_without_link") == 1
    assert first_crawl.stat("atom", "fetched") == 1  # xml:base-relative link
    stored = _stored(news_db)
    base = news_site.url
    # the feed link carried utm_* parameters: the canonical URL (the storage key) has none
    team = stored[f"{base}/2022/12/15/twitter-child-safety-team-cut.html"]
    assert team.published == datetime(2022, 12, 15, 9, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    musk = stored[f"{base}/2022/12/16/musk-says-child-safety-priority.html"]  # no pubDate in feed
    assert musk.published == datetime(2022, 12, 16, 9, 0, tzinfo=UTC)  # type: ignore[attr-defined]
    assert f"{base}/2022/12/17/ncmec-reports-twitter.html" in stored
    assert not any("tesla" in url for url in stored)  # fetched, off topic, not stored
    assert first_crawl.counts("rss")["off_topic"] == 1


def test_robots_txt_disallowed_article_is_never_requested(
        first_crawl: CrawlResult, news_site: Site) -> None:
    assert not [p for p in news_site.paths() if p.startswith("/private/")]
    assert first_crawl.stat("rss", "refused/robots") == 1
    assert first_crawl.counts("rss")["refused"] == 1
    assert news_site.hits("/robots.txt")  # fetched before the articles


def test_sitemap_index_gzip_google_news_and_lastmod_window(
        first_crawl: CrawlResult, news_site: Site, news_db: str) -> None:
    # robots.txt -> sitemap index -> news sitemap (+ gzip archive); the old sitemap is skipped
    assert news_site.hits("/sitemap-index.xml") and news_site.hits("/news-sitemap.xml")
    assert news_site.hits("/archive-sitemap.xml.gz")
    assert not news_site.hits("/old-sitemap.xml.gz")
    assert first_crawl.stat("sitemaps", "sitemap/skipped_old_sitemaps") == 1
    assert first_crawl.stat("sitemaps", "sitemap/entries") == 5
    assert first_crawl.stat("sitemaps", "sitemap/skipped_old") == 2  # news date / lastmod too old
    assert first_crawl.stat("sitemaps", "skipped/offsite") == 1  # offsite.example: never fetched
    # Two entries are left to fetch; the feed lists one of them too: when the feed's crawl
    # has stored it by the time the sitemap is read, the sitemap does not fetch it again.
    assert first_crawl.stat("sitemaps", "fetched") + first_crawl.stat(
        "sitemaps", "skipped/seen") == 2
    assert first_crawl.stat("sitemaps", "fetched") >= 1
    stored = _stored(news_db)
    base = news_site.url
    assert f"{base}/2022/12/18/advertisers-twitter-child-safety.html" in stored
    assert f"{base}/world/2022/12/19/regulators-twitter-child-safety.html" in stored


def test_listing_follows_article_links_on_the_site_within_the_depth(
        first_crawl: CrawlResult, news_site: Site) -> None:
    # depth 1: the two article links; not the nofollow one, the offsite one, nav or images
    assert first_crawl.stat("front", "listing/articles") == 2
    assert first_crawl.stat("front", "fetched") == 2
    assert first_crawl.stat("front", "skipped/nofollow") == 1
    assert first_crawl.stat("front", "skipped/offsite") == 1
    assert first_crawl.stat("front", "listing/pages") == 1
    # depth 2: also the /world/ section and the article it links to
    assert first_crawl.stat("front-deep", "listing/pages") == 2
    assert first_crawl.stat("front-deep", "listing/articles") == 3
    # offsite (same server, other site name) and navigation were never requested
    assert not [r for r in news_site.requests if r.host.startswith("localhost")]
    for nav in ("/tag/twitter/", "/about", "/login", "/img/logo.png"):
        assert not news_site.hits(nav), nav


def test_second_crawl_is_incremental(first_crawl: CrawlResult, news_site: Site,
                                     news_topic: Path, news_db: str) -> None:
    from storage.db import make_engine, session_factory
    from storage.repository import Store

    before = set(_stored(news_db))
    assert len(before) == 5
    news_site.reset()
    second = run_crawl_in_subprocess(news_topic, news_db)
    # feeds and the depth-1 listing: 304 with the stored validators, nothing else fetched
    for name in ("rss", "atom", "front"):
        assert second.counts(name)["not_modified"] == 1, name
        assert second.counts(name)["fetched"] == 0, name
    assert all(r.headers.get("if-none-match") for r in news_site.hits("/rss.xml"))
    # a sitemap index is fetched again (its sitemaps change while it does not) but the
    # URLs it lists are stored already: none is fetched again
    assert second.counts("sitemaps")["not_modified"] == 0
    assert second.counts("sitemaps")["fetched"] == 0
    assert second.stat("sitemaps", "skipped/seen") == 2
    assert second.counts("front-deep")["fetched"] == 0
    for path in before:
        assert not news_site.hits(path.removeprefix(news_site.url)), path
    engine = make_engine(news_db)
    store = Store(session_factory(engine))
    try:
        state = store.source_state("sources-test", "rss")
        assert state is not None and state.etag and state.last_success and state.items_seen == 5
        deep = store.source_state("sources-test", "sitemaps")
        assert deep is not None and deep.etag is None  # an index: no conditional GET
    finally:
        engine.dispose()

    # The feed changes: one new entry is fetched, the entries already stored are not.
    new_path = "/2022/12/21/twitter-child-safety-hotline.html"
    paras = "".join(f"<p>{s}</p>" for s in [
        "Twitter opened a hotline for child safety groups on Wednesday, a month after the "
        "advocates said their contacts at the company had stopped answering.",
        "The company said the hotline would be staffed around the clock and that reports "
        "about child exploitation would be answered within a day, a promise groups said "
        "they would watch closely.",
    ])
    page = (f"<html><head><title>Twitter opens a child safety hotline</title></head><body>"
            f"<article><h1>Twitter opens a child safety hotline</h1>{paras}</article>"
            f"</body></html>").encode()
    feed = (SITES / "news" / "rss.xml").read_text().replace(
        "<item>", f"<item><title>Hotline</title><link>{new_path}</link></item><item>", 1)
    news_site.routes[new_path] = lambda h: h.send(200, page)
    news_site.routes["/rss.xml"] = lambda h: news_site.send_cacheable(
        h, news_site.render(feed).encode(), "application/rss+xml")
    try:
        news_site.reset()
        third = run_crawl_in_subprocess(news_topic, news_db, sources=["rss"])
    finally:
        del news_site.routes[new_path], news_site.routes["/rss.xml"]
    assert third.counts("rss")["not_modified"] == 0
    assert third.counts("rss")["new"] == 1
    assert third.stat("rss", "skipped/seen") >= 2  # (3 once off-topic pages are remembered)
    assert not news_site.hits("/2022/12/15/twitter-child-safety-team-cut.html")
    assert not news_site.hits("/2022/12/16/musk-says-child-safety-priority.html")
    assert len(news_site.hits(new_path)) == 1
    assert f"{news_site.url}{new_path}" in _stored(news_db)


def test_a_bad_source_option_is_refused_at_load_and_a_misspelled_one_warned(
        tmp_path: Path, news_site: Site) -> None:
    # Issue 12 changed this: a bad option value used to fail only its source at crawl
    # time; now the topic file is refused when it is loaded (serve and daemon included),
    # naming the file and the key.
    from config.loader import ConfigError, load_topic

    url = news_site.url
    for option, problem in (({"max_depth": 0}, "max_depth must be a whole number >= 1"),
                            ({"lastmod_days": "a week"},
                             "lastmod_days must be a positive number of days or null")):
        bad = write_topic(tmp_path / "bad.yaml", "options-test", [
            {"name": "bad", "kind": "sitemap", "url": f"{url}/news-sitemap.xml", **option}])
        with pytest.raises(ConfigError, match=problem) as error:
            load_topic(bad)
        assert "bad.yaml" in str(error.value) and f"sources[0].{next(iter(option))}" in str(
            error.value)
    topic = write_topic(tmp_path / "topic.yaml", "options-test", [
        {"name": "typo", "kind": "sitemap", "url": f"{url}/news-sitemap.xml", "lastmod_day": 7},
    ])
    result = run_crawl_in_subprocess(topic, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert result.sources["typo"]["status"] == "ok"
    assert "unknown option 'lastmod_day' ignored, did you mean 'lastmod_days'?" in result.stderr
    assert result.stat("typo", "fetched") == 1  # the default window (2 days) applied
