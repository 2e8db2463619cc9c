"""The committed data, gazetteer, default model and report agree with the code as it is now."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from geostance import load_model
from geostance.artifacts import file_digest
from geostance.config import load_experiment
from geostance.data import read_labeled
from geostance.experiment import build_estimator, load_data, load_gazetteer
from geostance.linear import FEATURES
from geostance.mentions import Gazetteer
from tests.conftest import ROOT

LABELED = sorted((ROOT / "data" / "labeled").glob("*.csv"))
DEFAULT = ROOT / "experiments" / "default.toml"


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_csv(ROOT / "data" / "countries.csv")


@pytest.mark.parametrize("path", LABELED, ids=lambda p: p.name)
def test_labeled_file_is_valid(path, gazetteer):
    frame = read_labeled([path], countries=gazetteer.countries)
    assert len(frame) > 0


def test_all_labeled_files_together_are_valid(gazetteer):
    read_labeled(LABELED, countries=gazetteer.countries)


@pytest.mark.parametrize("path", LABELED, ids=lambda p: p.name)
def test_every_mentioned_country_has_a_row_and_no_other(path, gazetteer):
    frame = read_labeled([path], countries=gazetteer.countries)
    mismatches = []
    for sentence_id, rows in frame.groupby("sentence_id"):
        found = set(gazetteer.targets(rows["text"].iloc[0]))
        if found != set(rows["target"]):
            mismatches.append((sentence_id, sorted(found), sorted(rows["target"])))
    assert mismatches == []


def test_default_model_matches_committed_config_and_data():
    experiment = load_experiment(DEFAULT)
    model = load_model(ROOT / "models" / experiment.name)
    recorded = {Path(f["path"]).as_posix(): f["sha256"] for f in model.metadata["data"]}
    current = {p: file_digest(ROOT / p) for p in recorded}
    assert recorded == current, "data changed since models/default was trained: run make run"
    assert model.metadata["config"] == json.loads(json.dumps(experiment.to_dict()))


@pytest.mark.slow
def test_default_model_is_reproducible(monkeypatch):
    monkeypatch.chdir(ROOT)
    experiment = load_experiment(DEFAULT)
    train, test, dev, _ = load_data(experiment, load_gazetteer(experiment))
    saved = load_model(ROOT / "models" / experiment.name)
    params = {k: v for k, v in saved.metadata["hyperparameters"].items() if k != "gazetteer"}
    estimator = clone(build_estimator({}, load_gazetteer(experiment))).set_params(
        **{k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    )
    refit = estimator.fit(train[FEATURES], train["stance"])
    # The saved weights, read without scikit-learn, give the refitted estimator's probabilities.
    rows = pd.concat([test, dev])
    difference = refit.predict_proba(rows[FEATURES]) - saved.estimator.predict_proba(rows[FEATURES])
    assert np.abs(difference).max() < 1e-9


def test_default_report_matches_model():
    metrics = json.loads((ROOT / "reports" / "default" / "metrics.json").read_text())
    saved = json.loads((ROOT / "models" / "default" / "metadata.json").read_text())
    for key, evaluation in saved["metrics"].items():
        assert metrics["evaluations"][key]["macro_f1"] == evaluation["macro_f1"]


def test_data_card_counts_are_current():
    from geostance.data import describe

    card = (ROOT / "data" / "README.md").read_text()
    block = card.split("<!-- counts:start -->\n")[1].split("<!-- counts:end -->")[0]
    assert block == describe(read_labeled(LABELED)), "regenerate with geostance describe"


@pytest.mark.parametrize("held_out", ["test", "dev"])
def test_no_held_out_sentence_has_a_near_duplicate_in_training(held_out):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    frame = read_labeled(LABELED).drop_duplicates("sentence_id")
    train, held = frame[frame["split"] == "train"], frame[frame["split"] == held_out]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2)).fit(frame["text"])
    similarity = cosine_similarity(
        vectorizer.transform(held["text"]), vectorizer.transform(train["text"])
    )
    assert len(held) and similarity.max() < 0.7


@pytest.mark.parametrize(
    "experiment, key, metric",
    [
        ("default", "test", "macro_f1"),
        ("default", "cv", "macro_f1"),
        ("semeval2016", "test", "f_avg"),
    ],
)
def test_readme_quotes_the_committed_reports(experiment, key, metric):
    metrics = json.loads((ROOT / "reports" / experiment / "metrics.json").read_text())
    figure = f"{100 * metrics['evaluations'][key][metric]:.1f}"
    assert figure in (ROOT / "README.md").read_text(), (
        f"README does not quote {experiment} {key} {metric} = {figure}"
    )
