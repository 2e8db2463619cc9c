"""The stance estimator: TF-IDF word and character n-grams feeding logistic regression.

It takes a DataFrame with `text` and `target` columns, so a (sentence, country) pair is one
sample and the same sentence can get different labels for different countries.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.validation import check_is_fitted

from geostance.mentions import Gazetteer

LABELS = ("favor", "against", "neutral")
FEATURES = ["text", "target"]
STRATEGIES = ("shared", "augmented", "per_target")
SOLVERS = ("lbfgs", "liblinear")

_HASHTAG = re.compile(r"#(\w+)")
_WORD_BREAK = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|_")


class StanceClassifier(ClassifierMixin, BaseEstimator):
    """Classify the stance of `text` toward `target`.

    strategy: "shared" fits one model on every target's rows; "augmented" adds to the shared
    features a copy per training target (Daume's feature augmentation), so each target can
    reweigh a cue while all share it, and unseen targets use the shared part alone;
    "per_target" fits one model per training target and falls back to a pooled model for others.
    mask_targets: with a gazetteer, mentions of the row's target become one placeholder token and
    mentions of other countries another, so stance cues are learned across countries.
    split_hashtags: "#StopTheWar" also yields "Stop The War", so tags share words with prose.
    word_ngram_range / char_ngram_range: n-gram ranges of the two TF-IDF blocks; None drops one.
    min_df, sublinear_tf: passed to both TfidfVectorizer blocks.
    C, class_weight, max_iter: passed to LogisticRegression; solver "lbfgs" is multinomial,
    "liblinear" one binary model per label (one-vs-rest).
    temperature: probabilities become softmax(log p / temperature); fitted on out-of-fold
    predictions by the experiment when that makes them better calibrated. Labels never change.
    """

    def __init__(
        self,
        gazetteer: Gazetteer | None = None,
        strategy: str = "shared",
        mask_targets: bool = True,
        split_hashtags: bool = False,
        word_ngram_range: tuple[int, int] | None = (1, 2),
        char_ngram_range: tuple[int, int] | None = (2, 5),
        min_df: int = 1,
        sublinear_tf: bool = True,
        C: float = 10.0,
        class_weight: str | None = "balanced",
        solver: str = "lbfgs",
        max_iter: int = 2000,
        temperature: float = 1.0,
    ):
        self.gazetteer = gazetteer
        self.strategy = strategy
        self.mask_targets = mask_targets
        self.split_hashtags = split_hashtags
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.C = C
        self.class_weight = class_weight
        self.solver = solver
        self.max_iter = max_iter
        self.temperature = temperature

    def fit(self, X: pd.DataFrame, y) -> StanceClassifier:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        inputs = self._inputs(X)
        y = np.asarray(y, dtype=object)
        if len(y) != len(inputs):
            raise ValueError(f"X has {len(inputs)} rows but y has {len(y)}")
        self.classes_ = np.array(sorted(set(y)), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError("training data needs at least two stance labels")
        self.pipeline_ = self._pipeline(augment=self.strategy == "augmented").fit(inputs, y)
        self.target_pipelines_ = {}
        if self.strategy == "per_target":
            targets = inputs["target"].to_numpy()
            for target in np.unique(targets):
                rows = targets == target
                labels = np.unique(y[rows])
                # A target seen with one label only gets that label, as a model would learn.
                self.target_pipelines_[target] = (
                    labels[0]
                    if len(labels) == 1
                    else self._pipeline(augment=False).fit(inputs[rows], y[rows])
                )
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities, columns in the order of `classes_`."""
        check_is_fitted(self, "pipeline_")
        inputs = self._inputs(X)
        proba = np.zeros((len(inputs), len(self.classes_)))
        for model, rows in self._routes(inputs):
            if isinstance(model, str):
                proba[rows, list(self.classes_).index(model)] = 1.0
            else:
                proba[rows] = self._aligned(model, inputs[rows])
        return scale_temperature(proba, self.temperature) if self.temperature != 1.0 else proba

    def explain(self, X: pd.DataFrame, labels, k: int | None = 5) -> list[list[tuple[str, float]]]:
        """For each row, the n-grams that push its score toward `labels[i]` the most.

        A contribution is the n-gram's TF-IDF value times its weight for that label, so all of a
        row's contributions plus the label's intercept add up to the classifier's decision
        function. `k=None` returns every non-zero contribution, largest first.
        """
        check_is_fitted(self, "pipeline_")
        inputs = self._inputs(X)
        labels = np.asarray(labels, dtype=object)
        out: list[list[tuple[str, float]]] = [[] for _ in range(len(inputs))]
        for model, rows in self._routes(inputs):
            if isinstance(model, str):
                continue  # a constant prediction has no n-grams behind it
            features, classifier = model.named_steps["features"], model.named_steps["classifier"]
            matrix = features.transform(inputs[rows]).tocsr()
            names = features.get_feature_names_out()
            classes, weights = coefficients(classifier)
            for local, i in enumerate(np.flatnonzero(rows)):
                if labels[i] not in classes:
                    continue
                row = matrix.getrow(local)
                values = row.data * weights[list(classes).index(labels[i]), row.indices]
                order = np.argsort(-values, kind="stable")
                out[i] = [(str(names[row.indices[j]]), float(values[j])) for j in order[:k]]
        return out

    def _routes(self, inputs: pd.DataFrame):
        """(model or constant label, boolean row mask) pairs covering every row once."""
        targets = inputs["target"].to_numpy()
        routed = np.zeros(len(inputs), dtype=bool)
        for target, model in self.target_pipelines_.items():
            rows = targets == target
            if rows.any():
                routed |= rows
                yield model, rows
        if not routed.all():
            yield self.pipeline_, ~routed

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """What the vectorizers see: `text` with hashtags split and targets masked, `target`."""
        return self._inputs(X)

    def _inputs(self, X: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame) or not set(FEATURES) <= set(X.columns):
            raise ValueError("X must be a DataFrame with 'text' and 'target' columns")
        texts = X["text"].astype(str).tolist()
        targets = X["target"].astype(str).tolist()
        if self.split_hashtags:
            texts = [_HASHTAG.sub(_split_hashtag, t) for t in texts]
        if self.mask_targets and self.gazetteer is not None:
            texts = [self.gazetteer.mask(t, g) for t, g in zip(texts, targets, strict=True)]
        return pd.DataFrame({"text": texts, "target": targets})

    def _aligned(self, model: Pipeline, inputs: pd.DataFrame) -> np.ndarray:
        """A sub-model's probabilities spread over all of `classes_` (it may know fewer)."""
        out = np.zeros((len(inputs), len(self.classes_)))
        columns = [list(self.classes_).index(c) for c in model.classes_]
        out[:, columns] = model.predict_proba(inputs)
        return out

    def _pipeline(self, augment: bool) -> Pipeline:
        blocks = []
        common = {"min_df": self.min_df, "sublinear_tf": self.sublinear_tf, "lowercase": True}
        if self.word_ngram_range:
            word = TfidfVectorizer(
                analyzer="word",
                ngram_range=tuple(self.word_ngram_range),
                token_pattern=r"(?u)\b\w+\b",
                **common,
            )
            blocks.append(("word", word))
        if self.char_ngram_range:
            char = TfidfVectorizer(
                analyzer="char_wb", ngram_range=tuple(self.char_ngram_range), **common
            )
            blocks.append(("char", char))
        if not blocks:
            raise ValueError("set word_ngram_range, char_ngram_range or both")
        classifier = LogisticRegression(
            C=self.C, class_weight=self.class_weight, solver=self.solver, max_iter=self.max_iter
        )
        if self.solver == "liblinear":  # binary only: one model per label
            classifier = OneVsRestClassifier(classifier)
        features = TargetFeatures(FeatureUnion(blocks), augment=augment)
        return Pipeline([("features", features), ("classifier", classifier)])


class TargetFeatures(TransformerMixin, BaseEstimator):
    """Vectorize the `text` column; with `augment`, append one copy of it per training target.

    In the copy for target t only rows of t are non-zero, so the classifier can learn a
    target-specific weight on top of the shared one; a target unseen in training gets the
    shared block and zeros.
    """

    def __init__(self, vectorizer, augment: bool = False):
        self.vectorizer = vectorizer
        self.augment = augment

    def fit(self, X: pd.DataFrame, y=None) -> TargetFeatures:
        self.vectorizer_ = clone(self.vectorizer).fit(X["text"])
        self.targets_ = sorted(X["target"].unique()) if self.augment else []
        return self

    def transform(self, X: pd.DataFrame):
        shared = self.vectorizer_.transform(X["text"]).tocsr()
        if not self.targets_:
            return shared
        targets = X["target"].to_numpy()
        blocks = [shared] + [sp.diags((targets == t).astype(float)) @ shared for t in self.targets_]
        return sp.hstack(blocks).tocsr()

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = self.vectorizer_.get_feature_names_out()
        copies = [np.array([f"{t}::{n}" for n in names], dtype=object) for t in self.targets_]
        return np.concatenate([names.astype(object), *copies])


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


def coefficients(classifier) -> tuple[np.ndarray, np.ndarray]:
    """(labels, weights) of a fitted linear classifier: one weight row per label."""
    if isinstance(classifier, OneVsRestClassifier):
        weights = np.vstack([e.coef_ for e in classifier.estimators_])
    else:
        weights = classifier.coef_
    if weights.shape[0] == 1:  # two classes: one row of weights, for classes_[1]
        weights = np.vstack([-weights[0], weights[0]])
    return classifier.classes_, weights


def top_features(estimator: StanceClassifier, k: int) -> dict[str, list[tuple[str, float]]]:
    """The `k` n-grams with the largest weight toward each label in the pooled model."""
    pipeline = estimator.pipeline_
    names = pipeline.named_steps["features"].get_feature_names_out()
    labels, weights = coefficients(pipeline.named_steps["classifier"])
    return {
        str(label): [(str(names[j]), round(float(row[j]), 4)) for j in np.argsort(-row)[:k]]
        for label, row in zip(labels, weights, strict=True)
    }
