"""Sentence splitting, normalisation, figures and content words (pipeline.text)."""

from __future__ import annotations

import pytest

from pipeline.text import (
    analyse,
    content_words,
    extract_numbers,
    mask_numbers,
    normalise,
    number_values,
    split_sentences,
    stem,
)

# --------------------------------------------------------------------------- sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith met Dr. Jones in Washington. They talked.",
            ["Mr. Smith met Dr. Jones in Washington.", "They talked."],
        ),
        (
            "The U.S. government disagreed. Officials in the U.S. said so.",
            ["The U.S. government disagreed.", "Officials in the U.S. said so."],
        ),
        (
            "Twitter Inc. said 1,600 staff remain. Tesla Inc. The company agreed.",
            ["Twitter Inc. said 1,600 staff remain.", "Tesla Inc.", "The company agreed."],
        ),
        (
            "It happened on Dec. 12, 2022 in the evening. Revenue fell in Dec. The firm recovered.",
            [
                "It happened on Dec. 12, 2022 in the evening.",
                "Revenue fell in Dec.",
                "The firm recovered.",
            ],
        ),
        (
            "Author J. K. Rowling and Donald J. Trump spoke. Then they left.",
            ["Author J. K. Rowling and Donald J. Trump spoke.", "Then they left."],
        ),
        (
            "\u201cIt is a crime,\u201d Musk tweeted on Friday. "
            "Dorsey replied: \u201cThis is false.\u201d Then he logged off.",
            [
                "\u201cIt is a crime,\u201d Musk tweeted on Friday.",
                "Dorsey replied: \u201cThis is false.\u201d",
                "Then he logged off.",
            ],
        ),
        (
            '"We will fix it." he said. "Is it true?" she asked.',
            ['"We will fix it." he said.', '"Is it true?" she asked.'],
        ),
        (
            "Musk paid $44 billion. Growth was 3.5 per cent. Staff fell to 1,600. 25 remain.",
            [
                "Musk paid $44 billion.",
                "Growth was 3.5 per cent.",
                "Staff fell to 1,600.",
                "25 remain.",
            ],
        ),
        (
            "He lives at No. 10 Downing St. with staff.",
            ["He lives at No. 10 Downing St. with staff."],
        ),
        ("Wait... what? Yes! It works.", ["Wait... what?", "Yes!", "It works."]),
    ],
)
def test_split_sentences_inline(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_split_sentences_paragraphs_headings_and_bullets() -> None:
    text = (
        "Internal records\n\n"
        "The following reasons hindered the company:\n"
        "  \u2022 Layoffs\n"
        "  \u2022 Mass-firings\n"
        "- Resignations\n"
        "1. First item\n\n"
        "A paragraph that was hard\nwrapped in the middle. Second sentence.\n"
        "Next paragraph without a full stop\n"
        "Another one."
    )
    assert split_sentences(text) == [
        "Internal records",
        "The following reasons hindered the company:",
        "Layoffs",
        "Mass-firings",
        "Resignations",
        "First item",
        "A paragraph that was hard wrapped in the middle.",
        "Second sentence.",
        "Next paragraph without a full stop",
        "Another one.",
    ]


def test_split_sentences_empty_and_whitespace() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\n \t ") == []
    assert split_sentences("  One sentence  ") == ["One sentence"]


# --------------------------------------------------------------------------- normalise


def test_normalise() -> None:
    assert normalise("  Caf\u00e9 \u201cQuoted\u201d \u2014 it\u2019s\u00a0DONE ") == (
        'cafe "quoted" - it\'s done'
    )
    assert normalise("Stra\u00dfe  na\u00efve\tR\u00e9sum\u00e9\n") == "strasse naive resume"
    assert normalise("\u2018single\u2019 \u2013 dash") == "'single' - dash"
    assert normalise("") == ""


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("25 of the 1,600 workers", ("25", "1600")),
        ("1.6 thousand people", ("1600",)),
        ("$44 billion", ("44000000000",)),
        ("a $44bn deal and \u00a31.2bn more", ("44000000000", "1200000000")),
        ("$5m and 10k runners", ("5000000", "10000")),
        ("25% and 30 percent and 40 per cent", ("25%", "30%", "40%")),
        ("ten percent", ("10%",)),
        ("up 4.5 percentage points", ("4.5%",)),
        ("seven workers and twenty-five staff", ("7", "25")),
        ("twelve groups", ("12",)),
        ("a dozen groups, dozens of others", ("12",)),
        ("one of the folks, no one else, one million users", ("1000000",)),
        ("3.50 and 3.5", ("3.5",)),
        ("covid-19 and the g20", ()),
        ("By the end of 2021 Twitter employed more than 7,500 people", ("2021", "7500")),
        ("on Dec. 12, 2022 and January 6th and 14 February", ("2022",)),
        ("thousands march and 14 march", ("14",)),  # "march" after a number: a verb
        ("the 5 may be wrong", ("5",)),
        ("no figures here", ()),
    ],
)
def test_extract_numbers(text: str, expected: tuple[str, ...]) -> None:
    assert extract_numbers(text) == expected


def test_number_kinds_tell_years_dates_and_counts_apart() -> None:
    kinds = {
        n.value: n.kind for n in number_values("On Jan. 6, 2021, 2,000 staff and 2000 more, 25%")
    }
    assert kinds == {"6": "date", "2021": "year", "2000": "year", "25%": "percent"}
    # "2,000" with a comma is a count even though "2000" alone reads as a year
    values = [(n.value, n.kind) for n in number_values("2,000 staff in 2000")]
    assert values == [("2000", "count"), ("2000", "year")]


def test_mask_numbers() -> None:
    assert mask_numbers(normalise("Only 25 of the 1,600 workers")) == "only # of the # workers"
    assert mask_numbers("no figures") == "no figures"


# --------------------------------------------------------------------------- words


def test_content_words_drop_stopwords_and_normalise_figures() -> None:
    assert content_words("Musk's Twitter employed 1,600 workers") == [
        "musk",
        "twitter",
        "employ",
        "1600",
        "worker",
    ]


def test_stemming_is_consistent_across_forms() -> None:
    assert stem("claims") == stem("claimed") == stem("claim") == stem("claiming")
    assert stem("employees") == stem("employed") == stem("employ")
    assert stem("making") == stem("makes") == stem("make")
    assert stem("families") == stem("family")
    assert stem("abc") == "abc"


def test_content_words_clean_tweets() -> None:
    words = content_words(
        "How are butterflies surviving the #AustralianFires? pic.twitter.com/0eJtwJyS1J "
        "https://t.co/abc \u2014 Center for Bio Div (@CenterForBioDiv) January 14, 2020"
    )
    assert "australian" in words and "fir" in words  # hashtag split into words
    assert "center" in words and "bio" in words  # handle split too
    assert not any("twitter" in w or "http" in w or "abc" in w for w in words)  # URLs dropped
    assert "14" not in words  # a day of the month is not a figure
    assert "2020" in words


def test_analyse_names() -> None:
    features = analyse("By the end of 2021, Twitter employed more than 7,500 people.")
    assert features.names == {"twitter"}
    features = analyse("Tesla employed more than 100,000 people. Last year was hard.")
    assert features.opening_names == {"tesla"}  # "Last" is an ordinary opener
    assert analyse("Did Trump Display An Altered Map?").names == frozenset()  # Title Case
