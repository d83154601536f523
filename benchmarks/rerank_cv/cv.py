"""Fast rows-only 5-fold CV of re-ranker feature sets (train only; experiment of branch s20-quality).

    .venv/bin/python benchmarks/rerank_cv/rows.py /tmp/rerank_rows.npz   # ~80 s: every candidate column
    .venv/bin/python benchmarks/rerank_cv/cv.py /tmp/rerank_rows.npz "base;rl;rl signed"
    .venv/bin/python benchmarks/rerank_cv/gate.py "rl gap+signed late first3"  # score-margin gate
    .venv/bin/python benchmarks/rerank_cv/fit_all.py CONFIG && .venv/bin/python benchmarks/rerank_cv/demo.py

Folds as quality_claims.py --cv (2A by tweet with its dense tables, 2B by debate); MAP@5
and the dense figures are computed from the rows alone (a claim's best text, the subject
penalty and the lexical floor applied; no one-claim-per-idea), so they approximate
--cv's; about 30-45 s per feature set. No dev figure.
"""
import sys, math, time
from pathlib import Path; _R = str(Path(__file__).resolve().parents[2]); sys.path[:0] = [_R, _R + "/benchmarks"]
import numpy as np
import lightgbm
from claims_data import load_clef, load_clef2b
from pipeline.claims import rerank as R, scoring as S

z = np.load(sys.argv[1])
_, _, train, _ = load_clef()
_, _, train2b, _, _ = load_clef2b()
ngold_a = np.array([len(g) for _, g in sorted(train.items())])
ngold_b = np.array([len(g) for _, g in sorted(train2b.items())])
debates = list(z["b_debate"])
place = {d: i % 5 for i, d in enumerate(sorted(set(debates)))}
fold_b = np.array([place[d] for d in debates])
fold_a = np.arange(len(ngold_a)) % 5
OLD = ("lexical", "lexical_margin", "cos_text", "cos_context", "cos_margin", "date_gap", "date_known",
       "speaker", "window_cover", "date_rel", "rival_lead", "rival_cos_lead", "cov_claim", "cov_query",
       "names_missing", "date_before", "date_after", "date_after_late")
F = {f: i for i, f in enumerate(OLD)}
PARAMS = {"objective": "binary", "num_leaves": 7, "learning_rate": 0.05, "min_data_in_leaf": 40,
          "bagging_fraction": 0.8, "bagging_freq": 1, "seed": 7, "deterministic": True,
          "num_threads": 1, "verbose": -1}

def fit(x, y, w=None, params=PARAMS, rounds=400):
    return lightgbm.train(params, lightgbm.Dataset(x, y, weight=w), num_boost_round=rounds)

def mapk(p, y, g, c, o, ngold):
    p = np.where(o, p * S.SUBJECT_PENALTY, p)
    ap = np.zeros(len(ngold))
    order = np.lexsort((c, -p, g))
    cur = -1; seen = set(); hits = 0; rank = 0; tot = 0.0
    res = {}
    for i in order:
        q = g[i]
        if q != cur:
            if cur >= 0: res[cur] = tot
            cur = q; seen = set(); hits = 0; rank = 0; tot = 0.0
        if c[i] in seen or rank >= 5: continue
        seen.add(c[i]); rank += 1
        if y[i]: hits += 1; tot += hits / rank
    if cur >= 0: res[cur] = tot
    for q, t in res.items(): ap[q] = t / ngold[q]
    return ap

def dense(p, x, y, g, t, c, o):
    s = np.where(x[:, F["lexical"]] >= S.LEXICAL_MIN_LOGIT, p, 0.0)
    s = np.round(100 * np.where(o, s * S.SUBJECT_PENALTY, s), 2)
    n = g.max() + 1
    pos = np.zeros(n); absent = np.zeros(n); neg = []
    for tab in (0, 1):
        m = t == tab
        key = {}
        for gi, ci, si, yi in zip(g[m], c[m], s[m], y[m]):
            k = (gi, ci)
            if si > key.get(k, (-1, 0))[0]: key[k] = (si, yi)
        for (gi, ci), (si, yi) in key.items():
            if tab == 0:
                if yi: pos[gi] = max(pos[gi], si)
                else: neg.append(si)
            else:
                absent[gi] = max(absent[gi], si)
    return pos, np.array(neg), absent

def figs(sc, th):
    pos, neg, ab = sc
    tp = (pos >= th).sum(); fp = (neg >= th).sum()
    return tp / max(tp + fp, 1), tp / len(pos), (ab >= th).mean()

def at_recall(sc, r):
    for th in np.arange(100, -0.01, -0.5):
        P, Rc, A = figs(sc, th)
        if Rc >= r: return th, P, A
    return 0, *figs(sc, 0)[::2]

def tier(sc, target=0.98):
    best = 100.0
    for th in np.arange(100, 0, -0.5):
        P, Rc, A = figs(sc, th)
        if (sc[0] >= th).sum() + (sc[1] >= th).sum() == 0: continue
        if P < target: break
        best = th
    return best

def run(name, cols, dense_w=1.0, params=PARAMS, rounds=400, b_w=1.0):
    cols = [F[c] for c in cols]
    A = (z["ax"], z["ay"], z["ag"], z["ac"], z["ao"]); B = (z["bx"], z["by"], z["bg"], z["bc"], z["bo"])
    D = (z["dx"], z["dy"], z["dg"], z["dt"], z["dc"], z["do"])
    fa = fold_a[A[2]]; fb = fold_b[B[2]]; fd = fold_a[D[2]]
    pa = np.zeros(len(A[1])); pb = np.zeros(len(B[1])); pd = np.zeros(len(D[1]))
    for k in range(5):
        x = np.vstack([A[0][fa != k], B[0][fb != k], D[0][fd != k]])[:, cols]
        y = np.concatenate([A[1][fa != k], B[1][fb != k], D[1][fd != k]])
        w = np.concatenate([np.ones((fa != k).sum()), np.full((fb != k).sum(), b_w), np.full((fd != k).sum(), dense_w)])
        bst = fit(x, y, w, params, rounds)
        pa[fa == k] = bst.predict(A[0][fa == k][:, cols])
        pb[fb == k] = bst.predict(B[0][fb == k][:, cols])
        pd[fd == k] = bst.predict(D[0][fd == k][:, cols])
    ma = mapk(pa, A[1], A[2], A[3], A[4], ngold_a).mean()
    mb = mapk(pb, B[1], B[2], B[3], B[4], ngold_b).mean()
    sc = dense(pd, *D)
    th = tier(sc)
    th9 = tier(sc, 0.9)
    print(f"   suggested(0.90) {th9}: P {figs(sc, th9)[0]:.3f} R {figs(sc, th9)[1]:.3f} ab {figs(sc, th9)[2]:.3f}", flush=True)
    P, Rc, Ab = figs(sc, th)
    rs = "; ".join(f"R{r:.2f}@{t:.1f}: ab {a:.3f} P {p:.3f}" for r in (0.6, 0.66, 0.7) for t, p, a in [at_recall(sc, r)])
    print(f"{name:40s} 2A {ma:.4f} 2B {mb:.4f} | tier {th} P {P:.3f} R {Rc:.3f} ab {Ab:.3f} | {rs}", flush=True)
    return pa, pb, pd, sc

BASE = ["lexical", "lexical_margin", "cos_text", "cos_context", "cos_margin", "date_gap", "date_known", "speaker", "window_cover"]
def swap(cfg, new):
    out = []
    for f in cfg: out.extend(new if f == "date_gap" else [f])
    return out
RL = BASE + ["rival_lead"]
CONFIGS = {
  "base": (BASE, {}),
  "rl": (RL, {}),
  "rl signed": (swap(RL, ["date_before", "date_after"]), {}),
  "rl signed late": (swap(RL, ["date_before", "date_after_late"]), {}),
  "rl gap+signed late": (RL + ["date_before", "date_after_late"], {}),
  "rl signed first3": (swap(RL, ["date_before", "date_after"]) + ["cov_claim", "cov_query", "names_missing"], {}),
  "signed": (swap(BASE, ["date_before", "date_after"]), {}),
  "rl first3": (RL + ["cov_claim", "cov_query", "names_missing"], {}),
  "rl signed late first3": (swap(RL, ["date_before", "date_after_late"]) + ["cov_claim", "cov_query", "names_missing"], {}),
  "rl gap+signed late first3": (RL + ["date_before", "date_after_late", "cov_claim", "cov_query", "names_missing"], {}),
}
if __name__ == "__main__":
    names = sys.argv[2].split(";") if len(sys.argv) > 2 else list(CONFIGS)
    for nm in names:
        t0 = time.time()
        cols, kw = CONFIGS[nm]
        run(nm, cols, **kw)
        print(f"   {time.time()-t0:.0f}s", flush=True)
