"""How often `--resolve-references` fires on documents written for it, and how often the model
then gets the resolved rows' stance right (tests/fixtures/back_references.csv: ten short
documents, eight of which refer back to exactly two countries).

    python benchmarks/back_references.py [--model models/default]
"""

import argparse
from pathlib import Path

import pandas as pd

from geostance import load_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "default"))
    gold = pd.read_csv(
        ROOT / "tests" / "fixtures" / "back_references.csv", dtype=str, keep_default_na=False
    )
    model = load_model(parser.parse_args().model)
    documents = gold[gold["text"] != ""]
    results = model.classify(documents["text"].tolist(), resolve=True)
    found = pd.DataFrame(
        [
            {
                "document": d,
                "resolved_sentence": str(s["index"]),
                "target": m["target"],
                "predicted": m["stance"],
            }
            for d, result in zip(documents["document"], results, strict=True)
            for s in result.sentences
            for m in s["mentions"]
            if m.get("resolved")
        ]
    )
    expected = gold[gold["target"] != ""]
    joined = expected.merge(
        found, on=["document", "resolved_sentence", "target"], how="outer", indicator=True
    )
    fired = joined[joined["_merge"] != "left_only"]
    right = (fired["stance"] == fired["predicted"]).sum()
    print(
        f"documents: {len(documents)}; resolved rows expected {len(expected)}, produced {len(found)}"
    )
    print(
        f"fired where expected: {(joined['_merge'] == 'both').sum()}; fired where not expected: {(joined['_merge'] == 'right_only').sum()}"
    )
    print(f"stance right on resolved rows: {right} of {len(fired)}")
    print(fired[["document", "target", "stance", "predicted"]].to_string(index=False))


if __name__ == "__main__":
    main()
