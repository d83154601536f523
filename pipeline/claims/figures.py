"""Figures and conflicts: which figures a claim and a sentence state, and whether they clash."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from pipeline.text import Number, TextFeatures

if TYPE_CHECKING:
    from pipeline.claims.index import ClaimIndex


def _figure_values(numbers: Iterable[Number]) -> frozenset[str]:
    """Salient figures: counts and percentages (not years, not days)."""
    return frozenset(n.value for n in numbers if n.kind not in ("year", "date"))



def _salient_figures(features: TextFeatures) -> bool:
    numbers = features.numbers
    return bool(numbers) and any(n.kind not in ("year", "date") for n in numbers)



def _figures(numbers: Iterable[Number]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.value for n in numbers if n.kind != "date"))


def _new_figures(feats: TextFeatures, claim_figures: set[str]) -> bool:
    """The sentence states a figure (not a year or date) that no matched claim has.

    Such a sentence adds a checkable fact to a known claim ("44,000 accounts in
    a week" beside "more suspensions than any other month"): a new-claim candidate.
    """
    return any(n.kind not in ("year", "date") and n.value not in claim_figures
               for n in feats.numbers)



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
