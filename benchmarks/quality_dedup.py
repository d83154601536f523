"""Quality of the duplicate detector (run by hand; prints figures, writes nothing).

    .venv/bin/python benchmarks/quality_dedup.py            # everything (~1-2 min)
    .venv/bin/python benchmarks/quality_dedup.py --only seed|msrp|semeval|synthetic
    .venv/bin/python benchmarks/quality_dedup.py --data /path/to/shared/data

Three parts:

1. MSRP train (sentence pairs from same-event news clusters, 1 = paraphrase): a
   threshold on ``similarity`` is tuned for F1 on one half (even rows) and P/R/F1 are
   reported on the other half (odd rows), and vice versa.
2. SemEval 2022 Task 8 pairs with text: same story = Overall <= 1.5, different =
   Overall >= 3 (the middle is dropped). Same-story pairs there are mostly *independent*
   reports by different outlets, which ``classify`` must NOT call rewrites, so two things
   are reported: (a) ``similarity`` as a same-story score (threshold tuned on one half,
   reported on the other) - a ranking quality figure; (b) how often ``classify``
   flags each group as copy/rewrite - should be rare in both, and ~0 for "different".
   English-English first, other same-language pairs separately.
3. Synthetic: every article of scrapinghub-aeb ground-truth.json is stored in a
   ``NearDupIndex``; for each article an exact copy, a boilerplate copy (header +
   footer, one paragraph dropped) and a rewrite (sentences shuffled within sections of
   3 paragraphs, synonym-ish word changes, 20 % of sentences dropped) are looked up.
   Found = candidate from the LSH step (reported separately) AND confirmed by
   ``classify`` as the right original. False positives = any other stored article
   confirmed as a duplicate.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.dedup import (  # noqa: E402
    COPY_THRESHOLD,
    REWRITE_THRESHOLD,
    NearDupIndex,
    all_band_keys,
    classify,
    fact_sketch,
    features,
    sentences,
    signatures,
    similarity,
)

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# ------------------------------------------------------------------------ metrics


def prf(pred: list[bool], gold: list[bool]) -> tuple[float, float, float]:
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    fp = sum(p and not g for p, g in zip(pred, gold, strict=True))
    fn = sum(g and not p for p, g in zip(pred, gold, strict=True))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def auc(scores: list[float], gold: list[bool]) -> float:
    """ROC AUC (probability a positive outranks a negative; ties count half)."""
    pos = [s for s, g in zip(scores, gold, strict=True) if g]
    neg = sorted(s for s, g in zip(scores, gold, strict=True) if not g)
    if not pos or not neg:
        return float("nan")
    import bisect

    total = 0.0
    for s in pos:
        lo, hi = bisect.bisect_left(neg, s), bisect.bisect_right(neg, s)
        total += lo + 0.5 * (hi - lo)
    return total / (len(pos) * len(neg))


def best_threshold(scores: list[float], gold: list[bool]) -> float:
    best_t, best_f = 0.5, -1.0
    for t in sorted(set(round(s, 3) for s in scores)):
        f = prf([s >= t for s in scores], gold)[2]
        if f > best_f:
            best_t, best_f = t, f
    return best_t


def tuned_halves(scores: list[float], gold: list[bool]) -> list[tuple[float, tuple]]:
    """Tune on even rows, report on odd rows; then the reverse."""
    out = []
    for tune, test in ((0, 1), (1, 0)):
        ts = scores[tune::2]
        tg = gold[tune::2]
        t = best_threshold(ts, tg)
        out.append((t, prf([s >= t for s in scores[test::2]], gold[test::2])))
    return out


def fmt(p: float, r: float, f: float) -> str:
    return f"P {p:.3f}  R {r:.3f}  F1 {f:.3f}"


# --------------------------------------------------------------------------- MSRP


def run_msrp(data: Path) -> None:
    path = data / "msrp-paraphrase" / "msr_paraphrase_train.txt"
    rows = []
    with path.open(encoding="utf-8-sig") as fh:
        next(fh)
        for line in fh:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) == 5 and parts[0] in ("0", "1"):
                rows.append((parts[0] == "1", parts[3], parts[4]))
    t0 = time.perf_counter()
    scores = [similarity(a, b) for _, a, b in rows]
    dt = (time.perf_counter() - t0) / len(rows) * 1000
    gold = [g for g, _, _ in rows]
    print(f"\n== MSRP train: {len(rows)} pairs, {sum(gold)} paraphrases ({dt:.2f} ms/pair)")
    print(f"   all-positive baseline: {fmt(*prf([True] * len(gold), gold))};  "
          f"similarity ROC AUC {auc(scores, gold):.3f}")
    for (t, m), name in zip(tuned_halves(scores, gold), ("odd", "even"), strict=True):
        print(f"   similarity >= {t:.3f} (tuned on the other half), {name} rows: {fmt(*m)}")
    for t in (REWRITE_THRESHOLD,):
        print(f"   fixed REWRITE_THRESHOLD {t}: {fmt(*prf([s >= t for s in scores], gold))}")
    verdicts = [classify(a, b).kind is not None for _, a, b in rows]
    print(f"   classify() != None (shipped thresholds): {fmt(*prf(verdicts, gold))}")


# ------------------------------------------------------------------------ SemEval


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def load_semeval(data: Path) -> list[dict[str, str]]:
    folder = data / "semeval2022-task8-news-similarity"
    files = sorted(folder.glob("*.csv.gz"))
    csv.field_size_limit(10**9)
    rows: list[dict[str, str]] = []
    seen = set()
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["pair_id"] in seen or not row.get("text1") or not row.get("text2"):
                    continue
                seen.add(row["pair_id"])
                rows.append(row)
    return rows


def run_semeval(data: Path) -> None:
    rows = load_semeval(data)
    groups: dict[str, list[tuple[bool, str, str]]] = defaultdict(list)
    for row in rows:
        overall = float(row["Overall"])
        if 1.5 < overall < 3:
            continue
        l1, l2 = row["lang1"], row["lang2"]
        if l1 != l2:
            continue  # cross-language: no lexical method can be expected to work
        groups[l1].append((overall <= 1.5, row["text1"], row["text2"]))
    print(f"\n== SemEval 2022 task 8 ({len(rows)} pairs with text; same <= 1.5, diff >= 3)")
    langs = sorted(groups, key=lambda lang: (lang != "en", -len(groups[lang])))
    other_scores: list[float] = []
    other_gold: list[bool] = []
    for lang in langs:
        items = groups[lang]
        gold = [g for g, _, _ in items]
        scores = [similarity(a, b) for _, a, b in items]
        kinds = [classify(a, b).kind for _, a, b in items]
        flagged_same = sum(k is not None for k, g in zip(kinds, gold, strict=True) if g)
        flagged_diff = sum(k is not None for k, g in zip(kinds, gold, strict=True) if not g)
        n_same, n_diff = sum(gold), len(gold) - sum(gold)
        print(f"-- {lang}-{lang}: {n_same} same-story, {n_diff} different")
        if lang != "en":
            other_scores += scores
            other_gold += gold
        if n_same >= 4:
            print(f"   similarity ROC AUC {auc(scores, gold):.3f}")
            for (t, m), name in zip(tuned_halves(scores, gold), ("odd", "even"), strict=True):
                print(f"   similarity >= {t:.3f} (tuned other half), {name}: {fmt(*m)}")
            fj = [_jaccard(fact_sketch(a), fact_sketch(b)) for _, a, b in items]
            print(f"   (alternative same-story signal: fact-sketch Jaccard, ROC AUC "
                  f"{auc(fj, gold):.3f}; " + "; ".join(
                      f"{name} >= {t:.3f}: {fmt(*m)}" for (t, m), name in
                      zip(tuned_halves(fj, gold), ("odd", "even"), strict=True)) + ")")
        print(f"   classify() flags copy/rewrite: same-story {flagged_same}/{n_same}, "
              f"different {flagged_diff}/{n_diff}  ({Counter(k for k in kinds if k)})")
        shared = [bool(set(all_band_keys(a)) & set(all_band_keys(b))) for _, a, b in items]
        cand_same = sum(s for s, g in zip(shared, gold, strict=True) if g)
        cand_diff = sum(s for s, g in zip(shared, gold, strict=True) if not g)
        print(f"   LSH candidate (>= 1 shared band): same-story {cand_same}/{n_same}, "
              f"different {cand_diff}/{n_diff}")
        if lang == "en":
            ranked = sorted(zip(scores, gold, strict=True), reverse=True)
            print("   top-10 scores (score, same?):",
                  ", ".join(f"{s:.2f}{'+' if g else '-'}" for s, g in ranked[:10]))
    if other_gold:
        print(f"-- all non-English same-language pairs: {sum(other_gold)} same, "
              f"{len(other_gold) - sum(other_gold)} different")
        print(f"   similarity ROC AUC {auc(other_scores, other_gold):.3f}")
        for (t, m), name in zip(tuned_halves(other_scores, other_gold), ("odd", "even"),
                                strict=True):
            print(f"   similarity >= {t:.3f} (tuned other half), {name}: {fmt(*m)}")


# ---------------------------------------------------------------------- synthetic

# Synonym-ish substitutions a rewriter makes (both directions are applied).
_SYNONYMS = """
said:stated says:states told:informed company:firm companies:firms big:large small:little
begin:start began:started help:assist helped:assisted show:reveal showed:revealed
shows:reveals buy:purchase bought:purchased use:utilise used:utilised using:utilising
get:obtain got:obtained need:require needs:requires needed:required important:significant
people:individuals person:individual however:though also:additionally many:numerous
about:roughly around:approximately more:over most:majority often:frequently but:yet
because:since quickly:rapidly fast:rapid job:position jobs:positions worker:employee
workers:employees new:fresh old:former make:create made:created end:finish ended:finished
try:attempt tried:attempted think:believe thought:believed want:wish wanted:wished
start:launch started:launched increase:rise increased:rose decrease:fall decreased:fell
problem:issue problems:issues goal:aim goals:aims main:primary enough:sufficient
give:provide gave:provided keep:retain kept:retained leave:depart left:departed
allow:permit allowed:permitted build:construct built:constructed country:nation
countries:nations city:town government:administration team:group teams:groups
world:globe plan:scheme plans:schemes change:alter changed:altered
"""
_SYN: dict[str, str] = {}
for _pair in _SYNONYMS.split():
    _a, _b = _pair.split(":")
    _SYN.setdefault(_a, _b)
    _SYN.setdefault(_b, _a)

_TOKEN = re.compile(r"[A-Za-z]+|[^A-Za-z]+")
HEADER = ("Skip to main content\nSubscribe now: get unlimited access for $1 a week\n"
          "Home | World | Business | Technology | Opinion\nAdvertisement\n")
FOOTER = ("\nRead more: the latest headlines, delivered to your inbox every morning.\n"
          "Copyright 2024 Example Media Group. All rights reserved. This material may "
          "not be published, broadcast, rewritten or redistributed.\nFollow us on "
          "Twitter, Facebook and Instagram. Share this article.\n")


REWORD_RATE = 0.4  # share of other lower-case words of 4+ letters replaced


def _reword(sentence: str, rng: random.Random, vocab: list[str], rate: float) -> str:
    """Synonym swaps, plus REWORD_RATE of the remaining lower-case words replaced by
    random words (a word choice no synonym list can know), plus, for 30 % of the
    sentences with a comma, the two halves swapped around it."""
    out = []
    for tok in _TOKEN.findall(sentence):
        low = tok.lower()
        if tok.isalpha() and tok[0].islower():
            if low in _SYN and rng.random() < 0.9:
                tok = _SYN[low]
            elif len(tok) >= 4 and rng.random() < rate:
                tok = rng.choice(vocab)
        out.append(tok)
    text = "".join(out)
    head, sep, tail = text.partition(", ")
    if sep and len(head.split()) >= 3 and len(tail.split()) >= 3 and rng.random() < 0.3:
        tail = tail.rstrip()
        end = tail[-1] if tail[-1] in ".!?" else ""
        text = f"{tail[:len(tail) - len(end)]}, {head[:1].lower()}{head[1:]}{end}"
        text = text[:1].upper() + text[1:]
    return text


def make_copy(text: str, rng: random.Random) -> str:
    paras = [p for p in text.split("\n") if p.strip()]
    if len(paras) > 2:
        del paras[rng.randrange(1, len(paras))]
    return HEADER + "\n".join(paras) + FOOTER


def make_rewrite(
    text: str, rng: random.Random, vocab: list[str], rate: float = REWORD_RATE
) -> str:
    paras = [p for p in text.split("\n") if p.strip()]
    out_paras = []
    for i in range(0, len(paras), 3):
        sents = [s for p in paras[i:i + 3] for s in sentences(p)]
        kept = [s for s in sents if rng.random() >= 0.2] or sents[:1]
        rng.shuffle(kept)
        out_paras.append(" ".join(_reword(s, rng, vocab, rate) for s in kept))
    return "\n".join(out_paras)


def run_synthetic(data: Path, limit: int | None = None) -> None:
    gt = json.loads((data / "scrapinghub-aeb" / "ground-truth.json").read_text("utf-8"))
    docs = {
        k: v["articleBody"] for k, v in sorted(gt.items()) if (v.get("articleBody") or "").strip()
    }
    if limit:
        docs = dict(list(docs.items())[:limit])
    rng = random.Random(20240601)
    vocab = sorted({w for t in docs.values() for w in re.findall(r"\b[a-z]{5,}\b", t)})
    index = NearDupIndex()
    t0 = time.perf_counter()
    for key, text in docs.items():
        index.add(key, signatures(text))
    t_add = (time.perf_counter() - t0) / len(docs) * 1000
    print(f"\n== synthetic copies/rewrites of scrapinghub-aeb: {len(docs)} articles stored "
          f"({t_add:.1f} ms/article to sign)")
    variants = {
        "exact": lambda t: t,
        "copy": lambda t: make_copy(t, rng),
        f"rewrite (reword {REWORD_RATE:.0%}, main)": lambda t: make_rewrite(t, rng, vocab),
        "rewrite (reword 25%)": lambda t: make_rewrite(t, rng, vocab, 0.25),
        "rewrite (reword 55%)": lambda t: make_rewrite(t, rng, vocab, 0.55),
    }
    for name, make in variants.items():
        cand_hit = found = fps = n_cands = 0
        fp_pairs = 0
        kinds: Counter[str | None] = Counter()
        wrong_pairs: set[tuple[str, str]] = set()
        t_query = 0.0
        for key, text in docs.items():
            probe = make(text)
            t1 = time.perf_counter()
            cands = index.query(signatures(probe), limit=50)
            verdicts = {c: classify(docs[str(c)], probe) for c in cands}
            t_query += time.perf_counter() - t1
            n_cands += len(cands)
            cand_hit += key in verdicts
            v = verdicts.get(key)
            if v is not None and v.kind is not None:
                found += 1
            kinds[v.kind if v else "not-candidate"] += 1
            wrong = [c for c, vv in verdicts.items() if c != key and vv.kind is not None]
            fps += bool(wrong)
            fp_pairs += len(wrong)
            wrong_pairs.update((key[:10], str(c)[:10]) for c in wrong)
        n = len(docs)
        print(f"-- {name}: LSH candidate recall {cand_hit / n:.3f}  found (candidate AND "
              f"confirmed) {found / n:.3f}  articles with a false match {fps}/{n} "
              f"({fp_pairs} wrong pairs)  mean candidates {n_cands / n:.1f}  "
              f"{t_query / n * 1000:.1f} ms/lookup")
        print(f"   verdicts on the true original: {dict(kinds)}"
              + (f"; false matches (probe of ~ matched): {sorted(wrong_pairs)}"
                 if wrong_pairs else ""))
    # Exhaustive false-positive check: every stored article against every other one.
    t1 = time.perf_counter()
    keys = list(docs)
    confirmed = 0
    for i, a in enumerate(keys):
        for b in index.query(signatures(docs[a]), limit=50):
            if b != a and keys.index(str(b)) > i and classify(docs[a], docs[str(b)]).kind:
                confirmed += 1
                print(f"   stored pair confirmed as duplicate: {a[:10]} ~ {str(b)[:10]}")
    print(f"-- distinct stored articles confirmed as duplicates of each other: {confirmed} "
          f"({time.perf_counter() - t1:.1f} s)")
    _score_ladder(docs, rng, vocab)


def _score_ladder(docs: dict[str, str], rng: random.Random, vocab: list[str]) -> None:
    """Distribution of the rewrite score for rewrites vs. the closest distractor."""
    keys = list(docs)
    rw, dist = [], []
    for key in keys[:60]:
        probe = make_rewrite(docs[key], rng, vocab)
        rw.append(features(docs[key], probe).rewrite_score)
        others = [k for k in keys if k != key]
        dist.append(max(features(docs[k], probe).rewrite_score for k in rng.sample(others, 15)))
    rw.sort()
    dist.sort()
    q = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]  # noqa: E731
    print(f"   rewrite score, rewrites: min {rw[0]:.2f} p10 {q(rw, .1):.2f} "
          f"median {q(rw, .5):.2f}; "
          f"best of 15 random distractors: median {q(dist, .5):.2f} p90 {q(dist, .9):.2f} "
          f"max {dist[-1]:.2f}  (REWRITE_THRESHOLD {REWRITE_THRESHOLD}, COPY {COPY_THRESHOLD})")


def run_seed() -> None:
    """The project's seed rewrite and the hand-written texts of tests/test_dedup.py."""
    from tests.test_dedup import ORIGINAL, SAME_STORY_OTHER_REPORTING, SEED_REWRITE

    print("\n== seed texts (tests/test_dedup.py)")
    for name, a, b in (
        ("source vs seed rewrite", ORIGINAL, SEED_REWRITE),
        ("source vs same story, other reporting", ORIGINAL, SAME_STORY_OTHER_REPORTING),
        ("seed rewrite vs same story, other reporting", SEED_REWRITE,
         SAME_STORY_OTHER_REPORTING),
    ):
        f = features(a, b)
        v = classify(a, b)
        print(f"   {name}: {v.kind} (similarity {v.similarity:.2f}; containment "
              f"{f.containment:.2f}, alignment {f.alignment:.2f}, numbers {f.numbers}, "
              f"entities {f.entities and round(f.entities, 2)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--only", choices=("seed", "msrp", "semeval", "synthetic"))
    ap.add_argument("--limit", type=int, help="synthetic: use only the first N articles")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.only in (None, "seed"):
        run_seed()
    if args.only in (None, "msrp"):
        run_msrp(args.data)
    if args.only in (None, "semeval"):
        run_semeval(args.data)
    if args.only in (None, "synthetic"):
        run_synthetic(args.data, args.limit)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
