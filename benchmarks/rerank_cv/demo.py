import sys, datetime as dt
from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import trafilatura
from pathlib import Path
from pipeline import claims as C
from pipeline.text import split_sentences
from config.loader import load_claims
claims = list(load_claims(Path(__file__).resolve().parents[2] / "config/topics/claims.csv"))
idx = C.ClaimIndex.build(claims)
for p in ["metroherald/2022/12/16/musk-twitter-child-exploitation-team-tiny.html","capitalledger/2022/12/15/musk-vowed-to-rid-twitter-of-child-exploitation.html","northwire/2022/12/15/twitter-child-safety-staff.html"]:
    html = (Path(__file__).resolve().parents[2] / "config/topics/demo-site" / p).read_text()
    text = trafilatura.extract(html)
    d = dt.date(2022,12,int(p.split('/')[3]))
    sents = split_sentences(text)
    ms = C.match_claims(sents, idx, linked_min=101, suggested_min=0.0, context=C.ArticleContext(published=d))
    for m in ms:
        if m.claim_id.startswith("musk-bought") or "top priority" in m.sentence:
            print(p.split('/')[0], m.claim_id, m.score, m.sentence[:80])
