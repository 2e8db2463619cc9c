"""Prediction from a model's weights with NumPy and SciPy only.

A fitted `StanceClassifier` is TF-IDF blocks feeding a linear layer. `LinearStance` holds exactly
those arrays and reproduces the estimator's probabilities (tested to 1e-9), so a saved model is
data, not code: loading it never unpickles, and classifying never imports scikit-learn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, compress, repeat
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from geostance.mentions import OTHER_TOKEN, TARGET_TOKEN, Gazetteer, view_text

LABELS = ("favor", "against", "neutral")
FEATURES = ["text", "target"]
ANALYZERS = ("word", "char_wb")
KINDS = ("softmax", "binary", "ovr")

_HASHTAG = re.compile(r"#(\w+)")
_WORD_BREAK = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|_")
WORD_CACHE = 200_000  # distinct words whose character n-gram columns are kept
_MISSING = repeat(-1)  # dict.get's default for n-grams outside the vocabulary


@dataclass
class TfidfBlock:
    """One fitted TfidfVectorizer (lowercase, sublinear tf optional, idf, l2 norm)."""

    name: str  # "word", "char" or a view's name: the prefix of its feature names
    analyzer: str  # "word" or "char_wb"
    ngram_range: tuple[int, int]
    sublinear_tf: bool
    token_pattern: str
    terms: list[str]  # the n-gram of each column
    idf: np.ndarray
    view: str = "sentence"  # the part of the masked sentence it reads (mentions.view_text)
    window: int = 0  # words around a mention, for the window views

    def __post_init__(self):
        if self.analyzer not in ANALYZERS:
            raise ValueError(f"analyzer must be one of {ANALYZERS}, got {self.analyzer!r}")
        self.ngram_range = tuple(int(n) for n in self.ngram_range)
        self.terms = self.terms.tolist() if isinstance(self.terms, np.ndarray) else list(self.terms)
        self._token = re.compile(self.token_pattern)
        self._cache: dict[str, np.ndarray] = {}

    def __getstate__(self) -> dict:
        """Pickled (to --jobs workers, to a feature cache) without the rebuildable look-ups."""
        state = {k: v for k, v in self.__dict__.items() if k != "index"}
        return state | {"_cache": {}}

    @cached_property
    def index(self) -> dict[str, int]:
        """Column of each n-gram; built on first use, so loading a model stays quick."""
        return dict(zip(self.terms, range(len(self.terms)), strict=True))

    def _char_ngrams(self, word: str) -> list[str]:
        """The n-grams scikit-learn's char_wb analyzer yields for one lowercased word."""
        low, high = self.ngram_range
        word, grams = f" {word} ", []
        for n in range(low, high + 1):
            grams += [word[i : i + n] for i in range(max(1, len(word) - n + 1))]
            if len(word) <= n:  # a short word yields itself once, whatever n
                break
        return grams

    def transform(self, texts: list[str]) -> sp.csr_matrix:
        """TF-IDF rows of `texts`, equal to the fitted vectorizer's (tested)."""
        return _normalise(*self.weighted(texts))

    def weighted(self, texts: list[str]) -> tuple[sp.csr_matrix, np.ndarray]:
        """TF-IDF rows before l2 normalisation, and each row's norm (1 for an empty row): a
        linear layer can divide its few scores instead of every matrix entry."""
        return self._weigh(self.counts(texts))

    def counts(self, texts: list[str]) -> sp.csr_matrix:
        """How often each vocabulary n-gram occurs in each text."""
        return self._word_counts(texts) if self.analyzer == "word" else self._char_counts(texts)

    def _weigh(self, matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
        if self.sublinear_tf:
            np.log(matrix.data, out=matrix.data)
            matrix.data += 1
        matrix.data *= self.idf[matrix.indices]
        norms = np.sqrt(matrix.multiply(matrix).sum(axis=1).A1)
        norms[norms == 0] = 1
        return matrix, norms

    def ngram_set(self, texts: list[str]) -> set[str]:
        """Every n-gram of `texts`: the vocabulary that fitting starts from."""
        if self.analyzer == "word":
            return set(chain.from_iterable(grams for _, grams in self._word_ngrams(texts)))
        words = set(chain.from_iterable(text.lower().split() for text in texts))
        return set(chain.from_iterable(map(self._char_ngrams, words)))

    def _word_ngrams(self, texts: list[str]) -> Iterator[tuple[np.ndarray, list[str]]]:
        """(text of each n-gram, the n-grams) for each n, from all texts' tokens at once; an
        n-gram that would span two texts is left out."""
        tokens = [self._token.findall(text.lower()) for text in texts]
        text_of = np.repeat(np.arange(len(texts)), list(map(len, tokens)))
        flat = list(chain.from_iterable(tokens))
        low, high = self.ngram_range
        for n in range(low, high + 1):
            grams = (
                flat
                if n == 1
                else list(map(" ".join, zip(*(flat[i:] for i in range(n)), strict=False)))
            )
            starts = text_of[: len(grams)]
            inside = starts == text_of[n - 1 :]
            yield starts[inside], list(compress(grams, inside))

    def _word_counts(self, texts: list[str]) -> sp.csr_matrix:
        rows, columns = [], []
        for starts, grams in self._word_ngrams(texts):
            found = np.fromiter(map(self.index.get, grams, _MISSING), np.int64, len(grams))
            rows.append(starts[found >= 0])
            columns.append(found[found >= 0])
        return _count_matrix(
            np.concatenate(rows), np.concatenate(columns), len(texts), len(self.terms)
        )

    def _char_counts(self, texts: list[str]) -> sp.csr_matrix:
        """Character n-grams never cross a word boundary (char_wb), so a text's counts are the
        sum of its words': (texts x distinct words) @ (distinct words x n-grams), where each
        word's n-gram columns are computed once and kept in a bounded cache."""
        words = [text.lower().split() for text in texts]  # as sklearn's, whitespace runs too
        distinct = dict.fromkeys(chain.from_iterable(words))
        if len(self._cache) + len(distinct) > WORD_CACHE:
            self._cache.clear()  # bounded memory on endless input; refills as it goes
        cache, get = self._cache, self.index.get
        for word in distinct:
            if word not in cache:
                grams = self._char_ngrams(word)
                columns = np.fromiter(map(get, grams, _MISSING), np.int32, len(grams))
                cache[word] = columns[columns >= 0]  # int32 arrays: 200,000 words in ~40 MB
        position = dict(zip(distinct, range(len(distinct)), strict=True))
        occurrences = _count_matrix(
            np.repeat(np.arange(len(texts)), list(map(len, words))),
            np.fromiter(map(position.get, chain.from_iterable(words)), np.int64),
            len(texts),
            len(distinct),
        )
        grams = [cache[word] for word in distinct]
        vocabulary = _count_matrix(
            np.repeat(np.arange(len(grams)), list(map(len, grams))),
            np.concatenate(grams) if grams else np.zeros(0, np.int32),
            len(grams),
            len(self.terms),
        )
        return occurrences @ vocabulary


@dataclass
class LinearLayer:
    """The blocks (optionally copied per training target) and one linear classifier."""

    blocks: list[TfidfBlock]
    targets: list[str]  # feature-augmentation copies, one per training target (or none)
    classes: np.ndarray
    weights: np.ndarray  # one row per class
    intercepts: np.ndarray
    kind: str  # softmax (multinomial), binary (two classes), ovr (one-vs-rest)

    def features(self, inputs: Inputs) -> sp.csr_matrix:
        """The full feature matrix (TF-IDF blocks, then a copy per target), as the classifier
        was trained on: for explanations, which name the feature behind each contribution."""
        blocks = [
            b.transform(texts) for b, texts in zip(self.blocks, self._views(inputs), strict=True)
        ]
        shared = sp.hstack(blocks).tocsr()
        if not self.targets:
            return shared
        copies = [sp.diags((inputs.targets == t).astype(float)) @ shared for t in self.targets]
        return sp.hstack([shared, *copies]).tocsr()

    def scores(self, inputs: Inputs) -> np.ndarray:
        """The decision function, `features(inputs) @ weights.T + intercepts`, block by block:
        each block's unnormalised rows meet its slice of the weights and only the n x classes
        product is divided by the row norms, so no block is copied or rescaled entry by entry."""
        scores = np.tile(self.intercepts, (len(inputs.texts), 1))
        copies = [(inputs.targets == t).nonzero()[0] for t in self.targets]
        width, offset = sum(len(b.terms) for b in self.blocks), 0
        for block, texts in zip(self.blocks, self._views(inputs), strict=True):
            matrix, norms = block.weighted(texts)
            columns = slice(offset, offset + len(block.terms))
            part = matrix @ self.weights[:, columns].T
            for copy, rows in enumerate(copies, start=1):
                shifted = slice(columns.start + copy * width, columns.stop + copy * width)
                part[rows] += matrix[rows] @ self.weights[:, shifted].T
            scores += part / norms[:, None]
            offset += len(block.terms)
        return scores

    def _views(self, inputs: Inputs) -> list[list[str]]:
        """The text each block reads (blocks that share a view share one list)."""
        views: dict[tuple[str, int], list[str]] = {}
        for b in self.blocks:
            if (b.view, b.window) not in views:
                views[b.view, b.window] = [view_text(t, b.view, b.window) for t in inputs.texts]
        return [views[b.view, b.window] for b in self.blocks]

    def feature_names(self) -> np.ndarray:
        names = np.array([f"{b.name}__{t}" for b in self.blocks for t in b.terms], dtype=object)
        copies = [np.array([f"{t}::{n}" for n in names], dtype=object) for t in self.targets]
        return np.concatenate([names, *copies])

    def predict_proba(self, inputs: Inputs) -> np.ndarray:
        scores = self.scores(inputs)
        if self.kind == "binary":
            positive = _expit(scores[:, 1])
            return np.column_stack([1 - positive, positive])
        if self.kind == "ovr":
            proba = _expit(scores)
            return proba / proba.sum(axis=1, keepdims=True)
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        return scores / scores.sum(axis=1, keepdims=True)


class Inputs(NamedTuple):
    """What the vectorizers see: texts with hashtags split and targets masked, and targets."""

    texts: list[str]
    targets: np.ndarray  # of str, one per text

    def take(self, rows: np.ndarray) -> Inputs:
        """The rows selected by a boolean mask."""
        return Inputs([self.texts[i] for i in rows.nonzero()[0]], self.targets[rows])


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

    def prepare(self, X) -> Inputs:
        """What the vectorizers see (see `prepare_inputs`)."""
        gazetteer = self.gazetteer if self.mask_targets else None
        return prepare_inputs(X, gazetteer, self.split_hashtags)

    def routes(self, inputs: Inputs):
        return routes(inputs.targets, self.per_target, self.pooled)

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities, columns in the order of `classes_`. X: a DataFrame, or any mapping,
        with `text` and `target` columns."""
        inputs = self.prepare(X)
        classes = list(self.classes_)
        proba = np.zeros((len(inputs.texts), len(classes)))
        for layer, rows in self.routes(inputs):
            if isinstance(layer, str):
                proba[rows, classes.index(layer)] = 1.0
                continue
            columns = [classes.index(c) for c in layer.classes]
            proba[np.ix_(rows, columns)] = layer.predict_proba(inputs.take(rows))
        return scale_temperature(proba, self.temperature) if self.temperature != 1.0 else proba

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def explain(self, X, labels, k: int | None = 5) -> list[list[tuple[str, float]]]:
        """For each row, the n-grams that push its score toward `labels[i]` the most.

        A contribution is the n-gram's TF-IDF value times its weight for that label, so all of a
        row's contributions plus the label's intercept add up to the classifier's decision
        function. `k=None` returns every non-zero contribution, largest first.
        """
        inputs = self.prepare(X)
        labels = np.asarray(labels, dtype=object)
        out: list[list[tuple[str, float]]] = [[] for _ in inputs.texts]
        for layer, rows in self.routes(inputs):
            if isinstance(layer, str):
                continue  # a constant prediction has no n-grams behind it
            matrix = layer.features(inputs.take(rows))
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

    def clauses(self, X) -> list[str] | None:
        """The clause the model read for each row (placeholders shown as [TARGET] and
        [OTHER]), or None when it has no clause view."""
        if "clause" not in self.views:
            return None
        return [
            view_text(text, "clause")
            .strip()
            .replace(TARGET_TOKEN, "[TARGET]")
            .replace(OTHER_TOKEN, "[OTHER]")
            for text in self.prepare(X).texts
        ]

    def top_features(self, k: int) -> dict[str, list[tuple[str, float]]]:
        """The `k` n-grams with the largest weight toward each label in the pooled layer."""
        names = self.pooled.feature_names()
        return {
            str(label): [(str(names[j]), round(float(row[j]), 4)) for j in np.argsort(-row)[:k]]
            for label, row in zip(self.pooled.classes, self.pooled.weights, strict=True)
        }


def fit_block(
    texts: list[str], min_df: int = 1, empty: bool = False, **spec
) -> tuple[TfidfBlock, sp.csr_matrix]:
    """A TfidfBlock fitted on `texts` as scikit-learn's TfidfVectorizer (smooth idf, l2) fits,
    and the texts' TF-IDF rows: terms sorted, those in fewer than `min_df` texts dropped,
    idf = ln((1 + texts) / (1 + texts with the term)) + 1. Equal to scikit-learn's (tested).

    No term left is an error, as in scikit-learn, unless `empty`: then the block has no columns
    (a context view can be empty for every row of a small country's model).
    """
    terms = sorted(TfidfBlock(terms=[], idf=np.zeros(0), **spec).ngram_set(texts))
    counts = TfidfBlock(terms=terms, idf=np.zeros(len(terms)), **spec).counts(texts)
    frequency = np.bincount(counts.indices, minlength=len(terms))
    kept = frequency >= min_df
    if not kept.any() and not empty:
        raise ValueError(f"empty vocabulary: no n-gram occurs in {min_df}+ of the texts")
    idf = np.log((1 + len(texts)) / (1 + frequency[kept])) + 1
    block = TfidfBlock(terms=list(compress(terms, kept)), idf=idf, **spec)
    return block, _normalise(*block._weigh(counts if kept.all() else counts[:, kept]))


def _normalise(matrix: sp.csr_matrix, norms: np.ndarray) -> sp.csr_matrix:
    matrix.data /= np.repeat(norms, np.diff(matrix.indptr))
    return matrix


def _count_matrix(rows: np.ndarray, columns: np.ndarray, height: int, width: int) -> sp.csr_matrix:
    """How often each (row, column) pair occurs: converting from coordinates sums duplicates."""
    return sp.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(height, width))


def routes(targets: np.ndarray, per_target: dict, pooled):
    """(model or constant label, boolean row mask) pairs covering every row once: a row of a
    target with its own model goes to it, every other row to the pooled one."""
    routed = np.zeros(len(targets), dtype=bool)
    for target, model in per_target.items():
        rows = targets == target
        if rows.any():
            routed |= rows
            yield model, rows
    if not routed.all():
        yield pooled, ~routed


def prepare_inputs(X, gazetteer: Gazetteer | None, split_hashtags: bool) -> Inputs:
    """X's `text` with hashtags split ("#StopTheWar" also yields "Stop The War") and, with a
    gazetteer, the row's target masked as one token and other countries as another.

    X is a DataFrame or any mapping of column name to sequence, so classifying one text needs
    no pandas.
    """
    try:
        texts, targets = list(map(str, X["text"])), list(map(str, X["target"]))
    except (KeyError, TypeError, IndexError):
        raise ValueError(
            "X must be a DataFrame or mapping with 'text' and 'target' columns"
        ) from None
    if len(texts) != len(targets):
        raise ValueError("X's 'text' and 'target' columns differ in length")
    if split_hashtags:
        texts = [_HASHTAG.sub(_split_hashtag, t) for t in texts]
    if gazetteer is not None:
        texts = [gazetteer.mask(t, g) for t, g in zip(texts, targets, strict=True)]
    return Inputs(texts, np.array(targets, dtype=object))


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


def label_probabilities(model, X) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities with one column per label in LABELS order, predicted stances)."""
    proba = np.zeros((len(X["text"]), len(LABELS)))
    columns = [LABELS.index(c) for c in model.classes_]
    proba[:, columns] = model.predict_proba(X)
    # Argmax in the model's own class order, so ties break exactly as model.predict does.
    return proba, np.asarray(model.classes_, dtype=object)[proba[:, columns].argmax(axis=1)]


def predict_frame(model, X):
    """Probabilities as columns named by label (LABELS order) plus the predicted `stance`."""
    import pandas as pd

    proba, stances = label_probabilities(model, X[FEATURES])
    frame = pd.DataFrame(proba, columns=list(LABELS), index=X.index)
    frame["stance"] = stances
    return frame
