"""The stance estimator: TF-IDF word and character n-grams feeding logistic regression.

It takes a DataFrame with `text` and `target` columns, so a (sentence, country) pair is one
sample and the same sentence can get different labels for different countries.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from geostance.linear import (
    LinearLayer,
    LinearStance,
    TfidfBlock,
    fit_block,
    prepare_inputs,
    routes,
    scale_temperature,
)
from geostance.mentions import VIEWS, Gazetteer, view_text

STRATEGIES = ("shared", "augmented", "per_target")
SOLVERS = ("lbfgs", "liblinear")


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
    min_df, sublinear_tf: passed to every TF-IDF block (`Tfidf`).
    C, class_weight, max_iter: passed to LogisticRegression; solver "lbfgs" is multinomial,
    "liblinear" one binary model per label (one-vs-rest).
    temperature: probabilities become softmax(log p / temperature); fitted on out-of-fold
    predictions by the experiment when that makes them better calibrated. Labels never change.
    views: which parts of the masked sentence get their own TF-IDF block ("sentence",
    "clause", "window", "left", "right"; see `mentions.view_text`): the sentence view has word
    and char n-grams, the target-scoped views word n-grams, so the model can tell which clause
    is about which country. window: words each side of a mention for window / left / right.
    memory: a joblib.Memory or folder caching fitted TF-IDF features by their training rows,
    so a search over C fits each fold's vectorizers once (training only; never saved).
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
        views: tuple[str, ...] = ("sentence",),
        window: int = 5,
        memory=None,
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
        self.views = views
        self.window = window
        self.memory = memory

    def fit(self, X: pd.DataFrame, y) -> StanceClassifier:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        unknown = set(self.views) - set(VIEWS)
        if unknown or "sentence" not in self.views:
            raise ValueError(f"views must include 'sentence' and be among {VIEWS}: {self.views!r}")
        inputs = self.prepare(X)
        y = np.asarray(y, dtype=object)
        if len(y) != len(inputs):
            raise ValueError(f"X has {len(inputs)} rows but y has {len(y)}")
        self.classes_ = np.array(sorted(set(y)), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError("training data needs at least two stance labels")
        # One BLAS thread: scipy's L-BFGS-B makes many small BLAS calls, and OpenBLAS threads
        # fighting over them made a fit slower (9-11 s against 1.2 s, measured in issue 12) and
        # its result depend on the thread count (probabilities differed by up to 0.002).
        with threadpool_limits(1, user_api="blas"):
            self._fit_pipelines(inputs, y)
        return self

    def _fit_pipelines(self, inputs: pd.DataFrame, y: np.ndarray) -> None:
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

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probabilities, columns in the order of `classes_`."""
        check_is_fitted(self, "pipeline_")
        inputs = self.prepare(X)
        proba = np.zeros((len(inputs), len(self.classes_)))
        for model, rows in self._routes(inputs):
            if isinstance(model, str):
                proba[rows, list(self.classes_).index(model)] = 1.0
            else:
                proba[rows] = self._aligned(model, inputs[rows])
        return scale_temperature(proba, self.temperature) if self.temperature != 1.0 else proba

    def explain(self, X: pd.DataFrame, labels, k: int | None = 5) -> list[list[tuple[str, float]]]:
        """For each row, the n-grams that push its score toward `labels[i]` the most (see
        `LinearStance.explain`: one implementation serves training reports and analysts)."""
        return self.to_linear().explain(X, labels, k)

    def to_linear(self) -> LinearStance:
        """The fitted model as plain arrays: what a saved model holds and classifying uses."""
        check_is_fitted(self, "pipeline_")
        return LinearStance(
            classes=self.classes_,
            pooled=_layer(self.pipeline_),
            per_target={
                target: model if isinstance(model, str) else _layer(model)
                for target, model in self.target_pipelines_.items()
            },
            gazetteer=self.gazetteer,
            mask_targets=self.mask_targets,
            split_hashtags=self.split_hashtags,
            temperature=self.temperature,
        )

    def _routes(self, inputs: pd.DataFrame):
        return routes(inputs["target"].to_numpy(), self.target_pipelines_, self.pipeline_)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        """What the vectorizers see: `text` with hashtags split and targets masked, `target`."""
        gazetteer = self.gazetteer if self.mask_targets else None
        inputs = prepare_inputs(X, gazetteer, self.split_hashtags)
        return pd.DataFrame({"text": inputs.texts, "target": inputs.targets})

    def _aligned(self, model: Pipeline, inputs: pd.DataFrame) -> np.ndarray:
        """A sub-model's probabilities spread over all of `classes_` (it may know fewer)."""
        out = np.zeros((len(inputs), len(self.classes_)))
        columns = [list(self.classes_).index(c) for c in model.classes_]
        out[:, columns] = model.predict_proba(inputs)
        return out

    def _pipeline(self, augment: bool) -> Pipeline:
        blocks = []
        common = {"min_df": self.min_df, "sublinear_tf": self.sublinear_tf}
        if self.word_ngram_range:
            blocks.append(("word", Tfidf("word", tuple(self.word_ngram_range), **common)))
        if self.char_ngram_range:
            blocks.append(("char", Tfidf("char_wb", tuple(self.char_ngram_range), **common)))
        if not blocks:
            raise ValueError("set word_ngram_range, char_ngram_range or both")
        for view in self.views:
            if view != "sentence" and self.word_ngram_range:
                # A small country's rows may leave a context view with no words at all.
                word = Tfidf("word", tuple(self.word_ngram_range), empty=True, **common)
                reader = FunctionTransformer(
                    view_texts, kw_args={"view": view, "window": self.window}
                )
                blocks.append((view, Pipeline([("view", reader), ("tfidf", word)])))
        classifier = LogisticRegression(
            C=self.C, class_weight=self.class_weight, solver=self.solver, max_iter=self.max_iter
        )
        if self.solver == "liblinear":  # binary only: one model per label
            classifier = OneVsRestClassifier(classifier)
        features = TargetFeatures(FeatureUnion(blocks), augment=augment)
        return Pipeline([("features", features), ("classifier", classifier)], memory=self.memory)


class Tfidf(TransformerMixin, BaseEstimator):
    """scikit-learn's TfidfVectorizer (lowercase, smooth idf, l2 norm) for word or char_wb
    n-grams, fitted and applied by `linear.TfidfBlock`: the same vocabulary, idf and matrix
    (fuzz-tested against TfidfVectorizer), counted for all texts at once, so training
    vectorizes faster and predicts with the very code a saved model uses. empty: a vocabulary
    with no terms gives a block with no columns instead of an error (context views)."""

    def __init__(
        self,
        analyzer: str = "word",
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
        sublinear_tf: bool = True,
        token_pattern: str = r"(?u)\b\w+\b",
        empty: bool = False,
    ):
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.sublinear_tf = sublinear_tf
        self.token_pattern = token_pattern
        self.empty = empty

    def fit(self, X, y=None) -> Tfidf:
        self.fit_transform(X)
        return self

    def fit_transform(self, X, y=None) -> sp.csr_matrix:
        if isinstance(self.min_df, bool) or not isinstance(self.min_df, int) or self.min_df < 1:
            raise ValueError(f"min_df must be a whole number of texts, 1 or more: {self.min_df!r}")
        self.block_, matrix = fit_block(
            list(X),
            min_df=self.min_df,
            empty=self.empty,
            name=self.analyzer,
            analyzer=self.analyzer,
            ngram_range=self.ngram_range,
            sublinear_tf=self.sublinear_tf,
            token_pattern=self.token_pattern,
        )
        return matrix

    def transform(self, X) -> sp.csr_matrix:
        check_is_fitted(self, "block_")
        return self.block_.transform(list(X))

    @property
    def idf_(self) -> np.ndarray:
        return self.block_.idf

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.block_.terms, dtype=object)


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
        self.fit_transform(X)
        return self

    def fit_transform(self, X: pd.DataFrame, y=None):
        # Fitting TF-IDF already counts every n-gram: transform from that pass, not a second.
        self.vectorizer_ = clone(self.vectorizer)
        self.targets_ = sorted(X["target"].unique()) if self.augment else []
        return self._augment(self.vectorizer_.fit_transform(X["text"]).tocsr(), X)

    def transform(self, X: pd.DataFrame):
        return self._augment(self.vectorizer_.transform(X["text"]).tocsr(), X)

    def _augment(self, shared, X: pd.DataFrame):
        if not self.targets_:
            return shared
        targets = X["target"].to_numpy()
        blocks = [shared] + [sp.diags((targets == t).astype(float)) @ shared for t in self.targets_]
        return sp.hstack(blocks).tocsr()


def coefficients(classifier) -> tuple[np.ndarray, np.ndarray]:
    """(labels, weights) of a fitted linear classifier: one weight row per label."""
    if isinstance(classifier, OneVsRestClassifier):
        weights = np.vstack([e.coef_ for e in classifier.estimators_])
    else:
        weights = classifier.coef_
    if weights.shape[0] == 1:  # two classes: one row of weights, for classes_[1]
        weights = np.vstack([-weights[0], weights[0]])
    return classifier.classes_, weights


def view_texts(texts, view: str, window: int) -> list[str]:
    """The `view` of each masked text: what a target-scoped TF-IDF block reads."""
    return [view_text(t, view, window) for t in texts]


def _layer(pipeline: Pipeline) -> LinearLayer:
    """One fitted pipeline (TF-IDF blocks, optional target copies, linear classifier) as arrays."""
    features, classifier = pipeline.named_steps["features"], pipeline.named_steps["classifier"]
    blocks = []
    for name, branch in features.vectorizer_.transformer_list:
        view, window, vectorizer = "sentence", 0, branch
        if isinstance(branch, Pipeline):
            view, window = branch[0].kw_args["view"], branch[0].kw_args["window"]
            vectorizer = branch[-1]
        blocks.append(
            TfidfBlock(
                name=name,
                view=view,
                window=window,
                analyzer=vectorizer.analyzer,
                ngram_range=vectorizer.ngram_range,
                sublinear_tf=vectorizer.sublinear_tf,
                token_pattern=vectorizer.token_pattern,
                terms=[str(t) for t in vectorizer.get_feature_names_out()],
                idf=np.asarray(vectorizer.idf_, dtype=float),
            )
        )
    classes, weights = coefficients(classifier)
    binaries = classifier.estimators_ if isinstance(classifier, OneVsRestClassifier) else None
    intercepts = np.concatenate(
        [e.intercept_ for e in binaries] if binaries else [classifier.intercept_]
    ).astype(float)
    if len(intercepts) == 1:  # two classes: the row of weights is for classes_[1]
        intercepts, kind = np.array([-intercepts[0], intercepts[0]]), "binary"
    else:
        kind = "ovr" if binaries else "softmax"
    return LinearLayer(
        blocks=blocks,
        targets=list(features.targets_),
        classes=np.asarray(classes, dtype=object),
        weights=np.asarray(weights, dtype=float),
        intercepts=intercepts,
        kind=kind,
    )
