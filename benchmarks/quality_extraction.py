"""Extraction quality and cost on scrapinghub's article-extraction benchmark (181 pages).

Run by hand:  .venv/bin/python benchmarks/quality_extraction.py

Prints the official metric (4-gram shingle precision/recall/F1, averaged over
pages) and ms/page for claimwatch's extraction (pipeline.extract.extract_article,
as the crawl runs it) and for trafilatura alone with its default and
favor_precision settings, on the same pages in the same process.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import trafilatura

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.extract import ExtractionError, extract_article  # noqa: E402

DATA = Path(os.environ.get("CLAIMWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
AEB = DATA / "scrapinghub-aeb"


def shingles(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(max(len(words) - n + 1, 1))}


def prf(predicted: str, truth: str) -> tuple[float, float, float]:
    """scrapinghub's evaluate.py: shingle precision/recall/F1 (empty prediction scores 0)."""
    p, t = shingles(predicted), shingles(truth)
    if not p or not t:
        return (0.0, 0.0, 0.0) if t else (1.0, 1.0, 1.0)
    tp = len(p & t)
    precision, recall = tp / len(p), tp / len(t)
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def claimwatch_extract(html: bytes, url: str) -> str:
    try:
        return extract_article(html, url, min_chars=0).text
    except ExtractionError:
        return ""


def trafilatura_default(html: bytes, url: str) -> str:
    return trafilatura.extract(html, url=url) or ""


def trafilatura_precision(html: bytes, url: str) -> str:
    return trafilatura.extract(html, url=url, favor_precision=True) or ""


def trafilatura_metadata(html: bytes, url: str) -> str:
    """What the crawl needs: text plus metadata (title, author, date, site name)."""
    doc = trafilatura.bare_extraction(html, url=url, favor_precision=True, with_metadata=True)
    return (doc.text or "") if doc is not None else ""


def evaluate(name: str, func: Callable[[bytes, str], str],
             pages: list[tuple[bytes, str, str]]) -> None:
    scores = []
    start = time.perf_counter()
    outputs = [func(html, url) for html, url, _ in pages]
    elapsed = time.perf_counter() - start
    for text, (_, _, truth) in zip(outputs, pages, strict=True):
        scores.append(prf(text, truth))
    n = len(scores)
    p, r, f = (sum(s[i] for s in scores) / n for i in range(3))
    print(f"  {name:<34} P {p:.3f}  R {r:.3f}  F1 {f:.3f}   {1000 * elapsed / n:6.1f} ms/page")


def main() -> int:
    if not AEB.is_dir():
        print(f"no data at {AEB} (set CLAIMWATCH_SHARED_DATA)", file=sys.stderr)
        return 1
    truth = json.loads((AEB / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [
        (gzip.decompress((AEB / "html" / f"{key}.html.gz").read_bytes()), item["url"],
         item["articleBody"])
        for key, item in sorted(truth.items())
    ]
    print(f"scrapinghub-aeb: {len(pages)} pages, 4-gram shingle metric (mean over pages)")
    for _ in range(2):  # warm-up, then measure; trafilatura caches compiled XPaths
        trafilatura_default(pages[0][0], pages[0][1])
    evaluate("claimwatch (extract_article)", claimwatch_extract, pages)
    evaluate("trafilatura.extract default", trafilatura_default, pages)
    evaluate("trafilatura.extract favor_precision", trafilatura_precision, pages)
    evaluate("trafilatura + metadata, precision", trafilatura_metadata, pages)
    load = os.getloadavg()[0]
    print(f"  (load average {load:.1f} on {os.cpu_count()} cores while measuring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
