"""Topic query: boolean term lists matched on whole words and phrases.

Case- and accent-insensitive; a term is a word or a phrase ("Trust and
Safety", "X Corp"); it matches on word boundaries only, so "X" does not match
"Xbox" and "child" does not match "children" unless written as "child*"
(a trailing ``*`` is a prefix match).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from config.models import Query


def fold(text: str) -> str:
    """Casefold and strip accents; unify apostrophes and dashes."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"[\u2010-\u2015]", "-", text)
    return text.casefold()


def term_pattern(term: str) -> re.Pattern[str]:
    term = fold(term.strip().strip('"'))
    prefix = term.endswith("*")
    term = term.rstrip("*")
    words = [re.escape(word) for word in term.split()]
    body = r"[\s\-]+".join(words)
    tail = r"\w*" if prefix else ""
    return re.compile(rf"(?<!\w){body}{tail}(?!\w)")


@dataclass(frozen=True)
class CompiledQuery:
    any: tuple[re.Pattern[str], ...]
    all: tuple[re.Pattern[str], ...]
    none: tuple[re.Pattern[str], ...]
    and_any: tuple[re.Pattern[str], ...]

    def matches(self, *texts: str | None) -> bool:
        if not (self.none or self.any or self.and_any or self.all):
            return True  # an empty query: every page is on topic (no need to fold it)
        haystack = fold("\n".join(t for t in texts if t))
        if self.none and any(p.search(haystack) for p in self.none):
            return False
        if self.any and not any(p.search(haystack) for p in self.any):
            return False
        if self.and_any and not any(p.search(haystack) for p in self.and_any):
            return False
        return all(p.search(haystack) for p in self.all)


def compile_query(query: Query) -> CompiledQuery:
    return CompiledQuery(
        any=tuple(term_pattern(t) for t in query.any),
        all=tuple(term_pattern(t) for t in query.all),
        none=tuple(term_pattern(t) for t in query.none),
        and_any=tuple(term_pattern(t) for t in query.and_any),
    )
