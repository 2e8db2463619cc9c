"""Prediction from a model's weights with NumPy and SciPy only.

A fitted `StanceClassifier` is TF-IDF blocks feeding a linear layer. `LinearStance` holds exactly
those arrays and reproduces the estimator's probabilities (tested to 1e-9), so a saved model is
data, not code: loading it never unpickles, and classifying never imports scikit-learn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from geostance.mentions import OTHER_TOKEN, TARGET_TOKEN, Gazetteer, view_text

LABELS = ("favor", "against", "neutral")
FEATURES = ["text", "target"]
ANALYZERS = ("word", "char_wb")
KINDS = ("softmax", "binary", "ovr")

_HASHTAG = re.compile(r"#(\w+)")
_WORD_BREAK = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|_")
_WHITE_SPACES = re.compile(r"\s\s+")
WORD_CACHE = 200_000  # distinct words whose character n-gram columns are kept


@dataclass
class TfidfBlock:
    """One fitted TfidfVectorizer (lowercase, sublinear tf optional, idf, l2 norm)."""

    name: str  # "word", "char" or a view's name: the prefix of its feature names
    analyzer: str  # "word" or "char_wb"
    ngram_range: tuple[int, int]
    sublinear_tf: bool
    token_pattern: str
    terms: np.ndarray  # the n-gram of each column
    idf: np.ndarray
    view: str = "sentence"  # the part of the masked sentence it reads (mentions.view_text)
    window: int = 0  # words around a mention, for the window views

    def __post_init__(self):
        if self.analyzer not in ANALYZERS:
            raise ValueError(f"analyzer must be one of {ANALYZERS}, got {self.analyzer!r}")
        self.ngram_range = tuple(int(n) for n in self.ngram_range)
        self.index = {str(t): i for i, t in enumerate(self.terms)}
        self._token = re.compile(self.token_pattern)
        self._cache: dict[str, list[int]] = {}

    def _columns(self, text: str) -> list[int]:
        """The vocabulary columns of `text`'s n-grams, repeated as often as they occur.

        Character n-grams never cross a word boundary (char_wb), so a sentence's are the sum of
        its words': each distinct word is analysed once and its columns kept in a bounded cache.
        """
        if self.analyzer == "word":
            return [j for j in map(self.index.get, self.ngrams(text)) if j is not None]
        found = []
        for word in _WHITE_SPACES.sub(" ", text.lower()).split():
            cached = self._cache.get(word)
            if cached is None:
                if len(self._cache) >= WORD_CACHE:
                    self._cache.clear()  # bounded memory on endless input; refills as it goes
                grams = self.ngrams(word)
                cached = self._cache[word] = [
                    j for j in map(self.index.get, grams) if j is not None
                ]
            found += cached
        return found

    def ngrams(self, text: str) -> list[str]:
        """The n-grams scikit-learn's analyzer yields for `text`, in the same order."""
        low, high = self.ngram_range
        text = text.lower()
        if self.analyzer == "word":
            tokens = self._token.findall(text)
            grams = list(tokens) if low == 1 else []
            for n in range(max(low, 2), min(high, len(tokens)) + 1):
                grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
            return grams
        grams = []
        for word in _WHITE_SPACES.sub(" ", text).split():
            word = f" {word} "
            for n in range(low, high + 1):
                grams += [word[i : i + n] for i in range(max(1, len(word) - n + 1))]
                if len(word) <= n:  # a short word yields itself once, whatever n
                    break
        return grams

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        rows, columns = [], []
        for row, text in enumerate(texts):
            found = self._columns(text)
            rows += [row] * len(found)
            columns += found
        counts = sp.csr_matrix(
            (np.ones(len(columns)), (rows, columns)), shape=(len(texts), len(self.terms))
        )
        counts.sum_duplicates()
        counts.sort_indices()
        if self.sublinear_tf:
            counts.data = np.log(counts.data) + 1
        counts.data *= self.idf[counts.indices]
        norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
        norms[norms == 0] = 1
        counts.data /= np.repeat(norms, np.diff(counts.indptr))
        return counts


@dataclass
class LinearLayer:
    """The blocks (optionally copied per training target) and one linear classifier."""

    blocks: list[TfidfBlock]
    targets: list[str]  # feature-augmentation copies, one per training target (or none)
    classes: np.ndarray
    weights: np.ndarray  # one row per class
    intercepts: np.ndarray
    kind: str  # softmax (multinomial), binary (two classes), ovr (one-vs-rest)

    def features(self, inputs: pd.DataFrame) -> sp.csr_matrix:
        texts = inputs["text"].tolist()
        views = {
            (b.view, b.window): [view_text(t, b.view, b.window) for t in texts] for b in self.blocks
        }
        shared = sp.hstack([b.transform(views[b.view, b.window]) for b in self.blocks]).tocsr()
        if not self.targets:
            return shared
        targets = inputs["target"].to_numpy()
        copies = [sp.diags((targets == t).astype(float)) @ shared for t in self.targets]
        return sp.hstack([shared, *copies]).tocsr()

    def feature_names(self) -> np.ndarray:
        names = np.array(
            [f"{b.name}__{t}" for b in self.blocks for t in b.terms.tolist()], dtype=object
        )
        copies = [np.array([f"{t}::{n}" for n in names], dtype=object) for t in self.targets]
        return np.concatenate([names, *copies])

    def predict_proba(self, matrix: sp.csr_matrix) -> np.ndarray:
        scores = np.asarray(matrix @ self.weights.T) + self.intercepts
        if self.kind == "binary":
            positive = _expit(scores[:, 1])
            return np.column_stack([1 - positive, positive])
        if self.kind == "ovr":
            proba = _expit(scores)
            return proba / proba.sum(axis=1, keepdims=True)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        return scores / scores.sum(axis=1, keepdims=True)


class LinearStance:
    """The prediction side of `StanceClassifier`: same inputs, same probabilities and
    explanations, from arrays alone."""

    def __init__(
        self,
        classes: np.ndarray,
        pooled: LinearLayer,
        per_target: dict[str, LinearLayer | str],
        gazetteer: Gazetteer | None,
        mask_targets: bool,
        split_hashtags: bool,
        temperature: float,
    ):
        self.classes_ = np.asarray(classes, dtype=object)
        self.pooled = pooled
        self.per_target = per_target
        self.gazetteer = gazetteer
        self.mask_targets = mask_targets
        self.split_hashtags = split_hashtags
        self.temperature = temperature

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """What the vectorizers see: `text` with hashtags split and targets masked, `target`."""
        gazetteer = self.gazetteer if self.mask_targets else None
        return prepare_inputs(X, gazetteer, self.split_hashtags)

    def routes(self, inputs: pd.DataFrame):
        return routes(inputs, self.per_target, self.pooled)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities, columns in the order of `classes_`."""
        inputs = self.prepare(X)
        classes = list(self.classes_)
        proba = np.zeros((len(inputs), len(classes)))
        for layer, rows in self.routes(inputs):
            if isinstance(layer, str):
                proba[rows, classes.index(layer)] = 1.0
                continue
            columns = [classes.index(c) for c in layer.classes]
            proba[np.ix_(rows, columns)] = layer.predict_proba(layer.features(inputs[rows]))
        return scale_temperature(proba, self.temperature) if self.temperature != 1.0 else proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def explain(self, X: pd.DataFrame, labels, k: int | None = 5) -> list[list[tuple[str, float]]]:
        """For each row, the n-grams that push its score toward `labels[i]` the most.

        A contribution is the n-gram's TF-IDF value times its weight for that label, so all of a
        row's contributions plus the label's intercept add up to the classifier's decision
        function. `k=None` returns every non-zero contribution, largest first.
        """
        inputs = self.prepare(X)
        labels = np.asarray(labels, dtype=object)
        out: list[list[tuple[str, float]]] = [[] for _ in range(len(inputs))]
        for layer, rows in self.routes(inputs):
            if isinstance(layer, str):
                continue  # a constant prediction has no n-grams behind it
            matrix = layer.features(inputs[rows])
            names = layer.feature_names()
            classes = list(layer.classes)
            for local, i in enumerate(np.flatnonzero(rows)):
                if labels[i] not in classes:
                    continue
                start, end = matrix.indptr[local], matrix.indptr[local + 1]
                indices = matrix.indices[start:end]
                values = matrix.data[start:end] * layer.weights[classes.index(labels[i]), indices]
                order = np.argsort(-values, kind="stable")
                out[i] = [(str(names[indices[j]]), float(values[j])) for j in order[:k]]
        return out

    @property
    def views(self) -> set[str]:
        """The parts of a sentence the model reads (see `mentions.view_text`)."""
        return {b.view for b in self.pooled.blocks}

    def clauses(self, X: pd.DataFrame) -> list[str] | None:
        """The clause the model read for each row (placeholders shown as [TARGET] and
        [OTHER]), or None when it has no clause view."""
        if "clause" not in self.views:
            return None
        return [
            view_text(text, "clause")
            .strip()
            .replace(TARGET_TOKEN, "[TARGET]")
            .replace(OTHER_TOKEN, "[OTHER]")
            for text in self.prepare(X)["text"]
        ]

    def top_features(self, k: int) -> dict[str, list[tuple[str, float]]]:
        """The `k` n-grams with the largest weight toward each label in the pooled layer."""
        names = self.pooled.feature_names()
        return {
            str(label): [(str(names[j]), round(float(row[j]), 4)) for j in np.argsort(-row)[:k]]
            for label, row in zip(self.pooled.classes, self.pooled.weights, strict=True)
        }


def routes(inputs: pd.DataFrame, per_target: dict, pooled):
    """(model or constant label, boolean row mask) pairs covering every row once: a row of a
    target with its own model goes to it, every other row to the pooled one."""
    targets = inputs["target"].to_numpy()
    routed = np.zeros(len(inputs), dtype=bool)
    for target, model in per_target.items():
        rows = targets == target
        if rows.any():
            routed |= rows
            yield model, rows
    if not routed.all():
        yield pooled, ~routed


def prepare_inputs(X: pd.DataFrame, gazetteer: Gazetteer | None, split_hashtags: bool):
    """`text` with hashtags split ("#StopTheWar" also yields "Stop The War") and, with a
    gazetteer, the row's target masked as one token and other countries as another."""
    if not isinstance(X, pd.DataFrame) or not set(FEATURES) <= set(X.columns):
        raise ValueError("X must be a DataFrame with 'text' and 'target' columns")
    texts = X["text"].astype(str).tolist()
    targets = X["target"].astype(str).tolist()
    if split_hashtags:
        texts = [_HASHTAG.sub(_split_hashtag, t) for t in texts]
    if gazetteer is not None:
        texts = [gazetteer.mask(t, g) for t, g in zip(texts, targets, strict=True)]
    return pd.DataFrame({"text": texts, "target": targets})


def _expit(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def _split_hashtag(match: re.Match) -> str:
    words = " ".join(w for w in _WORD_BREAK.split(match.group(1)) if w)
    return match.group(0) if words == match.group(1) else f"{match.group(0)} {words}"


def scale_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of probabilities rescaled as softmax(log p / temperature); the argmax is kept."""
    logits = np.log(np.clip(proba, 1e-12, None)) / temperature
    scaled = np.exp(logits - logits.max(axis=1, keepdims=True))
    return scaled / scaled.sum(axis=1, keepdims=True)


def predict_frame(model, X: pd.DataFrame) -> pd.DataFrame:
    """Probabilities as columns named by label (LABELS order) plus the predicted `stance`."""
    proba = np.zeros((len(X), len(LABELS)))
    columns = [LABELS.index(c) for c in model.classes_]
    proba[:, columns] = model.predict_proba(X[FEATURES])
    frame = pd.DataFrame(proba, columns=list(LABELS), index=X.index)
    # Argmax in the model's own class order, so ties break exactly as model.predict does.
    frame["stance"] = np.asarray(model.classes_, dtype=object)[proba[:, columns].argmax(axis=1)]
    return frame
