"""Semantic signal: static sentence embeddings for paraphrases that share few words.

The vectors are WordLlama's (MIT licence; the ``wordllama`` wheel ships its
256-d ``l2_supercat`` token embeddings, 16 MB, and their tokenizer): a text's
vector is the mean of its tokens' vectors, normalised, so two texts' cosine is a
dot product. No model is downloaded and nothing runs on a GPU: this is a table
lookup, about 10 microseconds a sentence.

WordLlama's own loader is not used: it looks for the bundled tokenizer under a
folder name the wheel does not have (and would then try the network), and it
pulls in pydantic models for what is a two-file read. The files are read here
directly with ``safetensors`` and ``tokenizers`` (both wordllama dependencies).
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
_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")


class Embedder:
    """Mean-pooled, normalised static token embeddings (float32 vectors of ``DIM``)."""

    def __init__(self, table: np.ndarray, tokenizer: Any) -> None:
        self.table = table
        self.tokenizer = tokenizer
        self.dim = int(table.shape[1])

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
        encodings = self.tokenizer.encode_batch([t[: _MAX_TOKENS * 4] for t in texts],
                                                add_special_tokens=False)
        lens = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        total = int(lens.sum())
        if total == 0:
            return out
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=total)
        np.clip(ids, 0, len(self.table) - 1, out=ids)
        _segment_sum(self.table, ids, lens, out)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


def _segment_sum(table: np.ndarray, ids: np.ndarray, lens: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = table[ids of text i].sum()`` for every text, with one reduceat."""
    rows = table[ids]
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
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError:
        logger.warning("wordllama is not installed: claim matching runs without its "
                       "semantic features (pip install wordllama)")
        return None
    root = Path(wordllama.__file__).parent
    try:
        weights = load_file(str(root.joinpath(*_WEIGHTS)))
        table = next(iter(weights.values())).astype(np.float32)
        tokenizer = Tokenizer.from_file(str(root.joinpath(*_TOKENIZER)))
    except Exception as exc:  # noqa: BLE001 - a broken or partial wheel
        logger.warning("wordllama's bundled model could not be read (%s): claim matching "
                       "runs without its semantic features", exc)
        return None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return Embedder(table, tokenizer)


def embed(texts: Sequence[str]) -> np.ndarray | None:
    """Unit vectors of ``texts`` (``None`` without an embedder)."""
    model = embedder()
    return None if model is None else model.embed(texts)
