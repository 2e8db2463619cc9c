"""The `geostance` command: train, predict, classify, evaluate, convert, describe.

`main(argv)` returns an exit status instead of exiting, so tests call it in-process. Bad input
of any kind ends in one `geostance: error: ...` line on stderr and status 2.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path

import click

from geostance.errors import DataError, GeostanceError

FORMATS = ("table", "json", "csv")
model_option = click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Model directory (default: $GEOSTANCE_MODEL or models/default).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="geostance")
def cli() -> None:
    """Author stance (favor / against / neutral) toward the countries a text mentions."""


@cli.command()
@click.option("--config", "config_path", required=True, help="Experiment config (TOML).")
@click.option("--data", "data_path", default=None, help="Data folder; overrides data.path.")
@click.option("--models-dir", default="models", show_default=True)
@click.option("--reports-dir", default="reports", show_default=True)
@click.option("--quiet", is_flag=True, help="Print only the final scores.")
def train(config_path, data_path, models_dir, reports_dir, quiet) -> None:
    """Train and evaluate an experiment; write models/NAME/ and reports/NAME/."""
    from geostance.config import load_experiment
    from geostance.experiment import run_experiment

    experiment = load_experiment(config_path, path=data_path)
    results = run_experiment(
        experiment, models_dir, reports_dir, log=(lambda message: None) if quiet else _log
    )
    for key, evaluation in results["evaluations"].items():
        click.echo(
            f"{experiment.name} {key}: macro-F1 {evaluation['macro_f1']:.3f}  "
            f"F_avg {evaluation['f_avg']:.3f}  accuracy {evaluation['accuracy']:.3f}  "
            f"(n={evaluation['n']})"
        )
    click.echo(
        f"model: {Path(models_dir) / experiment.name}  report: {Path(reports_dir) / experiment.name}/report.md"
    )


@cli.command()
@model_option
@click.option(
    "--input", "input_path", required=True, help="CSV with text and target columns; - for stdin."
)
@click.option(
    "--output",
    "output_path",
    required=True,
    help="Table to write: .csv, .jsonl or .parquet; - for CSV on stdout.",
)
def predict(model_dir, input_path, output_path) -> None:
    """Add stance, p_favor, p_against, p_neutral to every (text, target) row of a CSV."""
    from geostance.artifacts import load_model
    from geostance.batch import TableWriter, output_format
    from geostance.data import check_texts, read_csv
    from geostance.linear import FEATURES, LABELS, predict_frame
    from geostance.outputs import check_files

    check_files({"--output": output_path}, [input_path])
    writer_format = output_format(output_path, None)
    frame = read_csv(input_path, FEATURES)
    check_texts(frame, "<stdin>" if input_path == "-" else input_path)
    model = load_model(model_dir)
    predicted = predict_frame(model.estimator, frame) if len(frame) else None
    out = frame.copy()
    out["stance"] = predicted["stance"] if predicted is not None else []
    for label in LABELS:
        out[f"p_{label}"] = predicted[label].round(4) if predicted is not None else []
    writer = TableWriter(output_path, writer_format)
    try:
        writer.write(out)
        writer.close()
    except BaseException:
        writer.abort()
        raise


@cli.command()
@model_option
@click.argument("text", required=False)
@click.option("--file", "file_path", default=None, help="Read one text from a file.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output of a single text.",
)
@click.option(
    "--input",
    "input_path",
    default=None,
    help="Many documents: a folder of .txt files, a .csv/.jsonl/.parquet file, or - for stdin "
    "(one document per line).",
)
@click.option("--text-column", default="text", show_default=True, help="Text column of --input.")
@click.option(
    "--id-column", default=None, help="Document id column of --input (default: row number)."
)
@click.option(
    "--output",
    "output_path",
    default="-",
    show_default=True,
    help="Per-mention table of --input: .csv, .jsonl, .parquet, or - (CSV on stdout).",
)
@click.option(
    "--summary", "summary_path", default=None, help="Per document and country table of --input."
)
@click.option(
    "--output-format",
    "table_format",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default=None,
    help="Format of --output/--summary instead of the file suffix.",
)
@click.option("--chunk-size", default=500, show_default=True, type=int, help="Documents per chunk.")
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(1, os.cpu_count() or 1),
    help="Processes (at most the machine's CPUs).",
)
@click.option(
    "--explain",
    default=0,
    type=click.IntRange(0, None),
    help="Add the N n-grams behind each prediction.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    callback=lambda ctx, param, value: _not_nan(value, "--min-confidence"),
    default=None,
    help="Below this top probability, the stance is 'uncertain'.",
)
@click.option(
    "--resolve-references",
    "resolve",
    is_flag=True,
    help='A sentence naming no country but "both countries", "the two sides" (...) counts for '
    "the two countries the sentence before named (rows marked resolved).",
)
@click.option("--quiet", is_flag=True, help="No progress bar or closing line.")
def classify(
    model_dir,
    text,
    file_path,
    output_format,
    input_path,
    explain,
    min_confidence,
    resolve,
    quiet,
    **batch,
) -> None:
    """Find the countries in TEXT (or --file, or - for stdin) and classify each mention.

    With --input, classify many documents in chunks and write tables instead.
    """
    from geostance.artifacts import load_model

    if input_path is not None:
        if text is not None or file_path is not None:
            raise click.UsageError("give --input for many documents, or TEXT / --file for one")
        _classify_batch(model_dir, input_path, explain, min_confidence, resolve, quiet, **batch)
        return
    text = _read_text(text, file_path)
    model = load_model(model_dir)
    result = model.classify(text, min_confidence=min_confidence, explain=explain, resolve=resolve)
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif output_format == "csv":
        click.echo(result.mentions().to_csv(index=False), nl=False)
    else:
        click.echo(_table(result))


def _classify_batch(
    model_dir,
    source,
    explain,
    min_confidence,
    resolve,
    quiet,
    *,
    text_column,
    id_column,
    output_path,
    summary_path,
    table_format,
    chunk_size,
    jobs,
) -> None:
    from tqdm import tqdm

    from geostance.artifacts import load_model
    from geostance.batch import TableWriter, classify_documents, output_format, read_documents
    from geostance.outputs import check_files

    check_files({"--output": output_path, "--summary": summary_path}, [source])
    formats = {output_path: output_format(output_path, table_format)}
    if summary_path:
        formats[summary_path] = output_format(summary_path, table_format)
    model = load_model(model_dir)
    chunks = read_documents(
        source, text_column=text_column, id_column=id_column, chunk_size=chunk_size
    )
    writers: list[TableWriter] = []
    documents = mentions_count = 0
    bar = tqdm(unit=" docs", disable=quiet or not sys.stderr.isatty(), file=sys.stderr)
    try:
        writers += [TableWriter(path, fmt) for path, fmt in formats.items()]
        for mentions, summary, n in classify_documents(
            model,
            chunks,
            jobs=jobs,
            min_confidence=min_confidence,
            explain=explain,
            summary=bool(summary_path),
            resolve=resolve,
        ):
            writers[0].write(mentions)
            if summary_path:
                writers[1].write(summary)
            documents += n
            mentions_count += len(mentions)
            bar.update(n)
        for writer in writers:
            writer.close()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    finally:
        bar.close()
    if not quiet:
        _log(f"{documents} documents, {mentions_count} country mentions classified")


@cli.command("evaluate")
@model_option
@click.option("--data", "data_path", required=True, help="Labeled CSV file.")
@click.option(
    "--out", "out_dir", default=None, help="Report folder (default: reports/MODEL-on-DATA)."
)
def evaluate_command(model_dir, data_path, out_dir) -> None:
    """Score a saved model on a labeled file and write the same report as training does."""
    from geostance.artifacts import file_digest, json_ready, load_model
    from geostance.data import read_labeled
    from geostance.evaluate import confident_errors, score_predictions, with_predictions
    from geostance.outputs import check_folder, publish
    from geostance.report import write_report

    model = load_model(model_dir)
    name = f"{model.metadata.get('experiment', 'model')}-on-{Path(data_path).stem}"
    out = check_folder(Path(out_dir) if out_dir else Path("reports") / name, "report", "--out")
    data = read_labeled([data_path])
    predictions = with_predictions(model.estimator, data)
    results = json_ready(
        {
            "experiment": name,
            "evaluations": {"data": score_predictions(predictions, n_boot=1000, seed=0)},
            "data": {
                "files": [{"path": data_path, "sha256": file_digest(data_path), "rows": len(data)}],
                "test_rows": len(data),
            },
            "top_features": model.estimator.top_features(15),
            "errors": confident_errors(predictions, 10),
        }
    )
    with publish({out: "report"}) as staged:
        write_report(staged[out], results)
    e = results["evaluations"]["data"]
    click.echo(
        f"{name}: macro-F1 {e['macro_f1']:.3f}  F_avg {e['f_avg']:.3f}  "
        f"accuracy {e['accuracy']:.3f}  (n={e['n']})  report: {out}/report.md"
    )


@cli.command()
@model_option
@click.argument("source")
@click.option("--out", "out_path", required=True, help="The HTML page to write.")
@click.option("--text-column", default="text", show_default=True, help="Text column of documents.")
@click.option("--id-column", default=None, help="Document id column of documents.")
@click.option("--group-column", default=None, help="Net stance per country and this column.")
@click.option("--date-column", default=None, help="Net stance per country and month.")
@click.option(
    "--evidence",
    default=5,
    show_default=True,
    type=click.IntRange(1, 50),
    help="Favor and against sentences shown per country.",
)
@click.option("--title", default="Stance toward countries", show_default=True)
def report(
    model_dir, source, out_path, text_column, id_column, group_column, date_column, evidence, title
) -> None:
    """Write one self-contained HTML page for a classified corpus.

    SOURCE is a mentions table from `geostance classify --input ... --output` (CSV, JSONL,
    Parquet), or documents as `classify --input` takes them, classified here first.
    """
    from geostance.artifacts import load_model
    from geostance.outputs import check_files, write_atomic
    from geostance.page import build, mentions_of

    if Path(out_path).suffix.lower() not in (".html", ".htm"):
        raise DataError(f"--out {out_path}: the page is HTML; name it .html")
    check_files({"--out": out_path}, [source])
    model = load_model(model_dir)
    keep = {"--group-column": group_column, "--date-column": date_column}
    mentions = mentions_of(source, model, text_column, id_column, keep)
    metrics = model.metadata.get("metrics", {})
    page = build(
        mentions,
        model={
            "name": model.metadata.get("experiment", "?"),
            "created_at": model.metadata.get("created_at", "?"),
            "test": metrics.get("test"),
            "dev": metrics.get("dev"),
        },
        gazetteer=model.estimator.gazetteer,
        group_column=group_column,
        date_column=date_column,
        evidence=evidence,
        title=title,
    )
    write_atomic(Path(out_path), page)
    click.echo(f"report: {out_path} ({len(page.encode()) / 1024:.0f} KB, {len(mentions)} mentions)")


@cli.command()
@click.option(
    "--from-pickle",
    "source",
    required=True,
    help="An old model folder (or its model.joblib) saved as a pickle.",
)
@click.option(
    "--i-trust-this-file",
    "trusted",
    is_flag=True,
    help="Required: unpickling runs whatever code the file holds.",
)
@click.option("--out", "out_dir", default=None, help="Model folder to write (default: in place).")
def convert(source, trusted, out_dir) -> None:
    """Convert an old pickled model into the weights-only format (the one time it unpickles)."""
    from geostance.artifacts import convert_pickle

    if not trusted:
        raise click.UsageError(
            "loading a pickle runs any code it holds: add --i-trust-this-file only if you "
            "know where the file comes from"
        )
    click.echo(f"converted: {convert_pickle(source, out_dir)}")


@cli.command()
@click.argument("files", nargs=-1, required=True)
def describe(files) -> None:
    """Print count tables (target, register, hard case, split x stance) of labeled FILES."""
    from geostance.data import describe as describe_frame
    from geostance.data import read_labeled

    click.echo(describe_frame(read_labeled(files)), nl=False)


def _not_nan(value: float | None, option: str) -> float | None:
    if value is not None and math.isnan(value):
        raise click.BadParameter("must be a number between 0 and 1, not nan", param_hint=option)
    return value


def _log(message: str) -> None:
    click.echo(f"[geostance] {message}", err=True)


def _read_text(text: str | None, file_path: str | None) -> str:
    from geostance.readers import MAX_DOCUMENT_BYTES, decode, read_text, too_long

    if text is not None and file_path is not None:
        raise click.UsageError("give TEXT or --file, not both")
    if text == "-" or file_path is not None:
        return read_text(file_path or "-", limit=MAX_DOCUMENT_BYTES)
    if text is None:
        raise click.UsageError("give TEXT, --file PATH, or - to read stdin")
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DataError(too_long("TEXT"))
    decoded = decode(raw, "TEXT")
    if not decoded.strip():
        raise DataError("TEXT: empty text")
    return decoded


def _table(result) -> str:
    lines = []
    for sentence in result.sentences:
        if not sentence["mentions"]:
            continue
        lines.append(f"[{sentence['index']}] {sentence['text']}")
        for m in sentence["mentions"]:
            lines.append(
                f"    {m['target']:<16} {m['stance']:<9} "
                f"favor {m['p_favor']:.2f}  against {m['p_against']:.2f}  neutral {m['p_neutral']:.2f}"
                + ("  (resolved from the sentence before)" if m.get("resolved") else "")
            )
            if m.get("clause"):
                lines.append(f"        clause read: {m['clause']}")
            if m.get("explanation"):
                lines.append(f"        because: {m['explanation']}")
    if not result.summary:
        return "no country mentions found"
    lines += [
        "",
        "summary:",
        f"    {'country':<16} {'stance':<8} mentions  favor against neutral  p_favor p_against p_neutral",
    ]
    for s in result.summary:
        lines.append(
            f"    {s['target']:<16} {s['stance']:<8} {s['mentions']:>8} {s['favor']:>6} {s['against']:>7} "
            f"{s['neutral']:>7}  {s['p_favor']:>7.2f} {s['p_against']:>9.2f} {s['p_neutral']:>9.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 2 bad input, 130 interrupted)."""
    # SIGTERM unwinds like Ctrl-C, so temporary files and folders are removed on the way out.
    previous = _on_sigterm(_interrupt)
    try:
        result = cli.main(args=argv, prog_name="geostance", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return _fail(exc.format_message())
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("interrupted")
        return 130
    except GeostanceError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    finally:
        _on_sigterm(previous)
    return result if isinstance(result, int) else 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler):
    """Install `handler` for SIGTERM where this thread may; return the previous one."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, TypeError):  # not the main thread, or no previous Python handler
        return None


def _fail(message: str) -> int:
    print(f"geostance: error: {message}", file=sys.stderr)
    return 2


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
