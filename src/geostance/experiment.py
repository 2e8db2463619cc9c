"""One experiment, end to end: config -> data -> estimator -> evaluations -> model and report."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold
from threadpoolctl import threadpool_limits

from geostance import evaluate
from geostance.artifacts import json_ready, write_model
from geostance.config import Experiment
from geostance.data import file_digest, read_labeled, read_tweeteval
from geostance.errors import ConfigError, DataError
from geostance.linear import FEATURES
from geostance.mentions import Gazetteer
from geostance.model import StanceClassifier
from geostance.outputs import check_folder, experiment_lock, publish


def load_gazetteer(experiment: Experiment) -> Gazetteer | None:
    return Gazetteer.from_csv(experiment.data.gazetteer) if experiment.data.gazetteer else None


def load_data(
    experiment: Experiment, gazetteer: Gazetteer | None, files: tuple[str, ...] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame | None, list[dict]]:
    """Training rows, test rows (or None) and the files read, each with SHA-256 and row count.

    `files` replaces the config's training files (a variant trained on other data); the test
    split's sentences are excluded from training whatever the files.
    """
    config = experiment.data
    if config.format == "tweeteval":
        root = Path(config.path)
        train = read_tweeteval(root, config.train_splits)
        test = read_tweeteval(root, config.test_splits) if config.test_splits else None
        read = sorted(root.glob("*/*_*.txt"))
        splits = set(config.train_splits) | set(config.test_splits)
        read = [p for p in read if p.name.split("_")[0] in splits]
        return train, test, [_describe(p) for p in read]
    countries = gazetteer.countries if gazetteer is not None else None
    train_files = files if files is not None else config.train
    train = read_labeled(train_files, countries)
    described = [_describe(p, train) for p in train_files]
    test = None
    if config.test_split:
        if "split" not in train.columns:
            raise DataError(
                f"data.test_split is {config.test_split!r} but no file has a split column"
            )
        held_out = train["split"] == config.test_split
        test, train = train[held_out], train[~held_out]
        if test.empty:
            raise DataError(f"no row has split = {config.test_split!r}")
    if config.test:
        extra = read_labeled(config.test, countries)
        described += [_describe(p, extra) for p in config.test]
        test = extra if test is None else pd.concat([test, extra], ignore_index=True)
        train = train[~train["sentence_id"].isin(extra["sentence_id"])]
    if config.gazetteer:
        described.append(_describe(config.gazetteer))
    return train.reset_index(drop=True), test, described


def _describe(path, frame: pd.DataFrame | None = None) -> dict:
    """A data file's path and SHA-256, with its labeled row count when it was read as one."""
    entry = {"path": str(path), "sha256": file_digest(path)}
    return entry if frame is None else entry | {"rows": int((frame["file"] == str(path)).sum())}


def build_estimator(params: dict, gazetteer: Gazetteer | None) -> StanceClassifier:
    return StanceClassifier(gazetteer=gazetteer, **params)


def grid_search(estimator, train: pd.DataFrame, experiment: Experiment) -> tuple[object, dict]:
    """Choose parameters by grouped, stratified CV on the training rows only."""
    search = experiment.search
    cv = StratifiedGroupKFold(n_splits=search.folds, shuffle=True, random_state=experiment.seed)
    grid = GridSearchCV(
        estimator,
        {name: list(values) for name, values in search.grid.items()},
        scoring=evaluate.scorer(search.metric),
        cv=cv,
        n_jobs=experiment.evaluation.jobs,
        refit=False,
    )
    grid.fit(train[FEATURES], train["stance"], groups=train["sentence_id"])
    candidates = [
        {"params": params, "mean": float(mean), "std": float(std)}
        for params, mean, std in zip(
            grid.cv_results_["params"],
            grid.cv_results_["mean_test_score"],
            grid.cv_results_["std_test_score"],
            strict=True,
        )
    ]
    best = max(candidates, key=lambda c: c["mean"])
    chosen_params = best["params"]
    if search.prefer_small:
        # Breiman's one-standard-error rule: the most regularised candidate that is not
        # measurably worse than the best generalises better than the luckiest fold winner.
        threshold = best["mean"] - best["std"] / search.folds**0.5
        near = [c for c in candidates if c["mean"] >= threshold]
        chosen_params = min(near, key=lambda c: (c["params"][search.prefer_small], -c["mean"]))[
            "params"
        ]
    return clone(estimator).set_params(**chosen_params), {
        "metric": search.metric,
        "folds": search.folds,
        "rule": f"one standard error, smallest {search.prefer_small}"
        if search.prefer_small
        else "best mean",
        "best_params": best["params"],
        "best_score": best["mean"],
        "chosen_params": chosen_params,
        "candidates": candidates,
    }


def run_experiment(
    experiment: Experiment,
    models_dir: str | Path = "models",
    reports_dir: str | Path = "reports",
    log: Callable[[str], None] = lambda message: None,
) -> dict:
    """Train, evaluate, save `models_dir/NAME/` and write `reports_dir/NAME/`; return the results.

    Everything is read and checked before anything is written, so bad input leaves existing
    models and reports untouched; model and report are swapped in together, under a lock
    per experiment name, so they always come from the same run.
    """
    model_dir = Path(models_dir) / experiment.name
    report_dir = Path(reports_dir) / experiment.name
    if model_dir.resolve() == report_dir.resolve():
        raise ConfigError(f"{model_dir}: --models-dir and --reports-dir must differ")
    check_folder(model_dir, "model", "model folder")
    check_folder(report_dir, "report", "report folder")
    stages = _Stages(log)
    # One BLAS thread: scipy's L-BFGS-B makes many tiny BLAS calls, and OpenBLAS threads
    # fighting over them made one logistic-regression fit several times slower.
    with experiment_lock(models_dir, experiment.name), threadpool_limits(1, user_api="blas"):
        results, final, metadata = _train(experiment, stages)
        from geostance.report import model_card, write_report

        stages(f"writing {model_dir} and {report_dir}")
        with publish({model_dir: "model", report_dir: "report"}) as staged:
            write_model(staged[model_dir], final.to_linear(), metadata, model_card(results, metadata))
            write_report(staged[report_dir], results)
    return results


class _Stages:
    """Log each stage with the time elapsed since training began, so long runs show life."""

    def __init__(self, log: Callable[[str], None]):
        self.log, self.started = log, time.perf_counter()

    def __call__(self, message: str) -> None:
        elapsed = int(time.perf_counter() - self.started)
        self.log(f"[{elapsed // 60}:{elapsed % 60:02d}] {message}")


def _train(experiment: Experiment, log: Callable[[str], None]) -> tuple[dict, object, dict]:
    """Everything but the writing: (results, final estimator, model metadata)."""
    gazetteer = load_gazetteer(experiment)
    train, test, files = load_data(experiment, gazetteer)
    ev, seed = experiment.evaluation, experiment.seed
    variant_data = {
        v.name: load_data(experiment, gazetteer, v.train)[0] if v.train else train
        for v in experiment.variants
    }
    unknown_targets = set(ev.cross_target) - set(train["target"])
    if unknown_targets:
        raise ConfigError(f"evaluation.cross_target names targets with no rows: {unknown_targets}")
    log(
        f"data: {len(train)} training rows"
        + (f", {len(test)} test rows" if test is not None else "")
    )

    try:
        estimator = build_estimator(experiment.model, gazetteer)
        results: dict = {"experiment": experiment.name}
        if experiment.search:
            log(
                f"search: {math.prod(len(v) for v in experiment.search.grid.values())} candidates x {experiment.search.folds} folds"
            )
            estimator, results["search"] = grid_search(estimator, train, experiment)
            log(f"search chose {results['search']['chosen_params']}")
        cv_options = {"folds": ev.folds, "repeats": ev.repeats, "seed": seed, "jobs": ev.jobs}
        log(f"cross-validation: {ev.repeats} x {ev.folds} folds grouped by sentence")
        oof = evaluate.out_of_fold(estimator, train, **cv_options)
        results["evaluations"] = {
            "cv": evaluate.score_predictions(oof, n_boot=ev.bootstrap, seed=seed)
        }
        if ev.calibrate:
            results["temperature"] = evaluate.choose_temperature(oof, seed)
            estimator = clone(estimator).set_params(
                temperature=results["temperature"]["temperature"]
            )
        if test is not None:
            results["evaluations"]["test"] = evaluate.score_predictions(
                evaluate.holdout(estimator, train, test), n_boot=ev.bootstrap, seed=seed
            )
        results["variants"] = {}
        for variant in experiment.variants:
            log(f"variant: {variant.name}")
            candidate = (
                DummyClassifier(strategy="most_frequent")
                if variant.majority
                else clone(estimator).set_params(**variant.model)
            )
            rows = variant_data[variant.name]
            scores = {
                "cv": evaluate.score_predictions(
                    evaluate.out_of_fold(candidate, rows, **cv_options),
                    n_boot=ev.bootstrap,
                    seed=seed,
                )
            }
            if test is not None:
                scores["test"] = evaluate.score_predictions(
                    evaluate.holdout(candidate, rows, test), n_boot=ev.bootstrap, seed=seed
                )
            results["variants"][variant.name] = {"n_train": int(len(rows)), **scores}
        if ev.learning_curve:
            log("learning curve")
            results["learning_curve"] = evaluate.learning_curve(
                estimator,
                train,
                fractions=ev.learning_curve,
                folds=ev.folds,
                seed=seed,
                jobs=ev.jobs,
            )
        if ev.cross_target:
            log("cross-target check")
            results["cross_target"] = evaluate.leave_target_out(
                estimator, train, ev.cross_target, jobs=ev.jobs
            )
        log("final fit on all training rows")
        started = time.perf_counter()
        final = clone(estimator).fit(train[FEATURES], train["stance"])
        results["timing"] = _timing(final, time.perf_counter() - started, train, test)
        results["top_features"] = final.to_linear().top_features(15)
        results["explained"] = _explained(
            final, test if test is not None else train, ev.explain_examples
        )
        results["errors"] = evaluate.confident_errors(oof[oof["repeat"] == 0], 10)
    except ValueError as exc:
        # scikit-learn's parameter validation speaks of bad config values, not bugs.
        raise ConfigError(f"{experiment.name}: {exc}") from None
    results["data"] = {
        "files": files,
        "train_rows": int(len(train)),
        "train_sentences": int(train["sentence_id"].nunique()),
        "test_rows": int(len(test)) if test is not None else 0,
        "counts": _counts(train, test),
    }
    results["model"] = {"params": _params(final), "config": experiment.to_dict()}
    results["references"] = [dataclasses.asdict(r) for r in experiment.references]
    results = json_ready(results)

    metadata = {
        "experiment": experiment.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "config": results["model"]["config"],
        "data": files,
        "labels": sorted(map(str, final.classes_)),
        "targets": sorted(train["target"].unique()),
        "hyperparameters": results["model"]["params"],
        "metrics": {
            name: {k: e[k] for k in ("macro_f1", "f_avg", "accuracy", "n", "ci95")}
            for name, e in results["evaluations"].items()
        },
    }
    return results, final, metadata


def _params(estimator) -> dict:
    params = {k: v for k, v in estimator.get_params().items() if k != "gazetteer"}
    gazetteer = getattr(estimator, "gazetteer", None)
    if gazetteer is not None:
        params["gazetteer"] = {"aliases": len(gazetteer.aliases), "sha256": gazetteer.digest}
    return params


def _counts(train: pd.DataFrame, test: pd.DataFrame | None) -> dict:
    both = train if test is None else pd.concat([train, test])
    table = both.groupby(["target", "stance"]).size().unstack(fill_value=0)
    return {t: {s: int(n) for s, n in row.items()} for t, row in table.iterrows()}


def _timing(model, fit_seconds: float, train: pd.DataFrame, test: pd.DataFrame | None) -> dict:
    """Fit time of the final model and its predict throughput, with the machine measured on."""
    rows = (test if test is not None else train)[FEATURES]
    started = time.perf_counter()
    model.predict_proba(rows)
    predict_seconds = time.perf_counter() - started
    return {
        "fit_seconds": round(fit_seconds, 3),
        "fit_rows": int(len(train)),
        "predict_rows": int(len(rows)),
        "predict_seconds": round(predict_seconds, 3),
        "predict_rows_per_second": round(len(rows) / predict_seconds, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(),
        },
    }


def _explained(model, rows: pd.DataFrame, k: int) -> list[dict]:
    """Up to `k` predictions, one per predicted label in turn, with the n-grams behind each."""
    if k <= 0:
        return []
    predicted = evaluate.with_predictions(model, rows)
    chosen = []
    for label in ("against", "favor", "neutral") * k:
        candidates = predicted[(predicted["predicted"] == label) & ~predicted.index.isin(chosen)]
        if len(candidates) and len(chosen) < k:
            chosen.append(candidates.index[0])
    picked = predicted.loc[chosen]
    ngrams = model.explain(picked, picked["predicted"], k=6)
    return [
        {
            "text": r.text,
            "target": r.target,
            "stance": r.stance,
            "predicted": r.predicted,
            "probability": round(float(getattr(r, r.predicted)), 3),
            "ngrams": [(name, round(value, 3)) for name, value in explanation],
        }
        for r, explanation in zip(picked.itertuples(), ngrams, strict=True)
    ]
