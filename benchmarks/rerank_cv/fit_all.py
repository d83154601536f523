import sys, json
sys.argv = [sys.argv[0], "/tmp/rerank_rows.npz"] + sys.argv[1:]
import numpy as np
exec(open("" + str(Path(__file__).with_name("cv.py")) + "").read().split('if __name__ == "__main__":')[0])
import quality_claims as Q
cfg = sys.argv[2]
cols = [F[c] for c in CONFIGS[cfg][0]]
x = np.vstack([z["ax"], z["bx"], z["dx"]]); y = np.concatenate([z["ay"], z["by"], z["dy"]])
forest, booster = Q.fit_forest(x, y, cols)
R.MODEL_FILE.write_text(json.dumps({"features": list(R.FEATURES), "fitted_on": cfg, "bias": 0.0,
    "trees": forest.trees}, separators=(",", ":")) + "\n", encoding="utf-8")
print("written", cfg)
