"""Experiment configs: a TOML file overrides defaults; an unknown key is an error.

The model table takes exactly the estimator's parameters (its defaults are the defaults here),
so a hyperparameter is defined once, in `StanceClassifier.__init__`.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geostance.errors import ConfigError
from geostance.model import StanceClassifier

METRICS = ("macro_f1", "f_avg", "accuracy")
# A name becomes models/NAME and reports/NAME: one plain path component, never "", "." or "..".
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
MODEL_PARAMS = frozenset(StanceClassifier().get_params()) - {"gazetteer", "memory"}


@dataclass(frozen=True)
class DataConfig:
    format: str = "labeled"  # "labeled" CSV files, or the "tweeteval" stance layout
    train: tuple[str, ...] = ()  # labeled CSV files (format = "labeled")
    test: tuple[str, ...] = ()  # labeled CSV files scored once as the test evaluation
    test_split: str = ""  # rows whose `split` column equals this are the test evaluation
    # Labeled files never trained on nor tuned on, scored as the "dev" evaluation: the
    # real-style transfer estimate, and what the temperature is fitted on when CV's misleads.
    dev: tuple[str, ...] = ()
    gazetteer: str = "data/countries.csv"  # alias -> country table; "" for none
    path: str = ""  # TweetEval root folder (format = "tweeteval")
    train_splits: tuple[str, ...] = ("train", "val")
    test_splits: tuple[str, ...] = ("test",)


@dataclass(frozen=True)
class EvaluationConfig:
    folds: int = 5
    repeats: int = 3
    bootstrap: int = 1000
    jobs: int = 1
    learning_curve: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    cross_target: tuple[str, ...] = ()  # targets to hold out one at a time
    cross_style: tuple[str, ...] = ()  # source styles to hold out one at a time
    explain_examples: int = 3  # held-out predictions shown with their n-grams in the report
    calibrate: bool = True  # temperature-scale probabilities when out-of-fold ECE improves


@dataclass(frozen=True)
class SearchConfig:
    metric: str = "macro_f1"  # what the grid search maximises under grouped CV
    folds: int = 5
    grid: dict[str, tuple] = field(default_factory=dict)  # model parameter -> candidate values
    # A grid parameter whose smallest value is simplest (e.g. "C"): choose the smallest within
    # one standard error of the best mean instead of the best mean itself.
    prefer_small: str = ""


@dataclass(frozen=True)
class Variant:
    """A comparison model evaluated the same way: other parameters, other data, or majority."""

    name: str
    majority: bool = False  # predict the most frequent training label
    model: dict[str, Any] = field(default_factory=dict)
    train: tuple[str, ...] = ()  # other training files; their test rows are still excluded


@dataclass(frozen=True)
class Reference:
    """A published result the report places this model beside (same metric, same test set)."""

    name: str
    value: float  # in percent, as published
    metric: str = "f_avg"
    source: str = ""


@dataclass(frozen=True)
class Experiment:
    name: str
    seed: int = 0
    data: DataConfig = DataConfig()
    model: dict[str, Any] = field(default_factory=dict)
    evaluation: EvaluationConfig = EvaluationConfig()
    search: SearchConfig | None = None
    variants: tuple[Variant, ...] = ()
    references: tuple[Reference, ...] = ()

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_experiment(config_path: str | Path, **overrides: str) -> Experiment:
    """Read a config; the experiment's name is the file's stem. `overrides` replace [data] keys."""
    path = Path(config_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    where = str(path)
    raw.setdefault("name", path.stem)
    if not isinstance(raw["name"], str) or not NAME.fullmatch(raw["name"]):
        raise ConfigError(
            f"{where}: name must be letters, digits, '.', '_' or '-', starting with a letter or "
            f"digit (it names models/NAME and reports/NAME), got {raw['name']!r}"
        )
    for key in ("data", "model", "evaluation", "search"):
        if key in raw and not isinstance(raw[key], dict):
            raise ConfigError(f"{where}: [{key}] must be a table, got {raw[key]!r}")
    for key in ("variants", "references"):
        if key in raw and not (
            isinstance(raw[key], list) and all(isinstance(v, dict) for v in raw[key])
        ):
            raise ConfigError(f"{where}: {key} must be an array of tables ([[{key}]])")
    data = dict(raw.pop("data", {}))
    data.update({k: v for k, v in overrides.items() if v is not None})
    experiment = _build(
        Experiment,
        {
            **raw,
            "data": _build(DataConfig, data, f"{where} [data]"),
            "model": _model_params(raw.get("model", {}), f"{where} [model]"),
            "evaluation": _build(
                EvaluationConfig, raw.get("evaluation", {}), f"{where} [evaluation]"
            ),
            "search": _search(raw.get("search"), f"{where} [search]"),
            "variants": tuple(
                _variant(v, f"{where} [[variants]] #{i + 1}")
                for i, v in enumerate(raw.get("variants", []))
            ),
            "references": tuple(
                _build(Reference, r, f"{where} [[references]] #{i + 1}")
                for i, r in enumerate(raw.get("references", []))
            ),
        },
        where,
    )
    if experiment.data.format not in ("labeled", "tweeteval"):
        raise ConfigError(f"{where}: data.format must be 'labeled' or 'tweeteval'")
    if experiment.data.format == "labeled" and overrides.get("path") is not None:
        raise ConfigError(
            f"{where}: --data only applies to TweetEval experiments; "
            "list labeled files under [data] train"
        )
    if experiment.data.format == "labeled" and not experiment.data.train:
        raise ConfigError(f"{where}: data.train lists no labeled files")
    if experiment.data.format == "tweeteval" and not experiment.data.path:
        raise ConfigError(f"{where}: data.path names no TweetEval folder")
    if any(r.metric not in METRICS for r in experiment.references):
        raise ConfigError(f"{where}: references[].metric must be one of {', '.join(METRICS)}")
    _check_evaluation(experiment.evaluation, f"{where} [evaluation]")
    if experiment.search and experiment.search.folds < 2:
        raise ConfigError(f"{where} [search]: folds must be at least 2")
    return experiment


def _fraction(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1


def _check_evaluation(ev: EvaluationConfig, where: str) -> None:
    rules = [
        (ev.folds >= 2, "folds must be at least 2"),
        (ev.repeats >= 1, "repeats must be at least 1"),
        (ev.bootstrap >= 0, "bootstrap must be 0 (none) or more resamples"),
        (ev.jobs >= 1 or ev.jobs == -1, "jobs must be a positive number of processes, or -1"),
        (ev.explain_examples >= 0, "explain_examples must be 0 or more"),
        (
            all(_fraction(f) for f in ev.learning_curve),
            "learning_curve fractions must be in (0, 1]",
        ),
    ]
    for ok, message in rules:
        if not ok:
            raise ConfigError(f"{where}: {message}")


def _build(cls, table: dict, where: str):
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    values = {}
    for name, value in table.items():
        default = _default(fields[name])
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        wrong_bool = isinstance(value, bool) and not isinstance(default, bool)
        if (
            default is not None
            and not isinstance(default, dict)
            and (wrong_bool or not isinstance(value, type(default)))
        ):
            raise ConfigError(f"{where}: {name} must be {type(default).__name__}, got {value!r}")
        values[name] = value
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _model_params(table: dict, where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(table) - MODEL_PARAMS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown model parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(MODEL_PARAMS))})"
        )
    return {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}


def _search(table: dict | None, where: str) -> SearchConfig | None:
    if table is None:
        return None
    table = dict(table)
    grid = _model_params(table.pop("grid", {}), f"{where} grid")
    for name, values in grid.items():
        if not isinstance(values, tuple) or not values:
            raise ConfigError(f"{where}: grid.{name} must be a non-empty list of candidates")
    search = _build(SearchConfig, table, where)
    if search.metric not in METRICS:
        raise ConfigError(f"{where}: metric must be one of {', '.join(METRICS)}")
    if search.prefer_small and search.prefer_small not in grid:
        raise ConfigError(
            f"{where}: prefer_small names {search.prefer_small!r}, which the grid does not vary"
        )
    # Candidate ngram ranges arrive as lists of lists; the estimator wants tuples.
    grid = {k: tuple(tuple(v) if isinstance(v, list) else v for v in vs) for k, vs in grid.items()}
    return dataclasses.replace(search, grid=grid)


def _variant(table: dict, where: str) -> Variant:
    table = dict(table)
    model = _model_params(table.pop("model", {}), f"{where} model")
    variant = _build(Variant, table, where)
    return dataclasses.replace(variant, model=model)
