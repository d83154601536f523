"""Claim matching cost per article against 10,000 and 100,000 claims (run by hand).

    .venv/bin/python benchmarks/matching_speed.py
    .venv/bin/python benchmarks/matching_speed.py --sizes 1000,10000,100000 --runs 100

The article: the first 40 sentences of ../shared/seed/musk-twitter-child-safety.txt
(823 words), with a title and a date as the crawl gives them. The claims: N real
claims with distinct texts (:func:`distinct_claims`: CLEF 2A and 2B claims with
their titles as aliases, then 2A subtitles, debate transcript lines and MSRP
sentences). Per size: the index built and stored in a disk cache, then loaded
from it (what every crawl process does), then ``match_claims`` on the article
``--runs`` times with the text-analysis cache cleared before each run (every
article is new), reported as median and minimum wall time and median CPU time of
this thread (less disturbed by other processes on a shared machine), and the same
for ``match_claims`` + ``find_candidates`` (what the pipeline runs per article).
Also the split of one run: sentence analysis, candidate retrieval (the posting
sums, ``ClaimIndex.lexical``) and the rest of the scoring; each row ends with the
load average when it was measured.
A table of PRUNE_MIN_CLAIMS claims or more is pruned by the index build (each
term's postings cut to PRUNE_KEEP by impact); for it, the exact (unpruned) index
of the same table is timed too, side by side. Memory: what the largest index
keeps (traced Python allocations after the build), the traced peaks of building
it and of building + matching, and this process's peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from claims_data import (  # noqa: E402
    CLEF,
    article_sentences,
    distinct_claims,
)

from config.models import Claim  # noqa: E402
from pipeline import claims as C  # noqa: E402
from pipeline.claims import index as I  # noqa: E402
from pipeline.claims import scoring as S  # noqa: E402
from pipeline.text import analyse  # noqa: E402

TARGET_MS = 3.0  # issues 11 and 13: at most 3 ms per article at 10,000 and 100,000 claims


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, float]:
    """(median wall ms, min wall ms, median thread-CPU ms) of ``fn`` with a cold text cache."""
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        analyse.cache_clear()
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return 1000 * statistics.median(wall), 1000 * min(wall), 1000 * statistics.median(cpu)


def split(index: C.ClaimIndex, sentences: Sequence[str], runs: int) -> str:
    """Where one ``match_claims`` run goes: analysis, retrieval (``ClaimIndex.lexical``,
    the posting sums with the first stage's bound) and the rest of the scoring."""
    floor = C.DEFAULT_SUGGESTED_MIN / 100.0 * 0.999
    parts: dict[str, list[float]] = {"analyse": [], "retrieve": [], "score": []}
    lexical = index.lexical
    spent: list[float] = []

    def timed_lexical(*args: object, **kwargs: object) -> object:
        t0 = time.thread_time()
        found = lexical(*args, **kwargs)  # type: ignore[arg-type]
        spent.append(time.thread_time() - t0)
        return found

    index.lexical = timed_lexical  # type: ignore[method-assign]
    try:
        for _ in range(runs):
            analyse.cache_clear()
            spent.clear()
            t0 = time.thread_time()
            feats = [analyse(s) for s in sentences]
            t1 = time.thread_time()
            S._score_queries(index, feats, 5, S.CANDIDATE_GATE, floor)
            t2 = time.thread_time()
            parts["analyse"].append(t1 - t0)
            parts["retrieve"].append(sum(spent))
            parts["score"].append(t2 - t1 - sum(spent))
    finally:
        del index.lexical  # the method again
    return ", ".join(f"{k} {1000 * statistics.median(v):.2f}" for k, v in parts.items())


def exact_reference(
    table: Sequence[Claim], sentences: Sequence[str], context: C.ArticleContext, runs: int,
    cache: str,
) -> float:
    """Median thread-CPU ms of ``match_claims`` on the exact index of a table build prunes."""
    saved = I.PRUNE_MIN_CLAIMS
    I.PRUNE_MIN_CLAIMS = len(table) + 1
    try:
        index = C.ClaimIndex.cached(table, cache)
    finally:
        I.PRUNE_MIN_CLAIMS = saved
    C.match_claims(sentences, index, context=context)
    return timed(lambda: C.match_claims(sentences, index, context=context), runs)[2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--memory", action="store_true", help="also trace the largest build")
    args = parser.parse_args(argv)
    if not CLEF.is_dir():
        parser.error(f"CLEF data not found at {CLEF}")
    sizes = [int(s) for s in args.sizes.split(",")]
    claims, sources = distinct_claims(max(sizes))
    sentences = article_sentences()
    context = C.ArticleContext(title="Twitter child safety", published="2022-12-15")
    print(f"article: {len(sentences)} sentences, {sum(len(s.split()) for s in sentences)} words; "
          f"{args.runs} runs per figure; load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"claims: {len(claims):,} with distinct texts ({sources}); posting sums: "
          f"{'compiled (pipeline/claims/_postings.c)' if I._postings else 'numpy (not built)'}")
    print(f"{'claims':>8} {'texts':>7} {'build s':>8} {'load s':>7} | match_claims ms/article: "
          f"median  min  cpu | + find_candidates: median  min  cpu | cpu split (ms)")
    results: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory() as cache:
        for size in sizes:
            table = claims[:size]
            t0 = time.perf_counter()
            C.ClaimIndex.cached(table, cache)  # built and stored
            build = time.perf_counter() - t0
            gc.collect()
            t0 = time.perf_counter()
            index = C.ClaimIndex.cached(table, cache)  # what a new process does: load
            load = time.perf_counter() - t0
            C.match_claims(sentences, index, context=context)  # warm the stemmer's cache

            def one(index: C.ClaimIndex = index) -> None:
                C.match_claims(sentences, index, context=context)

            med, low, cpu = timed(one, args.runs)

            def both(index: C.ClaimIndex = index) -> None:
                matches = C.match_claims(sentences, index, context=context)
                C.find_candidates(sentences, matches, index=index)

            med2, low2, cpu2 = timed(both, args.runs)
            print(f"{size:>8,} {index.n_rows:>7,} {build:>8.2f} {load:>7.2f} | "
                  f"{med:>28.2f} {low:>4.2f} {cpu:>4.2f} | {med2:>24.2f} {low2:>4.2f} "
                  f"{cpu2:>4.2f} | {split(index, sentences, max(10, args.runs // 3))} "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
            results.append((size, cpu))
            results_load = load
            if size >= I.PRUNE_MIN_CLAIMS:
                exact_cpu = exact_reference(table, sentences, context, args.runs, cache)
                print(f"{'':>8} exact (unpruned) index, the same table: match_claims cpu "
                      f"{exact_cpu:.2f} ms (pruned: {I.PRUNE_KEEP:,} postings per term kept)",
                      flush=True)
                results.append((-size, exact_cpu))
            del index
            gc.collect()
    if args.memory:
        tracemalloc.start()
        index = C.ClaimIndex.build(claims[: sizes[-1]])
        gc.collect()
        kept, build_peak = tracemalloc.get_traced_memory()
        C.match_claims(sentences, index)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"memory, {sizes[-1]:,} claims: the index keeps {kept / 2**20:.1f} MiB (traced); "
              f"peak traced {build_peak / 2**20:.1f} MiB building, {peak / 2**20:.1f} MiB "
              f"building + matching; peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"target: <= {TARGET_MS} ms per article (median thread CPU) at 10,000 and 100,000 "
          "claims; index load <= 1 s when cached")
    for size, cpu in results:
        name = f"matching-{size // 1000}k" if size > 0 else f"matching-{-size // 1000}k-exact"
        print(f"RESULT {name} ms-per-article {cpu:.2f}")
    print(f"RESULT matching-{sizes[-1] // 1000}k index-load-s {results_load:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
