"""Predict with the committed default model on every committed labeled row: `write` saves the
probabilities, `check` compares them with a saved reference and names the versions in use."""

import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from geostance import load_model


def probabilities() -> np.ndarray:
    rows = pd.concat(
        pd.read_csv(p, dtype=str, keep_default_na=False)
        for p in sorted(Path("data/labeled").glob("*.csv"))
    )
    return load_model("models/default").predict_proba(rows[["text", "target"]]).to_numpy()


def main(action: str, reference: str, expected_sklearn: str = "") -> None:
    if action == "write":
        Path(reference).parent.mkdir(parents=True, exist_ok=True)
        np.save(reference, probabilities())
        return
    installed = metadata.version("scikit-learn")
    assert installed == expected_sklearn, f"scikit-learn {installed}, expected {expected_sklearn}"
    difference = float(np.abs(probabilities() - np.load(reference)).max())
    versions = {n: metadata.version(n) for n in ("scikit-learn", "numpy", "scipy", "pandas")}
    print(f"compat {versions}: max abs probability difference {difference:.2e}")
    assert difference < 1e-9, difference


if __name__ == "__main__":
    main(*sys.argv[1:])
