"""Digest renderers: grouping, folding, escaping and format validity."""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from lxml import etree

from claimwatch.digest import render as r

FIXTURE = Path(__file__).parent / "fixtures" / "digest-sample.json"
ATOM = "{http://www.w3.org/2005/Atom}"
SECTIONS = [
    "Conflicting figures (1)",
    "Stories (5)",
    "Claims: who repeats, who disputes (5)",
    "Copies of earlier articles (1)",
    "Source health",
]
SUMMARY = "10 articles: 5 new reports, 5 duplicates, 1 conflict, 2 candidates"
CARRIED = "Carried by 5 outlets: NBC News, CNBC, MSN, Yahoo! News, The Daily Dot"


@pytest.fixture(scope="module")
def sample() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


@pytest.fixture
def digest(sample: dict) -> dict:
    return copy.deepcopy(sample)


def empty_digest() -> dict:
    return {
        "topic": "twitter-child-safety",
        "generated_at": "2022-12-06T07:00:00+00:00",
        "since": "2022-12-05T07:00:00+00:00",
        "articles": [],
    }


def cells(line: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)


def heading_positions(text: str) -> list[int]:
    return [text.index(f"\n{title}\n") for title in SECTIONS]


def section(text: str, title: str, following: list[str]) -> str:
    """The part of ``text`` from ``title`` up to the next of ``following``."""
    start = text.index(title)
    ends = [text.index(t, start) for t in following if t in text[start:]]
    return text[start : min(ends) if ends else len(text)]


# --------------------------------------------------------------------------- dispatch


def test_render_dispatches_every_format(digest: dict) -> None:
    assert r.render(digest, "text") == r.render_text(digest)
    assert r.render(digest, "text", width=60) == r.render_text(digest, width=60)
    assert r.render(digest, "md") == r.render_markdown(digest)
    assert r.render(digest, "html") == r.render_html(digest)
    assert r.render(digest, "json") == r.render_json(digest)
    assert r.render(digest, "atom") == r.render_atom(digest)
    with pytest.raises(ValueError, match="unknown digest format 'pdf'"):
        r.render(digest, "pdf")


def test_renderers_are_pure(digest: dict, sample: dict) -> None:
    for fmt in r.FORMATS:
        first = r.render(digest, fmt)
        assert r.render(digest, fmt) == first
    assert digest == sample


@pytest.mark.parametrize("fmt", ["text", "md", "html", "atom"])
def test_summary_line_in_every_human_format(digest: dict, fmt: str) -> None:
    assert SUMMARY in r.render(digest, fmt)


def test_builder_alarms_are_words(digest: dict) -> None:
    digest["sources"] = [{"name": "wire", "topic": "t", "last_success": None,
                          "last_error": "HTTP 500", "consecutive_failures": 3,
                          "alarm": {"kind": "failing", "message": "failed 3 times in a row",
                                    "since": "2022-12-05T09:00:00+00:00"}},
                         {"name": "quiet", "topic": "t", "consecutive_failures": 0,
                          "last_success": "2022-12-05T09:00:00+00:00", "alarm": None}]
    for fmt in ("text", "md", "html"):
        out = r.render(digest, fmt)
        assert "{&#x27;kind" not in out and "{'kind'" not in out and " — unknown" not in out
    text = r.render_text(digest, width=200)
    assert ("Source alarm: wire — failing: failed 3 times in a row (since 2022-12-05 09:00 UTC)"
            in text)
    assert "quiet — healthy" in text


def test_summary_line_pluralisation() -> None:
    d = empty_digest()
    d["articles"] = [{"id": 1, "title": "t", "flags": ["new_report", "conflict"],
                      "conflicts": [{"claim_id": "c", "sentence": "s"}]}]
    assert r.summary_line(d) == "1 article: 1 new report, 0 duplicates, 1 conflict, 0 candidates"


# --------------------------------------------------------------------------- text


def test_text_sections_in_order(digest: dict) -> None:
    text = r.render_text(digest)
    positions = heading_positions(text)
    assert positions == sorted(positions)
    assert text.startswith("claimwatch digest: twitter-child-safety\n")
    assert SUMMARY in text.splitlines()[:4]
    # The alarm leads, in words, before any section.
    alarm = "Source alarm: sz-news-sitemap — no successful fetch for 4 days (HTTP 403)"
    assert alarm in text.splitlines()[:5]
    # Shorter than the digest it replaced (129 lines for this sample).
    assert len(text.splitlines()) < 110


def test_conflicts_and_disputes_lead_and_counts_agree(digest: dict) -> None:
    digest["articles"][7]["claims"][0]["stance"] = "disputes"  # #108 disputes a claim
    text = r.render_text(digest, width=200)
    assert text.index("Conflicting figures (1)") < text.index("Disputes (1)") \
        < text.index("Stories (5)")
    assert "10 articles: 5 new reports, 5 duplicates, 1 conflict, 1 dispute, 2 candidates" in text
    disputes = section(text, "Disputes (1)", ["Stories (5)"])
    assert "#108 Twitter <script>alert(1)</script> child safety team gutted" in disputes
    assert "Disputes: “NCMEC says Twitter's CyberTipline numbers" in disputes
    story = section(section(text, "Stories (5)", []), "#108 ", ["#109 "])
    assert "Disputes: “NCMEC says" in story and "Repeats: “NCMEC" not in story


def test_revisions_are_a_section_of_their_own(digest: dict) -> None:
    digest["articles"][0]["revisions"] = [{
        "fetched_at": "2022-12-06T05:00:00+00:00", "changes": ["figure_changed",
                                                               "correction_added"],
        "removed": ["Only 25 of 1,600 remain."], "added": ["Only 20 of 1,600 remain."]}]
    text = r.render_text(digest, width=200)
    revised = section(text, "Revised articles (1)", ["Stories (5)"])
    assert "2022-12-06 05:00 UTC: figure changed, correction added" in revised
    assert "was: “Only 25 of 1,600 remain.”" in revised
    assert "now: “Only 20 of 1,600 remain.”" in revised
    assert "1 revision" in text.splitlines()[2]


def test_claims_say_who_repeats_and_who_disputes(digest: dict) -> None:
    digest["articles"][7]["claims"][0]["stance"] = "disputes"  # Blogspot disputes NCMEC's
    text = r.render_text(digest, width=200)
    claims = section(text, "Claims: who repeats, who disputes", ["Copies of earlier"])
    ncmec = section(claims, "“NCMEC says", ["\n\n"])
    assert "Repeated by 2 outlets: NBC News, Süddeutsche Zeitung" in ncmec
    assert "Disputed by 1 outlet: Blogspot [mirror](http://evil.example/)" in ncmec
    staff = section(claims, "“25 of the 1,600", ["\n\n"])
    assert "Other figures from 1 outlet: Nikkei Asia" in staff
    assert "Nikkei" not in staff.split("Other figures")[0]


def test_items_link_to_their_review_page(digest: dict) -> None:
    digest["review_base"] = "https://desk.example.org/review/"
    text = r.render_text(digest, width=200)
    assert "Review: https://desk.example.org/review/article/101" in text
    md = r.render_markdown(digest)
    assert "#101 [Elon Musk vowed to end child exploitation on Twitter. His company is far " \
        "from it](<https://desk.example.org/review/article/101>)" in md
    assert "Read at [NBC News](<https://www.nbcnews.com/" in md
    html_text = r.render_html(digest)
    assert 'href="https://desk.example.org/review/article/106"' in html_text
    digest["review_base"] = "javascript:alert(1)"
    assert "javascript:alert(1)/article" not in r.render_markdown(digest)


def test_text_folds_copies_under_original(digest: dict) -> None:
    text = r.render_text(digest)
    new = section(text, "Stories", SECTIONS[2:])
    assert CARRIED in new
    lines = new.splitlines()
    # copies are listed compactly under #101, not as entries of their own
    entry_heads = [line.split()[0] for line in lines if line.startswith("#")]
    assert entry_heads == ["#101", "#106", "#107", "#108", "#109"]
    block = section(new, "#101 ", ["#106 "])
    for copy_id, outlet in [
        (102, "CNBC"),
        (103, "MSN"),
        (104, "Yahoo! News"),
        (105, "The Daily Dot"),
    ]:
        assert f"    - #{copy_id} {outlet} · similarity 9" in block or \
            f"    - #{copy_id} {outlet} · similarity 86" in block
    # an identical title is not repeated for a wire copy; the rewrite shows its own
    assert block.count("Elon Musk vowed to end child exploitation") == 1
    assert "Musk called child safety “priority #1”" in block


def test_text_orphan_copies_section(digest: dict) -> None:
    text = r.render_text(digest)
    orphans = section(text, "Copies of earlier articles", ["Source health\n"])
    assert "Earlier article #87" in orphans
    assert "washingtonpost.com/technology/2022/12/04/" in orphans
    assert "- #110 Ars Technica · similarity 91" in orphans
    assert "#110" not in section(text, "Stories", SECTIONS[2:])


def test_text_claims_by_their_short_text(digest: dict) -> None:
    text = r.render_text(digest, width=200)  # unwrapped, easier to assert on
    story = section(text, "#101 ", ["#106 "])
    assert ("Repeats: “25 of the 1,600 workers still employed by Twitter had positions related "
            "to Trust and…” (match 96)") in story
    assert "Repeats: “Elon Musk said removing child exploitation from Twitter is “priority #1”" \
        in story
    # ids stay out of the reader's way; one scale (0-100) for every score
    assert "C2" not in section(text, "Stories", ["Copies of earlier"])
    assert "0.9" not in section(text, "Stories", ["Copies of earlier"])
    suggested = section(text, "#108 ", ["#109 "])
    assert "Possibly repeats: “NCMEC says" in suggested


def test_text_conflict_and_candidates(digest: dict) -> None:
    text = r.render_text(digest, width=200)
    conflicts = section(text, "Conflicting figures", ["Stories"])
    assert "#106 Twitter’s trust & safety staff: only 30 of 1,600 remain" in conflicts
    assert "Known claim: “25 of the 1,600 workers still employed by Twitter" in conflicts
    assert "Article says: “Only 30 of the 1,600 workers" in conflicts
    assert "Figures: the claim says 25, 1600, the article 30, 1600" in conflicts
    stories = section(text, "Stories", ["Copies of earlier"])
    assert "New claim? “Council members received the dissolution email" in stories
    assert "(82)" in stories and "(61)" in stories


def test_text_source_health_alarm_first(digest: dict) -> None:
    health = section(r.render_text(digest), "Source health\n", [])
    assert health.index("sz-news-sitemap — no successful fetch for 4 days (HTTP 403)") < \
        health.index("nbc-tech-rss — ok")
    assert "unknown" not in health
    assert "last success 2022-12-02 04:00 UTC · last error: HTTP 403 Forbidden" in health


@pytest.mark.parametrize("width", [100, 72, 40])
def test_text_width(digest: dict, width: int) -> None:
    text = r.render_text(digest, width=width)
    assert text.endswith("\n") and not text.endswith("\n\n")
    for line in text.splitlines():
        if cells(line) > width:  # only a URL, alone on its line, may overflow
            body = line.strip().removeprefix("- ")
            assert " " not in body and "://" in body, line
    assert "\x1b" not in text


def test_text_default_width_is_100(digest: dict) -> None:
    digest["articles"][0]["title"] = "word " * 60
    lines = r.render_text(digest).splitlines()
    assert max(cells(line) for line in lines if "://" not in line) <= 100
    assert any(cells(line) > 90 for line in lines if "://" not in line)


def test_text_wraps_wide_characters_and_long_words() -> None:
    d = empty_digest()
    d["articles"] = [
        {
            "id": 1,
            "url": "https://example.jp/" + "a" * 150,
            "title": "日本経済新聞" * 12 + " " + "x" * 150,
            "outlet": "日本経済新聞",
            "flags": ["new_report"],
        }
    ]
    for line in r.render_text(d, width=40).splitlines():
        assert cells(line) <= 40 or line.strip().startswith("https://"), line


def test_text_strips_control_and_bidi_characters() -> None:
    d = empty_digest()
    d["articles"] = [
        {
            "id": 1,
            "url": "https://example.org/a",
            "title": "\x1b[31mRED\x1b[0m title\u202eevil\r\nsecond line\x00",
            "outlet": "Out\u2066let",
            "flags": ["new_report"],
        }
    ]
    text = r.render_text(d)
    assert "\x1b" not in text and "\u202e" not in text and "\u2066" not in text
    assert "\x00" not in text and "\r" not in text
    assert "#1 [31mRED[0m titleevil second line" in text


# --------------------------------------------------------------------------- markdown

MD_LINK = re.compile(r"(?<!\\)\[((?:\\.|[^\\\]])*)\]\(<([^<>\s]*)>\)")


def test_markdown_structure(digest: dict) -> None:
    md = r.render_markdown(digest)
    assert md.startswith("# claimwatch digest: twitter\\-child\\-safety\n") or md.startswith(
        "# claimwatch digest: twitter-child-safety\n"
    )
    for title in SECTIONS:
        assert f"\n## {title}\n" in md
    assert f"**{SUMMARY}**" in md
    new = section(md, "## Stories", ["## Copies"])
    assert "Carried by 5 outlets: NBC News, CNBC, MSN, Yahoo\\! News, The Daily Dot" in new
    assert "\n  - #102 [CNBC](<https://www.cnbc.com/" in new
    assert (
        "- #101 [Elon Musk vowed to end child exploitation on Twitter. His company is far from it]"
        "(<https://www.nbcnews.com/tech/social-media/" in new
    )


def test_markdown_escapes_scraped_text(digest: dict) -> None:
    md = r.render_markdown(digest)
    assert "Twitter \\<script\\>alert(1)\\</script\\> child safety team gutted" in md
    assert "unchanged \\<img src=x onerror=alert(1)\\>" in md
    assert "\\*half\\*" in md and "\\*25\\*" in md
    assert "\\`insiders\\`" in md
    assert "Blogspot \\[mirror\\](http://evil.example/)" in md
    assert "Página\\|12" in md
    digest["articles"][0]["title"] = "Musk spent $44 billion"
    assert "\\$44 billion" in r.render_markdown(digest)  # no accidental math on GitHub
    # Remove every backslash escape: no raw HTML may be left outside our own links.
    unescaped = re.sub(r"\\.", "", md)
    without_links = MD_LINK.sub("", unescaped)
    assert "<" not in without_links and ">" not in without_links
    # Every link is one of ours and points at http(s); scraped ones were neutralised.
    links = MD_LINK.findall(md)
    assert links
    for _label, target in links:
        assert target.startswith(("https://", "http://")), target
        assert "evil.example" not in target and "javascript" not in target
    assert unescaped.count("](") == len(links)


def test_markdown_link_targets_are_encoded(digest: dict) -> None:
    md = r.render_markdown(digest)
    assert (
        "(<https://www.sueddeutsche.de/wirtschaft/twitter-musk-kinderschutz-ncmec-1.5710000"
        "?ref=%22rss%22&x=%3Cb%3E>)" in md
    )
    assert "javascript:alert(document.cookie)" in md  # shown as text only
    assert "(<javascript:" not in md


# --------------------------------------------------------------------------- html


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(markup: str) -> _Collector:
    parser = _Collector()
    parser.feed(markup)
    parser.close()
    return parser


ALLOWED_TAGS = {
    "html",
    "head",
    "meta",
    "title",
    "body",
    "table",
    "tr",
    "td",
    "h1",
    "h2",
    "p",
    "div",
    "a",
    "ul",
    "li",
    "span",
    "strong",
    "code",
}


def test_html_is_self_contained_and_safe(digest: dict) -> None:
    markup = r.render_html(digest)
    assert markup.startswith("<!DOCTYPE html>")
    lowered = markup.lower()
    for bad in ("<script", "<img", "<link", "<style", "<iframe", "@import", "url("):
        assert bad not in lowered, bad
    parsed = parse_html(markup)
    tags = {tag for tag, _ in parsed.tags}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    hrefs = []
    for tag, attrs in parsed.tags:
        assert not any(name.startswith("on") or name == "src" for name in attrs), (tag, attrs)
        if "href" in attrs:
            hrefs.append(attrs["href"])
    assert hrefs and all(h.startswith(("https://", "http://")) for h in hrefs)
    assert not any("javascript" in h or "evil.example" in h for h in hrefs)
    # quotes and angle brackets inside a URL stay inside the attribute
    assert (
        "https://www.sueddeutsche.de/wirtschaft/twitter-musk-kinderschutz-ncmec-1.5710000"
        '?ref="rss"&x=<b>'
    ) in hrefs
    assert "max-width:700px" in markup


def test_html_shows_scraped_text_as_text(digest: dict) -> None:
    parsed = parse_html(r.render_html(digest))
    text = "".join(parsed.text)
    assert "Twitter <script>alert(1)</script> child safety team gutted" in text
    assert "NCMEC: Twitter’s CyberTipline numbers unchanged <img src=x onerror=alert(1)>" in text
    assert "link not shown (not http/https): javascript:alert(document.cookie)" in text
    assert "Blogspot [mirror](http://evil.example/)" in text
    assert "Süddeutsche Zeitung" in text and "日本経済新聞" in text
    assert CARRIED in text


def test_html_sections_and_folding(digest: dict) -> None:
    text = "".join(parse_html(r.render_html(digest)).text)
    positions = heading_positions(text)
    assert positions == sorted(positions)
    new = section(text, "Stories", SECTIONS[2:])
    assert "#102 CNBC · similarity 99" in new
    assert "Repeats: “25 of the 1,600 workers" in new


# --------------------------------------------------------------------------- json


def test_json_round_trips_to_the_contract(digest: dict, sample: dict) -> None:
    out = r.render_json(digest)
    assert json.loads(out) == sample
    assert "Süddeutsche Zeitung" in out and "日本経済新聞" in out  # ensure_ascii=False
    assert out.startswith('{\n  "topic": "twitter-child-safety",\n  "generated_at"')
    loaded = json.loads(out)
    assert list(loaded)[:4] == ["topic", "generated_at", "since", "articles"]
    assert list(loaded["articles"][0]) == [
        "id",
        "url",
        "canonical_url",
        "title",
        "outlet",
        "published",
        "flags",
        "duplicate_of",
        "claims",
        "conflicts",
        "candidates",
        "review",
    ]
    assert list(loaded["articles"][1]["duplicate_of"]) == ["id", "url", "similarity"]
    assert list(loaded["articles"][5]["conflicts"][0]) == [
        "claim_id",
        "sentence",
        "claim_numbers",
        "article_numbers",
    ]


def test_json_key_order_is_stable(digest: dict) -> None:
    shuffled = {k: digest[k] for k in reversed(list(digest))}
    shuffled["articles"] = [{k: a[k] for k in sorted(a)} for a in digest["articles"]]
    assert r.render_json(shuffled) == r.render_json(digest)


# --------------------------------------------------------------------------- atom


def parse_atom(digest: dict) -> etree._Element:
    return etree.fromstring(r.render_atom(digest).encode("utf-8"))


def rfc3339(value: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value), value
    return datetime.fromisoformat(value)


def test_atom_feed_is_structurally_valid(digest: dict) -> None:
    feed = parse_atom(digest)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id").startswith("tag:claimwatch,2024:")
    assert feed.findtext(f"{ATOM}title") == "claimwatch digest: twitter-child-safety"
    assert rfc3339(feed.findtext(f"{ATOM}updated")).isoformat() == "2022-12-06T07:00:00+00:00"
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "claimwatch"
    entries = feed.findall(f"{ATOM}entry")
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert len(ids) == len(set(ids))
    for entry in entries:
        assert entry.findtext(f"{ATOM}id")
        assert entry.findtext(f"{ATOM}title")
        rfc3339(entry.findtext(f"{ATOM}updated"))
        alternate = entry.findall(f"{ATOM}link[@rel='alternate']")
        if alternate:
            assert alternate[0].get("href").startswith("https://")
        else:  # RFC 4287 4.1.1: no alternate link requires content
            assert entry.find(f"{ATOM}content") is not None
        assert entry.find(f"{ATOM}summary").get("type") == "text"
    assert not feed.xpath("//*[local-name()='script' or local-name()='img']")


def test_atom_entries_one_per_flagged_original(digest: dict) -> None:
    entries = {e.findtext(f"{ATOM}title"): e for e in parse_atom(digest).findall(f"{ATOM}entry")}
    titles = list(entries)
    assert len(titles) == 6  # 5 originals + the copy of an article outside this digest
    assert "Twitter <script>alert(1)</script> child safety team gutted" in titles
    assert "NCMEC: Twitter’s CyberTipline numbers unchanged <img src=x onerror=alert(1)>" in titles
    nbc = entries[
        "Elon Musk vowed to end child exploitation on Twitter. His company is far from it"
    ]
    assert nbc.findtext(f"{ATOM}id") == digest["articles"][0]["canonical_url"]
    assert nbc.findtext(f"{ATOM}updated") == "2022-12-05T14:03:00Z"
    summary = nbc.findtext(f"{ATOM}summary")
    assert "Flags: new report" in summary and CARRIED in summary
    assert "- C2 (score 96.5)" in summary
    assert [c.get("term") for c in nbc.findall(f"{ATOM}category")] == ["new_report"]
    xss = entries["Twitter <script>alert(1)</script> child safety team gutted"]
    assert xss.findtext(f"{ATOM}id").startswith("tag:claimwatch,2024:")
    assert xss.findtext(f"{ATOM}updated") == "2022-12-06T07:00:00Z"  # no published date
    assert "javascript:" in xss.findtext(f"{ATOM}content")
    conflict = entries["Twitter’s trust & safety staff: only 30 of 1,600 remain, documents show"]
    assert "claim 25, 1600 vs article 30, 1600" in conflict.findtext(f"{ATOM}summary")
    assert conflict.findtext(f"{ATOM}author/{ATOM}name") == "Nikkei Asia · 日本経済新聞"


def test_atom_survives_xml_invalid_characters() -> None:
    d = empty_digest()
    d["articles"] = [
        {
            "id": 1,
            "url": "https://example.org/a",
            "title": "bad \x00\x0b\ud800 chars",
            "outlet": "x\x1b",
            "published": "not a date",
            "flags": ["new_report"],
        },
    ]
    feed = parse_atom(d)
    assert feed.findtext(f"{ATOM}entry/{ATOM}title") == "bad chars"


# --------------------------------------------------------------------------- empty & odd input


@pytest.mark.parametrize("fmt", ["text", "md", "html", "atom"])
def test_empty_digest_is_friendly(fmt: str) -> None:
    out = r.render(empty_digest(), fmt)
    assert "Nothing new since 2022-12-05 07:00 UTC." in out
    assert "Stories" not in out


def test_empty_digest_json_and_atom_stay_valid() -> None:
    d = empty_digest()
    assert json.loads(r.render_json(d)) == d
    feed = etree.fromstring(r.render_atom(d).encode())
    assert feed.findall(f"{ATOM}entry") == []
    assert feed.findtext(f"{ATOM}subtitle") == "Nothing new since 2022-12-05 07:00 UTC."


def test_empty_digest_still_reports_source_alarms() -> None:
    d = empty_digest()
    d["sources"] = [{"name": "feed-a", "status": "failing", "last_success": None, "alarm": True}]
    text = r.render_text(d)
    assert "Nothing new since" in text and "Source alarm: feed-a — needs attention" in text
    assert "last success never" in text


def test_minimal_articles_and_odd_families() -> None:
    """Optional fields missing, a chain of copies, a cycle, an unflagged original."""
    d = empty_digest()
    d["articles"] = [
        {"id": 1, "title": "Original", "url": "https://a.example/1", "flags": ["new_report"]},
        {
            "id": 2,
            "title": "Copy",
            "outlet": "B",
            "flags": ["duplicate"],
            "duplicate_of": {"id": 1, "url": "https://a.example/1", "similarity": 0.9},
        },
        {
            "id": 3,
            "title": "Copy of copy",
            "outlet": "C",
            "flags": ["duplicate"],
            "duplicate_of": {"id": 2, "url": None, "similarity": 0.95},
        },
        {"id": 4, "title": "Loop A", "flags": ["duplicate"], "duplicate_of": {"id": 5}},
        {"id": 5, "title": "Loop B", "flags": ["duplicate"], "duplicate_of": {"id": 4}},
        {
            "id": 6,
            "title": "Quiet",
            "outlet": "D",
            "flags": [],
            "claims": [{"claim_id": "X1", "score": 80, "sentence": "s", "claim_text": "claim x"}],
        },
    ]
    for fmt in r.FORMATS:
        assert r.render(d, fmt)
    text = r.render_text(d)
    assert "Carried by 3 outlets: a.example, B, C" in text
    assert "Other articles (3)" in text
    assert "Repeats: “claim x” (match 80)" in text
    assert r.flagged_count(d) == 5


def test_subject() -> None:
    d = empty_digest()
    assert r.digest_subject(d) == (
        "claimwatch digest: twitter-child-safety — 0 flagged since 2022-12-05 07:00 UTC"
    )
