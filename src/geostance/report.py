"""Reports and model cards, rendered from the results dict that `run_experiment` returns.

Every number shown is read from that dict, which is also written as `metrics.json`, so the
report, the JSON and the model card cannot disagree.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from geostance.classify import readable_feature  # noqa: E402
from geostance.linear import LABELS  # noqa: E402

EVALUATION_TITLES = {
    "cv": "cross-validation (grouped by sentence or minimal pair, out-of-fold)",
    "test": "held-out test",
    "dev": "real-style dev set (close rewordings of published commentary; never trained on)",
    "data": "the labeled file given (scored by a saved model)",
}


def write_report(out: Path, results: dict) -> None:
    """Write `report.md`, `metrics.json` and the figures into `out` (a staging folder)."""
    (out / "metrics.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    figures = _figures(out, results)
    (out / "report.md").write_text(render(results, figures))


def render(results: dict, figures: list[tuple[str, str]]) -> str:
    name = results["experiment"]
    lines = [f"# Report: {name}", ""]
    lines += _data_section(results.get("data"))
    lines += ["## Scores", "", _headline_table(results), ""]
    lines += [
        "macro-F1 is the mean F1 over favor, against and neutral; F_avg is the mean F1 of favor "
        "and against (SemEval-2016 / TweetEval); intervals are 95% bootstrap intervals "
        "resampling sentences.",
        "",
    ]
    if results.get("references"):
        lines += _references_section(results)
    if results.get("variants"):
        lines += ["## Compared with", "", _variants_table(results), ""]
        lines += _hard_case_comparison(results)
    for key, evaluation in results["evaluations"].items():
        title = EVALUATION_TITLES.get(key, key)
        lines += [f"## Details: {title}", ""]
        if evaluation.get("repeats", 1) > 1:
            lines += [f"Counts below are pooled over the {evaluation['repeats']} repeats.", ""]
        lines += [_per_class_table(evaluation), ""]
        for stratum in ("target", "register", "hard_case"):
            if f"per_{stratum}" in evaluation:
                lines += [
                    f"Per {stratum.replace('_', ' ')}:",
                    "",
                    _stratum_table(evaluation[f"per_{stratum}"]),
                    "",
                ]
    if results.get("cross_target"):
        lines += [
            "## Cross-country check",
            "",
            "Each target's rows held out entirely: the model never saw a row labeled for it.",
            "",
            _stratum_table(results["cross_target"]),
            "",
        ]
    if results.get("cross_style"):
        lines += [
            "## Cross-style check",
            "",
            "Each source style (the outlet group a sentence is modelled on) held out entirely: "
            "trained on every other style and the earlier corpus, scored on the held-out one.",
            "",
            _stratum_table(results["cross_style"]),
            "",
        ]
    if results.get("learning_curve"):
        lines += ["## Learning curve", "", _learning_table(results["learning_curve"]), ""]
    if results.get("search"):
        lines += _search_section(results["search"])
    if "calibration" in results["evaluations"].get("cv", {}):
        lines += _calibration_section(results)
    if results.get("explained"):
        lines += [
            "## Explained predictions",
            "",
            "Each n-gram's TF-IDF value times its weight for the predicted label ([TARGET] is "
            "the placeholder for the target's mentions, [OTHER] for other countries'; quoted "
            "n-grams are character n-grams).",
            "",
        ]
        for e in results["explained"]:
            shown = ", ".join(f"`{readable_feature(n)}` {v:+.2f}" for n, v in e["ngrams"])
            lines += [
                f"- *{_cell(e['text'])}* → **{e['target']}: {e['predicted']}** "
                f"(p = {e['probability']:.2f}; gold: {e['stance']}): {shown}"
            ]
        lines += [""]
    if results.get("timing"):
        t = results["timing"]
        m = t["machine"]
        lines += [
            "## Speed",
            "",
            f"Final fit: {t['fit_seconds']:.1f} s on {t['fit_rows']} rows; prediction: "
            f"{t['predict_rows_per_second']:,.0f} rows/s ({t['predict_rows']} rows in "
            f"{t['predict_seconds']:.2f} s), one process, measured on {m['cpus']} CPUs "
            f"({m['processor']}, {m['system']}, Python {m['python']}).",
            "",
        ]
    if results.get("cue_audit"):
        lines += _cue_audit_section(results["cue_audit"])
    if results.get("top_features"):
        lines += ["## What the model weighs", ""]
        for label, features in results["top_features"].items():
            shown = ", ".join(f"`{readable_feature(n)}` ({w:+.2f})" for n, w in features[:10])
            lines += [f"- **{label}**: {shown}"]
        lines += [""]
    if results.get("errors"):
        lines += [
            "## Error analysis: the most confident mistakes",
            "",
            "| sentence | target | gold | predicted | confidence |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(e['text'])} | {e['target']} | {e['stance']} | {e['predicted']} | {e['confidence']:.2f} |"
            for e in results["errors"]
        ]
        lines += [""]
    if results.get("dev_errors"):
        lines += [
            "Most confident mistakes on the real-style dev set:",
            "",
            "| sentence | target | gold | predicted | confidence |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(e['text'])} | {e['target']} | {e['stance']} | {e['predicted']} | {e['confidence']:.2f} |"
            for e in results["dev_errors"]
        ]
        lines += [""]
    if figures:
        lines += ["## Figures", ""]
        lines += [f"![{title}]({file})\n" for file, title in figures]
    return "\n".join(lines).rstrip() + "\n"


def model_card(results: dict, metadata: dict) -> str:
    """The MODEL_CARD.md of a saved model, from the same results as its report."""
    name = results["experiment"]
    data = results.get("data", {})
    lines = [
        f"# Model card: {name}",
        "",
        "## Intended use",
        "",
        "Classify the author's stance (favor, against, neutral) toward each country a sentence of "
        "political commentary mentions, following the project's labeling guide. It is a "
        "screening aid for analysts: read the sentences behind any conclusion.",
        "",
        "## Data",
        "",
        f"{data.get('train_rows', '?')} training rows from {data.get('train_sentences', '?')} "
        f"sentences; {data.get('test_rows', 0)} held-out test rows; {data.get('dev_rows', 0)} "
        "real-style dev rows (never trained on: the estimate for real commentary).",
        "",
    ]
    lines += [f"- `{f['path']}` sha256 `{f['sha256'][:16]}…`" for f in data.get("files", [])[:12]]
    lines += ["", "## Metrics", "", _headline_table(results), ""]
    lines += [
        "## Hyperparameters",
        "",
        "```json",
        json.dumps(metadata["hyperparameters"], indent=2),
        "```",
        "",
        "## Limits",
        "",
        "- Bag of n-grams: it reads cue words, not argument structure; irony, negation and "
        "reported speech are its known weak spots (see the report's error analysis).",
        "- Targets are found by a gazetteer: unlisted aliases are not mentions, and ambiguous "
        "names (Georgia, Jordan, Chad) can be false hits.",
        "- Trained on an authored corpus; on real-style text (the dev row above) it scores well "
        "below its own-style test split.",
        "",
        "## Files and trust",
        "",
        "Weights only: `model.json` (configuration and gazetteer) and `weights.npz` (NumPy "
        "arrays, loaded with `allow_pickle=False`); nothing in this folder is code. "
        "`metadata.json` holds each file's SHA-256, checked on every load, and an HMAC signature "
        "when the model was trained with `$GEOSTANCE_MODEL_KEY` set: set the same key to have "
        "loading verify it, since only the signature, not the hashes, shows who wrote the files.",
        "",
    ]
    return "\n".join(lines)


def _data_section(data: dict | None) -> list[str]:
    if not data:
        return []
    if "train_rows" in data:
        summary = (
            f"{data['train_rows']} training rows ({data['train_sentences']} sentences), "
            f"{data['test_rows']} test rows."
        )
    else:
        summary = f"{data['test_rows']} rows scored."
    lines = [
        "## Data",
        "",
        summary,
        "",
        "| file | rows | sha256 |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{f['path']}` | {f.get('rows', '')} | `{f['sha256'][:12]}` |" for f in data["files"]
    ]
    counts = data.get("counts") or {}
    if counts:
        lines += [
            "",
            "Rows per target and stance (train + test):",
            "",
            "| target | " + " | ".join(LABELS) + " |",
        ]
        lines += ["|---|" + "---|" * len(LABELS)]
        lines += [
            f"| {t} | " + " | ".join(str(row.get(label, 0)) for label in LABELS) + " |"
            for t, row in counts.items()
        ]
    return lines + [""]


def _fmt(value: float) -> str:
    return f"{100 * value:.1f}"


def _ci(evaluation: dict, metric: str) -> str:
    lo, hi = evaluation.get("ci95", {}).get(metric, [float("nan")] * 2)
    return "" if np.isnan(lo) else f" [{_fmt(lo)}, {_fmt(hi)}]"


def _headline_table(results: dict) -> str:
    rows = ["| evaluation | n | macro-F1 | F_avg | accuracy |", "|---|---|---|---|---|"]
    for key, e in results["evaluations"].items():
        rows.append(
            f"| {EVALUATION_TITLES.get(key, key)} | {e['n']} | {_fmt(e['macro_f1'])}{_ci(e, 'macro_f1')} "
            f"| {_fmt(e['f_avg'])}{_ci(e, 'f_avg')} | {_fmt(e['accuracy'])} |"
        )
    return "\n".join(rows)


def _hard_case_comparison(results: dict) -> list[str]:
    """Per hard-case type, this model beside each trained variant, on each held-out set: where
    a change of data or features helped and where it did not."""
    lines = []
    for key in ("test", "dev"):
        mine = results["evaluations"].get(key, {}).get("per_hard_case")
        if not mine:
            continue
        others = {
            name: v[key]["per_hard_case"]
            for name, v in results["variants"].items()
            if key in v and "per_hard_case" in v[key] and v["n_train"] > 100
        }
        lines += [
            f"Per hard case on the {key} set (macro-F1; n rows):",
            "",
            "| hard case | n | this model | " + " | ".join(others) + " |",
            "|---|---|---|" + "---|" * len(others),
        ]
        for case, s in mine.items():
            cells = [_fmt(o[case]["macro_f1"]) if case in o else "" for o in others.values()]
            lines.append(
                f"| {case} | {s['n']} | {_fmt(s['macro_f1'])} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    return lines


def _variants_table(results: dict) -> str:
    keys = list(results["evaluations"])
    header = (
        "| model | train rows | " + " | ".join(f"{k} macro-F1 | {k} F_avg" for k in keys) + " |"
    )
    rows = [header, "|---|---|" + "---|---|" * len(keys)]
    entries = [
        (
            f"**{results['experiment']}** (this model)",
            results.get("data", {}).get("train_rows", ""),
            results["evaluations"],
        )
    ]
    entries += [(name, v["n_train"], v) for name, v in results["variants"].items()]
    for name, n, evaluations in entries:
        cells = [
            f"{_fmt(evaluations[k]['macro_f1'])} | {_fmt(evaluations[k]['f_avg'])}"
            if k in evaluations
            else " | "
            for k in keys
        ]
        rows.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _calibration_section(results: dict) -> list[str]:
    lines = [
        "## Confidence",
        "",
        "| evaluation | Brier score | ECE |",
        "|---|---|---|",
    ]
    for key, e in results["evaluations"].items():
        if "calibration" in e:
            c = e["calibration"]
            lines.append(
                f"| {EVALUATION_TITLES.get(key, key)} | {c['brier']:.3f} | {c['ece']:.3f} |"
            )
    t = results.get("temperature")
    if t:
        lines += [
            "",
            f"Temperature scaling, cross-fitted on the out-of-fold predictions (fit on half the "
            f"sentences, scored on the other half): ECE {t['before']['ece']:.3f} → "
            f"{t['after']['ece']:.3f}, Brier {t['before']['brier']:.3f} → {t['after']['brier']:.3f}.",
        ]
        dev = t.get("dev")
        if dev:
            lines += [
                "",
                f"On the real-style dev set, the CV temperature gives ECE "
                f"{dev['ece_under_cv_temperature']:.3f} (CV: {dev['cv_ece']:.3f}). Cross-fitted "
                f"on the dev set's two halves, a dev temperature ({dev['fitted_temperature']:.2f}) "
                f"takes its ECE from {dev['before']['ece']:.3f} to {dev['after']['ece']:.3f} and "
                f"its Brier score from {dev['before']['brier']:.3f} to {dev['after']['brier']:.3f}.",
            ]
        source = {"cv": "the out-of-fold predictions", "dev": "the real-style dev set"}
        lines += [
            "",
            f"The saved model uses temperature {t['temperature']:.2f}, fitted on "
            f"{source[t.get('source', 'cv')]}; the held-out rows above are scored with it."
            if t["applied"]
            else "The saved model uses temperature 1: scaling did not help.",
        ]
    return lines + [""]


def _cue_audit_section(audit: dict) -> list[str]:
    lines = [
        "## Cue audit",
        "",
        "Share of each label's top-50 positive weights held by n-grams made only of stop words, "
        "the [TARGET]/[OTHER] placeholders (or pieces of them, for character n-grams) and "
        "punctuation: cues of sentence shape, not of evaluation.",
        "",
        "| label | top positive n-grams | skeletal | share | examples |",
        "|---|---|---|---|---|",
    ]
    for label, a in audit.items():
        shown = ", ".join(f"`{readable_feature(n)}`" for n in a["examples"][:5])
        lines.append(f"| {label} | {a['top']} | {a['skeletal']} | {a['share']:.0%} | {shown} |")
    return lines + [""]


def _references_section(results: dict) -> list[str]:
    test = results["evaluations"].get("test")
    lines = [
        "## Beside published results",
        "",
        "Same test set and metric; published figures as reported by their authors.",
        "",
        "| system | metric | test score |",
        "|---|---|---|",
    ]
    rows = [
        (r["value"], r["name"], r["metric"], r.get("source", "")) for r in results["references"]
    ]
    if test is not None:
        metric = results["references"][0]["metric"]
        rows.append(
            (100 * test[metric], f"**geostance {results['experiment']} (this run)**", metric, "")
        )
    for value, name, metric, source in sorted(rows, reverse=True):
        lines.append(f"| {name}{f' ({source})' if source else ''} | {metric} | {value:.1f} |")
    return lines + [""]


def _per_class_table(evaluation: dict) -> str:
    rows = ["| label | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label, c in evaluation["per_class"].items():
        rows.append(
            f"| {label} | {_fmt(c['precision'])} | {_fmt(c['recall'])} | {_fmt(c['f1'])} | {c['support']} |"
        )
    return "\n".join(rows)


def _stratum_table(table: dict) -> str:
    rows = ["| | n | macro-F1 | F_avg | accuracy |", "|---|---|---|---|---|"]
    for value, s in table.items():
        rows.append(
            f"| {value} | {s['n']} | {_fmt(s['macro_f1'])} | {_fmt(s['f_avg'])} | {_fmt(s['accuracy'])} |"
        )
    return "\n".join(rows)


def _learning_table(curve: list[dict]) -> str:
    rows = [
        "| share of training sentences | training rows | macro-F1 | F_avg |",
        "|---|---|---|---|",
    ]
    rows += [
        f"| {p['fraction']:.0%} | {p['n_train']} | {_fmt(p['macro_f1'])} | {_fmt(p['f_avg'])} |"
        for p in curve
    ]
    return "\n".join(rows)


def _search_section(search: dict) -> list[str]:
    ranked = sorted(search["candidates"], key=lambda c: -c["mean"])
    held = [k for k in ("test", "dev") if k in ranked[0]]
    cases = sorted({case for c in ranked for k in held for case in c[k]["per_hard_case"]})
    cases = [c for c in cases if c != "none"]
    lines = [
        "## Hyperparameter search",
        "",
        f"{len(ranked)} candidates, {search['folds']}-fold grouped CV on the training rows only, "
        f"scored by {search['metric']}; rule: {search['rule']}; chosen: "
        f"`{json.dumps(search['chosen_params'])}` (best mean: `{json.dumps(search['best_params'])}`).",
        "",
    ]
    if held:
        lines += [
            "Each candidate is also scored on the held-out sets by the mean probabilities of its "
            "five fold models (macro-F1; the choice is CV's alone): a choice that wins CV but "
            "loses transfer shows here.",
            "",
        ]
    extra = [f"{k} macro-F1" for k in held] + [f"dev {c}" for c in cases if "dev" in held]
    lines += [
        f"| rank | CV {search['metric']} (mean ± std) | "
        + "".join(f"{e} | " for e in extra)
        + "parameters |",
        "|---|---|" + "---|" * len(extra) + "---|",
    ]
    for i, c in enumerate(ranked, start=1):
        cells = [_fmt(c[k]["macro_f1"]) for k in held]
        if "dev" in held:
            cells += [_fmt(c["dev"]["per_hard_case"].get(case, float("nan"))) for case in cases]
        lines.append(
            f"| {i} | {_fmt(c['mean'])} ± {_fmt(c['std'])} | "
            + "".join(f"{x} | " for x in cells)
            + f"`{json.dumps(c['params'])}` |"
        )
    return lines + [""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _figures(out: Path, results: dict) -> list[tuple[str, str]]:
    figures = []
    evaluations = results["evaluations"]
    fig, axes = plt.subplots(
        1, len(evaluations), figsize=(4.2 * len(evaluations), 3.8), squeeze=False
    )
    for ax, (key, e) in zip(axes[0], evaluations.items(), strict=True):
        matrix = np.array(e["confusion"]["matrix"])
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(LABELS)), LABELS)
        ax.set_yticks(range(len(LABELS)), LABELS)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(key)
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                color="white" if v > matrix.max() / 2 else "black",
            )
    figures.append(_save(fig, out / "confusion.png", "Confusion matrix"))

    per_target = {k: e["per_target"] for k, e in evaluations.items() if "per_target" in e}
    if per_target:
        targets = sorted({t for table in per_target.values() for t in table})
        fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(targets) + 2), 3.8))
        width = 0.8 / len(per_target)
        for i, (key, table) in enumerate(per_target.items()):
            values = [table.get(t, {}).get("macro_f1", np.nan) for t in targets]
            ax.bar(np.arange(len(targets)) + i * width, values, width, label=key)
        ax.set_xticks(
            np.arange(len(targets)) + width * (len(per_target) - 1) / 2,
            targets,
            rotation=60,
            ha="right",
        )
        ax.set_ylabel("macro-F1")
        ax.set_ylim(0, 1)
        ax.legend()
        figures.append(_save(fig, out / "per_target_f1.png", "Macro-F1 per target"))

    calibrated = {k: e["calibration"] for k, e in evaluations.items() if "calibration" in e}
    if calibrated:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
        for key, c in calibrated.items():
            points = c["bins"]
            ax.plot(
                [p["confidence"] for p in points],
                [p["accuracy"] for p in points],
                marker="o",
                label=key,
            )
        ax.set_xlabel("confidence (top probability)")
        ax.set_ylabel("accuracy")
        ax.legend()
        figures.append(_save(fig, out / "reliability.png", "Reliability diagram"))

    if results.get("learning_curve"):
        curve = results["learning_curve"]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for metric in ("macro_f1", "f_avg"):
            ax.plot(
                [p["n_train"] for p in curve], [p[metric] for p in curve], marker="o", label=metric
            )
        ax.set_xlabel("training rows")
        ax.set_ylabel("cross-validated score")
        ax.set_ylim(0, 1)
        ax.legend()
        figures.append(_save(fig, out / "learning_curve.png", "Learning curve"))

    if results.get("top_features"):
        top = results["top_features"]
        fig, axes = plt.subplots(1, len(top), figsize=(4.2 * len(top), 4.5), squeeze=False)
        for ax, (label, features) in zip(axes[0], top.items(), strict=True):
            names = [n for n, _ in features][::-1]
            ax.barh(range(len(names)), [w for _, w in features][::-1])
            ax.set_yticks(range(len(names)), names, fontsize=8)
            ax.set_title(label)
        figures.append(_save(fig, out / "top_features.png", "Heaviest n-grams per label"))
    return figures


def _save(fig, path: Path, title: str) -> tuple[str, str]:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name, title
