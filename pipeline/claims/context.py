"""What a sentence has that a lone tweet has not: its article, neighbours, speaker and date.

:class:`ArticleContext` carries what the matcher may know about the article a
sentence comes from: its title, its publication date, its language, and, when
the source names them (a transcript), the speaker of each sentence. From it,
:func:`sentence_contexts` derives per sentence:

- a *window*: the sentence with its neighbours and the article title, embedded
  to compare with a claim when the sentence alone is too short to say what it
  is about ("He said it again on Tuesday.");
- a *speaker*: given, or resolved for a sentence that attributes a statement to
  a pronoun ("he said", "she told") to the last person the text named before it
  (``Elon Musk ... He said ...`` -> ``Elon Musk``);
- the article's date, compared with a claim's ``first_reported``: a claim made
  years before or after an article is seldom the one it repeats.

Text written for social media is made readable first (:func:`readable`): a
``@handle`` or ``#HashTag`` becomes its words, links are dropped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import overload

__all__ = ["ArticleContext", "LazyContexts", "SentenceContext", "parse_date", "readable",
           "sentence_contexts"]


@dataclass(frozen=True)
class ArticleContext:
    """What is known about the article whose sentences are matched (all optional)."""

    title: str | None = None
    published: dt.date | dt.datetime | str | None = None
    lang: str | None = None
    # the speaker of each sentence, where the source names them (a debate transcript)
    speakers: Sequence[str | None] | None = None


@dataclass(frozen=True)
class SentenceContext:
    window: str  # the sentence, its neighbours and the title
    speaker: str | None
    day: int | None  # proleptic ordinal of the article's date


_MONTHS = ("january february march april may june july august september october "
           "november december").split()
_MONTH_RE = "|".join(m.capitalize() for m in _MONTHS) + "|" + "|".join(
    m[:3].capitalize() for m in _MONTHS)
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"),
    re.compile(rf"\b(\d{{1,2}})\s+({_MONTH_RE})\.?\s+(\d{{4}})\b"),
    re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}}),?\s+(\d{{4}})\b"),
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"),
)


def _month(name: str) -> int:
    return [m[:3] for m in _MONTHS].index(name[:3].lower()) + 1


@lru_cache(maxsize=65536)
def _parse_date_text(text: str) -> int | None:
    for i, pattern in enumerate(_DATE_PATTERNS):
        m = pattern.search(text)
        if not m:
            continue
        try:
            if i in (0, 3):
                day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
            elif i == 1:
                day = dt.date(int(m.group(3)), _month(m.group(2)), int(m.group(1)))
            else:
                day = dt.date(int(m.group(3)), _month(m.group(1)), int(m.group(2)))
        except ValueError:
            continue
        if 1900 <= day.year <= 2200:
            return day.toordinal()
    return None


def parse_date(value: dt.date | dt.datetime | str | None) -> int | None:
    """The day (proleptic ordinal) a date or a text naming one gives, or ``None``.

    Reads ISO dates, ``26 May 2015``, ``May 26, 2015`` (also inside a longer text
    such as PolitiFact's "stated on October 22, 2019 in a mailer") and ``20150526``.
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().toordinal()
    if isinstance(value, dt.date):
        return value.toordinal()
    return _parse_date_text(str(value)[:200])


_LINK = re.compile(r"https?://\S+|pic\.twitter\.com/\S+|\bt\.co/\S+")
_TAG = re.compile(r"(?<![\w@#])[@#]([A-Za-z][A-Za-z0-9_]{1,30})")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|_")


def readable(text: str) -> str:
    """``text`` with ``@handles``/``#HashTags`` as words and links dropped.

    ``@BernieSanders took Nevada #FeelTheBern https://t.co/x`` ->
    ``Bernie Sanders took Nevada Feel The Bern``. Text without ``@``, ``#`` or a
    link is returned as it is.
    """
    if "@" not in text and "#" not in text and "http" not in text and "t.co" not in text:
        return text
    text = _LINK.sub(" ", text)
    text = _TAG.sub(lambda m: " " + _CAMEL.sub(" ", m.group(1)) + " ", text)
    return " ".join(text.split())


# a statement attributed to a pronoun: "he said", "she told reporters", "he has said"
_PRONOUN_SAYS = re.compile(
    r"\b(?:he|she)\s+(?:has\s+|had\s+|also\s+|then\s+|later\s+)?"
    r"(?:said|says|told|claimed|claims|wrote|tweeted|posted|added|argued|insisted|"
    r"stated|announced|denied|admitted)\b",
    re.IGNORECASE,
)
# a person's name: two or three capitalised words ("Elon Musk", "Yoel Roth")
_PERSON = re.compile(r"\b([A-Z][a-z]+(?:\s+[A-Z]\.)?(?:\s+[A-Z][a-z]+){1,2})\b")
_NOT_PEOPLE = frozenset(
    "The This That These Those It In On At For From And But Or If When While As After "
    "Before Since During Trust Safety Twitter Facebook Google United States New York "
    "White House Supreme Court Monday Tuesday Wednesday Thursday Friday Saturday Sunday "
    "January February March April May June July August September October November "
    "December".split()
)


def _last_person(text: str) -> str | None:
    found = None
    for m in _PERSON.finditer(text):
        words = m.group(1).split()
        if words[0] in _NOT_PEOPLE or words[-1] in _NOT_PEOPLE:
            continue
        found = m.group(1)
    return found


class LazyContexts(Sequence[SentenceContext]):
    """:func:`sentence_contexts`, each made only when read (the same values).

    An article's matcher needs the context of the few sentences that have a
    candidate claim, not of all of them: the window is joined, and a pronoun's
    speaker looked for in the sentences before it, only for those.
    """

    def __init__(self, sentences: Sequence[str], context: ArticleContext | None,
                 neighbours: int = 2) -> None:
        self._sentences = sentences
        self._neighbours = neighbours
        self._title = (context.title or "") if context else ""
        self._day = parse_date(context.published) if context else None
        self._given = list(context.speakers) if context and context.speakers else []
        self._made: dict[int, SentenceContext] = {}

    def __len__(self) -> int:
        return len(self._sentences)

    @overload
    def __getitem__(self, i: int) -> SentenceContext: ...

    @overload
    def __getitem__(self, i: slice) -> list[SentenceContext]: ...

    def __getitem__(self, i: int | slice) -> SentenceContext | list[SentenceContext]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        found = self._made.get(i)
        if found is None:
            found = self._made[i] = self._make(i)
        return found

    def _make(self, i: int) -> SentenceContext:
        sentences = self._sentences
        lo, hi = max(0, i - self._neighbours), min(len(sentences), i + self._neighbours + 1)
        window = " ".join([self._title, *sentences[lo:hi]]) if self._title else " ".join(
            sentences[lo:hi])
        speaker = self._given[i] if i < len(self._given) else None
        if speaker is None and _PRONOUN_SAYS.search(sentences[i]):
            # the last person named before it (what sentence_contexts carries forward)
            for j in range(i - 1, -1, -1):
                speaker = _last_person(sentences[j])
                if speaker:
                    break
        return SentenceContext(window=window, speaker=speaker, day=self._day)


def sentence_contexts(
    sentences: Sequence[str], context: ArticleContext | None, neighbours: int = 2
) -> list[SentenceContext]:
    """Per sentence: its window, its (resolved) speaker and the article's day."""
    title = (context.title or "") if context else ""
    day = parse_date(context.published) if context else None
    given = list(context.speakers) if context and context.speakers else []
    out: list[SentenceContext] = []
    last_person: str | None = None
    for i, sentence in enumerate(sentences):
        lo, hi = max(0, i - neighbours), min(len(sentences), i + neighbours + 1)
        window = " ".join([title, *sentences[lo:hi]]) if title else " ".join(sentences[lo:hi])
        speaker = given[i] if i < len(given) else None
        if speaker is None and last_person and _PRONOUN_SAYS.search(sentence):
            speaker = last_person
        person = _last_person(sentence)
        if person:
            last_person = person
        out.append(SentenceContext(window=window, speaker=speaker, day=day))
    return out
