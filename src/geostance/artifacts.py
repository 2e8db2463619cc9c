"""Saved model directories: written atomically, checked on load, used through `SavedModel`.

A model directory holds `model.joblib`, `metadata.json` (data hashes, versions,
hyperparameters, metrics, the SHA-256 of model.joblib) and `MODEL_CARD.md`.
"""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata as package_metadata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from geostance.data import file_digest
from geostance.errors import ModelError
from geostance.model import FEATURES, LABELS, predict_frame

SCHEMA = "geostance-model/1"
DEFAULT_MODEL = "models/default"
MODEL_ENV = "GEOSTANCE_MODEL"


def default_model_path() -> Path:
    """`$GEOSTANCE_MODEL`, else `models/default` (what the README's main command writes)."""
    return Path(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)


def versions() -> dict[str, str]:
    names = ("scikit-learn", "numpy", "pandas", "joblib", "geostance")
    return {"python": platform.python_version()} | {n: package_metadata.version(n) for n in names}


def write_model(folder: Path, estimator, metadata: dict, card: str) -> dict:
    """Write the model files into `folder` (a staging folder); return the metadata as written."""
    joblib.dump(estimator, folder / "model.joblib")
    metadata = {
        "schema": SCHEMA,
        **metadata,
        "versions": versions(),
        "model_sha256": file_digest(folder / "model.joblib"),
    }
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (folder / "MODEL_CARD.md").write_text(card)
    return metadata


def load_model(path: str | Path | None = None) -> SavedModel:
    """Load a model directory (default: `default_model_path()`), refusing anything suspect.

    Raises ModelError when the directory or a file is missing, the metadata is unreadable, the
    model file's hash differs from the one recorded (corrupt or tampered: it is not unpickled),
    or it was saved by another scikit-learn minor version.
    """
    directory = Path(path) if path is not None else default_model_path()
    if not directory.is_dir():
        hint = (
            ""
            if path is not None
            else (
                " (train it first: geostance train --config experiments/default.toml, or pass --model)"
            )
        )
        raise ModelError(f"{directory}: no model directory{hint}")
    try:
        metadata = json.loads((directory / "metadata.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{directory}: no metadata.json, not a geostance model") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory}/metadata.json: unreadable ({exc})") from None
    if not isinstance(metadata, dict) or metadata.get("schema") != SCHEMA:
        raise ModelError(f"{directory}: metadata schema is not {SCHEMA}")
    model_file = directory / "model.joblib"
    if not model_file.is_file():
        raise ModelError(f"{model_file}: missing")
    if file_digest(model_file) != metadata.get("model_sha256"):
        raise ModelError(
            f"{model_file}: SHA-256 differs from metadata.json (corrupt or modified); not loading it"
        )
    recorded = metadata.get("versions")
    saved = recorded.get("scikit-learn", "?") if isinstance(recorded, dict) else "?"
    current = package_metadata.version("scikit-learn")
    if saved.split(".")[:2] != current.split(".")[:2]:
        raise ModelError(
            f"{directory}: saved with scikit-learn {saved}, this is {current}; "
            "retrain it with geostance train or install the matching version"
        )
    try:
        estimator = joblib.load(model_file)
    except Exception as exc:  # unpickling can raise anything; the hash matched, so say so
        raise ModelError(f"{model_file}: cannot be loaded ({type(exc).__name__}: {exc})") from None
    try:
        estimator.get_params()
    except AttributeError:
        raise ModelError(
            f"{directory}: saved by an incompatible geostance version; retrain it with geostance train"
        ) from None
    return SavedModel(estimator, metadata, directory)


class SavedModel:
    """A trained model and its metadata: the object analysts call from Python."""

    def __init__(self, estimator, metadata: dict, path: Path | None = None):
        self.estimator = estimator
        self.metadata = metadata
        self.path = path

    def predict_proba(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """Probabilities of favor, against, neutral for each (`text`, `target`) row."""
        return predict_frame(self.estimator, _pairs(pairs))[list(LABELS)]

    def predict(self, pairs: pd.DataFrame) -> pd.Series:
        """The stance label of each (`text`, `target`) row."""
        return predict_frame(self.estimator, _pairs(pairs))["stance"]

    def classify(
        self, text: str | list[str], min_confidence: float | None = None, explain: int = 0
    ):
        """Split text into sentences, find the countries, classify every mention.

        A string gives one `Classification`; a list of strings gives a list of them. Mentions
        whose top probability is below `min_confidence` get the stance "uncertain"; with
        `explain` = k, each mention carries the k n-grams that weighed most for its label.
        """
        from geostance.classify import classify_texts

        if isinstance(text, str):
            return classify_texts(self, [text], min_confidence, explain)[0]
        return classify_texts(self, list(text), min_confidence, explain)

    def __repr__(self) -> str:
        return f"SavedModel({self.metadata.get('experiment', '?')!r}, path={str(self.path)!r})"


def _pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(pairs, pd.DataFrame):
        pairs = pd.DataFrame(pairs)
    missing = [c for c in FEATURES if c not in pairs.columns]
    if missing:
        raise ValueError(f"missing column(s) {', '.join(missing)}: give 'text' and 'target'")
    return pairs


def json_ready(value):
    """Turn numpy scalars and arrays into plain Python for json.dumps."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
