"""Stance of a sentence / an article towards a claim (pipeline/stance.py)."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from pipeline import stance
from pipeline.stance import Stance, article_stance, classify_stance, classify_stances

REPO = Path(__file__).resolve().parents[1]

BOUGHT = "Elon Musk bought Twitter for $44 billion."
COUNCIL = (
    "Twitter dissolved its Trust and Safety Council, an advisory group of 12 organizations "
    "that advised it on child sexual exploitation."
)
NO_INVESTMENT = (
    "Musk has not made a significant investment in removing child exploitation content from Twitter."
)
DORSEY = 'Former Twitter CEO Jack Dorsey replied to Musk\'s accusation: "This is false."'
CRIME = (
    'Musk tweeted: "It is a crime that they refused to take action on child exploitation for years."'
)


def label(sentence: str, claim: str, **kw) -> str:
    return classify_stance(sentence, claim, **kw).label


def test_plain_repeat_and_paraphrase() -> None:
    assert label("Musk spent $44 billion to buy Twitter.", BOUGHT) == "repeats"
    s = classify_stance(
        "On Monday, the company dissolved its Trust and Safety Council, an advisory body of 12 groups.",
        COUNCIL,
    )
    assert s.label == "repeats" and 0.5 < s.confidence <= 1.0
    # a neutral attribution still repeats
    assert label("Twitter dissolved its Trust and Safety Council, a spokesperson said.", COUNCIL) == "repeats"


@pytest.mark.parametrize(
    "sentence",
    [
        "Musk did not buy Twitter for $44 billion.",
        "Musk never bought Twitter for $44 billion.",
        "It is false that Musk bought Twitter for $44 billion.",
        "Musk denied that he bought Twitter for $44 billion.",
        "Contrary to claims that Musk bought Twitter for $44 billion, the deal was never closed.",
        "The story that Musk bought Twitter for $44 billion is a hoax.",
        "There is no evidence that Musk bought Twitter for $44 billion.",
        "Reports that Musk bought Twitter for $44 billion are misleading.",
    ],
)
def test_negation_and_denial_dispute(sentence: str) -> None:
    assert label(sentence, BOUGHT) == "disputes"


def test_retraction_and_correction_dispute() -> None:
    assert label(
        "The report that Twitter dissolved its Trust and Safety Council was retracted.", COUNCIL
    ) == "disputes"
    assert label(
        "Correction: an earlier version said Twitter dissolved its Trust and Safety Council; "
        "that was incorrect.",
        COUNCIL,
    ) == "disputes"


def test_negated_claim_is_repeated_by_negation_and_disputed_by_affirmation() -> None:
    assert label(
        "According to former employees, Musk hasn't made a significant investment in removing "
        "child exploitation material from Twitter.",
        NO_INVESTMENT,
    ) == "repeats"
    assert label(
        "Musk has made a significant investment in removing child exploitation content from Twitter.",
        NO_INVESTMENT,
    ) == "disputes"
    # "refused to" is a negation the claim carries; dropping it states the opposite
    assert label("Twitter's former leaders took action on child exploitation for years.", CRIME) == "disputes"
    assert label(
        "Musk accused Twitter's previous leadership of refusing for years to act on child "
        "exploitation, calling it a crime.",
        CRIME,
    ) == "repeats"


def test_a_claim_that_is_a_denial() -> None:
    # repeating the denial is a repeat; saying the denial did not happen disputes it
    assert label('The previous CEO, Jack Dorsey, responded, "This is false."', DORSEY) == "repeats"
    assert label(
        "Former chief executive Jack Dorsey rejected Musk's accusation, replying: \"This is false.\"",
        DORSEY,
    ) == "repeats"
    assert label("Dorsey never replied to Musk's accusation.", DORSEY) == "disputes"


@pytest.mark.parametrize(
    "sentence",
    [
        "Musk reportedly bought Twitter for $44 billion.",
        "Did Musk buy Twitter for $44 billion?",
        "Some users claimed that Musk bought Twitter for $44 billion.",
        "It is unclear whether Musk bought Twitter for $44 billion.",
        "That Musk bought Twitter for $44 billion could not be independently verified.",
        "Musk is said to have bought Twitter for $44 billion.",
    ],
)
def test_hedges_and_questions_discuss(sentence: str) -> None:
    assert label(sentence, BOUGHT) == "discusses"


def test_negation_outside_the_claim_denies_nothing() -> None:
    # set phrases and negations about something else
    assert label(
        "Twitter, which did not respond to a request for comment, dissolved its Trust and Safety "
        "Council on Monday.",
        COUNCIL,
    ) == "repeats"
    assert label(
        "Musk bought Twitter for $44 billion, a price analysts say was not cheap by any measure.",
        BOUGHT,
    ) == "repeats"


def test_short_rebuttal_in_context_turns_a_quote_into_a_dispute() -> None:
    quote = '"It is a crime that they refused to take action on child exploitation for years," Musk tweeted.'
    assert label(quote, CRIME) == "repeats"
    assert label(quote, CRIME, context='"This is false," Dorsey replied.') == "disputes"


def test_bad_input_never_raises() -> None:
    for s, c in [("", BOUGHT), (BOUGHT, ""), (None, BOUGHT), (BOUGHT, None), ("???", "!!!")]:
        assert classify_stance(BOUGHT, BOUGHT, lang=None).label == "repeats"  # type: ignore[arg-type]
        out = classify_stance(s, c)  # type: ignore[arg-type]
        assert out.label in stance.LABELS and 0.0 <= out.confidence <= 1.0
    assert article_stance([], BOUGHT).label in stance.LABELS
    assert article_stance(["", None], BOUGHT).label in stance.LABELS  # type: ignore[list-item]


def test_stance_is_frozen_and_batch_matches_single() -> None:
    s = classify_stance("Musk did not buy Twitter.", BOUGHT)
    assert isinstance(s, Stance)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.label = "repeats"  # type: ignore[misc]
    pairs = [("Musk did not buy Twitter.", BOUGHT), ("Musk bought Twitter for $44 billion.", BOUGHT)]
    assert classify_stances(pairs) == [classify_stance(a, b) for a, b in pairs]
    assert [x.label for x in classify_stances(pairs)] == ["disputes", "repeats"]


def test_languages_have_their_own_negations() -> None:
    claim = "Musk hat Twitter für 44 Milliarden Dollar gekauft."
    assert label("Musk hat Twitter nicht für 44 Milliarden Dollar gekauft.", claim, lang="de") == "disputes"
    assert label("Musk hat Twitter für 44 Milliarden Dollar gekauft.", claim, lang="de") == "repeats"
    claim_es = "Musk compró Twitter por 44.000 millones de dólares."
    assert label("Musk no compró Twitter por 44.000 millones de dólares.", claim_es, lang="es") == "disputes"


def test_shipped_model_loads_and_matches_the_features() -> None:
    model = stance._model()
    assert model is not None, "pipeline/stance_model.npz missing or stale: run benchmarks/train_stance.py"
    assert model.n_features == len(stance.feature_names())
    assert set(model.classes) == {"agree", "disagree", "discuss", "unrelated"}


ARTICLE_DISPUTE = [
    "A viral post says Elon Musk bought Twitter for $44 billion.",
    "The claim is false.",
    "Musk did not buy Twitter, and the company denied the report on Monday.",
    "Fact-checkers called the story a hoax.",
]
ARTICLE_REPEAT = [
    "Elon Musk bought Twitter for $44 billion on Thursday.",
    "The $44 billion deal closed after months of legal fights.",
    "Musk fired the company's top executives shortly after he bought Twitter.",
]
ARTICLE_OTHER = [
    "The city council approved its 2023 budget on Tuesday.",
    "Property taxes will rise by two percent.",
]


def test_article_stance_and_relatedness() -> None:
    assert article_stance(ARTICLE_DISPUTE, BOUGHT).label == "disputes"
    assert article_stance(" ".join(ARTICLE_DISPUTE), BOUGHT).label == "disputes"  # text is split
    assert article_stance(ARTICLE_REPEAT, BOUGHT).label != "disputes"
    assert stance.relatedness(ARTICLE_REPEAT, BOUGHT) > stance.relatedness(ARTICLE_OTHER, BOUGHT)
    assert stance.relatedness(ARTICLE_OTHER, BOUGHT) < stance.RELATED_THRESHOLD
    assert stance.relatedness(ARTICLE_REPEAT, BOUGHT) >= stance.RELATED_THRESHOLD


def _load_quality():
    sys.path[:0] = [str(REPO / "benchmarks")]
    try:
        import quality_stance
    finally:
        del sys.path[0]
    return quality_stance


def test_seed_stance_set_no_dispute_is_linked_as_repeating() -> None:
    q = _load_quality()
    data = json.loads((REPO / "benchmarks" / "seed_stance_set.json").read_text(encoding="utf-8"))
    assert len(data["items"]) >= 60
    assert {it["label"] for it in data["items"]} == set(stance.LABELS)
    assert q.seed_negation_false_rate() == 0.0
    preds = q.seed_predictions()
    accuracy = sum(s.label == it["label"] for it, s in preds) / len(preds)
    assert accuracy >= 0.85


def test_fnc1_holdout_sample(shared_data: Path) -> None:
    fnc_dir = shared_data / "fnc1-stance"
    if not fnc_dir.exists():
        pytest.skip(f"{fnc_dir} is absent")
    sys.path[:0] = [str(REPO / "benchmarks")]
    try:
        import fnc1
    finally:
        del sys.path[0]
    rows, bodies = fnc1.load(fnc_dir)
    _train, hold = fnc1.split_ids(fnc_dir)
    rows = [r for r in rows if r.body_id in hold][::40]  # ~240 hold-out rows
    gold, pred = [], []
    for r in rows:
        sents = fnc1.body_sentences(bodies[r.body_id])
        if stance.relatedness(sents, r.headline) < stance.RELATED_THRESHOLD:
            pred.append("unrelated")
        else:
            lab = article_stance(sents, r.headline).label
            pred.append({"repeats": "agree", "disputes": "disagree", "discusses": "discuss"}[lab])
        gold.append(r.stance)
    assert fnc1.score(gold, pred) > 0.8


def test_issue_demo_sentence_against_the_demo_claims() -> None:
    # issue 11: this demo sentence was linked to a claim that says the opposite
    import csv

    with open(REPO / "config" / "topics" / "claims.csv", encoding="utf-8", newline="") as fh:
        claims = {r["id"]: r["text"] for r in csv.DictReader(fh)}
    s = "Musk has said removing child exploitation from Twitter is his top priority."
    assert label(s, claims["musk-priority-number-one"]) == "repeats"
    assert label(s, claims["musk-no-significant-investment"]) != "repeats"


def test_the_demo_sentences_that_repeat_are_not_read_as_disputes() -> None:
    """Found on the demo after the merge: set phrases and an alias worded as a denial."""
    from pipeline.claims.stance import link_stance

    cases = [
        ("It attributed the suspensions to new detection and enforcement mechanisms and to "
         "partnerships with organizations it did not name.",
         "Twitter attributed the suspensions to new partnerships with unnamed organizations "
         "and new detection mechanisms."),
        ("“We’ve always felt that there should have been more reports coming out of Twitter, "
         "no matter how you cut it,” he said.",
         "Portnoy said NCMEC has always felt there should have been more reports coming out "
         "of Twitter."),
        ("“This is false,” replied Jack Dorsey, Twitter’s co-founder and former chief executive.",
         "Former Twitter CEO Jack Dorsey replied to Musk's accusation: \"This is false.\""),
    ]
    for sentence, claim in cases:
        assert link_stance(sentence, claim, context=sentence)[0] == "repeats", sentence
    # ... while a real negation still disputes, with or without the classifier's help
    assert link_stance("Twitter did not dissolve its council.", "Twitter dissolved its council.")[0] \
        == "disputes"
