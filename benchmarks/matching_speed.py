"""Claim matching cost per article against 100, 1,000 and 10,000 claims (run by hand).

    .venv/bin/python benchmarks/matching_speed.py
    .venv/bin/python benchmarks/matching_speed.py --sizes 100,1000,10000,14231 --runs 100

The article: the first 40 sentences of ../shared/seed/musk-twitter-child-safety.txt
(823 words). The claims: the first N CLEF CheckThat! 2022 2A claims (Snopes), each
with its article title as an alias (2N claim texts), as benchmarks/quality_claims.py
indexes them. Per size: index build time, then ``match_claims`` on the article
``--runs`` times with the text-analysis cache cleared before each run (every
article is new), reported as median and minimum wall time and median CPU time of
this thread (less disturbed by other processes on a shared machine), and the same
for ``match_claims`` + ``find_candidates`` (what the pipeline runs per article).
Also the split of one run: sentence analysis, candidate retrieval and scoring.
Memory: what the largest index keeps (traced Python allocations after the build),
the traced peaks of building it and of building + matching, and this process's
peak RSS.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from quality_claims import CLEF, article_sentences, clef_claims, load_clef  # noqa: E402

from pipeline import claims as C  # noqa: E402
from pipeline.claims import scoring as S  # noqa: E402
from pipeline.text import analyse  # noqa: E402

TARGET_MS = 2.0  # issue 8: at most 2 ms per article at 10,000 claims


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
    """Where one ``match_claims`` run goes: analysis, retrieval (+ bound), scoring."""
    floor = C.DEFAULT_SUGGESTED_MIN / 100.0 * 0.999
    parts: dict[str, list[float]] = {"analyse": [], "retrieve+score": []}
    for _ in range(runs):
        analyse.cache_clear()
        t0 = time.thread_time()
        feats = [analyse(s) for s in sentences]
        t1 = time.thread_time()
        S._score_queries(index, feats, 5, S.CANDIDATE_GATE, floor)
        t2 = time.thread_time()
        parts["analyse"].append(t1 - t0)
        parts["retrieve+score"].append(t2 - t1)
    return ", ".join(f"{k} {1000 * statistics.median(v):.2f}" for k, v in parts.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args(argv)
    if not CLEF.is_dir():
        parser.error(f"CLEF data not found at {CLEF}")
    sizes = [int(s) for s in args.sizes.split(",")]
    vclaims = load_clef()[0]
    claims = clef_claims(vclaims)
    sentences = article_sentences()
    print(f"article: {len(sentences)} sentences, {sum(len(s.split()) for s in sentences)} words; "
          f"{args.runs} runs per figure; load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'claims':>8} {'texts':>7} {'build s':>8} | match_claims ms/article: median  min  "
          f"cpu | + find_candidates: median  min  cpu | cpu split (ms)")
    last: C.ClaimIndex | None = None
    for size in sizes:
        t0 = time.perf_counter()
        index = C.ClaimIndex.build(claims[:size])
        build = time.perf_counter() - t0
        C.match_claims(sentences, index)  # warm the stemmer's cache
        def one(index: C.ClaimIndex = index) -> None:
            C.match_claims(sentences, index)

        med, low, cpu = timed(one, args.runs)

        def both(index: C.ClaimIndex = index) -> None:
            matches = C.match_claims(sentences, index)
            C.find_candidates(sentences, matches, index=index)

        med2, low2, cpu2 = timed(both, args.runs)
        print(f"{size:>8,} {len(index.row_features):>7,} {build:>8.2f} | "
              f"{med:>28.2f} {low:>4.2f} {cpu:>4.2f} | {med2:>24.2f} {low2:>4.2f} {cpu2:>4.2f} | "
              f"{split(index, sentences, max(10, args.runs // 3))}", flush=True)
        last = index
    if last is not None:
        del last, index
        gc.collect()
        tracemalloc.start()
        index = C.ClaimIndex.build(claims[: sizes[-1]])
        gc.collect()
        kept, build_peak = tracemalloc.get_traced_memory()
        C.match_claims(sentences, index)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"memory, {sizes[-1]:,} claims: the index keeps {kept / 2**20:.1f} MiB (traced "
              f"Python allocations, with the text caches the build fills); peak traced "
              f"{build_peak / 2**20:.1f} MiB building, {peak / 2**20:.1f} MiB building + "
              f"matching; peak RSS of this process "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"target: <= {TARGET_MS} ms per article at 10,000 claims")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
