"""The report's files: report.md (the one source), report.html rendered from it (self-contained: images inlined,
raw HTML disabled), the tables, the summary and the plots, written together in one atomic swap. Every name that
comes from the data (classes, families, the task, the source, drift folds and roles) enters the Markdown through
markup.md_escape, so it reads as itself and can add no image, link or markup, in report.html or in any other
viewer of report.md."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.compare import StudyResult
from ..analysis.results import PRIMARY
from ..atomic import atomic_dir, write_json
from ..markup import md_escape
from .format import plural, signed
from .plots import plots_for
from .published import PUBLISHED_SOURCE, published_mismatch, published_rows
from .robustness import corruptions, noise_sources, robustness_lines, robustness_table
from .sentences import RunInfo, answer, header, warnings
from .tables import family_table, headline_metrics, hypotheses_table, power_table, study_table, summary


def md_cell(value) -> str:
    """A cell of the project's own text (figures, architecture names): kept on one line, '|' escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def table_md(df: pd.DataFrame, names: tuple[str, ...] = ()) -> str:
    """A Markdown table; the columns in `names` hold names from the data and are escaped in full."""
    if not len(df):
        return "(none)"
    return df.apply(lambda col: col.map(md_escape if col.name in names else md_cell)).to_markdown(index=False)


def drift_section(drift_dir: Path | None, prediction_dir: Path | None) -> list[str]:
    """Markdown lines summarizing the drift stages' results, linking their reports (relative to reports/study)."""
    lines = []
    path = Path(drift_dir) / "summary.json" if drift_dir is not None else None
    if path is not None and path.is_file():
        lines += [
            "| fold | role | records | drifted columns | dataset drift |",
            "| --- | --- | ---: | ---: | --- |",
        ]
        for name, v in json.loads(path.read_text()).items():
            lines.append(
                f"| {md_escape(name.removeprefix('fold_'))} | {md_escape(v['role'])} | {int(v['records'])} | "
                f"{int(v['drifted_columns'])}/{int(v['columns'])} | {'**yes**' if v['dataset_drift'] else 'no'} |"
            )
        lines += ["", f"Reports: [drift between folds](../{Path(drift_dir).name}/index.html)."]
    path = Path(prediction_dir) / "summary.json" if prediction_dir is not None else None
    if path is not None and path.is_file():
        p = json.loads(path.read_text())
        lines.append(
            f"Predicted scores of the reference model, test fold against validation fold: "
            f"{int(p['drifted_columns'])}/{int(p['columns'])} classes drift "
            f"([report](../{Path(prediction_dir).name}/index.html))."
        )
    return lines


def render_html(markdown: str, images: dict[str, Path]) -> str:
    """report.md as a self-contained page: images inlined, raw HTML in the Markdown escaped."""
    from markdown_it import MarkdownIt

    for name, path in images.items():
        data = base64.b64encode(path.read_bytes()).decode()
        markdown = markdown.replace(f"](plots/{name}.png)", f"](data:image/png;base64,{data})")
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    style = (
        "body{font-family:sans-serif;max-width:1300px;margin:2em auto;padding:0 1em}table{border-collapse:"
        "collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}img{max-width:100%}"
        "blockquote{border-left:4px solid #d62728;background:#fff3f3;margin:1em 0;padding:.5em 1em}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ecg-crnn study</title>"
        f"<style>{style}</style></head><body>{body}</body></html>"
    )


def robustness_section(st: StudyResult) -> list[str]:
    if not corruptions(st):
        return []
    return [
        "## Robustness",
        "",
        f"Every model scored on the test fold under each corruption of params.yaml's `robustness` section, the same "
        f"corrupted records for every model (paired). Noise: {noise_sources(st)}. Drop: the primary macro-AUROC "
        "under the corruption (mean over its severities) minus the clean one, mean of all seeds [95% CI]; the "
        "robustness curves per severity are in the plots.",
        "",
        *robustness_lines(st),
        "",
        table_md(robustness_table(st)),
        "",
    ]


def learning_curves_section(st: StudyResult) -> list[str]:
    if not st.curves:
        return []
    shares = ", ".join(f"{f:g}" for f in st.curves)
    lines = [
        f"- **{h.a}** against **{h.b}**: {h.verdict.wording} ({signed(h.difference)} "
        f"[{signed(h.interval.lo)}, {signed(h.interval.hi)}]; [learning_curves])"
        for h in st.group("learning_curves")
    ]
    return [
        "## Learning curves",
        "",
        f"Every model trained on nested, patient-level, stratified shares of the training folds ({shares}); every "
        "share gets the same optimizer steps per epoch (a smaller share is passed over more often), so data is not "
        "confounded with training length. The question: does a gap between architectures change with less data "
        "(a difference of differences; negative: the first falls further behind with less data)?",
        "",
        *lines,
        "",
    ]


def overfitting_section(st: StudyResult) -> list[str]:
    if not any(np.isfinite(g["gap_kept"].point) for g in st.gaps.values()):
        return []
    rows = []
    for m in sorted(st.models.values(), key=lambda m: (m.window, m.depth, m.rnn_type)):
        g = st.gaps[m.key]
        rows.append(
            {
                "window": f"{m.window:g} s",
                "model": m.arch,
                **{
                    label: f"{signed(g[f].point)} [{signed(g[f].interval.lo)}, {signed(g[f].interval.hi)}]"
                    for f, label in (
                        ("gap_kept", "gap at the kept epoch"),
                        ("gap_last", "gap at the last epoch"),
                        ("fall", "validation fall after its peak"),
                    )
                },
            }
        )
    lines = [
        f"- **{h.a}** against **{h.b}**: {h.verdict.wording} ({signed(h.difference)} "
        f"[{signed(h.interval.lo)}, {signed(h.interval.hi)}]; [overfitting])"
        for h in st.group("overfitting")
    ]
    return [
        "## Overfitting",
        "",
        f"Each epoch, a fixed subset of {st.params.train.train_score_records:,} training records (the same for every "
        "run) is scored as the validation fold is; the generalization gap is its macro-AUROC minus the validation "
        "fold's, at the epoch whose weights were kept and at the last epoch; mean of seeds [95% CI over seeds]. A gap "
        "is not yet harmful overfitting, and early stopping keeps the peak's weights: how far the validation curve "
        "fell after its peak shows what it masked. Does the gap grow with depth (deepest stack minus one layer)?",
        "",
        *lines,
        "",
        table_md(pd.DataFrame(rows)),
        "",
    ]


def report_markdown(st: StudyResult, info: RunInfo, drift: list[str]) -> str:
    """report.md: what it rests on, caveats, the answer, the tables, the plots, drift."""
    caveats = warnings(st, info)
    mismatch = published_mismatch(st)
    md = ["# How much temporal modeling is enough?", "", "## What this rests on", "", *header(st, info), ""]
    if caveats:
        md += ["> " + caveats[0], *[f"> - {c}" for c in caveats[1:]], ""]
    md += [
        "## Answer",
        "",
        *answer(st),
        "",
        "## What this study can resolve",
        "",
        "For each primary hypothesis: its level (its first share of alpha), the power to detect a true difference "
        "of the margin, the smallest difference found with 80% power, and how many seeds per model (or test "
        "folds at this run's seeds, with `segment.rotations`) would resolve the margin, sized from an 80% upper "
        "confidence bound on the seed variance (`ecg-crnn power` does the same for another target).",
        "",
        table_md(power_table(st)),
        "",
        "## Study table",
        "",
        'Mean of all seeds [95% CI]; "vs best": the adequacy question (non-inferior to the model chosen on '
        "validation within the margin), on the confirmation seeds.",
        "",
        table_md(study_table(st, info.recipes)),
        "",
        "## The published figures beside this run's",
        "",
        f"{PUBLISHED_SOURCE}; a figure is beaten when this run's whole 95% interval is on the better side "
        "of the published number. The published thresholds and splits may differ."
        + (f" **Not comparable here**: {mismatch}; shown for reference only." if mismatch else ""),
        "",
        table_md(published_rows(st)),
        "",
        "## Where recurrence helps, by label family",
        "",
        "Mean per-class test AUROC of the best recurrent model (chosen on validation) minus the CNN's, on the "
        "confirmation seeds, with 95% CI and verdict; families ranked by their gain on the selection seeds' "
        "validation fold.",
        "",
        table_md(family_table(st), names=("family", "classes")),
        "",
        *robustness_section(st),
        *learning_curves_section(st),
        *overfitting_section(st),
        "## Plots",
        "",
        *[f"![{name}](plots/{name}.png)" for name in plots_for(st)],
        "",
        f"Every hypothesis with its contrast, tests, p-values, share of alpha, level reached and verdict: "
        f"`tests.csv` ({plural(len(st.hypotheses), 'hypothesis', 'hypotheses')}).",
    ]
    if drift:
        md += ["", "## Drift between folds", "", *drift]
    return "\n".join(md) + "\n"


def write_report(
    st: StudyResult,
    info: RunInfo,
    out_dir: Path,
    metrics_path: Path | None = None,
    drift_dir: Path | None = None,
    prediction_drift_dir: Path | None = None,
) -> dict:
    """Every file of reports/study, swapped in at once, and the DVC metric."""
    text = report_markdown(st, info, drift_section(drift_dir, prediction_drift_dir))
    result = summary(st)
    with atomic_dir(out_dir) as tmp:
        (tmp / "plots").mkdir()
        plots = plots_for(st)
        for name, fn in plots.items():
            fn(st, tmp / "plots" / f"{name}.png")
        study_table(st, info.recipes).to_csv(tmp / "study.csv", index=False)
        hypotheses_table(st).to_csv(tmp / "tests.csv", index=False)
        power_table(st).to_csv(tmp / "power.csv", index=False)
        family_table(st).to_csv(tmp / "family_gains.csv", index=False)
        (tmp / "report.md").write_text(text)
        (tmp / "report.html").write_text(render_html(text, {n: tmp / "plots" / f"{n}.png" for n in plots}))
        (tmp / "summary.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    if metrics_path is not None:
        write_json(metrics_path, headline_metrics(st))
    best = st.models[st.best]
    print(
        f"compare: best {best.name} ({st.point(st.best, PRIMARY):.4f}) -> {out_dir}/report.html",
        file=sys.stderr,
    )
    return result
