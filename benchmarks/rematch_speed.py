"""Re-analysis of a grown store against the crawl's analysis of the same articles.

    .venv/bin/python benchmarks/rematch_speed.py                      # 20,000 articles
    .venv/bin/python benchmarks/rematch_speed.py --articles 2000 --workers 2   # quick

The articles: ``--articles`` DISTINCT pages made from real texts (scrapinghub-aeb ground
truth, FNC-1 bodies, newspaper4k; each with a sentence of its own, every tenth a copy of
one five pages back with a paragraph dropped: benchmarks/store_growth.py's pages), in a
fresh SQLite store of one topic with the 20 seed claims and an empty query (every page
is on topic and goes through the whole chain).

- crawl: what the crawl's analysis (pipeline/analysis.py, ``AnalysisChain.analyse``:
  extract -> topic filter -> sentences -> claims -> candidates -> dedup keys, on the
  HTML) costs per article, CPU seconds, over every ``--sample``-th page, in this
  process; times the number of articles;
- store: the articles stored with their matches against the claims table WITHOUT its
  last claim (so every article is behind the table, as after a promotion);
- rematch: the production ``pipeline.rematch.rematch_topic`` over the whole store with
  the full table, ``--workers`` worker processes: wall time and CPU time of this process
  plus its workers (``resource.getrusage``: the workers have exited when it returns),
  which includes reading every article and one transaction per article.

The ratio the issue sets a target for (<= 2) is rematch CPU / crawl analysis CPU for the
same articles. Pages are simpler HTML than real sites, so the crawl's extraction is
cheaper here than on the web: the ratio is, if anything, pessimistic. Prints the load
average before and after (2 cores shared with other work: compare ratios).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.store_growth import load_texts, make_pages  # noqa: E402
from config.loader import load_topic  # noqa: E402
from pipeline.analysis import AnalysisChain, ArticleJob, StoredJob  # noqa: E402
from pipeline.extract import Extracted  # noqa: E402
from pipeline.persist import article_record  # noqa: E402
from pipeline.rematch import rematch_topic  # noqa: E402
from pipeline.workers import ReanalysisPool, topic_config  # noqa: E402
from storage.db import open_db  # noqa: E402
from storage.repository import Store  # noqa: E402

SEED_CLAIMS = REPO / "config" / "topics" / "claims.csv"


def cpu() -> float:
    """CPU seconds of this process and its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def write_topic(directory: Path, claims: str) -> Path:
    (directory / "claims.csv").write_text(claims, encoding="utf-8")
    topic = directory / "topic.yaml"
    topic.write_text("name: bench-rematch\nquery: {}\nclaims: claims.csv\nsources:\n"
                     '  - {name: bench-feed, kind: feed, url: "http://127.0.0.1:9/rss.xml"}\n',
                     encoding="utf-8")
    return topic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--sample", type=int, default=10,
                        help="time the crawl's analysis on every Nth page")
    parser.add_argument("--workers", type=int, default=None, help="default: one per CPU")
    args = parser.parse_args(argv)
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    pages = make_pages(load_texts(), args.articles)
    lines = SEED_CLAIMS.read_text(encoding="utf-8").strip().splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        topic_file = write_topic(directory, "\n".join(lines[:-1]) + "\n")
        old_topic = load_topic(topic_file)
        write_topic(directory, "\n".join(lines) + "\n")
        topic = load_topic(topic_file)
        chain = AnalysisChain(topic_config(topic))

        # crawl side: the whole chain on the HTML of a sample of the pages
        crawl_cpu = [chain.analyse(ArticleJob(url=f"http://bench.test{path}", body=html))
                     .cpu_seconds for path, _, html in pages[::args.sample]]
        per_article = statistics.fmean(crawl_cpu)
        print(f"crawl analysis: {per_article * 1000:.2f} ms CPU/article "
              f"(median {statistics.median(crawl_cpu) * 1000:.2f}) over {len(crawl_cpu)} "
              f"pages; x {len(pages)} articles = {per_article * len(pages):.1f} s")

        engine, sessions = open_db(f"sqlite:///{directory / 'store.sqlite'}")
        store = Store(sessions)
        started = time.monotonic()
        with ReanalysisPool(topic_config(old_topic), args.workers) as pool:
            batch = 200
            for i in range(0, len(pages), batch):
                chunk = pages[i:i + batch]
                jobs = [StoredJob(key=j, url=f"http://bench.test{path}", text=text,
                                  title=text.split("\n", 1)[0][:80])
                        for j, (path, text, _) in enumerate(chunk, start=i)]
                for job, analysis in zip(jobs, pool.submit(jobs).result(), strict=True):
                    extracted = Extracted(url=job.url, title=job.title, author=None,
                                          published=None, outlet=None, language=None,
                                          text=job.text, description=None,
                                          declared_canonical=None)
                    analysis = replace(analysis, extracted=extracted)
                    store.save(article_record(topic=topic.name, source="bench-feed",
                                              url=job.url, canonical=job.url,
                                              analysis=analysis, duplicate=None,
                                              fetched_at=None))
        print(f"store: {len(pages)} articles stored in {time.monotonic() - started:.1f} s "
              "(matched against the table without its last claim)")

        before_cpu, before_wall = cpu(), time.monotonic()
        summary = rematch_topic(topic, store, workers=args.workers)
        rematch_cpu, rematch_wall = cpu() - before_cpu, time.monotonic() - before_wall
        engine.dispose()
    crawl_total = per_article * len(pages)
    ratio = rematch_cpu / crawl_total
    print("\n".join(summary.lines()))
    print(f"rematch: {summary.articles_checked} articles in {rematch_wall:.1f} s wall, "
          f"{rematch_cpu:.1f} s CPU (analysis in the workers: {summary.cpu_seconds:.1f} s), "
          f"workers={args.workers or os.cpu_count()}")
    print(f"rematch CPU / crawl analysis CPU = {ratio:.2f} (target <= 2)")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results = {"crawl_analysis_cpu_s": crawl_total, "rematch_cpu_s": rematch_cpu,
               "rematch_wall_s": rematch_wall, "cpu_ratio": ratio}
    for metric, value in results.items():
        print(f"RESULT rematch-{len(pages)} {metric} {value:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
