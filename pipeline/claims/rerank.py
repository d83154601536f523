"""Re-ranking: the lexical score, the semantic signal and the sentence's context, in one model.

The first stage (:mod:`pipeline.claims.scoring`) scores a (sentence, claim text)
pair on its words alone. This stage combines that score with what words miss:

==================  ==========================================================
``lexical``          the first stage's logit (clipped to -15..15)
``lexical_margin``   that logit minus the best one of the same sentence (<= 0)
``cos_text``         cosine of the sentence's and the claim text's embeddings
``cos_context``      cosine of the sentence's window (neighbours, title) and the claim
``cos_margin``       ``cos_text`` minus the best one of the same sentence (<= 0)
``date_gap``         log1p(days between the article and the claim's first report)
``date_known``       1 when both dates are known (``date_gap`` means something)
``speaker``          +1 the sentence's speaker is the claim's source or named in it,
                     -1 both are known and differ, 0 unknown
``window_cover``     IDF share of the claim text's words found in the sentence's window
``rival_lead``       ``lexical`` minus the best of the sentence's *rival* claims (those
                     competing for the same words, ``RIVAL_SHARE``; +10 without rivals):
                     a claim stated as a distinct part of the sentence has no rival
``date_before``      log1p(days the sentence is dated *before* the claim's date)
``date_after_late``  log1p(days it is dated after the claim's date, beyond ``LATE_DAYS``)
``cov_claim``        the first stage's IDF share of the claim text found in the sentence
``cov_query``        ... and of the sentence found in the claim text
``names_missing``    ... and of the claim text's names absent from the sentence
==================  ==========================================================

Why the dates are signed, and why "after" counts only late: in CLEF 2A a claim's
date is its fact-check's, and the tweet comes days *before* it (715 of 962 train
pairs within a week before, 23 after); in 2B and in a claims table's
``first_reported`` the sentence comes *after* the claim. Learnt from 2A, any "after"
means no match, which is wrong for an article that repeats a claim weeks later
(the demo's "Musk completed his $44 billion purchase of Twitter in late October",
49 days after the claim's first report). So "after" counts only beyond 90 days;
``date_gap`` keeps the plain distance (without it, the dense tables' own-claim-absent
links double in cross-validation), so a claim weeks old still scores under a fresh
one: that demo sentence is a ``suggested`` link.

A small gradient-boosted forest over these (``rerank.json`` beside this file,
with the tier thresholds chosen for it; fitted with LightGBM on the train splits
of CLEF CheckThat! 2022 2A and 2021 2B and on dense one-story tables made from 2A
train, by ``benchmarks/quality_claims.py --tune``, which writes exactly the
committed file; evaluated here with numpy alone) gives
the match probability; a score is 100 times it. A forest rather than a
logistic model: on the dense tables, a linear model links a tweet whose own
claim is absent to a neighbour 1.5% of the time at recall 0.70 (dev), the forest
0.5%.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.claims.context import SentenceContext, readable
from pipeline.claims.semantic import embed
from pipeline.text import analyse

if TYPE_CHECKING:
    from pipeline.claims.index import ClaimIndex

FEATURES = (
    "lexical",
    "lexical_margin",
    "cos_text",
    "cos_context",
    "cos_margin",
    "date_gap",
    "date_known",
    "speaker",
    "window_cover",
    "rival_lead",
    "date_before",
    "date_after_late",
    "cov_claim",
    "cov_query",
    "names_missing",
)
(LEXICAL, LEXICAL_MARGIN, COS_TEXT, COS_CONTEXT, COS_MARGIN, DATE_GAP, DATE_KNOWN,
 SPEAKER, WINDOW_COVER, RIVAL_LEAD, DATE_BEFORE, DATE_AFTER_LATE, COV_CLAIM, COV_QUERY,
 NAMES_MISSING) = range(len(FEATURES))
# the range of each feature (the model is defined on these, values are clipped)
RANGES = {
    LEXICAL: (-15.0, 15.0),
    LEXICAL_MARGIN: (-10.0, 0.0),
    COS_TEXT: (-1.0, 1.0),
    COS_CONTEXT: (-1.0, 1.0),
    COS_MARGIN: (-2.0, 0.0),
    DATE_GAP: (0.0, 12.0),
    DATE_KNOWN: (0.0, 1.0),
    SPEAKER: (-1.0, 1.0),
    WINDOW_COVER: (0.0, 1.0),
    RIVAL_LEAD: (-10.0, 10.0),
    DATE_BEFORE: (0.0, 12.0),
    DATE_AFTER_LATE: (0.0, 12.0),
    COV_CLAIM: (0.0, 1.0),
    COV_QUERY: (0.0, 1.0),
    NAMES_MISSING: (0.0, 1.0),
}
# an article repeating a claim this many days after its first report is not late
LATE_DAYS = 90
# A rival of a claim, for a sentence: another claim whose words the sentence shares
# mostly (at least this share of their IDF mass) among the first claim's words, or the
# reverse; the two compete for the same part of the sentence (pipeline.claims.matching's
# one claim per idea keeps only the better of them).
RIVAL_SHARE = 0.5
MODEL_FILE = Path(__file__).with_name("rerank.json")


class Forest:
    """A gradient-boosted forest (trained with LightGBM), evaluated with numpy alone.

    Nodes of every tree side by side: ``feature``, ``threshold`` (go left when
    ``x <= threshold``), ``left``/``right`` (child node, or ``-1 - leaf``) and
    ``leaf_value``. All trees are walked at once, one level per step, so a few
    hundred pairs cost a fraction of a millisecond.
    """

    def __init__(self, trees: list[dict[str, list[float]]], bias: float) -> None:
        n_trees = len(trees)
        width = max(max(len(t["feature"]) for t in trees), 1)
        leaves = max(len(t["leaf_value"]) for t in trees)
        self.feature = np.zeros((n_trees, width), dtype=np.int64)
        self.threshold = np.zeros((n_trees, width), dtype=np.float64)
        self.left = np.full((n_trees, width), -1, dtype=np.int64)
        self.right = np.full((n_trees, width), -1, dtype=np.int64)
        self.leaf_value = np.zeros((n_trees, leaves), dtype=np.float64)
        self.depth = 1
        for i, t in enumerate(trees):
            n = len(t["feature"])
            self.feature[i, :n] = t["feature"]
            self.threshold[i, :n] = t["threshold"]
            self.left[i, :n] = t["left"]
            self.right[i, :n] = t["right"]
            self.leaf_value[i, : len(t["leaf_value"])] = t["leaf_value"]
            self.depth = max(self.depth, _tree_depth(t))
        self.bias = bias
        self.trees = trees
        self._scorer = _QuickScorer(trees) if leaves <= 64 else None

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The forest's raw score (a logit) of each row of ``x``."""
        n = len(x)
        if n == 0:
            return np.zeros(0)
        if self._scorer is not None:
            return np.concatenate([self._scorer.leaves(x[i: i + _QS_ROWS]).sum(axis=1)
                                   for i in range(0, n, _QS_ROWS)]) + self.bias
        return self._walk(x)

    def _walk(self, x: np.ndarray) -> np.ndarray:
        """:meth:`raw` by walking every tree one level per step (any number of leaves)."""
        n = len(x)
        n_trees = len(self.feature)
        tree = np.broadcast_to(np.arange(n_trees), (n, n_trees))
        row = np.broadcast_to(np.arange(n)[:, None], (n, n_trees))
        node = np.zeros((n, n_trees), dtype=np.int64)
        # a tree of one leaf has no node: it starts at its leaf
        node[:, [len(t["feature"]) == 0 for t in self.trees]] = -1
        for _ in range(self.depth):
            inner = node >= 0
            if not inner.any():
                break
            at = np.where(inner, node, 0)
            go_left = x[row, self.feature[tree, at]] <= self.threshold[tree, at]
            step = np.where(go_left, self.left[tree, at], self.right[tree, at])
            node = np.where(inner, step, node)
        return self.leaf_value[tree, -1 - node].sum(axis=1) + self.bias

    def lexical_floor(self, floor: float, column: int) -> float:
        """The lowest ``column`` value from which the raw score can still reach ``floor``.

        For each tree, a leaf is reachable with ``x[column] <= v`` unless its path
        requires ``x[column] > t`` for some ``t >= v``; the most a forest can give
        below ``v`` is the sum of each tree's best reachable leaf. Exact as a bound
        (every other feature free), so no pair that can reach ``floor`` is dropped.
        """
        cuts: list[float] = []
        per_tree: list[list[tuple[float, float]]] = []  # (lowest lexical needed, leaf value)
        for t in self.trees:
            leaves: list[tuple[float, float]] = []
            _leaf_bounds(t, 0, -np.inf, column, leaves) if t["feature"] else leaves.append(
                (-np.inf, t["leaf_value"][0]))
            per_tree.append(leaves)
            cuts.extend(lo for lo, _ in leaves if lo > -np.inf)
        for cut in [-np.inf, *sorted(set(cuts))]:
            # a value just above ``cut`` reaches the leaves whose bound is at most cut
            total = self.bias + sum(max((val for lo, val in leaves if lo <= cut),
                                        default=-np.inf) for leaves in per_tree)
            if total >= floor:
                return float(cut)
        return np.inf


# rows of a feature matrix scored at once (bounds the (rows x nodes) arrays: ~20 MB)
_QS_ROWS = 1024
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


class _QuickScorer:
    """Forest evaluation without walking the trees (QuickScorer, Lucchese et al., SIGIR 2015).

    The leaves of each tree are numbered left to right, and each tree's
    surviving leaves are a 64-bit mask. A node whose test fails (the row goes
    right) rules out every leaf of its left subtree; the row's leaf is the
    leftmost one no failing node ruled out. So every node of every tree is
    tested at once (one comparison per row and node), the masks of the failing
    nodes ANDed per tree, and the lowest set bit is the leaf: a handful of
    numpy operations for the whole forest, instead of several per tree level.
    The leaf values are the ones :meth:`Forest._walk` reaches, summed in the
    same tree order.
    """

    def __init__(self, trees: list[dict[str, list[float]]]) -> None:
        feature: list[int] = []
        threshold: list[float] = []
        mask: list[int] = []
        starts: list[int] = []  # each tree's first node
        width = max(len(t["leaf_value"]) for t in trees)
        self.value = np.zeros((len(trees), width), dtype=np.float64)
        for i, tree in enumerate(trees):
            starts.append(len(feature))
            if not tree["feature"]:  # one leaf: a node that never rules anything out
                feature.append(0)
                threshold.append(np.inf)
                mask.append(int(_ALL))
                self.value[i, 0] = tree["leaf_value"][0]
                continue
            position: dict[int, int] = {}  # leaf id -> its place, left to right
            left_leaves: dict[int, list[int]] = {}
            _number_leaves(tree, 0, position, left_leaves)
            for leaf, pos in position.items():
                self.value[i, pos] = tree["leaf_value"][leaf]
            for node in range(len(tree["feature"])):
                feature.append(int(tree["feature"][node]))
                threshold.append(float(tree["threshold"][node]))
                ruled_out = sum(1 << position[leaf] for leaf in left_leaves[node])
                mask.append(int(_ALL) & ~ruled_out)
        self.feature = np.array(feature, dtype=np.int64)
        self.threshold = np.array(threshold, dtype=np.float64)
        # trees of at most 8 leaves (the usual): byte masks, and a table for the lowest bit
        small = width <= 8
        self.dtype = np.uint8 if small else np.uint64
        self.all = self.dtype(0xFF) if small else _ALL
        self.mask = np.array([m & int(self.all) for m in mask], dtype=self.dtype)
        self.lowest_bit = (np.array([(v & -v).bit_length() - 1 for v in range(256)],
                                    dtype=np.int64) if small else None)
        self.tree = np.arange(len(trees))
        node_tree = np.repeat(self.tree, np.diff([*starts, len(feature)]))
        # per feature, its nodes by threshold and, after each, the trees' masks ANDed over
        # that node and every node before it: a row whose value exceeds the k lowest
        # thresholds fails exactly those k nodes, so its masks are row k of the table
        self.by_feature: list[tuple[int, np.ndarray, np.ndarray]] = []
        for f in sorted(set(feature)):
            nodes = [j for j in np.argsort(self.threshold, kind="stable").tolist()
                     if feature[j] == f and self.threshold[j] < np.inf]
            table = np.full((len(nodes) + 1, len(trees)), self.all, dtype=self.dtype)
            for k, j in enumerate(nodes):
                table[k + 1] = table[k]
                table[k + 1, node_tree[j]] &= self.mask[j]
            self.by_feature.append((f, self.threshold[nodes], table))

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The value of the leaf each row of ``x`` reaches in each tree: (rows, trees)."""
        alive = np.full((len(x), len(self.tree)), self.all, dtype=self.dtype)
        for f, thresholds, table in self.by_feature:
            # the nodes a row fails: those with a threshold under its value (x <= t
            # stays left; NaN sorts last, so it goes right everywhere, as walking)
            alive &= table.take(thresholds.searchsorted(x[:, f], side="left"), axis=0)
        if self.lowest_bit is not None:
            leaf = self.lowest_bit.take(alive)
        else:
            lowest = alive & (~alive + self.dtype(1))
            leaf = np.log2(lowest.astype(np.float64)).astype(np.int64)
        return self.value[self.tree, leaf]


def _number_leaves(tree: dict[str, list[float]], node: int, position: dict[int, int],
                   left_leaves: dict[int, list[int]]) -> list[int]:
    """Number the leaves under ``node`` left to right; return them (leaf ids, in order).

    Also records, for every inner node, the leaves of its left subtree.
    """
    out: list[int] = []
    for side in ("left", "right"):
        child = int(tree[side][node])
        if child >= 0:
            below = _number_leaves(tree, child, position, left_leaves)
        else:
            below = [-1 - child]
            position[-1 - child] = len(position)
        if side == "left":
            left_leaves[node] = below
        out.extend(below)
    return out


def _tree_depth(tree: dict[str, list[float]], node: int = 0) -> int:
    if not tree["feature"]:
        return 0
    depth = 1
    for child in (tree["left"][node], tree["right"][node]):
        if child >= 0:
            depth = max(depth, 1 + _tree_depth(tree, int(child)))
    return depth


def _leaf_bounds(tree: dict[str, list[float]], node: int, lo: float, column: int,
                 out: list[tuple[float, float]]) -> None:
    """Each leaf of ``tree`` with the value ``column`` must exceed to reach it."""
    for child, right in ((tree["left"][node], False), (tree["right"][node], True)):
        bound = max(lo, tree["threshold"][node]) if right and tree["feature"][node] == column \
            else lo
        if child >= 0:
            _leaf_bounds(tree, int(child), bound, column, out)
        else:
            out.append((bound, tree["leaf_value"][-1 - int(child)]))


@lru_cache(maxsize=1)
def _file_model() -> Forest:
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURES:
        raise ValueError(f"{MODEL_FILE} was fitted on other features: {data['features']}")
    return Forest(data["trees"], float(data["bias"]))


@lru_cache(maxsize=1)
def model_version() -> str:
    """A short hash of the committed re-ranker (``rerank.json``: its features, trees and
    tiers). Stored matches record it (through ``pipeline.analysis.claims_version``), so
    an upgrade that changes the model marks every article as behind and a re-match
    brings old links to the new scores and tiers instead of leaving them as crawled."""
    return hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest()[:16]


_OVERRIDE: Forest | None = None


def set_model(forest: Forest | None) -> None:
    """Use this forest in this process (the benchmark's ``--tune``); ``None``: the file's."""
    global _OVERRIDE
    _OVERRIDE = forest
    _floor_cache.clear()


def model() -> Forest:
    """The re-ranker."""
    return _OVERRIDE if _OVERRIDE is not None else _file_model()


_floor_cache: dict[float, float] = {}


def lexical_floor(logit_floor: float) -> float:
    """The lowest first-stage logit from which a pair can still reach ``logit_floor``."""
    found = _floor_cache.get(logit_floor)
    if found is None:
        found = _floor_cache[logit_floor] = model().lexical_floor(logit_floor, LEXICAL)
    return found


def _speaker_feature(index: ClaimIndex, row: int, speaker: str | None) -> float:
    if not speaker:
        return 0.0
    surname = speaker.split()[-1].lower().strip(".,")
    if len(surname) < 3:
        return 0.0
    source = index.claim_sources[int(index.row_claim[row])]
    if surname in index.row_texts[row].lower():
        return 1.0
    if source:
        return 1.0 if surname in source.lower() else -1.0
    return 0.0


def _cover(index: ClaimIndex, row: int, words: frozenset[str]) -> float:
    """IDF share of the words of claim text ``row`` that ``words`` has.

    Summed with ``math.fsum`` (exactly rounded): a set's order is the string hash's,
    which changes between processes, and a plain sum would change in its last bits.
    """
    weights = [(index.word_weight(w), w in words) for w in set(index.row_words[row].split())]
    total = math.fsum(weight for weight, _ in weights)
    found = math.fsum(weight for weight, has in weights if has)
    return found / total if total > 0 else 0.0


def _rivals(index: ClaimIndex, words: frozenset[str], rows: list[int]) -> list[list[int]]:
    """Per pair of one sentence (claim texts ``rows``): the pairs that are its rivals
    (see ``RIVAL_SHARE``). IDF masses are summed with ``math.fsum`` (the same in any
    set order)."""
    out: list[list[int]] = [[] for _ in rows]
    if len(rows) < 2:
        return out
    claim_of = index.row_claim
    owners = [int(claim_of[r]) for r in rows]
    sets = [frozenset(index.row_words[r].split()) for r in rows]
    shared = [words & w for w in sets]
    weight = {w: index.word_weight(w) for w in frozenset().union(*shared)}.__getitem__
    mass = [math.fsum(map(weight, sh)) for sh in shared]
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if owners[i] == owners[j]:
                continue
            # j's shared words mostly among i's claim words, or i's among j's
            if (math.fsum(map(weight, shared[j] & sets[i])) >= RIVAL_SHARE * mass[j]
                    or math.fsum(map(weight, shared[i] & sets[j])) >= RIVAL_SHARE * mass[i]):
                out[i].append(j)
                out[j].append(i)
    return out


def _lead(values: list[float], rivals: list[list[int]], top: float) -> list[float]:
    """Each value minus the best of its rivals'; ``top`` without rivals."""
    return [values[i] - max(values[j] for j in r) if r else top
            for i, r in enumerate(rivals)]


def feature_matrix(
    index: ClaimIndex,
    texts: Sequence[str],
    contexts: Sequence[SentenceContext | None] | None,
    q: np.ndarray,
    rows: np.ndarray,
    lexical: np.ndarray,
    first_stage: np.ndarray,
    words: Sequence[Sequence[str]],
) -> np.ndarray:
    """The re-ranking features of each (query ``q``, claim text ``rows``) pair.

    ``first_stage``: the first stage's cov_claim, cov_query and names_missing columns
    of the pairs; ``words``: each query's content words (as analysed in its language).
    """
    n = len(rows)
    feats = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return feats
    feats[:, LEXICAL] = np.clip(lexical, *RANGES[LEXICAL])
    nq = len(texts)
    best = np.full(nq, -np.inf)
    np.maximum.at(best, q, feats[:, LEXICAL])
    feats[:, LEXICAL_MARGIN] = np.maximum(feats[:, LEXICAL] - best[q], RANGES[LEXICAL_MARGIN][0])
    # embeddings of the sentences (and windows) that have pairs, only
    used = np.unique(q)
    sentence_text = [readable(texts[i]) for i in used.tolist()]
    windows = [readable(c.window) if contexts and (c := contexts[i]) is not None
               else sentence_text[k] for k, i in enumerate(used.tolist())]
    distinct_windows = [w for w, s in zip(windows, sentence_text, strict=True) if w != s]
    vecs = embed(sentence_text + distinct_windows)
    if vecs is not None and index.row_vectors is not None:
        local = np.full(nq, -1, dtype=np.int64)
        local[used] = np.arange(len(used))
        s_vec = vecs[: len(used)]
        w_vec = s_vec.copy()
        k = len(used)
        for j, (w, s) in enumerate(zip(windows, sentence_text, strict=True)):
            if w != s:
                w_vec[j] = vecs[k]
                k += 1
        r_vec = index.row_vectors[rows].astype(np.float32)
        li = local[q]
        feats[:, COS_TEXT] = np.einsum("ij,ij->i", s_vec[li], r_vec)
        feats[:, COS_CONTEXT] = np.einsum("ij,ij->i", w_vec[li], r_vec)
        best_cos = np.full(nq, -np.inf)
        np.maximum.at(best_cos, q, feats[:, COS_TEXT])
        feats[:, COS_MARGIN] = feats[:, COS_TEXT] - best_cos[q]
    if contexts:
        # only the contexts of the sentences with pairs are read (they may be made lazily)
        day_of = {qi: -1 if (c := contexts[qi]) is None or c.day is None else c.day
                  for qi in used.tolist()}
        days = np.array([day_of[qi] for qi in q.tolist()], dtype=np.int64)
        c_days = index.claim_days[index.row_claim[rows]]
        known = (days >= 0) & (c_days >= 0)
        gap = np.log1p(np.abs(days - c_days).astype(np.float64))
        feats[:, DATE_GAP] = np.where(known, np.minimum(gap, RANGES[DATE_GAP][1]), 0.0)
        feats[:, DATE_KNOWN] = known
        signed = (days - c_days).astype(np.float64)  # > 0: the sentence is dated after
        feats[:, DATE_BEFORE] = np.where(known, np.minimum(np.log1p(np.maximum(-signed, 0.0)),
                                                           RANGES[DATE_BEFORE][1]), 0.0)
        feats[:, DATE_AFTER_LATE] = np.where(known, np.minimum(
            np.log1p(np.maximum(signed - LATE_DAYS, 0.0)), RANGES[DATE_AFTER_LATE][1]), 0.0)
        window_words: dict[int, frozenset[str]] = {}
        for i, (qi, r) in enumerate(zip(q.tolist(), rows.tolist(), strict=True)):
            c = contexts[qi]
            if c is not None:
                ww = window_words.get(qi)
                if ww is None:
                    ww = window_words[qi] = frozenset(analyse(c.window).words)
                feats[i, WINDOW_COVER] = _cover(index, r, ww)
            speaker = c.speaker if c is not None else None
            if speaker:
                feats[i, SPEAKER] = _speaker_feature(index, r, speaker)
    # the lead over rival claims (pairs come sorted by sentence; a sentence with one
    # pair has no rival)
    low, high = RANGES[RIVAL_LEAD]
    feats[:, RIVAL_LEAD] = high
    q_l = q.tolist()
    start = 0
    while start < n:  # (a few pairs: plain Python beats numpy's per-call cost here)
        qi = q_l[start]
        end = start + 1
        while end < n and q_l[end] == qi:
            end += 1
        if end - start >= 2:
            rivals = _rivals(index, frozenset(words[qi]), rows[start:end].tolist())
            feats[start:end, RIVAL_LEAD] = [
                min(max(v, low), high)
                for v in _lead(feats[start:end, LEXICAL].tolist(), rivals, high)]
        start = end
    feats[:, [COV_CLAIM, COV_QUERY, NAMES_MISSING]] = first_stage
    return feats


def probability(feats: np.ndarray) -> np.ndarray:
    """The re-ranker's match probability of each feature row."""
    # a leaf fitted on negatives alone can be in the hundreds: clipped, exp never overflows
    # (the probability is 0 to far below a score's rounding either way)
    return 1.0 / (1.0 + np.exp(-np.clip(model().raw(feats), -500.0, 500.0)))
