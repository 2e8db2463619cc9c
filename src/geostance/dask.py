"""Classify a Dask DataFrame of documents across a cluster (optional extra: geostance[dask]).

    import dask.dataframe as dd
    from geostance import load_model
    from geostance.dask import classify_dataframe

    documents = dd.read_parquet("s3://bucket/op-eds/")          # columns: id, text
    mentions = classify_dataframe(documents, load_model(), id_column="id")
    mentions.to_parquet("mentions/")                             # computed on the cluster

Each partition is classified by the same code as `geostance classify --input`, so the rows are
identical to a local run; the model travels to the workers once, inside the task graph.
"""

from __future__ import annotations

import pandas as pd

from geostance.classify import MENTION_COLUMNS, classify_mentions, explain_columns

try:
    import dask.dataframe as dd
except ImportError as exc:  # the extra is optional; say how to get it
    raise ImportError("geostance.dask needs Dask: pip install 'geostance[dask]'") from exc


def classify_dataframe(
    documents: dd.DataFrame,
    model,
    *,
    text_column: str = "text",
    id_column: str | None = None,
    min_confidence: float | None = None,
    explain: int = 0,
) -> dd.DataFrame:
    """A lazy Dask DataFrame of mentions (columns as `geostance classify --input` writes).

    documents: one row per document with `text_column` (and `id_column`, else the index is
    the document id). model: a `SavedModel` from `geostance.load_model`.
    """
    for column in (text_column, id_column):
        if column and column not in documents.columns:
            raise ValueError(f"no column {column!r} in the Dask DataFrame")
    columns = MENTION_COLUMNS + explain_columns(model.estimator, explain)
    meta = pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in columns})
    return documents.map_partitions(
        _classify_partition,
        model.estimator,
        text_column,
        id_column,
        min_confidence,
        explain,
        meta=meta,
        align_dataframes=False,
    )


def _classify_partition(
    partition: pd.DataFrame, estimator, text_column, id_column, min_confidence, explain
) -> pd.DataFrame:
    ids = partition[id_column] if id_column else partition.index
    documents = pd.DataFrame(
        {"document": ids.to_numpy(), "text": partition[text_column].to_numpy()}
    )
    mentions = classify_mentions(
        estimator, documents, min_confidence=min_confidence, explain=explain
    )
    return mentions.astype({c: _dtype(c) for c in mentions.columns})


def _dtype(column: str) -> str:
    """Fixed types, as the batch Parquet writer uses: ids and texts are strings, so Parquet
    output has one schema whatever the partition holds."""
    if column.startswith("p_"):
        return "float64"
    return "int64" if column == "sentence" else "string"
