"""Time and size of `geostance report` on a large mentions table (target: 100,000 mentions in
under 20 s and under 5 MB; evidence is capped per country, so the page does not grow with N).

    python benchmarks/report_speed.py [--mentions 100000] [--model models/default]

The table is built from the committed labeled sentences (text, target) with the model's own
predictions, repeated over synthetic documents, outlets and months, so every section renders.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--model", default=str(ROOT / "models" / "default"))
    args = parser.parse_args()
    from geostance import load_model
    from geostance.data import read_labeled

    rows = read_labeled(sorted((ROOT / "data" / "labeled").glob("*.csv")))[["text", "target"]]
    model = load_model(args.model)
    predicted = model.predict_proba(rows)
    rows = rows.assign(
        stance=model.predict(rows).to_numpy(),
        **{f"p_{c}": predicted[c].to_numpy() for c in predicted},
    )
    table = rows.sample(args.mentions, replace=True, random_state=0).reset_index(drop=True)
    rng = np.random.default_rng(0)
    documents = np.arange(len(table)) // 8
    table.insert(0, "document", documents.astype(str))
    table.insert(1, "sentence", np.arange(len(table)) % 8 + 1)
    table["outlet"] = np.array([f"outlet {i}" for i in range(12)])[documents % 12]
    table["date"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(
        rng.integers(0, 365, len(table)), unit="D"
    )
    with tempfile.TemporaryDirectory() as tmp:
        mentions, page = Path(tmp) / "mentions.csv", Path(tmp) / "report.html"
        table.to_csv(mentions, index=False)
        command = [
            sys.executable, "-m", "geostance.cli", "report", str(mentions), "--model", args.model,
            "--out", str(page), "--group-column", "outlet", "--date-column", "date",
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - started
        print(f"load average {os.getloadavg()[0]:.2f}")
        print(
            f"report of {len(table):,} mentions ({table['document'].nunique():,} documents, "
            f"{table['target'].nunique()} countries): {seconds:.1f} s, "
            f"{page.stat().st_size / 2**20:.2f} MiB (targets: < 20 s, < 5 MiB)"
        )


if __name__ == "__main__":
    main()
