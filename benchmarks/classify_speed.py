"""Speed and memory of `geostance classify`, each figure beside a baseline measured in this run.

    python benchmarks/classify_speed.py [--model models/default] [--sizes 100000 1000000]

1. Throughput: end-to-end batch classification (documents read from a file, split, mentions
   found and masked, classified, results written) against the bare scikit-learn pipeline's
   predict on the same mentions, pre-split and pre-masked. Target ratio: at least 0.8.
2. Cold start: `geostance predict` on one row against a bare `python -c` that imports
   scikit-learn, loads the same joblib file and predicts. Target ratio: at most 1.3.
3. Peak RSS of `geostance classify --input` streaming N sentences from a file, for each size
   in --sizes. Target: under 1 GB and flat in N.
Sentences come from the committed labeled data, shuffled and joined ten to a document.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
PER_DOCUMENT = 10


def write_documents(path: Path, sentences: list[str], n_sentences: int) -> int:
    """Write `n_sentences` sentences, ten per line (one document per line); return documents."""
    documents = 0
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, n_sentences, PER_DOCUMENT):
            chunk = [sentences[(start + i) % len(sentences)] for i in range(PER_DOCUMENT)]
            handle.write(" ".join(chunk) + "\n")
            documents += 1
    return documents


def throughput(model_dir: Path, sentences: list[str], work: Path) -> None:
    from geostance.artifacts import load_model
    from geostance.batch import TableWriter, classify_documents, read_documents
    from geostance.mentions import split_sentences

    model = load_model(model_dir)
    source = work / "docs.txt"
    documents = write_documents(source, sentences, 20_000)
    started = time.perf_counter()
    writer = TableWriter(str(work / "mentions.csv"), "csv")
    mentions = 0
    for frame, _, _ in classify_documents(model, read_documents(str(source))):
        writer.write(frame)
        mentions += len(frame)
    writer.close()
    end_to_end = time.perf_counter() - started

    estimator = model.estimator
    pairs = pd.DataFrame(
        [
            (sentence, target)
            for line in source.read_text(encoding="utf-8").splitlines()
            for sentence in split_sentences(line)
            for target in estimator.gazetteer.targets(sentence)
        ],
        columns=["text", "target"],
    )
    prepared = estimator.prepare(pairs)
    started = time.perf_counter()
    estimator.pipeline_.predict(prepared)
    bare = time.perf_counter() - started
    assert len(pairs) == mentions
    print(f"throughput: {documents} documents, 20000 sentences, {mentions} mentions")
    print(
        f"  end to end (read, split, find, mask, classify, write CSV): {end_to_end:.2f} s, {20000 / end_to_end:,.0f} sentences/s, {mentions / end_to_end:,.0f} mentions/s"
    )
    print(
        f"  bare pipeline.predict on pre-split, pre-masked mentions:    {bare:.2f} s, {20000 / bare:,.0f} sentences/s, {mentions / bare:,.0f} mentions/s"
    )
    print(f"  ratio end-to-end / bare throughput: {bare / end_to_end:.2f} (target >= 0.8)")


def cold_start(model_dir: Path, work: Path, repeats: int = 7) -> None:
    one = work / "one.csv"
    one.write_text("text,target\nRussia failed again.,Russia\n")
    geostance = [
        sys.executable,
        "-m",
        "geostance.cli",
        "predict",
        "--model",
        str(model_dir),
        "--input",
        str(one),
        "--output",
        "-",
    ]
    bare = [
        sys.executable,
        "-c",
        "import sklearn, joblib, pandas as pd; "
        f"m = joblib.load({str(model_dir / 'model.joblib')!r}); "
        "print(m.predict(pd.DataFrame({'text': ['Russia failed again.'], 'target': ['Russia']})))",
    ]

    def median_seconds(command: list[str]) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    median_seconds(bare)  # warm the file cache for both
    ours, theirs = median_seconds(geostance), median_seconds(bare)
    print(
        f"cold start (median of {repeats}): geostance predict {ours:.3f} s, bare python -c {theirs:.3f} s"
    )
    print(f"  ratio: {ours / theirs:.2f} (target <= 1.3)")


def peak_memory(model_dir: Path, sentences: list[str], work: Path, sizes: list[int]) -> None:
    for size in sizes:
        source = work / f"docs-{size}.txt"
        documents = write_documents(source, sentences, size)
        # A fresh parent per run, so RUSAGE_CHILDREN's maximum belongs to this run alone.
        probe = (
            "import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)"
        )
        command = [
            sys.executable,
            "-c",
            probe,
            sys.executable,
            "-m",
            "geostance.cli",
            "classify",
            "--model",
            str(model_dir),
            "--input",
            str(source),
            "--output",
            str(work / "out.csv"),
            "--summary",
            str(work / "summary.csv"),
            "--quiet",
        ]
        kib, seconds = subprocess.run(
            command, check=True, capture_output=True, text=True
        ).stdout.split()
        print(
            f"peak RSS, {size:,} sentences ({documents:,} documents) streamed from a file: "
            f"{int(kib) / 1024:,.0f} MiB in {float(seconds):.0f} s ({size / float(seconds):,.0f} sentences/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    from geostance.data import read_labeled

    labeled = read_labeled(sorted((ROOT / "data" / "labeled").glob("*.csv")))
    sentences = (
        labeled.drop_duplicates("sentence_id").sample(frac=1.0, random_state=0)["text"].tolist()
    )
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        throughput(args.model, sentences, work)
        cold_start(args.model, work)
        peak_memory(args.model, sentences, work, args.sizes)


if __name__ == "__main__":
    main()
