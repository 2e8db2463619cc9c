"""Saved model directories: data only, checked file by file on load, used through `SavedModel`.

A model directory holds exactly four files:
- `model.json`: the estimator's configuration, classes, temperature and gazetteer;
- `weights.npz`: each TF-IDF block's terms and idf, each linear layer's weights and intercepts
  (NumPy arrays, read with `allow_pickle=False`: nothing in it can run code);
- `MODEL_CARD.md`;
- `metadata.json`: data hashes, versions, hyperparameters, metrics, the format version, the
  SHA-256 of every other file and, when `$GEOSTANCE_MODEL_KEY` was set, an HMAC signature.

Loading never unpickles. Old pickled models are converted once, on request, by
`convert_pickle` (`geostance convert --from-pickle DIR --i-trust-this-file`).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import platform
import zipfile
from importlib import metadata as package_metadata
from pathlib import Path

import numpy as np

from geostance.errors import ModelError
from geostance.linear import (
    FEATURES,
    KINDS,
    LABELS,
    LinearLayer,
    LinearStance,
    TfidfBlock,
    predict_frame,
)
from geostance.mentions import Gazetteer

SCHEMA = "geostance-model/2"
PICKLE_SCHEMA = "geostance-model/1"
FORMAT = "geostance-weights/1"
MODEL_FILES = ("model.json", "weights.npz", "MODEL_CARD.md")
DEFAULT_MODEL = "models/default"
MODEL_ENV = "GEOSTANCE_MODEL"
KEY_ENV = "GEOSTANCE_MODEL_KEY"


def default_model_path() -> Path:
    """`$GEOSTANCE_MODEL`, else `models/default` (what the README's main command writes)."""
    return Path(os.environ.get(MODEL_ENV) or DEFAULT_MODEL)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex: how model metadata names its data and its own files."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    names = ("scikit-learn", "numpy", "scipy", "pandas", "geostance")
    return {"python": platform.python_version()} | {n: package_metadata.version(n) for n in names}


def write_model(folder: Path, model: LinearStance, metadata: dict, card: str) -> dict:
    """Write the model files into `folder` (a staging folder); return the metadata as written."""
    config, arrays = _to_arrays(model)
    (folder / "model.json").write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    (folder / "weights.npz").write_bytes(buffer.getvalue())
    (folder / "MODEL_CARD.md").write_text(card)
    metadata = {
        "schema": SCHEMA,
        "format": FORMAT,
        **metadata,
        "versions": versions(),
        "files": {name: file_digest(folder / name) for name in MODEL_FILES},
    }
    key = os.environ.get(KEY_ENV)
    if key:
        metadata["signature"] = _sign(metadata, key)
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return metadata


def load_model(path: str | Path | None = None) -> SavedModel:
    """Load a model directory (default: `default_model_path()`), refusing anything suspect.

    Raises ModelError when the directory, a file or the metadata is missing or unreadable, the
    format is unknown, a file's hash differs from the one recorded, the folder holds anything
    else, the signature does not verify (when `$GEOSTANCE_MODEL_KEY` is set), or the model is
    an old pickle (which is never loaded: convert it).
    """
    directory = Path(path) if path is not None else default_model_path()
    if not directory.is_dir():
        hint = (
            ""
            if path is not None
            else " (train it first: geostance train --config experiments/default.toml, or pass --model)"
        )
        raise ModelError(f"{directory}: no model directory{hint}")
    try:
        metadata = json.loads((directory / "metadata.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{directory}: no metadata.json, not a geostance model") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory}/metadata.json: unreadable ({exc})") from None
    schema = metadata.get("schema") if isinstance(metadata, dict) else None
    if schema == PICKLE_SCHEMA:
        raise ModelError(
            f"{directory}: an old pickled model, which could run code when loaded; if you trust "
            f"its source, convert it: geostance convert --from-pickle {directory} --i-trust-this-file"
        )
    if schema != SCHEMA or metadata.get("format") != FORMAT:
        raise ModelError(
            f"{directory}: unknown model format {metadata.get('format', schema)!r} "
            f"(this geostance reads {FORMAT})"
        )
    _verify(directory, metadata)
    try:
        config = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        with np.load(directory / "weights.npz", allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        estimator = _from_arrays(config, arrays)
    except (OSError, ValueError, KeyError, TypeError, IndexError, zipfile.BadZipFile) as exc:
        raise ModelError(
            f"{directory}: model files are malformed ({type(exc).__name__}: {exc})"
        ) from None
    return SavedModel(estimator, metadata, directory)


def _verify(directory: Path, metadata: dict) -> None:
    recorded = metadata.get("files")
    if not isinstance(recorded, dict) or sorted(recorded) != sorted(MODEL_FILES):
        raise ModelError(f"{directory}/metadata.json: does not list the model's files")
    present = sorted(p.name for p in directory.iterdir())
    extra = sorted(set(present) - {*MODEL_FILES, "metadata.json"})
    if extra:
        raise ModelError(
            f"{directory}: holds files a model does not have ({', '.join(extra)}); not loading it"
        )
    for name in MODEL_FILES:
        file = directory / name
        if not file.is_file():
            raise ModelError(f"{file}: missing")
        if file_digest(file) != recorded[name]:
            raise ModelError(
                f"{file}: SHA-256 differs from metadata.json (corrupt or modified); not loading it"
            )
    key = os.environ.get(KEY_ENV)
    if key:
        signature = metadata.get("signature")
        if not isinstance(signature, str) or not hmac.compare_digest(
            signature, _sign(metadata, key)
        ):
            raise ModelError(
                f"{directory}: signature missing or wrong for the key in ${KEY_ENV}; not loading it"
            )


def _sign(metadata: dict, key: str) -> str:
    """HMAC-SHA256 over the metadata (which holds every file's hash), signature excluded."""
    body = json.dumps({k: v for k, v in metadata.items() if k != "signature"}, sort_keys=True)
    return hmac.new(key.encode("utf-8"), body.encode("utf-8"), hashlib.sha256).hexdigest()


def _to_arrays(model: LinearStance) -> tuple[dict, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}

    def layer(key: str, value: LinearLayer | str):
        if isinstance(value, str):
            return {"constant": value}
        for i, block in enumerate(value.blocks):
            encoded = [t.encode("utf-8") for t in block.terms]
            arrays[f"{key}.{i}.terms"] = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            arrays[f"{key}.{i}.ends"] = np.cumsum([len(t) for t in encoded], dtype=np.int64)
            arrays[f"{key}.{i}.idf"] = block.idf
        arrays[f"{key}.weights"] = value.weights
        arrays[f"{key}.intercepts"] = value.intercepts
        return {
            "kind": value.kind,
            "classes": [str(c) for c in value.classes],
            "targets": list(value.targets),
            "blocks": [
                {
                    "name": b.name,
                    "analyzer": b.analyzer,
                    "ngram_range": list(b.ngram_range),
                    "sublinear_tf": bool(b.sublinear_tf),
                    "token_pattern": b.token_pattern,
                    "view": b.view,
                    "window": int(b.window),
                }
                for b in value.blocks
            ],
        }

    per_target = list(model.per_target.items())
    config = {
        "classes": [str(c) for c in model.classes_],
        "mask_targets": bool(model.mask_targets),
        "split_hashtags": bool(model.split_hashtags),
        "temperature": float(model.temperature),
        "pooled": layer("pooled", model.pooled),
        "per_target": [[t, layer(f"target{i}", v)] for i, (t, v) in enumerate(per_target)],
        "gazetteer": None if model.gazetteer is None else model.gazetteer.aliases,
    }
    return config, arrays


def _decode_terms(data: np.ndarray, ends: np.ndarray) -> list[str]:
    """The UTF-8 strings packed end to end in `data`, each ending at its offset in `ends`."""
    if ends.size and (ends[-1] != data.size or (np.diff(ends) < 0).any() or ends[0] < 0):
        raise ValueError("term offsets do not match the term bytes")
    if not ends.size:
        return []
    if not (data == ord("\n")).any():  # the usual case: one decode, one split, no Python loop
        return np.insert(data, ends[:-1], ord("\n")).tobytes().decode("utf-8").split("\n")
    starts = np.concatenate([[0], ends[:-1]])
    raw = data.tobytes()
    return [raw[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]


def _from_arrays(config: dict, arrays: dict[str, np.ndarray]) -> LinearStance:
    def numeric(name: str, dtype) -> np.ndarray:
        array = arrays[name]
        if array.dtype != dtype:
            raise TypeError(f"{name} is {array.dtype}, expected {np.dtype(dtype)}")
        return array

    def layer(key: str, spec: dict) -> LinearLayer | str:
        if "constant" in spec:
            return str(spec["constant"])
        if spec["kind"] not in KINDS:
            raise ValueError(f"unknown layer kind {spec['kind']!r}")
        blocks = []
        for i, block in enumerate(spec["blocks"]):
            terms = _decode_terms(
                numeric(f"{key}.{i}.terms", np.uint8), numeric(f"{key}.{i}.ends", np.int64)
            )
            blocks.append(
                TfidfBlock(
                    name=str(block["name"]),
                    analyzer=str(block["analyzer"]),
                    ngram_range=tuple(block["ngram_range"]),
                    sublinear_tf=bool(block["sublinear_tf"]),
                    token_pattern=str(block["token_pattern"]),
                    view=str(block["view"]),
                    window=int(block["window"]),
                    terms=terms,
                    idf=numeric(f"{key}.{i}.idf", np.float64),
                )
            )
        weights = numeric(f"{key}.weights", np.float64)
        if weights.shape[1] != sum(len(b.terms) for b in blocks) * (1 + len(spec["targets"])):
            raise ValueError(f"{key}: weights do not match its vocabulary")
        return LinearLayer(
            blocks=blocks,
            targets=[str(t) for t in spec["targets"]],
            classes=np.array(spec["classes"], dtype=object),
            weights=weights,
            intercepts=numeric(f"{key}.intercepts", np.float64),
            kind=spec["kind"],
        )

    aliases = config["gazetteer"]
    return LinearStance(
        classes=np.array(config["classes"], dtype=object),
        pooled=layer("pooled", config["pooled"]),
        per_target={
            str(t): layer(f"target{i}", spec) for i, (t, spec) in enumerate(config["per_target"])
        },
        gazetteer=None if aliases is None else Gazetteer({a: tuple(c) for a, c in aliases.items()}),
        mask_targets=bool(config["mask_targets"]),
        split_hashtags=bool(config["split_hashtags"]),
        temperature=float(config["temperature"]),
    )


def convert_pickle(source: str | Path, out: str | Path | None = None) -> Path:
    """Turn an old pickled model directory into the weights-only format; return its folder.

    This is the one place geostance unpickles, and only when the user vouches for the file.
    """
    import joblib

    from geostance.outputs import publish

    source = Path(source)
    folder = source.parent if source.name == "model.joblib" else source
    pickle_file = folder / "model.joblib"
    if not pickle_file.is_file():
        raise ModelError(f"{pickle_file}: no pickled model here")
    try:
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metadata = {}
    try:
        estimator = joblib.load(pickle_file)
        linear = estimator.to_linear()
    except Exception as exc:  # unpickling can raise anything; say what, in one line
        raise ModelError(
            f"{pickle_file}: cannot be converted ({type(exc).__name__}: {exc})"
        ) from None
    kept = {k: v for k, v in metadata.items() if k not in ("schema", "versions", "model_sha256")}
    kept["converted_from"] = {"file": str(pickle_file), "sha256": file_digest(pickle_file)}
    target = Path(out) if out is not None else folder
    card = (folder / "MODEL_CARD.md").read_text() if (folder / "MODEL_CARD.md").is_file() else ""
    with publish({target: "model"}) as staged:
        write_model(staged[target], linear, kept, card)
    return target


class SavedModel:
    """A trained model and its metadata: the object analysts call from Python."""

    def __init__(self, estimator, metadata: dict, path: Path | None = None):
        self.estimator = estimator
        self.metadata = metadata
        self.path = path

    def predict_proba(self, pairs):
        """Probabilities of favor, against, neutral for each (`text`, `target`) row."""
        return predict_frame(self.estimator, _pairs(pairs))[list(LABELS)]

    def predict(self, pairs):
        """The stance label of each (`text`, `target`) row."""
        return predict_frame(self.estimator, _pairs(pairs))["stance"]

    def classify(
        self,
        text: str | list[str],
        min_confidence: float | None = None,
        explain: int = 0,
        resolve: bool = False,
    ):
        """Split text into sentences, find the countries, classify every mention.

        A string gives one `Classification`; a list of strings gives a list of them. Mentions
        whose top probability is below `min_confidence` get the stance "uncertain"; with
        `explain` = k, each mention carries the k n-grams that weighed most for its label;
        with `resolve`, "both countries" and the like count for the two countries the sentence
        before named (see `classify.classify_mentions`).
        """
        from geostance.classify import classify_texts

        if isinstance(text, str):
            return classify_texts(self, [text], min_confidence, explain, resolve)[0]
        return classify_texts(self, list(text), min_confidence, explain, resolve)

    def __repr__(self) -> str:
        return f"SavedModel({self.metadata.get('experiment', '?')!r}, path={str(self.path)!r})"


def _pairs(pairs):
    """`pairs` (a DataFrame, or anything pandas makes one of) as a DataFrame."""
    import pandas as pd

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
