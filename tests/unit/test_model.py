import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_validate

from geostance.mentions import TARGET_TOKEN
from geostance.model import StanceClassifier


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
    prepared = model.prepare(pd.DataFrame({"text": ["Moscow failed."], "target": ["Russia"]}))
    assert prepared["text"][0] == f"{TARGET_TOKEN} failed."
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
    top = model.to_linear().top_features(5)
    assert set(top) == {"against", "favor", "neutral"}
    weights = [w for _, w in top["against"]]
    assert weights == sorted(weights, reverse=True)


def test_augmented_strategy_adds_a_feature_copy_per_target(xy, gazetteer):
    X, y = xy
    model = StanceClassifier(gazetteer=gazetteer, strategy="augmented").fit(X, y)
    features = model.pipeline_.named_steps["features"]
    names = model.to_linear().pooled.feature_names()
    targets = sorted(X["target"].unique())
    shared = len(names) // (1 + len(targets))
    assert features.transform(model.prepare(X)).shape[1] == len(names)
    assert names[shared].startswith(f"{targets[0]}::")
    # An unseen target has zeros in every target block: only shared weights apply.
    unseen = model.prepare(pd.DataFrame({"text": ["Narnia failed again."], "target": ["Narnia"]}))
    assert features.transform(unseen)[:, shared:].nnz == 0
    assert (
        model.predict(pd.DataFrame({"text": ["Narnia failed again."], "target": ["Narnia"]}))[0]
        == "against"
    )


def test_split_hashtags():
    model = StanceClassifier(split_hashtags=True, mask_targets=False)
    prepared = model.prepare(pd.DataFrame({"text": ["#StopTheWar now #go"], "target": ["x"]}))
    assert prepared["text"][0] == "#StopTheWar Stop The War now #go"


def test_liblinear_one_vs_rest(xy, gazetteer):
    X, y = xy
    model = StanceClassifier(gazetteer=gazetteer, solver="liblinear").fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)
    assert set(model.to_linear().top_features(3)) == {"against", "favor", "neutral"}
    with pytest.raises(ValueError, match="solver"):
        StanceClassifier(solver="sag").fit(X, y)


@pytest.mark.parametrize(
    "strategy, solver", [("shared", "lbfgs"), ("per_target", "liblinear"), ("augmented", "lbfgs")]
)
def test_explanations_add_up_to_the_decision_function(xy, gazetteer, strategy, solver):
    X, y = xy
    model = StanceClassifier(gazetteer=gazetteer, strategy=strategy, solver=solver).fit(X, y)
    labels = model.predict(X)
    full = model.explain(X, labels, k=None)
    top = model.explain(X, labels, k=3)
    for i in range(len(X)):
        route = model.target_pipelines_.get(X["target"].iloc[i], model.pipeline_)
        if isinstance(route, str):
            assert full[i] == []
            continue
        classifier = route.named_steps["classifier"]
        matrix = route.named_steps["features"].transform(model.prepare(X.iloc[[i]]))
        classes = list(classifier.classes_)
        decision = classifier.decision_function(matrix)
        c = classes.index(labels[i])
        expected = (
            decision[0, c] if decision.ndim == 2 else (decision[0] if c == 1 else -decision[0])
        )
        intercept = (
            classifier.estimators_[c].intercept_[0]
            if hasattr(classifier, "estimators_")
            else classifier.intercept_[c]
        )
        assert sum(v for _, v in full[i]) + intercept == pytest.approx(expected)
        assert top[i] == full[i][:3]
        assert [v for _, v in top[i]] == sorted((v for _, v in top[i]), reverse=True)


def test_temperature_keeps_labels_and_softens(xy, gazetteer):
    X, y = xy
    sharp = StanceClassifier(gazetteer=gazetteer).fit(X, y)
    soft = clone(sharp).set_params(temperature=3.0).fit(X, y)
    assert (sharp.predict(X) == soft.predict(X)).all()
    assert soft.predict_proba(X).max(axis=1).mean() < sharp.predict_proba(X).max(axis=1).mean()


@pytest.mark.parametrize("views", [("sentence", "clause"), ("sentence", "window", "left", "right")])
def test_target_scoped_views_clone_search_and_explain(xy, gazetteer, views):
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    X, y = xy
    model = StanceClassifier(gazetteer=gazetteer, views=views, window=3)
    assert clone(model).get_params()["views"] == views
    search = GridSearchCV(model, {"C": [1.0, 10.0]}, cv=2).fit(X, y)
    fitted = search.best_estimator_
    linear = fitted.to_linear()
    assert abs(linear.predict_proba(X) - fitted.predict_proba(X)).max() < 1e-9
    names = {n.split("__")[0] for n in linear.pooled.feature_names()}
    assert names == {"word", "char", *views} - {"sentence"}
    # Explanations still add up to the decision function, view blocks included.
    layer, labels = linear.pooled, fitted.predict(X)
    matrix = layer.features(linear.prepare(X))
    for i, explanation in enumerate(fitted.explain(X, labels, k=None)):
        row = list(layer.classes).index(labels[i])
        decision = matrix[i] @ layer.weights[row] + layer.intercepts[row]
        assert abs(sum(v for _, v in explanation) + layer.intercepts[row] - decision) < 1e-9


def test_view_texts_pick_the_target_clause_and_windows():
    from geostance.mentions import TARGET_TOKEN as T
    from geostance.mentions import view_text

    text = f"Seoul kept its word while {T} fired yet another missile, and Tokyo protested."
    assert view_text(text, "clause") == f" {T} fired yet another missile"
    assert view_text(text, "left", 2) == "word while"
    assert view_text(text, "right", 2) == "fired yet"
    assert view_text(f"{T} met {T} today", "window", 1) == f"{T} met zbreakz met {T} today"
    assert view_text("no target here", "window") == ""


def test_a_country_whose_context_view_is_empty_still_gets_its_own_model(xy, gazetteer, tmp_path):
    """Per-country models with context views: India's rows below all open with India, so its
    `left` view has no words; that block is empty instead of failing the fit, and the model
    saves, loads and predicts as the estimator does."""
    from geostance.artifacts import load_model, write_model

    X, y = xy
    india = pd.DataFrame(
        {"text": ["India failed again.", "India did well.", "India met Russia."] * 2,
         "target": ["India"] * 6}
    )  # fmt: skip
    X = pd.concat([X[X["target"] != "India"], india], ignore_index=True)
    y = np.concatenate([y[xy[0]["target"] != "India"], ["against", "favor", "neutral"] * 2])
    model = StanceClassifier(
        gazetteer=gazetteer, strategy="per_target", views=("sentence", "left", "right")
    ).fit(X, y)
    linear = model.to_linear()
    left = next(b for b in linear.per_target["India"].blocks if b.view == "left")
    assert left.terms == []
    assert abs(linear.predict_proba(X) - model.predict_proba(X)).max() < 1e-9
    write_model(tmp_path, linear, {}, "card")
    loaded = load_model(tmp_path).estimator
    assert abs(loaded.predict_proba(X) - model.predict_proba(X)).max() < 1e-9
