"""From running text to stances: sentences, country mentions, one prediction per mention.

Two tables come out of any number of documents, one batched prediction each time:
- mentions: one row per (document, sentence, country) with the stance and its probabilities;
- summary: one row per (document, country): counts per label, mean probabilities, the overall
  stance (the label most mentions carry; `mixed` when favor and against tie) and the evidence
  sentences behind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from geostance.errors import ModelError
from geostance.linear import LABELS, predict_frame
from geostance.mentions import OTHER_TOKEN, TARGET_TOKEN, back_reference, split_sentences

PROBABILITY_COLUMNS = [f"p_{label}" for label in LABELS]
UNCERTAIN = "uncertain"
MIXED = "mixed"
MENTION_COLUMNS = ["document", "sentence", "text", "target", "stance", *PROBABILITY_COLUMNS]
SUMMARY_COLUMNS = [
    "document",
    "target",
    "mentions",
    *LABELS,
    UNCERTAIN,
    *PROBABILITY_COLUMNS,
    "stance",
    "evidence",
]


def classify_mentions(
    estimator,
    documents: pd.DataFrame,
    *,
    min_confidence: float | None = None,
    explain: int = 0,
    resolve: bool = False,
) -> pd.DataFrame:
    """Classify every country mention in `documents` (columns `document`, `text`).

    min_confidence: a mention whose top probability is below it gets the stance "uncertain".
    resolve: a sentence that names no country but says "both countries", "the two sides" (and
    the like) gets a row for each of the two countries the previous sentence named, read as if
    it named them; a `resolved` column marks those rows.
    explain: with k > 0, add an `explanation` column: the k n-grams that pushed each mention
    most toward its predicted label, with their contributions; and, for a model with a clause
    view, a `clause` column: the clause it read for that country.
    """
    gazetteer = getattr(estimator, "gazetteer", None)
    if gazetteer is None:
        raise ModelError("this model has no gazetteer to find countries; use predict instead")
    rows = [
        row
        for document, text in zip(documents["document"], documents["text"], strict=True)
        for row in _sentence_rows(gazetteer, document, split_sentences(text), resolve)
    ]
    frame = pd.DataFrame(
        rows, columns=["document", "sentence", "text", "target", "read", "resolved"]
    )
    extra = ["resolved"] if resolve else []
    if frame.empty:
        return frame.reindex(columns=MENTION_COLUMNS + extra + explain_columns(estimator, explain))
    # The model reads a resolved sentence with its back-reference replaced by the two names.
    read = frame[["read", "target"]].rename(columns={"read": "text"})
    frame = frame.drop(columns="read" if resolve else ["read", "resolved"])
    predicted = predict_frame(estimator, read)
    frame["stance"] = predicted["stance"].to_numpy(dtype=object)
    for label in LABELS:
        frame[f"p_{label}"] = predicted[label].round(4).to_numpy()
    if explain:
        explanations = estimator.explain(read, frame["stance"], k=explain)
        frame["explanation"] = [
            "; ".join(f"{readable_feature(n)} {v:+.3f}" for n, v in e) for e in explanations
        ]
        clauses = estimator.clauses(read)
        if clauses is not None:
            frame["clause"] = clauses
    if min_confidence is not None:
        frame.loc[predicted[list(LABELS)].max(axis=1).to_numpy() < min_confidence, "stance"] = (
            UNCERTAIN
        )
    return frame


def overall_stance(summary: pd.DataFrame) -> np.ndarray:
    """Per row of label counts, the label most mentions carry.

    A tie between favor and against is `mixed`; a tie of neutral with one of them goes to that
    one; mentions below --min-confidence do not vote, and with none left it is `uncertain`.
    """
    counts = summary[list(LABELS)].to_numpy()
    top = counts.max(axis=1, keepdims=True)
    leaders = (counts == top) & (top > 0)
    favor, against, neutral = leaders.T
    out = np.full(len(summary), UNCERTAIN, dtype=object)
    out[neutral] = "neutral"
    out[favor] = "favor"
    out[against] = "against"
    out[favor & against] = MIXED
    return out


def _sentence_rows(gazetteer, document, sentences: list[str], resolve: bool):
    """(document, index, sentence, target, text the model reads, resolved) for every mention."""
    previous: list[str] = []
    for index, sentence in enumerate(sentences, start=1):
        targets = gazetteer.targets(sentence)
        reference = back_reference(sentence) if resolve and not targets else None
        if reference is not None and len(previous) == 2:
            names = " and ".join(previous)
            read = f"{sentence[: reference.start()]}{names}{sentence[reference.end() :]}"
            for target in previous:
                yield document, index, sentence, target, read, True
            continue
        for target in targets:
            yield document, index, sentence, target, sentence, False
        previous = targets


def explain_columns(estimator, explain: int) -> list[str]:
    """The columns --explain adds: `explanation`, and `clause` for a model with a clause view."""
    if not explain:
        return []
    return ["explanation"] + (["clause"] if "clause" in estimator.views else [])


def summarise(mentions: pd.DataFrame) -> pd.DataFrame:
    """One row per (document, country) of a mentions table; see the module docstring."""
    if mentions.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    keys = ["document", "target"]
    groups = mentions.groupby(keys, sort=False)
    summary = groups[PROBABILITY_COLUMNS].mean().round(4)
    summary.insert(0, "mentions", groups.size())
    counts = groups["stance"].value_counts().unstack(fill_value=0)
    for label in (*LABELS, UNCERTAIN):
        summary.insert(len(summary.columns) - 3, label, counts.get(label, 0))
    summary["stance"] = overall_stance(summary)
    # Evidence: up to three sentences behind the overall stance (both sides when mixed),
    # surest first.
    joined = mentions.join(summary["stance"].rename("overall"), on=keys)
    backs = (joined["stance"] == joined["overall"]) | (
        (joined["overall"] == MIXED) & joined["stance"].isin(["favor", "against"])
    )
    agreeing = joined[backs]
    sureness = agreeing[PROBABILITY_COLUMNS].to_numpy()[
        np.arange(len(agreeing)), [LABELS.index(v) for v in agreeing["stance"]]
    ]
    ranked = agreeing.assign(sureness=sureness).sort_values(
        "sureness", ascending=False, kind="stable"
    )
    evidence = ranked.groupby(keys, sort=False)["sentence"].agg(
        lambda sentences: ";".join(str(int(i)) for i in sentences.iloc[:3])
    )
    summary["evidence"] = evidence.astype(object).reindex(summary.index, fill_value="")
    return summary.reset_index()[SUMMARY_COLUMNS]


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


def classify_texts(
    model,
    texts: list[str],
    min_confidence: float | None = None,
    explain: int = 0,
    resolve: bool = False,
) -> list[Classification]:
    """Classify each text; one `Classification` per text, in order."""
    documents = pd.DataFrame({"document": np.arange(len(texts)), "text": texts})
    mentions = classify_mentions(
        model.estimator, documents, min_confidence=min_confidence, explain=explain, resolve=resolve
    )
    columns = ["target", "stance", *PROBABILITY_COLUMNS]
    columns += [c for c in ("resolved", "explanation", "clause") if c in mentions.columns]
    summary = summarise(mentions)
    results = []
    for document, text in enumerate(texts):
        found = mentions[mentions["document"] == document]
        result = Classification()
        for index, sentence in enumerate(split_sentences(text), start=1):
            rows = found[found["sentence"] == index]
            result.sentences.append(
                {
                    "index": index,
                    "text": sentence,
                    "mentions": rows[columns].to_dict("records"),
                }
            )
        result.summary = (
            summary[summary["document"] == document].drop(columns=["document"]).to_dict("records")
        )
        results.append(result)
    return results


def readable_feature(feature: str) -> str:
    """`word__ztargetz failed` -> `[TARGET] failed`, `clause__ztargetz fired` ->
    `clause:[TARGET] fired`: a feature name an analyst can read, with the view it came from
    when it is not the whole sentence (word n-grams plain, char n-grams quoted)."""
    feature = feature.replace(TARGET_TOKEN, "[TARGET]").replace(OTHER_TOKEN, "[OTHER]")
    target, _, rest = feature.rpartition("::")
    kind, _, ngram = rest.partition("__")
    shown = {"word": ngram, "char": f"'{ngram}'"}.get(kind, f"{kind}:{ngram}")
    return f"{target}:{shown}" if target else shown
