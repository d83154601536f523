"""The real data the claim-matching benchmarks read (``quality_claims.py``, ``matching_speed.py``).

CLEF CheckThat! 2022 2A and 2021 2B, the seed article's sentences, and a table of
``n`` claims with distinct real texts; from ../shared/data (or ``$CLAIMWATCH_SHARED_DATA``).
Kept apart so that neither benchmark imports the other.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from config.models import Claim  # noqa: E402
from pipeline.claims.context import SentenceContext, parse_date  # noqa: E402
from pipeline.text import split_sentences  # noqa: E402

SHARED_DATA = Path(os.environ.get("CLAIMWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))
CLEF = SHARED_DATA / "clef2022-checkthat-task2a-en"
CLEF2B = SHARED_DATA / "clef2021-checkthat-task2b-en"
SEED_ARTICLE = SHARED_DATA.parent / "seed" / "musk-twitter-child-safety.txt"


def _vclaims(root: Path) -> list[dict[str, str]]:
    with gzip.open(root / "vclaims.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _queries(root: Path, *names: str) -> dict[str, str]:
    """Query id -> text, from the TSV files ``names``."""
    queries: dict[str, str] = {}
    for name in names:
        with open(root / name, encoding="utf-8") as fh:
            for line in fh:
                qid, _, text = line.rstrip("\n").partition("\t")
                queries[qid] = text
    return queries


def _qrels(root: Path, name: str) -> dict[str, set[str]]:
    """Query id -> the ids of its verified claims."""
    out: dict[str, set[str]] = {}
    with open(root / name, encoding="utf-8") as fh:
        for line in fh:
            qid, _, vid, _ = line.rstrip("\n").split("\t")
            out.setdefault(qid, set()).add(vid)
    return out


def load_clef(
    root: Path = CLEF,
) -> tuple[list[dict[str, str]], dict[str, str], dict[str, set[str]], dict[str, set[str]]]:
    """(vclaims, queries, train qrels, dev qrels)."""
    return (
        _vclaims(root),
        _queries(root, "CT2022-Task2A-EN-Train-Dev_Queries.tsv"),
        _qrels(root, "CT2022-Task2A-EN-Train_QRELs.tsv"),
        _qrels(root, "CT2022-Task2A-EN-Dev_QRELs.tsv"),
    )


def load_clef2b(
    root: Path = CLEF2B, neighbours: int = 2
) -> tuple[list[dict[str, str]], dict[str, str], dict[str, set[str]], dict[str, set[str]],
           dict[str, SentenceContext]]:
    """CLEF 2021 2B: (vclaims, queries, train qrels, dev qrels, query contexts).

    A query's context is its transcript: the lines before and after it (the
    window), its speaker, and the debate's date (the id's YYYYMMDD prefix).
    """
    vclaims = _vclaims(root)
    queries = _queries(root, "CT2021-Task2B-EN-Train_Queries.tsv",
                       "CT2021-Task2B-EN-Dev_Queries.tsv")
    files: dict[str, str] = {}
    with open(root / "CT2021-Task2B-EN-Debates.tsv", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            debate, path, *_ = line.rstrip("\n").split("\t")
            files[debate] = path
    contexts: dict[str, SentenceContext] = {}
    transcripts: dict[str, list[tuple[str, str]]] = {}
    for qid in queries:
        debate, _, num = qid.rpartition("_")
        if debate not in transcripts:
            lines = []
            with open(root / files[debate], encoding="utf-8") as fh:
                for line in fh:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) >= 3:
                        lines.append((parts[1], parts[2]))
            transcripts[debate] = lines
        lines = transcripts[debate]
        i = int(num) - 1
        window = " ".join(text for _, text in lines[max(0, i - neighbours): i + neighbours + 1])
        speaker = lines[i][0].title() if 0 <= i < len(lines) else None
        contexts[qid] = SentenceContext(window=window, speaker=speaker,
                                        day=parse_date(debate[:8]))
    return (vclaims, queries, _qrels(root, "CT2021-Task2B-EN-Train_QRELs.tsv"),
            _qrels(root, "CT2021-Task2B-EN-Dev_QRELs.tsv"), contexts)


def article_sentences(n: int = 40) -> list[str]:
    sentences = [
        s for s in split_sentences(SEED_ARTICLE.read_text(encoding="utf-8")) if len(s.split()) > 4
    ]
    return sentences[:n]


def distinct_claims(n: int) -> tuple[list[Claim], str]:
    """``n`` claims with distinct real texts, and where they come from.

    First the CLEF 2022 2A Snopes claims (title as alias), then the CLEF 2021 2B
    PolitiFact claims (title as alias), then 2A subtitles, debate transcript
    lines of 5 words or more and MSRP news sentences as claims of their own:
    all real sentences, deduplicated on their lowercased text.
    """
    seen: set[str] = set()
    out: list[Claim] = []
    counts: dict[str, int] = {}

    def add(source: str, cid: str, text: str, alias: str | None = None) -> None:
        key = " ".join(text.lower().split())
        if len(out) >= n or not key or key in seen:
            return
        seen.add(key)
        out.append(Claim(cid, text, aliases=(alias,) if alias else ()))
        counts[source] = counts.get(source, 0) + 1

    vclaims = load_clef()[0]
    for v in vclaims:
        add("2A claims", v["vclaim_id"], v["vclaim"], v.get("title"))
    if len(out) < n and CLEF2B.is_dir():
        for v in load_clef2b()[0]:
            add("2B claims", v["vclaim_id"], v["vclaim"], v.get("title"))
    for v in vclaims:
        if v.get("subtitle"):
            add("2A subtitles", v["vclaim_id"] + "-subtitle", v["subtitle"])
    if len(out) < n and CLEF2B.is_dir():
        for path in sorted((CLEF2B / "transcripts").glob("*.tsv")):
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                parts = line.split("\t")
                if len(parts) >= 3 and len(parts[2].split()) >= 5:
                    add("2B transcript lines", f"{path.stem}-{i}", parts[2])
    msrp = SHARED_DATA / "msrp-paraphrase" / "msr_paraphrase_train.txt"
    if len(out) < n and msrp.is_file():
        for i, line in enumerate(msrp.read_text(encoding="utf-8").splitlines()[1:]):
            parts = line.split("\t")
            for j, text in enumerate(parts[3:5]):
                add("MSRP sentences", f"msrp-{i}-{j}", text)
    return out, ", ".join(f"{k} {v:,}" for k, v in counts.items())
