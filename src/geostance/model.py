"""The stance estimator: TF-IDF word and character n-grams feeding logistic regression.

It takes a DataFrame with `text` and `target` columns, so a (sentence, country) pair is one
sample and the same sentence can get different labels for different countries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.validation import check_is_fitted

from geostance.mentions import Gazetteer

LABELS = ("favor", "against", "neutral")
FEATURES = ["text", "target"]
STRATEGIES = ("shared", "per_target")


class StanceClassifier(ClassifierMixin, BaseEstimator):
    """Classify the stance of `text` toward `target`.

    strategy: "shared" fits one model on every target's rows; "per_target" fits one model per
    target seen in training and falls back to the pooled model for targets it has not seen.
    mask_targets: with a gazetteer, mentions of the row's target become one placeholder token and
    mentions of other countries another, so stance cues are learned across countries.
    word_ngram_range / char_ngram_range: n-gram ranges of the two TF-IDF blocks; None drops one.
    min_df, sublinear_tf: passed to both TfidfVectorizer blocks.
    C, class_weight, max_iter: passed to LogisticRegression.
    """

    def __init__(
        self,
        gazetteer: Gazetteer | None = None,
        strategy: str = "shared",
        mask_targets: bool = True,
        word_ngram_range: tuple[int, int] | None = (1, 2),
        char_ngram_range: tuple[int, int] | None = (2, 5),
        min_df: int = 1,
        sublinear_tf: bool = True,
        C: float = 10.0,
        class_weight: str | None = "balanced",
        max_iter: int = 2000,
    ):
        self.gazetteer = gazetteer
        self.strategy = strategy
        self.mask_targets = mask_targets
        self.word_ngram_range = word_ngram_range
        self.char_ngram_range = char_ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter

    def fit(self, X: pd.DataFrame, y) -> StanceClassifier:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        texts, targets = self._inputs(X)
        y = np.asarray(y, dtype=object)
        if len(y) != len(texts):
            raise ValueError(f"X has {len(texts)} rows but y has {len(y)}")
        self.classes_ = np.array(sorted(set(y)), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError("training data needs at least two stance labels")
        self.pipeline_ = self._pipeline().fit(texts, y)
        self.target_pipelines_ = {}
        if self.strategy == "per_target":
            for target in np.unique(targets):
                rows = targets == target
                labels = np.unique(y[rows])
                # A target seen with one label only gets that label, as a model would learn.
                self.target_pipelines_[target] = (
                    labels[0] if len(labels) == 1 else self._pipeline().fit(texts[rows], y[rows])
                )
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities, columns in the order of `classes_`."""
        check_is_fitted(self, "pipeline_")
        texts, targets = self._inputs(X)
        proba = np.zeros((len(texts), len(self.classes_)))
        routed = np.zeros(len(texts), dtype=bool)
        for target, model in self.target_pipelines_.items():
            rows = targets == target
            if not rows.any():
                continue
            routed |= rows
            if isinstance(model, str):
                proba[rows, list(self.classes_).index(model)] = 1.0
            else:
                proba[rows] = self._aligned(model, texts[rows])
        if not routed.all():
            proba[~routed] = self._aligned(self.pipeline_, texts[~routed])
        return proba

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def prepare(self, X: pd.DataFrame) -> np.ndarray:
        """The texts the vectorizers see: target mentions masked when `mask_targets` is set."""
        return self._inputs(X)[0]

    def _inputs(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(X, pd.DataFrame) or not {"text", "target"} <= set(X.columns):
            raise ValueError("X must be a DataFrame with 'text' and 'target' columns")
        texts = X["text"].astype(str).to_numpy(dtype=object)
        targets = X["target"].astype(str).to_numpy(dtype=object)
        if self.mask_targets and self.gazetteer is not None:
            texts = np.array(
                [self.gazetteer.mask(t, g) for t, g in zip(texts, targets, strict=True)],
                dtype=object,
            )
        return texts, targets

    def _aligned(self, model: Pipeline, texts: np.ndarray) -> np.ndarray:
        """A sub-model's probabilities spread over all of `classes_` (it may know fewer)."""
        out = np.zeros((len(texts), len(self.classes_)))
        columns = [list(self.classes_).index(c) for c in model.classes_]
        out[:, columns] = model.predict_proba(texts)
        return out

    def _pipeline(self) -> Pipeline:
        blocks = []
        common = {"min_df": self.min_df, "sublinear_tf": self.sublinear_tf, "lowercase": True}
        if self.word_ngram_range:
            blocks.append(
                (
                    "word",
                    TfidfVectorizer(
                        analyzer="word",
                        ngram_range=tuple(self.word_ngram_range),
                        token_pattern=r"(?u)\b\w+\b",
                        **common,
                    ),
                )
            )
        if self.char_ngram_range:
            blocks.append(
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb", ngram_range=tuple(self.char_ngram_range), **common
                    ),
                )
            )
        if not blocks:
            raise ValueError("set word_ngram_range, char_ngram_range or both")
        classifier = LogisticRegression(
            C=self.C, class_weight=self.class_weight, max_iter=self.max_iter
        )
        return Pipeline([("features", FeatureUnion(blocks)), ("classifier", classifier)])


def predict_frame(model, X: pd.DataFrame) -> pd.DataFrame:
    """Probabilities as columns named by label (LABELS order) plus the predicted `stance`."""
    proba = np.zeros((len(X), len(LABELS)))
    columns = [LABELS.index(c) for c in model.classes_]
    proba[:, columns] = model.predict_proba(X[FEATURES])
    frame = pd.DataFrame(proba, columns=list(LABELS), index=X.index)
    # Argmax in the model's own class order, so ties break exactly as model.predict does.
    frame["stance"] = np.asarray(model.classes_, dtype=object)[proba[:, columns].argmax(axis=1)]
    return frame


def top_features(estimator: StanceClassifier, k: int) -> dict[str, list[tuple[str, float]]]:
    """The `k` n-grams with the largest weight toward each label in the pooled model."""
    pipeline = estimator.pipeline_
    names = pipeline.named_steps["features"].get_feature_names_out()
    classifier = pipeline.named_steps["classifier"]
    coef = classifier.coef_
    if coef.shape[0] == 1:  # two classes: one row of weights, for classes_[1]
        coef = np.vstack([-coef[0], coef[0]])
    return {
        str(label): [(str(names[j]), round(float(row[j]), 4)) for j in np.argsort(-row)[:k]]
        for label, row in zip(classifier.classes_, coef, strict=True)
    }
