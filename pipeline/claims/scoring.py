"""Scoring: the features of a (sentence, claim text) pair and the model over them.

Candidates come from :meth:`ClaimIndex.lexical`; each pair gets the lexical,
fuzzy (rapidfuzz), figure and name features named in ``FEATURES`` (computed
cheapest first, and only while the pair can still reach the floor), and a
logistic model turns them into a probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from pipeline.claims import rerank
from pipeline.claims.context import SentenceContext
from pipeline.claims.figures import _figure_values, _salient_figures
from pipeline.claims.index import _NO_FIGURES, ClaimIndex, FirstStage
from pipeline.text import TextFeatures, analyse

# Tier thresholds (0..100) on the re-ranker's score: on dense one-story tables made
# from CLEF 2022 2A train (a tweet's claim and its 19 nearest claims), each tweet
# scored by a forest fitted without it (5-fold cross-validation), the lowest scores
# before precision falls under 0.98 (linked) and 0.90 (suggested).
# ``benchmarks/quality_claims.py --tune`` chooses them with the forest and writes both
# into rerank.json (tests/test_rerank_fit.py checks that these are the file's).
DEFAULT_LINKED_MIN = 80.5
DEFAULT_SUGGESTED_MIN = 1.0
# find_candidates: how claim-like (0..1) a sentence must look.
DEFAULT_CANDIDATE_MIN = 0.7
# A sentence whose figures contradict a claim's is a *conflict* only when the rest of
# it says the claim almost word for word (figures masked); below this score it is a
# different statement with other figures, so no match at all (and maybe a new claim).
DEFAULT_CONFLICT_MIN = 90.0

# Logistic model, fitted on CLEF 2022 2A train (``--tune`` refits it), over:
#   cov_claim        IDF share of the claim text's words found in the sentence
#   cov_query        IDF share of the sentence's words found in the claim text
#   bm25             log1p(claim BM25 / highest possible IDF)
#   token_set        fuzz.token_set_ratio / 100, content words, figures masked
#   token_sort       fuzz.token_sort_ratio / 100, content words, figures masked
#   ratio            fuzz.ratio / 100, normalised text, figures masked
#   numbers          +1 a shared figure, -1 figures on both sides but none shared
#   names_missing    IDF share of the claim text's names absent from the sentence
#   figures_missing  1 when the claim text has figures and the sentence none
FEATURES = (
    "cov_claim",
    "cov_query",
    "bm25",
    "token_set",
    "token_sort",
    "ratio",
    "numbers",
    "names_missing",
    "figures_missing",
)
WEIGHTS = (1.45, 2.46, 9.085, -0.272, 4.952, 3.702, 0.48, -0.666, -0.809)
BIAS = -16.852
# the columns of a feature matrix, by name
(COV_CLAIM, COV_QUERY, BM25, TOKEN_SET, TOKEN_SORT, RATIO, NUMBERS, NAMES_MISSING,
 FIGURES_MISSING) = range(len(FEATURES))
# In an article (not in rank_claims' retrieval), a pair is re-ranked only when its
# first-stage (lexical) probability reaches LEXICAL_PRUNE (the re-ranker's margin
# features then see the sentence's other plausible claims, as in training), and
# reported only when it reaches LEXICAL_MIN: the words alone must make it a
# one-in-five chance (a vague sentence sharing a name or two is no match).
LEXICAL_PRUNE = 0.2
LEXICAL_PRUNE_LOGIT = math.log(LEXICAL_PRUNE / (1.0 - LEXICAL_PRUNE))
LEXICAL_MIN = 0.2
LEXICAL_MIN_LOGIT = math.log(LEXICAL_MIN / (1.0 - LEXICAL_MIN))
# A candidate needs this share of its claim text's IDF mass (figures excluded) in
# the sentence before it is scored with rapidfuzz (no loss of recall on CLEF train
# at the tier thresholds).
CANDIDATE_GATE = 0.2
# A match whose claim names a subject the sentence does not, while the sentence
# names another, keeps this share of its score (not learnt: CLEF tweets name
# people by handle or not at all, so CLEF cannot teach it).
SUBJECT_PENALTY = 0.6


def _bm25_feature(index: ClaimIndex, rows: np.ndarray, bm25: np.ndarray) -> np.ndarray:
    # BM25 in units of the rarest possible term's IDF, so that it means about the
    # same for a table of 20 claims as for one of 10,000
    return np.log1p(bm25 / index.unknown_idf)


def _fuzzy(scorer: Any, queries: list[str], choices: list[str]) -> np.ndarray:
    """``scorer(queries[i], choices[i])`` for every pair, in one rapidfuzz call."""
    return process.cpdist(queries, choices, scorer=scorer, dtype=np.float64, workers=1)


def _feature_matrix(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    masses: Sequence[float],
    q: np.ndarray,
    rows: np.ndarray,
    shared: np.ndarray,
    bm25: np.ndarray,
) -> np.ndarray:
    """Feature rows, one per (query, claim text) pair, ``q`` sorted; columns = FEATURES.

    The fuzzy scores use pre-normalised strings (content words with figures
    masked, and the masked normalised text), so no rapidfuzz processor is needed;
    all pairs go through one ``cpdist`` call per scorer (on one thread: a few
    dozen pairs are cheaper than starting workers).
    """
    feats = _exact_features(index, queries, masses, q, rows, shared, bm25)
    if len(rows):
        everything = np.arange(len(rows))
        for column in _FUZZY_COLUMNS:
            _fuzzy_feature(index, queries, q, rows, feats, column, everything)
    return feats


# The fuzzy features, cheapest scorer first: (column, scorer, on masked text?).
_FUZZY_COLUMNS = (RATIO, TOKEN_SORT, TOKEN_SET)
_SCORERS: dict[int, tuple[Any, bool]] = {
    TOKEN_SET: (fuzz.token_set_ratio, False),
    TOKEN_SORT: (fuzz.token_sort_ratio, False),
    RATIO: (fuzz.ratio, True),
}


def _fuzzy_feature(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    q: np.ndarray,
    rows: np.ndarray,
    feats: np.ndarray,
    column: int,
    pairs: np.ndarray,
) -> None:
    """Fill one fuzzy column of ``feats`` for the pairs at positions ``pairs``."""
    if len(pairs) == 0:
        return
    scorer, masked = _SCORERS[column]
    q_l = q[pairs].tolist()
    rows_l = rows[pairs].tolist()
    if masked:
        left = [queries[qi].masked for qi in q_l]
        right = list(map(index.row_masked.__getitem__, rows_l))
    else:
        left = [queries[qi].fuzzy_words for qi in q_l]
        right = list(map(index.row_words.__getitem__, rows_l))
    feats[pairs, column] = _fuzzy(scorer, left, right) / 100.0


def _exact_features(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    masses: Sequence[float],
    q: np.ndarray,
    rows: np.ndarray,
    shared: np.ndarray,
    bm25: np.ndarray,
) -> np.ndarray:
    """The feature matrix with every feature but the fuzzy ones (left zero)."""
    feats = _lexical_features(index, queries, masses, q, rows, shared, bm25)
    _figure_name_features(index, queries, q, rows, feats, np.arange(len(rows)))
    return feats


def _lexical_features(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    masses: Sequence[float],
    q: np.ndarray,
    rows: np.ndarray,
    shared: np.ndarray,
    bm25: np.ndarray,
    query_figures: np.ndarray | None = None,
) -> np.ndarray:
    """The feature matrix with the lexical features and figures_missing filled in.

    ``query_figures``: whether each query has salient figures (derived when absent).
    """
    n = len(rows)
    feats = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return feats
    mass = index.row_mass[rows]
    q_mass = np.asarray(masses, dtype=np.float64)[q]
    feats[:, COV_CLAIM] = np.divide(shared, mass, out=np.zeros(n), where=mass > 0)
    feats[:, COV_QUERY] = np.divide(shared, q_mass, out=np.zeros(n), where=q_mass > 0)
    feats[:, BM25] = _bm25_feature(index, rows, bm25)
    if query_figures is None:
        query_figures = _query_arrays(queries)[2]
    feats[:, FIGURES_MISSING] = index.row_figures[rows] & ~query_figures[q]
    return feats


def _figure_name_features(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    q: np.ndarray,
    rows: np.ndarray,
    feats: np.ndarray,
    pairs: np.ndarray,
) -> None:
    """Fill the numbers and names_missing features of the pairs at positions ``pairs``."""
    last = -1
    q_figures: frozenset[str] = frozenset()
    q_words: frozenset[str] = frozenset()
    row_numbers = index.row_numbers
    row_names = index.row_names
    for i, qi, r in zip(pairs.tolist(), q[pairs].tolist(), rows[pairs].tolist(), strict=True):
        numbers = row_numbers.get(r)
        c_figures = _figure_values(numbers) if numbers else _NO_FIGURES
        names = row_names.get(r)
        if not (c_figures or names):
            continue
        if qi != last:
            last = qi
            q_figures = _figure_values(queries[qi].numbers)
            q_words = frozenset(queries[qi].words)
        if c_figures and q_figures:
            feats[i, NUMBERS] = 1.0 if q_figures & c_figures else -1.0
        if names:
            # fsum: exactly rounded, so the same in any order (a name set's order is
            # the string hash's, which changes between processes)
            missing = math.fsum(index.name_idf(name) for name in names if name not in q_words)
            feats[i, NAMES_MISSING] = missing / index.row_names_total[r]


def _pruned_feature_matrix(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    masses: Sequence[float],
    q: np.ndarray,
    rows: np.ndarray,
    shared: np.ndarray,
    bm25: np.ndarray,
    floor: float,
    query_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_feature_matrix` rows of the pairs whose logit can reach ``floor``.

    Returns ``(positions of those pairs, their feature rows)``.

    The features are computed cheapest first (lexical, ``ratio``, figures and
    names, ``token_sort_ratio``, ``token_set_ratio``), each for the pairs still
    able to reach ``floor`` given the features known so far and the most the
    others can add (an Indel ratio is at most ``2 * min(len) / (len_a + len_b)``);
    the pairs kept get exactly the features :func:`_feature_matrix` gives them.
    ``query_arrays``: :func:`_query_arrays` of ``queries`` (derived when absent).
    """
    q_words_len, q_masked_len, q_figures = query_arrays or _query_arrays(queries)
    feats = _lexical_features(index, queries, masses, q, rows, shared, bm25, q_figures)
    n = len(rows)
    w = WEIGHTS
    known = BIAS + (w[COV_CLAIM] * feats[:, COV_CLAIM] + w[COV_QUERY] * feats[:, COV_QUERY]
                    + w[BM25] * feats[:, BM25]
                    + w[FIGURES_MISSING] * feats[:, FIGURES_MISSING])
    words_len = q_words_len[q]
    masked_len = q_masked_len[q]
    r_words = index.row_words_len[rows]
    r_masked = index.row_masked_len[rows]
    both_figures = index.row_figures[rows] & (feats[:, FIGURES_MISSING] == 0)
    has_names = index.row_names_total[rows] > 0  # > 0 exactly for a text with names
    most = {  # the most each feature not yet known can add to the logit
        TOKEN_SET: np.full(n, max(w[TOKEN_SET], 0.0)),
        TOKEN_SORT: np.maximum(w[TOKEN_SORT] * 2.0 * np.minimum(words_len, r_words)
                      / np.maximum(words_len + r_words, 1), 0.0),
        RATIO: np.maximum(w[RATIO] * 2.0 * np.minimum(masked_len, r_masked)
                      / np.maximum(masked_len + r_masked, 1), 0.0),
        NUMBERS: np.where(both_figures, max(w[NUMBERS], -w[NUMBERS]), 0.0),
        NAMES_MISSING: np.where(has_names, max(w[NAMES_MISSING], 0.0), 0.0),
    }
    upper = known + sum(most.values())
    floor -= 1e-9  # rounding: never drop a pair that reaches floor
    alive = np.arange(n)
    # cheapest first
    for columns in ((RATIO,), (NUMBERS, NAMES_MISSING), (TOKEN_SORT,), (TOKEN_SET,)):
        alive = alive[upper[alive] >= floor]
        if columns == (NUMBERS, NAMES_MISSING):
            _figure_name_features(index, queries, q, rows, feats, alive)
        else:
            _fuzzy_feature(index, queries, q, rows, feats, columns[0], alive)
        for c in columns:  # now known: its value replaces its most
            upper[alive] += w[c] * feats[alive, c] - most[c][alive]
    return alive, feats[alive]


def _query_arrays(queries: Sequence[TextFeatures]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: the lengths of its fuzzy words and masked text, and whether it has
    salient figures (indexed by a pair's query, once per call instead of per pair)."""
    words_len = np.array([f.fuzzy_length for f in queries], dtype=np.float64)
    masked_len = np.array([len(f.masked) for f in queries], dtype=np.float64)
    figures = np.array([_salient_figures(f) for f in queries], dtype=bool)
    return words_len, masked_len, figures


def _other_subject(index: ClaimIndex, query: TextFeatures, row: int) -> bool:
    """The claim text names someone (or something) the sentence never mentions, and
    the sentence names someone else: "Tesla employed ..." vs "Twitter employed ..."."""
    names = index.row_names.get(row)
    if not names or not (query.names or query.opening_names):
        return False
    q_words = set(query.words)
    if any(name in q_words for name in names):
        return False
    # names are never figures, so the masked content words do for the claim's words
    return bool((query.names | query.opening_names) - set(index.row_words[row].split()))


def _probability(feats: np.ndarray) -> np.ndarray:
    z = feats @ np.asarray(WEIGHTS) + BIAS
    return 1.0 / (1.0 + np.exp(-z))


def _top_claims(
    index: ClaimIndex,
    q: np.ndarray,
    rows: np.ndarray,
    shared: np.ndarray,
    bm25: np.ndarray,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keep, for each query, the texts of its ``top_k`` claims with the highest BM25.

    Ties go to the claim that comes first in the table, so results never depend
    on hash or sort stability.
    """
    if len(rows) == 0:
        return q, rows, shared, bm25
    owners = index.row_claim[rows]
    # pairs come sorted by query, then text, so by query then claim: each
    # (query, claim) is a run
    new = np.empty(len(rows), dtype=bool)
    new[0] = True
    np.logical_or(q[1:] != q[:-1], owners[1:] != owners[:-1], out=new[1:])
    first = new.nonzero()[0]
    uq = q[first]
    order = np.lexsort((owners[first], -bm25[first], uq))  # by query, best BM25, table order
    sorted_q = uq[order]
    starts = sorted_q.searchsorted(sorted_q, side="left")
    rank = np.arange(len(order)) - starts
    keep_pair = np.zeros(len(first), dtype=bool)
    keep_pair[order[rank < top_k]] = True
    keep = keep_pair[new.cumsum() - 1].nonzero()[0]
    return q[keep], rows[keep], shared[keep], bm25[keep]



def _most_other() -> float:
    """The most the features after the three lexical ones can add to a logit."""
    w = WEIGHTS
    return (max(w[TOKEN_SET], 0.0) + max(w[TOKEN_SORT], 0.0) + max(w[RATIO], 0.0)
            + max(w[NUMBERS], -w[NUMBERS])
            + max(w[NAMES_MISSING], 0.0) + max(w[FIGURES_MISSING], 0.0))


def _logit_bound(
    index: ClaimIndex,
    query: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    rows: np.ndarray,
    shared: np.ndarray,
    bm25: np.ndarray,
) -> np.ndarray:
    """Highest logit each pair can reach: its lexical part plus the most the rest can add.

    ``query`` holds, per pair, the query's IDF mass, the lengths of its word and
    masked strings and whether it has figures.
    """
    w = WEIGHTS
    q_mass, q_words, q_masked, q_figures = query
    mass = index.row_mass[rows]
    cov_claim = np.divide(shared, mass, out=np.ones(len(rows)), where=mass > 0)
    cov_query = np.divide(shared, q_mass, out=np.zeros(len(rows)), where=q_mass > 0)
    logit = (BIAS + w[COV_CLAIM] * cov_claim + w[COV_QUERY] * cov_query
             + w[BM25] * _bm25_feature(index, rows, bm25))
    # an Indel ratio is at most 2*min(len)/(len_a + len_b); token_set_ratio is at
    # most 1; the figures features are known; missing names cost at least 0
    r_words = index.row_words_len[rows]
    r_masked = index.row_masked_len[rows]
    sort_max = 2.0 * np.minimum(q_words, r_words) / np.maximum(q_words + r_words, 1)
    ratio_max = 2.0 * np.minimum(q_masked, r_masked) / np.maximum(q_masked + r_masked, 1)
    r_figures = index.row_figures[rows]
    both = r_figures & q_figures
    figures_missing = r_figures & ~q_figures
    return (
        logit
        + max(w[TOKEN_SET], 0.0)
        + max(w[TOKEN_SORT], 0.0) * sort_max
        + max(w[RATIO], 0.0) * ratio_max
        + np.where(both, max(w[NUMBERS], -w[NUMBERS]), 0.0)
        + max(w[NAMES_MISSING], 0.0)
        + w[FIGURES_MISSING] * figures_missing
    )


def _score_queries(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    top_k: int,
    gate: float | None,
    min_probability: float = 0.0,
    contexts: Sequence[SentenceContext | None] | None = None,
    keep_features: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> list[list[tuple[int, float, bool]]]:
    """For each query, ``[(row, probability, other_subject)]`` of its scored candidates.

    Candidates are the texts sharing at least ``gate`` of their IDF mass with the
    query (any term without a gate), restricted to the ``top_k`` claims with the
    highest BM25; of those, only pairs whose lexical features leave room to
    reach ``min_probability`` (once re-ranked with their semantic and context
    features at their most) are scored with rapidfuzz, and pairs found unable to
    reach it are left out (they could be no match anyway). The probability is
    the re-ranker's (:mod:`pipeline.claims.rerank`); ``keep_features`` collects
    its feature rows (for fitting it).
    """
    out: list[list[tuple[int, float, bool]]] = [[] for _ in queries]
    floor = -math.inf
    if min_probability > 0.0:
        floor = rerank.lexical_floor(math.log(min_probability / (1.0 - min_probability)))
    if gate is not None:
        # an article's sentences: a pair whose words alone score under LEXICAL_PRUNE
        # is no candidate (the re-ranker's other features cannot be bounded tightly
        # enough to prune on them, and such pairs are not what a reader calls a match)
        floor = max(floor, LEXICAL_PRUNE_LOGIT)
    w = WEIGHTS
    # the loose bound below, which retrieval may apply first (in its compiled sums)
    first_stage = None if floor == -math.inf else FirstStage(
        floor - 1e-9, BIAS + _most_other(), w[COV_CLAIM], w[COV_QUERY], w[BM25])
    masses, q, rows, shared, bm25 = index.lexical(queries, gate, first_stage)
    if len(q) == 0:
        return out
    if floor > -math.inf:
        # retrieval has already left out most pairs by the loose bound (the lexical
        # features and every other feature at its most; the numpy sums leave that to
        # this test): the pair's own bound is never above it, so it drops what the
        # loose bound would, and more
        q_mass = np.asarray(masses).take(q)
        query_arrays = _query_arrays(queries)
        words_len, masked_len, figures = query_arrays
        per_pair = (q_mass, words_len[q], masked_len[q], figures[q])
        bound = _logit_bound(index, per_pair, rows, shared, bm25)
        keep = (bound >= floor).nonzero()[0]
        q, rows, shared, bm25 = q[keep], rows[keep], shared[keep], bm25[keep]
        if len(q) == 0:
            return out
    q, rows, shared, bm25 = _top_claims(index, q, rows, shared, bm25, top_k)
    if floor > -math.inf:
        kept, feats = _pruned_feature_matrix(index, queries, masses, q, rows, shared, bm25, floor,
                                             query_arrays)
        q, rows = q[kept], rows[kept]
    else:
        feats = _feature_matrix(index, queries, masses, q, rows, shared, bm25)
    lexical = feats @ np.asarray(WEIGHTS) + BIAS
    texts = [f.cleaned or f.norm for f in queries]
    feats2 = rerank.feature_matrix(index, texts, contexts, q, rows, lexical,
                                   feats[:, [COV_CLAIM, COV_QUERY, NAMES_MISSING]],
                                   [f.words for f in queries])
    if keep_features is not None:
        keep_features.append((q, rows, feats2))
    probs = rerank.probability(feats2)
    if gate is not None:
        probs = np.where(lexical >= LEXICAL_MIN_LOGIT, probs, 0.0)
    for qi, row, p in zip(q.tolist(), rows.tolist(), probs.tolist(), strict=True):
        if p <= 0.0:
            continue
        other = _other_subject(index, queries[qi], row)
        out[qi].append((row, p * SUBJECT_PENALTY if other else p, other))
    return out


def _score(p: float) -> float:
    return round(100.0 * p, 2)


def rank_claims(
    text: str,
    index: ClaimIndex,
    k: int = 5,
    *,
    depth: int = 60,
    context: SentenceContext | None = None,
) -> list[tuple[str, float]]:
    """The ``k`` claims that best match one text, as ``(claim_id, score 0..100)``, best first.

    The ``depth`` claims with the highest BM25 are rescored. Used for retrieval
    (a tweet against a table of fact-checked claims: CLEF CheckThat! 2A; a
    debate sentence in its transcript: 2B, with ``context``).
    """
    if len(index) == 0:
        return []
    best: dict[int, float] = {}
    contexts = [context] if context is not None else None
    for row, p, _ in _score_queries(index, [analyse(text)], depth, None, 0.0, contexts)[0]:
        ci = int(index.row_claim[row])
        if p > best.get(ci, -1.0):
            best[ci] = p
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [(index.claims[ci].id, _score(p)) for ci, p in ranked]
