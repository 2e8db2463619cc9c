"""The hostile-input pass (issue 13): every case that lost data, answered wrongly, hung or
printed a traceback, each pinned by a test. The table in tests/HOSTILE.md maps case -> test."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from geostance.errors import ConfigError
from tests.conftest import FIXTURES, ROOT, snapshot
from tests.integration.test_cli import one_error_line, run


def refused(capsys, *argv, message: str) -> None:
    status, _, err = run(capsys, *argv)
    assert status == 2 and message in err, err
    one_error_line(err)


# --- 1. evaluate --out never replaces what it did not write -------------------------------


def test_evaluate_out_refuses_a_foreign_folder(trained, tmp_path, capsys):
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    refused(
        capsys,
        "evaluate", "--model", trained["model"], "--data", FIXTURES / "labeled.csv",
        "--out", folder,
        message="a folder geostance did not write",
    )  # fmt: skip
    assert (folder / "keep.txt").read_text() == "x"


def test_evaluate_out_refuses_a_model_folder_and_a_file(trained, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(trained["model"], model)
    before = snapshot(model)
    refused(
        capsys,
        "evaluate", "--model", model, "--data", FIXTURES / "labeled.csv", "--out", model,
        message="is a geostance model, not a report folder",
    )  # fmt: skip
    assert snapshot(model) == before
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    refused(
        capsys,
        "evaluate", "--model", model, "--data", FIXTURES / "labeled.csv", "--out", file,
        message="exists and is not a folder",
    )  # fmt: skip
    assert file.read_text() == "mine"


def test_evaluate_out_may_replace_an_earlier_report(trained, tmp_path, capsys):
    out = tmp_path / "rep"
    for _ in range(2):
        status, _, err = run(
            capsys,
            "evaluate", "--model", trained["model"], "--data", FIXTURES / "labeled.csv",
            "--out", out,
        )  # fmt: skip
        assert status == 0, err
    assert (out / "report.md").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


# --- 2. experiment names are one plain path component --------------------------------------


@pytest.mark.parametrize("name", ["", ".", "..", "../../tmp/x", "/tmp/abs", "a/b", 5, True])
def test_experiment_name_is_checked_before_training(tmp_path, name):
    from geostance.config import load_experiment

    config = tmp_path / "exp.toml"
    config.write_text(
        f"name = {json.dumps(name)}\n[data]\ntrain = [{json.dumps(str(FIXTURES / 'labeled.csv'))}]\n"
    )
    with pytest.raises(ConfigError, match="name must be"):
        load_experiment(config)


# --- 3. outputs never replace an input or each other ---------------------------------------


def test_classify_output_cannot_be_the_input_or_the_summary(trained, tmp_path, capsys):
    source = tmp_path / "c.csv"
    source.write_text("id,text\n1,Russia failed again.\n")
    before = source.read_bytes()
    refused(
        capsys, "classify", "--model", trained["model"], "--input", source, "--output", source,
        message="is the input",
    )  # fmt: skip
    assert source.read_bytes() == before
    same = tmp_path / "x.csv"
    refused(
        capsys,
        "classify", "--model", trained["model"], "--input", source, "--output", same,
        "--summary", same,
        message="are the same file",
    )  # fmt: skip
    assert not same.exists()


def test_predict_output_cannot_be_the_input(trained, tmp_path, capsys):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("text,target\nRussia failed again.,Russia\n")
    before = pairs.read_bytes()
    refused(
        capsys, "predict", "--model", trained["model"], "--input", pairs, "--output", pairs,
        message="is the input",
    )  # fmt: skip
    assert pairs.read_bytes() == before


# --- 4. model and report come from one run ---------------------------------------------------


def test_a_second_training_of_the_same_name_is_refused_while_one_runs(trained, tmp_path, capsys):
    from geostance.outputs import experiment_lock

    models, reports = tmp_path / "models", tmp_path / "reports"
    with experiment_lock(models, "tiny"):
        refused(
            capsys,
            "train", "--config", FIXTURES / "tiny.toml", "--models-dir", models,
            "--reports-dir", reports,
            message="another geostance run is writing tiny",
        )  # fmt: skip
    assert not (models / "tiny").exists() and not reports.exists()


def test_a_swap_killed_between_renames_is_finished_by_the_next_run(tmp_path, monkeypatch):
    from geostance import outputs

    model, report = tmp_path / "models" / "x", tmp_path / "reports" / "x"
    for folder, name, text in ((model, "metadata.json", '{"schema": "geostance-model/1"}'),
                               (report, "report.md", "old")):  # fmt: skip
        folder.mkdir(parents=True)
        (folder / name).write_text(text)
    (report / "metrics.json").write_text("{}")
    real_replace, calls = os.replace, []

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # model moved aside and replaced; die before the report's turn
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt), outputs.publish({model: "model", report: "report"}) as s:
        (s[model] / "metadata.json").write_text('{"schema": "geostance-model/1", "run": 2}')
        (s[report] / "report.md").write_text("new")
        (s[report] / "metrics.json").write_text("{}")
    monkeypatch.setattr(outputs.os, "replace", real_replace)
    assert (report / "report.md").read_text() == "old"  # half done: model new, report old
    outputs.recover(report.parent.parent / "models")
    assert (report / "report.md").read_text() == "new"
    assert json.loads((model / "metadata.json").read_text())["run"] == 2
    assert not list(model.parent.glob(".geostance-swap-*"))


# --- 5-6. silent wrong answers ----------------------------------------------------------------


def test_ragged_csv_row_is_an_error_not_a_shifted_column(trained, tmp_path, capsys):
    docs = tmp_path / "r.csv"
    docs.write_text("id,text\n1,Russia failed again.,extra\n2,Beijing kept its word.\n")
    refused(
        capsys, "classify", "--model", trained["model"], "--input", docs, "--output", "-",
        message="r.csv:2: 3 fields but the header has 2",
    )  # fmt: skip
    pairs = tmp_path / "p.csv"
    pairs.write_text("text,target\nRussia failed again.,Russia,extra\n")
    refused(
        capsys, "predict", "--model", trained["model"], "--input", pairs, "--output", "-",
        message="p.csv:2: 3 fields",
    )  # fmt: skip


def test_predict_writes_the_format_its_suffix_names(trained, tmp_path, capsys):
    pairs = tmp_path / "p.csv"
    pairs.write_text("text,target\nRussia failed again.,Russia\n")
    out = tmp_path / "scored.parquet"
    status, _, err = run(capsys, "predict", "--model", trained["model"], "--input", pairs,
                         "--output", out)  # fmt: skip
    assert status == 0, err
    assert out.read_bytes()[:4] == b"PAR1"
    assert list(pd.read_parquet(out)["target"]) == ["Russia"]


def test_min_confidence_nan_and_jobs_beyond_the_cpus_are_refused(trained, capsys):
    refused(capsys, "classify", "--model", trained["model"], "Russia failed.",
            "--min-confidence", "nan", message="not nan")  # fmt: skip
    refused(capsys, "classify", "--model", trained["model"], "--input", "-", "--jobs", "100000",
            message="--jobs")  # fmt: skip


def test_nul_bytes_late_in_a_csv_and_the_true_decode_offset(trained, tmp_path, capsys):
    late = tmp_path / "late.csv"
    late.write_bytes(b"text\n" + b"Russia failed again.\n" * 5000 + b"bad\x00row\n")
    refused(capsys, "classify", "--model", trained["model"], "--input", late,
            "--output", "-", message="NUL byte at offset 105008")  # fmt: skip
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"text\n" + b"Russia failed again.\n" * 5000 + b"caf\xe9\n")
    refused(capsys, "classify", "--model", trained["model"], "--input", broken,
            "--output", "-", message="broken.csv:5002: not UTF-8 text (invalid byte at offset 105008)")  # fmt: skip


def test_train_data_option_is_refused_for_labeled_experiments(tmp_path, capsys):
    refused(capsys, "train", "--config", FIXTURES / "tiny.toml", "--data", tmp_path,
            "--models-dir", tmp_path / "m", "--reports-dir", tmp_path / "r",
            message="--data only applies to TweetEval")  # fmt: skip
    assert not (tmp_path / "m" / "tiny").exists()


# --- 7-8. no hang, bounded memory -------------------------------------------------------------


@pytest.fixture
def deadline():
    """Fail instead of hanging: a quadratic path on these inputs would take hours."""

    def expire(signum, frame):
        raise TimeoutError("still running after 60 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("text", ["!" * 1_000_000, "U.S. " * 200_000, "Russia." * 140_000])
def test_sentence_splitting_is_linear_on_pathological_runs(deadline, text):
    from geostance.mentions import split_sentences

    assert "".join(split_sentences(text)).replace(" ", "") == text.replace(" ", "")


def test_a_huge_document_gets_a_clear_cap(trained, tmp_path, capsys, deadline):
    huge = tmp_path / "huge.txt"
    huge.write_bytes(b"Russia failed again. " * 800_000)  # 16.8 MB on one line
    refused(capsys, "classify", "--model", trained["model"], "--input", huge, "--output", "-",
            message="longer than 1,000,000 bytes")  # fmt: skip
    refused(capsys, "classify", "--model", trained["model"], "--file", huge,
            message="longer than 1,000,000 bytes")  # fmt: skip


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
def test_dev_zero_is_binary_not_a_memory_error(trained, capsys, deadline):
    refused(capsys, "classify", "--model", trained["model"], "--file", "/dev/zero",
            message="longer than")  # fmt: skip
    refused(capsys, "classify", "--model", trained["model"], "--input", "/dev/zero",
            "--output", "-", message="longer than")  # fmt: skip


# --- tracebacks that became one line ----------------------------------------------------------


def test_a_non_utf8_file_name_in_an_input_folder(trained, tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("Russia failed again.")
    status, out, err = run(capsys, "classify", "--model", trained["model"], "--input", folder,
                           "--output", "-", "--quiet")  # fmt: skip
    assert status == 0, err
    assert "caf\ufffd.txt" in out


def test_evaluate_on_a_header_only_file(trained, tmp_path, capsys):
    empty = tmp_path / "e.csv"
    empty.write_text("sentence_id,text,target,stance,source\n")
    refused(capsys, "evaluate", "--model", trained["model"], "--data", empty,
            "--out", tmp_path / "r", message="no labeled rows")  # fmt: skip


@pytest.mark.parametrize(
    "body, message",
    [
        ('data = "x"', "[data] must be a table"),
        ('variants = "abc"', "variants must be an array of tables"),
        ("seed = true", "seed must be int"),
        ("[evaluation]\nbootstrap = -5", "bootstrap must be 0"),
        ("[evaluation]\nlearning_curve = [0.5, 2]", "learning_curve fractions"),
        ("[evaluation]\njobs = 0", "jobs must be"),
    ],
)
def test_bad_config_values_are_one_line(tmp_path, capsys, body, message):
    config = tmp_path / "bad.toml"
    train = f"[data]\ntrain = [{json.dumps(str(FIXTURES / 'labeled.csv'))}]\n"
    config.write_text(body + "\n" + ("" if body.startswith("data") else train))
    refused(capsys, "train", "--config", config, "--models-dir", tmp_path / "m",
            "--reports-dir", tmp_path / "r", message=message)  # fmt: skip


def test_metadata_with_a_malformed_versions_field(trained, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(trained["model"], model)
    metadata = json.loads((model / "metadata.json").read_text())
    metadata["versions"] = "1.9.1"
    (model / "metadata.json").write_text(json.dumps(metadata))
    status, _, err = run(capsys, "classify", "--model", model, "Russia failed.")
    assert status == 0 and "Traceback" not in err  # versions are a record, not a check


# --- leftovers ----------------------------------------------------------------------------------


def test_a_full_disk_leaves_no_temporary_file(trained, tmp_path, capsys, monkeypatch):
    from geostance import batch

    def full(self, frame):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(batch.TableWriter, "_write", full)
    docs = tmp_path / "d.txt"
    docs.write_text("Russia failed again.\n")
    out = tmp_path / "out"
    out.mkdir()
    refused(capsys, "classify", "--model", trained["model"], "--input", docs,
            "--output", out / "m.csv", message=f"{out / 'm.csv'}: cannot write")  # fmt: skip
    assert list(out.iterdir()) == []


def test_an_invalid_summary_leaves_no_temporary_file(trained, tmp_path, capsys):
    docs = tmp_path / "d.txt"
    docs.write_text("Russia failed again.\n")
    out = tmp_path / "out"
    out.mkdir()
    refused(capsys, "classify", "--model", trained["model"], "--input", docs,
            "--output", out / "m.csv", "--summary", out / "s.xlsx",
            message="cannot tell the output format")  # fmt: skip
    assert list(out.iterdir()) == []


def test_sigterm_removes_the_temporary_output(trained, tmp_path):
    docs = tmp_path / "d.txt"
    docs.write_text("Russia failed again. Beijing kept its word.\n" * 200_000)
    out = tmp_path / "out"
    out.mkdir()
    geostance = Path(sys.executable).with_name("geostance")
    process = subprocess.Popen(
        [geostance, "classify", "--model", trained["model"], "--input", docs,
         "--output", out / "m.csv", "--quiet", "--chunk-size", "50"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    for _ in range(600):  # wait until the temporary output exists, then stop the run
        if list(out.iterdir()) or process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    assert list(out.iterdir()) == []


def test_stale_temporaries_are_swept_fresh_ones_kept(tmp_path):
    from geostance.outputs import TEMP_PREFIX, sweep

    old, new, mine = (tmp_path / f"{TEMP_PREFIX}a", tmp_path / f"{TEMP_PREFIX}b", tmp_path / "c")
    for path in (old, new, mine):
        path.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(mine, (two_hours_ago, two_hours_ago))
    sweep(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new.name, mine.name])


# --- newcomer friction ------------------------------------------------------------------------


def test_a_favor_against_tie_is_mixed_with_evidence():
    from geostance.classify import summarise

    mentions = pd.DataFrame(
        {
            "document": [0, 0],
            "sentence": [1, 2],
            "text": ["a", "b"],
            "target": ["Russia", "Russia"],
            "stance": ["favor", "against"],
            "p_favor": [0.4, 0.3],
            "p_against": [0.35, 0.36],
            "p_neutral": [0.25, 0.34],
        }
    )
    row = summarise(mentions).iloc[0]
    assert row["stance"] == "mixed" and row["evidence"] == "1;2"  # surest first


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::ResourceWarning", "ignore::UserWarning"
)
def test_the_readme_dask_example_runs_as_written(trained, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Dask") :]
    code = section[section.index("```python") + len("```python") : section.index("```\n", 10)]
    (tmp_path / "op-eds").mkdir()
    pd.DataFrame(
        {"url": ["a", "b"], "body": ["Russia failed again.", "Beijing kept its word."]}
    ).to_parquet(tmp_path / "op-eds" / "part-0.parquet")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GEOSTANCE_MODEL", str(trained["model"]))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    scope["client"].close()
    written = pd.read_parquet(tmp_path / "mentions")
    assert sorted(written["target"]) == ["China", "Russia"]
