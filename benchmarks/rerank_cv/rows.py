"""Collect re-ranker rows with all experimental features (train only)."""
import sys, time
from pathlib import Path; _R = str(Path(__file__).resolve().parents[2]); sys.path[:0] = [_R, _R + "/benchmarks"]
import numpy as np
import quality_claims as Q
from pipeline import claims as C
from pipeline.claims import rerank as R, scoring as S
from pipeline.text import analyse

t0 = time.time()
R.set_model(R.Forest([{"feature": [], "threshold": [], "left": [], "right": [], "leaf_value": [0.0]}], 0.0))
vclaims, queries, train, dev = Q.load_clef()
claims = Q.clef_claims(vclaims)
index = C.ClaimIndex.build(claims)
v2b, q2b, train2b, dev2b, ctx2b = Q.load_clef2b()
index2b = C.ClaimIndex.build(Q.clef2b_claims(v2b))

def collect(index, queries, qrels, ctx, depth=60):
    xs, ys, gs, cs, os_ = [], [], [], [], []
    for n, (qid, gold) in enumerate(sorted(qrels.items())):
        kept = []
        f = analyse(queries[qid])
        S._score_queries(index, [f], depth, None, 0.0, [ctx(qid)], keep_features=kept)
        if not kept: continue
        _, rows, x = kept[0]
        xs.append(x)
        cl = index.row_claim[rows]
        ys.append(np.array([index.claims[int(c)].id in gold for c in cl], float))
        gs.append(np.full(len(rows), n)); cs.append(cl.astype(np.int64))
        os_.append(np.array([S._other_subject(index, f, int(r)) for r in rows], bool))
    return np.vstack(xs), np.concatenate(ys), np.concatenate(gs), np.concatenate(cs), np.concatenate(os_)

a = collect(index, queries, train, lambda q: Q.tweet_context(queries[q]))
print("2A", time.time()-t0, flush=True)
b = collect(index2b, q2b, train2b, lambda q: ctx2b[q])
print("2B", time.time()-t0, flush=True)
near = Q.bm25_rank(claims, k=21)
by_id = {c.id: c for c in claims}
xs, ys, gs, ts, cs, os_ = [], [], [], [], [], []
for n, (qid, gold) in enumerate(sorted(train.items())):
    g = sorted(gold)[0]
    nb = [cid for cid in near(by_id[g].text) if cid not in gold][:20]
    contexts = [Q.tweet_context(queries[qid])]
    f = analyse(queries[qid])
    for t, tc in enumerate(([by_id[g], *(by_id[c] for c in nb[:19])], [by_id[c] for c in nb])):
        table = C.ClaimIndex.build(tc)
        kept = []
        S._score_queries(table, [f], 5, S.CANDIDATE_GATE, 0.0, contexts, keep_features=kept)
        if kept:
            _, rows, x = kept[0]
            xs.append(x)
            cl = table.row_claim[rows]
            ys.append(np.array([table.claims[int(c)].id in gold for c in cl], float))
            gs.append(np.full(len(rows), n)); ts.append(np.full(len(rows), t))
            # claim identity across tables: global index by id
            cs.append(cl.astype(np.int64))
            os_.append(np.array([S._other_subject(table, f, int(r)) for r in rows], bool))
print("dense", time.time()-t0, flush=True)
np.savez(sys.argv[1], ax=a[0], ay=a[1], ag=a[2], ac=a[3], ao=a[4],
         bx=b[0], by=b[1], bg=b[2], bc=b[3], bo=b[4],
         dx=np.vstack(xs), dy=np.concatenate(ys), dg=np.concatenate(gs), dt=np.concatenate(ts),
         dc=np.concatenate(cs), do=np.concatenate(os_),
         b_debate=np.array([q.rpartition("_")[0] for q in sorted(train2b)]))
print("saved", time.time()-t0)
