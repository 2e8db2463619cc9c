"""Speed, size and memory of geostance, each figure beside a baseline measured in this run.

    python benchmarks/classify_speed.py [--model models/default] [--sizes 100000 1000000]
                                        [--skip-training]

The baselines need the scikit-learn estimator behind the saved model: it is refitted from the
model's own config and data (identical probabilities, tested). Its TF-IDF blocks are geostance's
own (`model.Tfidf`), so the baseline swaps each for scikit-learn's TfidfVectorizer fitted on the
same texts (same vocabulary and idf, fuzz-tested): the bare scikit-learn pipeline, which is also
pickled as geostance 0.1 saved models were, so "before" and "after" are measured side by side.
1. Throughput: end-to-end batch classification (documents read from a file, split, mentions
   found and masked, classified, results written; no summary, as `classify --input` without
   --summary) against the bare scikit-learn pipeline's predict_proba on the same mentions,
   pre-split and pre-masked; best of two runs each, interleaved; the largest difference between
   the probabilities written and the baseline's (after temperature) is printed.
2. Cold start of `geostance classify "..."` (weights-only model, neither scikit-learn nor
   pandas imported) against `python -c "import sklearn"` and against loading the pickle and
   predicting.
3. Model size on disk: the weights-only folder against the pickle.
4. Peak RSS of `geostance classify --input` streaming N sentences from a file (with
   --summary), for each size in --sizes: flat in N.
5. `classify --input` with --jobs 1 and with --jobs 2, on 1,000, 10,000 and the first of
   --sizes sentences.
6. Training: the TF-IDF blocks fitted on the training rows by geostance and by
   TfidfVectorizer; the solver of the saved model's classifier on its training features with
   one BLAS thread (what `StanceClassifier.fit` does) and with the library's default threads;
   and, unless --skip-training, the wall time of `geostance train --config
   experiments/default.toml` (into a temporary folder).
The machine's load average is printed beside the figures: shared machines are noisy.
Sentences come from the committed labeled data, shuffled and joined ten to a document.
"""

from __future__ import annotations

import argparse
import copy
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
    """The scikit-learn estimator behind the saved model, refitted from its config and data,
    with its training rows and the fit's wall time."""
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
    started = time.perf_counter()
    estimator = clone(build_estimator(params, gazetteer))
    estimator.fit(train[["text", "target"]], train["stance"])
    return estimator, train, time.perf_counter() - started


def scikit_learn_pipeline(estimator, train: pd.DataFrame):
    """The fitted estimator's pipeline with every TF-IDF block a scikit-learn TfidfVectorizer
    fitted on the same training texts, and the same fitted classifier."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline

    from geostance.model import TargetFeatures

    assert estimator.strategy == "shared", "the baseline is built for one shared model"
    union = estimator.pipeline_.named_steps["features"].vectorizer_
    blocks = []
    for name, branch in union.transformer_list:
        steps = branch.steps if isinstance(branch, Pipeline) else [("tfidf", branch)]
        ours = steps[-1][1]
        pattern = {"token_pattern": ours.token_pattern} if ours.analyzer == "word" else {}
        theirs = TfidfVectorizer(
            analyzer=ours.analyzer,
            ngram_range=ours.ngram_range,
            min_df=ours.min_df,
            sublinear_tf=ours.sublinear_tf,
            **pattern,
        )
        blocks.append(
            (name, Pipeline([*steps[:-1], ("tfidf", theirs)]) if len(steps) > 1 else theirs)
        )
    features = TargetFeatures(FeatureUnion(blocks)).fit(
        estimator.prepare(train[["text", "target"]])
    )
    return Pipeline([("features", features), ("classifier", estimator.pipeline_[-1])])


def throughput(model_dir: Path, estimator, baseline, sentences: list[str], work: Path) -> None:
    import numpy as np

    from geostance.artifacts import load_model
    from geostance.batch import TableWriter, classify_documents, read_documents
    from geostance.mentions import split_sentences

    model = load_model(model_dir)
    source = work / "docs.txt"
    documents = write_documents(source, sentences, 20_000)
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

    def ours() -> tuple[float, pd.DataFrame]:
        started = time.perf_counter()
        writer = TableWriter(str(work / "mentions.csv"), "csv")
        for frame, _, _ in classify_documents(model, read_documents(str(source)), summary=False):
            writer.write(frame)
        writer.close()
        return time.perf_counter() - started, pd.read_csv(work / "mentions.csv")

    def bare() -> tuple[float, np.ndarray]:
        started = time.perf_counter()
        proba = baseline.predict_proba(prepared)
        return time.perf_counter() - started, proba

    runs = [ours(), bare(), ours(), bare()]
    end_to_end, written = min(runs[0][0], runs[2][0]), runs[0][1]
    baseline, proba = min(runs[1][0], runs[3][0]), runs[1][1]
    from geostance.linear import scale_temperature

    columns = [f"p_{c}" for c in estimator.classes_]
    expected = np.round(scale_temperature(proba, estimator.temperature), 4)
    difference = np.abs(written[columns].to_numpy() - expected).max()
    mentions = len(written)
    assert mentions == len(pairs), (mentions, len(pairs))
    print(f"throughput: {documents} documents, 20000 sentences, {mentions} mentions (best of 2)")
    print(
        f"  end to end (read, split, find, mask, classify, write CSV): {end_to_end:.2f} s, "
        f"{20000 / end_to_end:,.0f} sentences/s, {mentions / end_to_end:,.0f} mentions/s"
    )
    print(
        f"  bare pipeline.predict_proba on pre-split, pre-masked mentions: {baseline:.2f} s, "
        f"{20000 / baseline:,.0f} sentences/s, {mentions / baseline:,.0f} mentions/s"
    )
    print(f"  ratio end-to-end / bare throughput: {baseline / end_to_end:.2f}")
    print(f"  largest difference in written probabilities (4 decimals): {difference:.1e}")


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


def classify_file(model_dir: Path, source: Path, work: Path, *options: str) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of `geostance classify --input source` in a fresh process."""
    # A fresh parent per run, so RUSAGE_CHILDREN's maximum belongs to this run alone.
    probe = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)"
    )
    command = [
        sys.executable, "-c", probe, sys.executable, "-m", "geostance.cli", "classify",
        "--model", str(model_dir), "--input", str(source), "--output", str(work / "out.csv"),
        "--quiet", *options,
    ]  # fmt: skip
    kib, seconds = subprocess.run(
        command, check=True, capture_output=True, text=True
    ).stdout.split()
    return int(kib) / 1024, float(seconds)


def peak_memory(model_dir: Path, sentences: list[str], work: Path, sizes: list[int]) -> None:
    for size in sizes:
        source = work / f"docs-{size}.txt"
        documents = write_documents(source, sentences, size)
        mib, seconds = classify_file(model_dir, source, work, "--summary", str(work / "sum.csv"))
        print(
            f"peak RSS, {size:,} sentences ({documents:,} documents) streamed from a file, "
            f"with --summary: {mib:,.0f} MiB in {seconds:.0f} s ({size / seconds:,.0f} sentences/s)"
        )


def jobs(model_dir: Path, sentences: list[str], work: Path, sizes: list[int]) -> None:
    """--jobs 2 pays once the input outweighs starting the workers and sending them the model."""
    print(
        f"classify --input, --jobs 1 against 2 (best of 2), load average {os.getloadavg()[0]:.2f}:"
    )
    for size in sizes:
        source = work / f"docs-{size}.txt"
        write_documents(source, sentences, size)
        runs = [
            (n, classify_file(model_dir, source, work, "--jobs", str(n))[1]) for n in (1, 2, 1, 2)
        ]
        seconds = {n: min(t for m, t in runs if m == n) for n in (1, 2)}
        print(
            f"  {size:,} sentences: --jobs 1 {seconds[1]:.1f} s, --jobs 2 {seconds[2]:.1f} s; "
            f"throughput ratio {seconds[1] / seconds[2]:.2f}"
        )


def training(
    estimator, baseline, train: pd.DataFrame, fit_seconds: float, full: bool, work: Path
) -> None:
    import numpy as np
    from sklearn.base import clone
    from threadpoolctl import threadpool_info, threadpool_limits

    prepared = estimator.prepare(train[["text", "target"]])
    vectorizing, matrices = {}, {}
    for name, pipeline in (("geostance", estimator.pipeline_), ("scikit-learn", baseline)):
        started = time.perf_counter()
        matrices[name] = clone(pipeline.named_steps["features"]).fit_transform(prepared)
        vectorizing[name] = time.perf_counter() - started
    features = matrices["geostance"]
    same = abs(features - matrices["scikit-learn"]).max()
    classifier = estimator.pipeline_.named_steps["classifier"]

    def solve(threads: int | None):
        started = time.perf_counter()
        with threadpool_limits(threads, user_api="blas"):
            fitted = clone(classifier).fit(features, train["stance"])
        return time.perf_counter() - started, fitted.predict_proba(features)

    threads = max(
        (p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=1
    )
    (one, limited), (default, unlimited) = solve(1), solve(None)
    print(f"training, {len(train):,} rows, load average {os.getloadavg()[0]:.2f}:")
    print(f"  one fit of the saved model's estimator (vectorizers and solver): {fit_seconds:.1f} s")
    print(
        f"  TF-IDF blocks fitted on the training rows: geostance {vectorizing['geostance']:.1f} s, "
        f"scikit-learn's TfidfVectorizer {vectorizing['scikit-learn']:.1f} s "
        f"(ratio {vectorizing['scikit-learn'] / vectorizing['geostance']:.1f}; largest "
        f"difference between the two matrices {same:.1e})"
    )
    print(
        f"  solver alone: one BLAS thread {one:.1f} s, default ({threads} threads) {default:.1f} s "
        f"(ratio {default / one:.1f}); largest probability difference {np.abs(limited - unlimited).max():.1e}"
    )
    if full:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "geostance.cli", "train", "--quiet",
             "--config", str(ROOT / "experiments" / "default.toml"),
             "--models-dir", str(work / "models"), "--reports-dir", str(work / "reports")],
            check=True, capture_output=True,
        )  # fmt: skip
        print(
            f"  geostance train --config experiments/default.toml: {time.perf_counter() - started:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--skip-training", action="store_true", help="Do not time the experiment.")
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

        estimator, train, fit_seconds = refit(args.model)
        pickle_file = work / "model.joblib"
        baseline = scikit_learn_pipeline(estimator, train)
        legacy = copy.copy(estimator)  # a geostance 0.1 model: scikit-learn all the way down
        legacy.pipeline_ = baseline
        joblib.dump(legacy, pickle_file)
        print(f"load average: {os.getloadavg()[0]:.2f}")
        throughput(args.model, estimator, baseline, sentences, work)
        cold_start(args.model, pickle_file)
        model_size(args.model, pickle_file)
        peak_memory(args.model, sentences, work, args.sizes)
        jobs(args.model, sentences, work, [1_000, 10_000, *args.sizes[:1]])
        training(estimator, baseline, train, fit_seconds, not args.skip_training, work)
        print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
