"""FNC-1 loading, official-split handling and the official relative score (shared by
benchmarks/train_stance.py and benchmarks/quality_stance.py).

The data folder is ../shared/data/fnc1-stance (train files and the official
baseline's body-id split only; see its SOURCE.txt).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline import stance
from pipeline.text import split_sentences

_REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = (
    Path(os.environ.get("CLAIMWATCH_SHARED_DATA", _REPO.parent / "shared" / "data")) / "fnc1-stance"
)

FNC_LABELS = ("agree", "disagree", "discuss", "unrelated")
RELATED = frozenset(FNC_LABELS[:3])


@dataclass(frozen=True)
class Row:
    headline: str
    body_id: int
    stance: str


def load(data_dir: Path | str = DEFAULT_DIR) -> tuple[list[Row], dict[int, str]]:
    d = Path(data_dir)
    with open(d / "train_bodies.csv", encoding="utf-8", newline="") as fh:
        bodies = {int(r["Body ID"]): r["articleBody"] for r in csv.DictReader(fh)}
    with open(d / "train_stances.csv", encoding="utf-8", newline="") as fh:
        rows = [Row(r["Headline"], int(r["Body ID"]), r["Stance"]) for r in csv.DictReader(fh)]
    return rows, bodies


def split_ids(data_dir: Path | str = DEFAULT_DIR) -> tuple[set[int], set[int]]:
    d = Path(data_dir) / "splits"
    train = {int(x) for x in (d / "training_ids.txt").read_text().split()}
    hold = {int(x) for x in (d / "hold_out_ids.txt").read_text().split()}
    return train, hold


def score(gold: Sequence[str], pred: Sequence[str]) -> float:
    """FNC-1 official score as a share of the best possible (the relative score)."""
    total = best = 0.0
    for g, p in zip(gold, pred, strict=True):
        if g == p:
            total += 0.25
            if g != "unrelated":
                total += 0.5
        if g in RELATED and p in RELATED:
            total += 0.25
        best += 1.0 if g in RELATED else 0.25
    return total / best if best else 0.0


@lru_cache(maxsize=4096)
def body_sentences(body: str) -> tuple[str, ...]:
    return tuple(split_sentences(body))


def features(rows: Sequence[Row], bodies: dict[int, str]) -> np.ndarray:
    return np.vstack(
        [stance.article_features(body_sentences(bodies[r.body_id]), r.headline) for r in rows]
    )
