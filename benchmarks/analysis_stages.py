"""CPU per page of each step of a worker's analysis, against trafilatura (run by hand).

    .venv/bin/python benchmarks/analysis_stages.py                  # ~1 min
    .venv/bin/python benchmarks/analysis_stages.py --topic config/topics/demo.yaml

What a crawl's worker process spends per page (pipeline/analysis.py), step by step, on
every distinct real page of ../shared/data (the pages of benchmarks/crawl_throughput.py),
with the 20 seed claims and an empty query (every page goes through every step), and,
page by page in the same loop, the reference: trafilatura's ``bare_extraction`` with
claimwatch's options on the decoded page. Times are ``time.process_time`` of this one
process (the load average is printed: other processes do not count, but they do slow the
caches). ``whole-chain`` is :meth:`AnalysisChain.analyse` on the page; the steps are then
timed one by one on the same page. The last lines are ``RESULT <set> <metric> <value>``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from crawl_throughput import CLAIMWATCH_OPTIONS, SEED_CLAIMS, load_pages  # noqa: E402

STEPS = ("trafilatura-reference", "whole-chain", "extract", "topic-filter", "sentences",
         "claims", "candidates", "dedup-keys")


def write_topic(directory: Path, topic: Path | None) -> Path:
    """The topic to analyse with: ``topic``, or the seed claims with an empty query."""
    if topic is not None:
        return topic
    (directory / "claims.csv").write_bytes(SEED_CLAIMS.read_bytes())
    path = directory / "topic.yaml"
    path.write_text("name: stages\nquery: {}\nclaims: claims.csv\nsources:\n"
                    '  - {name: f, kind: feed, url: "http://127.0.0.1:1/rss.xml"}\n',
                    encoding="utf-8")
    return path


def measure(topic_file: Path) -> tuple[int, dict[str, float]]:
    """(pages, CPU seconds per step summed over the pages)."""
    import trafilatura

    from config.loader import load_topic
    from pipeline.analysis import AnalysisChain, ArticleJob
    from pipeline.claims import ArticleContext
    from pipeline.extract import ExtractionError
    from pipeline.workers import topic_config

    chain = AnalysisChain(topic_config(load_topic(topic_file)))
    spent = dict.fromkeys(STEPS, 0.0)

    def timed(step: str, work, *args):  # type: ignore[no-untyped-def]
        started = time.process_time()
        try:
            return work(*args)
        finally:
            spent[step] += time.process_time() - started

    pages = load_pages()
    for name, body in pages:
        url = f"http://127.0.0.1/a/00/{name}.html"
        html = body.decode("utf-8", errors="replace")
        timed("trafilatura-reference",
              lambda html=html, url=url: trafilatura.bare_extraction(html, url=url,
                                                                     **CLAIMWATCH_OPTIONS))
        job = ArticleJob(url, body, "utf-8")
        timed("whole-chain", chain.analyse, job)
        try:
            extracted = timed("extract", chain.extract, job)
        except ExtractionError:
            continue
        timed("topic-filter", chain.topic_filter, extracted.title, extracted.text)
        context = ArticleContext(title=extracted.title, published=extracted.published,
                                 lang=extracted.language)
        sentences = timed("sentences", chain.sentences, extracted.text)
        matches = timed("claims", chain.claims, sentences, context)
        timed("candidates", chain.candidates, sentences, matches)
        timed("dedup-keys", chain.dedup_keys, extracted.text)
    return len(pages), spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topic", type=Path, help="a topic file (default: the seed claims, "
                                                   "empty query)")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # trafilatura's warnings on odd pages
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="claimwatch-stages-") as tmp:
        pages, spent = measure(write_topic(Path(tmp), args.topic))
    print(f"{pages} distinct real pages; ms of CPU per page:")
    for step in STEPS:
        print(f"  {step:22s} {1000 * spent[step] / pages:6.2f}")
    ratio = spent["whole-chain"] / spent["trafilatura-reference"]
    print(f"whole chain / trafilatura reference: {ratio:.2f}x; "
          f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for step in STEPS:
        print(f"RESULT analysis-{pages} {step}-ms-per-page {1000 * spent[step] / pages:.2f}")
    print(f"RESULT analysis-{pages} chain-over-trafilatura {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
