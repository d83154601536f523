"""Claim matching core: which known claims does a sentence repeat, and with which figures.

Pure and typed; knows nothing of Scrapy or databases. Two stages:

1. **Candidate selection** with an inverted index (CSR arrays) over normalised,
   stemmed content words and normalised figures of every claim text (the claim
   and its aliases), for all sentences of an article at once: the IDF mass each
   sentence shares with each claim text, and each claim's BM25. Exact, but
   summed only where it can matter: a first pass over the postings of the
   article's distinct terms bounds what any one sentence shares with each text,
   and only texts whose bound reaches ``CANDIDATE_GATE`` of their mass are
   summed per sentence (then BM25 only for the pairs that pass the gate). Of
   those, only texts of the ``top_k`` claims with the highest BM25 whose lexical
   features leave room to reach ``suggested_min`` go on. The cost grows with the
   posting lists touched, not with every claim in the table; the sums are the
   same to the bit as one plain sum over every posting.
2. **Scoring** of those candidates with rapidfuzz (``token_set_ratio`` and
   ``token_sort_ratio`` on content words, ``ratio`` on the normalised text, all
   with figures masked so that a changed figure does not sink the text score)
   and a logistic model over lexical, fuzzy, figure and name features, fitted on
   CLEF CheckThat! 2022 task 2A train (``benchmarks/quality_claims.py --tune``),
   into one 0..100 score. The features are computed cheapest first, and a pair
   that can no longer reach ``suggested_min`` gets no more of them.

The index is compact (numpy arrays, and two strings per claim text for the fuzzy
scorers): about 15 MB for 10,000 claims with one alias each, built in well under
a second, in every worker process.

Matches at or above ``linked_min`` are ``linked``; at or above ``suggested_min``
they are ``suggested``. A match whose salient figures differ from the claim's is
flagged ``conflict`` with both sets of figures (:func:`numbers_conflict`).
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any, overload

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
    return features.fuzzy_words


class _RowFeatures(Sequence[TextFeatures]):
    """The analysed texts of an index, one per row, re-derived on demand.

    The index keeps compact arrays and strings, not one :class:`TextFeatures`
    per claim text; this view serves the rare caller that wants them all
    (``analyse`` is memoised).
    """

    def __init__(self, texts: tuple[str, ...]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, i: int) -> TextFeatures: ...

    @overload
    def __getitem__(self, i: slice) -> list[TextFeatures]: ...

    def __getitem__(self, i: int | slice) -> TextFeatures | list[TextFeatures]:
        if isinstance(i, slice):
            return [analyse(t) for t in self._texts[i]]
        return analyse(self._texts[i])


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lens)])``, vectorised."""
    total = int(lens.sum())
    offsets = lens.cumsum() - lens
    return np.arange(total, dtype=np.int64) + (starts - offsets).repeat(lens)


_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float64)
_NO_FIGURES: frozenset[str] = frozenset()
# Largest (queries x candidate texts) block summed at once in retrieval, in cells
# (8 bytes each): a long article is matched in chunks of sentences, so memory
# stays bounded whatever the table size.
_BLOCK_CELLS = 1 << 20
_BLOCK_QUERIES = 40


class ClaimIndex:
    """Inverted index over the texts (claim text and aliases) of a claims table.

    Build it once per crawl with :meth:`build`; it is immutable afterwards and
    safe to share between threads. Compact: CSR postings in numpy arrays, two
    strings per claim text for the fuzzy scorers, figures and names only for the
    texts that have some (about 15 MB for 10,000 claims with one alias each).
    """

    def __init__(
        self,
        claims: tuple[Claim, ...],
        row_claim: np.ndarray,
        row_texts: tuple[str, ...],
        row_words: tuple[str, ...],
        row_masked: tuple[str, ...],
        row_numbers: dict[int, tuple[Number, ...]],
        row_name_words: dict[int, frozenset[str]],
        vocab: dict[str, int],
        idf: np.ndarray,
        indptr: np.ndarray,
        post_rows: np.ndarray,
        post_bm25: np.ndarray,
        row_mass: np.ndarray,
        unknown_idf: float,
    ) -> None:
        self.claims = claims
        self.row_claim = row_claim
        self.row_texts = row_texts
        self.n_rows = len(row_texts)
        self.row_words = row_words  # content words, figures masked
        self.row_masked = row_masked  # normalised text, figures masked
        self.row_numbers = row_numbers  # row -> its figures (rows with figures only)
        self.vocab = vocab
        self.idf = idf
        is_word = np.array([not _is_figure(w) for w in vocab], dtype=bool)
        self.word_idf = np.where(is_word, idf, 0.0)
        # postings by term (CSR: indptr), then by text: the texts of each term
        self.indptr = indptr
        self.post_rows = post_rows.astype(np.int32)
        # what a shared term adds to a pair's shared mass: its IDF; a figure a tiny
        # weight (figures are compared apart, but a shared one marks the pair)
        self.term_weight = np.where(is_word, idf, 1e-9)
        # the same postings by claim, then term, then text, with their BM25 weight
        # (split between the texts of the claim holding the term): the terms of
        # each claim (CSR: claim_ptr), to sum a claim's BM25 for a few queries
        post_term = np.repeat(np.arange(len(vocab), dtype=np.int32), np.diff(indptr))
        post_claim = row_claim[post_rows]
        # for a query or two, or every pair sharing a term (no gate), a plain sum
        # over the postings is cheaper: by term, the claim and BM25 weight too
        self.post_claim = post_claim
        self.post_bm25 = post_bm25
        by_claim = np.lexsort((post_rows, post_term, post_claim))
        self.claim_terms = post_term[by_claim]
        self.claim_bm25 = post_bm25[by_claim]
        self.claim_ptr = np.zeros(len(claims) + 1, dtype=np.int64)
        np.cumsum(np.bincount(post_claim, minlength=len(claims)), out=self.claim_ptr[1:])
        self.row_mass = row_mass
        self.unknown_idf = unknown_idf
        self.row_words_len = np.array([len(w) for w in row_words], dtype=np.float64)
        self.row_masked_len = np.array([len(m) for m in row_masked], dtype=np.float64)
        # texts with salient figures (counts, percentages)
        self.row_figures = np.zeros(self.n_rows, dtype=bool)
        self.row_figures[[row for row, nums in row_numbers.items() if _figure_values(nums)]] = True
        # names of a claim text (capitalised words that are not plain sentence
        # openers), only for texts naming someone or something, and their IDF mass
        self.row_names: dict[int, tuple[str, ...]] = {
            row: tuple(names) for row, names in row_name_words.items()
        }
        self.row_names_total = np.zeros(self.n_rows, dtype=np.float64)
        for row, names in self.row_names.items():
            self.row_names_total[row] = max(sum(map(self.name_idf, names)), 1e-12)
        # the first text of each claim (its own text, before the aliases)
        self.claim_first_row = np.searchsorted(row_claim, np.arange(len(claims)))
        self._gate_min: dict[float | None, np.ndarray] = {}

    def name_idf(self, name: str) -> float:
        """The IDF of a name (a word the table never uses: the highest)."""
        tid = self.vocab.get(name)
        return self.unknown_idf if tid is None else float(self.idf[tid])

    @property
    def row_features(self) -> Sequence[TextFeatures]:
        """The analysed claim texts, one per row (computed on demand)."""
        return _RowFeatures(self.row_texts)

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
        row_texts: list[str] = []
        row_words: list[str] = []
        row_masked: list[str] = []
        row_numbers: dict[int, tuple[Number, ...]] = {}
        row_names: dict[int, frozenset[str]] = {}
        # one entry per (text, distinct term), in text order, terms in order of
        # first occurrence (compact arrays: 10,000 claims give ~170,000)
        flat_row = array("q")
        flat_tid = array("q")
        flat_tf = array("q")
        vocab: dict[str, int] = {}
        # the claim texts are analysed once, not memoised (that cache is for articles)
        analyse_text = analyse.__wrapped__
        for ci, claim in enumerate(claims_t):
            for text in claim.texts:
                if not (text and text.strip()):
                    continue
                row = len(row_texts)
                feats = analyse_text(text)
                row_claim_l.append(ci)
                row_texts.append(text)
                row_words.append(_fuzzy_words(feats))
                row_masked.append(feats.masked)
                if feats.numbers:
                    row_numbers[row] = feats.numbers
                names = feats.names | feats.opening_names
                if names:
                    row_names[row] = names
                tf: dict[int, int] = {}
                for word in feats.words:
                    tid = vocab.setdefault(word, len(vocab))
                    tf[tid] = tf.get(tid, 0) + 1
                flat_row.extend(repeat(row, len(tf)))
                flat_tid.extend(tf)
                flat_tf.extend(tf.values())
        n_rows = len(row_texts)
        n_terms = len(vocab)
        n_claims = len(claims_t)
        row_claim = np.asarray(row_claim_l, dtype=np.int32)
        e_row = np.frombuffer(flat_row, dtype=np.int64)
        e_tid = np.frombuffer(flat_tid, dtype=np.int64)
        e_tf = np.frombuffer(flat_tf, dtype=np.int64).astype(np.float64)
        # BM25 is computed per claim (all its texts as one document: the claim and
        # its aliases or title describe one thing); coverage per text (a sentence
        # repeating one alias fully covers that alias).
        # (the temporaries are dropped as soon as done with: this runs in every
        # worker, and a high peak would stay in its resident memory)
        ckey = row_claim[e_row].astype(np.int64) * max(n_terms, 1) + e_tid
        ukey, inverse, holders = np.unique(ckey, return_inverse=True, return_counts=True)
        del ckey
        inverse = inverse.ravel()
        c_claim, c_tid = np.divmod(ukey, max(n_terms, 1))
        del ukey
        c_tf = np.bincount(inverse, weights=e_tf, minlength=len(c_claim))  # tf in the claim
        del e_tf, flat_tf
        df = np.bincount(c_tid, minlength=n_terms).astype(np.float64)  # claims with the term
        n_docs = float(n_claims) + IDF_BACKGROUND
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        unknown_idf = math.log1p((n_docs + 0.5) / 0.5)
        claim_len = np.bincount(c_claim, weights=c_tf, minlength=n_claims)
        avgdl = float(claim_len.mean()) if n_claims else 1.0
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * claim_len / avgdl)
        c_bm25 = idf[c_tid] * c_tf * (BM25_K1 + 1.0) / (c_tf + norm[c_claim])
        del c_tf, c_claim, c_tid
        # rows of a claim sharing a term split its BM25 weight, so summing postings
        # by claim gives the claim's BM25 and summing by row gives the shared mass
        e_bm25 = c_bm25[inverse] / holders[inverse]
        del c_bm25, inverse, holders
        # figures do not count in the coverage features (they are checked apart)
        is_figure = np.array([_is_figure(w) for w in vocab], dtype=bool)
        row_mass = np.bincount(e_row, weights=np.where(is_figure[e_tid], 0.0, idf[e_tid]),
                               minlength=n_rows)
        order = np.argsort(e_tid, kind="stable")  # postings by term, then by row
        post_rows = e_row[order]
        post_bm25 = e_bm25[order]
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(e_tid, minlength=n_terms), out=indptr[1:])
        del order, e_bm25, e_row, e_tid, flat_row, flat_tid
        return cls(
            claims_t,
            row_claim,
            tuple(row_texts),
            tuple(row_words),
            tuple(row_masked),
            row_numbers,
            row_names,
            vocab,
            idf,
            indptr,
            post_rows,
            post_bm25,
            row_mass,
            unknown_idf,
        )

    def __len__(self) -> int:
        return len(self.claims)

    # ------------------------------------------------------------------ retrieval

    def _query_terms(
        self, queries: Sequence[TextFeatures]
    ) -> tuple[list[float], np.ndarray, np.ndarray]:
        """IDF masses of the queries, and their distinct known terms.

        Returns ``(masses, term_ids, owner)``: each query's term ids, sorted, in
        query order (``owner`` says whose). Figures do not count in a mass; a word
        the table never uses counts at the highest IDF.
        """
        get = self.vocab.get
        nq = len(queries)
        words = [w for f in queries for w in f.words]
        ids = np.array([get(w, -1) for w in words], dtype=np.int64)
        owners = np.repeat(np.arange(nq, dtype=np.int64), [len(f.words) for f in queries])
        n_terms = max(len(self.vocab), 1)
        known = (ids >= 0).nonzero()[0]
        key = owners[known] * n_terms + ids[known]
        key.sort()
        distinct = np.empty(len(key), dtype=bool)
        distinct[:1] = True
        np.not_equal(key[1:], key[:-1], out=distinct[1:])
        owner, term_ids = np.divmod(key[distinct], n_terms)
        masses = np.bincount(owner, weights=self.word_idf.take(term_ids),
                             minlength=nq)  # summed in term order
        if len(known) < len(ids):  # words the table never uses, each once per query
            unknown: set[tuple[int, str]] = set()
            for i in (ids < 0).nonzero()[0].tolist():
                if not words[i][:1].isdigit():
                    unknown.add((int(owners[i]), words[i]))
            if unknown:
                count = np.bincount([qi for qi, _ in unknown], minlength=nq)
                masses = masses + count * self.unknown_idf
        return masses.tolist(), term_ids, owner

    def _min_shared(self, gate: float | None) -> np.ndarray:
        """Per text, the shared mass a pair needs: ``gate`` of its own (at least 1e-12)."""
        found = self._gate_min.get(gate)
        if found is None:
            if gate is None:
                found = np.full(self.n_rows, np.finfo(np.float64).tiny)  # any shared term
            else:
                found = np.maximum(gate * self.row_mass, 1e-12)
            self._gate_min[gate] = found
        return found

    def lexical(
        self, queries: Sequence[TextFeatures], gate: float | None = None
    ) -> tuple[list[float], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Shared IDF mass and claim BM25 for (query, claim text) pairs sharing a term.

        With ``gate``, only pairs whose shared mass is at least that share of the
        claim text's own (figures excluded) are returned. Returns
        ``(query_masses, q, rows, shared, bm25)``; ``q``/``rows`` index the pairs,
        sorted by query then row.
        """
        masses, term_ids, owners = self._query_terms(queries)
        if len(term_ids) == 0 or self.n_rows == 0:
            return masses, _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        need = self._min_shared(gate)
        step = max(1, min(_BLOCK_QUERIES, _BLOCK_CELLS // self.n_rows))
        bounds = owners.searchsorted(np.arange(0, len(queries) + step, step))
        parts = []
        for q0 in range(0, len(queries), step):
            a, b = bounds[q0 // step], bounds[q0 // step + 1]
            if a == b:
                continue
            nb = min(step, len(queries) - q0)
            block = self._lexical_direct if gate is None or nb <= 2 else self._lexical_block
            q, rows, shared, bm25 = block(term_ids[a:b], owners[a:b] - q0, nb, need)
            parts.append((q + q0, rows, shared, bm25))
        if not parts:
            return masses, _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        if len(parts) == 1:
            return (masses, *parts[0])
        q, rows, shared, bm25 = (np.concatenate(x) for x in zip(*parts, strict=True))
        return masses, q, rows, shared, bm25

    def _lexical_direct(
        self, t: np.ndarray, owner: np.ndarray, nq: int, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`lexical` for a few queries: one sum over all their postings."""
        start = self.indptr.take(t)
        length = self.indptr.take(t + 1) - start
        idx = _ranges(start, length)
        post_rows = self.post_rows.take(idx)
        key = (owner * self.n_rows).repeat(length)
        key += post_rows
        shared = np.bincount(key, weights=self.term_weight.take(t).repeat(length),
                             minlength=nq * self.n_rows)
        nz = (shared.reshape(nq, self.n_rows) >= need).ravel().nonzero()[0]
        if len(nz) == 0:
            return _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        q, rows = np.divmod(nz, self.n_rows)
        # claim BM25 = sum of the split postings of all its texts
        n_claims = len(self.claims)
        key = (owner * n_claims).repeat(length)
        key += self.post_claim.take(idx)
        bm25 = np.bincount(key, weights=self.post_bm25.take(idx), minlength=nq * n_claims)
        return q, rows, shared.take(nz), bm25.take(q * n_claims + self.row_claim.take(rows))

    def _lexical_block(
        self, t: np.ndarray, owner: np.ndarray, nq: int, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`lexical` for a block of queries: term ids ``t`` of query ``owner``.

        Exact, but it sums per query only what can pass: first the mass each text
        shares with all the block's terms together (one pass over the postings of
        its distinct terms), a bound of what it shares with any one query; only
        the texts whose bound reaches ``need``, and the other texts of their
        claims (for BM25), are summed per query. Sums are taken in the order a
        plain sum over every posting would take them (by query, term, text), so
        they are the same to the bit.
        """
        # the block's distinct terms and their postings
        ts = t.copy()
        ts.sort()
        distinct = np.empty(len(ts), dtype=bool)
        distinct[0] = True
        np.not_equal(ts[1:], ts[:-1], out=distinct[1:])
        uniq = ts[distinct]
        u_start = self.indptr.take(uniq)
        u_len = self.indptr.take(uniq + 1) - u_start
        u_idx = _ranges(u_start, u_len)
        u_rows = self.post_rows.take(u_idx)
        # positive weights summed in the same term order: bound >= each query's sum
        u_w = self.term_weight.take(uniq).repeat(u_len)
        bound = np.bincount(u_rows, weights=u_w, minlength=self.n_rows)
        passing = (bound >= need).nonzero()[0]
        n_pass = len(passing)
        if n_pass == 0:
            return _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        # the distinct terms' postings among the passing texts, still by term, text
        row_local = np.full(self.n_rows, -1, dtype=np.int64)
        row_local[passing] = np.arange(n_pass)
        u_loc = row_local.take(u_rows)
        kept = (u_loc >= 0).nonzero()[0]
        k_loc = u_loc.take(kept)
        k_ptr = np.zeros(len(uniq) + 1, dtype=np.int64)
        k_ptr[1:] = kept.searchsorted(u_len.cumsum())
        # every query's postings among them: the mass it shares with each text
        pos = uniq.searchsorted(t)
        p_start = k_ptr.take(pos)
        p_len = k_ptr.take(pos + 1) - p_start
        g = _ranges(p_start, p_len)
        key = (owner * n_pass).repeat(p_len)
        key += k_loc.take(g)
        shared = np.bincount(key, weights=self.term_weight.take(t).repeat(p_len),
                             minlength=nq * n_pass)
        nz = (shared.reshape(nq, n_pass) >= need.take(passing)).ravel().nonzero()[0]
        if len(nz) == 0:
            return _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        q, loc = np.divmod(nz, n_pass)
        rows = passing.take(loc)
        return q, rows, shared.take(nz), self._claim_bm25(q, rows, uniq, pos, owner, nq)

    def _claim_bm25(
        self,
        q: np.ndarray,
        rows: np.ndarray,
        uniq: np.ndarray,
        pos: np.ndarray,
        owner: np.ndarray,
        nq: int,
    ) -> np.ndarray:
        """BM25 of each pair's claim for its query (pairs sorted by query, then text).

        The sum of the split postings of every text of the claim for the terms of
        the query (``owner``'s terms are ``uniq[pos]``), taken by term, then text:
        in the order a sum over every posting takes them.
        """
        n_uniq = len(uniq)
        # which of the block's distinct terms each query has (column n_uniq: none)
        has = np.zeros((nq, n_uniq + 1), dtype=bool)
        has[owner, pos] = True
        local = np.full(len(self.vocab), n_uniq, dtype=np.int64)
        local[uniq] = np.arange(n_uniq)
        # each (query, claim) once: the pairs of a claim's texts are neighbours
        claims = self.row_claim.take(rows)
        new = np.empty(len(rows), dtype=bool)
        new[0] = True
        np.logical_or(q[1:] != q[:-1], claims[1:] != claims[:-1], out=new[1:])
        first = new.nonzero()[0]
        c_start = self.claim_ptr.take(claims.take(first))
        c_len = self.claim_ptr.take(claims.take(first) + 1) - c_start
        e = _ranges(c_start, c_len)
        cell = (q.take(first) * (n_uniq + 1)).repeat(c_len)
        cell += local.take(self.claim_terms.take(e))
        hit = has.take(cell).nonzero()[0]
        pair = np.arange(len(first)).repeat(c_len)
        bm25 = np.bincount(pair.take(hit), weights=self.claim_bm25.take(e.take(hit)),
                           minlength=len(first))
        return bm25.take(new.cumsum() - 1)


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
    feats = _exact_features(index, queries, masses, q, rows, shared, bm25)
    if len(rows):
        everything = np.arange(len(rows))
        for column in _FUZZY_COLUMNS:
            _fuzzy_feature(index, queries, q, rows, feats, column, everything)
    return feats


# The fuzzy features, cheapest scorer first: (column, scorer, on masked text?).
_FUZZY_COLUMNS = (5, 4, 3)
_SCORERS: dict[int, tuple[Any, bool]] = {
    3: (fuzz.token_set_ratio, False),
    4: (fuzz.token_sort_ratio, False),
    5: (fuzz.ratio, True),
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
        right = [index.row_masked[r] for r in rows_l]
    else:
        left = [queries[qi].fuzzy_words for qi in q_l]
        right = [index.row_words[r] for r in rows_l]
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
    """The feature matrix with every feature but the fuzzy ones (columns 3-5, zero)."""
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
) -> np.ndarray:
    """The feature matrix with the lexical features and figures_missing filled in."""
    n = len(rows)
    feats = np.zeros((n, len(FEATURES)), dtype=np.float64)
    if n == 0:
        return feats
    mass = index.row_mass[rows]
    q_mass = np.asarray(masses, dtype=np.float64)[q]
    feats[:, 0] = np.divide(shared, mass, out=np.zeros(n), where=mass > 0)
    feats[:, 1] = np.divide(shared, q_mass, out=np.zeros(n), where=q_mass > 0)
    feats[:, 2] = _bm25_feature(index, rows, bm25)
    q_figures = np.array([_salient_figures(queries[qi]) for qi in q.tolist()], dtype=bool)
    feats[:, 8] = index.row_figures[rows] & ~q_figures
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
            feats[i, 6] = 1.0 if q_figures & c_figures else -1.0
        if names:
            missing = sum(index.name_idf(name) for name in names if name not in q_words)
            feats[i, 7] = missing / index.row_names_total[r]


def _pruned_feature_matrix(
    index: ClaimIndex,
    queries: Sequence[TextFeatures],
    masses: Sequence[float],
    q: np.ndarray,
    rows: np.ndarray,
    shared: np.ndarray,
    bm25: np.ndarray,
    floor: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_feature_matrix` rows of the pairs whose logit can reach ``floor``.

    Returns ``(positions of those pairs, their feature rows)``.

    The features are computed cheapest first (lexical, ``ratio``, figures and
    names, ``token_sort_ratio``, ``token_set_ratio``), each for the pairs still
    able to reach ``floor`` given the features known so far and the most the
    others can add (an Indel ratio is at most ``2 * min(len) / (len_a + len_b)``);
    the pairs kept get exactly the features :func:`_feature_matrix` gives them.
    """
    feats = _lexical_features(index, queries, masses, q, rows, shared, bm25)
    n = len(rows)
    w = WEIGHTS
    known = BIAS + (w[0] * feats[:, 0] + w[1] * feats[:, 1] + w[2] * feats[:, 2]
                    + w[8] * feats[:, 8])
    words_len = np.array([queries[qi].fuzzy_length for qi in q.tolist()], dtype=np.float64)
    masked_len = np.array([len(queries[qi].masked) for qi in q.tolist()], dtype=np.float64)
    r_words = index.row_words_len[rows]
    r_masked = index.row_masked_len[rows]
    both_figures = index.row_figures[rows] & (feats[:, 8] == 0)
    has_names = np.array([r in index.row_names for r in rows.tolist()], dtype=bool)
    most = {  # the most each feature not yet known can add to the logit
        3: np.full(n, max(w[3], 0.0)),
        4: np.maximum(w[4] * 2.0 * np.minimum(words_len, r_words)
                      / np.maximum(words_len + r_words, 1), 0.0),
        5: np.maximum(w[5] * 2.0 * np.minimum(masked_len, r_masked)
                      / np.maximum(masked_len + r_masked, 1), 0.0),
        6: np.where(both_figures, max(w[6], -w[6]), 0.0),
        7: np.where(has_names, max(w[7], 0.0), 0.0),
    }
    upper = known + most[3] + most[4] + most[5] + most[6] + most[7]
    floor -= 1e-9  # rounding: never drop a pair that reaches floor
    alive = np.arange(n)
    for columns in ((5,), (6, 7), (4,), (3,)):  # cheapest first
        alive = alive[upper[alive] >= floor]
        if columns == (6, 7):
            _figure_name_features(index, queries, q, rows, feats, alive)
        else:
            _fuzzy_feature(index, queries, q, rows, feats, columns[0], alive)
        for c in columns:  # now known: its value replaces its most
            upper[alive] += w[c] * feats[alive, c] - most[c][alive]
    return alive, feats[alive]


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
    numbers = index.row_numbers.get(row, ())
    if not _figures(numbers):
        first = int(index.claim_first_row[index.row_claim[row]])
        numbers = index.row_numbers.get(first, ())
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


def _figure_values(numbers: Iterable[Number]) -> frozenset[str]:
    """Salient figures: counts and percentages (not years, not days)."""
    return frozenset(n.value for n in numbers if n.kind not in ("year", "date"))


def _most_other() -> float:
    """The most the features after the three lexical ones can add to a logit."""
    w = WEIGHTS
    return (max(w[3], 0.0) + max(w[4], 0.0) + max(w[5], 0.0) + max(w[6], -w[6])
            + max(w[7], 0.0) + max(w[8], 0.0))


def _salient_figures(features: TextFeatures) -> bool:
    numbers = features.numbers
    return bool(numbers) and any(n.kind not in ("year", "date") for n in numbers)


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
    reach ``min_probability`` are scored with rapidfuzz, and pairs found unable
    to reach it are left out (they could be no match anyway).
    """
    masses, q, rows, shared, bm25 = index.lexical(queries, gate)
    out: list[list[tuple[int, float, bool]]] = [[] for _ in queries]
    if len(q) == 0:
        return out
    if min_probability > 0.0:
        floor = math.log(min_probability / (1.0 - min_probability))
        q_mass = np.asarray(masses).take(q)
        # a first, looser bound (the lexical features and every other feature at
        # its most) spares the exact one most pairs
        mass = index.row_mass[rows]
        w = WEIGHTS
        loose = (BIAS + _most_other()
                 + w[0] * np.divide(shared, mass, out=np.ones(len(q)), where=mass > 0)
                 + w[1] * np.divide(shared, q_mass, out=np.zeros(len(q)), where=q_mass > 0)
                 + w[2] * _bm25_feature(index, rows, bm25))
        keep = (loose >= floor - 1e-9).nonzero()[0]  # rounding: never drop one too many
        q, rows, shared, bm25, q_mass = q[keep], rows[keep], shared[keep], bm25[keep], q_mass[keep]
        words_len = np.array([f.fuzzy_length for f in queries], dtype=np.float64)
        masked_len = np.array([len(f.masked) for f in queries], dtype=np.float64)
        figures = np.array([_salient_figures(f) for f in queries], dtype=bool)
        per_pair = (q_mass, words_len[q], masked_len[q], figures[q])
        bound = _logit_bound(index, per_pair, rows, shared, bm25)
        keep = (bound >= floor).nonzero()[0]
        q, rows, shared, bm25 = q[keep], rows[keep], shared[keep], bm25[keep]
        if len(q) == 0:
            return out
    q, rows, shared, bm25 = _top_claims(index, q, rows, shared, bm25, top_k)
    if min_probability > 0.0:
        floor = math.log(min_probability / (1.0 - min_probability))
        kept, feats = _pruned_feature_matrix(index, queries, masses, q, rows, shared, bm25, floor)
        q, rows = q[kept], rows[kept]
    else:
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
        # pairs under suggested_min are no match, nor can they be the linked top one
        pairs = [(row, score, other) for row, score, other in
                 ((row, _score(p), other) for row, p, other in pairs)
                 if score >= suggested_min
                 and not _other_figures(index, row, feats[si], score, conflict_min)]
        if not pairs:
            continue
        top = max(score for _, score, _ in pairs)
        for row, score, other in pairs:
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
