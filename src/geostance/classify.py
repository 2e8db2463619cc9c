"""From running text to stances: sentences, country mentions, one prediction per mention.

Two tables come out of any number of documents, one batched prediction each time:
- mentions: one row per (document, sentence, country) with the stance and its probabilities;
- summary: one row per (document, country): counts per label, mean probabilities, the overall
  stance (the label most mentions carry; `mixed` when favor and against tie) and the evidence
  sentences behind it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np

from geostance.errors import ModelError
from geostance.linear import LABELS, label_probabilities
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


def classify_mentions(estimator, documents, **options):
    """The mentions table of `documents` (a DataFrame with `document` and `text` columns) as
    a DataFrame; see `mention_columns` for the columns and options."""
    import pandas as pd

    pairs = zip(documents["document"], documents["text"], strict=True)
    return pd.DataFrame(mention_columns(estimator, pairs, **options))


def mention_columns(
    estimator,
    documents: Iterable[tuple[object, str]],
    *,
    min_confidence: float | None = None,
    explain: int = 0,
    resolve: bool = False,
) -> dict[str, list]:
    """Classify every country mention in (document id, text) pairs: MENTION_COLUMNS (with
    `resolved` after `target` when `resolve`) as lists, one item per mention.

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
        for document, text in documents
        for row in _sentence_rows(gazetteer, document, split_sentences(text), resolve)
    ]
    document, sentence, text, target, read, resolved = (
        [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(6)]
    )
    columns = {"document": document, "sentence": sentence, "text": text, "target": target}
    if resolve:
        columns["resolved"] = resolved
    # The model reads a resolved sentence with its back-reference replaced by the two names.
    pairs = {"text": read, "target": target}
    proba, stances = (
        label_probabilities(estimator, pairs) if rows else (np.zeros((0, len(LABELS))), [])
    )
    stance = list(stances)
    if min_confidence is not None:
        stance = [
            UNCERTAIN if p < min_confidence else s
            for s, p in zip(stance, proba.max(axis=1), strict=True)
        ]
    columns["stance"] = stance
    for k, name in enumerate(PROBABILITY_COLUMNS):
        columns[name] = np.round(proba[:, k], 4).tolist()
    if explain:
        explanations = estimator.explain(pairs, list(stances), k=explain) if rows else []
        columns["explanation"] = [
            "; ".join(f"{readable_feature(n)} {v:+.3f}" for n, v in e) for e in explanations
        ]
        if "clause" in explain_columns(estimator, explain):
            columns["clause"] = estimator.clauses(pairs) if rows else []
    return columns


def overall_stance(counts: np.ndarray) -> np.ndarray:
    """Per row of label counts (LABELS order), the label most mentions carry.

    A tie between favor and against is `mixed`; a tie of neutral with one of them goes to that
    one; mentions below --min-confidence do not vote, and with none left it is `uncertain`.
    """
    top = counts.max(axis=1, keepdims=True)
    leaders = (counts == top) & (top > 0)
    favor, against, neutral = leaders.T
    out = np.full(len(counts), UNCERTAIN, dtype=object)
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


def summarise(mentions):
    """The summary table (SUMMARY_COLUMNS) of a mentions DataFrame, as a DataFrame."""
    import pandas as pd

    columns = {c: mentions[c].tolist() for c in MENTION_COLUMNS}
    return pd.DataFrame(summary_columns(columns), columns=SUMMARY_COLUMNS)


def summary_columns(mentions: dict[str, list]) -> dict[str, list]:
    """One row per (document, country) of a mentions table, in order of first mention; see
    the module docstring. Evidence: up to three sentences behind the overall stance (from both
    sides when mixed), surest first."""
    index: dict[tuple, int] = {}
    keys = zip(mentions["document"], mentions["target"], strict=True)
    group = np.array([index.setdefault(key, len(index)) for key in keys], dtype=np.int64)
    labels = [*LABELS, UNCERTAIN]
    label = np.array([labels.index(s) for s in mentions["stance"]], dtype=np.int64)
    proba = np.array([mentions[c] for c in PROBABILITY_COLUMNS], dtype=float).T
    proba = proba.reshape(-1, len(LABELS))
    counts = np.zeros((len(index), len(labels)), dtype=np.int64)
    np.add.at(counts, (group, label), 1)
    sizes = counts.sum(axis=1)
    overall = overall_stance(counts[:, : len(LABELS)])
    # A mention backs its group's stance by carrying it, or either side of a mixed one.
    stance = np.asarray(mentions["stance"], dtype=object)
    backs = (stance == overall[group]) | (
        (overall[group] == MIXED) & np.isin(stance, ["favor", "against"])
    )
    sureness = np.where(
        label < len(LABELS),
        proba[np.arange(len(label)), np.minimum(label, len(LABELS) - 1)],
        proba.max(axis=1, initial=0),
    )
    evidence: list[list[str]] = [[] for _ in index]
    for i in np.lexsort((-sureness, group)):  # by group, surest first, ties in mention order
        if backs[i] and len(evidence[group[i]]) < 3:
            evidence[group[i]].append(str(int(mentions["sentence"][i])))
    out: dict[str, list] = {
        "document": [document for document, _ in index],
        "target": [target for _, target in index],
        "mentions": sizes.tolist(),
    }
    for k, name in enumerate(labels):
        out[name] = counts[:, k].tolist()
    for k, name in enumerate(PROBABILITY_COLUMNS):
        sums = np.bincount(group, proba[:, k], minlength=len(index))
        out[name] = np.round(sums / np.maximum(sizes, 1), 4).tolist()
    out["stance"] = overall.tolist()
    out["evidence"] = [";".join(e) for e in evidence]
    return {c: out[c] for c in SUMMARY_COLUMNS}


@dataclass
class Classification:
    """Stances found in one text: per sentence, and summarised per country."""

    sentences: list[dict] = field(default_factory=list)
    summary: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def mentions(self):
        """One row per (sentence, country) as a DataFrame: index, text, target, stance,
        p_favor, ..."""
        import pandas as pd

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
    """Classify each text; one `Classification` per text, in order (no pandas on this path,
    so a one-off classification starts quickly)."""
    mentions = mention_columns(
        model.estimator,
        enumerate(texts),
        min_confidence=min_confidence,
        explain=explain,
        resolve=resolve,
    )
    shown = ["target", "stance", *PROBABILITY_COLUMNS]
    shown += [c for c in ("resolved", "explanation", "clause") if c in mentions]
    by_sentence: dict[tuple, list[dict]] = {}
    for i, key in enumerate(zip(mentions["document"], mentions["sentence"], strict=True)):
        by_sentence.setdefault(key, []).append({c: mentions[c][i] for c in shown})
    summary = summary_columns(mentions)
    results = [Classification() for _ in texts]
    for j, document in enumerate(summary["document"]):
        results[document].summary.append({c: summary[c][j] for c in SUMMARY_COLUMNS[1:]})
    for document, (text, result) in enumerate(zip(texts, results, strict=True)):
        result.sentences = [
            {"index": index, "text": sentence, "mentions": by_sentence.get((document, index), [])}
            for index, sentence in enumerate(split_sentences(text), start=1)
        ]
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
