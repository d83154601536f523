"""Claim-matching quality, claimwatch and the BM25 reference side by side, run by hand.

    .venv/bin/python benchmarks/quality_claims.py            # report (~45 s at load 4)
    .venv/bin/python benchmarks/quality_claims.py --tune     # refit re-ranker and tiers (~5 min)
    .venv/bin/python benchmarks/quality_claims.py --cv       # 5-fold CV of that recipe, train only
    .venv/bin/python benchmarks/quality_claims.py --check    # is rerank.json what --tune writes?
    .venv/bin/python benchmarks/quality_claims.py --speed    # also time match_claims

Needs the ``bench`` extra (bm25s, PyStemmer; lightgbm for ``--tune``) and ../shared/data
(or ``$CLAIMWATCH_SHARED_DATA``). Reports, each on dev with the train split used for fitting:
- CLEF CheckThat! 2022 2A (tweets -> Snopes claims, title as alias): MAP@1/@5, P@1 of
  ``rank_claims`` with the tweet's author and date as context, and of BM25 (bm25s over
  claim text + title, English stop words, Snowball stemmer) in the same run.
- CLEF 2021 2B (debate sentences -> PolitiFact claims): the same, with the transcript as
  context (two lines either side, the speaker, the debate date).
- Dense one-story tables (``dense_scores``): tier precision/recall on tables of a tweet's
  claim and its 19 BM25-nearest claims, and how often a tweet is linked anyway when its
  own claim is left out.
- CLEF 2A dev at 100,000 claims (the 2A and 2B tables padded with the matching-speed
  benchmark's real distractors): MAP@5 of the exact index and of the pruned one
  production builds for a table that large (``--no-scale`` skips it; ``--prune-sweep``
  reports 2A and 2B train per kept postings per term, to choose PRUNE_KEEP).
- The seed-topic set (benchmarks/seed_claims_set.json), FNC-1 through pipeline.stance's
  own benchmark, and the seed negation set (benchmarks/seed_stance_set.json) through
  ``match_claims``: no disputing sentence may be a ``repeats`` link.
The last lines are ``RESULT <set> <metric> <value>``. ``--tune`` fits the re-ranker
(pipeline/claims/rerank.json) on 2A and 2B train candidate pairs and dense 2A train tables,
and chooses the tier thresholds on the 5-fold cross-validated dense train tables (written
into rerank.json, printed to paste into pipeline/claims/scoring.py); the same rows give
the same forest in any process (LightGBM deterministic and column-wise on one thread with
a fixed seed, the queries in sorted order, every feature summed order-independently), so
the committed rerank.json is exactly what ``--tune`` writes (``--check`` says so). ``--cv``
fits that recipe on 4/5 of the train splits and scores the other fifth (2A by tweet with
its dense tables, 2B by debate), five times: figures for choosing between recipes that
never touch dev.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from claims_data import (  # noqa: E402  (the data both claim benchmarks read)
    CLEF,
    CLEF2B,
    SHARED_DATA,
    article_sentences,
    distinct_claims,
    load_clef,
    load_clef2b,
)

from config.models import Claim  # noqa: E402
from pipeline import claims as C  # noqa: E402
from pipeline.claims import index as I  # noqa: E402
from pipeline.claims import rerank as R  # noqa: E402
from pipeline.claims import scoring as S  # noqa: E402
from pipeline.claims.context import SentenceContext, parse_date  # noqa: E402
from pipeline.text import analyse  # noqa: E402

SEED_SET = Path(__file__).with_name("seed_claims_set.json")
CLAIMS_CSV = REPO / "config" / "topics" / "claims.csv"


# --------------------------------------------------------------------------- CLEF data


def clef_claims(vclaims: Sequence[dict[str, str]]) -> list[Claim]:
    """Snopes claims with their article title as an alias, first reported on its date."""
    return [
        Claim(v["vclaim_id"], v["vclaim"], aliases=(v["title"],) if v.get("title") else (),
              first_reported=v.get("date") or None)
        for v in vclaims
    ]


# a tweet as CLEF gives it ends with its signature: "— Name (@handle) Month D, YYYY"
_SIGNATURE = re.compile(r"[\u2014-]{1,2}\s*([^()\u2014]{1,60}?)\s*\(@\w+\)\s*"
                        r"([A-Z][a-z]+ \d{1,2}, \d{4})\W*$")


def tweet_context(text: str) -> SentenceContext:
    """A tweet's context: its author (as speaker) and date, from its signature."""
    m = _SIGNATURE.search(text.strip())
    if not m:
        return SentenceContext(window=text, speaker=None, day=None)
    return SentenceContext(window=text, speaker=m.group(1).strip(), day=parse_date(m.group(2)))


def clef2b_claims(vclaims: Sequence[dict[str, str]]) -> list[Claim]:
    """PolitiFact claims: title as an alias, the speaker as source, the date stated."""
    return [
        Claim(v["vclaim_id"], v["vclaim"], aliases=(v["title"],) if v.get("title") else (),
              source=v.get("speaker") or None, first_reported=v.get("date") or None)
        for v in vclaims
    ]


def bm25_rank(claims: Sequence[Claim], k: int = 5) -> Callable[[str], list[str]]:
    """The reference: bm25s over claim text + title, English stopwords, Snowball stemmer."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    corpus = [" ".join(c.texts) for c in claims]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    ids = [c.id for c in claims]

    def rank(query: str) -> list[str]:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.vocab:
            return []
        docs, _ = retriever.retrieve(tokens, k=k, show_progress=False)
        return [ids[int(i)] for i in docs[0]]

    return rank


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


def rerank_rows(
    index: C.ClaimIndex,
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    contexts: Callable[[str], SentenceContext | None],
    depth: int = 30,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, query number in sorted ``qrels``) of every candidate pair, as
    rank_claims sees them."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    gs: list[np.ndarray] = []
    for n, (qid, gold) in enumerate(sorted(qrels.items())):
        kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        S._score_queries(index, [analyse(queries[qid])], depth, None, 0.0,
                         [contexts(qid)], keep_features=kept)
        _, rows, x = kept[0] if kept else (None, np.zeros(0, dtype=np.int64),
                                          np.zeros((0, len(R.FEATURES))))
        xs.append(x)
        ys.append(np.array([index.claims[int(index.row_claim[r])].id in gold for r in rows],
                           dtype=float))
        gs.append(np.full(len(rows), n))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(gs)


def dense_pairs(
    neighbours: Callable[[str], list[str]],
    claims: Sequence[Claim],
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    size: int = 20,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, query number in sorted ``qrels``) of the re-ranker rows of the
    dense one-story tables (see :func:`dense_scores`), with and without each tweet's own
    claim, as ``match_claims`` sees them."""
    by_id = {c.id: c for c in claims}
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    gs: list[np.ndarray] = []
    for n, (qid, gold) in enumerate(sorted(qrels.items())):
        g = sorted(gold)[0]
        near = [cid for cid in neighbours(by_id[g].text) if cid not in gold][:size]
        contexts = [tweet_context(queries[qid])]
        for table_claims in ([by_id[g], *(by_id[c] for c in near[: size - 1])],
                             [by_id[c] for c in near]):
            table = C.ClaimIndex.build(table_claims)
            kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
            S._score_queries(table, [analyse(queries[qid])], 5, S.CANDIDATE_GATE, 0.0,
                             contexts, keep_features=kept)
            if kept:
                _, rows, x = kept[0]
                xs.append(x)
                ys.append(np.array([table.claims[int(table.row_claim[r])].id in gold
                                    for r in rows], dtype=float))
                gs.append(np.full(len(rows), n))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(gs)


def _forest_json(booster: Any) -> list[dict[str, list[float]]]:
    """LightGBM's trees as the flat node arrays :class:`pipeline.claims.rerank.Forest` reads."""
    trees = []
    for info in booster.dump_model()["tree_info"]:
        t: dict[str, list[Any]] = {"feature": [], "threshold": [], "left": [], "right": [],
                                   "leaf_value": []}

        def walk(node: dict[str, Any], t: dict[str, list[Any]] = t) -> int:
            if "leaf_value" in node and "split_feature" not in node:
                t["leaf_value"].append(round(float(node["leaf_value"]), 6))
                return -len(t["leaf_value"])  # -1 - leaf number
            i = len(t["feature"])
            for key in ("feature", "threshold", "left", "right"):
                t[key].append(0)
            t["feature"][i] = int(node["split_feature"])
            t["threshold"][i] = float(node["threshold"])
            t["left"][i] = walk(node["left_child"])
            t["right"][i] = walk(node["right_child"])
            return i

        walk(info["tree_structure"])
        trees.append(t)
    return trees


# LightGBM on one thread, deterministic, with a fixed seed and a fixed histogram layout
# (force_col_wise: otherwise LightGBM picks col- or row-wise by timing both, and its
# documentation asks for one of them with ``deterministic``): the same rows give the
# same trees
LGBM_PARAMS: dict[str, Any] = {
    "objective": "binary", "num_leaves": 7, "learning_rate": 0.05, "min_data_in_leaf": 40,
    "bagging_fraction": 0.8, "bagging_freq": 1, "seed": 7, "deterministic": True,
    "force_col_wise": True, "num_threads": 1, "verbose": -1}
ROUNDS = 400


def fit_forest(x: np.ndarray, y: np.ndarray, columns: Sequence[int] | None = None,
               weight: np.ndarray | None = None) -> tuple[R.Forest, Any]:
    """The re-ranker (LightGBM) fitted on feature rows ``x`` with labels ``y``.

    ``columns``: fit on these columns of ``x`` only (the trees still index ``x``'s).
    """
    import lightgbm

    cols = list(range(x.shape[1])) if columns is None else list(columns)
    booster = lightgbm.train(LGBM_PARAMS, lightgbm.Dataset(
        x[:, cols], y, weight=weight, feature_name=[R.FEATURES[c] for c in cols]),
        num_boost_round=ROUNDS)
    trees = _forest_json(booster)
    for t in trees:
        t["feature"] = [cols[f] for f in t["feature"]]
    forest = R.Forest(trees, 0.0)
    check = booster.predict(x[:2000, cols], raw_score=True)
    assert np.allclose(forest.raw(x[:2000]), check, atol=1e-4), "forest export differs"
    return forest, booster


def cross_validate(
    sets: tuple[tuple[C.ClaimIndex, dict[str, str], dict[str, set[str]],
                      Callable[[str], SentenceContext], Callable[[str], str]], ...],
    rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    dense: tuple[np.ndarray, np.ndarray, np.ndarray],
    neighbours: Callable[[str], list[str]],
    claims: Sequence[Claim],
    columns: Sequence[int] | None = None,
    folds: int = 5,
    dense_weight: float = 1.0,
) -> dict[str, Any]:
    """Cross-validated figures on the train splits only (no dev): ``folds`` forests, each
    fitted on the rows of the other folds, each scoring its own fold's queries.

    ``sets``: 2A and 2B train as (index, queries, qrels, context, group of a query id):
    a 2A tweet is its own group (its dense tables go with it), a 2B line's group is its
    debate. ``rows``: their re-ranker rows (features, labels, query number in ``qrels``);
    ``dense``: the dense tables' rows of 2A train (query number in sorted 2A qrels).
    Returns the MAP@5 of each set and the dense tables' scores (as :func:`dense_scores`),
    every query scored by the forest that did not see it.
    """
    # each query's fold: its group's place among the set's sorted groups, mod folds
    fold_of: list[dict[str, int]] = []
    for _, _, qrels, _, group in sets:
        groups = sorted({group(q) for q in qrels})
        place = {g: i % folds for i, g in enumerate(groups)}
        fold_of.append({q: place[group(q)] for q in qrels})
    # each query's fold by its number: rerank_rows and dense_pairs number a set's queries
    # in sorted order (the qrels' own order gave most 2A rows another query's fold)
    query_fold = [np.array([fold_of[i][q] for q in sorted(s[2])]) for i, s in enumerate(sets)]
    row_fold = [query_fold[i][r[2]] for i, r in enumerate(rows)]
    dense_fold = query_fold[0][dense[2]]
    ap: list[list[float]] = [[] for _ in sets]
    pos: list[np.ndarray] = []
    neg: list[np.ndarray] = []
    absent: list[np.ndarray] = []
    saved = R._OVERRIDE
    try:
        for k in range(folds):
            x = np.vstack([*(r[0][f != k] for r, f in zip(rows, row_fold, strict=True)),
                           dense[0][dense_fold != k]])
            y = np.concatenate([*(r[1][f != k] for r, f in zip(rows, row_fold, strict=True)),
                                dense[1][dense_fold != k]])
            w = np.concatenate([*(np.ones(int((f != k).sum())) for f in row_fold),
                                np.full(int((dense_fold != k).sum()), dense_weight)])
            forest, _ = fit_forest(x, y, columns, w if dense_weight != 1.0 else None)
            R.set_model(forest)
            for i, (index, queries, qrels, ctx, _) in enumerate(sets):
                held = {q: g for q, g in qrels.items() if fold_of[i][q] == k}
                r = evaluate(_clef_rank(index, queries, ctx), queries, held)
                ap[i].extend([r["MAP@5"]] * len(held))
            held = {q: g for q, g in sets[0][2].items() if fold_of[0][q] == k}
            p, n, a = dense_scores(neighbours, claims, sets[0][1], held, limit=None)
            pos.append(p)
            neg.append(n)
            absent.append(a)
    finally:
        R.set_model(saved)
    return {"map5": [statistics.fmean(a) for a in ap],
            "dense": (np.concatenate(pos), np.concatenate(neg), np.concatenate(absent))}


def at_recall(scores: tuple[np.ndarray, np.ndarray, np.ndarray],
              recall: float) -> dict[str, float]:
    """The dense figures at the highest threshold (0.5 steps) whose recall reaches ``recall``."""
    for t in np.arange(100.0, -0.01, -0.5):
        f = dense_figures(scores, float(t))
        if f["recall"] >= recall:
            return {**f, "t": float(t)}
    return {**dense_figures(scores, 0.0), "t": 0.0}


def cv_report(label: str, cv: dict[str, Any]) -> tuple[float, float]:
    """Print the cross-validated figures; return the tiers tuned on them."""
    linked, suggested = tune_tiers(cv["dense"])
    f = dense_figures(cv["dense"], linked)
    fixed = "; ".join(
        f"recall {r:.2f} (>= {g['t']}): absent {g['absent']:.3f} precision {g['precision']:.3f}"
        for r in (0.60, 0.66, 0.70) for g in [at_recall(cv["dense"], r)])
    print(f"  CV {label}: 2A train MAP@5 {cv['map5'][0]:.4f}, 2B train MAP@5 {cv['map5'][1]:.4f}; "
          f"dense tiers {linked} / {suggested}: linked precision {f['precision']:.4f} recall "
          f"{f['recall']:.4f} absent {f['absent']:.4f}; {fixed}")
    return linked, suggested


def tune_rerank(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Fit the re-ranker (LightGBM) on the train candidate pairs; use it in this process.

    Returns the model file's content (:func:`model_json` writes it, with its tiers).
    """
    import lightgbm

    forest, booster = fit_forest(x, y)
    params = LGBM_PARAMS
    R.set_model(forest)
    model = {
        "features": list(R.FEATURES),
        "fitted_on": "CLEF CheckThat! 2022 2A train + 2021 2B train candidate pairs and dense "
                     "tables from 2A train (benchmarks/quality_claims.py --tune, LightGBM "
                     f"{lightgbm.__version__}, {params}, {ROUNDS} rounds); tiers from the "
                     "5-fold cross-validated dense train tables",
        "bias": 0.0,
        "trees": forest.trees,
    }
    gain = booster.feature_importance("gain")
    print(f"  re-ranker: {ROUNDS} trees of {params['num_leaves']} leaves; gain share " + ", ".join(
        f"{f} {g / gain.sum():.2f}" for f, g in zip(R.FEATURES, gain, strict=True))
          + f" ({len(y):,} pairs, {int(y.sum())} positive)")
    return model


def model_json(model: dict[str, Any], tiers: tuple[float, float]) -> str:
    """The text of rerank.json: the forest and the tier thresholds chosen for it."""
    return json.dumps({**model, "tiers": {"linked": tiers[0], "suggested": tiers[1]}},
                      separators=(",", ":")) + "\n"


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


def dense_scores(
    neighbours: Callable[[str], list[str]],
    claims: Sequence[Claim],
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    size: int = 20,
    limit: int | None = 300,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores on dense one-story tables, as a topic's claims table would be.

    For each tweet: a table of its gold claim and the ``size - 1`` claims nearest
    to it (``neighbours`` of the gold text: BM25 over all claims, so the tables do
    not depend on the model measured; hard, same-topic neighbours). Returns the
    gold claim's scores, every other claim's scores
    (what ``match_claims`` reports for the tweet as a one-sentence article, after
    its one-claim-per-idea rule), and the best score when the gold claim is left
    out of the table (the usual case for an article sentence).
    """
    by_id = {c.id: c for c in claims}
    pos: list[float] = []
    neg: list[float] = []
    absent: list[float] = []
    for qid, gold in sorted(qrels.items())[:limit]:
        g = sorted(gold)[0]
        near = [cid for cid in neighbours(by_id[g].text) if cid not in gold][:size]
        tweet = tweet_context(queries[qid])
        context = C.ArticleContext(published=dt.date.fromordinal(tweet.day) if tweet.day else None,
                                   speakers=[tweet.speaker])
        table = C.ClaimIndex.build([by_id[g], *(by_id[c] for c in near[: size - 1])])
        got = {
            m.claim_id: m.score
            for m in C.match_claims([queries[qid]], table, linked_min=101.0, suggested_min=0.0,
                                    context=context)
        }
        pos.append(got.get(g, 0.0))
        neg.extend(s for cid, s in got.items() if cid != g)
        without = C.ClaimIndex.build([by_id[c] for c in near])
        absent.append(max((m.score for m in C.match_claims(
            [queries[qid]], without, linked_min=101.0, suggested_min=0.0, context=context)),
            default=0))
    return np.array(pos), np.array(neg), np.array(absent)


def dense_figures(scores: tuple[np.ndarray, np.ndarray, np.ndarray], t: float) -> dict[str, float]:
    pos, neg, absent = scores
    tp = int((pos >= t).sum())
    fp = int((neg >= t).sum())
    return {"precision": tp / max(tp + fp, 1), "recall": tp / max(len(pos), 1),
            "absent": float((absent >= t).mean()) if len(absent) else 0.0,
            "tp": tp, "fp": fp, "n": len(pos)}


def tune_tiers(scores: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[float, float]:
    """Tier thresholds from dense train tables: linked at the lowest score (0.5 steps,
    going down from 100) before train precision falls under 0.98; suggested at the
    lowest before it falls under 0.90."""
    found = {0.98: 100.0, 0.9: 100.0}
    for target in found:
        for t in np.arange(100.0, 0.0, -0.5):
            f = dense_figures(scores, float(t))
            if f["tp"] + f["fp"] == 0:
                continue
            if f["precision"] < target:
                break
            found[target] = float(t)
    return found[0.98], min(found[0.9], found[0.98])


def dense_report(label: str, scores: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, float]:
    out = {}
    for tier, t in (("linked", C.DEFAULT_LINKED_MIN), ("suggested", C.DEFAULT_SUGGESTED_MIN)):
        f = dense_figures(scores, t)
        out[tier] = f
        print(
            f"  {label} {tier:9s}{'' if tier == 'linked' else '+'} (>= {t}): precision "
            f"{f['precision']:.3f} recall {f['recall']:.3f} ({f['tp']} right, {f['fp']} wrong); "
            f"own claim left out: matched anyway {f['absent']:.3f} ({f['n']} tweets, 20 claims)"
        )
    return out["linked"]


# --------------------------------------------------------------------------- speed


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


def _clef_rank(
    index: C.ClaimIndex, queries: dict[str, str], contexts: Callable[[str], SentenceContext]
) -> Callable[[str], list[str]]:
    by_text = {text: qid for qid, text in queries.items()}

    def rank(text: str) -> list[str]:
        return [cid for cid, _ in C.rank_claims(text, index, k=5, context=contexts(by_text[text]))]

    return rank


def padded_table(claims: Sequence[Claim], n: int, queries: Iterable[str]) -> list[Claim]:
    """``claims`` padded to ``n`` with distinct real distractor claims.

    The distractors are the matching-speed benchmark's table (2A and 2B claims,
    2A subtitles, debate transcript lines, MSRP sentences) minus any claim whose
    id or lowercased text is already in ``claims`` or is one of ``queries`` (2B's
    queries are transcript lines: a query would find itself).
    """
    out = list(claims)
    ids = {c.id for c in out}
    seen = {" ".join(c.text.lower().split()) for c in out}
    seen.update(" ".join(q.lower().split()) for q in queries)
    for c in distinct_claims(n + 20_000)[0]:  # some are left out below
        if len(out) >= n:
            break
        key = " ".join(c.text.lower().split())
        if c.id not in ids and key not in seen:
            ids.add(c.id)
            seen.add(key)
            out.append(c)
    return out


def scale_report(
    claims: Sequence[Claim],
    sets: Sequence[tuple[str, dict[str, str], dict[str, set[str]],
                         Callable[[str], SentenceContext]]],
    keeps: Sequence[int | None],
    exclude: Iterable[str],
    n: int = 100_000,
) -> dict[tuple[str, int | None], float]:
    """MAP@5 of each query set against ``claims`` padded to ``n``, per pruning ``keep``.

    ``exclude``: texts no distractor may have (every 2A and 2B query).

    One unpruned index is built (pruning switched off for the build), and each
    ``keep`` is applied to it (:meth:`ClaimIndex.with_pruning`, what
    :meth:`ClaimIndex.build` does for a table this large); None is exact.
    """
    table = padded_table(claims, n, exclude)
    saved = I.PRUNE_MIN_CLAIMS
    I.PRUNE_MIN_CLAIMS = len(table) + 1
    try:
        t0 = time.perf_counter()
        full = C.ClaimIndex.build(table)
    finally:
        I.PRUNE_MIN_CLAIMS = saved
    print(f"{len(table):,} claims (gold tables + distractors) indexed in "
          f"{time.perf_counter() - t0:.1f} s; production prunes from "
          f"{I.PRUNE_MIN_CLAIMS:,} claims to {I.PRUNE_KEEP:,} postings per term")
    out: dict[tuple[str, int | None], float] = {}
    for keep in keeps:
        index = full.with_pruning(keep)
        for name, queries, qrels, ctx in sets:
            r = evaluate(_clef_rank(index, queries, ctx), queries, qrels)
            _print_eval(f"{name} keep {keep or 'all'}", r)
            out[(name, keep)] = r["MAP@5"]
    return out


def _print_eval(label: str, r: dict[str, float]) -> None:
    print(f"  {label:28s} MAP@1 {r['MAP@1']:.4f}  MAP@5 {r['MAP@5']:.4f}  P@1 {r['P@1']:.4f}  "
          f"({r['ms/query']:.2f} ms/query)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tune", action="store_true",
                        help="refit the re-ranker and the tier thresholds on the train splits")
    parser.add_argument("--check", action="store_true",
                        help="refit as --tune does and exit 1 unless pipeline/claims/rerank.json "
                             "is exactly what it writes (nothing written; ~5 min)")
    parser.add_argument("--cv", action="store_true",
                        help="only 5-fold cross-validated figures of the re-ranker recipe on "
                             "the train splits (2A by tweet, 2B by debate; no dev figure)")
    parser.add_argument("--tune-lexical", action="store_true",
                        help="refit the first-stage (lexical) weights on CLEF 2A train")
    parser.add_argument("--verbose", action="store_true", help="print every seed sentence")
    parser.add_argument("--speed", action="store_true", help="also time match_claims")
    parser.add_argument("--prune-sweep", metavar="N,N,...",
                        help="only the pruning sweep: 2A and 2B train MAP@5 at 100,000 claims "
                             "per kept postings per term (0: exact)")
    parser.add_argument("--no-scale", action="store_true",
                        help="skip the 100,000-claim check (2A dev, pruned vs exact; ~2 min)")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    results: list[tuple[str, str, float | str]] = []
    if CLEF.is_dir() and CLEF2B.is_dir():
        vclaims, queries, train, dev = load_clef()
        claims = clef_claims(vclaims)
        t0 = time.perf_counter()
        index = C.ClaimIndex.build(claims)
        print(
            f"CLEF 2022 2A: {len(index):,} claims (+ titles as aliases) "
            f"indexed in {time.perf_counter() - t0:.2f} s; "
            f"{len(train)} train / {len(dev)} dev queries"
        )
        v2b, q2b, train2b, dev2b, ctx2b = load_clef2b()
        claims2b = clef2b_claims(v2b)
        t0 = time.perf_counter()
        index2b = C.ClaimIndex.build(claims2b)
        print(f"CLEF 2021 2B: {len(index2b):,} claims indexed in {time.perf_counter() - t0:.2f} s; "
              f"{len(train2b)} train / {len(dev2b)} dev queries")

        def ctx2a(qid: str) -> SentenceContext:
            return tweet_context(queries[qid])

        if args.prune_sweep:
            keeps = [int(k) or None for k in args.prune_sweep.split(",")]
            scale_report(claims + clef2b_claims(v2b),
                         [("2A train", queries, train, ctx2a),
                          ("2B train", q2b, train2b, lambda q: ctx2b[q])], keeps,
                         [*queries.values(), *q2b.values()])
            return 0
        if args.tune_lexical:
            tune(index, queries, train)
        if args.tune or args.cv or args.check:
            # the training rows do not depend on the model (no floor is applied while
            # collecting them): a constant one stands in, so the committed model (maybe
            # fitted on other features) plays no part
            R.set_model(R.Forest([{"feature": [], "threshold": [], "left": [], "right": [],
                                   "leaf_value": [0.0]}], 0.0))
            parts = [rerank_rows(index, queries, train, ctx2a, depth=60),
                     rerank_rows(index2b, q2b, train2b, lambda q: ctx2b[q], depth=60)]
            near = bm25_rank(claims, k=21)
            dense = dense_pairs(near, claims, queries, train)
            sets = ((index, queries, train, ctx2a, str),
                    (index2b, q2b, train2b, lambda q: ctx2b[q], lambda q: q.rpartition("_")[0]))
            # train splits only: no dev figure is computed. The tiers come from the
            # cross-validated scores (each tweet scored by a forest that did not see it):
            # a forest's scores on its own training rows are optimistic, and tiers chosen
            # on them link too much (in-sample 26.5 against 77.5 cross-validated, once)
            linked, suggested = cv_report(
                "the recipe", cross_validate(sets, parts, dense, near, claims))
            if args.cv:
                print(f"total {time.perf_counter() - t_start:.1f} s")
                return 0
            text = model_json(tune_rerank(np.vstack([parts[0][0], parts[1][0], dense[0]]),
                                          np.concatenate([parts[0][1], parts[1][1], dense[1]])),
                              (linked, suggested))
            if args.check:
                same = R.MODEL_FILE.read_text(encoding="utf-8") == text
                print(f"{R.MODEL_FILE.name} {'is' if same else 'is NOT'} what --tune writes "
                      f"({time.perf_counter() - t_start:.1f} s)")
                return 0 if same else 1
            R.MODEL_FILE.write_text(text, encoding="utf-8")
            C.DEFAULT_LINKED_MIN, C.DEFAULT_SUGGESTED_MIN = linked, suggested
            print(f"  DEFAULT_LINKED_MIN = {linked}  DEFAULT_SUGGESTED_MIN = {suggested}"
                  "  (cross-validated dense train tables; written to rerank.json's tiers, "
                  "paste into pipeline/claims/scoring.py)")
        print("CLEF 2022 2A (tweet -> Snopes claim), claimwatch with the tweet's author and date:")
        for name, qrels in (("train", train), ("dev", dev)):
            r = evaluate(_clef_rank(index, queries, ctx2a), queries, qrels)
            _print_eval(f"{name} claimwatch", r)
        results.append(("clef2a-dev", "map@5", r["MAP@5"]))
        r = evaluate(bm25_rank(claims), queries, dev)
        _print_eval("dev   bm25 (bm25s)", r)
        results.append(("clef2a-dev-bm25", "map@5", r["MAP@5"]))
        print("CLEF 2021 2B (debate sentence -> PolitiFact claim), claimwatch with the transcript "
              "(2 lines either side, speaker, debate date):")
        for name, qrels in (("train", train2b), ("dev", dev2b)):
            r = evaluate(_clef_rank(index2b, q2b, lambda q: ctx2b[q]), q2b, qrels)
            _print_eval(f"{name} claimwatch", r)
        results.append(("clef2b-dev", "map@5", r["MAP@5"]))
        r = evaluate(bm25_rank(claims2b), q2b, dev2b)
        _print_eval("dev   bm25 (bm25s)", r)
        results.append(("clef2b-dev-bm25", "map@5", r["MAP@5"]))
        print("dense one-story tables (a tweet's claim + its 19 nearest claims), "
              "each tweet as a one-sentence article:")
        f = dense_report("dev  ", dense_scores(bm25_rank(claims, k=21), claims, queries, dev))
        results.append(("dense-dev", "linked-precision", f["precision"]))
        results.append(("dense-dev", "linked-recall", f["recall"]))
        results.append(("dense-dev", "absent-linked-rate", f["absent"]))
        if not args.no_scale:
            print("CLEF 2022 2A dev at 100,000 claims (2A + 2B claims + real distractors), "
                  "pruned as production prunes vs exact:")
            got = scale_report(claims + clef2b_claims(v2b), [("2A dev", queries, dev, ctx2a)],
                               [None, I.PRUNE_KEEP], [*queries.values(), *q2b.values()])
            results.append(("clef2a-dev-100k-exact", "map@5", got[("2A dev", None)]))
            results.append(("clef2a-dev-100k-pruned", "map@5", got[("2A dev", I.PRUNE_KEEP)]))
        if args.speed:
            speed(vclaims)
    else:
        print(f"CLEF data not found at {CLEF} / {CLEF2B}: skipping MAP and dense tables")
    seed_report(verbose=args.verbose)
    results.extend(stance_results())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB; total {time.perf_counter() - t_start:.1f} s")
    for name, metric, value in results:
        print(f"RESULT {name} {metric} {value:.4f}" if isinstance(value, float)
              else f"RESULT {name} {metric} {value}")
    return 0


def stance_results() -> list[tuple[str, str, float | str]]:
    """FNC-1 relative score (the stance classifier's benchmark) and the seed negation set
    through ``match_claims``.

    seed-negation linked-false-rate: of the sentences of benchmarks/seed_stance_set.json
    labelled ``disputes`` (negations, denials, retractions, corrections of a claim of
    config/topics/claims.csv), the share that ``match_claims`` over the whole claims
    table links (either tier) to their claim with stance ``repeats``. Must be 0.
    """
    out: list[tuple[str, str, float | str]] = []
    fnc = SHARED_DATA / "fnc1-stance"
    try:
        import quality_stance
    except ImportError as exc:
        print(f"stance benchmark not available ({exc})")
        return out
    if fnc.is_dir():
        t0 = time.perf_counter()
        score = quality_stance.fnc1_relative_score(fnc)
        print(f"FNC-1 hold-out (pipeline.stance): relative score {score:.4f} "
              f"({time.perf_counter() - t0:.1f} s)")
        out.append(("fnc1-dev", "relative-score", score))
    else:
        print(f"FNC-1 data not found at {fnc}: skipping")
    data = json.loads(quality_stance.SEED_SET.read_text(encoding="utf-8"))
    claims, _ = seed_claims(json.loads(SEED_SET.read_text(encoding="utf-8")))
    index = C.ClaimIndex.build(claims)
    disputing = [it for it in data["items"] if it["label"] == "disputes"]
    false_links = linked = 0
    stances: dict[str, int] = {}
    for it in disputing:
        for m in C.match_claims([it["sentence"]], index):
            if m.claim_id != it["claim_id"]:
                continue
            linked += 1
            stances[m.stance] = stances.get(m.stance, 0) + 1
            if m.stance == "repeats":
                false_links += 1
                print(f"    XX repeats link for a disputing sentence: {it['sentence'][:90]}")
    rate = false_links / max(len(disputing), 1)
    print(f"seed negation set: {len(disputing)} disputing sentences, {linked} matched to their "
          f"claim (stances {stances}), {false_links} as repeats: linked-false-rate {rate:.4f}")
    out.append(("seed-negation", "linked-false-rate", rate))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
