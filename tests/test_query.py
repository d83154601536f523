"""Topic query truth table: whole words, phrases, accents, case, any/all/none/and_any."""

from __future__ import annotations

import pytest

from config.models import Query
from pipeline.query import compile_query

TOPIC = compile_query(Query(
    any=("Twitter", "X Corp", "Musk"),
    all=(),
    none=("Tesla recall",),
    and_any=("child", "CSAM", "exploitation", "Trust and Safety"),
))


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("Twitter cuts staff", "The child safety team shrank.", True),
        ("", "TWITTER and CSAM reports", True),  # case-insensitive
        ("", "X Corp's trust-and-safety team", True),  # phrase across hyphens
        ("", "Musk said exploitation was priority #1", True),
        ("", "Twitter changed its logo", False),  # and_any missing
        ("", "A child safety charity report", False),  # any missing
        ("", "Twitterverse child", False),  # whole words only
        ("", "Twitter children", False),  # 'child' does not match 'children'
        ("", "Musk on Tesla recall of child seats", False),  # none wins
        ("", "Musk on TESLA  RECALL; child seats", False),  # none: case and spacing
        ("Twitter", "trust and safety council", True),  # title and text both searched
    ],
)
def test_truth_table(title: str, text: str, expected: bool) -> None:
    assert TOPIC.matches(title, text) is expected


def test_accents_and_all_terms() -> None:
    query = compile_query(Query(any=("Sécurité",), all=("enfants", "réseau social")))
    assert query.matches("SECURITE des enfants sur le reseau social")
    assert not query.matches("sécurité des enfants")  # an `all` term is missing


def test_prefix_term() -> None:
    query = compile_query(Query(any=("child*",)))
    assert query.matches("children online")
    assert not query.matches("a mild chill")


def test_empty_query_matches_everything() -> None:
    assert compile_query(Query()).matches("anything at all")
    assert compile_query(Query()).matches(None, "")
