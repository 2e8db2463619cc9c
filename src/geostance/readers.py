"""Bounded, checked readers of what users hand in: files, streams of lines, CSV records.

Every failure is a DataError that names the file, line and byte offset; nothing is read whole
that could be endless. Kept free of pandas, so classifying one text starts quickly.
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from geostance.errors import DataError

# One document to classify may be at most this many bytes: beyond it, memory and time grow
# with no answer worth waiting for; the message says to split the document.
MAX_DOCUMENT_BYTES = 1_000_000
csv.field_size_limit(4 * MAX_DOCUMENT_BYTES)


def decode(raw: bytes, where: str) -> str:
    """UTF-8 text of `raw` (a BOM is dropped); DataError naming `where` for other bytes."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    if "\x00" in text:
        raise DataError(f"{where}: binary data, not text")
    return text


def read_text(path: str | Path, limit: int | None = None) -> str:
    """The UTF-8 text of a file (`-` is stdin); DataError if unreadable, binary, empty, or
    (with `limit`) longer than `limit` bytes, which is never read whole."""
    name = "<stdin>" if str(path) == "-" else str(path)
    size = -1 if limit is None else limit + 1
    try:
        if name == "<stdin>":
            raw = sys.stdin.buffer.read(size)
        else:
            with Path(path).open("rb") as handle:
                raw = handle.read(size)
    except IsADirectoryError:
        raise DataError(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror})") from None
    if limit is not None and len(raw) > limit:
        raise DataError(too_long(name, limit))
    text = decode(raw, name)
    if not text.strip():
        raise DataError(f"{name}: the file is empty")
    return text


def too_long(where: str, limit: int = MAX_DOCUMENT_BYTES) -> str:
    return f"{where}: a document is longer than {limit:,} bytes; split it into smaller documents"


def text_lines(handle, name: str, limit: int = MAX_DOCUMENT_BYTES) -> Iterator[str]:
    """Decoded lines of a binary stream, each read with a bounded buffer.

    Errors name the line and the byte offset in the whole stream; a line over `limit` bytes or
    NUL bytes anywhere (a binary file) are refused.
    """
    offset = 0
    for number in itertools.count(1):
        raw = handle.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit:
            raise DataError(too_long(f"{name}:{number}", limit))
        if b"\x00" in raw:
            raise DataError(
                f"{name}: binary data, not text (NUL byte at offset {offset + raw.index(0)})"
            )
        try:
            text = raw.decode("utf-8-sig" if offset == 0 else "utf-8")
        except UnicodeDecodeError as exc:
            bom = 3 if offset == 0 and raw.startswith(b"\xef\xbb\xbf") else 0
            raise DataError(
                f"{name}:{number}: not UTF-8 text (invalid byte at offset "
                f"{offset + exc.start + bom})"
            ) from None
        offset += len(raw)
        yield text


def csv_records(lines: Iterable[str], name: str) -> tuple[list[str], Iterator[tuple[int, list]]]:
    """The header of CSV `lines` and an iterator of (line number, fields padded to it).

    A row with more fields than the header is an error: pandas would silently take the extra
    field for an index and shift every column.
    """
    reader = csv.reader(lines)
    try:
        header = next((row for row in reader if row), None)
    except csv.Error as exc:
        raise DataError(f"{name}:{reader.line_num}: not a valid CSV file ({exc})") from None
    if header is None:
        raise DataError(f"{name}: the file is empty")
    if len(set(header)) != len(header):
        raise DataError(f"{name}:1: the header repeats a column name ({', '.join(header)})")

    def rows() -> Iterator[tuple[int, list]]:
        try:
            for row in reader:
                if not row:
                    continue
                if len(row) > len(header):
                    raise DataError(
                        f"{name}:{reader.line_num}: {len(row)} fields but the header has "
                        f"{len(header)} (quote fields that contain commas)"
                    )
                yield reader.line_num, row + [""] * (len(header) - len(row))
        except csv.Error as exc:
            raise DataError(f"{name}:{reader.line_num}: not a valid CSV file ({exc})") from None

    return header, rows()


def require_columns(columns: Iterable[str], where: str, required: Iterable[str]) -> None:
    columns = list(columns)
    missing = [c for c in required if c and c not in columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(map(str, columns))})"
        )
