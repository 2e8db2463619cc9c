"""One self-contained HTML page for a classified corpus: what an analyst reads instead of CSVs.

From a mentions table (`geostance classify --input ... --output`) or straight from documents,
it shows per country the count of each label, a net stance ((favor - against) / mentions) with
a bootstrap interval over documents, the surest favor and against sentences with the country
highlighted, and, when asked, net stance per group (outlet, author) and per month. Charts are
inline SVG, styles and script inline: the file opens in any browser with no network.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from geostance.classify import MENTION_COLUMNS, UNCERTAIN
from geostance.data import read_csv
from geostance.errors import DataError
from geostance.linear import LABELS

STANCES = (*LABELS, UNCERTAIN)
COLORS = {"favor": "#2b8a3e", "against": "#c92a2a", "neutral": "#868e96", UNCERTAIN: "#dee2e6"}
TOP_COUNTRIES = 40  # countries with evidence sections; the bar chart and table list them all
MONTHLY_COUNTRIES = 6
BOOTSTRAP = 400
TABLES = (".csv", ".jsonl", ".ndjson", ".parquet")


def mentions_of(
    source: str, model, text_column: str, id_column: str | None, keep: dict[str, str | None]
) -> pd.DataFrame:
    """The mentions table of `source`: read as it is when it is one, else its documents
    classified (with explanations, for the highlights). Columns named in `keep` (a group or a
    date; option -> column) come along from a document table, joined by document id."""
    from geostance.batch import classify_documents, read_documents

    path = Path(source)
    table = _read_table(source) if path.is_file() and path.suffix.lower() in TABLES else None
    if table is not None and set(MENTION_COLUMNS) <= set(table.columns):
        return table
    chunks = read_documents(source, text_column=text_column, id_column=id_column)
    parts = [m for m, _, _ in classify_documents(model, chunks, explain=3, summary=False)]
    mentions = pd.concat(parts, ignore_index=True).assign(
        document=lambda f: f["document"].astype(str)
    )
    wanted = [c for c in keep.values() if c]
    if wanted and table is not None:
        for option, column in keep.items():
            if column and column not in table.columns:
                raise DataError(
                    f"{option} {column!r}: no such column in {source} "
                    f"(found: {', '.join(map(str, table.columns))})"
                )
        ids = table[id_column] if id_column else pd.Series(range(1, len(table) + 1))
        extra = table[wanted].set_index(ids.astype(str).to_numpy())
        mentions = mentions.join(extra, on="document")
    return mentions


def _read_table(path: str) -> pd.DataFrame:
    """A table by its suffix; CSV through the project's checked reader (ragged rows refused)."""
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".csv":
            frame = read_csv(path, ())
            numbers = [c for c in frame.columns if c.startswith("p_") or c == "sentence"]
            frame[numbers] = frame[numbers].apply(pd.to_numeric)
        elif suffix in (".jsonl", ".ndjson"):
            frame = pd.read_json(path, lines=True, dtype={"document": str})
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"{path}: give a .csv, .jsonl or .parquet table")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the table ({str(exc).splitlines()[0]})") from None
    return frame


def build(
    mentions: pd.DataFrame,
    *,
    model: dict,
    gazetteer=None,
    group_column: str | None = None,
    date_column: str | None = None,
    evidence: int = 5,
    title: str = "Stance toward countries",
    seed: int = 0,
) -> str:
    """The page's HTML. `model`: name, created_at, metrics (from the model's metadata)."""
    if mentions.empty:
        raise DataError("the mentions table has no rows: no country was mentioned")
    for option, column in (("--group-column", group_column), ("--date-column", date_column)):
        if column and column not in mentions.columns:
            raise DataError(
                f"{option} {column!r}: no such column (found: {', '.join(map(str, mentions.columns))})"
            )
    mentions = mentions.assign(document=mentions["document"].astype(str))
    countries = _countries(mentions, seed)
    figures = {"bars": _bars_svg(countries)}
    if group_column:
        figures["groups"] = _heatmap_svg(mentions, group_column, countries.index[:20])
    if date_column:
        figures["months"] = _months_svg(mentions, date_column, countries.index[:MONTHLY_COUNTRIES])
    shown = countries.index[:TOP_COUNTRIES]
    sections = [
        {
            "country": country,
            "stats": countries.loc[country].to_dict(),
            "rows": _evidence(mentions[mentions["target"] == country], evidence, gazetteer),
        }
        for country in shown
    ]
    return _template().render(
        title=title,
        overview={
            "documents": mentions["document"].nunique(),
            "sentences": mentions[["document", "sentence"]].drop_duplicates().shape[0],
            "mentions": len(mentions),
            "countries": len(countries),
        },
        model=model,
        countries=countries.reset_index().to_dict("records"),
        sections=sections,
        figures=figures,
        evidence=evidence,
        capped=len(countries) > TOP_COUNTRIES,
        top=TOP_COUNTRIES,
        colors=COLORS,
        stances=STANCES,
        group_column=group_column,
        date_column=date_column,
    )


def _countries(mentions: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Per country: mentions, count per label, net stance and its bootstrap 95% interval."""
    counts = mentions.groupby("target")["stance"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=list(STANCES), fill_value=0)
    counts["mentions"] = counts[list(STANCES)].sum(axis=1)
    counts["net"] = (counts["favor"] - counts["against"]) / counts["mentions"]
    low, high = {}, {}
    rng = np.random.default_rng(seed)
    per_document = (
        mentions.assign(
            score=(mentions["stance"] == "favor").astype(int) - (mentions["stance"] == "against")
        )
        .groupby(["target", "document"])["score"]
        .agg(["sum", "size"])
    )
    for country, docs in per_document.groupby(level="target"):
        scores, sizes = docs["sum"].to_numpy(float), docs["size"].to_numpy(float)
        # Resampling documents, not mentions: one op-ed's ten mentions are one opinion.
        weights = rng.poisson(1.0, size=(BOOTSTRAP, len(scores))).astype(float)
        totals = weights @ sizes
        nets = np.divide(weights @ scores, totals, out=np.full(BOOTSTRAP, np.nan), where=totals > 0)
        low[country], high[country] = np.nanpercentile(nets, [2.5, 97.5])
    counts["low"], counts["high"] = pd.Series(low), pd.Series(high)
    counts["documents"] = per_document.groupby(level="target").size()
    return counts.sort_values(["mentions", "net"], ascending=[False, False], kind="stable")


def _evidence(rows: pd.DataFrame, k: int, gazetteer) -> list[dict]:
    """The `k` surest favor and `k` surest against sentences about one country."""
    out = []
    for label in ("favor", "against"):
        picked = rows[rows["stance"] == label].sort_values(f"p_{label}", ascending=False).head(k)
        for row in picked.itertuples(index=False):
            out.append(
                {
                    "label": label,
                    "probability": getattr(row, f"p_{label}"),
                    "document": row.document,
                    "html": _highlight(
                        row.text, row.target, getattr(row, "explanation", ""), gazetteer
                    ),
                }
            )
    return out


_CUE = re.compile(r"(?:^|; )(?:[a-z ]+:)?([^;+'\"]+?) [+-]\d")


def _highlight(text: str, target: str, explanation, gazetteer):
    """The sentence as safe HTML: the country's mentions marked, other countries underlined,
    and the words of the explanation's n-grams in bold. Every piece of text is escaped."""
    from markupsafe import Markup, escape

    spans = []
    if gazetteer is not None:
        for mention in gazetteer.find(text):
            kind = "target" if target in mention.countries else "other"
            spans.append((mention.start, mention.end, kind))
    cues = set()
    if isinstance(explanation, str):
        for ngram in _CUE.findall(explanation):
            cues.update(
                w.lower() for w in re.findall(r"\w+", ngram) if w not in ("TARGET", "OTHER")
            )
    pieces, last = [], 0
    for start, end, kind in spans:
        pieces.append(_cue_words(text[last:start], cues))
        pieces.append(Markup('<mark class="{}">{}</mark>').format(kind, text[start:end]))
        last = end
    pieces.append(_cue_words(text[last:], cues))
    return Markup("").join(pieces) if pieces else escape(text)


def _cue_words(text: str, cues: set[str]):
    from markupsafe import Markup, escape

    if not cues:
        return escape(text)
    parts = re.split(r"(\w+)", text)
    return Markup("").join(
        Markup("<b>{}</b>").format(p) if p.lower() in cues else escape(p) for p in parts
    )


def _svg(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype: it is inlined


def _bars_svg(countries: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = countries.head(30)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(shown) + 0.8))
    left = np.zeros(len(shown))
    for stance in STANCES:
        ax.barh(shown.index, shown[stance], left=left, color=COLORS[stance], label=stance)
        left += shown[stance].to_numpy()
    ax.set_xlabel("mentions")
    ax.legend(loc="lower right", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    return _svg(fig)


def _net(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    signed = (frame["stance"] == "favor").astype(int) - (frame["stance"] == "against")
    return signed.groupby([frame[c] for c in by]).mean()


def _heatmap_svg(mentions: pd.DataFrame, column: str, countries) -> str:
    import matplotlib.pyplot as plt

    rows = mentions[mentions["target"].isin(countries)]
    table = _net(rows, ["target", column]).unstack().reindex(list(countries))
    fig, ax = plt.subplots(figsize=(1.0 * table.shape[1] + 3, 0.3 * table.shape[0] + 1.2))
    image = ax.imshow(table.to_numpy(float), cmap="RdYlGn", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], rotation=30, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    ax.tick_params(labelsize=8)
    fig.colorbar(image, ax=ax, label="net stance (favor - against) / mentions")
    return _svg(fig)


def _months_svg(mentions: pd.DataFrame, column: str, countries) -> str:
    import matplotlib.pyplot as plt

    dates = pd.to_datetime(mentions[column], errors="coerce", format="mixed")
    bad = dates.isna() & mentions[column].notna()
    if bad.any():
        raise DataError(
            f"--date-column {column!r}: cannot read {mentions.loc[bad, column].iloc[0]!r} as a date"
        )
    frame = mentions.assign(month=dates.dt.to_period("M").astype(str))
    net = _net(frame[frame["target"].isin(countries)], ["target", "month"])
    months = sorted(frame["month"].dropna().unique())
    fig, axes = plt.subplots(1, len(countries), figsize=(2.2 * len(countries), 2.2), sharey=True)
    for ax, country in zip(np.atleast_1d(axes), countries, strict=False):
        series = net.get(country, pd.Series(dtype=float)).reindex(months)
        ax.plot(range(len(months)), series.to_numpy(float), marker="o", color="#1c7ed6")
        ax.axhline(0, color="#adb5bd", linewidth=0.8)
        ax.set_title(country, fontsize=9)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xticks(range(len(months)), months, rotation=60, fontsize=6)
    return _svg(fig)


def _template():
    from jinja2 import Environment, PackageLoader, select_autoescape

    environment = Environment(
        loader=PackageLoader("geostance", "templates"), autoescape=select_autoescape(["html"])
    )
    return environment.get_template("page.html")
