"""All detection-quality figures in one run (by hand; about 2 minutes on 2 cores).

    .venv/bin/python benchmarks/quality.py

Runs, from ../shared/data: extraction on scrapinghub-aeb (quality_extraction.py),
claim matching on CLEF 2022 2A train/dev and the seed-topic set
(quality_claims.py), and duplicate detection on MSRP, SemEval 2022 and synthetic
copies/rewrites (quality_dedup.py). Each part can also be run alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = (
    ("Extraction", ["quality_extraction.py"]),
    ("Claim matching", ["quality_claims.py", "--skip-speed"]),
    ("Duplicates", ["quality_dedup.py"]),
)


def main() -> int:
    status = 0
    for title, args in PARTS:
        print(f"\n=== {title} ({args[0]}) ===", flush=True)
        result = subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], check=False)
        status = status or result.returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
