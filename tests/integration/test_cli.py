"""The CLI end to end on the fixture: train, predict, classify, evaluate, and every bad input."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from geostance import load_model
from geostance.cli import main
from tests.conftest import FIXTURES, snapshot


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_train_writes_model_and_report(trained):
    model, report = trained["model"], trained["report"]
    assert {p.name for p in model.iterdir()} == {"model.json", "weights.npz", "metadata.json", "MODEL_CARD.md"}
    metadata = json.loads((model / "metadata.json").read_text())
    assert metadata["experiment"] == "tiny"
    assert metadata["data"][0]["sha256"] and metadata["data"][0]["rows"] == 40
    assert set(metadata["versions"]) >= {"python", "scikit-learn", "numpy", "pandas", "geostance"}
    assert metadata["hyperparameters"]["C"] == 5.0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["experiment"] == "tiny"
    for key in ("cv", "test"):
        assert set(metrics["evaluations"][key]) >= {
            "macro_f1",
            "f_avg",
            "accuracy",
            "n",
            "per_class",
            "per_target",
            "ci95",
        }
    assert metrics["evaluations"]["test"]["n"] == 9
    assert set(metrics["variants"]) == {"majority", "per-country"}
    # The model card and metadata carry the same figures as the report.
    assert metadata["metrics"]["cv"]["macro_f1"] == metrics["evaluations"]["cv"]["macro_f1"]
    text = (report / "report.md").read_text()
    assert f"{100 * metrics['evaluations']['cv']['macro_f1']:.1f}" in text
    for figure in ("confusion.png", "per_target_f1.png", "learning_curve.png", "top_features.png"):
        assert (report / figure).stat().st_size > 1000 and f"({figure})" in text


def test_retraining_reproduces_predictions(trained, tmp_path, capsys, labeled):
    status, _, _ = run(
        capsys,
        "train",
        "--config",
        FIXTURES / "tiny.toml",
        "--models-dir",
        tmp_path,
        "--reports-dir",
        tmp_path / "r",
        "--quiet",
    )
    assert status == 0
    first, second = load_model(trained["model"]), load_model(tmp_path / "tiny")
    np.testing.assert_array_equal(
        first.predict_proba(labeled).to_numpy(), second.predict_proba(labeled).to_numpy()
    )


def test_predict_keeps_columns_and_adds_probabilities(trained, tmp_path, capsys):
    source = tmp_path / "in.csv"
    pd.DataFrame(
        {
            "id": [1, 2],
            "text": ["Russia failed again.", "Officials from India met."],
            "target": ["Russia", "India"],
        }
    ).to_csv(source, index=False)
    status, _, err = run(
        capsys,
        "predict",
        "--model",
        trained["model"],
        "--input",
        source,
        "--output",
        tmp_path / "out.csv",
    )
    assert status == 0, err
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == [
        "id",
        "text",
        "target",
        "stance",
        "p_favor",
        "p_against",
        "p_neutral",
    ]
    assert list(out["stance"]) == ["against", "neutral"]
    np.testing.assert_allclose(
        out[["p_favor", "p_against", "p_neutral"]].sum(axis=1), 1.0, atol=1e-3
    )


def test_predict_stdin_to_stdout(trained, capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(b"text,target\nRussia failed again.,Russia\n"))
    )
    status, out, _ = run(
        capsys, "predict", "--model", trained["model"], "--input", "-", "--output", "-"
    )
    assert status == 0 and out.splitlines()[0] == "text,target,stance,p_favor,p_against,p_neutral"


def test_classify_formats(trained, capsys, monkeypatch):
    monkeypatch.setenv("GEOSTANCE_MODEL", str(trained["model"]))
    text = "Pakistan wisely deepened ties while India failed again. Officials from Moscow met on Tuesday."
    status, out, _ = run(capsys, "classify", "--format", "json", text)
    assert status == 0
    result = json.loads(out)
    assert [s["index"] for s in result["sentences"]] == [1, 2]
    assert [m["target"] for m in result["sentences"][0]["mentions"]] == ["Pakistan", "India"]
    mention = result["sentences"][0]["mentions"][0]
    assert set(mention) == {"target", "stance", "p_favor", "p_against", "p_neutral"}
    summary = {s["target"]: s for s in result["summary"]}
    assert set(summary) == {"Pakistan", "India", "Russia"}
    assert summary["Russia"]["mentions"] == 1 and summary["Russia"]["stance"] == "neutral"
    status, out, _ = run(capsys, "classify", "--format", "csv", text)
    assert out.splitlines()[0] == "index,text,target,stance,p_favor,p_against,p_neutral"
    status, out, _ = run(capsys, "classify", text)
    assert "summary:" in out and "Pakistan" in out


def test_python_api_string_in_one_result_list_in_list(trained):
    model = load_model(trained["model"])
    one = model.classify("Russia failed again.")
    many = model.classify(["Russia failed again.", "No country here."])
    assert one.summary[0]["target"] == "Russia"
    assert len(many) == 2 and many[1].summary == []
    frame = pd.DataFrame({"text": ["Russia failed again."], "target": ["Russia"]})
    assert list(model.predict_proba(frame).columns) == ["favor", "against", "neutral"]
    assert model.predict(frame).iloc[0] == "against"


def test_evaluate_writes_report(trained, tmp_path, capsys):
    status, out, _ = run(
        capsys,
        "evaluate",
        "--model",
        trained["model"],
        "--data",
        FIXTURES / "labeled.csv",
        "--out",
        tmp_path / "rep",
    )
    assert status == 0 and "macro-F1" in out
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["evaluations"]["data"]["n"] == 40


def one_error_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geostance: error: "), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"sentence,country\nRussia won,Russia\n", "missing column"),
        (b"text,target\n,Russia\n", ":2: empty text"),
        (b"\x00\x01\x02\x03", "binary"),
    ],
)
def test_predict_bad_input(trained, tmp_path, capsys, content, message):
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    out = tmp_path / "out.csv"
    status, _, err = run(
        capsys, "predict", "--model", trained["model"], "--input", source, "--output", out
    )
    assert status == 2 and message in err
    one_error_line(err)
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_missing_input_and_missing_model(trained, tmp_path, capsys):
    status, _, err = run(
        capsys,
        "predict",
        "--model",
        trained["model"],
        "--input",
        tmp_path / "absent.csv",
        "--output",
        "-",
    )
    assert status == 2 and "cannot read" in err
    one_error_line(err)
    status, _, err = run(capsys, "classify", "--model", tmp_path / "nomodel", "Russia won.")
    assert status == 2 and "no model directory" in err
    one_error_line(err)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["classify"], "give TEXT"),
        (["classify", "   "], "empty text"),
        (["classify", "--file", "/nonexistent/x.txt"], "cannot read"),
        (["classify", "--format", "xml", "Russia"], "xml"),
        (["train", "--config", "/nonexistent.toml"], "no such config file"),
        (["frobnicate"], "No such command"),
    ],
)
def test_usage_errors(trained, capsys, argv, message):
    status, _, err = run(capsys, *argv)
    assert status == 2 and message in err
    one_error_line(err)


def test_failed_training_leaves_existing_model_and_report(trained, tmp_path, capsys):
    models, reports = tmp_path / "models", tmp_path / "reports"
    shutil.copytree(trained["model"], models / "tiny")
    shutil.copytree(trained["report"], reports / "tiny")
    before = snapshot(models, reports)
    bad_data = tmp_path / "bad.csv"
    bad_data.write_text("sentence_id,text,target,stance,source\ns1,Russia won.,Russia,maybe,t\n")
    config = tmp_path / "tiny.toml"
    config.write_text(
        (FIXTURES / "tiny.toml").read_text().replace("tests/fixtures/labeled.csv", str(bad_data))
    )
    status, _, err = run(
        capsys, "train", "--config", config, "--models-dir", models, "--reports-dir", reports
    )
    assert status == 2 and "stance 'maybe'" in err
    assert snapshot(models, reports) == before


def test_publish_keeps_old_contents_on_failure(tmp_path):
    from geostance.outputs import publish

    target = tmp_path / "out"
    target.mkdir()
    (target / "report.md").write_text("old")
    (target / "metrics.json").write_text("{}")
    with pytest.raises(RuntimeError), publish({target: "report"}) as staged:
        (staged[target] / "report.md").write_text("new")
        raise RuntimeError("interrupted")
    assert (target / "report.md").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    with publish({target: "report"}) as staged:
        (staged[target] / "report.md").write_text("new")
    assert (target / "report.md").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_tweeteval_experiment_through_the_cli(tmp_path, capsys):
    """The benchmark path on a tiny TweetEval-layout folder written here: train+val, test."""
    from tests.unit.test_data import make_tweeteval

    favor = [
        "We must protect every life #SemST",
        "Life is sacred and precious #SemST",
        "Defend the unborn #SemST",
    ]
    against = [
        "My body my choice #SemST",
        "Keep abortion legal and safe #SemST",
        "Her choice not yours #SemST",
    ]
    none = [
        "Lunch was great today #SemST",
        "Traffic is terrible again #SemST",
        "Watching the game #SemST",
    ]
    for target in ("abortion", "climate"):
        make_tweeteval(
            tmp_path / "data",
            target,
            "train",
            favor + against + none,
            ["2"] * 3 + ["1"] * 3 + ["0"] * 3,
        )
        make_tweeteval(
            tmp_path / "data", target, "val", favor[:2] + against[:2], ["2", "2", "1", "1"]
        )
        make_tweeteval(
            tmp_path / "data",
            target,
            "test",
            ["Protect life #SemST", "My choice #SemST"],
            ["2", "1"],
        )
    config = tmp_path / "bench.toml"
    config.write_text(
        '[data]\nformat = "tweeteval"\npath = "nowhere"\ngazetteer = ""\n'
        '[model]\nstrategy = "augmented"\nsplit_hashtags = true\nmask_targets = false\n'
        "[evaluation]\nfolds = 2\nrepeats = 1\nbootstrap = 20\nlearning_curve = []\n"
        '[search]\nmetric = "f_avg"\nfolds = 2\nprefer_small = "C"\ngrid = { C = [0.01, 1.0, 10.0] }\n'
        '[[references]]\nname = "someone"\nvalue = 50.0\n'
    )
    status, out, err = run(
        capsys,
        "train",
        "--config",
        config,
        "--data",
        tmp_path / "data",
        "--models-dir",
        tmp_path / "m",
        "--reports-dir",
        tmp_path / "r",
        "--quiet",
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "r" / "bench" / "metrics.json").read_text())
    test = metrics["evaluations"]["test"]
    assert test["n"] == 4 and set(test["per_target"]) == {"abortion", "climate"}
    per_class = test["per_class"]
    assert test["f_avg"] == pytest.approx(
        (per_class["favor"]["f1"] + per_class["against"]["f1"]) / 2
    )
    search = metrics["search"]
    assert len(search["candidates"]) == 3
    # One-standard-error rule: the smallest C whose mean is within one SE of the best.
    best = max(search["candidates"], key=lambda c: c["mean"])
    near = [c for c in search["candidates"] if c["mean"] >= best["mean"] - best["std"] / 2**0.5]
    assert search["chosen_params"]["C"] == min(c["params"]["C"] for c in near)
    assert "| someone |" in (tmp_path / "r" / "bench" / "report.md").read_text()
    status, _, err = run(
        capsys,
        "train",
        "--config",
        config,
        "--data",
        tmp_path / "absent",
        "--models-dir",
        tmp_path / "m",
    )
    assert status == 2 and "no TweetEval stance folder" in err


def test_separate_test_file(tmp_path, capsys, labeled):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    labeled[labeled["split"] == "train"].drop(columns="split").to_csv(train, index=False)
    labeled[labeled["split"] == "test"].drop(columns="split").to_csv(test, index=False)
    config = tmp_path / "separate.toml"
    config.write_text(
        (FIXTURES / "tiny.toml")
        .read_text()
        .replace(
            'train = ["tests/fixtures/labeled.csv"]', f'train = ["{train}"]\ntest = ["{test}"]'
        )
        .replace('test_split = "test"\n', "")
    )
    status, _, err = run(
        capsys,
        "train",
        "--config",
        config,
        "--models-dir",
        tmp_path / "m",
        "--reports-dir",
        tmp_path / "r",
        "--quiet",
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "r" / "separate" / "metrics.json").read_text())
    assert metrics["evaluations"]["test"]["n"] == (labeled["split"] == "test").sum()
    assert metrics["data"]["train_rows"] == (labeled["split"] == "train").sum()
    assert [f["path"] for f in metrics["data"]["files"]][:2] == [str(train), str(test)]


def test_classify_reads_stdin_and_file(trained, tmp_path, capsys, monkeypatch):
    import io
    import sys

    text = "Russia failed again. Officials from India met."
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    status, from_stdin, _ = run(
        capsys, "classify", "--model", trained["model"], "--format", "csv", "-"
    )
    assert status == 0
    (tmp_path / "doc.txt").write_text(text)
    status, from_file, _ = run(
        capsys,
        "classify",
        "--model",
        trained["model"],
        "--format",
        "csv",
        "--file",
        tmp_path / "doc.txt",
    )
    assert status == 0 and from_file == from_stdin
    assert [line.split(",")[2] for line in from_file.splitlines()[1:]] == ["Russia", "India"]
