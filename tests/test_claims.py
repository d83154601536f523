"""Claim matching (pipeline.claims): tiers, conflicts, aliases, candidates, CLEF floor."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from config.models import Claim
from pipeline.claims import (
    DEFAULT_LINKED_MIN,
    DEFAULT_SUGGESTED_MIN,
    ClaimIndex,
    ClaimMatch,
    find_candidates,
    match_claims,
    numbers_conflict,
    rank_claims,
)
from pipeline.text import analyse, number_values, split_sentences

CLAIMS = (
    Claim(
        "tns-25-of-1600",
        "25 of the 1,600 workers still employed by Twitter had positions related to "
        "Trust and Safety.",
    ),
    Claim("employees-7500", "Twitter had more than 7,500 employees at the end of 2021."),
    Claim(
        "council-dissolved",
        "Twitter dissolved its Trust and Safety Council, an advisory group of 12 organizations.",
    ),
    Claim(
        "bought-44bn",
        "Elon Musk bought Twitter for $44 billion.",
        aliases=("Musk's $44 billion acquisition of Twitter",),
    ),
    Claim(
        "advertisers-left",
        "Advertisers left Twitter after learning their ads appeared next to harmful content.",
    ),
    Claim(
        "dorsey-false",
        'Former Twitter CEO Jack Dorsey replied to Musk\'s accusation: "This is false."',
    ),
    Claim(
        "csam-86666",
        "Twitter reported 86,666 incidents of child sexual abuse material on its platform in 2017.",
    ),
    Claim(
        "november-suspensions",
        "Twitter said more accounts were suspended for child sexual abuse content in November "
        "than in any other month.",
    ),
    Claim(
        "priority-1",
        "Musk said removing child exploitation is priority #1.",
        aliases=("Musk called removing child exploitation his top priority",),
    ),
)


@pytest.fixture(scope="module")
def index() -> ClaimIndex:
    return ClaimIndex.build(CLAIMS)


def only(matches: list[ClaimMatch]) -> ClaimMatch:
    assert len(matches) == 1, matches
    return matches[0]


def test_index_basics(index: ClaimIndex) -> None:
    assert len(index) == len(CLAIMS)
    assert len(ClaimIndex.build([])) == 0
    assert match_claims(["Anything at all."], ClaimIndex.build([])) == []
    assert match_claims([], index) == []
    with pytest.raises(ValueError, match="duplicate claim id"):
        ClaimIndex.build([CLAIMS[0], CLAIMS[0]])


def test_thresholds_are_ordered() -> None:
    assert 0 < DEFAULT_SUGGESTED_MIN < DEFAULT_LINKED_MIN < 100


def test_paraphrase_is_linked(index: ClaimIndex) -> None:
    sentence = (
        "Only 25 of the roughly 1,600 people still working at Twitter hold trust and safety "
        "roles, internal records show."
    )
    m = only(match_claims([sentence], index))
    assert (m.claim_id, m.tier, m.conflict) == ("tns-25-of-1600", "linked", False)
    assert m.score >= DEFAULT_LINKED_MIN
    assert m.sentence == sentence and m.sentence_index == 0


def test_verbatim_claim_scores_near_100(index: ClaimIndex) -> None:
    m = only(match_claims([CLAIMS[6].text], index))
    assert m.claim_id == "csam-86666" and m.score > 95 and not m.conflict


def test_partial_mention_is_suggested(index: ClaimIndex) -> None:
    m = only(match_claims(["Advertisers left Twitter this year."], index))
    assert (m.claim_id, m.tier) == ("advertisers-left", "suggested")
    assert DEFAULT_SUGGESTED_MIN <= m.score < DEFAULT_LINKED_MIN
    # the same match disappears when the caller raises the bar
    assert match_claims(["Advertisers left Twitter this year."], index, suggested_min=90) == []


def test_changed_figure_is_a_conflict_with_both_sets(index: ClaimIndex) -> None:
    sentence = (
        "Internal records show only 30 of the 1,600 workers still employed by Twitter had "
        "positions related to Trust and Safety."
    )
    m = only(match_claims([sentence], index))
    assert m.claim_id == "tns-25-of-1600"
    assert m.tier == "linked"  # the figure does not sink the text score
    assert m.conflict
    assert m.claim_numbers == ("25", "1600")
    assert m.article_numbers == ("30", "1600")


@pytest.mark.parametrize(
    ("sentence", "claim_id"),
    [
        ("By the end of 2021, Twitter employed more than 9,000 people.", "employees-7500"),
        ("Musk bought Twitter for $40 billion.", "bought-44bn"),
        ("Twitter reported 86,666 incidents of child sexual abuse material in 2019.", "csam-86666"),
    ],
)
def test_more_conflicts(index: ClaimIndex, sentence: str, claim_id: str) -> None:
    m = only(match_claims([sentence], index))
    assert (m.claim_id, m.conflict) == (claim_id, True)


def test_same_figures_or_a_subset_do_not_conflict(index: ClaimIndex) -> None:
    for sentence in (
        "Just 25 Trust and Safety staff remain among Twitter's 1,600 workers.",
        "Only 25 people at Twitter still work on Trust and Safety.",  # a subset of the figures
        "Musk's $44 billion acquisition of Twitter closed in 2022.",  # a year only on one side
    ):
        m = match_claims([sentence], index)[0]
        assert not m.conflict, sentence


@pytest.mark.parametrize(
    "sentence",
    [
        "Musk tweeted a meme about the media on Friday.",
        "Heavy rain is expected across the region this weekend, forecasters said.",
        "Read also: Meta threatens to remove news content on FB",
        "Dorsey disputed the claim.",
    ],
)
def test_distractors_and_off_topic_do_not_match(index: ClaimIndex, sentence: str) -> None:
    assert match_claims([sentence], index) == []


def test_other_subject_is_neither_linked_nor_a_conflict(index: ClaimIndex) -> None:
    # nearly the same words as "Twitter had more than 7,500 employees at the end of 2021"
    matches = match_claims(["Tesla employed more than 100,000 people at the end of 2021."], index)
    assert all(m.tier == "suggested" and not m.conflict for m in matches)


def test_aliases_match(index: ClaimIndex) -> None:
    sentence = "Removing child exploitation is his top priority, Musk said."
    m = only(match_claims([sentence], index))
    assert (m.claim_id, m.tier) == ("priority-1", "linked")
    # without the alias the same sentence matches the claim text less well
    bare = ClaimIndex.build([Claim("priority-1", CLAIMS[8].text)])
    without = match_claims([sentence], bare)
    # (the re-ranker saturates near 100 for a sentence this close: equal at most)
    assert not without or without[0].score <= m.score


def test_best_sentence_per_claim_ordered_by_score(index: ClaimIndex) -> None:
    article = split_sentences(
        "Musk's Twitter has been in turmoil.\n\n"
        "Advertisers left Twitter this year. Twitter employed a lot of people at the end of 2021. "
        "Twitter had more than 7,500 employees at the end of 2021. Only 25 of the 1,600 workers "
        "still employed by Twitter had Trust and Safety positions."
    )
    assert len(article) == 5
    matches = match_claims(article, index)
    ids = [m.claim_id for m in matches]
    assert len(ids) == len(set(ids))  # one match per claim
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    by_id = {m.claim_id: m for m in matches}
    assert set(by_id) == {"advertisers-left", "employees-7500", "tns-25-of-1600"}
    assert by_id["employees-7500"].sentence_index == 3  # the better of two sentences
    assert by_id["tns-25-of-1600"].sentence_index == 4
    assert by_id["advertisers-left"].tier == "suggested"


def test_results_are_deterministic() -> None:
    article = [
        "Only 25 of Twitter's 1,600 workers are in Trust and Safety, records show.",
        "Musk bought Twitter for $40 billion.",
        "Advertisers left Twitter this year.",
        "Twitter said more accounts were suspended in November than ever.",
    ]
    first = match_claims(article, ClaimIndex.build(CLAIMS))
    shuffled = list(CLAIMS)
    random.Random(7).shuffle(shuffled)
    for _ in range(3):
        assert match_claims(article, ClaimIndex.build(shuffled)) == first
    assert rank_claims(article[0], ClaimIndex.build(CLAIMS)) == rank_claims(
        article[0], ClaimIndex.build(shuffled)
    )


def test_rank_claims(index: ClaimIndex) -> None:
    ranked = rank_claims("Elon Musk spent $44 billion to buy Twitter", index, k=3)
    assert ranked[0][0] == "bought-44bn"
    assert len(ranked) <= 3
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 100 for s in scores)


def test_numbers_conflict_rules() -> None:
    def conflict(claim: str, sentence: str) -> bool:
        return numbers_conflict(number_values(claim), number_values(sentence))

    assert conflict("25 of 1,600 workers", "30 of the 1,600 workers")
    assert conflict("25 of 1,600 workers", "30 workers")
    assert not conflict("25 of 1,600 workers", "25 workers")  # a subset
    assert not conflict("25 of 1,600 workers", "25 of 1,600, and 7,500 in 2021")  # a superset
    assert not conflict("25 of 1,600 workers", "no figures")
    assert not conflict("no figures", "30 workers")
    assert not conflict("grew 25%", "grew 25 percent")
    assert not conflict("grew 25%", "grew to 30 stores")  # a percentage vs a count
    assert conflict("grew 25% to 300 stores", "grew 25% to 30 stores")
    assert conflict("grew 25%", "grew 30%")
    assert not conflict("86,666 reports in 2017", "86,666 reports")  # year on one side only
    assert conflict("86,666 reports in 2017", "86,666 reports in 2019")
    assert not conflict("on Dec. 12 there were 25", "on Dec. 14 there were 25")  # days ignored


# --------------------------------------------------------------------------- candidates


def test_candidates_find_attributed_figures_and_skip_boilerplate(index: ClaimIndex) -> None:
    sentences = [
        "Read also: Meta threatens to remove news content on FB",
        "Advertisers spent $5 billion on Twitter in 2021, according to research firm eMarketer.",
        "Subscribe to our newsletter for the latest technology news.",
        "Internal records",
        "Twitter reported 86,666 incidents of child sexual abuse material on its platform in 2017.",
        "The weather was nice.",
        '"We have hired 300 new moderators," a Twitter spokesperson said.',
    ]
    matches = match_claims(sentences, index)
    assert [m.sentence_index for m in matches] == [4]
    candidates = find_candidates(sentences, matches)
    assert [c.sentence_index for c in candidates] == [1, 6]
    assert all(0.5 <= c.score <= 1 for c in candidates)
    assert candidates[0].sentence == sentences[1]


def test_candidates_skip_sentences_repeating_a_known_claim(index: ClaimIndex) -> None:
    sentences = [
        "Twitter reported 86,666 incidents of child sexual abuse material on its platform in 2017.",
        "Twitter said it found 86,666 CSAM incidents on the platform in 2017, NCMEC said.",
    ]
    matches = match_claims(sentences, index)
    assert len(matches) == 1  # one (the best) sentence per claim
    other = 1 - matches[0].sentence_index  # the sentence not reported with the claim
    assert [c.sentence_index for c in find_candidates(sentences, matches)] == [other]
    assert find_candidates(sentences, matches, index=index) == []


# --------------------------------------------------------------------------- CLEF dev sample

# MAP@5 of rank_claims on every other CLEF 2022 2A dev query (100 tweets) against all
# 14,231 Snopes claims (+ titles as aliases), measured at 0.898; floor = that - 0.05.
CLEF_DEV_MAP5_FLOOR = 0.85


def _average_precision(ranked: list[str], gold: set[str], k: int = 5) -> float:
    hits = 0
    total = 0.0
    for i, cid in enumerate(ranked[:k]):
        if cid in gold:
            hits += 1
            total += hits / (i + 1)
    return total / len(gold)


def test_clef_dev_sample_map_at_5(shared_data: Path) -> None:
    root = shared_data / "clef2022-checkthat-task2a-en"
    if not (root / "vclaims.jsonl.gz").is_file():
        pytest.skip(f"CLEF 2022 2A data not found under {root}")
    with gzip.open(root / "vclaims.jsonl.gz", "rt", encoding="utf-8") as fh:
        vclaims = [json.loads(line) for line in fh]
    queries = {}
    with open(root / "CT2022-Task2A-EN-Train-Dev_Queries.tsv", encoding="utf-8") as fh:
        for line in fh:
            qid, _, text = line.rstrip("\n").partition("\t")
            queries[qid] = text
    qrels: dict[str, set[str]] = {}
    with open(root / "CT2022-Task2A-EN-Dev_QRELs.tsv", encoding="utf-8") as fh:
        for line in fh:
            qid, _, vid, _ = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, set()).add(vid)
    index = ClaimIndex.build(
        Claim(v["vclaim_id"], v["vclaim"], aliases=(v["title"],) if v.get("title") else ())
        for v in vclaims
    )
    sample = sorted(qrels.items())[::2]
    aps = [
        _average_precision([cid for cid, _ in rank_claims(queries[qid], index)], gold)
        for qid, gold in sample
    ]
    map5 = sum(aps) / len(aps)
    assert map5 >= CLEF_DEV_MAP5_FLOOR, f"MAP@5 {map5:.3f} on {len(sample)} dev tweets"


def _plain_lexical(index: ClaimIndex, queries: list[str], gate: float) -> dict:
    """Shared mass and claim BM25 of every gated (query, text) pair, one posting at a time."""
    out = {}
    need = index._min_shared(gate)
    for qi, text in enumerate(queries):
        terms = sorted({index.vocab[w] for w in analyse(text).words if w in index.vocab})
        shared: dict[int, float] = {}
        bm25: dict[int, float] = {}
        for t in terms:  # by term, then text: the order the index sums in
            for p in range(int(index.indptr[t]), int(index.indptr[t + 1])):
                row = int(index.post_rows[p])
                shared[row] = shared.get(row, 0.0) + float(index.term_weight[t])
                ci = int(index.row_claim[row])
                bm25[ci] = bm25.get(ci, 0.0) + float(index.post_bm25[p])
        for row, mass in shared.items():
            if mass >= need[row]:
                out[qi, row] = (mass, bm25[int(index.row_claim[row])])
    return out


def test_block_retrieval_sums_what_a_plain_sum_does(index: ClaimIndex) -> None:
    """The block retrieval (a bound over the block's terms, then per-query sums of the
    texts that pass, BM25 from the same postings) returns every gated pair, with its
    shared mass and claim BM25 equal to the bit to a posting-by-posting sum."""
    rng = random.Random(11)
    words = " ".join(t for row in index.row_texts for t in [row]).split()
    queries = [claim.text for claim in index.claims] + [
        " ".join(rng.sample(words, rng.randint(3, 25))) for _ in range(60)]
    masses, q, rows, shared, bm25 = index.lexical([analyse(s) for s in queries], 0.2)
    got = {(qi, r): (s, b) for qi, r, s, b in zip(q.tolist(), rows.tolist(), shared.tolist(),
                                                   bm25.tolist(), strict=True)}
    want = _plain_lexical(index, queries, 0.2)
    assert len(want) > len(queries) and got == want


def _term_lists(index: ClaimIndex) -> list[list[tuple[int, float]]]:
    """Each term's postings as (text, BM25 weight), in stored order."""
    return [
        list(zip(index.post_rows[a:b].tolist(), index.post_bm25[a:b].tolist(), strict=True))
        for a, b in zip(index.indptr[:-1].tolist(), index.indptr[1:].tolist(), strict=True)
    ]


def test_pruning_cuts_each_term_to_its_highest_impact_postings() -> None:
    """With pruning, a term's list keeps its N postings of highest BM25 impact (ties: the
    lower text), still in text order; shorter lists are untouched."""
    full = ClaimIndex.build(CLAIMS, embeddings=False)
    before = _term_lists(full)
    assert max(map(len, before)) > 2
    after = _term_lists(full.with_pruning(2))
    for was, now in zip(before, after, strict=True):
        best = sorted(was, key=lambda p: (-p[1], p[0]))[:2]
        assert now == sorted(best)
    pruned = full.with_pruning(2)
    assert pruned.post_claim.tolist() == full.row_claim[pruned.post_rows].tolist()


def test_only_large_tables_are_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below PRUNE_MIN_CLAIMS claims the index is exact; from it on, build prunes to
    PRUNE_KEEP, the same as pruning the exact index, and the cache key changes."""
    from pipeline.claims import index as index_module

    monkeypatch.setattr(index_module, "PRUNE_KEEP", 1)
    monkeypatch.setattr(index_module, "PRUNE_MIN_CLAIMS", len(CLAIMS) + 1)
    exact = ClaimIndex.build(CLAIMS, embeddings=False)
    key_exact = index_module.claims_fingerprint(CLAIMS)
    assert max(map(len, _term_lists(exact))) > 1
    monkeypatch.setattr(index_module, "PRUNE_MIN_CLAIMS", len(CLAIMS))
    pruned = ClaimIndex.build(CLAIMS, embeddings=False)
    assert max(map(len, _term_lists(pruned))) == 1
    assert _term_lists(pruned) == _term_lists(exact.with_pruning(1))
    assert index_module.claims_fingerprint(CLAIMS) != key_exact
    assert exact.with_pruning(None) is exact


def test_split_blocks_sum_what_one_block_does(
    index: ClaimIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block whose passing texts exceed the cell budget is summed in halves, with the
    same pairs and the same sums to the bit (the numpy sums: the compiled ones have no
    blocks)."""
    from pipeline.claims import index as index_module

    monkeypatch.setattr(index, "compiled", False)
    queries = [analyse(claim.text) for claim in index.claims] * 3
    whole = index.lexical(queries, 0.2)
    monkeypatch.setattr(index_module, "_BLOCK_CELLS", 8)
    calls: list[int] = []
    real = ClaimIndex._split_block

    def counted(self: ClaimIndex, *args: object) -> object:
        calls.append(1)
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ClaimIndex, "_split_block", counted)
    monkeypatch.setattr(index, "_gated_step", index_module._BLOCK_QUERIES)  # undone after
    split = index.lexical(queries, 0.2)
    assert len(whole[1]) > len(queries) and len(calls) > 10
    for a, b in zip(whole[1:], split[1:], strict=True):
        assert a.tolist() == b.tolist()
    # later calls start from the block size that fitted: fewer splits, the same sums
    assert index._gated_step == index_module._BLOCK_QUERIES // 4
    first = len(calls)
    again = index.lexical(queries, 0.2)
    assert len(calls) - first < first
    for a, b in zip(whole[1:], again[1:], strict=True):
        assert a.tolist() == b.tolist()
