"""Pure text helpers for claim matching: sentences, normalisation, numbers, words.

Nothing here knows about Scrapy, databases or claims; every function is
deterministic and side-effect free (a few caches aside).

- :func:`split_sentences` splits extracted article text (paragraphs separated by
  newlines, as trafilatura produces it) into sentences, without breaking on
  abbreviations (``Mr.``, ``U.S.``, ``Inc.``, ``Dec.``), decimal figures
  (``3.5``, ``1,600``) or quotations (``"...," he said.``).
- :func:`normalise` casefolds, strips accents and unifies quotes, dashes and
  whitespace.
- :func:`extract_numbers` returns the figures of a text as normalised strings
  (``"1,600"`` -> ``"1600"``, ``"$44 billion"`` -> ``"44000000000"``,
  ``"25 percent"`` -> ``"25%"``, ``"seven"`` -> ``"7"``).
- :func:`content_words` returns normalised, lightly stemmed content words with
  stopwords removed, numbers normalised; URLs dropped and ``#CamelCase`` hashtags
  and ``@handles`` split into words (tweets are matched too).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Generic, TypeVar, overload

__all__ = [
    "Number",
    "TextFeatures",
    "analyse",
    "content_words",
    "extract_numbers",
    "mask_numbers",
    "normalise",
    "number_values",
    "split_sentences",
    "stem",
]

_T = TypeVar("_T")

# --------------------------------------------------------------------------- normalise

_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "`": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u200b": "",
    }
)
# str.translate with a dict maps a non-ASCII text character by character in Python
# objects; one str.replace per character actually present is ~8x faster (no
# replacement is itself a key, so the order does not matter).
_REPLACEMENTS = tuple((chr(key), value) for key, value in _TRANSLATE.items())


def _unify(text: str) -> str:
    """``text.translate(_TRANSLATE)``, faster."""
    for char, replacement in _REPLACEMENTS:
        if char in text:
            text = text.replace(char, replacement)
    return text


def normalise(text: str) -> str:
    """Casefold, strip accents, unify quotes and dashes, collapse whitespace.

    >>> normalise("  Café “Quoted” — it’s\\u00a0DONE ")
    'cafe "quoted" - it\\'s done'
    """
    if not text.isascii():
        text = _unify(text)
        if not text.isascii():
            text = unicodedata.normalize("NFKD", text)
            if not text.isascii():
                text = "".join(ch for ch in text if not unicodedata.combining(ch))
            text = _unify(text)  # NFKD may have produced new ones
    return " ".join(text.casefold().split())


# --------------------------------------------------------------------------- sentences

# Abbreviations that never end a sentence (titles, "No. 5", initials are handled apart).
_ABBREV_NEVER = frozenset(
    """mr mrs ms mx dr prof sen rep gov gen lt col maj capt cmdr adm sgt cpl pvt rev hon
    st mt ft pres supt det insp messrs mme mlle vs v cf approx fig figs vol vols pp
    e.g i.e viz al""".split()
)
# Abbreviations that may end a sentence: split only if a typical sentence opener follows.
_ABBREV_MAYBE = frozenset(
    """inc ltd co corp plc llc bros jr sr etc a.m p.m u.s u.k u.n u.s.a d.c n.y l.a
    e.u ph.d jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur
    thurs fri sat sun est dept univ assn intl natl""".split()
)
_OPENERS = frozenset(
    """the a an it its he she they we i you this that these those there here but and
    so yet or in on at as if when while after before since during despite however
    meanwhile still then now today his her their our my what who how why where
    according some many most all no not one two three four five six seven eight
    nine ten""".split()
)

_BULLET = re.compile(
    r"^\s*(?:[\u2022\u25aa\u25cf\u25e6\u2023\u2043\u00b7\u25ba\u27a2*+>-]|\d{1,2}[.)](?=\s))\s*"
)
_TERMINAL_END = re.compile(r"[.!?\u2026:;]['\"\u2019\u201d)\]]*$")
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace.
_BOUNDARY = re.compile(r"([.!?\u2026]+)(['\"\u2019\u201d)\]]*)(\s+)")
_OPEN_NEXT = re.compile(r"['\"\u2018\u201c(\[]*([^\s'\"\u2018\u201c(\[])")
_WORD_AT = re.compile(r"[\w']+")


def _last_token(text: str, end: int) -> str:
    """The run of non-space characters that ends at ``end`` ("" after a space).

    Walks back from ``end`` instead of searching ``(\\S+)$`` from the start of the
    line: that search made each boundary cost the length of the paragraph before it
    (quadratic in a long paragraph: 6.2 ms per page of the 362 real test pages, now 0.4).
    """
    start = end
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    return text[start:end]


def _is_boundary(text: str, match: re.Match[str]) -> bool:
    punct, closers = match.group(1), match.group(2)
    nxt = _OPEN_NEXT.match(text, match.end())
    if nxt is None:
        return False
    first = nxt.group(1)
    opened = nxt.start(1) > match.end()  # next sentence opens with a quote/bracket
    if not (first.isupper() or first.isdigit() or opened):
        return False  # '"..., he said.' or a lowercase continuation
    if punct != "." or closers:
        return True
    token = _last_token(text, match.start(1))
    if not token:
        return True
    token = token.lstrip("'\"\u2018\u201c([").casefold()
    if len(token) == 1 and token.isalpha():
        return False  # an initial: "J. K. Rowling", "Donald J. Trump"
    if token == "no" and first.isdigit():
        return False  # "No. 10"
    if token in _ABBREV_NEVER:
        return False
    if token in _ABBREV_MAYBE or ("." in token and token.replace(".", "").isalpha()):
        word = _WORD_AT.match(text, nxt.start(1))
        return word is not None and word.group(0).casefold() in _OPENERS
    return True


def _split_unit(unit: str) -> list[str]:
    out: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(unit):
        if _is_boundary(unit, match):
            piece = unit[start : match.end(2)].strip()
            if piece:
                out.append(piece)
            start = match.end()
    tail = unit[start:].strip()
    if tail:
        out.append(tail)
    return out


def _units(text: str) -> list[str]:
    """Paragraph/line units: bullets and headings stand alone; wrapped lines are joined."""
    units: list[str] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        current: str | None = None
        for raw in block.split("\n"):
            line = " ".join(raw.split())
            if not line:
                continue
            bullet = _BULLET.match(line)
            if bullet and len(line) > bullet.end():
                if current:
                    units.append(current)
                current = line[bullet.end() :]
                continue
            if current is not None and not _TERMINAL_END.search(current) and line[0].islower():
                current = f"{current} {line}"  # a hard-wrapped line continues
                continue
            if current:
                units.append(current)
            current = line
        if current:
            units.append(current)
    return units


def split_sentences(text: str) -> list[str]:
    """Split article text into stripped sentences.

    Paragraph breaks, bullet items and heading lines always end a sentence; a
    single line break inside a paragraph does not when the next line continues
    in lowercase. Inside a line, a sentence ends at ``.``, ``!``, ``?`` or ``…``
    (plus closing quotes) followed by an uppercase letter, a digit or an opening
    quote, except after abbreviations and initials.
    """
    sentences: list[str] = []
    for unit in _units(text):
        sentences.extend(_split_unit(unit))
    return sentences


# --------------------------------------------------------------------------- numbers

_SMALL = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {
    "hundred": 100,
    "thousand": 1_000,
    "million": 1_000_000,
    "billion": 1_000_000_000,
    "trillion": 1_000_000_000_000,
    "k": 1_000,
    "m": 1_000_000,
    "mn": 1_000_000,
    "mln": 1_000_000,
    "b": 1_000_000_000,
    "bn": 1_000_000_000,
    "tn": 1_000_000_000_000,
    "dozen": 12,
}
_WORD_NUM = "|".join(sorted(set(_SMALL) - {"zero"} | set(_TENS), key=len, reverse=True))
_SCALE_LONG = "hundred|thousand|million|billion|trillion"

_NUMBER_RE = re.compile(
    rf"""
    (?P<cur>[$\u00a3\u20ac\u00a5])?\s?
    (?:
        (?<![a-z0-9.,])(?<![a-z]-)
        (?P<num>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
        (?:(?:st|nd|rd|th)\b)?
        (?:\s?(?P<scale>{_SCALE_LONG}|bn|mn|mln|tn)\b|(?P<short>[kmb])\b)?
      |
        \b(?P<word>(?:{_WORD_NUM})(?:[\s-](?:{_WORD_NUM}))?)
        (?:\s(?P<wscale>{_SCALE_LONG}))?\b
      |
        \b(?P<dozen>a\sdozen|dozens?)\b
    )
    (?P<pct>\s?%|\s(?:percent|per\scent|pct)\b|\s(?:percentage\spoints?)\b)?
    (?![a-z0-9])
    """,
    re.VERBOSE,
)
# "one" is a number only with a scale ("one million"); otherwise it is mostly a
# pronoun ("no one", "one of the", "the one").


@dataclass(frozen=True, slots=True)
class Number:
    """One figure in a text: its normalised value string and its kind."""

    value: str  # "1600", "3.5", "25%", "44000000000", "2021"
    kind: str  # "count" | "percent" | "year" | "date" (a day of the month)
    start: int = 0
    end: int = 0


def _format_decimal(value: Decimal | int) -> str:
    if isinstance(value, int):
        return str(value)
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _word_value(words: str) -> int | None:
    parts = re.split(r"[\s-]+", words)
    total = 0
    for part in parts:
        if part in _TENS:
            total += _TENS[part]
        elif part in _SMALL:
            total += _SMALL[part]
        else:
            return None
    if len(parts) == 2 and not (parts[0] in _TENS and parts[1] in _SMALL and _SMALL[parts[1]] < 10):
        return None  # "five six" or "twenty thirty" are two numbers or none
    return total


_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_MONTH_BEFORE = re.compile(rf"\b(?:{_MONTHS})\.?\s$")
# "5 may be", "thousands march": "may" and "march" after a number are rarely months
_MONTH_AFTER = re.compile(rf"\s(?:of\s)?(?:{_MONTHS.replace('may|', '').replace('march|', '')})\b")


def _is_day_of_month(norm: str, m: re.Match[str], value: Decimal | int) -> bool:
    """``Jan. 6``, ``January 6th``, ``6 January``: a day, not a figure."""
    if m.group("cur") or m.group("scale") or m.group("short") or m.group("pct"):
        return False
    if not (1 <= value <= 31 and (isinstance(value, int) or value == value.to_integral_value())):
        return False
    start = m.start("num")
    if _MONTH_BEFORE.search(norm, max(0, start - 12), start):
        return True
    return bool(_MONTH_AFTER.match(norm, m.end()))


_HAS_DIGIT = re.compile(r"\d")
_NUMBER_WORDS = frozenset(_SMALL) | frozenset(_TENS) | {"dozen"}
_PUNCT_SPACE = str.maketrans({ch: " " for ch in "-,.;:!?'\"()[]/"})
# Where a figure's digits or words can begin; a match of _NUMBER_RE starts there or
# at most two characters before (a currency sign and a space).
_NUMBER_START = re.compile(rf"(?=\d|\.\d|\b(?:{_WORD_NUM}|a\sdozen|dozen))")
# the digits and decimal points among them (a leading character class lets the
# regex engine skip to candidates)
_DIGIT_START = re.compile(r"[\d.](?:(?<=\d)|(?=\d))")
_START_WORDS = frozenset(_SMALL) - {"zero"} | frozenset(_TENS)


def _number_starts(norm: str, tokens: list[str] | None) -> list[int]:
    """Where _NUMBER_START matches, or more places; in order.

    With ``tokens`` (``_WORD_RE.findall(norm)``), number words are looked for
    only if some token (or part of one split on ``'``) is one: a figure in words
    starts with a whole word, and a whole word is a token or such a part.
    """
    if tokens is None:
        return [m.start() for m in _NUMBER_START.finditer(norm)]
    starts = [m.start() for m in _DIGIT_START.finditer(norm)]
    parts = set(tokens)
    if "'" in norm:
        parts.update(p for t in tokens if "'" in t for p in t.split("'"))
    words = _START_WORDS.intersection(parts)
    dozen = "dozen" in parts or "dozens" in parts
    if words or dozen:
        for word in words:
            at = norm.find(word)
            while at >= 0:
                starts.append(at)
                at = norm.find(word, at + 1)
        if dozen:
            at = norm.find("dozen")
            while at >= 0:
                starts.append(at)
                if at >= 2:
                    starts.append(at - 2)  # "a dozen"
                at = norm.find("dozen", at + 1)
        starts.sort()
    return starts


def _number_matches(norm: str, tokens: list[str] | None = None) -> Iterator[re.Match[str]]:
    """``_NUMBER_RE.finditer(norm)``, trying the pattern only where a figure can start.

    finditer tries the (long, lookbehind-laden) pattern at every position; every
    match starts at most two characters before a digit, a decimal point or a
    number word, so trying those few positions in order finds the same matches.
    """
    pos = 0  # where the previous match ended
    tried = 0  # positions below this were tried
    match = _NUMBER_RE.match
    for at in _number_starts(norm, tokens):
        for p in range(max(pos, tried, at - 2), at + 1):
            m = match(norm, p)
            if m is not None:
                yield m
                pos = m.end()
                break
        tried = max(tried, at + 1)


def _may_have_numbers(norm: str, tokens: list[str] | None, digits: bool | None = None) -> bool:
    """A digit, or a number word standing alone between spaces and punctuation.

    ``tokens`` (``_WORD_RE.findall(norm)``), when given, rule most texts out at
    once: such a number word is a token, or a part of one split on ``'``.
    ``digits``: whether ``norm`` has a digit, if known.
    """
    if digits is None:
        digits = _HAS_DIGIT.search(norm) is not None
    if digits:
        return True
    if tokens is not None and _NUMBER_WORDS.isdisjoint(tokens) and (
        "'" not in norm
        or not any(not _NUMBER_WORDS.isdisjoint(t.split("'")) for t in tokens if "'" in t)
    ):
        return False
    return not _NUMBER_WORDS.isdisjoint(norm.translate(_PUNCT_SPACE).split())


def _numbers_in_normalised(
    norm: str, tokens: list[str] | None = None, digits: bool | None = None
) -> list[Number]:
    if not _may_have_numbers(norm, tokens, digits):
        return []
    found: list[Number] = []
    for m in _number_matches(norm, tokens):
        pct = m.group("pct") is not None
        value: Decimal | int  # exact either way; whole numbers as int (faster)
        if m.group("num") is not None:
            raw = m.group("num")
            try:
                value = (Decimal(raw.replace(",", "")) if "." in raw
                         else int(raw.replace(",", "")))
            except (InvalidOperation, ValueError):  # pragma: no cover - the regex admits digits
                continue
            scale_word = m.group("scale") or m.group("short")
            if m.group("short") and not (m.group("cur") or pct):
                # bare "5m"/"10k" are figures ("10k runners"); "3b" is not
                if m.group("short") == "b":
                    continue
            if scale_word:
                value *= _SCALES[scale_word]
            is_year = (
                not pct
                and not scale_word
                and not m.group("cur")
                and len(raw) == 4
                and raw.isdigit()
                and 1900 <= int(raw) <= 2100
            )
            kind = "percent" if pct else ("year" if is_year else "count")
        elif m.group("word") is not None:
            words = m.group("word")
            wscale = m.group("wscale")
            word_value = _word_value(words)
            if word_value is None:
                # two separate words matched as one: keep the first only
                first = re.split(r"[\s-]+", words)[0]
                word_value = _SMALL.get(first, _TENS.get(first))
                wscale = None
                if word_value is None:
                    continue
            if words == "one" and not wscale:
                continue
            value = word_value
            if wscale:
                value *= _SCALES[wscale]
            kind = "percent" if pct else "count"
        else:
            dozen = m.group("dozen")
            if dozen != "a dozen":
                continue  # "dozens of" is not a figure
            value = 12
            kind = "count"
        if kind == "count" and m.group("num") is not None and _is_day_of_month(norm, m, value):
            kind = "date"
        text = _format_decimal(value) + ("%" if kind == "percent" else "")
        found.append(Number(text, kind, m.start(), m.end()))
    return found


def extract_numbers(text: str) -> tuple[str, ...]:
    """Normalised figures in order of appearance, each once.

    ``"25 of the 1,600 workers"`` -> ``("25", "1600")``; ``"$44 billion"`` ->
    ``("44000000000",)``; ``"1.6 thousand"`` -> ``("1600",)``; ``"25 percent"``
    -> ``("25%",)``; ``"seven"`` -> ``("7",)``; ``"twenty-five"`` -> ``("25",)``.
    Years (four digits 1900-2100, no comma) are kept; :func:`number_values`
    tells them apart. Days of the month ("Jan. 6", "6 January") are not
    figures, nor is the pronoun "one" ("one million" is).
    """
    return tuple(dict.fromkeys(n.value for n in number_values(text) if n.kind != "date"))


def number_values(text: str) -> tuple[Number, ...]:
    """Like :func:`extract_numbers`, with kinds (count/percent/year/date), dates included."""
    return tuple(_numbers_in_normalised(normalise(text)))


def mask_numbers(norm: str) -> str:
    """Replace every figure in an already normalised text by ``#``."""
    return _mask(norm, _numbers_in_normalised(norm))


def _mask(norm: str, numbers: list[Number] | tuple[Number, ...]) -> str:
    if not numbers:
        return norm
    parts: list[str] = []
    pos = 0
    for n in numbers:
        parts.append(norm[pos : n.start])
        parts.append(" # ")
        pos = n.end
    parts.append(norm[pos:])
    return " ".join("".join(parts).split())


# --------------------------------------------------------------------------- words

STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't
    do does doesn't doing don't down during each few for from further had hadn't has hasn't
    have haven't having he he'd he'll he's her here here's hers herself him himself his how
    how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
    mustn't my myself no nor not of off on once only or other ought our ours ourselves out
    over own same shan't she she'd she'll she's should shouldn't so some such than that
    that's the their theirs them themselves then there there's these they they'd they'll
    they're they've this those through to too under until up very was wasn't we we'd we'll
    we're we've were weren't what what's when when's where where's which while who who's
    whom why why's with won't would wouldn't you you'd you'll you're you've your yours
    yourself yourselves also just will may might must shall us via amp rt s t d ll m re ve
    y im dont doesnt didnt isnt wasnt cant wont its one""".split()
)

_URL_RE = re.compile(
    r"(?:https?://|www\.)\S+|\bpic\.twitter\.com/\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|co|ly|gov|io)/\S*",
    re.IGNORECASE,
)
_TAG_RE = re.compile(r"[#@]([A-Za-z0-9_]+)")
_CAMEL_RE = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])|_"
)
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|#")


def _split_tag(match: re.Match[str]) -> str:
    return " " + _CAMEL_RE.sub(" ", match.group(1)) + " "


def _clean_markup(text: str) -> str:
    """Drop URLs, split ``#CamelCaseTags`` and ``@handles`` into words (before casefolding)."""
    if "/" in text or "www" in text:
        text = _URL_RE.sub(" ", text)
    if "#" in text or "@" in text:
        text = _TAG_RE.sub(_split_tag, text)
    return text


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A light, deterministic English suffix stripper (plurals, -ed, -ing, final e).

    Consistency matters more than linguistics: ``make``, ``makes``, ``making``
    all become ``mak``; ``claimed`` and ``claims`` become ``claim``.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    w = word
    if w.endswith("'s"):
        w = w[:-2]
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses"):
        w = w[:-2]
    elif w.endswith(("xes", "ches", "shes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        w = w[:-1]
    if w.endswith("ied") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("eed"):
        if len(w) > 5:
            w = w[:-1]  # agreed -> agree, freed stays (too short)
    elif w.endswith("ed") and len(w) > 4 and re.search(r"[aeiouy]", w[:-2]):
        w = w[:-2]
        if len(w) > 2 and w[-1] == w[-2] and w[-1] not in "lsz":
            w = w[:-1]
    elif w.endswith("ing") and len(w) > 5 and re.search(r"[aeiouy]", w[:-3]):
        w = w[:-3]
        if len(w) > 2 and w[-1] == w[-2] and w[-1] not in "lsz":
            w = w[:-1]
    if w.endswith("y") and len(w) > 3 and w[-2] not in "aeiou":
        w = w[:-1] + "i"  # family/families -> famili, deny/denied -> deni
    while w.endswith("e") and len(w) > 3:
        w = w[:-1]  # employee/employed -> employ, agree/agreed -> agr
    return w


# A capital not preceded by a word character, @, # or an apostrophe (the lookbehind
# comes after the first character so that the regex engine can skip to capitals).
_CAPITAL_RE = re.compile(r"[A-Z](?<![\w@#'\u2019][A-Z])[A-Za-z'\u2019-]*")
_SENTENCE_END = re.compile(
    r"(?:^|[.!?:;\u2022(\[\u2014]|[.!?]['\"\u2019\u201d)]+|\s[\"\u201c\u2018'-])$"
)


@lru_cache(maxsize=50_000)
def _name_stems(word: str) -> tuple[str, ...]:
    out: list[str] = []
    for token in _WORD_RE.findall(word.lower() if word.isascii() else normalise(word)):
        token = token.split("'", 1)[0]
        if token and token not in STOPWORDS and token != "#":
            stemmed = stem(token)
            out.append(CANONICAL.get(stemmed, stemmed))
    return tuple(out)


# Capitalised sentence openers that are ordinary words, never names.
_PLAIN_OPENERS = _OPENERS | frozenset(
    """last next earlier later yesterday tomorrow tonight this that such several many
    much few more less most other another former new old internal external despite
    although though because unless until also even only just still yet both each every
    either neither none nobody someone something everyone everything instead indeed
    overall already again once first second third finally meanwhile furthermore
    moreover besides regardless whether nearly almost about around over under among
    between through without within across against toward towards behind beyond
    critics officials experts sources analysts researchers reports report people
    users employees workers staff advertisers investors company companies""".split()
)
_NO_NAMES: frozenset[str] = frozenset()


@lru_cache(maxsize=50_000)
def _capital(word: str) -> tuple[bool, bool, tuple[str, ...]]:
    """A capitalised word: (an acronym?, a plain sentence opener?, its name stems)."""
    return len(word) > 1 and word.isupper(), word.casefold() in _PLAIN_OPENERS, _name_stems(word)


def _names(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Stems of capitalised words: (inside a sentence, opening a sentence).

    Capitals inside a sentence are names, places or acronyms; an opening capital
    may be one or may be any word. Both are empty for Title Case or upper-case
    texts, where capitals say nothing.
    """
    capitals = [(m.start(), m.group(0)) for m in _CAPITAL_RE.finditer(text)]
    if not capitals or len(capitals) > 0.6 * len(text.split()):
        return _NO_NAMES, _NO_NAMES
    inner: set[str] = set()
    opening: set[str] = set()
    sentence_end = _SENTENCE_END.search
    for pos, word in capitals:
        acronym, plain, stems = _capital(word)
        if acronym:
            inner.update(stems)
            continue
        before = text[pos - 8 if pos > 8 else 0 : pos].rstrip()
        at_start = sentence_end(before) is not None if before else not text[:pos].strip()
        if not at_start:
            inner.update(stems)
        elif not plain:
            opening.update(stems)
    return frozenset(inner), frozenset(opening - inner)


class _lazy(Generic[_T]):
    """A value computed from its instance on first use, then stored on it.

    ``functools.cached_property`` without its lock (Python 3.11 takes an RLock on
    every first access); computing twice in a race is harmless here, the values
    are pure functions of the instance.
    """

    def __init__(self, func: Callable[[Any], _T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> _lazy[_T]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> _T: ...

    def __get__(self, instance: object | None, owner: type) -> _T | _lazy[_T]:
        if instance is None:
            return self
        value = self.func(instance)
        instance.__dict__[self.name] = value
        return value


@dataclass(frozen=True)
class TextFeatures:
    """Everything claim matching needs from one text, computed in one pass.

    The names (:attr:`names`, :attr:`opening_names`) and :attr:`fuzzy_words` are
    derived on first use: matching needs them only for the few sentences that
    come close to a claim.
    """

    norm: str  # normalised text (URLs dropped, tags split)
    masked: str  # normalised text with figures replaced by "#"
    words: tuple[str, ...]  # content words (stemmed), numbers as normalised figures
    numbers: tuple[Number, ...]
    cleaned: str = ""  # the text with URLs dropped and tags split, before normalising
    digits: bool = True  # whether norm has a digit (False: no word is a figure)

    @property
    def number_strings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n.value for n in self.numbers if n.kind != "date"))

    @_lazy
    def _name_sets(self) -> tuple[frozenset[str], frozenset[str]]:
        return _names(self.cleaned)

    @property
    def names(self) -> frozenset[str]:
        """Stems of the capitalised words inside sentences (names, places, acronyms)."""
        return self._name_sets[0]

    @property
    def opening_names(self) -> frozenset[str]:
        """... and of capitalised sentence openers that are not plain words."""
        return self._name_sets[1]

    @_lazy
    def fuzzy_words(self) -> str:
        """The content words with every figure as ``#``: what the fuzzy scorers compare."""
        return " ".join(["#" if w[:1].isdigit() else w for w in self.words])

    @_lazy
    def fuzzy_length(self) -> int:
        """``len(self.fuzzy_words)``, without building it when no word is a figure."""
        words = self.words
        if not words:
            return 0
        if self.numbers or self.digits:
            return len(self.fuzzy_words)  # some words may be figures, shown as "#"
        return sum(map(len, words)) + len(words) - 1


# Spelling variants folded together after stemming (month abbreviations).
CANONICAL: dict[str, str] = {
    "jan": "januari",
    "feb": "februari",
    "apr": "april",
    "jun": "jun",
    "jul": "juli",
    "aug": "august",
    "sep": "september",
    "sept": "september",
    "oct": "october",
    "nov": "november",
    "dec": "december",
}


def _word_of(token: str) -> str:
    """The content word of a token: stemmed, canonical; ``""`` for a stopword."""
    if token in STOPWORDS:
        return ""
    if "'" in token:
        token = token.split("'", 1)[0]
        if token in STOPWORDS or not token:
            return ""
    word = stem(token)
    return CANONICAL.get(word, word)


# token -> _word_of(token): one dict lookup per token instead of a stopword test, a
# stemmer cache lookup and a canonical lookup. Bounded: cleared when full.
_WORD_OF: dict[str, str] = {}
_WORD_OF_MAX = 100_000


def _words_from_tokens(tokens: list[str], numbers: tuple[Number, ...]) -> tuple[str, ...]:
    """Content words of the tokens of a masked text; each ``#`` takes the next figure."""
    out: list[str] = []
    figures = iter(numbers)
    cache = _WORD_OF
    for token in tokens:
        word = cache.get(token)
        if word is None:
            if token == "#":
                number = next(figures, None)
                if number is not None and number.kind != "date":
                    out.append(number.value)
                continue
            word = _word_of(token)
            if len(cache) >= _WORD_OF_MAX:
                cache.clear()
            cache[token] = word
        if word:
            out.append(word)
    return tuple(out)


@lru_cache(maxsize=4096)
def analyse(text: str) -> TextFeatures:
    """Normalise a text once and derive its masked form, content words and figures.

    Memoised (the result is immutable): ``find_candidates`` after
    ``match_claims`` on the same sentences costs no second pass.
    """
    cleaned = _clean_markup(text)
    norm = normalise(cleaned)
    tokens = _WORD_RE.findall(norm)
    digits = _HAS_DIGIT.search(norm) is not None
    numbers = tuple(_numbers_in_normalised(norm, tokens, digits))
    if numbers:
        masked = _mask(norm, numbers)
        tokens = _WORD_RE.findall(masked)
    else:
        masked = norm
    words = _words_from_tokens(tokens, numbers)
    features = TextFeatures(norm, masked, words, numbers, cleaned, digits)
    if not (numbers or digits):  # no word is a figure: its length is known at once
        features.__dict__["fuzzy_length"] = sum(map(len, words)) + len(words) - 1 if words else 0
    return features


def content_words(text: str) -> list[str]:
    """Normalised, stemmed content words; stopwords dropped; figures normalised.

    >>> content_words("Musk's Twitter employed 1,600 workers")
    ['musk', 'twitter', 'employ', '1600', 'worker']
    """
    return list(analyse(text).words)
