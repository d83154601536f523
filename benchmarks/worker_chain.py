"""The worker's analysis chain alone, over the throughput site's pages (run by hand).

    .venv/bin/python benchmarks/worker_chain.py                     # ~20 s
    .venv/bin/python benchmarks/worker_chain.py --dump /tmp/b.pkl   # and keep the analyses

Every distinct page of benchmarks/crawl_throughput.py (338 of them, under the URLs the
crawl fetches them from, with the encoding Scrapy infers), analysed once in this process
as a crawl's worker does it: the forkserver's preload first (models loaded, then
``gc.freeze``), then the worker's initializer's settings (pipeline.workers:
``return_freed_memory``, and ``collect_less`` where the tree has it), the topic of the
throughput benchmark (empty query, the 20 seed claims), then ``Analyser.analyse`` per
page. Prints the CPU per page and the garbage collector's passes during the pages.

``--dump`` pickles the analyses (without their CPU seconds) to a file: two trees whose
dumps are the same bytes extracted the same texts, metadata and links, matched the same
claims and candidates, and computed the same hashes and band keys (run it from each
tree's directory: the tree's own modules are imported).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "benchmarks", REPO):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", type=Path, help="pickle the analyses to this file")
    args = parser.parse_args(argv)

    import pipeline.preload  # noqa: F401, I001 - the forkserver's preload (gc.freeze), first

    import crawl_throughput as ct
    from scrapy.http import HtmlResponse

    from config.loader import load_topic
    from pipeline import workers
    from pipeline.analysis import ArticleJob

    pages = ct.load_pages()
    jobs = []
    for (path, _), (_, body) in zip(ct.page_urls(pages, 1), pages, strict=True):
        url = f"http://127.0.0.1{path}"
        encoding = HtmlResponse(url, body=body, headers={"Content-Type": "text/html"}).encoding
        jobs.append(ArticleJob(url=url, body=body, encoding=encoding))
    with tempfile.TemporaryDirectory() as tmp:
        topic = load_topic(ct.write_topic(Path(tmp), "seed", "http://127.0.0.1:1"))
    workers.return_freed_memory()
    analyser = workers.Analyser(workers.topic_config(topic))
    collect_less = getattr(workers, "collect_less", None)
    if collect_less is not None:
        collect_less()

    passes = {"n": 0, "full": 0, "cpu": 0.0, "started": 0.0}

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            passes["started"] = time.process_time()
        else:
            passes["n"] += 1
            passes["full"] += info["generation"] == 2
            passes["cpu"] += time.process_time() - passes["started"]

    gc.callbacks.append(count)
    started = time.process_time()
    results = [analyser.analyse(job) for job in jobs]
    cpu = time.process_time() - started
    gc.callbacks.remove(count)
    print(f"{len(jobs)} pages: {1000 * cpu / len(jobs):.2f} ms CPU per page; garbage "
          f"collector {passes['n']} passes ({passes['full']} full), "
          f"{1000 * passes['cpu'] / len(jobs):.2f} ms per page "
          f"(threshold {gc.get_threshold()[0]}); load "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.dump:
        with open(args.dump, "wb") as fh:
            pickle.dump([dataclasses.replace(r, cpu_seconds=0.0) for r in results], fh)
    print(f"RESULT worker-chain cpu-ms-per-page {1000 * cpu / len(jobs):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
