"""Feed parsing against real RSS/Atom feeds and the rss-parser project's expected parses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.feeds import FeedError, parse_date, parse_feed

FEED = "https://news.example.org/feeds/world.xml"


def _rss_parser_cases(shared: Path) -> list[tuple[Path, Path]]:
    base = shared / "feeds-sitemaps" / "rss-parser" / "test"
    cases = []
    for path in sorted((base / "input").iterdir()):
        expected = base / "output" / (path.stem + ".json")
        if expected.exists() and path.stem != "unrecognized":
            cases.append((path, expected))
    return cases


def test_real_feeds_links_match_rss_parser_expectations(shared_data: Path) -> None:
    cases = _rss_parser_cases(shared_data)
    assert len(cases) >= 25
    checked = 0
    for path, expected_path in cases:
        entries = parse_feed(path.read_bytes(), FEED)
        expected = json.loads(expected_path.read_bytes().decode("utf-8", "replace"))
        items = (expected.get("feed") or expected).get("items") or []
        if not items:
            continue
        assert len(entries) == len(items), path.name
        for entry, item in zip(entries, items, strict=True):
            want = (item.get("link") or "").strip()
            if want.startswith("/"):
                want = "https://news.example.org" + want
            assert entry.link == (want or None), (path.name, entry.link, want)
            checked += 1
    assert checked > 1000


def test_guardian_feed_has_dates_and_titles(shared_data: Path) -> None:
    body = (shared_data / "feeds-sitemaps/rss-parser/test/input/guardian.rss").read_bytes()
    entries = parse_feed(body, FEED)
    assert len(entries) == 55
    assert all(e.title and e.published and e.published.tzinfo for e in entries)


def test_atom_relative_links_resolve_against_xml_base() -> None:
    body = b"""<?xml version="1.0"?>
    <feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://site.example/news/">
      <title>t</title>
      <entry><title>One</title><link href="2022/one.html"/><updated>2022-12-15T10:00:00Z</updated></entry>
      <entry xml:base="/other/"><title>Two</title><link rel="alternate" type="text/html" href="two.html"/>
        <link rel="enclosure" href="two.mp3"/><published>2022-12-16T08:00:00+01:00</published></entry>
      <entry><title>No link</title></entry>
    </feed>"""
    entries = parse_feed(body, FEED)
    assert [e.link for e in entries] == [
        "https://site.example/news/2022/one.html",
        "https://site.example/other/two.html",
        None,
    ]
    assert entries[1].published == datetime(2022, 12, 16, 7, 0, tzinfo=UTC)


def test_rss_relative_link_and_missing_date_and_permalink_guid() -> None:
    body = b"""<rss version="2.0"><channel><title>t</title>
      <item><title>A</title><link>/a.html</link></item>
      <item><title>B</title><guid>https://site.example/b.html</guid><pubDate>Thu, 15 Dec 2022 10:00:00 GMT</pubDate></item>
      <item><title>C</title><guid isPermaLink="false">tag:c</guid></item>
    </channel></rss>"""
    entries = parse_feed(body, "https://site.example/rss.xml")
    assert [e.link for e in entries] == ["https://site.example/a.html", "https://site.example/b.html", None]
    assert entries[0].published is None
    assert entries[1].published == datetime(2022, 12, 15, 10, 0, tzinfo=UTC)


def test_rdf_feed(shared_data: Path) -> None:
    body = (shared_data / "feeds-sitemaps/rss-parser/test/input/rss-1.rss").read_bytes()
    assert len(parse_feed(body, FEED)) == 69


@pytest.mark.parametrize("body", [b"", b"   ", b"<html><body>not a feed</body></html>", b"\x00\x01\x02"])
def test_not_a_feed_raises_feed_error(body: bytes) -> None:
    with pytest.raises(FeedError):
        parse_feed(body, FEED)


def test_truncated_feed_keeps_complete_items() -> None:
    body = b"""<rss><channel><item><title>A</title><link>https://s.example/a</link></item>
    <item><title>B</title><link>https://s.example/b</link></item><item><title>C</tit"""
    links = [e.link for e in parse_feed(body, FEED)]
    assert links[:2] == ["https://s.example/a", "https://s.example/b"]


def test_parse_date_forms() -> None:
    assert parse_date("Thu, 15 Dec 2022 10:00:00 +0000") == datetime(2022, 12, 15, 10, tzinfo=UTC)
    assert parse_date("2022-12-15T10:00:00Z") == datetime(2022, 12, 15, 10, tzinfo=UTC)
    assert parse_date("2022-12-15") == datetime(2022, 12, 15, tzinfo=UTC)
    assert parse_date("not a date") is None
    assert parse_date(None) is None
