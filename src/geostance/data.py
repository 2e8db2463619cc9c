"""Reading and validating the data sources: labeled CSV files and the TweetEval stance layout.

Every source becomes the same frame: one row per (sentence, target) with at least
`sentence_id, text, target, stance, source`, so one estimator and one evaluation serve all.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from geostance.errors import DataError
from geostance.linear import LABELS
from geostance.readers import csv_records, read_text, require_columns

REQUIRED_COLUMNS = ("sentence_id", "text", "target", "stance", "source")
TWEETEVAL_LABELS = {"0": "neutral", "1": "against", "2": "favor"}
TWEETEVAL_TAG = "#SemST"


def read_csv(path: str | Path, required: Iterable[str]) -> pd.DataFrame:
    """Read a UTF-8 CSV of strings (`-` is stdin) and check that `required` columns exist."""
    name = "<stdin>" if str(path) == "-" else str(path)
    text = read_text(path)
    header, rows = csv_records(io.StringIO(text, newline=""), name)
    require_columns(header, name, required)
    return pd.DataFrame([row for _, row in rows], columns=header, dtype=object).astype(str)


def check_texts(frame: pd.DataFrame, name: str, columns: Iterable[str] = ("text", "target")):
    """Raise on the first row whose text or target is empty, naming its line."""
    for column in columns:
        empty = frame[column].str.strip() == ""
        if empty.any():
            line = int(empty.to_numpy().argmax()) + 2
            raise DataError(f"{name}:{line}: empty {column}")


def read_labeled(paths: Iterable[str | Path], countries: Iterable[str] | None = None):
    """Read and validate labeled CSV files into one frame.

    Checks, naming file and line: required columns, empty text or target, labels outside
    favor/against/neutral, targets outside `countries` (when given), one text per sentence_id,
    and duplicate or conflicting rows for the same (sentence_id, target), across all files.
    Adds a `file` column: the path each row was read from.
    """
    known = None if countries is None else frozenset(countries)
    frames, seen = [], {}
    for path in paths:
        name = str(path)
        frame = read_csv(path, REQUIRED_COLUMNS)
        if frame.empty:
            raise DataError(f"{name}: no labeled rows, only a header")
        check_texts(frame, name, ("sentence_id", "text", "target", "stance", "source"))
        for i, row in enumerate(frame.itertuples(index=False)):
            where = f"{name}:{i + 2}"
            if row.stance not in LABELS:
                raise DataError(f"{where}: stance {row.stance!r} is not one of {', '.join(LABELS)}")
            if known is not None and row.target not in known:
                raise DataError(f"{where}: unknown target {row.target!r} (not in the gazetteer)")
            key = (row.sentence_id, row.target)
            if key in seen:
                first, stance = seen[key]
                what = "duplicate" if stance == row.stance else "conflicting duplicate"
                raise DataError(f"{where}: {what} of {first} for {row.sentence_id}/{row.target}")
            seen[key] = (where, row.stance)
        frames.append(frame.assign(file=name))
    if not frames:
        raise DataError("no labeled data files given")
    data = pd.concat(frames, ignore_index=True)
    texts = data.groupby("sentence_id")["text"].nunique()
    if (texts > 1).any():
        raise DataError(f"sentence_id {texts[texts > 1].index[0]!r} has different texts")
    return data


def read_tweeteval(root: str | Path, splits: Iterable[str]) -> pd.DataFrame:
    """Read the TweetEval stance layout (`TARGET/{split}_text.txt`, `{split}_labels.txt`).

    The target is the folder name; labels map none -> neutral, against, favor; the organisers'
    `#SemST` tag is stripped because it is on every tweet and carries no information.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"{root}: no TweetEval stance folder here (get it from the public TweetEval "
            "repository, datasets/stance/, or pass --data PATH)"
        )
    targets = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not targets:
        raise DataError(f"{root}: no target folders (expected abortion/, atheism/, ...)")
    rows = []
    for target in targets:
        for split in splits:
            texts = _read_lines(root / target / f"{split}_text.txt")
            labels = _read_lines(root / target / f"{split}_labels.txt")
            if len(texts) != len(labels):
                raise DataError(
                    f"{root / target}: {split} has {len(texts)} texts but {len(labels)} labels"
                )
            for i, (text, label) in enumerate(zip(texts, labels, strict=True)):
                if label.strip() not in TWEETEVAL_LABELS:
                    raise DataError(
                        f"{root / target / f'{split}_labels.txt'}:{i + 1}: label {label!r} "
                        "is not 0, 1 or 2"
                    )
                rows.append(
                    {
                        "sentence_id": f"{target}-{split}-{i}",
                        "text": text.replace(TWEETEVAL_TAG, "").strip(),
                        "target": target,
                        "stance": TWEETEVAL_LABELS[label.strip()],
                        "source": "tweeteval",
                        "split": split,
                    }
                )
    return pd.DataFrame(rows)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def groups(frame: pd.DataFrame) -> pd.Series:
    """The unit rows are split and resampled by: a contrast pair (`pair_id`) where the row has
    one, else its sentence, so no near-copy of a test sentence is ever trained on."""
    if "pair_id" not in frame.columns:
        return frame["sentence_id"]
    return frame["pair_id"].where(frame["pair_id"].fillna("") != "", frame["sentence_id"])


def describe(frame: pd.DataFrame) -> str:
    """Markdown tables of a labeled frame: rows per target x stance, register, hard case, split.

    The data card's counts are this function's output, checked by a test.
    """

    def table(index: str) -> list[str]:
        counts = frame.groupby([index, "stance"]).size().unstack(fill_value=0)
        counts = counts.reindex(columns=list(LABELS), fill_value=0)
        counts["rows"] = counts.sum(axis=1)
        counts = counts.sort_values("rows", ascending=False, kind="stable")
        total = counts.sum()
        head = f"| {index} | " + " | ".join(counts.columns) + " |"
        lines = [head, "|---" * (len(counts.columns) + 1) + "|"]
        lines += [f"| {i} | " + " | ".join(map(str, row)) + " |" for i, row in counts.iterrows()]
        lines.append("| **all** | " + " | ".join(str(v) for v in total) + " |")
        return lines

    frame = frame.replace({c: {"": "none"} for c in ("register", "hard_case")})
    sentences = frame["sentence_id"].nunique()
    out = [f"{len(frame)} rows, {sentences} sentences, {frame['target'].nunique()} targets.", ""]
    if "file" in frame.columns:
        out += (
            [
                "Shape per file (words per sentence; share of sentences naming 2+ countries, and",
                "of those, the share with different stances toward them; label shares of rows):",
                "",
            ]
            + shape_table(frame)
            + [""]
        )
    for column in ("target", "register", "hard_case", "split", "source"):
        if column in frame.columns:
            out += table(column) + [""]
    if "register" in frame.columns:
        out += ["Rows per target and register, as favor / against / neutral:", ""]
        out += target_by_register(frame) + [""]
    return "\n".join(out).rstrip() + "\n"


def shape_table(frame: pd.DataFrame) -> list[str]:
    """Per file and in all: how long sentences run, how often they name several countries and
    judge them differently, and the label mix; real commentary runs long and mixed."""

    def shape(rows: pd.DataFrame) -> list[str]:
        per_sentence = rows.groupby("sentence_id", sort=False)
        words = per_sentence["text"].first().str.split().str.len()
        targets = per_sentence["target"].nunique()
        stances = per_sentence["stance"].nunique()
        multi = targets >= 2
        shares = rows["stance"].value_counts(normalize=True)
        return [
            str(len(words)),
            str(len(rows)),
            f"{words.median():.0f}",
            f"{words.quantile(0.9):.0f}",
            f"{multi.mean():.0%}",
            f"{(stances[multi] > 1).mean():.0%}" if multi.any() else "-",
            *(f"{shares.get(label, 0):.0%}" for label in LABELS),
            str(rows["target"].nunique()),
        ]

    head = (
        "| file | sentences | rows | median words | p90 words | 2+ countries | different "
        "stances | favor | against | neutral | countries |"
    )
    lines = [head, "|---" * 11 + "|"]
    for name, rows in frame.groupby("file", sort=False):
        lines.append(f"| {Path(name).name} | " + " | ".join(shape(rows)) + " |")
    lines.append("| **all** | " + " | ".join(shape(frame)) + " |")
    return lines


def target_by_register(frame: pd.DataFrame, top: int = 6) -> list[str]:
    """The `top` most frequent targets (the rest pooled as "other") x register x stance."""
    leading = frame["target"].value_counts().index[:top]
    target = frame["target"].where(frame["target"].isin(leading), "other")
    registers = sorted(frame["register"].unique())
    lines = ["| target | " + " | ".join(registers) + " |", "|---" * (len(registers) + 1) + "|"]
    for name in [*leading, "other"]:
        rows = frame[target == name]
        cells = []
        for register in registers:
            stances = rows.loc[rows["register"] == register, "stance"].value_counts()
            cells.append(" / ".join(str(stances.get(label, 0)) for label in LABELS))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
