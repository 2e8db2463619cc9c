"""Batch classification: formats, chunking and jobs, explanations, uncertainty, Dask, bad input."""

import json

import pandas as pd
import pytest

from tests.integration.test_cli import one_error_line, run

DOCUMENTS = [
    "Pakistan wisely deepened ties while India failed again. Officials from Moscow met on Tuesday.",
    "Cooperation with China is a welcome success that brings real benefits.",
    "No country is named here at all.",
    "The reckless policy of Russia deserves blame. Islamabad acted in bad faith.",
] * 3


@pytest.fixture
def inputs(tmp_path):
    frame = pd.DataFrame({"id": [f"d{i}" for i in range(len(DOCUMENTS))], "body": DOCUMENTS})
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, text in enumerate(DOCUMENTS):
        (folder / f"{i:02d}.txt").write_text(text)
    frame.to_csv(tmp_path / "docs.csv", index=False)
    frame.to_json(tmp_path / "docs.jsonl", orient="records", lines=True)
    frame.to_parquet(tmp_path / "docs.parquet")
    (tmp_path / "docs.txt").write_text("\n".join(DOCUMENTS) + "\n")
    return tmp_path


def classify(capsys, model, source, out, *extra):
    status, _, err = run(
        capsys, "classify", "--model", model, "--input", source, "--output", out, "--quiet", *extra
    )
    assert status == 0, err
    return out


@pytest.mark.parametrize(
    "source, extra",
    [
        ("docs.csv", ["--text-column", "body", "--id-column", "id"]),
        ("docs.jsonl", ["--text-column", "body", "--id-column", "id"]),
        ("docs.parquet", ["--text-column", "body", "--id-column", "id"]),
        ("docs.txt", []),
        ("docs", []),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_every_input_and_output_format_gives_the_same_rows(
    trained, capsys, inputs, source, extra, fmt
):
    out = classify(capsys, trained["model"], inputs / source, inputs / f"out.{fmt}", *extra)
    frame = {
        "csv": pd.read_csv,
        "jsonl": lambda p: pd.read_json(p, lines=True),
        "parquet": pd.read_parquet,
    }[fmt](out)
    assert list(frame.columns) == [
        "document",
        "sentence",
        "text",
        "target",
        "stance",
        "p_favor",
        "p_against",
        "p_neutral",
    ]
    # 3 mentions in doc 1, 1 in doc 2, 0 in doc 3, 2 in doc 4: 6 per repetition
    assert len(frame) == 18
    assert list(frame["target"][:6]) == [
        "Pakistan",
        "India",
        "Russia",
        "China",
        "Russia",
        "Pakistan",
    ]


def test_results_do_not_depend_on_chunk_size_or_jobs(trained, capsys, inputs):
    outputs = []
    for chunk, jobs in [(1, 1), (5, 1), (500, 1), (2, 2)]:
        out = inputs / f"m-{chunk}-{jobs}.csv"
        summary = inputs / f"s-{chunk}-{jobs}.csv"
        classify(
            capsys,
            trained["model"],
            inputs / "docs.csv",
            out,
            "--text-column",
            "body",
            "--chunk-size",
            chunk,
            "--jobs",
            jobs,
            "--summary",
            summary,
        )
        outputs.append((out.read_bytes(), summary.read_bytes()))
    assert all(o == outputs[0] for o in outputs)


def test_summary_per_document_and_country(trained, capsys, inputs):
    summary = inputs / "s.jsonl"
    classify(
        capsys,
        trained["model"],
        inputs / "docs.csv",
        inputs / "m.csv",
        "--text-column",
        "body",
        "--id-column",
        "id",
        "--summary",
        summary,
    )
    rows = [json.loads(line) for line in summary.read_text().splitlines()]
    first = [r for r in rows if r["document"] == "d0"]
    assert [r["target"] for r in first] == ["Pakistan", "India", "Russia"]
    for r in rows:
        assert r["mentions"] == r["favor"] + r["against"] + r["neutral"] + r["uncertain"]
        assert r["stance"] in {"favor", "against", "neutral"}
        assert r["evidence"]  # the sentence(s) behind the overall stance


def test_min_confidence_marks_uncertain(trained, capsys, inputs):
    sure = pd.read_csv(classify(capsys, trained["model"], inputs / "docs.txt", inputs / "a.csv"))
    unsure = pd.read_csv(
        classify(
            capsys,
            trained["model"],
            inputs / "docs.txt",
            inputs / "b.csv",
            "--min-confidence",
            "0.99",
        )
    )
    top = sure[["p_favor", "p_against", "p_neutral"]].max(axis=1)
    assert (unsure["stance"] == "uncertain").tolist() == (top < 0.99).tolist()
    assert (unsure.loc[top >= 0.99, "stance"] == sure.loc[top >= 0.99, "stance"]).all()
    assert (top < 0.99).any()


def test_explain_column(trained, capsys, inputs):
    frame = pd.read_csv(
        classify(capsys, trained["model"], inputs / "docs.txt", inputs / "e.csv", "--explain", "3")
    )
    assert frame["explanation"].str.count(";").max() == 2
    assert frame["explanation"].str.contains("[TARGET]", regex=False).any()


def test_stdin_one_document_per_line(trained, capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(DOCUMENTS[:2]).encode()))
    )
    status, out, _ = run(capsys, "classify", "--model", trained["model"], "--input", "-", "--quiet")
    assert status == 0
    assert out.splitlines()[0].startswith("document,sentence,text,target")
    assert len(out.splitlines()) == 1 + 4


@pytest.mark.parametrize(
    "name, content, extra, message",
    [
        ("docs.csv", b"id,body\n1,Russia won.\n", [], "missing column(s) text"),
        ("docs.csv", b"", [], "empty"),
        ("docs.csv", b"text\nRussia\x00\x01 won.\n", [], "binary data"),
        ("docs.jsonl", b'{"text": "Russia won."}\n{"text": 5}\n', [], "text is not a string"),
        ("docs.jsonl", b'{"text": "Russia won."}\nnot json\n', [], ":2: not a JSON object"),
        ("docs.txt", b"Russia won.\n\xff\xfe broken\n", [], ":2: not UTF-8"),
        ("docs.txt", b"\x00\x01\x02\x03binary", [], "binary data"),
        ("docs.txt", b"\n\n", [], "no documents"),
        ("docs.parquet", b"PAR1 this is not parquet", [], "not a Parquet file"),
        ("docs.csv", b"text\nRussia won.\n", ["--chunk-size", "0"], "chunk-size"),
    ],
)
def test_bad_input_leaves_no_output(trained, capsys, tmp_path, name, content, extra, message):
    source = tmp_path / name
    source.write_bytes(content)
    out, summary = tmp_path / "out" / "m.csv", tmp_path / "out" / "s.parquet"
    out.parent.mkdir()
    status, _, err = run(
        capsys,
        "classify",
        "--model",
        trained["model"],
        "--input",
        source,
        "--output",
        out,
        "--summary",
        summary,
        *extra,
    )
    assert status == 2 and message in err
    one_error_line(err)
    assert list(out.parent.iterdir()) == []


def test_failure_mid_stream_keeps_existing_output(trained, capsys, tmp_path):
    source = tmp_path / "docs.txt"
    source.write_bytes(b"Russia won.\n" * 50 + b"\xff broken\n")
    out = tmp_path / "m.csv"
    out.write_text("precious earlier results\n")
    status, _, err = run(
        capsys,
        "classify",
        "--model",
        trained["model"],
        "--input",
        source,
        "--output",
        out,
        "--chunk-size",
        "10",
    )
    assert status == 2 and ":51: not UTF-8" in err
    assert out.read_text() == "precious earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs.txt", "m.csv"]


@pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::ResourceWarning", "ignore::UserWarning"
)
def test_dask_on_a_local_cluster_matches_the_local_run(trained, capsys, inputs):
    dd = pytest.importorskip("dask.dataframe")
    from distributed import Client, LocalCluster

    from geostance import load_model
    from geostance.dask import classify_dataframe

    local = pd.read_csv(
        classify(
            capsys,
            trained["model"],
            inputs / "docs.csv",
            inputs / "l.csv",
            "--text-column",
            "body",
            "--id-column",
            "id",
        )
    )
    frame = pd.read_csv(inputs / "docs.csv")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        mentions = classify_dataframe(
            dd.from_pandas(frame, npartitions=3),
            load_model(trained["model"]),
            text_column="body",
            id_column="id",
        )
        computed = mentions.compute().reset_index(drop=True)
    pd.testing.assert_frame_equal(computed, local, check_dtype=False)
