"""Copies and rewrites: exact hashes, a MinHash LSH candidate index, and a confirmer.

Pure and typed, no Scrapy, no SQLAlchemy. Three layers:

1. **Exact copies** - :func:`content_hash`, sha1 of :func:`normalise_for_hash` (NFKC,
   casefold, quotes/dashes unified, punctuation stripped, whitespace collapsed).
2. **Candidates without pairwise comparison** - :func:`signatures` computes two MinHash
   signatures per text and :func:`all_band_keys` cuts them into LSH bands, one stable
   63-bit int per band (the signature kind and the band number are hashed in, so all
   bands of all kinds live in one table ``(band_key BIGINT, article_id)`` with an index
   on ``band_key``; a lookup is one indexed ``IN`` query whose cost does not depend on
   how many articles are stored).

   - ``"shingle"``: word 5-shingles of the normalised text. Finds copies (wire copies,
     syndicated copies with other boilerplate, a paragraph dropped): 20 bands x 3 rows,
     candidate probability 50 % at Jaccard ~0.37, 81 % at 0.43, 99 % at 0.6, 2 % at 0.1.
   - ``"fact"``: a *fact sketch* (:func:`fact_sketch`) - salient numbers, named-entity
     tokens and the pairs of them that share a sentence. A rewrite changes wording and
     order but keeps names, figures and which go together, so this set survives it
     (Jaccard: the seed rewrite and its source 0.74, independent reports of one story
     ~0.14, unrelated articles ~0.01): 32 bands x 3 rows, 50 % candidate probability
     at Jaccard ~0.31, 88 % at 0.4, 7 % at 0.13.

   :class:`NearDupIndex` is the in-memory twin of the SQL table (same keys, same
   semantics), used by tests and benchmarks; :meth:`NearDupIndex.query` ranks candidates
   by the number of bands they share, which estimates Jaccard, so callers can cap the
   confirmation work with ``limit``.
   Lookup cost: the band fetch touches only rows whose key matches, so it is flat in N
   for unrelated articles. Independent reports of the same story share at least one
   band in ~5 % of pairs (SemEval 2022 en-en same-story pairs: 2/36), so in a store
   where everything is about one topic the rows fetched grow by that fraction of N:
   query with a time window and ``limit`` (candidates ranked by shared bands).
3. **Confirmation** - :func:`similarity` / :func:`classify` compare the two texts:
   shingle containment (the shorter text inside the longer one: copies with other
   boilerplate), and rewrite evidence: sentence-level alignment with rapidfuzz
   (``process.cdist`` of token_set_ratio and token_sort_ratio over each sentence's
   content words, pairs matched one-to-one), overlap of salient numbers and Jaccard of
   named-entity tokens (:class:`DupFeatures`).

Where the lines are (``benchmarks/quality_dedup.py`` prints the figures):

- ``copy``: containment >= :data:`COPY_THRESHOLD` (0.6). A boilerplate copy with a
  paragraph cut scores 0.8-1.0; a rewrite 0.05-0.3; a same-site teaser is excluded by
  requiring 20+ shingles in the shorter text.
- ``rewrite``: rewrite score >= :data:`REWRITE_THRESHOLD` (0.55). The seed rewrite vs
  its source scores 0.70; synthetic rewrites of 181 real articles (sentences shuffled,
  20 % dropped, 40 % of other words replaced) median 0.76, 96 % >= 0.55. Independent
  reports of one story share a few names and figures but not sentence-by-sentence
  content: SemEval en-en same-story pairs score at most 0.50 (p90 0.39), a second
  agency write-up of one DOJ release 0.44, an unrelated article < 0.3. Two write-ups
  of one press release that reproduce its list verbatim can pass (0.66).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeVar

import numpy as np
from rapidfuzz import fuzz, process

__all__ = [
    "COPY_THRESHOLD",
    "REWRITE_THRESHOLD",
    "SIGNATURE_SPECS",
    "DupFeatures",
    "DupVerdict",
    "NearDupIndex",
    "SignatureSpec",
    "all_band_keys",
    "hash_and_band_keys",
    "band_keys",
    "best_match",
    "classify",
    "content_hash",
    "entities",
    "fact_sketch",
    "features",
    "find_original_reference",
    "minhash",
    "normalise_for_hash",
    "numbers",
    "sentences",
    "shingles",
    "signature_band_keys",
    "signatures",
    "similarity",
]

# --------------------------------------------------------------------------- text

_QUOTES_DASHES = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u00b4": "'", "`": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u00ab": '"', "\u00bb": '"', "\u2039": "'", "\u203a": "'",
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2015": "-", "\u2212": "-", "\ufe58": "-", "\ufe63": "-", "\uff0d": "-",
        "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u200b": "",
    }
)
_NON_WORD = re.compile(r"[\W_]+")


# str.translate with a dict maps a text character by character in Python objects; one
# str.replace per character actually present is several times faster (no replacement
# is itself a key, so the order does not matter).
_QUOTES_DASHES_PAIRS = tuple((chr(key), value) for key, value in _QUOTES_DASHES.items())


def _unify(text: str) -> str:
    """NFKC, then ``translate(_QUOTES_DASHES)`` (faster, same result)."""
    text = unicodedata.normalize("NFKC", text)
    for char, replacement in _QUOTES_DASHES_PAIRS:
        if char in text:
            text = text.replace(char, replacement)
    return text


def normalise_for_hash(text: str) -> str:
    """Casefolded words separated by single spaces; punctuation, quotes and dashes gone.

    >>> normalise_for_hash("  Musk\u2019s \u201cTrust & Safety\u201d \u2014 25 of 1,600!")
    'musk s trust safety 25 of 1 600'
    """
    return _normalise_unified(_unify(text))


def _normalise_unified(unified: str) -> str:
    """:func:`normalise_for_hash` of a text given as ``_unify(text)``."""
    return _NON_WORD.sub(" ", unified.casefold()).strip()


def content_hash(text: str) -> str:
    """sha1 hex digest of :func:`normalise_for_hash` (exact copies up to typography)."""
    return hashlib.sha1(normalise_for_hash(text).encode("utf-8")).hexdigest()


# A compact English stop list (function words and news verbs of attribution); used only
# to decide what is a "content word" for the fact sketch and entity detection.
_STOPWORDS = frozenset(
    """
    a about above after again against all almost also although always am among an and
    another any anyone anything are around as at back be became because become been
    before being below between both but by can cannot could did do does doing done down
    during each either else even ever every few first for from further get gets got had
    has have having he her here hers herself him himself his how however i if in into is
    it its itself just last least less like made make many may me might more most much
    must my myself neither never new no nor not now of off often on once one only or
    other others our ours ourselves out over own per perhaps put rather said same say
    says see seen several she should since so some such than that the their theirs them
    themselves then there these they this those though through thus to too told under
    until up upon us very via was we well were what whatever when where whether which
    while who whom whose why will with within without would yet you your yours yourself
    according added asked called cannot including later still told year years week weeks
    today yesterday tomorrow monday tuesday wednesday thursday friday saturday sunday mr
    mrs ms dr
    """.split()
)

_WORD = re.compile(r"\w+(?:['\u2019]\w+)*", re.UNICODE)
_SENT_SPLIT = re.compile(
    r"(?<=[.!?\u2026])[\"'\u201d\u2019)\]]*\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9\u00c0-\u024f])"
)
_PARA_SPLIT = re.compile(r"\s*\n\s*")


def sentences(text: str) -> list[str]:
    """Paragraph lines split into sentences (punctuation-then-capital heuristic)."""
    return _sentences_of_unified(_unify(text))


def _sentences_of_unified(unified: str) -> list[str]:
    """:func:`sentences` of a text given as ``_unify(text)`` (computed once by the caller;
    ``_unify`` is not idempotent: NFKC after a dropped zero-width space can compose)."""
    out: list[str] = []
    for para in _PARA_SPLIT.split(unified):
        para = para.strip().lstrip("\u2022*-\u00b7 ").strip()
        if not para:
            continue
        out.extend(s.strip() for s in _SENT_SPLIT.split(para) if s.strip())
    return out


_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,:]\d+)*")
_THOUSANDS = re.compile(r"^\d{1,3}(?:([.,])\d{3})(?:\1\d{3})*$")


_DIGITS = str.maketrans(
    {chr(base + i): str(i) for base in (0x0660, 0x06F0, 0x0966, 0x09E6) for i in range(10)}
)


def _norm_number(tok: str) -> str | None:
    tok = tok.translate(_DIGITS)  # Arabic-Indic, Persian, Devanagari, Bengali digits
    if ":" in tok:  # times, scores: keep as written
        return tok
    if _THOUSANDS.match(tok):
        tok = tok.replace(",", "").replace(".", "")
    else:
        tok = tok.replace(",", ".")
        if tok.count(".") > 1:  # dates like 12.03.2020 and version numbers
            return tok
    if "." in tok:
        tok = tok.rstrip("0").rstrip(".")
    return tok if (len(tok) >= 2 or "." in tok) else None  # single digits are noise


def numbers(text: str) -> set[str]:
    """Salient numbers, normalised: ``1,600`` and ``1.600`` -> ``1600``; ``3,5`` -> ``3.5``.

    Single digits are dropped (list numbering, "one of 2"), years are kept.
    """
    out: set[str] = set()
    for m in _NUMBER.finditer(_unify(text)):
        n = _norm_number(m.group(0).rstrip(".,"))
        if n:
            out.add(n)
    return out


def _strip_possessive(word: str) -> str:
    if word.endswith(("'s", "\u2019s")):
        return word[:-2]
    return word


def _sentence_facts(unified: str) -> list[list[str]]:
    """Per sentence of a text given as ``_unify(text)``, in order of appearance and
    without repeats: its salient numbers (``#1600``) and entity tokens (``@musk``)."""
    inner: set[str] = set()
    raw: list[list[tuple[str, bool]]] = []
    tokens_of = _FACT_TOKEN.findall
    stopwords = _STOPWORDS
    for sent in _sentences_of_unified(unified):
        seq: list[tuple[str, bool]] = []  # (item, is_entity)
        first = True  # the sentence's first token: capitalised there proves nothing
        for w in tokens_of(sent):
            head = w[0]
            if head.islower():  # neither a digit nor upper case: most words
                first = False
                continue
            if head.isdigit():
                n = _norm_number(w.rstrip(".,"))
                if n:
                    seq.append(("#" + n, False))
            elif head.isupper():
                key = _strip_possessive(w).casefold()
                if key not in stopwords:
                    seq.append((key, True))
                    if not first:  # capitalised inside a sentence, not just first word
                        inner.add(key)
            first = False
        raw.append(seq)
    out = []
    for seq in raw:
        items = [("@" + t if is_ent else t) for t, is_ent in seq if not is_ent or t in inner]
        out.append(list(dict.fromkeys(items)))
    return out


# numbers as in _NUMBER, words as in _WORD, in one left-to-right pass
_FACT_TOKEN = re.compile(r"(?<![\w.,])\d+(?:[.,:]\d+)*|[^\W\d_]\w*(?:['\u2019]\w+)*")


def entities(text: str) -> set[str]:
    """Named-entity-like tokens, casefolded: capitalised or all-caps words seen at least
    once inside a sentence (not only sentence-initially), stop words excluded."""
    return {item[1:] for items in _sentence_facts(_unify(text)) for item in items if item[0] == "@"}


def _content_words(unified: str, min_len: int) -> set[str]:
    """The content words of a text given as ``_unify(text)``."""
    return {
        w
        for w in (_strip_possessive(m.group(0)).casefold() for m in _WORD.finditer(unified))
        if len(w) >= min_len and w not in _STOPWORDS and not w.isdigit()
    }


FACT_MIN_ITEMS = 4
FACT_MIN_WORD_LEN = 7
FACT_PAIR_WINDOW = 4


def fact_sketch(text: str, unified: str | None = None) -> set[str]:
    """What a rewrite keeps: its facts, as names and figures and which go together.

    Items: every salient number (``#1600``) and entity token (``@musk``), plus every
    pair of them that occurs in one sentence at most 4 items apart (``#1600|#25``,
    ``@musk|@twitter``). The pairs make the sketch specific to a story: articles on
    the same topic share the names but rarely the same sentence-level combinations; a
    rewrite keeps most of them. A text with fewer than 4 numbers and entities (few
    names, a caseless script) also gets its content words of 7+ letters.
    """
    if unified is None:
        unified = _unify(text)
    per_sentence = _sentence_facts(unified)
    sketch: set[str] = {item for items in per_sentence for item in items}
    if len(sketch) < FACT_MIN_ITEMS:
        sketch |= _content_words(unified, FACT_MIN_WORD_LEN)
    for items in per_sentence:
        # pairs of items at most FACT_PAIR_WINDOW apart: all pairs in an ordinary
        # sentence, linear growth in a run-on "sentence" (a list, a table)
        for i, a in enumerate(items):
            for b in items[i + 1 : i + 1 + FACT_PAIR_WINDOW]:
                sketch.add(f"{a}|{b}" if a < b else f"{b}|{a}")
    return sketch


# ------------------------------------------------------------------- stable hashing

_MASK64 = (1 << 64) - 1
_MASK63 = (1 << 63) - 1


def _hash_token(token: str) -> int:
    """Stable 64-bit hash of a token (blake2b; never Python's salted hash())."""
    return int.from_bytes(
        hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
        "little",
    )


# The words of the shingles repeat from page to page (a worker's 338 pages: 34,000
# distinct words, 975,000 look-ups), the fact sketch's items (word pairs, figures) hardly
# do: only the words are cached. One cache for both held 97,000 entries (~19 MB per
# worker) after those pages and was bounded at ~50 MB; this one stays under ~6 MB, and
# hash_and_band_keys costs the same on those pages' texts (BENCHMARKS.md, branch s21-mem).
_hash_word = lru_cache(maxsize=32768)(_hash_token)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic, no warnings)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_SHINGLE_MULT = np.uint64(0x9E3779B97F4A7C15)
DEFAULT_SHINGLE_K = 5


def shingles(text: str, k: int = DEFAULT_SHINGLE_K) -> set[int]:
    """Stable 64-bit hashes of the word k-shingles of :func:`normalise_for_hash` text.

    A text of fewer than ``k`` words yields one shingle of all its words; an empty
    text yields the empty set.
    """
    words = normalise_for_hash(text).split()
    if not words:
        return set()
    return set(_shingle_array(words, k).tolist())


def _shingle_array(words: Sequence[str], k: int) -> np.ndarray:
    w = np.fromiter(map(_hash_word, words), dtype=np.uint64, count=len(words))
    if len(words) < k:
        k = len(words)
    n = len(words) - k + 1
    h = w[:n].copy()
    for j in range(1, k):
        h = h * _SHINGLE_MULT + w[j : j + n]
    return np.unique(_mix64(h))


def _token_set_hashes(items: Iterable[str]) -> np.ndarray:
    return np.fromiter(sorted(set(map(_hash_token, items))), dtype=np.uint64)


# ------------------------------------------------------------------------- minhash


def _splitmix_sequence(seed: int, n: int) -> list[int]:
    out = []
    state = seed & _MASK64
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        out.append(z ^ (z >> 31))
    return out


@lru_cache(maxsize=16)
def _perm_seeds(num_perm: int, seed: int) -> np.ndarray:
    # Pure-Python splitmix64: identical on every platform and numpy version.
    return np.array(_splitmix_sequence(seed, num_perm), dtype=np.uint64).reshape(-1, 1)


_EMPTY_SLOT = np.uint64(_MASK64)
_CHUNK = 4096


def minhash(
    shingle_set: Iterable[int] | np.ndarray, num_perm: int = 64, seed: int = 1
) -> np.ndarray:
    """MinHash signature, ``uint64[num_perm]``: slot i is min over x of mix64(x ^ seed_i).

    Deterministic (seeds from splitmix64 of ``seed``), vectorised (one
    ``num_perm x n`` numpy pass per 4096 shingles). An empty set gives all-ones slots.
    """
    if isinstance(shingle_set, np.ndarray):
        values = shingle_set.astype(np.uint64, copy=False).ravel()
    else:
        values = np.fromiter(shingle_set, dtype=np.uint64)
    seeds = _perm_seeds(num_perm, seed)
    sig = np.full(num_perm, _EMPTY_SLOT, dtype=np.uint64)
    for start in range(0, values.size, _CHUNK):
        block = _mix64(values[start : start + _CHUNK][None, :] ^ seeds)
        np.minimum(sig, block.min(axis=1), out=sig)
    return sig


def band_keys(signature: np.ndarray, bands: int, rows: int, *, namespace: str = "") -> list[int]:
    """One stable non-negative 63-bit int per band (fits a signed SQL BIGINT).

    The key hashes ``namespace``, the band number and the band's rows (little-endian
    bytes), so equal keys mean "same rows in the same band of the same signature kind".
    """
    sig = np.asarray(signature, dtype=np.uint64)
    if sig.size < bands * rows:
        raise ValueError(f"signature has {sig.size} slots, need bands*rows = {bands * rows}")
    raw = sig[: bands * rows].astype("<u8").tobytes()
    prefix = namespace.encode("utf-8") + b"\x00"
    keys = []
    step = rows * 8
    for b in range(bands):
        h = hashlib.blake2b(
            prefix + b.to_bytes(2, "little") + raw[b * step : (b + 1) * step], digest_size=8
        )
        keys.append(int.from_bytes(h.digest(), "little") & _MASK63)
    return keys


@dataclass(frozen=True, slots=True)
class SignatureSpec:
    """One MinHash signature kind: its LSH banding and seed."""

    name: str
    bands: int
    rows: int
    seed: int

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    @property
    def threshold(self) -> float:
        """Jaccard at which a pair becomes a candidate with probability ~50 %."""
        return float((1.0 / self.bands) ** (1.0 / self.rows))


#: The signature kinds stored per article. Changing any value changes every band key:
#: stored keys must then be recomputed (bump the storage's dedup version).
SIGNATURE_SPECS: tuple[SignatureSpec, ...] = (
    SignatureSpec("shingle", bands=20, rows=3, seed=0x5EED_0001),
    SignatureSpec("fact", bands=32, rows=3, seed=0x5EED_0002),
)
_SPEC_BY_NAME = {s.name: s for s in SIGNATURE_SPECS}


def _sketch_hashes(text: str, kind: str, normalised: str | None = None,
                   unified: str | None = None) -> np.ndarray:
    if kind == "shingle":
        words = (normalise_for_hash(text) if normalised is None else normalised).split()
        return _shingle_array(words, DEFAULT_SHINGLE_K) if words else np.empty(0, np.uint64)
    if kind == "fact":
        return _token_set_hashes(fact_sketch(text, unified))
    raise KeyError(kind)


def signatures(text: str, normalised: str | None = None,
               unified: str | None = None) -> dict[str, np.ndarray]:
    """``{"shingle": uint64[64], "fact": uint64[96]}`` for one text.

    A kind whose sketch is empty (e.g. a text with no long words) is omitted: an empty
    sketch matches every other empty sketch and would make junk candidates.
    ``normalised`` is :func:`normalise_for_hash` of ``text`` and ``unified`` its
    ``_unify(text)`` when the caller has them.
    """
    out: dict[str, np.ndarray] = {}
    for spec in SIGNATURE_SPECS:
        hashes = _sketch_hashes(text, spec.name, normalised, unified)
        if hashes.size:
            out[spec.name] = minhash(hashes, spec.num_perm, spec.seed)
    return out


def signature_band_keys(sigs: dict[str, np.ndarray]) -> list[int]:
    """All band keys of precomputed :func:`signatures`, in spec order."""
    keys: list[int] = []
    for spec in SIGNATURE_SPECS:
        if spec.name in sigs:
            keys.extend(band_keys(sigs[spec.name], spec.bands, spec.rows, namespace=spec.name))
    return keys


def all_band_keys(text: str) -> list[int]:
    """Every LSH band key of a text (all signature kinds), for the band table."""
    return signature_band_keys(signatures(text))


def hash_and_band_keys(text: str) -> tuple[str, list[int]]:
    """:func:`content_hash` and :func:`all_band_keys` of a text, normalising it once
    (what the analysis of every crawled article needs)."""
    unified = _unify(text)
    normalised = _normalise_unified(unified)
    digest = hashlib.sha1(normalised.encode("utf-8")).hexdigest()
    return digest, signature_band_keys(signatures(text, normalised, unified))


class NearDupIndex:
    """In-memory LSH index: band key -> article keys. Same semantics as the SQL table.

    ``add`` and ``query`` take either a text's :func:`signatures` dict, one signature
    (of the first spec kind, or ``kind=``), or precomputed band keys (``list[int]``).
    """

    def __init__(self) -> None:
        self._buckets: defaultdict[int, list[Hashable]] = defaultdict(list)
        self._keys: dict[Hashable, list[int]] = {}

    def __len__(self) -> int:
        return len(self._keys)

    @staticmethod
    def _band_keys(
        signature: dict[str, np.ndarray] | np.ndarray | Sequence[int], kind: str | None
    ) -> list[int]:
        if isinstance(signature, dict):
            return signature_band_keys(signature)
        if isinstance(signature, np.ndarray):
            spec = _SPEC_BY_NAME[kind] if kind else SIGNATURE_SPECS[0]
            return band_keys(signature, spec.bands, spec.rows, namespace=spec.name)
        return [int(k) for k in signature]

    def add(
        self,
        key: Hashable,
        signature: dict[str, np.ndarray] | np.ndarray | Sequence[int],
        *,
        kind: str | None = None,
    ) -> None:
        if key in self._keys:
            self.remove(key)
        bks = self._band_keys(signature, kind)
        self._keys[key] = bks
        for bk in bks:
            self._buckets[bk].append(key)

    def remove(self, key: Hashable) -> None:
        for bk in self._keys.pop(key, []):
            bucket = self._buckets.get(bk)
            if bucket is not None:
                try:
                    bucket.remove(key)
                except ValueError:
                    pass
                if not bucket:
                    del self._buckets[bk]

    def query_counts(
        self,
        signature: dict[str, np.ndarray] | np.ndarray | Sequence[int],
        *,
        kind: str | None = None,
    ) -> dict[Hashable, int]:
        """Candidate -> number of shared bands."""
        counts: dict[Hashable, int] = defaultdict(int)
        for bk in self._band_keys(signature, kind):
            for key in self._buckets.get(bk, ()):
                counts[key] += 1
        return dict(counts)

    def query(
        self,
        signature: dict[str, np.ndarray] | np.ndarray | Sequence[int],
        *,
        kind: str | None = None,
        limit: int | None = None,
    ) -> list[Hashable]:
        """Candidates sharing at least one band, most shared bands first."""
        counts = self.query_counts(signature, kind=kind)
        ranked = sorted(counts, key=lambda k: -counts[k])
        return ranked[:limit] if limit is not None else ranked


# -------------------------------------------------------------------- confirmation

#: ``classify``: share of the shorter text's word 5-shingles found in the longer one.
COPY_THRESHOLD = 0.6
#: ``classify``: rewrite score at or above which a pair is a rewrite (see DupFeatures).
REWRITE_THRESHOLD = 0.55
_MIN_COPY_SHINGLES = 20
_KEY_STEM = 4  # content words truncated to 4 letters: employees/employed -> empl
_MIN_KEY_TOKENS = 4  # sentences with fewer content tokens are not aligned
_ALIGN_LOW, _ALIGN_HIGH = 50.0, 90.0  # sentence-pair score mapped linearly to 0..1


@dataclass(frozen=True, slots=True)
class _Analysis:
    """Everything the confirmer needs from one text, computed once per text."""

    hash: str
    shingles: frozenset[int]
    numbers: frozenset[str]
    entities: frozenset[str]
    keys: tuple[str, ...]  # per sentence: content tokens, stemmed, in order


def _sentence_key(sentence: str) -> str:
    toks = []
    for m in _KEY_TOKEN.finditer(sentence.casefold()):
        tok = m.group(0)
        if tok[0].isdigit():
            n = _norm_number(tok.rstrip(".,"))
            if n:
                toks.append(n)
        elif tok not in _STOPWORDS and not _is_stopword_possessive(tok):
            toks.append(_strip_possessive(tok)[:_KEY_STEM])
    return " ".join(toks)


_KEY_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)*")


def _is_stopword_possessive(tok: str) -> bool:
    return _strip_possessive(tok) in _STOPWORDS


@lru_cache(maxsize=512)
def _analyse(text: str) -> _Analysis:
    return _Analysis(
        hash=content_hash(text),
        shingles=frozenset(shingles(text)),
        numbers=frozenset(numbers(text)),
        entities=frozenset(entities(text)),
        keys=tuple(_sentence_key(s) for s in sentences(text)),
    )


@dataclass(frozen=True, slots=True)
class DupFeatures:
    """The evidence :func:`similarity` combines, each in 0..1 (None when undefined).

    - ``containment``: share of the shorter text's word 5-shingles present in the
      longer one (a copy with other boilerplate or a cut keeps this high);
    - ``jaccard``: of the same shingle sets;
    - ``alignment``: share (by length) of the shorter text's sentences that have a
      counterpart in the other text. Sentences are reduced to their content words
      (stop words dropped, words cut to 4 letters, numbers normalised), scored with the
      mean of rapidfuzz ``token_set_ratio`` and ``token_sort_ratio``, matched
      one-to-one greedily (best pairs first); each match earns 0 at score 50 up to 1
      at 90;
    - ``numbers``: overlap coefficient of salient numbers (None if either has < 2);
    - ``entities``: Jaccard of entity tokens (None if either has < 2).
    """

    containment: float
    jaccard: float
    alignment: float
    numbers: float | None
    entities: float | None

    @property
    def rewrite_score(self) -> float:
        """0.7 alignment + 0.15 numbers + 0.15 entities, renormalised over the
        defined parts."""
        parts = [(self.alignment, 0.7)]
        if self.numbers is not None:
            parts.append((self.numbers, 0.15))
        if self.entities is not None:
            parts.append((self.entities, 0.15))
        total = sum(w for _, w in parts)
        return sum(v * w for v, w in parts) / total

    @property
    def score(self) -> float:
        return max(self.containment, self.rewrite_score)


def _set_overlap(
    a: frozenset[int] | frozenset[str], b: frozenset[int] | frozenset[str]
) -> tuple[float, float]:
    """(overlap coefficient, Jaccard)."""
    if not a or not b:
        return 0.0, 0.0
    inter = len(a & b)
    return inter / min(len(a), len(b)), inter / len(a | b)


def _alignment(keys_a: Sequence[str], keys_b: Sequence[str]) -> float:
    ka = [k for k in keys_a if k.count(" ") + 1 >= _MIN_KEY_TOKENS] or [k for k in keys_a if k]
    kb = [k for k in keys_b if k.count(" ") + 1 >= _MIN_KEY_TOKENS] or [k for k in keys_b if k]
    if not ka or not kb:
        return 0.0
    if sum(map(len, ka)) > sum(map(len, kb)):
        ka, kb = kb, ka
    # Mean of token_set_ratio (a rewrite that drops or adds a clause) and
    # token_sort_ratio (penalises a short sentence that is merely a subset).
    matrix = process.cdist(ka, kb, scorer=fuzz.token_set_ratio, dtype=np.float32, workers=-1)
    matrix += process.cdist(ka, kb, scorer=fuzz.token_sort_ratio, dtype=np.float32, workers=-1)
    matrix *= 0.5
    best = np.zeros(len(ka), dtype=np.float64)
    flat = np.flatnonzero(matrix > _ALIGN_LOW)
    if flat.size:
        # Greedy one-to-one matching, best pairs first: a sentence of the other text
        # can vouch for only one sentence of this one.
        order = flat[np.argsort(-matrix.ravel()[flat], kind="stable")]
        used_b = np.zeros(len(kb), dtype=bool)
        left = min(len(ka), len(kb))
        for i, j in zip(*np.unravel_index(order, matrix.shape), strict=True):
            if best[i] == 0.0 and not used_b[j]:
                best[i] = matrix[i, j]
                used_b[j] = True
                left -= 1
                if not left:
                    break
    weights = np.array([len(k) for k in ka], dtype=np.float64)
    credit = np.clip((best - _ALIGN_LOW) / (_ALIGN_HIGH - _ALIGN_LOW), 0.0, 1.0)
    return float((weights * credit).sum() / weights.sum())


def _features(a: _Analysis, b: _Analysis) -> DupFeatures:
    containment, jaccard = _set_overlap(a.shingles, b.shingles)
    num = (
        _set_overlap(a.numbers, b.numbers)[0]
        if min(len(a.numbers), len(b.numbers)) >= 2
        else None
    )
    ent = (
        _set_overlap(a.entities, b.entities)[1]
        if min(len(a.entities), len(b.entities)) >= 2
        else None
    )
    return DupFeatures(containment, jaccard, _alignment(a.keys, b.keys), num, ent)


def features(text_a: str, text_b: str) -> DupFeatures:
    """All the evidence for one pair (exposed for benchmarks and debugging)."""
    return _features(_analyse(text_a), _analyse(text_b))


def similarity(text_a: str, text_b: str) -> float:
    """0..1, symmetric: how much ``text_b`` is a copy or rewrite of ``text_a``.

    1.0 for equal :func:`content_hash`; otherwise ``max(containment, rewrite score)``
    (see :class:`DupFeatures`).
    """
    if not text_a.strip() or not text_b.strip():
        return 0.0
    a, b = _analyse(text_a), _analyse(text_b)
    if a.hash == b.hash:
        return 1.0
    return _features(a, b).score


DupKind = Literal["exact", "copy", "rewrite"]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class DupVerdict:
    """``kind`` None means "not a duplicate"; ``similarity`` is :func:`similarity`."""

    kind: DupKind | None
    similarity: float

    @property
    def is_duplicate(self) -> bool:
        return self.kind is not None


_KIND_RANK = {"exact": 3, "copy": 2, "rewrite": 1}


def classify(
    text_a: str,
    text_b: str,
    *,
    copy_threshold: float = COPY_THRESHOLD,
    rewrite_threshold: float = REWRITE_THRESHOLD,
) -> DupVerdict:
    """Is ``text_b`` the same article as ``text_a``, and how?

    - ``"exact"``: same :func:`content_hash`;
    - ``"copy"``: >= ``copy_threshold`` of the shorter text's 5-shingles are in the
      longer one (syndicated copy, other boilerplate, a paragraph cut);
    - ``"rewrite"``: rewrite score >= ``rewrite_threshold``;
    - ``None``: different articles (possibly the same story told independently).
    """
    if not text_a.strip() or not text_b.strip():
        return DupVerdict(None, 0.0)
    a, b = _analyse(text_a), _analyse(text_b)
    if a.hash == b.hash:
        return DupVerdict("exact", 1.0)
    f = _features(a, b)
    # Containment needs a shorter text of some length: a one-line teaser found inside
    # a long article is not a copy of it. Below that, the two must mostly coincide.
    short = min(len(a.shingles), len(b.shingles))
    if (f.containment if short >= _MIN_COPY_SHINGLES else f.jaccard) >= copy_threshold:
        return DupVerdict("copy", f.score)
    if f.rewrite_score >= rewrite_threshold:
        return DupVerdict("rewrite", f.score)
    return DupVerdict(None, f.score)


def best_match(
    text: str,
    candidates: Mapping[K, str] | Iterable[tuple[K, str]],
    *,
    copy_threshold: float = COPY_THRESHOLD,
    rewrite_threshold: float = REWRITE_THRESHOLD,
) -> tuple[K, DupVerdict] | None:
    """The candidate ``text`` duplicates, if any: ``(key, verdict)``.

    ``candidates`` are the stored texts the LSH step returned (key -> text). The
    strongest kind wins (exact > copy > rewrite), then the highest similarity, then
    the earliest candidate (pass them oldest first so a copy points at the original).
    """
    items = candidates.items() if isinstance(candidates, Mapping) else candidates
    best: tuple[K, DupVerdict] | None = None
    best_rank = (0, 0.0)
    for key, other in items:
        verdict = classify(
            other, text, copy_threshold=copy_threshold, rewrite_threshold=rewrite_threshold
        )
        if verdict.kind is None:
            continue
        rank = (_KIND_RANK[verdict.kind], verdict.similarity)
        if rank > best_rank:
            best, best_rank = (key, verdict), rank
    return best


# ----------------------------------------------------------- explicit attributions

# An outlet name: capitalised words (or U.S.-style initials), optionally joined by
# lower-case connectors ("Center for Public Integrity", "El Pais", "The 19th").
_NAME_WORD = r"(?:(?:[A-Z]\.){2,}|[A-Z0-9][\w&'\u2019-]*)"
_OUTLET = (
    rf"(?:the\s+)?({_NAME_WORD}(?:[ \t]+(?:(?:of|for|and|on|de|del|la|le|&)[ \t]+)?"
    rf"{_NAME_WORD}){{0,6}})"
)
_VERB = r"(?:published|appeared|ran|posted|reported)"
_PREP = r"(?:by|in|on|at|with|from)"
_ORIGIN_PATTERNS: tuple[re.Pattern[str], ...] = (
    # "This story was originally published by X", "A version of this article first
    # appeared in X", "This interview first ran on X"
    re.compile(
        r"(?i:(?:this|the)\s+(?:story|article|piece|report|post|column|interview|essay)"
        rf"\s+(?:was\s+|is\s+|has\s+been\s+)?(?:originally|first)\s+{_VERB}\s+{_PREP})\s+"
        + _OUTLET
    ),
    # "... and originally published by X" anywhere; "First published in X" only at
    # the start of a sentence ("he first appeared in Star Wars" names no outlet)
    re.compile(rf"\b(?i:originally\s+{_VERB}\s+{_PREP})\s+" + _OUTLET),
    re.compile(
        rf"(?:^|(?<=[.!?\n])\s*)(?i:first\s+{_VERB}\s+{_PREP})\s+" + _OUTLET,
        re.MULTILINE,
    ),
    # "Republished with permission from X", "Reprinted from X"
    re.compile(
        r"(?i:(?:republished|reprinted|reproduced|syndicated)\s+(?:with\s+permission\s+)?"
        r"(?:from|by|courtesy\s+of))\s+" + _OUTLET
    ),
    # wire dateline: "LONDON, Jan 1 (Reuters) -", "WASHINGTON (AP) —"
    re.compile(
        r"\((Reuters|AP|AFP|Bloomberg|CNN|dpa|UPI|PA|ANI|IANS|PTI|Xinhua|KTLA|CBS|CNBC|ABC)\)"
        r"\s*[-\u2013\u2014]"
    ),
    # sign-off on its own line: "— The Associated Press", "- Reuters"
    re.compile(
        r"^\s*[-\u2013\u2014]+\s*(?:The\s+)?(Associated\s+Press|Reuters|Agence\s+France-Presse"
        r"|AFP|Bloomberg|Press\s+Association|Canadian\s+Press|Deutsche\s+Presse-Agentur)"
        r"\s*\.?\s*$",
        re.MULTILINE,
    ),
)
_AGENCY_NAMES = {
    "AP": "The Associated Press",
    "Associated Press": "The Associated Press",
    "AFP": "Agence France-Presse",
    "Agence France-Presse": "Agence France-Presse",
    "PA": "PA Media",
}
_TRAILING_JUNK = re.compile(r"[\s.,;:'\"\u2019\u201d)]+$")


def find_original_reference(text: str) -> str | None:
    """The outlet a text says it was first published by, if it says so.

    Recognises "This story was originally published by X", "Originally published
    in/on X", "first appeared in/on X", "republished with permission from X",
    wire datelines "CITY (Reuters) -" and sign-offs "- The Associated Press".

    >>> find_original_reference("This article first appeared on Page Six. More text.")
    'Page Six'
    """
    text = _unify(text)
    for pattern in _ORIGIN_PATTERNS:
        m = pattern.search(text)
        if m:
            name = re.sub(r"\s+", " ", _TRAILING_JUNK.sub("", m.group(1)))
            if name:
                return _AGENCY_NAMES.get(name, name)
    return None
