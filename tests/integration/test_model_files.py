"""Safe model files (issue 10): weights only, every file hashed, nothing unpickled on load."""

import json
import pickle
import shutil

import joblib
import numpy as np
import pandas as pd
import pytest

from geostance import load_model
from geostance.errors import ModelError
from tests.conftest import FIXTURES
from tests.integration.test_cli import one_error_line, run


@pytest.fixture
def model_copy(trained, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(trained["model"], copy)
    return copy


def refused_everywhere(capsys, model, message: str, tmp_path) -> None:
    """Every command that loads a model, and the Python API, refuse `model` with `message`."""
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("text,target\nRussia won.,Russia\n")
    docs = tmp_path / "docs.txt"
    docs.write_text("Russia won.\n")
    for argv in (
        ["classify", "--model", model, "Russia won."],
        ["classify", "--model", model, "--input", docs, "--output", tmp_path / "m.csv"],
        ["predict", "--model", model, "--input", pairs, "--output", tmp_path / "p.csv"],
        ["evaluate", "--model", model, "--data", FIXTURES / "labeled.csv", "--out", tmp_path / "r"],
    ):
        status, _, err = run(capsys, *argv)
        assert status == 2 and message in err, (argv, err)
        one_error_line(err)
    with pytest.raises(ModelError, match=message):
        load_model(model)


def test_a_model_is_four_files_of_data(trained):
    names = sorted(p.name for p in trained["model"].iterdir())
    assert names == ["MODEL_CARD.md", "metadata.json", "model.json", "weights.npz"]
    with np.load(trained["model"] / "weights.npz", allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)
    metadata = json.loads((trained["model"] / "metadata.json").read_text())
    assert metadata["format"] == "geostance-weights/1"
    assert set(metadata["files"]) == {"model.json", "weights.npz", "MODEL_CARD.md"}


def test_loaded_weights_predict_as_the_estimator_did(trained, labeled):
    from sklearn.base import clone

    from geostance.config import load_experiment
    from geostance.experiment import build_estimator, load_gazetteer

    experiment = load_experiment(FIXTURES / "tiny.toml")
    saved = load_model(trained["model"])
    params = {k: v for k, v in saved.metadata["hyperparameters"].items() if k != "gazetteer"}
    estimator = clone(build_estimator(params, load_gazetteer(experiment)))
    train = labeled[labeled["split"] != "test"]
    estimator.fit(train[["text", "target"]], train["stance"])
    expected = estimator.predict_proba(labeled[["text", "target"]])
    got = saved.estimator.predict_proba(labeled[["text", "target"]])
    assert np.abs(expected - got).max() < 1e-9
    assert estimator.explain(labeled, labeled["stance"], k=None) == saved.estimator.explain(
        labeled, labeled["stance"], k=None
    )


@pytest.mark.parametrize("name", ["model.json", "weights.npz", "MODEL_CARD.md"])
def test_a_changed_file_is_refused(model_copy, capsys, tmp_path, name):
    with open(model_copy / name, "ab") as handle:
        handle.write(b"x")
    refused_everywhere(capsys, model_copy, "SHA-256 differs", tmp_path)


def test_an_extra_file_or_unknown_format_is_refused(model_copy, capsys, tmp_path):
    (model_copy / "model.joblib").write_bytes(b"anything")
    refused_everywhere(capsys, model_copy, "holds files a model does not have", tmp_path)
    (model_copy / "model.joblib").unlink()
    path = model_copy / "metadata.json"
    metadata = json.loads(path.read_text())
    path.write_text(json.dumps(metadata | {"format": "geostance-weights/99"}))
    refused_everywhere(capsys, model_copy, "unknown model format", tmp_path)


def test_corrupt_metadata_and_missing_file(model_copy, capsys):
    (model_copy / "weights.npz").unlink()
    status, _, err = run(capsys, "classify", "--model", model_copy, "Russia won.")
    assert status == 2 and "weights.npz: missing" in err
    (model_copy / "metadata.json").write_text("{not json")
    status, _, err = run(capsys, "classify", "--model", model_copy, "Russia won.")
    assert status == 2 and "unreadable" in err
    (model_copy / "metadata.json").unlink()
    status, _, err = run(capsys, "classify", "--model", model_copy, "Russia won.")
    assert status == 2 and "no metadata.json" in err


class _Plant:
    """Unpickling this creates a file: what a hostile model.joblib could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def crafted_pickle_model(folder, marker):
    """An old-format model folder whose pickle creates `marker` when loaded, hashes all matching."""
    folder.mkdir()
    with open(folder / "model.joblib", "wb") as handle:
        pickle.dump(_Plant(marker), handle)
    from geostance.artifacts import file_digest

    metadata = {"schema": "geostance-model/1", "model_sha256": file_digest(folder / "model.joblib")}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    (folder / "MODEL_CARD.md").write_text("")


def test_a_crafted_pickle_is_never_loaded(tmp_path, capsys):
    marker = tmp_path / "pwned"
    crafted_pickle_model(tmp_path / "evil", marker)
    refused_everywhere(capsys, tmp_path / "evil", "old pickled model", tmp_path)
    status, _, err = run(capsys, "convert", "--from-pickle", tmp_path / "evil")
    assert status == 2 and "--i-trust-this-file" in err
    assert not marker.exists()


def test_convert_turns_a_trusted_pickle_into_identical_weights(trained, tmp_path, capsys, labeled):
    from sklearn.base import clone

    from geostance.config import load_experiment
    from geostance.experiment import build_estimator, load_gazetteer

    experiment = load_experiment(FIXTURES / "tiny.toml")
    estimator = clone(
        build_estimator({"C": 5.0, "char_ngram_range": (2, 4)}, load_gazetteer(experiment))
    )
    estimator.fit(labeled[["text", "target"]], labeled["stance"])
    old = tmp_path / "old"
    old.mkdir()
    joblib.dump(estimator, old / "model.joblib")
    (old / "metadata.json").write_text(json.dumps({"schema": "geostance-model/1", "seed": 7}))
    status, out, err = run(capsys, "convert", "--from-pickle", old, "--i-trust-this-file")
    assert status == 0, err
    converted = load_model(old)
    assert converted.metadata["seed"] == 7 and "converted_from" in converted.metadata
    got = converted.estimator.predict_proba(labeled[["text", "target"]])
    assert np.abs(got - estimator.predict_proba(labeled[["text", "target"]])).max() < 1e-9


def test_signed_models_verify_with_the_key(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GEOSTANCE_MODEL_KEY", "s3cret")
    models = tmp_path / "models"
    status, _, err = run(capsys, "train", "--config", FIXTURES / "tiny.toml", "--models-dir",
                         models, "--reports-dir", tmp_path / "reports", "--quiet")  # fmt: skip
    assert status == 0, err
    assert load_model(models / "tiny").metadata["signature"]
    monkeypatch.setenv("GEOSTANCE_MODEL_KEY", "another key")
    with pytest.raises(ModelError, match="signature missing or wrong"):
        load_model(models / "tiny")
    with pytest.raises(ModelError, match="signature missing or wrong"):
        load_model(trained["model"])  # unsigned, and a key is set: refused
    monkeypatch.delenv("GEOSTANCE_MODEL_KEY")
    assert (
        load_model(models / "tiny")
        .predict(pd.DataFrame({"text": ["Russia won."], "target": ["Russia"]}))
        .size
        == 1
    )


@pytest.mark.parametrize("terms", [["", "é", "xy", "a b"], ["a\nb", "", "ǅ\n", "z"], []])
def test_terms_decode_to_what_was_encoded(terms):
    from geostance.artifacts import _decode_terms

    encoded = [t.encode("utf-8") for t in terms]
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    assert _decode_terms(data, ends) == terms
    with pytest.raises(ValueError):
        _decode_terms(np.zeros(3, dtype=np.uint8), np.array([5], dtype=np.int64))


def test_classifying_one_text_imports_neither_scikit_learn_nor_pandas(trained):
    """What makes a one-off classification start quickly (issue 12): from the command line
    and from Python."""
    import subprocess
    import sys

    code = (
        "import sys, geostance; from geostance.cli import main; "
        f"main(['classify', '--model', {str(trained['model'])!r}, 'Russia won.']); "
        f"geostance.load_model({str(trained['model'])!r}).classify('India lost.'); "
        "print(sorted(m for m in ('sklearn', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"
