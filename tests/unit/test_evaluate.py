import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from geostance.evaluate import out_of_fold, score
from geostance.model import StanceClassifier

GOLD = ["favor", "favor", "favor", "against", "against", "neutral", "neutral", "neutral"]
PRED = ["favor", "favor", "against", "against", "neutral", "neutral", "neutral", "favor"]


def test_metrics_match_hand_computation():
    # favor: tp 2, fp 1, fn 1 -> F1 2/3; against: tp 1, fp 1, fn 1 -> 1/2; neutral: tp 2, fp 1, fn 1 -> 2/3
    result = score(GOLD, PRED, n_boot=0)
    assert result["per_class"]["favor"]["f1"] == pytest.approx(2 / 3)
    assert result["per_class"]["against"]["f1"] == pytest.approx(1 / 2)
    assert result["f_avg"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert result["accuracy"] == pytest.approx(5 / 8)
    assert result["n"] == 8


def test_metrics_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    gold = rng.choice(["favor", "against", "neutral"], 300)
    pred = np.where(rng.random(300) < 0.6, gold, rng.choice(["favor", "against", "neutral"], 300))
    result = score(gold, pred, n_boot=0)
    assert result["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))
    assert result["f_avg"] == pytest.approx(
        f1_score(gold, pred, labels=["favor", "against"], average="macro")
    )
    assert result["accuracy"] == pytest.approx(accuracy_score(gold, pred))


def test_f_avg_ignores_neutral_f1():
    perfect_neutral = score(
        ["neutral", "favor", "against"], ["neutral", "against", "favor"], n_boot=0
    )
    assert perfect_neutral["f_avg"] == 0.0
    assert perfect_neutral["macro_f1"] == pytest.approx(1 / 3)


def test_bootstrap_interval_brackets_point_and_is_seeded():
    gold = GOLD * 10
    pred = PRED * 10
    groups = [i // 2 for i in range(len(gold))]
    a = score(gold, pred, groups=groups, n_boot=200, seed=1)
    b = score(gold, pred, groups=groups, n_boot=200, seed=1)
    lo, hi = a["ci95"]["macro_f1"]
    assert lo <= a["macro_f1"] <= hi and lo < hi
    assert a["ci95"] == b["ci95"]


def test_strata_tables():
    result = score(GOLD, PRED, strata={"target": ["A"] * 4 + ["B"] * 4}, n_boot=0)
    assert result["per_target"]["A"]["n"] == 4
    # A: gold f f f a / pred f f a a -> accuracy 3/4
    assert result["per_target"]["A"]["accuracy"] == pytest.approx(3 / 4)


def test_cv_never_splits_a_sentence(labeled, gazetteer):
    oof = out_of_fold(StanceClassifier(gazetteer=gazetteer), labeled, folds=3, repeats=2, seed=0)
    assert len(oof) == 2 * len(labeled)
    # Every row is predicted exactly once per repeat.
    assert (oof.groupby("repeat").size() == len(labeled)).all()
    # All rows of a sentence are predicted by the model of one fold.
    assert (oof.groupby(["repeat", "sentence_id"])["fold"].nunique() == 1).all()
    assert oof.groupby("repeat")["fold"].nunique().tolist() == [3, 3]


def test_cv_results_do_not_depend_on_jobs(labeled, gazetteer):
    model = StanceClassifier(gazetteer=gazetteer)
    one = out_of_fold(model, labeled, folds=3, repeats=1, seed=4, jobs=1)
    two = out_of_fold(model, labeled, folds=3, repeats=1, seed=4, jobs=2)
    pd.testing.assert_frame_equal(one, two)


def test_calibration_hand_computed():
    from geostance.evaluate import calibration

    proba = pd.DataFrame(
        {"favor": [0.9, 0.6, 0.2], "against": [0.05, 0.3, 0.7], "neutral": [0.05, 0.1, 0.1]}
    )
    result = calibration(["favor", "against", "against"], proba, bins=2)
    # Brier: (0.01 + 0.0025 + 0.0025) + (0.36 + 0.49 + 0.01) + (0.04 + 0.09 + 0.01), over 3 rows
    assert result["brier"] == pytest.approx((0.015 + 0.86 + 0.14) / 3)
    # All three top probabilities (0.9, 0.6, 0.7) fall in the upper bin: accuracy 2/3,
    # confidence 0.7333 -> ECE = |2/3 - 0.7333|
    assert result["ece"] == pytest.approx(abs(2 / 3 - (0.9 + 0.6 + 0.7) / 3))
    assert [b["count"] for b in result["bins"]] == [3]


def test_temperature_scaling_fixes_overconfidence():
    from geostance.evaluate import calibration, fit_temperature, with_temperature

    rng = np.random.default_rng(0)
    gold = rng.choice(["favor", "against", "neutral"], 2000)
    # Right 60% of the time but always 95% sure: overconfident.
    predicted = np.where(
        rng.random(2000) < 0.6, gold, rng.choice(["favor", "against", "neutral"], 2000)
    )
    proba = pd.DataFrame(
        {
            label: np.where(predicted == label, 0.95, 0.025)
            for label in ["favor", "against", "neutral"]
        }
    )
    temperature = fit_temperature(gold, proba)
    assert temperature > 1
    assert (
        calibration(gold, with_temperature(proba, temperature))["ece"]
        < calibration(gold, proba)["ece"] / 3
    )
