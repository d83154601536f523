import sys
from pathlib import Path
sys.argv = [sys.argv[0], "/tmp/rerank_rows.npz"] + sys.argv[1:]
import numpy as np
exec(open("" + str(Path(__file__).with_name("cv.py")) + "").read().split('if __name__ == "__main__":')[0])
import pickle

def tables(p, x, y, g, t, c, o):
    s = np.where(x[:, F["lexical"]] >= S.LEXICAL_MIN_LOGIT, p, 0.0)
    s = np.round(100 * np.where(o, s * S.SUBJECT_PENALTY, s), 2)
    out = {}
    for gi, ti, ci, si, yi in zip(g, t, c, s, y):
        d = out.setdefault((gi, ti), {})
        if si > d.get(ci, (-1, 0))[0]: d[ci] = (si, yi)
    return out

def gate_figs(tb, n, T, M, low=30.0):
    tp = fp = ab = 0
    for (gi, ti), d in tb.items():
        items = sorted(d.values(), key=lambda v: -v[0])
        for j, (s, yv) in enumerate(items):
            if s < T: break
            other = max([v[0] for k, v in enumerate(items) if k != j] or [0.0])
            if s - other < M: continue
            if ti == 1: ab += 1; break
            if yv: tp += 1
            else: fp += 1
    return tp / max(tp + fp, 1), tp / n, ab / n

cfgname = sys.argv[2] if len(sys.argv) > 2 else "rl signed"
cols, kw = CONFIGS[cfgname]
pa, pb, pd, sc = run(cfgname, cols, **kw)
D = (z["dx"], z["dy"], z["dg"], z["dt"], z["dc"], z["do"])
tb = tables(pd, *D)
n = D[2].max() + 1
pickle.dump(tb, open(f"/tmp/rerank_tb_{cfgname.replace(' ','_')}.pkl", "wb"))
for M in (0, 5, 10, 20, 30, 40):
    row = []
    for T in (50, 60, 70, 75, 80, 85, 90):
        P, Rc, A = gate_figs(tb, n, T, M)
        row.append(f"T{T}: P{P:.3f} R{Rc:.3f} ab{A:.3f}")
    print(f"M{M:3d} " + " | ".join(row), flush=True)
