"""Index and retrieval: an inverted index (CSR arrays) over the claim texts.

Candidate selection for :mod:`pipeline.claims`: for all sentences of an article
at once, the IDF mass each sentence shares with each claim text and each
claim's BM25, summed only where it can matter (see :meth:`ClaimIndex.lexical`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import pickle
import shutil
import tempfile
from array import array
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple, overload

import numpy as np

from config.models import Claim
from pipeline.claims.context import parse_date
from pipeline.claims.figures import _figure_values
from pipeline.claims.language import analyse_lang, detect_language
from pipeline.claims.semantic import embed, embedder
from pipeline.text import Number, TextFeatures, analyse

logger = logging.getLogger(__name__)

try:  # the posting sums in C (pipeline/claims/_postings.c, built by `pip install`)
    from pipeline.claims import _postings
except ImportError:  # pragma: no cover - a checkout used without installing it
    _postings = None
    logger.warning("pipeline.claims._postings is not built (run `make install`): "
                   "claim retrieval sums its postings in numpy, several times slower")

# BM25 parameters and the IDF prior: IDF_BACKGROUND pseudo-documents that contain
# none of the claim terms keep IDF meaningful for a table of a dozen claims (and
# keep tier precision on 20-claim tables close to that on 14,000; see the
# benchmark's small-table check). With 10,000 claims it hardly matters.
BM25_K1 = 1.2
BM25_B = 0.75
IDF_BACKGROUND = 100.0


def _is_figure(word: str) -> bool:
    return word[:1].isdigit()


def _fuzzy_words(features: TextFeatures) -> str:
    return features.fuzzy_words


class _RowFeatures(Sequence[TextFeatures]):
    """The analysed texts of an index, one per row, re-derived on demand.

    The index keeps compact arrays and strings, not one :class:`TextFeatures`
    per claim text; this view serves the rare caller that wants them all
    (``analyse`` is memoised).
    """

    def __init__(self, texts: tuple[str, ...]) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    @overload
    def __getitem__(self, i: int) -> TextFeatures: ...

    @overload
    def __getitem__(self, i: slice) -> list[TextFeatures]: ...

    def __getitem__(self, i: int | slice) -> TextFeatures | list[TextFeatures]:
        if isinstance(i, slice):
            return [analyse(t) for t in self._texts[i]]
        return analyse(self._texts[i])


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lens)])``, vectorised."""
    total = int(lens.sum())
    offsets = lens.cumsum() - lens
    return np.arange(total, dtype=np.int64) + (starts - offsets).repeat(lens)


_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float64)
_NO_FIGURES: frozenset[str] = frozenset()
# Largest (queries x candidate texts) block summed at once in retrieval, in cells
# (8 bytes each): a long article is matched in chunks of sentences, so memory
# stays bounded whatever the table size.
_BLOCK_CELLS = 1 << 20
_BLOCK_QUERIES = 40


# Static pruning of large tables: from PRUNE_MIN_CLAIMS claims on, each term keeps
# only its PRUNE_KEEP postings of highest BM25 impact (see :func:`_prune_postings`).
# Smaller tables are exact. Chosen on train queries against a 100,000-claim table
# (benchmarks/quality_claims.py --prune-sweep; BENCHMARKS.md).
PRUNE_MIN_CLAIMS = 50_000
PRUNE_KEEP = 7_000

# Bump when what an index holds changes: cached indexes of other formats are rebuilt.
INDEX_FORMAT = 6  # 6: row_names_total summed with math.fsum
# arrays of at least this many items are stored as .npy files and memory-mapped
_MMAP_MIN = 4096
_NOT_SAVED = frozenset({"_gate_min", "claim_words_cache", "_gated_step", "_c_arrays", "compiled"})


def _prune_postings(
    indptr: np.ndarray, post_rows: np.ndarray, post_bm25: np.ndarray, keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each term's postings cut to its ``keep`` of highest BM25 impact (static pruning).

    Why: in a large table a common term's list holds tens of thousands of texts,
    and summing them is most of an article's retrieval time, while the texts it
    drops share little else with a sentence (their BM25 for that term is the
    lowest). Kept postings stay in text order (ties go to the lower text), so the
    sums over the kept postings are taken in the same order as before.
    Returns ``(indptr, post_rows, post_bm25)``.
    """
    lens = np.diff(indptr)
    if len(lens) == 0 or int(lens.max(initial=0)) <= keep:
        return indptr, post_rows, post_bm25
    term = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    # by term, then impact descending, then text ascending
    order = np.lexsort((post_rows, -post_bm25, term))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64) - indptr[:-1].repeat(lens)
    kept = rank < keep
    new_ptr = np.zeros_like(indptr)
    np.cumsum(np.minimum(lens, keep), out=new_ptr[1:])
    return new_ptr, post_rows[kept], post_bm25[kept]


class FirstStage(NamedTuple):
    """The first stage's loose bound of a pair (:func:`pipeline.claims.scoring._score_queries`):
    ``base + w_cov_claim * cov_claim + w_cov_query * cov_query + w_bm25 * log1p(bm25 /
    unknown_idf)``; a pair whose bound is under ``floor`` is no candidate."""

    floor: float
    base: float
    w_cov_claim: float
    w_cov_query: float
    w_bm25: float


class _StoredClaims(Sequence[Claim]):
    """The claims of a loaded index, made :class:`Claim` objects only when read."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows
        self._made: dict[int, Claim] = {}

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> Claim: ...

    @overload
    def __getitem__(self, i: slice) -> list[Claim]: ...

    def __getitem__(self, i: int | slice) -> Claim | list[Claim]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        found = self._made.get(i)
        if found is None:
            cid, text, source, first, aliases = self._rows[i]
            found = self._made[i] = Claim(cid, text, source=source, first_reported=first,
                                          aliases=tuple(aliases))
        return found


class _StoredNumbers(dict[int, tuple[Number, ...]]):
    """The figures of a loaded index's texts, made :class:`Number` objects when read."""

    def __init__(self, rows: dict[int, list[tuple[Any, ...]]]) -> None:
        super().__init__()
        self._rows = rows

    def get(self, row: int, default: Any = None) -> Any:  # type: ignore[override]
        found = dict.get(self, row)
        if found is None:
            raw = self._rows.get(row)
            if raw is None:
                return default
            found = tuple(Number(*n) for n in raw)
            self[row] = found
        return found

    def __contains__(self, row: object) -> bool:
        return row in self._rows

    def __len__(self) -> int:
        return len(self._rows)


def default_cache_dir() -> Path:
    """``$CLAIMWATCH_CACHE_DIR``, else the user's cache directory for claimwatch."""
    env = os.environ.get("CLAIMWATCH_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("claimwatch"))


def claims_fingerprint(claims: Sequence[Claim]) -> str:
    """A hash of a claims table: every field of every claim, in order, the index format
    and the pruning rule (a changed rule gives a new index)."""
    digest = hashlib.sha256(
        f"claimwatch-index-{INDEX_FORMAT}-prune-{PRUNE_MIN_CLAIMS}-{PRUNE_KEEP}\n".encode())
    # fields apart by a unit separator, claims by a record separator (neither is text)
    digest.update("\x1e".join(
        "\x1f".join((c.id, c.text, "\x1d".join(c.aliases), c.source or "\x00",
                     c.first_reported or "\x00"))
        for c in claims).encode("utf-8", "surrogatepass"))
    digest.update(b"embeddings" if embedder() is not None else b"no-embeddings")
    return digest.hexdigest()[:32]


class ClaimIndex:
    """Inverted index over the texts (claim text and aliases) of a claims table.

    Build it once per crawl with :meth:`build`; it is immutable afterwards and
    safe to share between threads. Compact: CSR postings in numpy arrays, two
    strings per claim text for the fuzzy scorers, figures and names only for the
    texts that have some (about 15 MB for 10,000 claims with one alias each).
    """

    def __init__(
        self,
        claims: tuple[Claim, ...],
        row_claim: np.ndarray,
        row_texts: tuple[str, ...],
        row_words: tuple[str, ...],
        row_masked: tuple[str, ...],
        row_numbers: dict[int, tuple[Number, ...]],
        row_name_words: dict[int, frozenset[str]],
        vocab: dict[str, int],
        idf: np.ndarray,
        indptr: np.ndarray,
        post_rows: np.ndarray,
        post_bm25: np.ndarray,
        row_mass: np.ndarray,
        unknown_idf: float,
    ) -> None:
        self.claims: Sequence[Claim] = claims
        self.row_claim = row_claim
        self.row_texts = row_texts
        self.n_rows = len(row_texts)
        self.row_words = row_words  # content words, figures masked
        self.row_masked = row_masked  # normalised text, figures masked
        self.row_numbers = row_numbers  # row -> its figures (rows with figures only)
        self.vocab = vocab
        self.idf = idf
        is_word = np.array([not _is_figure(w) for w in vocab], dtype=bool)
        self.word_idf = np.where(is_word, idf, 0.0)
        # postings by term (CSR: indptr), then by text: the texts of each term
        self.indptr = indptr
        self.post_rows = post_rows.astype(np.int32)
        # what a shared term adds to a pair's shared mass: its IDF; a figure a tiny
        # weight (figures are compared apart, but a shared one marks the pair)
        self.term_weight = np.where(is_word, idf, 1e-9)
        # each posting's claim and BM25 weight (split between the texts of the claim
        # holding the term): a claim's BM25 is the sum of its texts' postings
        self.post_claim = row_claim[post_rows]
        self.post_bm25 = post_bm25
        self.row_mass = row_mass
        self.unknown_idf = unknown_idf
        self.row_words_len = np.array([len(w) for w in row_words], dtype=np.float64)
        self.row_masked_len = np.array([len(m) for m in row_masked], dtype=np.float64)
        # texts with salient figures (counts, percentages)
        self.row_figures = np.zeros(self.n_rows, dtype=bool)
        self.row_figures[[row for row, nums in row_numbers.items() if _figure_values(nums)]] = True
        # names of a claim text (capitalised words that are not plain sentence
        # openers), only for texts naming someone or something, and their IDF mass
        self.row_names: dict[int, tuple[str, ...]] = {
            row: tuple(names) for row, names in row_name_words.items()
        }
        # fsum: exactly rounded, so the same in any order (a name set's order is the
        # string hash's, which changes between processes)
        self.row_names_total = np.zeros(self.n_rows, dtype=np.float64)
        for row, names in self.row_names.items():
            self.row_names_total[row] = max(math.fsum(map(self.name_idf, names)), 1e-12)
        # the first text of each claim (its own text, before the aliases)
        self.claim_first_row = np.searchsorted(row_claim, np.arange(len(claims)))
        self._gate_min: dict[float | None, np.ndarray] = {}
        # queries per gated block: halved each time a block had to split (see _split_block;
        # threads racing on it only pick between block sizes that give the same sums)
        self._gated_step = _BLOCK_QUERIES
        self._c_arrays: tuple[np.ndarray, ...] | None = None  # the arrays the C sums read
        # context: each claim's first report (day ordinal, -1 unknown) and source
        self.claim_days = np.array(
            [-1 if (d := parse_date(c.first_reported)) is None else d for c in claims],
            dtype=np.int64)
        self.claim_sources: tuple[str | None, ...] = tuple(c.source for c in claims)
        # the semantic signal: one unit vector per claim text (float16), or None
        self.row_vectors: np.ndarray | None = None
        self.claim_words_cache: dict[int, frozenset[str]] = {}

    # retrieval sums its postings in C when the extension is built (False: the numpy
    # blocks, the reference the tests compare it with)
    compiled = True

    def word_weight(self, word: str) -> float:
        """The IDF of a content word (the highest for a word the table never uses; 0 a figure)."""
        if _is_figure(word):
            return 0.0
        tid = self.vocab.get(word)
        return self.unknown_idf if tid is None else float(self.idf[tid])

    def name_idf(self, name: str) -> float:
        """The IDF of a name (a word the table never uses: the highest)."""
        tid = self.vocab.get(name)
        return self.unknown_idf if tid is None else float(self.idf[tid])

    @property
    def row_features(self) -> Sequence[TextFeatures]:
        """The analysed claim texts, one per row (computed on demand)."""
        return _RowFeatures(self.row_texts)

    @classmethod
    def build(cls, claims: Iterable[Claim], *, embeddings: bool = True) -> ClaimIndex:
        """Index every text of every claim (``Claim.texts``: the text and its aliases).

        With ``embeddings`` (the default), each text also gets its unit vector
        for the semantic features (:mod:`pipeline.claims.semantic`).
        """
        claims_t = tuple(claims)
        seen: set[str] = set()
        for claim in claims_t:
            if claim.id in seen:
                raise ValueError(f"duplicate claim id {claim.id!r}")
            seen.add(claim.id)
        row_claim_l: list[int] = []
        row_texts: list[str] = []
        row_words: list[str] = []
        row_masked: list[str] = []
        row_numbers: dict[int, tuple[Number, ...]] = {}
        row_names: dict[int, frozenset[str]] = {}
        # one entry per (text, distinct term), in text order, terms in order of
        # first occurrence (compact arrays: 10,000 claims give ~170,000)
        flat_row = array("q")
        flat_tid = array("q")
        flat_tf = array("q")
        vocab: dict[str, int] = {}
        # the claim texts are analysed once, not memoised (that cache is for articles)
        analyse_text = analyse.__wrapped__
        for ci, claim in enumerate(claims_t):
            for text in claim.texts:
                if not (text and text.strip()):
                    continue
                row = len(row_texts)
                # each text in its own language (a claim may be given in several)
                lang = detect_language(text)
                feats = analyse_text(text) if lang == "en" else analyse_lang(text, lang)
                row_claim_l.append(ci)
                row_texts.append(text)
                row_words.append(_fuzzy_words(feats))
                row_masked.append(feats.masked)
                if feats.numbers:
                    row_numbers[row] = feats.numbers
                names = feats.names | feats.opening_names
                if names:
                    row_names[row] = names
                tf: dict[int, int] = {}
                for word in feats.words:
                    tid = vocab.setdefault(word, len(vocab))
                    tf[tid] = tf.get(tid, 0) + 1
                flat_row.extend(repeat(row, len(tf)))
                flat_tid.extend(tf)
                flat_tf.extend(tf.values())
        n_rows = len(row_texts)
        n_terms = len(vocab)
        n_claims = len(claims_t)
        row_claim = np.asarray(row_claim_l, dtype=np.int32)
        e_row = np.frombuffer(flat_row, dtype=np.int64)
        e_tid = np.frombuffer(flat_tid, dtype=np.int64)
        e_tf = np.frombuffer(flat_tf, dtype=np.int64).astype(np.float64)
        # BM25 is computed per claim (all its texts as one document: the claim and
        # its aliases or title describe one thing); coverage per text (a sentence
        # repeating one alias fully covers that alias).
        # (the temporaries are dropped as soon as done with: this runs in every
        # worker, and a high peak would stay in its resident memory)
        ckey = row_claim[e_row].astype(np.int64) * max(n_terms, 1) + e_tid
        ukey, inverse, holders = np.unique(ckey, return_inverse=True, return_counts=True)
        del ckey
        inverse = inverse.ravel()
        c_claim, c_tid = np.divmod(ukey, max(n_terms, 1))
        del ukey
        c_tf = np.bincount(inverse, weights=e_tf, minlength=len(c_claim))  # tf in the claim
        del e_tf, flat_tf
        df = np.bincount(c_tid, minlength=n_terms).astype(np.float64)  # claims with the term
        n_docs = float(n_claims) + IDF_BACKGROUND
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        unknown_idf = math.log1p((n_docs + 0.5) / 0.5)
        claim_len = np.bincount(c_claim, weights=c_tf, minlength=n_claims)
        avgdl = float(claim_len.mean()) if n_claims else 1.0
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * claim_len / avgdl)
        c_bm25 = idf[c_tid] * c_tf * (BM25_K1 + 1.0) / (c_tf + norm[c_claim])
        del c_tf, c_claim, c_tid
        # rows of a claim sharing a term split its BM25 weight, so summing postings
        # by claim gives the claim's BM25 and summing by row gives the shared mass
        e_bm25 = c_bm25[inverse] / holders[inverse]
        del c_bm25, inverse, holders
        # figures do not count in the coverage features (they are checked apart)
        is_figure = np.array([_is_figure(w) for w in vocab], dtype=bool)
        row_mass = np.bincount(e_row, weights=np.where(is_figure[e_tid], 0.0, idf[e_tid]),
                               minlength=n_rows)
        order = np.argsort(e_tid, kind="stable")  # postings by term, then by row
        post_rows = e_row[order]
        post_bm25 = e_bm25[order]
        indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(np.bincount(e_tid, minlength=n_terms), out=indptr[1:])
        del order, e_bm25, e_row, e_tid, flat_row, flat_tid
        if n_claims >= PRUNE_MIN_CLAIMS:
            indptr, post_rows, post_bm25 = _prune_postings(indptr, post_rows, post_bm25,
                                                           PRUNE_KEEP)
        index = cls(
            claims_t,
            row_claim,
            tuple(row_texts),
            tuple(row_words),
            tuple(row_masked),
            row_numbers,
            row_names,
            vocab,
            idf,
            indptr,
            post_rows,
            post_bm25,
            row_mass,
            unknown_idf,
        )
        vectors = embed(index.row_texts) if embeddings else None
        index.row_vectors = None if vectors is None else vectors.astype(np.float16)
        return index

    def __len__(self) -> int:
        return len(self.claims)

    def with_pruning(self, keep: int | None) -> ClaimIndex:
        """This index with each term's postings cut to ``keep`` by impact (None: as it is).

        For measuring the pruning rule (the benchmarks compare ``keep`` values on
        one unpruned index without rebuilding it); :meth:`build` prunes large tables
        itself.
        """
        if keep is None:
            return self
        other = copy.copy(self)
        other.indptr, post_rows, other.post_bm25 = _prune_postings(
            self.indptr, self.post_rows, self.post_bm25, keep)
        other.post_rows = post_rows.astype(np.int32)
        other.post_claim = self.row_claim[other.post_rows]
        other._gate_min = {}
        other._gated_step = _BLOCK_QUERIES
        other._c_arrays = None
        other.claim_words_cache = {}
        return other

    # ------------------------------------------------------------------ disk cache

    @classmethod
    def cached(cls, claims: Iterable[Claim], cache_dir: str | Path | None = None) -> ClaimIndex:
        """The index of ``claims``, loaded from the disk cache or built once and stored there.

        The cache is keyed by a hash of the claims table (every field of every
        claim) and of the index format, so an edited table gets a new index and
        processes of one crawl share one. Large arrays are memory-mapped
        (``numpy.load(mmap_mode="r")``): worker processes share their pages and a
        100,000-claim index loads in well under a second. ``cache_dir`` defaults
        to ``$CLAIMWATCH_CACHE_DIR`` or the user's cache directory. A cache that
        cannot be read or written is rebuilt or skipped, with a logged warning.
        """
        claims_t = tuple(claims)
        root = Path(cache_dir) if cache_dir else default_cache_dir()
        where = root / f"claims-index-{claims_fingerprint(claims_t)}"
        if (where / "meta.pickle").is_file():
            try:
                return cls.load(where)
            except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt
                logger.warning("claims index cache %s unreadable (%s): rebuilding", where, exc)
        index = cls.build(claims_t)
        try:
            index.save(where)
        except OSError as exc:
            logger.warning("claims index cache %s not written (%s)", where, exc)
        return index

    def save(self, where: Path) -> None:
        """Write the index to directory ``where`` (atomically: a temporary one, renamed)."""
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=where.name + ".", dir=where.parent))
        try:
            meta: dict[str, Any] = {}
            arrays: list[str] = []
            for key, value in self.__dict__.items():
                if key in _NOT_SAVED:
                    continue
                if isinstance(value, np.ndarray) and value.size >= _MMAP_MIN:
                    np.save(tmp / f"{key}.npy", np.ascontiguousarray(value))
                    arrays.append(key)
                elif key == "claims":  # plain tuples: unpickling 100,000 objects is slow
                    meta[key] = value._rows if isinstance(value, _StoredClaims) else [
                        (c.id, c.text, c.source, c.first_reported, c.aliases) for c in value]
                elif key == "row_numbers":
                    meta[key] = value._rows if isinstance(value, _StoredNumbers) else {
                        row: [(n.value, n.kind, n.start, n.end) for n in nums]
                        for row, nums in value.items()}
                else:
                    meta[key] = value
            meta["_arrays"] = arrays
            meta["_format"] = INDEX_FORMAT
            with open(tmp / "meta.pickle", "wb") as fh:
                pickle.dump(meta, fh, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                os.replace(tmp, where)
            except OSError:
                if not (where / "meta.pickle").is_file():  # not another process's copy
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, where: Path) -> ClaimIndex:
        """Read an index :meth:`save` wrote (large arrays memory-mapped, read-only)."""
        with open(where / "meta.pickle", "rb") as fh:
            meta = pickle.load(fh)  # noqa: S301 - our own cache file
        if meta.pop("_format", None) != INDEX_FORMAT:
            raise ValueError("index format changed")
        index = cls.__new__(cls)
        meta["claims"] = _StoredClaims(meta["claims"])
        meta["row_numbers"] = _StoredNumbers(meta["row_numbers"])
        for key in meta.pop("_arrays"):
            # a plain array over the mapped file: indexing a np.memmap runs Python code
            # (its __getitem__ and __array_finalize__) on every access, ~1 ms an article
            meta[key] = np.load(where / f"{key}.npy", mmap_mode="r").view(np.ndarray)
        index.__dict__.update(meta)
        index._gate_min = {}
        index._gated_step = _BLOCK_QUERIES
        index._c_arrays = None
        index.claim_words_cache = {}
        return index

    # ------------------------------------------------------------------ retrieval

    def _query_terms(
        self, queries: Sequence[TextFeatures]
    ) -> tuple[list[float], np.ndarray, np.ndarray]:
        """IDF masses of the queries, and their distinct known terms.

        Returns ``(masses, term_ids, owner)``: each query's term ids, sorted, in
        query order (``owner`` says whose). Figures do not count in a mass; a word
        the table never uses counts at the highest IDF.
        """
        get = self.vocab.get
        nq = len(queries)
        words = [w for f in queries for w in f.words]
        ids = np.fromiter(map(get, words, repeat(-1)), dtype=np.int64, count=len(words))
        owners = np.repeat(np.arange(nq, dtype=np.int64), [len(f.words) for f in queries])
        n_terms = max(len(self.vocab), 1)
        known = (ids >= 0).nonzero()[0]
        key = owners[known] * n_terms + ids[known]
        key.sort()
        distinct = np.empty(len(key), dtype=bool)
        distinct[:1] = True
        np.not_equal(key[1:], key[:-1], out=distinct[1:])
        owner, term_ids = np.divmod(key[distinct], n_terms)
        masses = np.bincount(owner, weights=self.word_idf.take(term_ids),
                             minlength=nq)  # summed in term order
        if len(known) < len(ids):  # words the table never uses, each once per query
            unknown: set[tuple[int, str]] = set()
            for i in (ids < 0).nonzero()[0].tolist():
                if not words[i][:1].isdigit():
                    unknown.add((int(owners[i]), words[i]))
            if unknown:
                count = np.bincount([qi for qi, _ in unknown], minlength=nq)
                masses = masses + count * self.unknown_idf
        return masses.tolist(), term_ids, owner

    def _min_shared(self, gate: float | None) -> np.ndarray:
        """Per text, the shared mass a pair needs: ``gate`` of its own (at least 1e-12)."""
        found = self._gate_min.get(gate)
        if found is None:
            if gate is None:
                found = np.full(self.n_rows, np.finfo(np.float64).tiny)  # any shared term
            else:
                found = np.maximum(gate * self.row_mass, 1e-12)
            self._gate_min[gate] = found
        return found

    def lexical(
        self,
        queries: Sequence[TextFeatures],
        gate: float | None = None,
        first_stage: FirstStage | None = None,
    ) -> tuple[list[float], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Shared IDF mass and claim BM25 for (query, claim text) pairs sharing a term.

        With ``gate``, only pairs whose shared mass is at least that share of the
        claim text's own (figures excluded) are returned. With ``first_stage``, pairs
        whose loose first-stage bound is below its floor (less a margin) may be left
        out (the compiled sums leave them out; the caller tests the bound itself).
        Returns ``(query_masses, q, rows, shared, bm25)``; ``q``/``rows`` index the
        pairs, sorted by query then row.
        """
        masses, term_ids, owners = self._query_terms(queries)
        if len(term_ids) == 0 or self.n_rows == 0:
            return masses, _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        need = self._min_shared(gate)
        if _postings is not None and self.compiled:
            found = self._lexical_compiled(term_ids, owners, len(queries), need, masses,
                                           first_stage)
            if found is not None:
                return (masses, *found)
        # a gated block bounds its own per-query sums (it splits when too many texts
        # pass); an ungated sum spans every text
        step = self._gated_step if gate is not None else max(
            1, min(_BLOCK_QUERIES, _BLOCK_CELLS // self.n_rows))
        bounds = owners.searchsorted(np.arange(0, len(queries) + step, step))
        parts = []
        for q0 in range(0, len(queries), step):
            a, b = bounds[q0 // step], bounds[q0 // step + 1]
            if a == b:
                continue
            nb = min(step, len(queries) - q0)
            block = self._lexical_direct if gate is None or nb <= 2 else self._lexical_block
            q, rows, shared, bm25 = block(term_ids[a:b], owners[a:b] - q0, nb, need)
            parts.append((q + q0, rows, shared, bm25))
        if not parts:
            return masses, _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        if len(parts) == 1:
            return (masses, *parts[0])
        q, rows, shared, bm25 = (np.concatenate(x) for x in zip(*parts, strict=True))
        return masses, q, rows, shared, bm25

    def _lexical_compiled(
        self,
        t: np.ndarray,
        owner: np.ndarray,
        nq: int,
        need: np.ndarray,
        masses: list[float],
        first_stage: FirstStage | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """:meth:`lexical` in C: each query's postings summed term at a time into
        accumulators of a tile of texts (``_postings.gated_pairs``); the same additions in
        the same order as the numpy blocks below, so the same pairs and sums to the bit.
        None for a table the C sums do not take (a claim of more than 4,096 texts)."""
        arrays = self._c_arrays
        if arrays is None:
            arrays = self._c_arrays = (
                np.ascontiguousarray(self.indptr, dtype=np.int64),
                np.ascontiguousarray(self.post_rows, dtype=np.int32),
                np.ascontiguousarray(self.post_claim, dtype=np.int32),
                np.ascontiguousarray(self.post_bm25, dtype=np.float64),
                np.ascontiguousarray(self.term_weight, dtype=np.float64),
                np.ascontiguousarray(self.row_claim, dtype=np.int32),
                np.ascontiguousarray(self.row_mass, dtype=np.float64),
            )
        indptr, post_rows, post_claim, post_bm25, weight, row_claim = arrays[:6]
        bound = None
        if first_stage is not None:
            bound = (np.asarray(masses, dtype=np.float64), arrays[6], first_stage.floor,
                     first_stage.base, first_stage.w_cov_claim, first_stage.w_cov_query,
                     first_stage.w_bm25, self.unknown_idf)
        found = _postings.gated_pairs(
            np.ascontiguousarray(t, dtype=np.int64), np.ascontiguousarray(owner, dtype=np.int64),
            nq, indptr, post_rows, post_claim, post_bm25, weight,
            np.ascontiguousarray(need, dtype=np.float64), row_claim, bound)
        if found is None:  # a claim with more texts than the C sums take in one tile
            return None
        q, rows, shared, bm25 = found
        return (np.frombuffer(q, dtype=np.int64), np.frombuffer(rows, dtype=np.int64),
                np.frombuffer(shared, dtype=np.float64), np.frombuffer(bm25, dtype=np.float64))

    def _lexical_direct(
        self, t: np.ndarray, owner: np.ndarray, nq: int, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`lexical` for a few queries: one sum over all their postings."""
        start = self.indptr.take(t)
        length = self.indptr.take(t + 1) - start
        idx = _ranges(start, length)
        post_rows = self.post_rows.take(idx)
        key = (owner * self.n_rows).repeat(length)
        key += post_rows
        shared = np.bincount(key, weights=self.term_weight.take(t).repeat(length),
                             minlength=nq * self.n_rows)
        nz = (shared.reshape(nq, self.n_rows) >= need).ravel().nonzero()[0]
        if len(nz) == 0:
            return _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        q, rows = np.divmod(nz, self.n_rows)
        # claim BM25 = sum of the split postings of all its texts
        n_claims = len(self.claims)
        key = (owner * n_claims).repeat(length)
        key += self.post_claim.take(idx)
        bm25 = np.bincount(key, weights=self.post_bm25.take(idx), minlength=nq * n_claims)
        return q, rows, shared.take(nz), bm25.take(q * n_claims + self.row_claim.take(rows))

    def _lexical_block(
        self, t: np.ndarray, owner: np.ndarray, nq: int, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`lexical` for a block of queries: term ids ``t`` of query ``owner``.

        Exact, but it sums per query only what can pass: first the mass each text
        shares with all the block's terms together (one pass over the postings of
        its distinct terms), a bound of what it shares with any one query; only
        the texts whose bound reaches ``need``, and the other texts of their
        claims (for BM25), are summed per query. Sums are taken in the order a
        plain sum over every posting would take them (by query, term, text), so
        they are the same to the bit.
        """
        # the block's distinct terms and their postings
        ts = t.copy()
        ts.sort()
        distinct = np.empty(len(ts), dtype=bool)
        distinct[0] = True
        np.not_equal(ts[1:], ts[:-1], out=distinct[1:])
        uniq = ts[distinct]
        u_start = self.indptr.take(uniq)
        u_len = self.indptr.take(uniq + 1) - u_start
        u_idx = _ranges(u_start, u_len)
        u_rows = self.post_rows.take(u_idx)
        # positive weights summed in the same term order: bound >= each query's sum
        u_w = self.term_weight.take(uniq).repeat(u_len)
        bound = np.bincount(u_rows, weights=u_w, minlength=self.n_rows)
        passing = (bound >= need).nonzero()[0]
        n_pass = len(passing)
        if n_pass == 0:
            return _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        if nq > 1 and nq * n_pass > _BLOCK_CELLS:
            # later blocks start at the size that fits: a large table's blocks would
            # all split after summing their bound, which is then summed again per half
            self._gated_step = min(self._gated_step, max(_BLOCK_QUERIES // 4, nq // 2))
            return self._split_block(t, owner, nq, need)
        # the distinct terms' postings among the passing texts, still by term, text
        row_local = np.full(self.n_rows, -1, dtype=np.int64)
        row_local[passing] = np.arange(n_pass)
        u_loc = row_local.take(u_rows)
        kept = (u_loc >= 0).nonzero()[0]
        k_loc = u_loc.take(kept)
        k_ptr = np.zeros(len(uniq) + 1, dtype=np.int64)
        k_ptr[1:] = kept.searchsorted(u_len.cumsum())
        # every query's postings among them: the mass it shares with each text
        pos = uniq.searchsorted(t)
        p_start = k_ptr.take(pos)
        p_len = k_ptr.take(pos + 1) - p_start
        g = _ranges(p_start, p_len)
        key = (owner * n_pass).repeat(p_len)
        key += k_loc.take(g)
        shared = np.bincount(key, weights=self.term_weight.take(t).repeat(p_len),
                             minlength=nq * n_pass)
        nz = (shared.reshape(nq, n_pass) >= need.take(passing)).ravel().nonzero()[0]
        if len(nz) == 0:
            return _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        q, loc = np.divmod(nz, n_pass)
        rows = passing.take(loc)
        return q, rows, shared.take(nz), self._block_bm25(q, rows, u_idx, u_rows, u_len, pos,
                                                                owner, nq)

    def _split_block(
        self, t: np.ndarray, owner: np.ndarray, nq: int, need: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`_lexical_block` of each half of the block's queries (memory stays bounded;
        each query's sums are the same whatever block it is summed in)."""
        half = nq // 2
        cut = int(owner.searchsorted(half))
        parts = []
        for lo, hi, q0, n in ((0, cut, 0, half), (cut, len(t), half, nq - half)):
            if lo < hi:
                q, rows, shared, bm25 = self._lexical_block(t[lo:hi], owner[lo:hi] - q0, n, need)
                parts.append((q + q0, rows, shared, bm25))
        if not parts:
            return _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
        q, rows, shared, bm25 = (np.concatenate(x) for x in zip(*parts, strict=True))
        return q, rows, shared, bm25

    def _block_bm25(
        self,
        q: np.ndarray,
        rows: np.ndarray,
        u_idx: np.ndarray,
        u_rows: np.ndarray,
        u_len: np.ndarray,
        pos: np.ndarray,
        owner: np.ndarray,
        nq: int,
    ) -> np.ndarray:
        """BM25 of each pair's claim for its query, from the block's postings.

        ``u_idx``/``u_rows`` are the postings of the block's distinct terms (``u_len``
        each),
        query ``owner`` has the distinct terms at ``pos``. Only the claims of the
        pairs are summed, over the postings of all their texts, by query, term and
        text (the order a plain sum over every posting takes): one pass over the
        postings already gathered, not a walk of every pair's claim's term list.
        """
        n_claims = len(self.claims)
        claims = self.row_claim.take(rows)
        wanted = np.zeros(n_claims, dtype=bool)
        wanted[claims] = True
        picked = np.flatnonzero(wanted)
        local = np.full(n_claims, -1, dtype=np.int64)
        local[picked] = np.arange(len(picked))
        u_claim = local.take(self.row_claim.take(u_rows))
        kept = (u_claim >= 0).nonzero()[0]
        k_claim = u_claim.take(kept)
        k_ptr = np.zeros(len(u_len) + 1, dtype=np.int64)
        k_ptr[1:] = kept.searchsorted(u_len.cumsum())
        p_start = k_ptr.take(pos)
        p_len = k_ptr.take(pos + 1) - p_start
        g = _ranges(p_start, p_len)
        key = (owner * len(picked)).repeat(p_len)
        key += k_claim.take(g)
        bm25 = np.bincount(key, weights=self.post_bm25.take(u_idx.take(kept.take(g))),
                           minlength=nq * len(picked))
        return bm25.take(q * len(picked) + local.take(claims))
