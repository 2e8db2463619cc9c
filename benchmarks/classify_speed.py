"""Speed, size and memory of geostance, each figure beside a baseline measured in this run.

    python benchmarks/classify_speed.py [--model models/default] [--sizes 100000 1000000]

The baselines need the scikit-learn estimator behind the saved model: it is refitted from the
model's own config and data (identical probabilities, tested), then pickled as geostance 0.1
saved models, so "before" and "after" are measured side by side.
1. Throughput: end-to-end batch classification (documents read from a file, split, mentions
   found and masked, classified, results written) against the bare scikit-learn pipeline's
   predict_proba on the same mentions, pre-split and pre-masked.
2. Cold start of `geostance classify "..."` (weights-only model, no scikit-learn imported)
   against `python -c "import sklearn"` and against loading the pickle and predicting.
3. Model size on disk: the weights-only folder against the pickle.
4. Peak RSS of `geostance classify --input` streaming N sentences from a file, for each size
   in --sizes: flat in N.
The machine's load average is printed beside the figures: shared machines are noisy.
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


def refit(model_dir: Path):
    """The scikit-learn estimator behind the saved model, refitted from its config and data."""
    from sklearn.base import clone

    from geostance.artifacts import load_model
    from geostance.config import load_experiment
    from geostance.experiment import build_estimator, load_data, load_gazetteer

    saved = load_model(model_dir)
    experiment = load_experiment(ROOT / "experiments" / f"{saved.metadata['experiment']}.toml")
    gazetteer = load_gazetteer(experiment)
    train = load_data(experiment, gazetteer).train
    params = {k: v for k, v in saved.metadata["hyperparameters"].items() if k != "gazetteer"}
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return clone(build_estimator(params, gazetteer)).fit(train[["text", "target"]], train["stance"])


def throughput(model_dir: Path, estimator, sentences: list[str], work: Path) -> None:
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
    estimator.pipeline_.predict_proba(prepared)
    bare = time.perf_counter() - started
    assert len(pairs) == mentions
    print(f"throughput: {documents} documents, 20000 sentences, {mentions} mentions")
    print(
        f"  end to end (read, split, find, mask, classify, write CSV): {end_to_end:.2f} s, {20000 / end_to_end:,.0f} sentences/s, {mentions / end_to_end:,.0f} mentions/s"
    )
    print(
        f"  bare pipeline.predict_proba on pre-split, pre-masked mentions: {bare:.2f} s, {20000 / bare:,.0f} sentences/s, {mentions / bare:,.0f} mentions/s"
    )
    print(f"  ratio end-to-end / bare throughput: {bare / end_to_end:.2f}")


def cold_start(model_dir: Path, pickle_file: Path, repeats: int = 7) -> None:
    commands = {
        "geostance classify (weights)": [
            sys.executable, "-m", "geostance.cli", "classify", "--model", str(model_dir),
            "Russia failed again.",
        ],
        'python -c "import sklearn"': [sys.executable, "-c", "import sklearn"],
        "pickle: import, load, predict": [
            sys.executable,
            "-c",
            "import joblib, pandas as pd; "
            f"m = joblib.load({str(pickle_file)!r}); "
            "m.predict_proba(pd.DataFrame({'text': ['Russia failed again.'], 'target': ['Russia']}))",
        ],
    }  # fmt: skip

    def median_seconds(command: list[str]) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    for command in commands.values():
        subprocess.run(command, check=True, capture_output=True)  # warm the file cache
    seconds = {name: median_seconds(command) for name, command in commands.items()}
    ours = seconds["geostance classify (weights)"]
    print(f"cold start (median of {repeats}), load average {os.getloadavg()[0]:.2f}:")
    for name, value in seconds.items():
        print(f"  {name}: {value:.3f} s (geostance / this: {ours / value:.2f})")


def model_size(model_dir: Path, pickle_file: Path) -> None:
    folder = sum(p.stat().st_size for p in model_dir.iterdir())
    print(
        f"model size: weights-only folder {folder / 2**20:.2f} MiB, pickle "
        f"{pickle_file.stat().st_size / 2**20:.2f} MiB (ratio {folder / pickle_file.stat().st_size:.2f})"
    )


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
        import joblib

        estimator = refit(args.model)
        pickle_file = work / "model.joblib"
        joblib.dump(estimator, pickle_file)
        print(f"load average: {os.getloadavg()[0]:.2f}")
        throughput(args.model, estimator, sentences, work)
        cold_start(args.model, pickle_file)
        model_size(args.model, pickle_file)
        peak_memory(args.model, sentences, work, args.sizes)
        print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
