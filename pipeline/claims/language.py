"""Languages: the article's language decides the stemmer and the stop words.

English goes through :func:`pipeline.text.analyse` (claimwatch's own light
stemmer, tuned on CLEF). Another language goes through the Snowball stemmer for
it (PyStemmer, the C build of the Snowball stemmers) and its stop words below;
the figures, the masked text and the normalised text are the same as for
English. A claims table may give a claim in several languages (aliases): each
claim text is analysed in the language :func:`detect_language` finds in it, so
a German article meets the German wording of a claim with the same stems.

The stop word lists are short on purpose (the most frequent function words of
each language): they only keep words that say nothing from weighing in the
retrieval; IDF does the rest.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from functools import lru_cache

from pipeline.text import STOPWORDS as ENGLISH_STOPWORDS
from pipeline.text import TextFeatures, analyse

__all__ = ["SNOWBALL", "analyse_lang", "detect_language", "normalise_lang"]

SNOWBALL = {
    "de": "german", "es": "spanish", "fr": "french", "it": "italian", "pt": "portuguese",
    "nl": "dutch", "sv": "swedish", "da": "danish", "no": "norwegian", "fi": "finnish",
}

_STOPWORDS: dict[str, frozenset[str]] = {
    "de": frozenset(
        "der die das den dem des ein eine einen einem einer eines und oder aber auch als am an "
        "auf aus bei bis durch für hat haben hatte hatten ist sind war waren wird werden wurde "
        "wurden sein seine seiner ihr ihre ihren er sie es wir ich du man mit nach nicht noch "
        "nur so über um unter vom von vor zu zum zur im in ins dass daß wie wenn was wer sich "
        "dies diese dieser dieses auch schon sehr mehr kein keine".split()),
    "es": frozenset(
        "el la los las un una unos unas y o pero también como en de del al a con por para sin "
        "sobre entre es son fue fueron ser ha han había era eran está están este esta estos "
        "estas ese esa su sus lo le les se que qué quien cuando donde muy más no ni ya "
        "nos mi tu sí porque hasta desde".split()),
    "fr": frozenset(
        "le la les un une des du de d l et ou mais aussi comme en dans au aux à avec par pour "
        "sans sur entre est sont était étaient été être a ont avait ce cette ces son sa ses "
        "leur leurs il elle ils elles on nous vous je tu se que qui quoi quand où très plus "
        "ne pas n qu y".split()),
    "it": frozenset(
        "il lo la i gli le un uno una e o ma anche come in di del della dei delle al alla a da "
        "con per su tra fra è sono era erano stato essere ha hanno aveva questo questa questi "
        "quello quella suo sua suoi sue lui lei loro si che chi quando dove molto più non".split()),
    "pt": frozenset(
        "o a os as um uma uns umas e ou mas também como em no na nos nas de do da dos das ao à "
        "com por para sem sobre entre é são foi foram ser tem têm tinha era eram este esta "
        "estes estas esse essa seu sua seus suas ele ela eles elas se que quem quando onde "
        "muito mais não".split()),
    "nl": frozenset(
        "de het een en of maar ook als in op aan bij met van voor naar door over uit om tot "
        "is zijn was waren wordt worden werd heeft hebben had hij zij ze het wij ik je zich "
        "dat die dit deze wat wie wanneer waar zeer meer niet geen nog al".split()),
}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


_ASCII_TOKEN = re.compile(r"[a-z]+")
# non-ASCII punctuation common in news text (none is a letter, so each separates tokens
# as a space does)
_PUNCTUATION = ("\u2019", "\u2018", "\u201c", "\u201d", "\u2013", "\u2014", "\u2026",
                "\u00a0")


def _tokens(low: str) -> list[str]:
    """``_TOKEN.findall(low)`` of a lowercased text, faster: with its common non-ASCII
    punctuation made spaces, an ASCII text's letters are a-z (a Unicode class is
    several times slower to match)."""
    if not low.isascii():
        for mark in _PUNCTUATION:
            if mark in low:
                low = low.replace(mark, " ")
        if not low.isascii():
            return _TOKEN.findall(low)
    return _ASCII_TOKEN.findall(low)


def normalise_lang(lang: str | None) -> str | None:
    """``"de-DE"`` -> ``"de"``; ``None`` for nothing usable."""
    if not lang:
        return None
    code = lang.strip().lower().replace("_", "-").split("-")[0]
    return code if len(code) == 2 and code.isalpha() else None


def detect_language(text: str) -> str:
    """The language whose stop words the text uses most (``"en"`` when unsure).

    A cheap guess for short texts (claims, aliases) where no declared language
    exists: at least two stop word hits and more than English's are needed.
    """
    tokens = _tokens(text.lower())
    if len(tokens) < 3:
        return "en"
    # each distinct token counted once per language (a set intersection, not a loop)
    counts = Counter(tokens)
    distinct = set(counts)

    def hits(words: frozenset[str]) -> int:
        return sum(counts[t] for t in words & distinct)

    best, best_hits = "en", hits(ENGLISH_STOPWORDS)
    for lang, words in _STOPWORDS.items():
        found = hits(words)
        if found >= 2 and found > best_hits:
            best, best_hits = lang, found
    return best


@lru_cache(maxsize=16)
def _stemmer(lang: str):  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer(SNOWBALL[lang])


@lru_cache(maxsize=8192)
def analyse_lang(text: str, lang: str | None = None) -> TextFeatures:
    """:func:`pipeline.text.analyse` in ``lang``: its stemmer and stop words for the words.

    English, an unknown language or one without a Snowball stemmer: ``analyse``.
    """
    code = normalise_lang(lang) or "en"
    features = analyse(text)
    if code == "en" or code not in SNOWBALL:
        return features
    stop = _STOPWORDS.get(code, frozenset())
    tokens = [t for t in _TOKEN.findall(features.masked) if t not in stop and len(t) > 1]
    stems = _stemmer(code).stemWords(tokens)
    figures = [w for w in features.words if w[:1].isdigit()]
    out = dataclasses.replace(features, words=tuple(stems) + tuple(figures))
    # names are found with the English stemmer; across languages they would not meet
    out.__dict__["_name_sets"] = (frozenset(), frozenset())
    return out
