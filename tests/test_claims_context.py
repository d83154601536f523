"""Claim matching with context: languages, one claim per idea, stance, the index cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from config.loader import load_claims
from config.models import Claim
from pipeline.claims import ArticleContext, ClaimIndex, match_claims, semantic
from pipeline.claims.context import LazyContexts, parse_date, sentence_contexts
from pipeline.claims.language import detect_language
from pipeline.claims.rerank import FEATURES, LEXICAL, model
from pipeline.claims.semantic import embedder
from pipeline.claims.stance import link_stance, negation_guard
from tests.conftest import REPO

BILINGUAL = (
    Claim(
        "council-dissolved",
        "Twitter dissolved its Trust and Safety Council, an advisory group of 12 organizations.",
        aliases=(
            "Twitter hat seinen Rat für Vertrauen und Sicherheit aufgelöst, ein Beratungsgremium "
            "aus zwölf Organisationen.",
            "Twitter disolvió su Consejo de Confianza y Seguridad, un grupo asesor de 12 "
            "organizaciones.",
        ),
    ),
    Claim(
        "bought-44bn",
        "Elon Musk bought Twitter for $44 billion.",
        aliases=("Elon Musk kaufte Twitter für 44 Milliarden Dollar.",
                 "Elon Musk compró Twitter por 44.000 millones de dólares."),
    ),
    Claim("layoffs", "Twitter laid off half of its 7,500 employees in November."),
)

ARTICLES = {
    "de": ["Am Montag hat Twitter den Rat für Vertrauen und Sicherheit aufgelöst.",
           "Der Unternehmer Elon Musk kaufte Twitter im Oktober für 44 Milliarden Dollar.",
           "Das Wetter in Berlin war am Wochenende schön und sonnig."],
    "es": ["Twitter disolvió el lunes su Consejo de Confianza y Seguridad.",
           "Hace un año Elon Musk compró Twitter por 44.000 millones de dólares.",
           "El tiempo en Madrid fue bueno durante todo el fin de semana."],
    "en": ["On Monday Twitter dissolved its Trust and Safety Council.",
           "A year ago Elon Musk bought Twitter for $44 billion.",
           "The weather in London was fine all weekend."],
}


@pytest.mark.parametrize("lang", ["de", "es", "en"])
def test_an_article_matches_the_claims_given_in_its_language(lang: str) -> None:
    index = ClaimIndex.build(BILINGUAL)
    for context in (ArticleContext(lang=lang), None):  # declared, or guessed from the text
        matches = match_claims(ARTICLES[lang], index, context=context)
        linked = {m.claim_id: m.sentence_index for m in matches if m.tier == "linked"}
        assert linked == {"council-dissolved": 0, "bought-44bn": 1}, (lang, matches)
        assert all(m.stance == "repeats" for m in matches)


def test_language_guess() -> None:
    assert detect_language(ARTICLES["de"][1]) == "de"
    assert detect_language(ARTICLES["es"][1]) == "es"
    assert detect_language(ARTICLES["en"][1]) == "en"


def test_language_guess_tokens_are_the_unicode_pattern_s() -> None:
    """The guess's fast tokenizer (ASCII letters once common punctuation is spaced) finds
    exactly the tokens of its Unicode pattern, on mixed and non-Latin text too."""
    import random

    from pipeline.claims.language import _TOKEN, _tokens

    rng = random.Random(5)
    alphabet = ("abcXYZ \u00e9\u00fc\u00df\u00f1\u00b2\u00bd_09 \t\n-\u2013\u2014\u2019\u2018"
                "\u201c\u201d\u2026'\".,;:!?()@#\u00a0\u2003\u200b\u00e7\u00c5\u03a9\u0436\u4e2d")
    texts = [ARTICLES[lang][1] for lang in ("de", "es", "en")] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts.append("Musk\u2019s \u201cpriority\u201d \u2013 removing it\u2026 now")
    for text in texts:
        low = text.lower()
        assert _tokens(low) == _TOKEN.findall(low), text
    assert _tokens("musk\u2019s \u201cpriority\u201d") == ["musk", "s", "priority"]


def demo_claims() -> tuple[Claim, ...]:
    return tuple(load_claims(REPO / "config" / "topics" / "claims.csv"))


def test_one_claim_per_idea_on_the_demo_sentence() -> None:
    """The sentence states Musk's priority; it shares words with two other claims of
    the table (one of them contrary) but states neither."""
    index = ClaimIndex.build(demo_claims())
    sentence = "Musk has said removing child exploitation from Twitter is his top priority."
    matches = match_claims([sentence], index)
    linked = [m.claim_id for m in matches if m.tier == "linked"]
    assert linked == ["musk-priority-number-one"], matches
    assert {m.claim_id for m in matches} == {"musk-priority-number-one"}, matches


def test_a_sentence_stating_two_claims_keeps_both() -> None:
    index = ClaimIndex.build(BILINGUAL)
    sentence = ("Elon Musk bought Twitter for $44 billion and Twitter dissolved its Trust and "
                "Safety Council, an advisory group of 12 organizations.")
    matched = {m.claim_id: m.tier for m in match_claims([sentence], index)}
    # both kept (distinct parts); the second scores lower: the re-ranker weighs its
    # margin under the best claim of the sentence, so it may only be suggested
    assert set(matched) == {"bought-44bn", "council-dissolved"}
    assert "linked" in matched.values()


@pytest.mark.parametrize(
    ("sentence", "claim"),
    [
        ("Twitter did not dissolve its Trust and Safety Council, the company said.",
         "Twitter dissolved its Trust and Safety Council."),
        ("The claim that Musk bought Twitter for $44 billion is false.",
         "Elon Musk bought Twitter for $44 billion."),
        ("Musk has invested heavily in removing child exploitation from Twitter.",
         "Musk has not made a significant investment in removing child exploitation content "
         "from Twitter."),
        ("Twitter denied that it had dissolved the council.",
         "Twitter dissolved its Trust and Safety Council."),
    ],
)
def test_a_negating_sentence_is_never_a_repeats_link(sentence: str, claim: str) -> None:
    assert negation_guard(sentence, claim)
    stance, _ = link_stance(sentence, claim)
    assert stance != "repeats"
    index = ClaimIndex.build([Claim("c", claim)])
    for m in match_claims([sentence], index):
        assert m.stance != "repeats", m


def test_a_repeating_sentence_repeats() -> None:
    assert not negation_guard("Twitter dissolved its Trust and Safety Council on Monday.",
                              "Twitter dissolved its Trust and Safety Council.")
    index = ClaimIndex.build(BILINGUAL)
    [m] = [m for m in match_claims(["Twitter dissolved its Trust and Safety Council on Monday, "
                                    "an advisory group of 12 organizations."], index)]
    assert (m.claim_id, m.stance) == ("council-dissolved", "repeats")


def test_context_resolves_he_said_and_reads_dates() -> None:
    sentences = ["Elon Musk spoke to reporters in Austin on Monday.",
                 "He said the company would cut costs.", "It was cold."]
    contexts = sentence_contexts(sentences, ArticleContext(title="Musk in Austin",
                                                           published="2022-12-15T10:00:00Z"))
    assert contexts[1].speaker == "Elon Musk"
    assert contexts[2].speaker is None
    assert "Musk in Austin" in contexts[1].window and sentences[0] in contexts[1].window
    assert contexts[0].day == parse_date("15 December 2022") == parse_date("December 15, 2022")
    assert parse_date("stated on October 22, 2019 in a campaign mailer") is not None
    assert parse_date("no date here") is None


def test_index_cache_is_keyed_by_the_table_and_memory_mapped(tmp_path: Path) -> None:
    claims = demo_claims()
    built = ClaimIndex.cached(claims, tmp_path)
    [where] = list(tmp_path.iterdir())
    loaded = ClaimIndex.cached(claims, tmp_path)  # from disk now
    assert len(list(tmp_path.iterdir())) == 1
    # memory-mapped (a plain array over the mapped file), or small enough to be pickled
    assert isinstance(loaded.post_rows.base, np.memmap) or loaded.post_rows.size < 4096
    sentences = ["Musk has said removing child exploitation from Twitter is his top priority.",
                 "Twitter dissolved its Trust and Safety Council on Monday."]
    assert match_claims(sentences, built) == match_claims(sentences, loaded)
    changed = (*claims[:-1], Claim(claims[-1].id, claims[-1].text + " Really."))
    ClaimIndex.cached(changed, tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # another table, another index
    # a damaged cache is rebuilt, not fatal
    (where / "meta.pickle").write_bytes(b"not a pickle")
    again = ClaimIndex.cached(claims, tmp_path)
    assert match_claims(sentences, again) == match_claims(sentences, built)


def test_the_forest_bound_never_drops_a_pair_that_can_reach_the_floor() -> None:
    forest = model()
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=(4000, len(FEATURES)))
    x[:, LEXICAL] = rng.uniform(-15, 15, size=4000)
    raw = forest.raw(x)
    for floor in (-3.0, -1.0, 0.0, 1.5):
        bound = forest.lexical_floor(floor, LEXICAL)
        assert not ((raw >= floor) & (x[:, LEXICAL] < bound)).any()


def test_the_forest_scores_without_walking_as_walking_does() -> None:
    """QuickScorer (every node tested at once) reaches the leaves the level walk reaches,
    on values at, just under and just over every threshold, and on NaN."""
    forest = model()
    assert forest._scorer is not None  # the shipped forest has trees of <= 8 leaves
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, size=(3000, len(FEATURES)))
    x[:, LEXICAL] = rng.uniform(-15, 15, size=3000)
    thresholds = np.array([t for tree in forest.trees for t in tree["threshold"]])
    features = np.array([f for tree in forest.trees for f in tree["feature"]])
    picked = rng.integers(0, len(thresholds), size=3000)
    for shift in (0.0, -1e-12, 1e-12):  # exactly on a threshold goes left
        x[np.arange(3000), features[picked]] = thresholds[picked] + shift
        assert np.array_equal(forest.raw(x), forest._walk(x))
    x[::5, 3] = np.nan
    assert np.array_equal(forest.raw(x), forest._walk(x))


def test_lazy_contexts_are_the_contexts() -> None:
    sentences = ["Elon Musk spoke to reporters in Austin on Monday.", "It was cold.",
                 "He said the company would cut costs.", "She told them so.",
                 "Yoel Roth left.", "He said he was leaving."]
    for context in (None, ArticleContext(title="Musk in Austin", published="2022-12-15"),
                    ArticleContext(speakers=["Ann Smith", None, None, "Bob Jones"])):
        lazy = LazyContexts(sentences, context)
        eager = sentence_contexts(sentences, context)
        assert [lazy[i] for i in (5, 2, 0, 3)] == [eager[i] for i in (5, 2, 0, 3)]
        assert list(lazy) == eager and lazy[-1] == eager[-1] and lazy[1:3] == eager[1:3]
    assert LazyContexts(sentences, None)[5].speaker == "Yoel Roth"


def test_embeddings_tokenize_chunks_as_the_tokenizer_does_the_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model_ = embedder()
    if model_ is None:
        pytest.skip("wordllama is not installed")
    texts = [c.text for c in demo_claims()] + [
        "Musk's Twitter: 1,500 staff (50%) were \"let go\"; CSAM reports rose.",
        "  two  spaces ", " leading", "trailing ", "", " ", "tab\tand\nnewline",
        "Ünïcödé, emoji 😀 and a very-long-hyphenated-word-that-bpe-splits",
    ]
    want = [model_.tokenizer.encode(t, add_special_tokens=False).ids for t in texts]
    model_._chunks.clear()
    for _ in range(2):  # cold, then from the chunk cache
        assert model_._token_ids(texts) == want
    # a full cache is dropped before new chunks go in: a long crawl's memory stays bounded
    monkeypatch.setattr(semantic, "_CHUNK_CACHE", 8)
    other = ["quite other words, not seen before"]
    assert model_._token_ids(other) == [model_.tokenizer.encode(
        other[0], add_special_tokens=False).ids]
    assert 0 < len(model_._chunks) <= len(other[0].split())  # only the new chunks
    assert model_._token_ids(texts) == want
