import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate

from geostance.mentions import TARGET_TOKEN
from geostance.model import StanceClassifier, top_features


@pytest.fixture
def xy(labeled):
    return labeled[["text", "target"]], labeled["stance"]


def test_clone_and_params(gazetteer):
    model = StanceClassifier(gazetteer=gazetteer, C=3.0, strategy="per_target")
    copy = clone(model)
    assert copy.get_params()["C"] == 3.0 and copy.strategy == "per_target"
    assert copy.set_params(C=0.5).C == 0.5
    assert copy.gazetteer == gazetteer


def test_fit_predict_proba_and_classes(xy, gazetteer):
    X, y = xy
    model = StanceClassifier(gazetteer=gazetteer).fit(X, y)
    assert list(model.classes_) == ["against", "favor", "neutral"]
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(X) == model.classes_[proba.argmax(axis=1)]).all()
    assert model.score(X, y) > 0.8  # training fit of a separable fixture


def test_masking_makes_stance_transfer_across_countries(xy, gazetteer):
    X, y = xy
    model = StanceClassifier(gazetteer=gazetteer).fit(X, y)
    assert model.prepare(pd.DataFrame({"text": ["Moscow failed."], "target": ["Russia"]}))[0] == (
        f"{TARGET_TOKEN} failed."
    )
    # "Beijing" never appears with "failed" in the fixture, yet the cue transfers through masking.
    probe = pd.DataFrame(
        {"text": ["Beijing has failed again and acted in bad faith."], "target": ["China"]}
    )
    assert model.predict(probe)[0] == "against"


def test_per_target_routes_unseen_targets_to_pooled_model(xy, gazetteer):
    X, y = xy
    model = StanceClassifier(gazetteer=gazetteer, strategy="per_target").fit(X, y)
    assert set(model.target_pipelines_) == set(X["target"])
    unseen = pd.DataFrame(
        {"text": ["Cooperation with Narnia is a welcome success."], "target": ["Narnia"]}
    )
    np.testing.assert_allclose(
        model.predict_proba(unseen), model.pipeline_.predict_proba(model.prepare(unseen))
    )


def test_single_label_target_predicts_that_label(gazetteer):
    X = pd.DataFrame(
        {
            "text": ["Russia won.", "Russia lost.", "India met."],
            "target": ["Russia", "Russia", "India"],
        }
    )
    model = StanceClassifier(gazetteer=gazetteer, strategy="per_target").fit(
        X, ["favor", "against", "neutral"]
    )
    assert model.predict(X.iloc[[2]])[0] == "neutral"


def test_grid_search_and_cross_validate(xy, gazetteer, labeled):
    X, y = xy
    search = GridSearchCV(
        StanceClassifier(gazetteer=gazetteer),
        {"C": [0.1, 10.0], "strategy": ["shared", "per_target"]},
        cv=GroupKFold(n_splits=3),
    )
    search.fit(X, y, groups=labeled["sentence_id"])
    assert set(search.best_params_) == {"C", "strategy"}
    scores = cross_validate(
        StanceClassifier(gazetteer=gazetteer), X, y, cv=GroupKFold(3), groups=labeled["sentence_id"]
    )
    assert len(scores["test_score"]) == 3


def test_bad_inputs_raise(gazetteer, xy):
    X, y = xy
    with pytest.raises(ValueError, match="strategy"):
        StanceClassifier(strategy="magic").fit(X, y)
    with pytest.raises(ValueError, match="'text' and 'target'"):
        StanceClassifier().fit(pd.DataFrame({"text": ["a"]}), ["favor"])
    with pytest.raises(ValueError, match="two stance labels"):
        StanceClassifier().fit(X.iloc[:2], ["favor", "favor"])


def test_top_features_rank_by_weight(xy, gazetteer):
    X, y = xy
    model = StanceClassifier(gazetteer=gazetteer).fit(X, y)
    top = top_features(model, 5)
    assert set(top) == {"against", "favor", "neutral"}
    weights = [w for _, w in top["against"]]
    assert weights == sorted(weights, reverse=True)
