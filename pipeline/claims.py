"""Claim matching core: which known claims does a sentence repeat, and with which figures.

Pure and typed; knows nothing of Scrapy or databases. Two stages:

1. **Candidate selection** with an inverted index (CSR arrays) over normalised,
   stemmed content words and normalised figures of every claim text (the claim
   and its aliases). Each posting carries the term's IDF and its BM25 weight, so
   one gather and two ``numpy.bincount`` calls give, for all sentences of an
   article at once, the IDF mass each sentence shares with each claim text and
   each claim's BM25. Only texts sharing ``CANDIDATE_GATE`` of their mass, of
   the ``top_k`` claims with the highest BM25, and whose lexical features leave
   room to reach ``suggested_min`` go on. The cost grows with the posting lists
   touched, not with every claim in the table.
2. **Scoring** of those candidates with rapidfuzz (``token_set_ratio`` and
   ``token_sort_ratio`` on content words, ``ratio`` on the normalised text, all
   with figures masked so that a changed figure does not sink the text score)
   and a logistic model over lexical, fuzzy, figure and name features, fitted on
   CLEF CheckThat! 2022 task 2A train (``benchmarks/quality_claims.py --tune``),
   into one 0..100 score.

Matches at or above ``linked_min`` are ``linked``; at or above ``suggested_min``
they are ``suggested``. A match whose salient figures differ from the claim's is
flagged ``conflict`` with both sets of figures (:func:`numbers_conflict`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from config.models import Claim
from pipeline.text import Number, TextFeatures, analyse

__all__ = [
    "DEFAULT_CANDIDATE_MIN",
    "DEFAULT_CONFLICT_MIN",
    "DEFAULT_LINKED_MIN",
    "DEFAULT_SUGGESTED_MIN",
    "Candidate",
    "ClaimIndex",
    "ClaimMatch",
    "find_candidates",
    "match_claims",
    "numbers_conflict",
    "rank_claims",
]

# Tier thresholds (0..100): the lowest scores at which matches of CLEF 2022 2A
# train tweets reach precision 0.90 (linked) and 0.75 (suggested); see
# ``benchmarks/quality_claims.py --tune``.
DEFAULT_LINKED_MIN = 72.0
DEFAULT_SUGGESTED_MIN = 30.0
# find_candidates: how claim-like (0..1) a sentence must look.
DEFAULT_CANDIDATE_MIN = 0.7
# A sentence whose figures contradict a claim's is a *conflict* only when the rest of
# it says the claim almost word for word (figures masked); below this score it is a
# different statement with other figures, so no match at all (and maybe a new claim).
DEFAULT_CONFLICT_MIN = 90.0

# BM25 parameters and the IDF prior: IDF_BACKGROUND pseudo-documents that contain
# none of the claim terms keep IDF meaningful for a table of a dozen claims (and
# keep tier precision on 20-claim tables close to that on 14,000; see the
# benchmark's small-table check). With 10,000 claims it hardly matters.
BM25_K1 = 1.2
BM25_B = 0.75
IDF_BACKGROUND = 100.0

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
# A candidate needs this share of its claim text's IDF mass (figures excluded) in
# the sentence before it is scored with rapidfuzz (no loss of recall on CLEF train
# at the tier thresholds).
CANDIDATE_GATE = 0.2
# A match whose claim names a subject the sentence does not, while the sentence
# names another, keeps this share of its score (not learnt: CLEF tweets name
# people by handle or not at all, so CLEF cannot teach it).
SUBJECT_PENALTY = 0.6


@dataclass(frozen=True)
class ClaimMatch:
    """A sentence of an article that repeats (or contradicts) a known claim."""

    claim_id: str
    sentence: str
    sentence_index: int
    score: float  # 0..100
    tier: str  # "linked" | "suggested"
    conflict: bool
    claim_numbers: tuple[str, ...]
    article_numbers: tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    """A sentence that looks like a checkable claim nobody has recorded yet."""

    sentence: str
    sentence_index: int
    score: float  # 0..1, how claim-like


def _is_figure(word: str) -> bool:
    return word[:1].isdigit()


def _fuzzy_words(features: TextFeatures) -> str:
    return " ".join("#" if _is_figure(w) else w for w in features.words)


class ClaimIndex:
    """Inverted index over the texts (claim text and aliases) of a claims table.

    Build it once per crawl with :meth:`build`; it is immutable afterwards and
    safe to share between threads.
    """

    def __init__(
        self,
        claims: tuple[Claim, ...],
        row_claim: np.ndarray,
        row_features: tuple[TextFeatures, ...],
        vocab: dict[str, int],
        idf: np.ndarray,
        indptr: np.ndarray,
        post_rows: np.ndarray,
        post_idf: np.ndarray,
        post_bm25: np.ndarray,
        row_mass: np.ndarray,
        unknown_idf: float,
    ) -> None:
        self.claims = claims
        self.row_claim = row_claim
        self.row_features = row_features
        self.row_words = tuple(_fuzzy_words(f) for f in row_features)
        self.row_masked = tuple(f.masked for f in row_features)
        self.word_idf = idf * np.array([not _is_figure(w) for w in vocab], dtype=np.float64)
        self.row_words_len = np.array([len(w) for w in self.row_words], dtype=np.float64)
        self.row_masked_len = np.array([len(m) for m in self.row_masked], dtype=np.float64)
        self.row_figure_values = tuple(_figure_values(f) for f in row_features)
        self.row_figures = np.array([bool(v) for v in self.row_figure_values], dtype=bool)
        self.row_word_sets = tuple(frozenset(f.words) for f in row_features)
        self.vocab = vocab
        self.idf = idf
        self.indptr = indptr
        self.post_rows = post_rows
        self.post_idf = post_idf
        self.post_bm25 = post_bm25
        self.row_mass = row_mass
        self.unknown_idf = unknown_idf
        # names of a claim text (capitalised words that are not plain sentence
        # openers), with their IDF
        self.row_names: tuple[dict[str, float], ...] = tuple(
            {
                name: float(idf[vocab[name]]) if name in vocab else unknown_idf
                for name in f.names | f.opening_names
            }
            for f in row_features
        )
        self.row_names_total = tuple(max(sum(n.values()), 1e-12) for n in self.row_names)

    @classmethod
    def build(cls, claims: Iterable[Claim]) -> ClaimIndex:
        """Index every text of every claim (``Claim.texts``: the text and its aliases)."""
        claims_t = tuple(claims)
        seen: set[str] = set()
        for claim in claims_t:
            if claim.id in seen:
                raise ValueError(f"duplicate claim id {claim.id!r}")
            seen.add(claim.id)
        row_claim_l: list[int] = []
        row_feats: list[TextFeatures] = []
        for ci, claim in enumerate(claims_t):
            for text in claim.texts:
                if text and text.strip():
                    row_claim_l.append(ci)
                    row_feats.append(analyse(text))
        n_rows = len(row_feats)
        vocab: dict[str, int] = {}
        row_terms: list[dict[int, int]] = []
        for feats in row_feats:
            tf: dict[int, int] = {}
            for word in feats.words:
                tid = vocab.setdefault(word, len(vocab))
                tf[tid] = tf.get(tid, 0) + 1
            row_terms.append(tf)
        n_terms = len(vocab)
        n_claims = len(claims_t)
        # BM25 is computed per claim (all its texts as one document: the claim and
        # its aliases or title describe one thing); coverage per text (a sentence
        # repeating one alias fully covers that alias).
        claim_tf: list[dict[int, int]] = [{} for _ in range(n_claims)]
        for row, tf in enumerate(row_terms):
            ctf = claim_tf[row_claim_l[row]]
            for tid, count in tf.items():
                ctf[tid] = ctf.get(tid, 0) + count
        df = np.zeros(n_terms, dtype=np.float64)
        for ctf in claim_tf:
            for tid in ctf:
                df[tid] += 1
        n_docs = float(n_claims) + IDF_BACKGROUND
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        unknown_idf = math.log1p((n_docs + 0.5) / 0.5)
        is_figure = np.zeros(n_terms, dtype=bool)
        for word, tid in vocab.items():
            is_figure[tid] = _is_figure(word)
        claim_len = np.array([sum(ctf.values()) for ctf in claim_tf], dtype=np.float64)
        avgdl = float(claim_len.mean()) if n_claims else 1.0
        claim_bm25: list[dict[int, float]] = []
        for ci, ctf in enumerate(claim_tf):
            norm = BM25_K1 * (1.0 - BM25_B + BM25_B * claim_len[ci] / avgdl)
            claim_bm25.append(
                {tid: idf[tid] * c * (BM25_K1 + 1.0) / (c + norm) for tid, c in ctf.items()}
            )
        # rows of a claim sharing a term split its BM25 weight, so summing postings
        # by claim gives the claim's BM25 and summing by row gives the shared mass
        holders: dict[tuple[int, int], int] = {}
        for row, tf in enumerate(row_terms):
            for tid in tf:
                key = (row_claim_l[row], tid)
                holders[key] = holders.get(key, 0) + 1
        counts = np.zeros(n_terms + 1, dtype=np.int64)
        for tf in row_terms:
            for tid in tf:
                counts[tid + 1] += 1
        indptr = np.cumsum(counts)
        fill = indptr[:-1].copy()
        total = int(indptr[-1])
        post_rows = np.zeros(total, dtype=np.int32)
        post_idf = np.zeros(total, dtype=np.float64)
        post_bm25 = np.zeros(total, dtype=np.float64)
        row_mass = np.zeros(n_rows, dtype=np.float64)
        for row, tf in enumerate(row_terms):
            ci = row_claim_l[row]
            for tid in tf:
                pos = fill[tid]
                fill[tid] += 1
                post_rows[pos] = row
                # figures do not count in the coverage features (they are checked
                # apart); a tiny weight still marks the pair as sharing a term
                if is_figure[tid]:
                    post_idf[pos] = 1e-9
                else:
                    post_idf[pos] = idf[tid]
                    row_mass[row] += idf[tid]
                post_bm25[pos] = claim_bm25[ci][tid] / holders[(ci, tid)]
        return cls(
            claims_t,
            np.asarray(row_claim_l, dtype=np.int32),
            tuple(row_feats),
            vocab,
            idf,
            indptr,
            post_rows,
            post_idf,
            post_bm25,
            row_mass,
            unknown_idf,
        )

    def __len__(self) -> int:
        return len(self.claims)

    # ------------------------------------------------------------------ retrieval

    def _query_mass(self, feats: TextFeatures) -> tuple[list[int], float]:
        """Known term ids of a query and its IDF mass.

        Figures do not count; a word the table never uses counts at the highest IDF.
        """
        tids: list[int] = []
        unknown = 0
        vocab = self.vocab
        for word in set(feats.words):
            tid = vocab.get(word)
            if tid is not None:
                tids.append(tid)
            elif not word[:1].isdigit():
                unknown += 1
        tids.sort()
        mass = float(self.word_idf[tids].sum()) if tids else 0.0
        return tids, mass + unknown * self.unknown_idf

    def lexical(
        self, queries: Sequence[TextFeatures], gate: float | None = None
    ) -> tuple[list[float], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Shared IDF mass and claim BM25 for (query, claim text) pairs sharing a term.

        With ``gate``, only pairs whose shared mass is at least that share of the
        claim text's own (figures excluded) are returned. Returns
        ``(query_masses, q, rows, shared, bm25)``; ``q``/``rows`` index the pairs,
        sorted by query then row.
        """
        n_rows = len(self.row_features)
        nq = len(queries)
        term_ids: list[int] = []
        owners: list[int] = []
        masses: list[float] = []
        for qi, feats in enumerate(queries):
            tids, mass = self._query_mass(feats)
            term_ids.extend(tids)
            owners.extend([qi] * len(tids))
            masses.append(mass)
        empty_i = np.zeros(0, dtype=np.int64)
        empty_f = np.zeros(0, dtype=np.float64)
        if not term_ids or n_rows == 0:
            return masses, empty_i, empty_i, empty_f, empty_f
        t = np.asarray(term_ids, dtype=np.int64)
        starts = self.indptr[t]
        lens = self.indptr[t + 1] - starts
        total = int(lens.sum())
        if total == 0:
            return masses, empty_i, empty_i, empty_f, empty_f
        # gather every posting of every query term in one go
        offsets = np.cumsum(lens) - lens
        idx = np.arange(total, dtype=np.int64) + np.repeat(starts - offsets, lens)
        owner = np.repeat(np.asarray(owners, dtype=np.int64), lens)
        post_rows = self.post_rows[idx]
        key = owner * n_rows + post_rows
        shared = np.bincount(key, weights=self.post_idf[idx], minlength=nq * n_rows)
        if gate is None:
            nz = np.flatnonzero(shared)
        else:
            # shared >= gate * mass, and > 0 (the floor keeps texts of figures only)
            nz = np.flatnonzero(
                shared.reshape(nq, n_rows) >= np.maximum(gate * self.row_mass, 1e-12)
            )
        if len(nz) == 0:
            return masses, empty_i, empty_i, empty_f, empty_f
        q, rows = np.divmod(nz, n_rows)
        # claim BM25 = sum of the split postings of all its texts
        n_claims = len(self.claims)
        ckey = owner * n_claims + self.row_claim[post_rows]
        bm25 = np.bincount(ckey, weights=self.post_bm25[idx], minlength=nq * n_claims)
        return masses, q, rows, shared[nz], bm25[q * n_claims + self.row_claim[rows]]


# --------------------------------------------------------------------------- scoring


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
    n = len(rows)
    feats = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return feats
    mass = index.row_mass[rows]
    q_mass = np.asarray(masses, dtype=np.float64)[q]
    feats[:, 0] = np.divide(shared, mass, out=np.zeros(n), where=mass > 0)
    feats[:, 1] = np.divide(shared, q_mass, out=np.zeros(n), where=q_mass > 0)
    feats[:, 2] = _bm25_feature(index, rows, bm25)
    rows_l = rows.tolist()
    q_l = q.tolist()
    query_words = {qi: _fuzzy_words(queries[qi]) for qi in dict.fromkeys(q_l)}
    words = [query_words[qi] for qi in q_l]
    choices_w = [index.row_words[r] for r in rows_l]
    feats[:, 3] = _fuzzy(fuzz.token_set_ratio, words, choices_w) / 100.0
    feats[:, 4] = _fuzzy(fuzz.token_sort_ratio, words, choices_w) / 100.0
    feats[:, 5] = _fuzzy(fuzz.ratio, [queries[qi].masked for qi in q_l],
                         [index.row_masked[r] for r in rows_l]) / 100.0
    last = -1
    q_figures: frozenset[str] = frozenset()
    q_words: frozenset[str] = frozenset()
    for i, (qi, r) in enumerate(zip(q_l, rows_l, strict=True)):
        if qi != last:
            last = qi
            q_figures = _figure_values(queries[qi])
            q_words = frozenset(queries[qi].words)
        c_figures = index.row_figure_values[r]
        if c_figures:
            if q_figures:
                feats[i, 6] = 1.0 if q_figures & c_figures else -1.0
            else:
                feats[i, 8] = 1.0
        names = index.row_names[r]
        if names:
            missing = sum(w for name, w in names.items() if name not in q_words)
            feats[i, 7] = missing / index.row_names_total[r]
    return feats


def _other_subject(index: ClaimIndex, query: TextFeatures, row: int) -> bool:
    """The claim text names someone (or something) the sentence never mentions, and
    the sentence names someone else: "Tesla employed ..." vs "Twitter employed ..."."""
    names = index.row_names[row]
    if not names or not (query.names or query.opening_names):
        return False
    q_words = set(query.words)
    if any(name in q_words for name in names):
        return False
    return bool((query.names | query.opening_names) - index.row_word_sets[row])


def _probability(feats: np.ndarray) -> np.ndarray:
    z = feats @ np.asarray(WEIGHTS) + BIAS
    return 1.0 / (1.0 + np.exp(-z))


# --------------------------------------------------------------------------- conflicts


def _salient(numbers: Iterable[Number]) -> tuple[set[str], set[str]]:
    values: set[str] = set()
    years: set[str] = set()
    for n in numbers:
        if n.kind == "year":
            years.add(n.value)
        elif n.kind != "date":
            values.add(n.value)
    return values, years


def numbers_conflict(claim_numbers: Iterable[Number], sentence_numbers: Iterable[Number]) -> bool:
    """Do a sentence's figures contradict a claim's?

    Figures (counts and percentages) conflict when each side has one the other
    lacks: ``25 of 1,600`` vs ``30 of 1,600`` or vs ``30 workers``. A sentence
    that repeats all the claim's figures and adds others does not conflict, nor
    does one that gives only some of them. Years are compared apart and only
    when both sides give some and none agrees.
    """
    c_vals, c_years = _salient(claim_numbers)
    s_vals, s_years = _salient(sentence_numbers)
    if c_vals and s_vals and (c_vals - s_vals) and (s_vals - c_vals):
        # compare like with like: a percentage only contradicts a percentage
        c_pct = {v for v in c_vals if v.endswith("%")}
        s_pct = {v for v in s_vals if v.endswith("%")}
        if (c_pct - s_pct and s_pct - c_pct) or (
            (c_vals - c_pct) - s_vals and (s_vals - s_pct) - c_vals
        ):
            return True
    return bool(c_years and s_years and not (c_years & s_years))


def _claim_numbers(index: ClaimIndex, row: int) -> tuple[Number, ...]:
    """The figures of the claim text at ``row`` (an alias without figures uses the claim's)."""
    numbers = index.row_features[row].numbers
    if not _figures(numbers):
        ci = int(index.row_claim[row])
        numbers = index.row_features[int(np.searchsorted(index.row_claim, ci))].numbers
    return numbers


def _other_figures(
    index: ClaimIndex, row: int, feats: TextFeatures, score: float, conflict_min: float
) -> bool:
    """Figures contradict the claim and the wording is not close enough for a conflict."""
    if not feats.numbers:
        return False  # no figures, nothing to contradict (numbers_conflict says so, slower)
    return score < conflict_min and numbers_conflict(_claim_numbers(index, row), feats.numbers)


# --------------------------------------------------------------------------- API


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
    n_claims = len(index.claims)
    owners = index.row_claim[rows].astype(np.int64)
    pair = q * n_claims + owners
    uniq, first, inverse = np.unique(pair, return_index=True, return_inverse=True)
    uq, uc = np.divmod(uniq, n_claims)
    order = np.lexsort((uc, -bm25[first], uq))  # by query, best BM25 first, then table order
    sorted_q = uq[order]
    starts = np.searchsorted(sorted_q, sorted_q, side="left")
    rank = np.arange(len(order)) - starts
    keep_pair = np.zeros(len(uniq), dtype=bool)
    keep_pair[order[rank < top_k]] = True
    keep = keep_pair[inverse.ravel()]
    return q[keep], rows[keep], shared[keep], bm25[keep]


def _figure_values(features: TextFeatures) -> frozenset[str]:
    """Salient figures: counts and percentages (not years, not days)."""
    return frozenset(n.value for n in features.numbers if n.kind not in ("year", "date"))


def _salient_figures(features: TextFeatures) -> bool:
    return any(n.kind not in ("year", "date") for n in features.numbers)


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
    logit = BIAS + w[0] * cov_claim + w[1] * cov_query + w[2] * _bm25_feature(index, rows, bm25)
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
        + max(w[3], 0.0)
        + max(w[4], 0.0) * sort_max
        + max(w[5], 0.0) * ratio_max
        + np.where(both, max(w[6], -w[6]), 0.0)
        + max(w[7], 0.0)
        + w[8] * figures_missing
    )


def _score_queries(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    top_k: int,
    gate: float | None,
    min_probability: float = 0.0,
) -> list[list[tuple[int, float, bool]]]:
    """For each query, ``[(row, probability, other_subject)]`` of its scored candidates.

    Candidates are the texts sharing at least ``gate`` of their IDF mass with the
    query (any term without a gate), restricted to the ``top_k`` claims with the
    highest BM25; of those, only pairs whose lexical features leave room to
    reach ``min_probability`` are scored with rapidfuzz.
    """
    masses, q, rows, shared, bm25 = index.lexical(queries, gate)
    out: list[list[tuple[int, float, bool]]] = [[] for _ in queries]
    if len(q) == 0:
        return out
    if min_probability > 0.0:
        words_len = np.zeros(len(queries))
        masked_len = np.zeros(len(queries))
        figures = np.zeros(len(queries), dtype=bool)
        for qi in dict.fromkeys(q.tolist()):  # only queries with candidates
            f = queries[qi]
            words_len[qi] = len(_fuzzy_words(f))
            masked_len[qi] = len(f.masked)
            figures[qi] = _salient_figures(f)
        per_pair = (np.asarray(masses)[q], words_len[q], masked_len[q], figures[q])
        bound = _logit_bound(index, per_pair, rows, shared, bm25)
        keep = np.flatnonzero(bound >= math.log(min_probability / (1.0 - min_probability)))
        q, rows, shared, bm25 = q[keep], rows[keep], shared[keep], bm25[keep]
        if len(q) == 0:
            return out
    q, rows, shared, bm25 = _top_claims(index, q, rows, shared, bm25, top_k)
    feats = _feature_matrix(index, queries, masses, q, rows, shared, bm25)
    probs = _probability(feats)
    for qi, row, p in zip(q.tolist(), rows.tolist(), probs.tolist(), strict=True):
        other = _other_subject(index, queries[qi], row)
        out[qi].append((row, p * SUBJECT_PENALTY if other else p, other))
    return out


def _score(p: float) -> float:
    return round(100.0 * p, 2)


def rank_claims(
    text: str, index: ClaimIndex, k: int = 5, *, depth: int = 30
) -> list[tuple[str, float]]:
    """The ``k`` claims that best match one text, as ``(claim_id, score 0..100)``, best first.

    The ``depth`` claims with the highest BM25 are rescored. Used for retrieval
    (a tweet against a table of fact-checked claims: CLEF CheckThat! 2A).
    """
    if len(index) == 0:
        return []
    best: dict[int, float] = {}
    for row, p, _ in _score_queries(index, [analyse(text)], depth, None)[0]:
        ci = int(index.row_claim[row])
        if p > best.get(ci, -1.0):
            best[ci] = p
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:k]
    return [(index.claims[ci].id, _score(p)) for ci, p in ranked]


def _figures(numbers: Iterable[Number]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.value for n in numbers if n.kind != "date"))


def _new_figures(feats: TextFeatures, claim_figures: set[str]) -> bool:
    """The sentence states a figure (not a year or date) that no matched claim has.

    Such a sentence adds a checkable fact to a known claim ("44,000 accounts in
    a week" beside "more suspensions than any other month"): a new-claim candidate.
    """
    return any(n.kind not in ("year", "date") and n.value not in claim_figures
               for n in feats.numbers)


def match_claims(
    sentences: Sequence[str],
    index: ClaimIndex,
    *,
    linked_min: float = DEFAULT_LINKED_MIN,
    suggested_min: float = DEFAULT_SUGGESTED_MIN,
    top_k: int = 5,
    conflict_min: float = DEFAULT_CONFLICT_MIN,
) -> list[ClaimMatch]:
    """Known claims repeated in an article: the best sentence for each claim.

    Each sentence is compared with the texts of the ``top_k`` claims with the
    highest BM25 among those sharing at least ``CANDIDATE_GATE`` of their IDF
    mass with it. Returns one :class:`ClaimMatch` per claim that scores at least
    ``suggested_min`` (``linked`` from ``linked_min``) in some sentence, with its
    best sentence, ordered by score (then sentence, then claim id). A sentence
    linked to one claim is not also a suggestion for another (it may be linked to
    several).
    """
    if len(index) == 0 or not sentences:
        return []
    feats = [analyse(s) for s in sentences]
    # pairs that cannot reach suggested_min are not fuzzy-scored (a tiny margin
    # keeps rounding from dropping a pair that lands exactly on it)
    floor = min(max(suggested_min / 100.0, 0.0), 0.999) * 0.999
    scored = _score_queries(index, feats, top_k, CANDIDATE_GATE, floor)
    best: dict[int, tuple[float, int, int, bool]] = {}  # claim -> (score, sentence, row, other)
    for si, pairs in enumerate(scored):
        pairs = [(row, p, other) for row, p, other in pairs
                 if not _other_figures(index, row, feats[si], _score(p), conflict_min)]
        top = max((_score(p) for _, p, _ in pairs), default=0.0)
        for row, p, other in pairs:
            score = _score(p)
            if score < suggested_min:
                continue
            if score < linked_min <= top and score < top:
                continue  # a sentence that repeats one claim only suggests no other
            ci = int(index.row_claim[row])
            current = best.get(ci)
            if current is None or score > current[0]:
                best[ci] = (score, si, row, other)
    matches: list[ClaimMatch] = []
    for ci, (score, si, row, other) in best.items():
        claim_nums = _claim_numbers(index, row)
        sent_nums = feats[si].numbers
        matches.append(
            ClaimMatch(
                claim_id=index.claims[ci].id,
                sentence=sentences[si],
                sentence_index=si,
                score=score,
                tier="linked" if score >= linked_min else "suggested",
                # a sentence about someone else does not contradict the claim
                conflict=not other and numbers_conflict(claim_nums, sent_nums),
                claim_numbers=_figures(claim_nums),
                article_numbers=_figures(sent_nums),
            )
        )
    matches.sort(key=lambda m: (-m.score, m.sentence_index, m.claim_id))
    return matches


# --------------------------------------------------------------------------- candidates

_ATTRIBUTION = re.compile(
    r"\b(?:said|says|say|told|claimed|claims|claim|stated|states|alleged|alleges|according to|"
    r"reported|reports|announced|revealed|reveal|reveals|estimated|found|showed|shows|confirmed|"
    r"denied|admitted|insisted|argued|wrote|tweeted|posted)\b"
)
_COMPARATIVE = re.compile(
    r"\b(?:more|less|fewer|most|least|higher|lower|largest|biggest|smallest|first|only|"
    r"doubled|tripled|halved|increase[sd]?|decrease[sd]?|rose|fell|cut|reduced|raised|grew|"
    r"dropped|jumped|climbed|surged|plunged|record|best|worst|highest|lowest|greatest|"
    r"fastest|than)\b"
)
_BOILERPLATE = re.compile(
    r"^(?:read (?:also|more)|see also|related|advertisement|subscribe|sign up|follow us|"
    r"click here|share this|copyright|all rights reserved|photo|image|getty|reference|"
    r"source|editor'?s note|this article|updated|published)\b"
)
_QUOTE = re.compile(r"[\"\u201c\u201d]")


def _claimlikeness(sentence: str, feats: TextFeatures) -> float:
    norm = feats.norm
    if _BOILERPLATE.match(norm) or norm.endswith(":"):
        return 0.0
    n_words = len(norm.split())
    if n_words < 6 or n_words > 80 or norm.endswith("?"):
        return 0.0
    score = 0.15
    salient = [n for n in feats.numbers if n.kind != "year"]
    if salient:
        score += 0.35
    if _ATTRIBUTION.search(norm):
        score += 0.3
    if _QUOTE.search(sentence):
        score += 0.1
    if _COMPARATIVE.search(norm):
        score += 0.15
    if len(feats.words) >= 6:
        score += 0.05
    return round(min(score, 1.0), 3)


def find_candidates(
    sentences: Sequence[str],
    matches: Sequence[ClaimMatch],
    *,
    min_score: float = DEFAULT_CANDIDATE_MIN,
    index: ClaimIndex | None = None,
    suggested_min: float = DEFAULT_SUGGESTED_MIN,
    conflict_min: float = DEFAULT_CONFLICT_MIN,
) -> list[Candidate]:
    """Sentences that look like checkable claims and match no known claim.

    Claim-like means: a figure, an attribution ("said", "according to",
    "claimed"), a quotation or a comparative, in a sentence of ordinary length
    that is neither a heading nor boilerplate ("Read also: ..."). Sentences in
    ``matches`` are left out unless they state a figure the matched claims lack;
    with ``index``, so is every sentence that scores ``suggested_min`` with a
    known claim (``match_claims`` reports one sentence per claim, a second
    sentence repeating it is not new either), with the same exception.
    """
    known_figures: dict[int, set[str]] = {}
    conflicting = {m.sentence_index for m in matches if m.conflict}  # flagged as conflicts
    for m in matches:
        known_figures.setdefault(m.sentence_index, set()).update(m.claim_numbers)
    found: list[tuple[int, TextFeatures, float]] = []
    for si, sentence in enumerate(sentences):
        if si in conflicting:
            continue
        feats = analyse(sentence)
        if si in known_figures and not _new_figures(feats, known_figures[si]):
            continue
        score = _claimlikeness(sentence, feats)
        if score >= min_score:
            found.append((si, feats, score))
    if index is not None and len(index) and found:
        floor = min(max(suggested_min / 100.0, 0.0), 0.999) * 0.999
        scored = _score_queries(index, [f for _, f, _ in found], 5, CANDIDATE_GATE, floor)
        found = [
            item
            for item, pairs in zip(found, scored, strict=True)
            if not any(
                _score(p) >= suggested_min
                and not _other_figures(index, row, item[1], _score(p), conflict_min)
                and not _new_figures(item[1], set(_figures(_claim_numbers(index, row))))
                for row, p, _ in pairs
            )
        ]
    return [Candidate(sentences[si], si, round(score, 3)) for si, _, score in found]
