"""Stance quality and cost of pipeline/stance.py, run by hand.

    .venv/bin/python benchmarks/quality_stance.py [--data ../shared/data/fnc1-stance]

Reports:
- FNC-1 (headline = claim, body = article) on the HOLD-OUT part of the official
  baseline's body-id split (splits/hold_out_ids.txt; the model was trained on the
  training part only by benchmarks/train_stance.py): the official relative score,
  related/unrelated accuracy, 3-way accuracy and confusion matrix among related rows,
  and macro-F1. agree = repeats, disagree = disputes, discuss = discusses; unrelated
  comes from ``pipeline.stance.relatedness`` (the same tree model's unrelated class).
- benchmarks/seed_stance_set.json (sentences of the seed story and labelled variants
  against config/topics/claims.csv): accuracy and per-class accuracy of
  ``classify_stance``, and the linked-false-rate: the share of disputing sentences
  classified ``repeats`` (must be 0).
- Cost: microseconds per (sentence, claim) pair for ``classify_stance`` (median of
  interleaved repeats) and per article for ``article_stance``; the model file size.

Last lines: ``RESULT fnc1-dev relative-score X``, ``RESULT seed-stance accuracy X``,
``RESULT seed-negation linked-false-rate X``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import fnc1  # noqa: E402

from pipeline import stance  # noqa: E402

SEED_SET = REPO / "benchmarks" / "seed_stance_set.json"
CLAIMS_CSV = REPO / "config" / "topics" / "claims.csv"
RELATED_THRESHOLD = stance.RELATED_THRESHOLD  # tuned on the training part's tune split
_TO_FNC = {"repeats": "agree", "disputes": "disagree", "discusses": "discuss"}


def fnc1_predictions(data_dir: Path | str = fnc1.DEFAULT_DIR) -> tuple[list[str], list[str]]:
    """Gold and predicted FNC-1 labels for the hold-out rows, in file order, through the
    production path (``pipeline.stance.assess_article`` on the body's sentences)."""
    rows, bodies = fnc1.load(data_dir)
    _train, hold = fnc1.split_ids(data_dir)
    rows = [r for r in rows if r.body_id in hold]
    if stance._model() is None:
        raise SystemExit("pipeline/stance_model.npz is missing: run benchmarks/train_stance.py")
    pred = []
    for r in rows:
        rel, st = stance.assess_article(fnc1.body_sentences(bodies[r.body_id]), r.headline)
        pred.append("unrelated" if rel < RELATED_THRESHOLD else _TO_FNC[st.label])
    return [r.stance for r in rows], pred


def fnc1_relative_score(data_dir: Path | str = fnc1.DEFAULT_DIR) -> float:
    gold, pred = fnc1_predictions(data_dir)
    return fnc1.score(gold, pred)


def _macro_f1(gold: list[str], pred: list[str], labels: tuple[str, ...]) -> float:
    f1s = []
    for lab in labels:
        tp = sum(g == lab and p == lab for g, p in zip(gold, pred, strict=True))
        fp = sum(g != lab and p == lab for g, p in zip(gold, pred, strict=True))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(f1s) / len(f1s)


def load_claims(path: Path = CLAIMS_CSV) -> dict[str, str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {r["id"]: r["text"] for r in csv.DictReader(fh)}


def seed_items(path: Path = SEED_SET) -> tuple[list[dict], dict[str, str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    claims = {c["id"]: c["text"] for c in data["claims"]}
    return data["items"], claims


def seed_predictions(path: Path = SEED_SET) -> list[tuple[dict, stance.Stance]]:
    items, claims = seed_items(path)
    return [
        (
            it,
            stance.classify_stance(
                it["sentence"],
                claims[it["claim_id"]],
                context=it.get("context"),
                lang=it.get("lang", "en"),
            ),
        )
        for it in items
    ]


def seed_negation_false_rate(path: Path = SEED_SET) -> float:
    """Share of the set's disputing sentences that ``classify_stance`` calls ``repeats``."""
    preds = [(it, s) for it, s in seed_predictions(path) if it["label"] == "disputes"]
    if not preds:
        return 0.0
    return sum(s.label == "repeats" for _, s in preds) / len(preds)


def seed_report(path: Path = SEED_SET) -> float:
    preds = seed_predictions(path)
    by = Counter()
    ok = Counter()
    conf = Counter()
    for it, s in preds:
        by[it["label"]] += 1
        ok[it["label"]] += s.label == it["label"]
        conf[(it["label"], s.label)] += 1
    acc = sum(ok.values()) / len(preds)
    print(f"seed-stance: {len(preds)} items, accuracy {acc:.3f}")
    for lab in stance.LABELS:
        if by[lab]:
            print(
                f"  {lab:10s} n={by[lab]:3d} accuracy {ok[lab] / by[lab]:.3f}   predicted as: "
                + ", ".join(f"{p}={conf[(lab, p)]}" for p in stance.LABELS)
            )
    for it, s in preds:
        if s.label != it["label"]:
            print(
                f"  MISS gold={it['label']} pred={s.label} ({s.confidence}) "
                f"[{it['claim_id']}] {it['sentence'][:110]}"
            )
    return acc


def timing(path: Path = SEED_SET, repeats: int = 7) -> tuple[float, float]:
    items, claims = seed_items(path)
    pairs = [(it["sentence"], claims[it["claim_id"]]) for it in items]
    rows, bodies = fnc1.load()
    _t, hold = fnc1.split_ids()
    arts = [
        (fnc1.body_sentences(bodies[r.body_id]), r.headline)
        for r in [r for r in rows if r.body_id in hold][:200]
    ]
    per_pair, per_art = [], []
    for _ in range(repeats):
        stance._analyse.cache_clear()  # measure cold analysis, as in a crawl
        t0 = time.perf_counter()
        for s, c in pairs:
            stance.classify_stance(s, c)
        per_pair.append((time.perf_counter() - t0) / len(pairs) * 1e6)
        stance._analyse.cache_clear()
        t0 = time.perf_counter()
        for sents, h in arts:
            stance.article_stance(sents, h)
        per_art.append((time.perf_counter() - t0) / len(arts) * 1e3)
    return statistics.median(per_pair), statistics.median(per_art)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(fnc1.DEFAULT_DIR))
    args = ap.parse_args()
    print(f"load: {os.getloadavg()}")
    t0 = time.perf_counter()
    gold, pred = fnc1_predictions(args.data)
    rel = fnc1.score(gold, pred)
    related = [(g, p) for g, p in zip(gold, pred, strict=True) if g != "unrelated"]
    rel_acc = sum(
        (g == "unrelated") == (p == "unrelated") for g, p in zip(gold, pred, strict=True)
    ) / len(gold)
    three = sum(g == p for g, p in related) / len(related)
    print(
        f"FNC-1 hold-out: {len(gold)} rows in {time.perf_counter() - t0:.1f}s; relative score "
        f"{rel:.4f}; related/unrelated accuracy {rel_acc:.4f}; exact label among related "
        f"{three:.4f}; macro-F1 {_macro_f1(gold, pred, fnc1.FNC_LABELS):.4f}"
    )
    print("  confusion (rows gold, cols predicted): " + " ".join(fnc1.FNC_LABELS))
    for g in fnc1.FNC_LABELS:
        print(
            f"  {g:10s} "
            + " ".join(
                f"{sum(1 for a, b in zip(gold, pred, strict=True) if a == g and b == p):6d}"
                for p in fnc1.FNC_LABELS
            )
        )
    acc = seed_report()
    lfr = seed_negation_false_rate()
    us_pair, ms_art = timing()
    size = stance.MODEL_PATH.stat().st_size if stance.MODEL_PATH.exists() else 0
    print(
        f"cost: classify_stance {us_pair:.1f} us/pair (median of 7, cold cache); "
        f"article_stance {ms_art:.2f} ms/article (FNC hold-out bodies); model file {size} bytes"
    )
    print(f"load: {os.getloadavg()}")
    print(f"RESULT fnc1-dev relative-score {rel:.4f}")
    print(f"RESULT seed-stance accuracy {acc:.4f}")
    print(f"RESULT seed-negation linked-false-rate {lfr:.4f}")
    _ = np  # numpy is used through pipeline.stance


if __name__ == "__main__":
    main()
