"""From running text to stances: sentences, country mentions, one prediction per mention.

The per-country summary's overall stance is the label with the highest mean probability over
that country's mentions, so one confident sentence does not outvote several mild ones unseen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from geostance.errors import ModelError
from geostance.mentions import split_sentences
from geostance.model import LABELS, predict_frame

PROBABILITY_COLUMNS = [f"p_{label}" for label in LABELS]


@dataclass
class Classification:
    """Stances found in one text: per sentence, and summarised per country."""

    sentences: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def mentions(self) -> pd.DataFrame:
        """One row per (sentence, country): index, text, target, stance, p_favor, ..."""
        rows = [
            {"index": s["index"], "text": s["text"], **m}
            for s in self.sentences
            for m in s["mentions"]
        ]
        return pd.DataFrame(
            rows, columns=["index", "text", "target", "stance", *PROBABILITY_COLUMNS]
        )


def classify_texts(model, texts: list[str]) -> list[Classification]:
    """Classify every country mention of every text with one batched prediction."""
    if model.gazetteer is None:
        raise ModelError("this model has no gazetteer to find countries; use predict instead")
    split = [split_sentences(text) for text in texts]
    pairs = [
        (doc, index, sentence, target)
        for doc, sentences in enumerate(split)
        for index, sentence in enumerate(sentences, start=1)
        for target in model.gazetteer.targets(sentence)
    ]
    frame = pd.DataFrame(pairs, columns=["doc", "index", "text", "target"])
    if len(frame):
        predicted = predict_frame(model.estimator, frame)
        frame["stance"] = predicted["stance"].to_numpy()
        for label in LABELS:
            frame[f"p_{label}"] = predicted[label].round(4).to_numpy()
    results = []
    for doc, sentences in enumerate(split):
        rows = frame[frame["doc"] == doc]
        result = Classification()
        for index, sentence in enumerate(sentences, start=1):
            mentions = rows[rows["index"] == index]
            result.sentences.append(
                {
                    "index": index,
                    "text": sentence,
                    "mentions": mentions[["target", "stance", *PROBABILITY_COLUMNS]].to_dict(
                        "records"
                    ),
                }
            )
        result.summary = summarise(rows)
        results.append(result)
    return results


def summarise(mentions: pd.DataFrame) -> list[dict]:
    """Per country: mention count, count per label, mean probabilities, overall stance."""
    summary = []
    for target, rows in mentions.groupby("target", sort=False):
        means = {c: round(float(rows[c].mean()), 4) for c in PROBABILITY_COLUMNS}
        counts = rows["stance"].value_counts()
        summary.append(
            {
                "target": target,
                "mentions": int(len(rows)),
                **{label: int(counts.get(label, 0)) for label in LABELS},
                **means,
                "stance": max(LABELS, key=lambda label: means[f"p_{label}"]),
            }
        )
    return summary
