"""Stance of a claim link: does the sentence repeat the claim, dispute it, or discuss it?

Every :class:`~pipeline.claims.matching.ClaimMatch` carries a ``stance``:
``repeats`` (the sentence states the claim), ``disputes`` (it denies it, calls it
false, reports it retracted, or states the opposite) or ``discusses`` (it reports
the claim without taking a side: "X is alleged to ...", "Y asked whether ...").

The classifier is :func:`pipeline.stance.classify_stance` when that module is
installed (it is built apart, on FNC-1); its rules never give ``repeats`` for a
negation or dispute cue near the claim's words. Without it, :func:`negation_guard`
keeps the same promise more crudely: a negation or dispute cue in the sentence that
the claim does not have ("not", "never", "no evidence", "false", "denied",
"retracted", ...), or a negated claim ("has not invested") whose sentence affirms it,
is never a ``repeats`` link.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)

STANCES = ("repeats", "disputes", "discusses")

# A negation or a dispute of what follows or precedes.
_NEGATION = re.compile(
    r"\b(?:not|no|never|neither|nor|none|nobody|nothing|cannot|can't|won't|isn't|aren't|"
    r"wasn't|weren't|don't|doesn't|didn't|hasn't|haven't|hadn't|shouldn't|wouldn't|couldn't|"
    r"without|nein|nicht|kein|keine|niemals|nunca|jamais|pas|ningún|ninguna)\b"
    r"|n't\b",
    re.IGNORECASE,
)
_DISPUTE = re.compile(
    r"\b(?:false(?:ly)?|untrue|incorrect|inaccurate|wrong|misleading|debunk(?:ed|s)?|"
    r"den(?:y|ies|ied|ying)|refut(?:e|es|ed|ing)|reject(?:s|ed)?|dismiss(?:es|ed)?|"
    r"retract(?:s|ed|ion)?|withdr(?:ew|awn)|correct(?:ion|ed)|baseless|unfounded|"
    r"disput(?:e|es|ed|ing)|contrar(?:y|ily)|hoax|myth|fabricat(?:ed|ion)|"
    r"no evidence|not true|falsch|dementi|desmient\w*|fals[oa]s?)\b",
    re.IGNORECASE,
)
# Hedges that report a claim without endorsing it.
_DISCUSS = re.compile(
    r"\b(?:alleged(?:ly)?|reportedly|purported(?:ly)?|rumou?r(?:s|ed)?|unconfirmed|"
    r"whether|asked if|claims? that|if true)\b",
    re.IGNORECASE,
)


def _cues(text: str) -> tuple[bool, bool]:
    return bool(_NEGATION.search(text)), bool(_DISPUTE.search(text))


def negation_guard(sentence: str, claim: str) -> bool:
    """Does ``sentence`` negate or dispute what ``claim`` states?

    True when the sentence has a negation or dispute cue the claim has not
    ("Twitter did not dissolve its council" vs "Twitter dissolved its council"),
    or the claim is negated and the sentence is not ("Musk has invested heavily"
    vs "Musk has not made a significant investment").
    """
    s_neg, s_dis = _cues(sentence)
    c_neg, c_dis = _cues(claim)
    if s_dis and not c_dis:
        return True
    return s_neg != c_neg


@lru_cache(maxsize=1)
def _classifier() -> Callable[..., Any] | None:
    try:
        from pipeline.stance import classify_stance
    except ImportError:
        return None
    return classify_stance  # type: ignore[no-any-return]


def link_stance(
    sentence: str, claim: str, *, context: str | None = None, lang: str = "en"
) -> tuple[str, float]:
    """``(stance, confidence)`` of a matched sentence towards its claim."""
    guard = negation_guard(sentence, claim)
    classify = _classifier()
    label, confidence = "repeats", 0.5
    if classify is not None:
        try:
            result = classify(sentence, claim, context=context, lang=lang)
            label, confidence = str(result.label), float(result.confidence)
        except Exception as exc:  # noqa: BLE001 - a stance failure must not lose the match
            logger.warning("stance classifier failed (%s): using the negation guard", exc)
    elif _DISCUSS.search(sentence) and not _DISCUSS.search(claim):
        label = "discusses"
    if label not in STANCES:
        label = "discusses"
    # The classifier's own rules already never give ``repeats`` for a negation near the
    # claim's words; the cruder guard (any negation anywhere: "no matter how", "did not
    # name") decides only without it.
    if guard and label == "repeats" and classify is None:
        label, confidence = "disputes", max(confidence, 0.5)
    return label, confidence
