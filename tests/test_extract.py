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
