"""Experiment (session 22): dump the texts to embed with MiniLM, keyed by id, as JSON.

Run with the project venv (it reads the data the claim benchmark reads):

    .venv/bin/python benchmarks/minilm/texts.py /tmp/s22-minilm/texts.json

Keys: ``q2a:<tweet id>`` (the benchmark's query text), ``q2b:<line id>``,
``c2a:<vclaim id>:<i>`` / ``c2b:<vclaim id>:<i>``: the i-th of ``Claim.texts`` as the
benchmark indexes it (0 the claim, 1 its title alias). Then ``embed.py`` (a separate
venv with torch) turns them into vectors.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for _p in (REPO, REPO / "benchmarks"):
    sys.path.insert(0, str(_p))

from claims_data import load_clef, load_clef2b  # noqa: E402
from quality_claims import clef2b_claims, clef_claims  # noqa: E402


def texts() -> dict[str, str]:
    """The 2A and 2B queries (``q2a:``/``q2b:`` + id) and claim texts (``c2a:``/``c2b:`` +
    claim id + text number), as the benchmark reads and indexes them."""
    out: dict[str, str] = {}
    vclaims, queries, _, _ = load_clef()
    v2b, q2b, _, _, _ = load_clef2b()
    for tag, qs, claims in (("2a", queries, clef_claims(vclaims)),
                            ("2b", q2b, clef2b_claims(v2b))):
        out.update((f"q{tag}:{qid}", text) for qid, text in qs.items())
        for c in claims:
            for i, t in enumerate(c.texts):
                if t and t.strip():
                    out[f"c{tag}:{c.id}:{i}"] = t
    return out


def seed_texts() -> dict[str, str]:
    """The seed sets' sentences and claims (so the full report's seed checks see vectors):
    ``s:<n>`` keys, deduplicated."""
    import json

    from quality_claims import SEED_SET, seed_claims

    claims_set = json.loads(SEED_SET.read_text(encoding="utf-8"))
    stance_set = json.loads((REPO / "benchmarks" / "seed_stance_set.json").read_text(
        encoding="utf-8"))
    found = [s["text"] for s in claims_set["sentences"]]
    found += [it["sentence"] for it in stance_set["items"]]
    found += [t for c in seed_claims(claims_set)[0] for t in c.texts if t and t.strip()]
    return {f"s:{i}": t for i, t in enumerate(dict.fromkeys(found))}


if __name__ == "__main__":
    got = seed_texts() if sys.argv[2:] == ["--seed"] else texts()
    Path(sys.argv[1]).write_text(json.dumps(got), encoding="utf-8")
    print(f"{len(got):,} texts ({sum(k.startswith('q') for k in got)} queries)")
