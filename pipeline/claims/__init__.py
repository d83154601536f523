"""Claim matching core: which known claims does a sentence repeat, and with which figures.

A package whose modules name their jobs: ``index`` (inverted index and
retrieval), ``scoring`` (named features and the model), ``figures`` (figures and
conflicts), ``matching`` (one best sentence per claim), ``candidates`` (new-claim
candidates).

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

from pipeline.claims.candidates import Candidate, find_candidates
from pipeline.claims.context import ArticleContext
from pipeline.claims.figures import numbers_conflict
from pipeline.claims.index import ClaimIndex
from pipeline.claims.matching import ClaimMatch, match_claims
from pipeline.claims.scoring import (
    DEFAULT_CANDIDATE_MIN,
    DEFAULT_CONFLICT_MIN,
    DEFAULT_LINKED_MIN,
    DEFAULT_SUGGESTED_MIN,
    rank_claims,
)

__all__ = [
    "ArticleContext",
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
