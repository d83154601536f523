"""Extraction: metadata and text on real pages; clear errors on pages with no article."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from pipeline.extract import ExtractionError, extract_article


def shingles(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(max(len(words) - n + 1, 1))}


def f1(predicted: str, truth: str) -> float:
    p, t = shingles(predicted), shingles(truth)
    if not p or not t:
        return 0.0
    tp = len(p & t)
    precision, recall = tp / len(p), tp / len(t)
    return 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)


def test_scrapinghub_sample_scores_like_trafilatura(shared_data: Path) -> None:
    """The first 40 pages of the benchmark (the full run is benchmarks/quality.py)."""
    base = shared_data / "scrapinghub-aeb"
    truth = json.loads((base / "ground-truth.json").read_text())
    scores = []
    for key in sorted(truth)[:40]:
        html = gzip.decompress((base / "html" / f"{key}.html.gz").read_bytes())
        try:
            text = extract_article(html, truth[key]["url"], min_chars=0).text
        except ExtractionError:
            text = ""
        scores.append(f1(text, truth[key]["articleBody"]))
    mean = sum(scores) / len(scores)
    assert mean > 0.90, mean


PAGE = """<!doctype html><html lang="en-GB"><head><meta charset="utf-8">
<title>Twitter cut its child-safety team | Northwire</title>
<meta property="og:site_name" content="Northwire">
<meta property="og:title" content="Twitter cut its child-safety team">
<meta name="author" content="Dana Reyes">
<meta property="article:published_time" content="2022-12-15T10:30:00+00:00">
<link rel="canonical" href="/2022/12/15/twitter.html">
</head><body><nav><a href="/">Home</a> <a href="/tech">Tech</a></nav>
<article><h1>Twitter cut its child-safety team</h1>
<p>Internal records show that 25 of the 1,600 workers still employed by Twitter had roles in
Trust and Safety, according to documents reviewed by Northwire.</p>
<p>By the end of 2021, Twitter employed more than 7,500 people, the records show. Many of the
engineers who built detection tools have left, three former employees said.</p>
<p>Read the <a href="https://origin.example/report">original report</a>.</p>
</article><footer>Copyright Northwire. All rights reserved.</footer></body></html>"""


def test_metadata_and_text() -> None:
    article = extract_article(PAGE.encode(), "https://northwire.example/2022/12/15/twitter.html?utm_source=x")
    assert article.title == "Twitter cut its child-safety team"
    assert article.author == "Dana Reyes"
    assert article.outlet == "Northwire"
    assert article.language == "en"
    assert article.published is not None and article.published.isoformat() == "2022-12-15T10:30:00+00:00"
    assert article.declared_canonical == "https://northwire.example/2022/12/15/twitter.html"
    assert "25 of the 1,600 workers" in article.text
    assert "All rights reserved" not in article.text
    assert ("https://origin.example/report", "original report") in article.links


def test_windows_1252_page_decodes_with_declared_encoding() -> None:
    body = PAGE.replace("Northwire.</p>", "Northwire \u2014 caf\u00e9.</p>").encode("cp1252")
    article = extract_article(body, "https://northwire.example/a", encoding="cp1252")
    assert "caf\u00e9" in article.text and "\u2014" in article.text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"   \n ", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
        (b"<html><body><p>Too short.</p></body></html>", None),
    ],
)
def test_pages_without_an_article_raise_with_a_reason(body: bytes, reason: str | None) -> None:
    with pytest.raises(ExtractionError) as info:
        extract_article(body, "https://x.example/")
    if reason:
        assert info.value.reason == reason
    else:
        assert info.value.reason in {"no_text", "too_short"}


def test_truncated_html_still_extracts() -> None:
    body = PAGE.encode()[: PAGE.encode().index(b"<footer>") - 40]
    article = extract_article(body, "https://northwire.example/a", min_chars=50)
    assert "25 of the 1,600 workers" in article.text


def _real_pages(shared_data: Path) -> list[tuple[str, bytes]]:
    """Pages of three real sets: news sites, newspaper4k's and Mozilla Readability's tests."""
    pages = []
    for pattern, count in (("scrapinghub-aeb/html/*.html.gz", 60),
                           ("newspaper4k-testdata/html/*.html.gz", 30),
                           ("mozilla-readability-testpages/test-pages/*/source.html.gz", 60)):
        for path in sorted(shared_data.glob(pattern))[:count]:
            pages.append((f"https://news.example/{path.parent.name}/{path.name[:-8]}",
                          gzip.decompress(path.read_bytes())))
    return pages


def _tree(html: bytes):
    import lxml.html

    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", html.decode("utf-8", errors="replace"), count=1)
    return lxml.html.document_fromstring(text)


def test_the_metadata_kept_is_what_trafilatura_extract_metadata_finds(shared_data: Path) -> None:
    """extract_article computes only the metadata fields it keeps (no categories, tags or
    licence; no date search when the page's own tags date it). Each kept field must be what
    trafilatura's own extract_metadata, as bare_extraction calls it, returns on real pages:
    this fails if an upgrade of trafilatura changes its steps."""
    from trafilatura.metadata import extract_metadata

    from pipeline.extract import _DATE_PARAMS, _KEPT_METADATA, _page_metadata

    pages = _real_pages(shared_data)
    assert len(pages) >= 120
    dated = undated = 0
    for url, html in pages:
        tree = _tree(html)
        theirs = extract_metadata(tree, url, {**_DATE_PARAMS}, False, set())
        ours = _page_metadata(tree, url, with_date=True)
        assert ours == {name: getattr(theirs, name) for name in _KEPT_METADATA}, url
        dated += theirs.date is not None
        undated += theirs.date is None
    assert dated > 50 and undated > 0  # both paths of the date search ran


def test_extract_article_keeps_what_bare_extraction_with_metadata_gives(shared_data: Path) -> None:
    """The text, title, author, outlet and (where the page's tags give none) the day are
    those of trafilatura.bare_extraction(with_metadata=True), the call claimwatch made before on its parsed page."""
    import trafilatura

    from pipeline.extract import _meta_published, _parse_date

    compared = undated = 0
    for url, html in _real_pages(shared_data)[::3]:
        try:
            ours = extract_article(html, url)
        except ExtractionError:
            continue
        theirs = trafilatura.bare_extraction(
            _tree(html), url=url, with_metadata=True,
            favor_precision=True, include_comments=False, include_tables=True)
        assert ours.title == (theirs.title or None), url
        assert ours.author == (theirs.author or None), url
        assert ours.outlet == (theirs.sitename or theirs.hostname or None), url
        assert ours.description == (theirs.description or None), url
        assert ours.text.split() == (theirs.text or "").split(), url
        own = _meta_published(_tree(html))  # the page's own timestamp first, trafilatura's day else
        assert ours.published == (own if own is not None else _parse_date(theirs.date)), url
        undated += own is None and theirs.date is not None
        compared += 1
    assert compared >= 40 and undated > 5
