"""Every score geostance reports is computed here, once, and reused by experiments and reports.

Metrics (all from one confusion matrix, so point estimates and bootstrap agree):
- macro_f1: mean F1 over the stance labels present in the gold or predicted labels (all three
  in any evaluation of a whole data set);
- f_avg: mean of F1(favor) and F1(against), SemEval-2016 Task 6's and TweetEval's metric;
- accuracy, per-class precision/recall/F1/support, and the same per target, register, etc.;
- ci95: 95% bootstrap intervals for macro_f1 and f_avg, resampling whole sentences.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold

from geostance.data import groups
from geostance.linear import FEATURES, LABELS, predict_frame, scale_temperature


def f1_per_label(confusion: np.ndarray) -> np.ndarray:
    """F1 of each label from a confusion matrix (rows gold, columns predicted); 0 when undefined."""
    tp = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def confusion(y_true, y_pred, labels: tuple[str, ...] = LABELS) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    t = np.array([index[v] for v in y_true], dtype=int)
    p = np.array([index[v] for v in y_pred], dtype=int)
    k = len(labels)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def _headline(matrix: np.ndarray) -> dict[str, float]:
    f1 = f1_per_label(matrix)
    present = (matrix.sum(axis=0) + matrix.sum(axis=1)) > 0
    favor, against = LABELS.index("favor"), LABELS.index("against")
    total = matrix.sum()
    return {
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "f_avg": float((f1[favor] + f1[against]) / 2),
        "accuracy": float(np.trace(matrix) / total) if total else 0.0,
    }


def fold_scores(predictions: pd.DataFrame, metric: str) -> list[float]:
    """`metric` of each CV fold's out-of-fold predictions (what a search averages)."""
    return [
        _headline(confusion(part["stance"], part["predicted"]))[metric]
        for _, part in predictions.groupby(["repeat", "fold"])
    ]


def score(
    y_true,
    y_pred,
    *,
    groups=None,
    strata: Mapping[str, Iterable] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Score predicted stances against gold ones.

    groups: the sentence of each row; the bootstrap resamples whole sentences (rows of one
    sentence are not independent). strata: name -> value per row; each adds `per_<name>`.
    Returns macro_f1, f_avg, accuracy, n, per_class, confusion, ci95 and the per_<name> tables.
    """
    y_true, y_pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    matrix = confusion(y_true, y_pred)
    precision_den, recall_den = matrix.sum(axis=0), matrix.sum(axis=1)
    tp, f1 = np.diag(matrix).astype(float), f1_per_label(matrix)
    result = {**_headline(matrix), "n": int(len(y_true))}
    result["per_class"] = {
        label: {
            "precision": float(tp[i] / precision_den[i]) if precision_den[i] else 0.0,
            "recall": float(tp[i] / recall_den[i]) if recall_den[i] else 0.0,
            "f1": float(f1[i]),
            "support": int(recall_den[i]),
        }
        for i, label in enumerate(LABELS)
    }
    result["confusion"] = {"labels": list(LABELS), "matrix": matrix.tolist()}
    result["ci95"] = _bootstrap(y_true, y_pred, groups, n_boot, seed)
    for name, values in (strata or {}).items():
        values = np.asarray(list(values), dtype=object)
        result[f"per_{name}"] = {
            str(value): {
                **_headline(confusion(y_true[values == value], y_pred[values == value])),
                "n": int((values == value).sum()),
            }
            for value in sorted(set(values), key=str)
        }
    return result


def _bootstrap(y_true, y_pred, groups, n_boot: int, seed: int) -> dict[str, list[float]]:
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups, dtype=object)
    _, group_index = np.unique(groups.astype(str), return_inverse=True)
    k = len(LABELS)
    # One confusion matrix per group; a bootstrap replicate is a weighted sum of them.
    index = {label: i for i, label in enumerate(LABELS)}
    cell = np.array([index[t] * k + index[p] for t, p in zip(y_true, y_pred, strict=True)])
    per_group = np.zeros((group_index.max() + 1 if len(cell) else 0, k * k))
    np.add.at(per_group, (group_index, cell), 1)
    rng = np.random.default_rng(seed)
    draws = {"macro_f1": [], "f_avg": []}
    n_groups = len(per_group)
    if n_groups == 0 or n_boot == 0:
        return {name: [float("nan"), float("nan")] for name in draws}
    for _ in range(n_boot):
        weights = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        headline = _headline((weights @ per_group).reshape(k, k))
        for name in draws:
            draws[name].append(headline[name])
    return {name: [float(v) for v in np.percentile(d, [2.5, 97.5])] for name, d in draws.items()}


def with_predictions(model, data: pd.DataFrame) -> pd.DataFrame:
    """`data` plus the fitted `model`'s label probabilities and its `predicted` stance."""
    predicted = predict_frame(model, data)
    return data.assign(
        **{label: predicted[label] for label in LABELS}, predicted=predicted["stance"]
    )


def holdout(estimator, train: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """Fit a clone of `estimator` on `train`; return `with_predictions` on `test`."""
    return with_predictions(clone(estimator).fit(train[FEATURES], train["stance"]), test)


def strata_of(data: pd.DataFrame) -> dict[str, pd.Series]:
    """The breakdowns every report shows: target, plus register and hard case when labeled."""
    names = [c for c in ("target", "register", "hard_case") if c in data.columns]
    return {name: data[name].replace("", "none") for name in names}


def out_of_fold(
    estimator, data: pd.DataFrame, *, folds: int, repeats: int, seed: int, jobs: int = 1
) -> pd.DataFrame:
    """Out-of-fold predictions of repeated stratified K-fold grouped by sentence (or pair).

    Rows of one sentence never straddle train and test. Returns `data` stacked once per repeat
    with columns `repeat`, `fold`, the label probabilities and `predicted`.
    """
    return cross_fit(estimator, data, folds=folds, repeats=repeats, seed=seed, jobs=jobs)[0]


def cross_fit(
    estimator,
    data: pd.DataFrame,
    *,
    folds: int,
    repeats: int,
    seed: int,
    jobs: int = 1,
    held_out: Mapping[str, pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """`out_of_fold`, plus each `held_out` set predicted by the mean probabilities of the fold
    models: a transfer score for a candidate without refitting it on all rows."""
    units = groups(data)
    if units.nunique() < folds:
        raise ValueError(f"{folds}-fold CV needs at least {folds} sentences, got {units.nunique()}")
    held_out = dict(held_out or {})
    tasks = []
    for repeat in range(repeats):
        for fold, (train, test) in enumerate(cv_splits(data, folds, seed + repeat)):
            tasks.append((repeat, fold, data.iloc[train], data.iloc[test]))
    outputs = Parallel(n_jobs=jobs)(
        delayed(_fit_and_predict)(estimator, tr, te, held_out) for *_, tr, te in tasks
    )
    oof = pd.concat(
        out.assign(repeat=repeat, fold=fold)
        for (repeat, fold, *_), (out, _) in zip(tasks, outputs, strict=True)
    )
    averaged = {}
    for key, rows in held_out.items():
        proba = np.mean([extra[key] for _, extra in outputs], axis=0)
        averaged[key] = rows.assign(
            **{label: proba[:, i] for i, label in enumerate(LABELS)},
            predicted=np.array(LABELS, dtype=object)[proba.argmax(axis=1)],
        )
    return oof, averaged


def _fit_and_predict(estimator, train, test, held_out):
    model = clone(estimator).fit(train[FEATURES], train["stance"])
    extra = {k: predict_frame(model, rows)[list(LABELS)].to_numpy() for k, rows in held_out.items()}
    return with_predictions(model, test), extra


def cv_splits(data: pd.DataFrame, folds: int, seed: int) -> list:
    """The grouped, stratified folds every CV here uses: the search's folds and the first CV
    repeat's are the same, so features fitted for one are reused by the other."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(data, data["stance"], groups=groups(data)))


def score_predictions(predictions: pd.DataFrame, *, n_boot: int, seed: int) -> dict:
    """Score a frame of gold `stance` and `predicted` columns (one or more CV repeats)."""
    result = score(
        predictions["stance"],
        predictions["predicted"],
        groups=groups(predictions),
        strata=strata_of(predictions),
        n_boot=n_boot,
        seed=seed,
    )
    if "repeat" in predictions.columns:
        repeats = [
            _headline(confusion(part["stance"], part["predicted"]))
            for _, part in predictions.groupby("repeat")
        ]
        result["n"] = int(len(predictions) // len(repeats))
        result["repeats"] = len(repeats)
        result["macro_f1_per_repeat"] = [r["macro_f1"] for r in repeats]
    if set(LABELS) <= set(predictions.columns):
        result["calibration"] = calibration(predictions["stance"], predictions)
    return result


def leave_one_out(
    estimator, data: pd.DataFrame, column: str, values: Iterable[str], *, jobs: int = 1
) -> dict[str, dict]:
    """For each value of `column` (a target, a source style): train without any of its rows,
    score on its rows. Does what a model learned transfer to what it never saw?"""
    values = [v for v in values if (data[column] == v).any()]
    outputs = Parallel(n_jobs=jobs)(
        delayed(holdout)(estimator, data[data[column] != v], data[data[column] == v])
        for v in values
    )
    return {
        v: {**_headline(confusion(out["stance"], out["predicted"])), "n": int(len(out))}
        for v, out in zip(values, outputs, strict=True)
    }


def learning_curve(
    estimator,
    data: pd.DataFrame,
    *,
    fractions: Iterable[float],
    folds: int,
    seed: int,
    jobs: int = 1,
) -> list[dict]:
    """Grouped K-fold scores when each training fold keeps only a share of its sentences."""
    splits = cv_splits(data, folds, seed)
    rng = np.random.default_rng(seed)
    curve = []
    for fraction in fractions:
        tasks = []
        for train, test in splits:
            train_rows = data.iloc[train]
            units = groups(train_rows)
            kept = rng.choice(
                units.unique(), max(2, round(fraction * units.nunique())), replace=False
            )
            tasks.append((train_rows[units.isin(kept)], data.iloc[test]))
        outputs = Parallel(n_jobs=jobs)(delayed(holdout)(estimator, tr, te) for tr, te in tasks)
        pooled = pd.concat(outputs)
        curve.append(
            {
                "fraction": float(fraction),
                "n_train": int(np.mean([len(tr) for tr, _ in tasks])),
                **_headline(confusion(pooled["stance"], pooled["predicted"])),
            }
        )
    return curve


def confident_errors(predictions: pd.DataFrame, k: int) -> list[dict]:
    """The `k` wrong predictions the model was surest of: where error analysis starts."""
    wrong = predictions[predictions["stance"] != predictions["predicted"]]
    confidence = wrong[list(LABELS)].max(axis=1)
    order = confidence.sort_values(ascending=False, kind="stable").index[:k]
    return [
        {
            "sentence_id": row["sentence_id"],
            "text": row["text"],
            "target": row["target"],
            "stance": row["stance"],
            "predicted": row["predicted"],
            "confidence": round(float(confidence[i]), 3),
        }
        for i, row in wrong.loc[order].iterrows()
    ]


def calibration(y_true, proba: pd.DataFrame, bins: int = 10) -> dict:
    """How far predicted probabilities are from observed frequencies.

    brier: mean over rows of the squared distance between the probability vector and the
    one-hot gold label (0 is perfect, 2 is worst); ece: expected calibration error, the
    row-weighted mean |accuracy - confidence| over `bins` equal-width bins of the top
    probability; bins: the reliability diagram's points.
    """
    probabilities = proba[list(LABELS)].to_numpy()
    gold = np.asarray(y_true, dtype=object)
    onehot = np.stack([gold == label for label in LABELS], axis=1).astype(float)
    confidence = probabilities.max(axis=1)
    correct = np.array(LABELS, dtype=object)[probabilities.argmax(axis=1)] == gold
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            ece += members.mean() * gap
            table.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "confidence": float(confidence[members].mean()),
                    "accuracy": float(correct[members].mean()),
                    "count": int(members.sum()),
                }
            )
    brier = float(((probabilities - onehot) ** 2).sum(axis=1).mean())
    return {"brier": brier, "ece": float(ece), "bins": table}


def with_temperature(proba: pd.DataFrame, temperature: float) -> pd.DataFrame:
    """The label columns of `proba` rescaled exactly as the estimator's `temperature` does."""
    scaled = scale_temperature(proba[list(LABELS)].to_numpy(), temperature)
    return pd.DataFrame(scaled, columns=list(LABELS), index=proba.index)


def fit_temperature(y_true, proba: pd.DataFrame) -> float:
    """The temperature minimising the negative log-likelihood of the gold labels."""
    from scipy.optimize import minimize_scalar

    gold = np.array([LABELS.index(v) for v in y_true])

    def nll(log_t: float) -> float:
        scaled = with_temperature(proba, float(np.exp(log_t))).to_numpy()
        return -np.log(np.clip(scaled[np.arange(len(gold)), gold], 1e-12, None)).mean()

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def choose_temperature(predictions: pd.DataFrame, seed: int) -> dict:
    """Decide on out-of-fold predictions whether temperature scaling improves calibration.

    Cross-fitted: sentences are split in two halves; a temperature fitted on one half is scored
    on the other, so the before/after figures are not measured on the rows that chose them.
    """
    units = groups(predictions)
    shuffled = np.random.default_rng(seed).permutation(units.unique())
    in_a = units.isin(set(shuffled[: len(shuffled) // 2])).to_numpy()
    before = {"brier": 0.0, "ece": 0.0}
    after = {"brier": 0.0, "ece": 0.0}
    for fit_rows, score_rows in ((in_a, ~in_a), (~in_a, in_a)):
        fitted, scored = predictions[fit_rows], predictions[score_rows]
        temperature = fit_temperature(fitted["stance"], fitted)
        weight = score_rows.mean()
        for result, proba in (
            (before, scored[list(LABELS)]),
            (after, with_temperature(scored, temperature)),
        ):
            measured = calibration(scored["stance"], proba)
            for key in result:
                result[key] += weight * measured[key]
    temperature = fit_temperature(predictions["stance"], predictions)
    helps = after["ece"] < before["ece"] and after["brier"] <= before["brier"]
    return {
        "temperature": temperature if helps else 1.0,
        "fitted_temperature": temperature,
        "applied": bool(helps),
        "before": before,
        "after": after,
    }


def cue_audit(top: Mapping[str, list[tuple[str, float]]]) -> dict[str, dict]:
    """Per label, the share of its top positive weights held by n-grams that carry no
    evaluation: only stop words, the [TARGET]/[OTHER] placeholders (or, for character n-grams,
    pieces of them) and punctuation. A high share means the model learned sentence skeletons.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from geostance.mentions import OTHER_TOKEN, TARGET_TOKEN

    def skeletal(feature: str) -> bool:
        kind, _, ngram = feature.rpartition("::")[2].partition("__")
        tokens = re.findall(r"[a-z0-9']+", ngram.lower())
        for token in tokens:
            placeholder = token in (TARGET_TOKEN, OTHER_TOKEN) or (
                kind == "char"
                and len(token) >= 3
                and (token in TARGET_TOKEN or token in OTHER_TOKEN)
            )
            if not (placeholder or token in ENGLISH_STOP_WORDS):
                return False
        return True

    audit = {}
    for label, features in top.items():
        positive = [name for name, weight in features if weight > 0]
        flagged = [name for name in positive if skeletal(name)]
        audit[label] = {
            "top": len(positive),
            "skeletal": len(flagged),
            "share": len(flagged) / len(positive) if positive else 0.0,
            "examples": flagged[:8],
        }
    return audit
