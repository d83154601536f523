"""Semantic signal: static sentence embeddings for paraphrases that share few words.

The vectors are WordLlama's (MIT licence; the ``wordllama`` wheel ships its
256-d ``l2_supercat`` token embeddings, 16 MB, memory-mapped, and their tokenizer): a text's
vector is the mean of its tokens' vectors, normalised, so two texts' cosine is a
dot product. No model is downloaded and nothing runs on a GPU: this is a table
lookup, about 10 microseconds a sentence.

WordLlama's own loader is not used: it looks for the bundled tokenizer under a
folder name the wheel does not have (and would then try the network), and it
pulls in pydantic models for what is a two-file read. The files are read here
directly (the safetensors layout: a JSON header, then the raw tensor) and with
``tokenizers`` (a wordllama dependency).
When the wheel is absent, :func:`embedder` returns ``None`` and matching runs on
its lexical features alone (the semantic features read 0).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

DIM = 256
_BATCH = 64
_MAX_TOKENS = 512
_CHUNK_CACHE = 200_000  # chunks (words with their punctuation) whose token ids are kept
_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")


class Embedder:
    """Mean-pooled, normalised static token embeddings (float32 vectors of ``DIM``)."""

    def __init__(self, table: np.ndarray, tokenizer: Any) -> None:
        self.table = table
        self.tokenizer = tokenizer
        self.dim = int(table.shape[1])
        # token ids of each space-free chunk of text seen (see :meth:`_token_ids`)
        self._chunks: dict[str, list[int]] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text (a zero vector for a text with no tokens).

        In batches of ``_BATCH`` texts, so that memory stays bounded (one token's
        vector is 1 KB) whatever the number and length of the texts.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), _BATCH):
            out[start: start + _BATCH] = self._embed(texts[start: start + _BATCH])
        return out

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # a text's first _MAX_TOKENS tokens say what it is about (and bound the memory)
        per_text = self._token_ids([t[: _MAX_TOKENS * 4] for t in texts])
        lens = np.fromiter(map(len, per_text), dtype=np.int64, count=len(texts))
        total = int(lens.sum())
        if total == 0:
            return out
        ids = np.fromiter((i for t in per_text for i in t), dtype=np.int64, count=total)
        np.clip(ids, 0, len(self.table) - 1, out=ids)
        _segment_sum(self.table, ids, lens, out)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The tokenizer's ids of each text, from a cache of the ids of its chunks.

        The tokenizer turns every space into "▁" and prepends one, then runs BPE
        over the whole text; its vocabulary has no piece with a "▁" inside other
        than runs of them, so no merge crosses a single space, and a text's ids are
        its space-separated chunks' ids, each chunk tokenized alone, in order. A
        crawl sees the same words again and again, so tokenizing each chunk once
        makes a sentence a few dictionary look-ups (the tokenizer costs ~50
        microseconds a sentence). Texts with a run of spaces, or one at either
        end, go to the tokenizer whole. The cache is dropped when it grows past
        ``_CHUNK_CACHE`` chunks, so a long crawl's memory stays bounded.
        """
        chunked = [t.split(" ") for t in texts]
        whole = [i for i, parts in enumerate(chunked) if "" in parts]
        needed = {c for parts in chunked if "" not in parts for c in parts}
        # this call's own copy of what it needs: another thread may drop the cache
        cache = self._chunks
        ids = {c: found for c in needed if (found := cache.get(c)) is not None}
        missing = [c for c in needed if c not in ids]
        if missing:
            if len(cache) + len(missing) > _CHUNK_CACHE:
                cache.clear()
            for chunk, enc in zip(missing, self.tokenizer.encode_batch(
                    missing, add_special_tokens=False), strict=True):
                ids[chunk] = cache[chunk] = enc.ids
        out = [[] if "" in parts else [i for c in parts for i in ids[c]] for parts in chunked]
        if whole:
            for i, enc in zip(whole, self.tokenizer.encode_batch(
                    [texts[i] for i in whole], add_special_tokens=False), strict=True):
                out[i] = enc.ids
        return out


def _segment_sum(table: np.ndarray, ids: np.ndarray, lens: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = table[ids of text i].sum()`` for every text, with one reduceat."""
    rows = table[ids].astype(np.float32, copy=False)  # the table may be float16 (mapped)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    nonempty = lens > 0
    out[nonempty] = np.add.reduceat(rows, starts[nonempty], axis=0)


@lru_cache(maxsize=1)
def embedder() -> Embedder | None:
    """The process's embedder, loaded once (``None`` when wordllama is not installed)."""
    # a batch of a few sentences is cheaper on this thread than on a thread pool, and
    # a pool started before the crawl forks its workers would not survive the fork
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import wordllama
        from tokenizers import Tokenizer
    except ImportError:
        logger.warning("wordllama is not installed: claim matching runs without its "
                       "semantic features (pip install wordllama)")
        return None
    root = Path(wordllama.__file__).parent
    try:
        table = _mapped_table(root.joinpath(*_WEIGHTS))
        tokenizer = Tokenizer.from_file(str(root.joinpath(*_TOKENIZER)))
    except Exception as exc:  # noqa: BLE001 - a broken or partial wheel
        logger.warning("wordllama's bundled model could not be read (%s): claim matching "
                       "runs without its semantic features", exc)
        return None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return Embedder(table, tokenizer)


def _mapped_table(path: Path) -> np.ndarray:
    """The one tensor of a safetensors file, memory-mapped read-only (not copied).

    The worker processes of a crawl map the same file, so its pages are in memory
    once whatever the number of workers; rows are made float32 as they are read
    (:func:`_segment_sum`: float16 to float32 is exact, so the vectors are those of
    a table converted whole).
    """
    import json
    import struct

    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if len(tensors) != 1:
        raise ValueError(f"expected one tensor, found {sorted(tensors)}")
    (spec,) = tensors.values()
    dtypes = {"F16": "<f2", "F32": "<f4"}
    if spec["dtype"] not in dtypes:
        raise ValueError(f"unexpected tensor type {spec['dtype']}")
    begin, end = spec["data_offsets"]
    shape = tuple(int(n) for n in spec["shape"])
    dtype = np.dtype(dtypes[spec["dtype"]])
    if len(shape) != 2 or end - begin != dtype.itemsize * shape[0] * shape[1]:
        raise ValueError(f"unexpected tensor shape {shape}")
    # a plain array over the mapping: indexing a np.memmap runs Python code
    return np.memmap(path, dtype=dtype, mode="r", offset=8 + size + begin,
                     shape=shape).view(np.ndarray)


def embed(texts: Sequence[str]) -> np.ndarray | None:
    """Unit vectors of ``texts`` (``None`` without an embedder)."""
    model = embedder()
    return None if model is None else model.embed(texts)
