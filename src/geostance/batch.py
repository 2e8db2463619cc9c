"""Many documents in, two tables out, in chunks so memory stays flat however large the input.

Inputs: a folder of .txt files, a CSV / JSONL / Parquet file with a text column, or a stream
with one document per line. Outputs: CSV, JSONL or Parquet, each written to a temporary file
and renamed into place only when complete, so a failure never leaves a partial file behind.
"""

from __future__ import annotations

import json
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from geostance.classify import classify_mentions, summarise
from geostance.errors import DataError
from geostance.outputs import temporary_file
from geostance.readers import (
    MAX_DOCUMENT_BYTES,
    csv_records,
    decode,
    require_columns,
    text_lines,
    too_long,
)

SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
OUTPUT_FORMATS = ("csv", "jsonl", "parquet")


def read_documents(
    source: str,
    *,
    text_column: str = "text",
    id_column: str | None = None,
    chunk_size: int = 500,
) -> Iterator[pd.DataFrame]:
    """Yield chunks of at most `chunk_size` documents as frames with `document` and `text`.

    `source` is a folder (every *.txt file, sorted; the id is the file name), a .csv, .jsonl or
    .parquet file (`text_column`, ids from `id_column` or the row number), or `-` / any other
    file: one document per line (the id is the line number).
    """
    if chunk_size < 1:
        raise DataError("--chunk-size must be at least 1")
    path = Path(source)
    if source != "-" and not path.exists():
        raise DataError(f"{source}: no such file or folder")
    if path.is_dir():
        chunks = _folder(path)
    else:
        kind = SUFFIX_FORMATS.get(path.suffix.lower(), "lines") if source != "-" else "lines"
        reader = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet, "lines": _lines}[kind]
        chunks = reader(source, text_column, id_column)
    yield from _rechunk(chunks, chunk_size, source)


def _rechunk(rows: Iterable[tuple[object, str]], size: int, source: str) -> Iterator[pd.DataFrame]:
    buffer: list[tuple[object, str]] = []
    seen = False
    for row in rows:
        seen = True
        buffer.append(row)
        if len(buffer) == size:
            yield pd.DataFrame(buffer, columns=["document", "text"])
            buffer = []
    if buffer:
        yield pd.DataFrame(buffer, columns=["document", "text"])
    if not seen:
        raise DataError(f"{source}: no documents")


def _folder(folder: Path) -> Iterator[tuple[object, str]]:
    files = sorted(p for p in folder.rglob("*.txt") if p.is_file())
    if not files:
        raise DataError(f"{folder}: no .txt files")
    for file in files:
        # A file name that is not UTF-8 still gets a printable id (undecodable bytes become U+FFFD).
        name = os.fsencode(file.relative_to(folder)).decode("utf-8", "replace")
        with file.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise DataError(too_long(name))
        yield name, decode(raw, name)


@contextmanager
def _binary(source: str) -> Iterator:
    if source == "-":
        yield sys.stdin.buffer
        return
    try:
        with open(source, "rb") as handle:
            yield handle
    except IsADirectoryError:
        raise DataError(f"{source}: is a directory, not a file") from None


def _lines(source: str, text_column: str, id_column: str | None) -> Iterator[tuple[object, str]]:
    name = "<stdin>" if source == "-" else source
    with _binary(source) as handle:
        for number, line in enumerate(text_lines(handle, name), start=1):
            if line.strip():
                yield number, line.strip()


def _checked(text, where: str) -> str:
    if not isinstance(text, str):
        raise DataError(f"{where}: text is not a string ({text!r})")
    if len(text) > MAX_DOCUMENT_BYTES:
        raise DataError(too_long(where))
    return text


def _csv(source: str, text_column: str, id_column: str | None) -> Iterator[tuple[object, str]]:
    with _binary(source) as handle:
        header, rows = csv_records(text_lines(handle, source), source)
        require_columns(header, source, (text_column, id_column))
        text_at = header.index(text_column)
        id_at = header.index(id_column) if id_column else None
        for number, (line, row) in enumerate(rows, start=1):
            document = row[id_at] if id_at is not None else number
            yield document, _checked(row[text_at], f"{source}:{line}")


def _jsonl(source: str, text_column: str, id_column: str | None) -> Iterator[tuple[object, str]]:
    with _binary(source) as handle:
        for number, line in enumerate(text_lines(handle, source), start=1):
            where = f"{source}:{number}"
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not a JSON object ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{where}: not a JSON object")
            require_columns(record.keys(), where, (text_column, id_column))
            yield (record[id_column] if id_column else number), _checked(record[text_column], where)


def _parquet(source: str, text_column: str, id_column: str | None) -> Iterator[tuple[object, str]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading Parquet needs pyarrow: pip install 'geostance[parquet]'") from None
    try:
        parquet = pq.ParquetFile(source)
    except Exception as exc:  # pyarrow raises its own error types for a file that is not Parquet
        raise DataError(f"{source}: not a Parquet file ({exc})") from None
    require_columns(parquet.schema_arrow.names, source, (text_column, id_column))
    columns = [text_column] + ([id_column] if id_column else [])
    offset = 0
    for batch in parquet.iter_batches(batch_size=2000, columns=columns):
        texts = batch.column(text_column).to_pylist()
        ids = (
            batch.column(id_column).to_pylist()
            if id_column
            else range(offset + 1, offset + 1 + len(texts))
        )
        for document, text in zip(ids, texts, strict=True):
            yield document, _checked(text, f"{source}: document {document}")
        offset += len(texts)


def classify_documents(
    model,
    chunks: Iterable[pd.DataFrame],
    *,
    jobs: int = 1,
    min_confidence: float | None = None,
    explain: int = 0,
    summary: bool = True,
    resolve: bool = False,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame | None, int]]:
    """Yield (mentions, summary or None without `summary`, documents in the chunk) per chunk,
    in input order.

    With jobs > 1, chunks are classified in that many processes; only a few chunks are in
    flight at once, so memory stays bounded. Every document is classified on its own, so the
    output does not depend on chunk size or jobs.
    """
    options = (min_confidence, explain, summary, resolve)
    if jobs == 1:
        yield from (_classify_chunk(model.estimator, *options, chunk) for chunk in chunks)
        return
    from concurrent.futures import ProcessPoolExecutor

    # The model goes to each worker once, at start; chunks carry only documents. At most two
    # chunks per worker are in flight, so memory stays bounded however long the input.
    with ProcessPoolExecutor(jobs, initializer=_start_worker, initargs=(model.estimator,)) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(pool.submit(_classify_in_worker, *options, chunk))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


_WORKER: dict = {}


def _start_worker(estimator) -> None:
    _WORKER["estimator"] = estimator


def _classify_in_worker(*arguments):
    return _classify_chunk(_WORKER["estimator"], *arguments)


def _classify_chunk(
    estimator,
    min_confidence: float | None,
    explain: int,
    summary: bool,
    resolve: bool,
    documents: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame | None, int]:
    mentions = classify_mentions(
        estimator, documents, min_confidence=min_confidence, explain=explain, resolve=resolve
    )
    return mentions, summarise(mentions) if summary else None, len(documents)


def output_format(path: str, given: str | None) -> str:
    """The format named by --output-format, else by the file's suffix (stdout: CSV)."""
    if given:
        return given
    if path == "-":
        return "csv"
    found = SUFFIX_FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise DataError(
            f"{path}: cannot tell the output format; use .csv, .jsonl or .parquet or --output-format"
        )
    return found


class TableWriter:
    """Append frames to a CSV, JSONL or Parquet file that appears only when `close()` succeeds."""

    def __init__(self, path: str, fmt: str):
        if fmt not in OUTPUT_FORMATS:
            raise DataError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}")
        if path == "-" and fmt == "parquet":
            raise DataError("Parquet cannot be written to stdout; give a file name")
        if fmt == "parquet":
            try:
                import pyarrow.parquet  # noqa: F401
            except ImportError:
                raise DataError(
                    "writing Parquet needs pyarrow: pip install 'geostance[parquet]'"
                ) from None
        self.path, self.format = path, fmt
        self._parquet = None
        self._first = True
        self._temporary = None
        if path == "-":
            self._handle = sys.stdout
            return
        target = Path(path)
        if not target.parent.is_dir():
            raise DataError(f"{path}: folder {target.parent} does not exist")
        descriptor, self._temporary = temporary_file(target)
        if fmt == "parquet":
            self._handle = os.fdopen(descriptor, "wb")
        else:
            self._handle = os.fdopen(descriptor, "w", encoding="utf-8", newline="")

    def write(self, frame: pd.DataFrame) -> None:
        try:
            self._write(frame)
        except OSError as exc:  # a full disk: name the user's file, not the temporary one
            raise DataError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def _write(self, frame: pd.DataFrame) -> None:
        if self.format == "csv":
            frame.to_csv(self._handle, index=False, header=self._first)
        elif self.format == "jsonl":
            for record in frame.to_dict("records"):
                self._handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        else:
            import pyarrow.parquet as pq

            table = _arrow_table(frame)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._handle, table.schema)
            self._parquet.write_table(table)
        self._first = False

    def close(self) -> None:
        try:
            if self._parquet is not None:
                self._parquet.close()
            if self._temporary is None:
                self._handle.flush()
                return
            self._handle.close()
            os.replace(self._temporary, self.path)
        except OSError as exc:
            self.abort()
            raise DataError(f"{self.path}: cannot write ({exc.strerror or exc})") from None

    def abort(self) -> None:
        """Drop the temporary file, even when closing it fails (a full disk)."""
        if self._temporary is None:
            return
        try:
            self._handle.close()
        except OSError:
            pass
        finally:
            Path(self._temporary).unlink(missing_ok=True)


def _arrow_table(frame: pd.DataFrame):
    """Fixed column types, so every chunk (even an empty one) has the same Parquet schema."""
    import pyarrow as pa

    def kind(column: str):
        if column.startswith("p_"):
            return pa.float64()
        if column in ("sentence", "mentions", "favor", "against", "neutral", "uncertain"):
            return pa.int64()
        return pa.string()

    schema = pa.schema([(c, kind(c)) for c in frame.columns])
    frame = frame.astype({c: str for c in frame.columns if kind(c) == pa.string()})
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
