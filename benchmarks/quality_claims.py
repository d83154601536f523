"""Claim-matching quality and cost, run by hand.

    .venv/bin/python benchmarks/quality_claims.py            # report
    .venv/bin/python benchmarks/quality_claims.py --tune     # refit weights, thresholds

Reports:
- CLEF CheckThat! 2022 task 2A (English, Snopes): MAP@1, MAP@5, P@1 on train and
  dev with ``rank_claims`` (tweet -> claims; the Snopes title is indexed as an
  alias of each claim), the plain rapidfuzz baseline (token_sort_ratio cdist over
  whole texts) on dev, and ms per query. The test split is never read.
- Cost of ``match_claims`` for a ~40-sentence article against 100 / 1,000 /
  10,000 claims (CLEF claims as the table), index build time and peak memory.
- Precision/recall of the linked and suggested tiers, of conflict detection and
  of new-claim candidates on ``benchmarks/seed_claims_set.json`` (labelled
  sentences about the seed story against config/topics/claims.csv).

``--tune`` refits the logistic weights of ``pipeline.claims`` on CLEF train
(candidates as ``rank_claims`` sees them) and derives the tier thresholds from
the scores of gold and best wrong claims on train, then prints the constants to
paste into ``pipeline/claims/scoring.py`` and the dev figures they give.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from config.models import Claim  # noqa: E402
from pipeline import claims as C  # noqa: E402
from pipeline.claims import scoring as S  # noqa: E402
from pipeline.text import analyse, split_sentences  # noqa: E402

SHARED_DATA = Path(os.environ.get("CLAIMWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
CLEF = SHARED_DATA / "clef2022-checkthat-task2a-en"
CLEF2B = SHARED_DATA / "clef2021-checkthat-task2b-en"
SEED_ARTICLE = SHARED_DATA.parent / "seed" / "musk-twitter-child-safety.txt"
SEED_SET = Path(__file__).with_name("seed_claims_set.json")
CLAIMS_CSV = REPO / "config" / "topics" / "claims.csv"


# --------------------------------------------------------------------------- CLEF data


def load_clef(
    root: Path = CLEF,
) -> tuple[list[dict[str, str]], dict[str, str], dict[str, set[str]], dict[str, set[str]]]:
    """(vclaims, queries, train qrels, dev qrels)."""
    with gzip.open(root / "vclaims.jsonl.gz", "rt", encoding="utf-8") as fh:
        vclaims = [json.loads(line) for line in fh]
    queries: dict[str, str] = {}
    with open(root / "CT2022-Task2A-EN-Train-Dev_Queries.tsv", encoding="utf-8") as fh:
        for line in fh:
            qid, _, text = line.rstrip("\n").partition("\t")
            queries[qid] = text

    def qrels(name: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        with open(root / name, encoding="utf-8") as fh:
            for line in fh:
                qid, _, vid, _ = line.rstrip("\n").split("\t")
                out.setdefault(qid, set()).add(vid)
        return out

    return (
        vclaims,
        queries,
        qrels("CT2022-Task2A-EN-Train_QRELs.tsv"),
        qrels("CT2022-Task2A-EN-Dev_QRELs.tsv"),
    )


def clef_claims(vclaims: Sequence[dict[str, str]]) -> list[Claim]:
    """Snopes claims with their article title as an alias."""
    return [
        Claim(v["vclaim_id"], v["vclaim"], aliases=(v["title"],) if v.get("title") else ())
        for v in vclaims
    ]


def average_precision(ranked: Sequence[str], gold: set[str], k: int) -> float:
    """AP@k as the CheckThat! scorer computes it (divided by the number of gold claims)."""
    hits = 0
    total = 0.0
    for i, cid in enumerate(ranked[:k]):
        if cid in gold:
            hits += 1
            total += hits / (i + 1)
    return total / len(gold) if gold else 0.0


def evaluate(
    rank: Callable[[str], list[str]], queries: dict[str, str], qrels: dict[str, set[str]]
) -> dict[str, float]:
    ap1: list[float] = []
    ap5: list[float] = []
    p1: list[float] = []
    start = time.perf_counter()
    for qid, gold in qrels.items():
        ranked = rank(queries[qid])
        ap1.append(average_precision(ranked, gold, 1))
        ap5.append(average_precision(ranked, gold, 5))
        p1.append(1.0 if ranked[:1] and ranked[0] in gold else 0.0)
    elapsed = time.perf_counter() - start
    return {
        "MAP@1": statistics.fmean(ap1),
        "MAP@5": statistics.fmean(ap5),
        "P@1": statistics.fmean(p1),
        "ms/query": 1000.0 * elapsed / len(qrels),
        "n": float(len(qrels)),
    }


def baseline_rank(vclaims: Sequence[dict[str, str]]) -> Callable[[str], list[str]]:
    from rapidfuzz import fuzz, process, utils

    texts = [v["vclaim"] for v in vclaims]
    ids = [v["vclaim_id"] for v in vclaims]

    def rank(query: str) -> list[str]:
        scores = process.cdist(
            [query],
            texts,
            scorer=fuzz.token_sort_ratio,
            processor=utils.default_process,
            workers=-1,
        )[0]
        top = np.argsort(-scores, kind="stable")[:5]
        return [ids[i] for i in top]

    return rank


# --------------------------------------------------------------------------- tuning


def _fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iters: int = 60
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (numpy only)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    reg = l2 * np.eye(len(w))
    reg[-1, -1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) + reg @ w
        hess = (xb * (p * (1.0 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def _candidate_features(
    index: C.ClaimIndex, text: str, depth: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, features) of one query's candidates, as rank_claims sees them."""
    feats = [analyse(text)]
    masses, q, rows, shared, bm25 = index.lexical(feats)
    q, rows, shared, bm25 = S._top_claims(index, q, rows, shared, bm25, depth)
    return rows, S._feature_matrix(index, feats, masses, q, rows, shared, bm25)


def _tier_threshold(pos: np.ndarray, neg: np.ndarray, precision: float) -> float:
    """Lowest score (0..100) at which matches reach ``precision``."""
    for t in np.arange(0.0, 100.01, 0.5):
        tp = int((pos >= t).sum())
        fp = int((neg >= t).sum())
        if tp and tp / (tp + fp) >= precision:
            return float(t)
    return 100.0


# Tier thresholds: the lowest scores at which matches on CLEF train reach these precisions.
LINKED_PRECISION = 0.9
SUGGESTED_PRECISION = 0.75


def tune(
    index: C.ClaimIndex, queries: dict[str, str], train: dict[str, set[str]], depth: int = 30
) -> None:
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for qid, gold in train.items():
        rows, x = _candidate_features(index, queries[qid], depth)
        xs.append(x)
        ys.append(
            np.array([index.claims[int(index.row_claim[r])].id in gold for r in rows], dtype=float)
        )
    x_all, y_all = np.vstack(xs), np.concatenate(ys)
    weights, bias = _fit_logistic(x_all, y_all)
    S.WEIGHTS = tuple(round(float(w), 3) for w in weights)  # type: ignore[assignment]
    S.BIAS = round(bias, 3)
    print(f"FEATURES = {S.FEATURES}")
    print(f"WEIGHTS = {S.WEIGHTS}")
    print(f"BIAS = {S.BIAS}")
    # thresholds: on the match_claims path (gate + top_k), each train tweet as a
    # one-sentence article; gold claim scores are positives, every other claim
    # that reaches a score is a false match.
    pos: list[float] = []
    neg: list[float] = []
    for qid, gold in train.items():
        matches = C.match_claims([queries[qid]], index, linked_min=101.0, suggested_min=0.0)
        got = {m.claim_id: m.score for m in matches}
        pos.append(max((got.get(g, 0.0) for g in gold), default=0.0))
        neg.extend(score for cid, score in got.items() if cid not in gold)
    pos_a, neg_a = np.array(pos), np.array(neg)
    linked = _tier_threshold(pos_a, neg_a, LINKED_PRECISION)
    suggested = _tier_threshold(pos_a, neg_a, SUGGESTED_PRECISION)
    print(f"DEFAULT_LINKED_MIN = {linked}  # train precision >= {LINKED_PRECISION}")
    print(f"DEFAULT_SUGGESTED_MIN = {suggested}  # train precision >= {SUGGESTED_PRECISION}")
    for name, t in (("linked", linked), ("suggested", suggested)):
        tp = int((pos_a >= t).sum())
        fp = int((neg_a >= t).sum())
        print(
            f"  train {name:9s} >= {t:5.1f}: recall {tp / len(pos_a):.3f} "
            f"precision {tp / max(tp + fp, 1):.3f}"
        )
    C.DEFAULT_LINKED_MIN = linked
    C.DEFAULT_SUGGESTED_MIN = suggested


def tier_report(
    index: C.ClaimIndex, queries: dict[str, str], qrels: dict[str, set[str]], label: str
) -> None:
    """Tier precision/recall with each tweet as a one-sentence article."""
    counts = {"linked": [0, 0], "suggested": [0, 0]}  # [true, false] matches at or above the tier
    for qid, gold in qrels.items():
        for m in C.match_claims(
            [queries[qid]],
            index,
            linked_min=C.DEFAULT_LINKED_MIN,
            suggested_min=C.DEFAULT_SUGGESTED_MIN,
        ):
            ok = m.claim_id in gold
            for tier in ("linked", "suggested"):
                if tier == "suggested" or m.tier == "linked":
                    counts[tier][0 if ok else 1] += 1
    n = len(qrels)
    for tier, (tp, fp) in counts.items():
        print(
            f"  {label} {tier:9s}{'' if tier == 'linked' else '+'}: "
            f"precision {tp / max(tp + fp, 1):.3f} recall {tp / n:.3f} "
            f"({tp} right, {fp} wrong, {n} tweets)"
        )


def small_table_report(
    index: C.ClaimIndex,
    claims: Sequence[Claim],
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    label: str,
    size: int = 20,
    limit: int = 300,
) -> None:
    """Tiers on small topical tables, as a claims table of one story would be.

    For each tweet: a table of its gold claim and the ``size - 1`` claims nearest
    to it (by ``rank_claims`` of the gold text over all claims: hard, same-topic
    neighbours). Reports tier precision/recall, and how often a tweet is matched
    to some claim when its own claim is left out of the table (the usual case
    for an article sentence).
    """
    by_id = {c.id: c for c in claims}
    pos: list[float] = []
    neg: list[float] = []
    absent: list[float] = []
    for qid, gold in sorted(qrels.items())[:limit]:
        g = sorted(gold)[0]
        near = [
            cid
            for cid, _ in C.rank_claims(by_id[g].text, index, k=size + 1, depth=3 * size)
            if cid not in gold
        ][:size]
        table = C.ClaimIndex.build([by_id[g], *(by_id[c] for c in near[: size - 1])])
        got = {
            m.claim_id: m.score
            for m in C.match_claims([queries[qid]], table, linked_min=101.0, suggested_min=0.0)
        }
        pos.append(got.get(g, 0.0))
        neg.extend(s for cid, s in got.items() if cid != g)
        without = C.ClaimIndex.build([by_id[c] for c in near])
        absent.append(
            max(
                (
                    m.score
                    for m in C.match_claims(
                        [queries[qid]], without, linked_min=101.0, suggested_min=0.0
                    )
                ),
                default=0,
            )
        )
    pos_a, neg_a, absent_a = np.array(pos), np.array(neg), np.array(absent)
    for tier, t in (("linked", C.DEFAULT_LINKED_MIN), ("suggested", C.DEFAULT_SUGGESTED_MIN)):
        tp = int((pos_a >= t).sum())
        fp = int((neg_a >= t).sum())
        print(
            f"  {label} {tier:9s}{'' if tier == 'linked' else '+'}: precision "
            f"{tp / max(tp + fp, 1):.3f} recall {tp / len(pos_a):.3f}; own claim left out: "
            f"matched anyway {(absent_a >= t).mean():.3f} ({len(pos_a)} tweets, {size} claims)"
        )


# --------------------------------------------------------------------------- speed


def article_sentences(n: int = 40) -> list[str]:
    sentences = [
        s for s in split_sentences(SEED_ARTICLE.read_text(encoding="utf-8")) if len(s.split()) > 4
    ]
    return sentences[:n]


def speed(vclaims: Sequence[dict[str, str]], sizes: Sequence[int] = (100, 1_000, 10_000)) -> None:
    sentences = article_sentences()
    words = sum(len(s.split()) for s in sentences)
    print(f"article: {len(sentences)} sentences, {words} words (seed article)")
    claims = clef_claims(vclaims)
    for size in sizes:
        table = claims[:size]
        start = time.perf_counter()
        index = C.ClaimIndex.build(table)
        build = time.perf_counter() - start
        C.match_claims(sentences, index)  # warm the stemmer cache
        runs = []
        for _ in range(30):
            analyse.cache_clear()  # every article is new: no memoised sentences
            t0 = time.perf_counter()
            C.match_claims(sentences, index)
            runs.append(time.perf_counter() - t0)
        print(
            f"  {size:>6,} claims ({len(index.row_features):,} texts): build {build:6.2f} s, "
            f"match_claims {1000 * statistics.median(runs):6.2f} ms/article (median of 30; "
            f"min {1000 * min(runs):.2f})"
        )
    tracemalloc.start()
    index = C.ClaimIndex.build(claims[: sizes[-1]])
    C.match_claims(sentences, index)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  peak traced memory building + matching {sizes[-1]:,} claims: {peak / 2**20:.1f} MiB")


# --------------------------------------------------------------------------- seed set


def seed_claims(data: dict[str, Any]) -> tuple[list[Claim], str]:
    sentences: list[dict[str, Any]] = data["sentences"]
    labelled = {s["claim"] for s in sentences if s["claim"]}
    if CLAIMS_CSV.is_file():
        try:
            from config.loader import load_claims

            live = list(load_claims(CLAIMS_CSV))
        except Exception:  # noqa: BLE001 - a half-written table: fall back to the snapshot
            live = []
            with open(CLAIMS_CSV, encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    aliases = tuple(a for a in (row.get("aliases") or "").split("|") if a.strip())
                    live.append(Claim(row["id"], row["text"], aliases=aliases))
        if labelled <= {c.id for c in live}:
            return live, str(CLAIMS_CSV.relative_to(REPO))
    snapshot = [
        Claim(c["id"], c["text"], aliases=tuple(c.get("aliases", ()))) for c in data["claims"]
    ]
    return snapshot, f"{SEED_SET.name} (snapshot)"


def _pr(tp: int, fp: int, fn: int) -> str:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return f"precision {p:.3f} recall {r:.3f} (tp {tp}, fp {fp}, fn {fn})"


def seed_report(verbose: bool = False) -> None:
    data = json.loads(SEED_SET.read_text(encoding="utf-8"))
    claims, where = seed_claims(data)
    index = C.ClaimIndex.build(claims)
    items = data["sentences"]
    print(
        f"seed set: {len(items)} sentences, "
        f"{sum(1 for s in items if s['claim'])} about a known claim, "
        f"{sum(s['conflict'] for s in items)} conflicting; {len(claims)} claims from {where}"
    )
    sentences = [s["text"] for s in items]
    # every sentence on its own (best claim per sentence), so each label is scored
    best: list[C.ClaimMatch | None] = []
    for sentence in sentences:
        matches = C.match_claims([sentence], index)
        best.append(matches[0] if matches else None)
    stats = {t: [0, 0, 0] for t in ("linked", "suggested", "conflict")}
    by_kind: dict[str, list[int]] = {}
    for item, m in zip(items, best, strict=True):
        label = item["claim"]
        for tier in ("linked", "suggested"):
            hit = m is not None and (tier == "suggested" or m.tier == "linked")
            if hit and m is not None and m.claim_id == label:
                stats[tier][0] += 1
            else:
                if hit:
                    stats[tier][1] += 1
                if label:
                    stats[tier][2] += 1
        predicted_conflict = m is not None and m.conflict and m.claim_id == label
        wrong_conflict = m is not None and m.conflict and not predicted_conflict
        if item["conflict"]:
            stats["conflict"][0 if predicted_conflict else 2] += 1
            if wrong_conflict:
                stats["conflict"][1] += 1
        elif m is not None and m.conflict:
            stats["conflict"][1] += 1
        kind = by_kind.setdefault(item["kind"], [0, 0])
        kind[1] += 1
        ok = (m is None) if label is None else (m is not None and m.claim_id == label)
        if item.get("expect") == "linked" and label is not None:
            ok = ok and m is not None and m.tier == "linked"
        kind[0] += ok
        if verbose or not ok:
            shown = (
                "-"
                if m is None
                else f"{m.claim_id} {m.tier} {m.score:.1f}{' CONFLICT' if m.conflict else ''}"
            )
            print(
                f"    {'ok ' if ok else 'XX '}[{item['kind']}] want {label or '-'}"
                f"{'/' + item.get('expect', '') if label else ''}: "
                f"got {shown} | {item['text'][:90]}"
            )
    for tier in ("linked", "suggested"):
        print(f"  {tier:9s}{' ' if tier == 'linked' else '+'}: {_pr(*stats[tier])}")
    print(f"  conflict  : {_pr(*stats['conflict'])}")
    print("  as expected by kind: " + ", ".join(f"{k} {a}/{b}" for k, (a, b) in by_kind.items()))
    # the whole set as one article: match_claims keeps the best sentence per claim
    article = C.match_claims(sentences, index)
    right = sum(1 for m in article if items[m.sentence_index]["claim"] == m.claim_id)
    print(
        f"  as one article: {len(article)} claims matched, "
        f"{right} through a sentence labelled with that claim"
    )
    # candidates: sentences labelled with no claim but a checkable one
    cands = {c.sentence_index for c in C.find_candidates(sentences, article, index=index)}
    tp = fp = fn = 0
    for i, item in enumerate(items):
        if item["claim"] is not None or "candidate" not in item:
            continue
        want, got = bool(item["candidate"]), i in cands
        tp += want and got
        fp += got and not want
        fn += want and not got
    print(f"  new-claim candidates among unlabelled sentences: {_pr(tp, fp, fn)}")


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--tune", action="store_true", help="refit weights and thresholds on CLEF train"
    )
    parser.add_argument("--verbose", action="store_true", help="print every seed sentence")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    if CLEF.is_dir():
        vclaims, queries, train, dev = load_clef()
        t0 = time.perf_counter()
        index = C.ClaimIndex.build(clef_claims(vclaims))
        print(
            f"CLEF 2022 2A: {len(index):,} claims (+ titles as aliases) "
            f"indexed in {time.perf_counter() - t0:.2f} s; "
            f"{len(train)} train / {len(dev)} dev queries"
        )
        if args.tune:
            tune(index, queries, train)

        def rank(text: str) -> list[str]:
            return [cid for cid, _ in C.rank_claims(text, index, k=5)]

        for name, qrels in (("train", train), ("dev", dev)):
            r = evaluate(rank, queries, qrels)
            print(
                f"  {name:5s} MAP@1 {r['MAP@1']:.4f}  MAP@5 {r['MAP@5']:.4f}  P@1 {r['P@1']:.4f}  "
                f"({r['ms/query']:.2f} ms/query)"
            )
        r = evaluate(baseline_rank(vclaims), queries, dev)
        print(
            f"  dev   baseline token_sort_ratio cdist: "
            f"MAP@1 {r['MAP@1']:.4f}  MAP@5 {r['MAP@5']:.4f}  "
            f"P@1 {r['P@1']:.4f}  ({r['ms/query']:.2f} ms/query)"
        )
        print(
            f"  tiers (linked >= {C.DEFAULT_LINKED_MIN}, suggested >= {C.DEFAULT_SUGGESTED_MIN}), "
            "each tweet as a one-sentence article:"
        )
        tier_report(index, queries, train, "train")
        tier_report(index, queries, dev, "dev  ")
        print("  tiers on small topical tables (a tweet's claim + its 19 nearest claims):")
        claims = clef_claims(vclaims)
        small_table_report(index, claims, queries, train, "train")
        small_table_report(index, claims, queries, dev, "dev  ")
        if not args.skip_speed:
            speed(vclaims)
    else:
        print(f"CLEF data not found at {CLEF}: skipping MAP and speed")
    seed_report(verbose=args.verbose)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB; total {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
