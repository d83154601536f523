"""The compiled posting sums (pipeline/claims/_postings.c) against the numpy reference.

Retrieval sums each query's postings in C when the extension is built (``make
install`` builds it); the numpy blocks of :class:`ClaimIndex` stay as the reference.
Both must give the same pairs and the same sums to the bit, and so the same matches.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from config.models import Claim
from pipeline.claims import ClaimIndex, match_claims, rank_claims, scoring
from pipeline.claims import index as index_module
from pipeline.claims.context import ArticleContext
from pipeline.text import analyse, split_sentences


@pytest.fixture(scope="module")
def clef(shared_data: Path) -> tuple[ClaimIndex, list[str]]:
    """The CLEF 2022 2A claims table (14,231 claims, their titles as aliases: ~28,000
    texts, several tiles of the C sums) and 80 dev tweets."""
    root = shared_data / "clef2022-checkthat-task2a-en"
    if not (root / "vclaims.jsonl.gz").is_file():
        pytest.skip(f"CLEF 2022 2A data not found under {root}")
    with gzip.open(root / "vclaims.jsonl.gz", "rt", encoding="utf-8") as fh:
        vclaims = [json.loads(line) for line in fh]
    with open(root / "CT2022-Task2A-EN-Train-Dev_Queries.tsv", encoding="utf-8") as fh:
        tweets = [line.rstrip("\n").partition("\t")[2] for line in fh][1:81]
    index = ClaimIndex.build(
        (Claim(v["vclaim_id"], v["vclaim"], aliases=(v["title"],) if v.get("title") else ())
         for v in vclaims), embeddings=False)
    return index, tweets


@pytest.fixture(scope="module")
def article(shared_data: Path) -> list[str]:
    path = shared_data.parent / "seed" / "musk-twitter-child-safety.txt"
    if not path.is_file():
        pytest.skip(f"seed article not found at {path}")
    return [s for s in split_sentences(path.read_text(encoding="utf-8")) if len(s.split()) > 4]


def _both(index: ClaimIndex, fn):  # type: ignore[no-untyped-def]
    """``fn()`` with the compiled sums, then with the numpy ones."""
    assert index.compiled
    compiled = fn()
    index.compiled = False
    try:
        return compiled, fn()
    finally:
        index.compiled = True


def _same_arrays(a: tuple, b: tuple) -> None:  # type: ignore[type-arg]
    assert a[0] == b[0]  # the query masses
    for x, y in zip(a[1:], b[1:], strict=True):
        assert x.dtype == y.dtype and x.tolist() == y.tolist()  # to the bit


def test_the_compiled_sums_are_built_and_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make install` builds the extension, and retrieval (so match_claims, the crawl's
    workers and rematch) goes through it."""
    assert index_module._postings is not None, "pipeline.claims._postings is not built"
    calls: list[int] = []
    real = index_module._postings.gated_pairs

    def counted(*args: object) -> object:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(index_module._postings, "gated_pairs", counted)
    index = ClaimIndex.build([Claim("a", "Twitter dissolved its Trust and Safety Council."),
                              Claim("b", "Musk bought Twitter for $44 billion.")],
                             embeddings=False)
    matches = match_claims(["Twitter dissolved its Trust and Safety Council on Monday."], index)
    assert [m.claim_id for m in matches] == ["a"] and len(calls) == 1
    rank_claims("Musk bought Twitter", index)
    assert len(calls) == 2


def test_compiled_retrieval_sums_what_numpy_does(
    clef: tuple[ClaimIndex, list[str]], article: list[str]
) -> None:
    """Gated (an article's sentences) and ungated (rank_claims) retrieval on a real
    table: the same pairs, shared masses and claim BM25s to the bit."""
    index, tweets = clef
    queries = [analyse(s) for s in article + tweets]
    for gate in (scoring.CANDIDATE_GATE, None):
        compiled, plain = _both(index, lambda gate=gate: index.lexical(queries, gate))
        assert len(compiled[1]) > 100
        _same_arrays(compiled, plain)


def test_first_stage_bound_in_c_leaves_out_only_what_scoring_drops(
    clef: tuple[ClaimIndex, list[str]], article: list[str]
) -> None:
    """With the first stage's loose bound, the C sums return fewer pairs, and scoring
    then keeps exactly the pairs (and scores) it keeps from the numpy sums."""
    index, tweets = clef
    queries = [analyse(s) for s in article + tweets]
    w = scoring.WEIGHTS
    stage = index_module.FirstStage(scoring.LEXICAL_PRUNE_LOGIT - 1e-9,
                                    scoring.BIAS + scoring._most_other(), w[scoring.COV_CLAIM],
                                    w[scoring.COV_QUERY], w[scoring.BM25])
    cut = index.lexical(queries, scoring.CANDIDATE_GATE, stage)
    whole = index.lexical(queries, scoring.CANDIDATE_GATE)
    assert 0 < len(cut[1]) < len(whole[1])
    kept = set(zip(cut[1].tolist(), cut[2].tolist(), strict=True))
    assert kept <= set(zip(whole[1].tolist(), whole[2].tolist(), strict=True))
    floor = 0.3 * 0.999
    compiled, plain = _both(index, lambda: scoring._score_queries(
        index, queries, 5, scoring.CANDIDATE_GATE, floor))
    assert sum(map(len, compiled)) > 0 and compiled == plain


def test_the_pairs_own_bound_is_never_above_the_loose_one(
    clef: tuple[ClaimIndex, list[str]], article: list[str]
) -> None:
    """Scoring tests only the pair's own bound (``_logit_bound``) on what retrieval
    returns; with the C sums the loose bound has already been applied, with the numpy
    sums it has not. Both give the same pairs only because the pair's bound never
    exceeds the loose one (every feature at its most), beyond rounding."""
    index, tweets = clef
    queries = [analyse(s) for s in article + tweets]
    masses, q, rows, shared, bm25 = index.lexical(queries, scoring.CANDIDATE_GATE)
    assert len(q) > 1000
    w = scoring.WEIGHTS
    q_mass = np.asarray(masses).take(q)
    mass = index.row_mass[rows]
    loose = (scoring.BIAS + scoring._most_other()
             + w[scoring.COV_CLAIM] * np.divide(shared, mass, out=np.ones(len(q)), where=mass > 0)
             + w[scoring.COV_QUERY] * np.divide(shared, q_mass, out=np.zeros(len(q)),
                                                where=q_mass > 0)
             + w[scoring.BM25] * scoring._bm25_feature(index, rows, bm25))
    words_len, masked_len, figures = scoring._query_arrays(queries)
    bound = scoring._logit_bound(index, (q_mass, words_len[q], masked_len[q], figures[q]),
                                 rows, shared, bm25)
    assert (bound <= loose + 1e-12).all()
    assert (bound < loose - 0.1).any()  # and tighter for some pairs


def test_matches_are_the_same_with_either_sums(
    clef: tuple[ClaimIndex, list[str]], article: list[str]
) -> None:
    """What a reader sees: match_claims (pairs, scores, tiers, stance) and rank_claims."""
    index, tweets = clef
    context = ArticleContext(title="Twitter child safety", published="2022-12-15")
    for sentences in (article, tweets):
        analyse.cache_clear()
        compiled, plain = _both(index, lambda s=sentences: match_claims(s, index,
                                                                         context=context))
        assert compiled == plain
    compiled, plain = _both(index, lambda: [rank_claims(t, index) for t in tweets])
    assert sum(map(len, compiled)) > len(tweets) and compiled == plain


def test_a_claim_with_more_texts_than_a_tile_is_summed_in_numpy() -> None:
    """The C sums take whole claims a tile (4,096 texts) at a time; a claim with more
    texts than that is left to numpy, with the same result as the numpy path."""
    aliases = tuple(f"Twitter council alias number {i} word{i}" for i in range(4200))
    index = ClaimIndex.build([Claim("small", "The council met in Paris."),
                              Claim("huge", "Twitter dissolved its council.", aliases=aliases),
                              Claim("after", "Twitter council dissolved again.")],
                             embeddings=False)
    queries = [analyse("Twitter dissolved the council word17"), analyse("council in Paris")]
    masses, t, owner = index._query_terms(queries)
    assert index._lexical_compiled(t, owner, 2, index._min_shared(0.2), masses) is None
    compiled, plain = _both(index, lambda: index.lexical(queries, 0.2))
    assert len(compiled[1]) > 2
    _same_arrays(compiled, plain)


def test_damaged_arrays_raise_instead_of_crashing(clef: tuple[ClaimIndex, list[str]]) -> None:
    """A term id or posting outside the arrays (a damaged cache) is a ValueError."""
    index, _ = clef
    gated_pairs = index_module._postings.gated_pairs
    index.lexical([analyse("vaccine")], 0.2)  # fills index._c_arrays
    indptr, rows, claims, bm25, weight, row_claim, _ = index._c_arrays
    need = index._min_shared(0.2)
    one = np.zeros(1, dtype=np.int64)
    with pytest.raises(ValueError):
        gated_pairs(np.array([len(weight) + 5]), one, 1, indptr, rows, claims, bm25, weight,
                    need, row_claim)
    bad_rows = rows.copy()
    bad_rows[indptr[0]:indptr[1]] = -7
    with pytest.raises(ValueError):
        gated_pairs(np.array([0]), one, 1, indptr, bad_rows, claims, bm25, weight, need,
                    row_claim)
    with pytest.raises(TypeError):
        gated_pairs(np.array([0]), one, 1, indptr, rows.astype(np.int64), claims, bm25, weight,
                    need, row_claim)


def test_a_damaged_call_leaves_no_state_behind(clef: tuple[ClaimIndex, list[str]]) -> None:
    """The C sums keep their tile buffers between calls: a call stopped by a damaged posting
    (after other postings of the tile were added and their passing texts marked) leaves
    them clean, so the next call gives what it gave before."""
    index, _ = clef
    gated_pairs = index_module._postings.gated_pairs
    index.lexical([analyse("vaccine")], 0.2)  # fills index._c_arrays
    indptr, rows, claims, bm25, weight, row_claim = index._c_arrays[:6]
    need = index._min_shared(0.2)
    # two terms of a few hundred texts each, both in the first tile (its first 4,000 texts)
    lengths = np.diff(indptr)
    in_first_tile = [t for t in range(len(lengths))
                     if 100 <= lengths[t] <= 1000 and rows[indptr[t]] < 4000]
    first, second = in_first_tile[:2]
    terms = np.array([first, second], dtype=np.int64)
    owner = np.zeros(2, dtype=np.int64)
    before = gated_pairs(terms, owner, 1, indptr, rows, claims, bm25, weight, need, row_claim)
    passing = np.frombuffer(before[1], dtype=np.int64)
    assert (passing < 4000).sum() > 0  # texts of the first tile pass
    alone = np.array([second], dtype=np.int64)
    second_alone = gated_pairs(alone, owner[:1], 1, indptr, rows, claims, bm25, weight, need,
                               row_claim)
    bad_claims = claims.copy()
    bad_claims[indptr[second]] = 10**9  # the second term's first posting: in the first tile
    with pytest.raises(ValueError):
        gated_pairs(terms, owner, 1, indptr, rows, bad_claims, bm25, weight, need, row_claim)
    # the first term's passing texts are no pairs of the second term alone
    after = gated_pairs(alone, owner[:1], 1, indptr, rows, claims, bm25, weight, need,
                        row_claim)
    assert [bytes(x) for x in after] == [bytes(x) for x in second_alone]
    after = gated_pairs(terms, owner, 1, indptr, rows, claims, bm25, weight, need, row_claim)
    assert [bytes(x) for x in after] == [bytes(x) for x in before]
