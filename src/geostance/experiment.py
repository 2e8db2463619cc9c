"""One experiment, end to end: config -> data -> estimator -> evaluations -> model and report."""

from __future__ import annotations

import dataclasses
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import product
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.dummy import DummyClassifier

from geostance import evaluate
from geostance.artifacts import file_digest, json_ready, write_model
from geostance.config import Experiment
from geostance.data import read_labeled, read_tweeteval
from geostance.errors import ConfigError, DataError
from geostance.linear import FEATURES
from geostance.mentions import Gazetteer
from geostance.model import StanceClassifier
from geostance.outputs import check_folder, experiment_lock, publish


def load_gazetteer(experiment: Experiment) -> Gazetteer | None:
    return Gazetteer.from_csv(experiment.data.gazetteer) if experiment.data.gazetteer else None


class Data(NamedTuple):
    train: pd.DataFrame
    test: pd.DataFrame | None  # scored once, never fitted or tuned on
    dev: pd.DataFrame | None  # the real-style transfer estimate, never fitted on
    files: list[dict]  # every file read, with SHA-256 and row count


def load_data(
    experiment: Experiment, gazetteer: Gazetteer | None, files: tuple[str, ...] | None = None
) -> Data:
    """Training, test and dev rows, and the files read.

    `files` replaces the config's training files (a variant trained on other data); test and
    dev sentences are excluded from training whatever the files.
    """
    config = experiment.data
    if config.format == "tweeteval":
        root = Path(config.path)
        train = read_tweeteval(root, config.train_splits)
        test = read_tweeteval(root, config.test_splits) if config.test_splits else None
        read = sorted(root.glob("*/*_*.txt"))
        splits = set(config.train_splits) | set(config.test_splits)
        read = [p for p in read if p.name.split("_")[0] in splits]
        return Data(train, test, None, [_describe(p) for p in read])
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
    extra = {}
    for kind, paths in (("test", config.test), ("dev", config.dev)):
        if paths:
            extra[kind] = read_labeled(paths, countries)
            described += [_describe(p, extra[kind]) for p in paths]
            train = train[~train["sentence_id"].isin(extra[kind]["sentence_id"])]
    if "test" in extra:
        test = (
            extra["test"] if test is None else pd.concat([test, extra["test"]], ignore_index=True)
        )
    if config.gazetteer:
        described.append(_describe(config.gazetteer))
    return Data(train.reset_index(drop=True), test, extra.get("dev"), described)


def _describe(path, frame: pd.DataFrame | None = None) -> dict:
    """A data file's path and SHA-256, with its labeled row count when it was read as one."""
    entry = {"path": str(path), "sha256": file_digest(path)}
    return entry if frame is None else entry | {"rows": int((frame["file"] == str(path)).sum())}


def build_estimator(params: dict, gazetteer: Gazetteer | None) -> StanceClassifier:
    return StanceClassifier(gazetteer=gazetteer, **params)


def grid_search(
    estimator,
    train: pd.DataFrame,
    experiment: Experiment,
    log: Callable[[str], None],
    held_out: dict[str, pd.DataFrame],
) -> tuple[object, dict, pd.DataFrame]:
    """Choose parameters by grouped, stratified CV on the training rows only.

    Returns the chosen estimator, the search record, and the chosen candidate's out-of-fold
    predictions (the CV evaluation, when it uses the same folds: nothing is fitted twice).
    Each candidate is also scored on the held-out sets by its fold models' mean probabilities,
    so a choice that wins CV but loses transfer is visible; the choice stays CV's alone.
    """
    search, jobs = experiment.search, experiment.evaluation.jobs
    names = list(search.grid)
    grid = [dict(zip(names, values, strict=True)) for values in product(*search.grid.values())]
    candidates, predictions = [], []
    for i, params in enumerate(grid, start=1):
        log(f"search: candidate {i}/{len(grid)} {params}, {search.folds} folds")
        oof, transfer = evaluate.cross_fit(
            clone(estimator).set_params(**params),
            train,
            folds=search.folds,
            repeats=1,
            seed=experiment.seed,
            jobs=jobs,
            held_out=held_out,
        )
        scores = evaluate.fold_scores(oof, search.metric)
        candidates.append(
            {"params": params, "mean": float(np.mean(scores)), "std": float(np.std(scores))}
            | {key: _transfer_score(rows) for key, rows in transfer.items()}
        )
        predictions.append(oof)
    best = max(candidates, key=lambda c: c["mean"])
    chosen = best
    if search.prefer_small:
        # Breiman's one-standard-error rule: the simplest candidate that is not measurably
        # worse than the best generalises better than the luckiest fold winner.
        threshold = best["mean"] - best["std"] / search.folds**0.5
        near = [c for c in candidates if c["mean"] >= threshold]
        chosen = min(
            near, key=lambda c: (_simplicity(c["params"][search.prefer_small]), -c["mean"])
        )
    return (
        clone(estimator).set_params(**chosen["params"]),
        {
            "metric": search.metric,
            "folds": search.folds,
            "rule": f"one standard error, smallest {search.prefer_small}"
            if search.prefer_small
            else "best mean",
            "best_params": best["params"],
            "best_score": best["mean"],
            "chosen_params": chosen["params"],
            "candidates": candidates,
        },
        predictions[candidates.index(chosen)],
    )


def _transfer_score(predictions: pd.DataFrame) -> dict:
    scored = evaluate.score_predictions(predictions, n_boot=0, seed=0)
    return {
        "macro_f1": scored["macro_f1"],
        "per_hard_case": {c: s["macro_f1"] for c, s in scored.get("per_hard_case", {}).items()},
    }


def _simplicity(value) -> float:
    """How complex a parameter value is: C by its size, a list of views by its length."""
    return len(value) if isinstance(value, tuple | list) else value


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
    with experiment_lock(models_dir, experiment.name):
        results, final, metadata = _train(experiment, stages)
        from geostance.report import model_card, write_report

        stages(f"writing {model_dir} and {report_dir}")
        with publish({model_dir: "model", report_dir: "report"}) as staged:
            write_model(
                staged[model_dir], final.to_linear(), metadata, model_card(results, metadata)
            )
            write_report(staged[report_dir], results)
    return results


class _Stages:
    """Log each stage with the time elapsed since training began, so long runs show life."""

    def __init__(self, log: Callable[[str], None]):
        self.log, self.started = log, time.perf_counter()

    def __call__(self, message: str) -> None:
        elapsed = int(time.perf_counter() - self.started)
        self.log(f"[{elapsed // 60}:{elapsed % 60:02d}] {message}")


CLASSIFIER_PARAMS = frozenset({"C", "class_weight", "max_iter", "solver"})


def _train(experiment: Experiment, log: Callable[[str], None]) -> tuple[dict, object, dict]:
    """Everything but the writing: (results, final estimator, model metadata)."""
    gazetteer = load_gazetteer(experiment)
    train, test, dev, files = load_data(experiment, gazetteer)
    ev, seed = experiment.evaluation, experiment.seed
    variant_data = {
        v.name: load_data(experiment, gazetteer, v.train).train if v.train else train
        for v in experiment.variants
    }
    unknown_targets = set(ev.cross_target) - set(train["target"])
    if unknown_targets:
        raise ConfigError(f"evaluation.cross_target names targets with no rows: {unknown_targets}")
    log(
        f"data: {len(train)} training rows"
        + (f", {len(test)} test rows" if test is not None else "")
        + (f", {len(dev)} dev rows" if dev is not None else "")
    )
    held_out = {"test": test, "dev": dev}
    held_out = {k: v for k, v in held_out.items() if v is not None}
    # When the search varies only the classifier (C, class weights), its candidates share each
    # fold's TF-IDF features: cache them by their training rows, for this run only.
    grid = set(experiment.search.grid) if experiment.search else set()
    shared = bool(grid) and grid <= CLASSIFIER_PARAMS
    with tempfile.TemporaryDirectory(prefix="geostance-features-") as cache:
        try:
            estimator = build_estimator(experiment.model, gazetteer)
            estimator.set_params(memory=cache if shared else None)
            results: dict = {"experiment": experiment.name}
            oof = None
            cv_options = {"folds": ev.folds, "repeats": ev.repeats, "seed": seed, "jobs": ev.jobs}
            if experiment.search:
                estimator, results["search"], oof = grid_search(
                    estimator, train, experiment, log, held_out
                )
                log(f"search chose {results['search']['chosen_params']}")
                if (ev.repeats, ev.folds) != (1, experiment.search.folds):
                    oof = None  # the evaluation asks for other folds than the search used
            if oof is None:
                log(f"cross-validation: {ev.repeats} x {ev.folds} folds grouped by sentence")
                oof = evaluate.out_of_fold(estimator, train, **cv_options)
            results["evaluations"] = {
                "cv": evaluate.score_predictions(oof, n_boot=ev.bootstrap, seed=seed)
            }
            log("final fit on all training rows")
            started = time.perf_counter()
            final = clone(estimator).fit(train[FEATURES], train["stance"])
            fit_seconds = time.perf_counter() - started
            if ev.calibrate:
                results["temperature"] = _temperature(oof, final, dev, seed)
                final.set_params(temperature=results["temperature"]["temperature"])
                estimator.set_params(temperature=results["temperature"]["temperature"])
            predictions = {k: evaluate.with_predictions(final, r) for k, r in held_out.items()}
            for key, predicted in predictions.items():
                results["evaluations"][key] = evaluate.score_predictions(
                    predicted, n_boot=ev.bootstrap, seed=seed
                )
            # The cache served the search's shared folds; what follows fits new subsets only.
            estimator.set_params(memory=None)
            results["variants"] = _variants(
                experiment, estimator, variant_data, held_out, cv_options, log
            )
            _studies(experiment, estimator, train, results, log)
            results["timing"] = _timing(final, fit_seconds, train, test)
            linear = final.set_params(memory=None).to_linear()
            results["top_features"] = linear.top_features(15)
            results["cue_audit"] = evaluate.cue_audit(linear.top_features(50))
            results["explained"] = _explained(
                final, test if test is not None else train, ev.explain_examples
            )
            results["errors"] = evaluate.confident_errors(oof[oof["repeat"] == 0], 10)
            if "dev" in predictions:
                results["dev_errors"] = evaluate.confident_errors(predictions["dev"], 10)
        except ValueError as exc:
            # scikit-learn's parameter validation speaks of bad config values, not bugs.
            raise ConfigError(f"{experiment.name}: {exc}") from None
    results["data"] = {
        "files": files,
        "train_rows": int(len(train)),
        "train_sentences": int(train["sentence_id"].nunique()),
        "test_rows": int(len(test)) if test is not None else 0,
        "dev_rows": int(len(dev)) if dev is not None else 0,
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


def _temperature(oof: pd.DataFrame, final, dev: pd.DataFrame | None, seed: int) -> dict:
    """The temperature the saved model uses: from CV's out-of-fold predictions, unless the dev
    set (real-style text) is worse calibrated under it than CV is; then cross-fitted on dev."""
    chosen = evaluate.choose_temperature(oof, seed)
    chosen["source"] = "cv"
    if dev is None:
        return chosen
    raw = evaluate.with_predictions(final.set_params(temperature=1.0), dev)
    under_cv = evaluate.calibration(
        dev["stance"], evaluate.with_temperature(raw, chosen["temperature"])
    )
    cv_ece = (chosen["after"] if chosen["applied"] else chosen["before"])["ece"]
    on_dev = evaluate.choose_temperature(raw, seed)
    chosen["dev"] = {"ece_under_cv_temperature": under_cv["ece"], "cv_ece": cv_ece, **on_dev}
    chosen["dev"]["cross_fitted"] = under_cv
    if under_cv["ece"] > cv_ece and on_dev["applied"]:
        chosen.update(temperature=on_dev["temperature"], applied=True, source="dev")
        chosen["dev"]["cross_fitted"] = {**under_cv, **on_dev["after"]}
    return chosen


def _variants(experiment, estimator, variant_data, held_out, cv_options, log) -> dict:
    """Comparison models, evaluated as the model is: CV, and every held-out set."""
    ev, out = experiment.evaluation, {}
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
                seed=experiment.seed,
            )
        }
        fitted = clone(candidate).fit(rows[FEATURES], rows["stance"])
        for key, held in held_out.items():
            scores[key] = evaluate.score_predictions(
                evaluate.with_predictions(fitted, held), n_boot=ev.bootstrap, seed=experiment.seed
            )
        out[variant.name] = {"n_train": int(len(rows)), **scores}
    return out


def _studies(experiment, estimator, train: pd.DataFrame, results: dict, log) -> None:
    """The heavier questions a config may ask: learning curve, and transfer to a country or a
    source style never seen in training."""
    ev = experiment.evaluation
    if ev.learning_curve:
        log("learning curve")
        results["learning_curve"] = evaluate.learning_curve(
            estimator,
            train,
            fractions=ev.learning_curve,
            folds=ev.folds,
            seed=experiment.seed,
            jobs=ev.jobs,
        )
    if ev.cross_target:
        log("cross-target check")
        results["cross_target"] = evaluate.leave_one_out(
            estimator, train, "target", ev.cross_target, jobs=ev.jobs
        )
    if ev.cross_style:
        if "source_style" not in train.columns:
            raise ConfigError("evaluation.cross_style: no training file has a source_style column")
        log(f"cross-style check: {len(ev.cross_style)} source styles")
        results["cross_style"] = evaluate.leave_one_out(
            estimator, train, "source_style", ev.cross_style, jobs=ev.jobs
        )


def _params(estimator) -> dict:
    params = {k: v for k, v in estimator.get_params().items() if k not in ("gazetteer", "memory")}
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
