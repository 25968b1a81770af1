"""The comparison stage: the study table, paired bootstrap tests, plots and a report that states the answer.

Paired tests: every architecture was scored on the same bootstrap resamples of the test fold, so the
difference of two architectures is computed resample by resample; its 95% interval and a two-sided
bootstrap p-value say whether the difference is more than resampling noise.
"""

from __future__ import annotations

import base64
import html
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from .atomic import atomic_dir  # noqa: E402
from .errors import EcgCrnnError  # noqa: E402
from .metrics import HEADLINE  # noqa: E402
from .models import get_architecture  # noqa: E402

TYPES = ("lstm", "gru", "bilstm", "bigru")
LABELS = {"lstm": "LSTM", "gru": "GRU", "bilstm": "BiLSTM", "bigru": "BiGRU"}


@dataclass
class StudyResults:
    metrics: pd.DataFrame  # one row per architecture
    bootstrap: dict[str, pd.DataFrame]
    per_class: pd.DataFrame  # architecture x class AUROC
    families: dict[str, str]
    predictions: dict[str, dict]


def load_results(evaluation_dir: Path, architectures: list[str]) -> StudyResults:
    rows, boots, per_class, preds, families = [], {}, {}, {}, {}
    for arch in architectures:
        d = Path(evaluation_dir) / arch
        try:
            m = json.loads((d / "metrics.json").read_text())
            boots[arch] = pd.read_csv(d / "bootstrap.csv")
            pc = pd.read_csv(d / "per_class.csv")
            npz = np.load(d / "predictions.npz")
        except FileNotFoundError as exc:
            raise EcgCrnnError(f"{exc.filename}: missing (evaluate {arch} first)") from None
        arch_info = get_architecture(arch)
        rows.append({"arch": arch, "type": arch_info.family, "depth": arch_info.layers, **m})
        per_class[arch] = pc.set_index("class")["auroc"]
        families.update(dict(zip(pc["class"], pc["family"], strict=True)))
        preds[arch] = {"y": npz["test_y"], "p": npz["test_p"]}
    lengths = {len(b) for b in boots.values()}
    if len(lengths) != 1:
        raise EcgCrnnError("evaluations used different bootstrap resamples; re-run the evaluate stages")
    return StudyResults(
        pd.DataFrame(rows).set_index("arch"), boots, pd.DataFrame(per_class).T, families, preds
    )


def paired_test(res: StudyResults, a: str, b: str, metric: str = "macro_auroc") -> dict:
    """a minus b on the full test fold, with the 95% interval and two-sided p-value of the paired bootstrap."""
    diff = res.bootstrap[a][metric].to_numpy() - res.bootstrap[b][metric].to_numpy()
    diff = diff[np.isfinite(diff)]
    point = float(res.metrics.loc[a, metric] - res.metrics.loc[b, metric])
    p = float(min(1.0, 2 * min((diff <= 0).mean(), (diff >= 0).mean()))) if a != b else 1.0
    lo, hi = np.percentile(diff, [2.5, 97.5]) if len(diff) else (np.nan, np.nan)
    return {"a": a, "b": b, "metric": metric, "difference": point, "lo": float(lo), "hi": float(hi), "p": p}


def comparisons(res: StudyResults, reference: str) -> pd.DataFrame:
    best = res.metrics["macro_auroc"].idxmax()
    rows = []
    for arch in res.metrics.index:
        vs_best = paired_test(res, arch, best)
        vs_ref = paired_test(res, arch, reference)
        rows.append(
            {
                "arch": arch,
                "vs_best": best,
                "diff_vs_best": vs_best["difference"],
                "diff_vs_best_lo": vs_best["lo"],
                "diff_vs_best_hi": vs_best["hi"],
                "p_vs_best": vs_best["p"],
                "vs_reference": reference,
                "diff_vs_reference": vs_ref["difference"],
                "diff_vs_reference_lo": vs_ref["lo"],
                "diff_vs_reference_hi": vs_ref["hi"],
                "p_vs_reference": vs_ref["p"],
            }
        )
    return pd.DataFrame(rows).set_index("arch")


def family_gains(res: StudyResults) -> pd.DataFrame:
    """Per label family: mean per-class AUROC of the best recurrent architecture minus the plain CNN's."""
    recurrent = [a for a in res.metrics.index if a != "cnn"]
    if "cnn" not in res.metrics.index or not recurrent:
        return pd.DataFrame(columns=["family", "classes", "cnn", "best_recurrent", "gain"])
    best_rnn = res.metrics.loc[recurrent, "macro_auroc"].idxmax()
    rows = []
    for family in sorted(set(res.families.values())):
        classes = [c for c, f in res.families.items() if f == family and c in res.per_class.columns]
        cnn = np.nanmean(res.per_class.loc["cnn", classes].to_numpy(float))
        rnn = np.nanmean(res.per_class.loc[best_rnn, classes].to_numpy(float))
        rows.append(
            {
                "family": family,
                "classes": ", ".join(classes),
                "cnn": cnn,
                "best_recurrent": rnn,
                "architecture": best_rnn,
                "gain": rnn - cnn,
            }
        )
    return pd.DataFrame(rows).sort_values("gain", ascending=False)


# ---- plots ----------------------------------------------------------------------------------------------


def _finish(fig, ax, path: Path) -> None:
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_depth(res: StudyResults, path: Path) -> None:
    m = res.metrics
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for kind in TYPES:
        rows = m[m["type"] == kind].sort_values("depth")
        if "cnn" in m.index:
            rows = pd.concat([m.loc[["cnn"]], rows])
        if len(rows) < 2 and kind not in set(m["type"]):
            continue
        err = np.array(
            [rows["macro_auroc"] - rows["macro_auroc_lo"], rows["macro_auroc_hi"] - rows["macro_auroc"]]
        )
        ax.errorbar(
            rows["depth"] + 0.03 * TYPES.index(kind),
            rows["macro_auroc"],
            yerr=err,
            marker="o",
            capsize=3,
            label=LABELS[kind],
        )
    ax.set_xticks([0, 1, 2, 3])
    ax.set_xlabel("recurrent layers (0 = CNN with pooling only)")
    ax.set_ylabel("test macro-AUROC (95% bootstrap CI)")
    ax.set_title("How much temporal modeling is enough?")
    _finish(fig, ax, path)


def pareto_front(params: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of architectures that no smaller-or-equal model beats, ordered by size."""
    order = np.argsort(params, kind="mergesort")
    front, best = [], -np.inf
    for i in order:
        if score[i] > best:
            front.append(i)
            best = score[i]
    return np.array(front, int)


def plot_frontier(res: StudyResults, path: Path) -> None:
    m = res.metrics
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar(
        m["params"],
        m["macro_auroc"],
        yerr=[m["macro_auroc"] - m["macro_auroc_lo"], m["macro_auroc_hi"] - m["macro_auroc"]],
        fmt="o",
        alpha=0.6,
        capsize=2,
    )
    for arch, row in m.iterrows():
        ax.annotate(
            arch.replace("cnn_", ""),
            (row["params"], row["macro_auroc"]),
            fontsize=8,
            xytext=(3, 3),
            textcoords="offset points",
        )
    front = pareto_front(m["params"].to_numpy(float), m["macro_auroc"].to_numpy(float))
    ax.plot(
        m["params"].to_numpy()[front], m["macro_auroc"].to_numpy()[front], "r--", label="trade-off frontier"
    )
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("test macro-AUROC")
    _finish(fig, ax, path)


def plot_heatmap(res: StudyResults, path: Path) -> None:
    pc = res.per_class
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * pc.shape[1] + 2), max(4, 0.35 * pc.shape[0] + 1.5)))
    im = ax.imshow(
        pc.to_numpy(float),
        aspect="auto",
        cmap="viridis",
        vmin=max(0.5, np.nanmin(pc.to_numpy(float))),
        vmax=1.0,
    )
    ax.set_xticks(
        range(pc.shape[1]), [f"{c}\n({res.families.get(c, '')})" for c in pc.columns], rotation=90, fontsize=7
    )
    ax.set_yticks(range(pc.shape[0]), pc.index, fontsize=8)
    fig.colorbar(im, ax=ax, label="test AUROC")
    ax.set_title("Per-class AUROC")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_roc(res: StudyResults, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 5.5))
    for arch, pred in res.predictions.items():
        fpr, tpr, _ = roc_curve(pred["y"].ravel(), pred["p"].ravel())
        ax.plot(fpr, tpr, lw=1.2, label=f"{arch} ({res.metrics.loc[arch, 'micro_auroc']:.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("Micro-averaged ROC, test fold")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- report ---------------------------------------------------------------------------------------------


def _ci(row, key: str, digits: int = 3) -> str:
    return f"{row[key]:.{digits}f} [{row[key + '_lo']:.{digits}f}, {row[key + '_hi']:.{digits}f}]"


def study_table(res: StudyResults, comp: pd.DataFrame) -> pd.DataFrame:
    m = res.metrics
    table = pd.DataFrame(index=m.index)
    for key in HEADLINE:
        table[key] = [_ci(row, key) for _, row in m.iterrows()]
    table["params"] = m["params"].map(lambda v: f"{v / 1e3:.0f}k")
    table["MMAC/record"] = (m["macs_per_record"] / 1e6).map(lambda v: f"{v:.1f}")
    table["CPU ms/record"] = m["cpu_latency_ms"].map(lambda v: f"{v:.1f}")
    table["train s"] = m["train_seconds"].map(lambda v: f"{v:.0f}")
    table["Δ vs best (p)"] = [f"{r.diff_vs_best:+.3f} (p={r.p_vs_best:.2f})" for r in comp.itertuples()]
    table["Δ vs ref (p)"] = [
        f"{r.diff_vs_reference:+.3f} (p={r.p_vs_reference:.2f})" for r in comp.itertuples()
    ]
    return table


def answer(res: StudyResults, comp: pd.DataFrame, reference: str, gains: pd.DataFrame) -> list[str]:
    """The findings in sentences, computed from the numbers (nothing here is fixed in advance)."""
    m = res.metrics
    best = m["macro_auroc"].idxmax()
    lines = [
        f"- Best test macro-AUROC: **{best}**, {_ci(m.loc[best], 'macro_auroc')} "
        f"({m.loc[best, 'params'] / 1e3:.0f}k parameters)."
    ]
    tied = comp[(comp["diff_vs_best_hi"] >= 0) | (comp.index == best)]
    smallest = m.loc[tied.index, "params"].idxmin()
    lines.append(
        f"- Smallest architecture not significantly worse than the best (paired bootstrap, 95%): "
        f"**{smallest}** ({m.loc[smallest, 'params'] / 1e3:.0f}k parameters, "
        f"{m.loc[smallest, 'macro_auroc']:.3f}). {len(tied)} of {len(m)} architectures are statistically "
        f"tied with the best."
    )
    if reference in m.index:
        r = comp.loc[reference]
        verdict = (
            "is statistically tied with the best"
            if r.diff_vs_best_hi >= 0 or reference == best
            else "is significantly below the best"
        )
        lines.append(
            f"- The published choice **{reference}** scores {_ci(m.loc[reference], 'macro_auroc')} and "
            f"{verdict} (Δ {r.diff_vs_best:+.3f} [{r.diff_vs_best_lo:+.3f}, {r.diff_vs_best_hi:+.3f}], "
            f"p={r.p_vs_best:.2f})."
        )
    if "cnn" in m.index and len(m) > 1:
        rnn_best = m.drop(index="cnn")["macro_auroc"].idxmax()
        t = paired_test(res, rnn_best, "cnn")
        sig = "significant" if t["lo"] > 0 or t["hi"] < 0 else "not significant"
        lines.append(
            f"- Recurrence at all: best recurrent ({rnn_best}) minus the CNN alone: {t['difference']:+.3f} "
            f"[{t['lo']:+.3f}, {t['hi']:+.3f}] ({sig})."
        )
    for kind in TYPES:
        rows = m[m["type"] == kind].sort_values("depth")
        if len(rows) >= 2:
            first, last = rows.index[0], rows.index[-1]
            t = paired_test(res, last, first)
            trend = "gains" if t["lo"] > 0 else ("loses" if t["hi"] < 0 else "changes nothing significant")
            lines.append(
                f"- {LABELS[kind]}: going from {rows['depth'].iloc[0]} to {rows['depth'].iloc[-1]} layers "
                f"{trend} ({t['difference']:+.3f} [{t['lo']:+.3f}, {t['hi']:+.3f}]) for "
                f"{rows['params'].iloc[-1] / rows['params'].iloc[0]:.1f}x the parameters."
            )
    if len(gains):
        top = gains.iloc[0]
        bottom = gains.iloc[-1]
        lines.append(
            f"- Where recurrence helps: the **{top.family}** family gains most "
            f"({top.gain:+.3f} mean per-class AUROC, {top.architecture} vs cnn); "
            f"**{bottom.family}** least ({bottom.gain:+.3f})."
        )
    return lines


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def drift_section(drift_summary: Path | None, prediction_drift: Path | None) -> list[str]:
    """Markdown lines summarizing the drift stage's results, linking its reports (paths relative to reports/study)."""
    lines = []
    if drift_summary is not None and Path(drift_summary).is_file():
        summary = json.loads(Path(drift_summary).read_text())
        lines += [
            "| fold | role | records | drifted columns | dataset drift | most drifted |",
            "| --- | --- | ---: | ---: | --- | --- |",
        ]
        for name, v in summary.items():
            lines.append(
                f"| {name.removeprefix('fold_')} | {v['role']} | {v['records']} | {v['drifted_columns']}/"
                f"{v['columns']} | {'**yes**' if v['dataset_drift'] else 'no'} | "
                f"{', '.join(list(v['most_drifted'])[:4])} |"
            )
        lines += ["", "Reports: [drift between folds](../drift/index.html)."]
    if prediction_drift is not None and Path(prediction_drift).is_file():
        p = json.loads(Path(prediction_drift).read_text())
        lines.append(
            f"Predicted scores, test fold against validation fold: {p['drifted_columns']}/{p['columns']} "
            f"classes drift ([report](../drift_predictions.html))."
        )
    return lines


def write_report(
    res: StudyResults,
    reference: str,
    out_dir: Path,
    drift_summary: Path | None = None,
    prediction_drift: Path | None = None,
) -> dict:
    comp = comparisons(res, reference)
    gains = family_gains(res)
    table = study_table(res, comp)
    findings = answer(res, comp, reference, gains)
    plots = {"depth": plot_depth, "frontier": plot_frontier, "per_class_auroc": plot_heatmap, "roc": plot_roc}
    with atomic_dir(out_dir) as tmp:
        (tmp / "plots").mkdir()
        for name, fn in plots.items():
            fn(res, tmp / "plots" / f"{name}.png")
        res.metrics.to_csv(tmp / "study.csv")
        comp.to_csv(tmp / "comparisons.csv")
        gains.to_csv(tmp / "family_gains.csv", index=False)
        test_records = int(res.metrics["test_records"].iloc[0])
        resamples = int(res.metrics["bootstrap_resamples"].iloc[0])
        intro = (
            f"{len(res.metrics)} architectures, test fold of {test_records} records, "
            f"95% intervals from {resamples} paired bootstrap resamples. Reference: {reference}."
        )
        drift = drift_section(drift_summary, prediction_drift)
        md = [
            "# How much temporal modeling is enough?",
            "",
            intro,
            "",
            "## Answer",
            "",
            *findings,
            "",
            "## Study table",
            "",
            table.to_markdown(),
            "",
            "## Where recurrence helps, by label family",
            "",
            gains.to_markdown(index=False, floatfmt=".3f")
            if len(gains)
            else "(needs `cnn` and a recurrent model)",
            "",
            "## Plots",
            "",
        ]
        md += [f"![{name}](plots/{name}.png)" for name in plots]
        if drift:
            md += ["", "## Drift between folds", "", *drift]
        (tmp / "report.md").write_text("\n".join(md) + "\n")
        body = [
            f"<h1>How much temporal modeling is enough?</h1><p>{html.escape(intro)}</p><h2>Answer</h2><ul>"
        ]
        body += [f"<li>{html.escape(f[2:]).replace('**', '')}</li>" for f in findings]
        body += [
            "</ul><h2>Study table</h2>",
            table.to_html(),
            "<h2>Where recurrence helps, by label family</h2>",
            gains.to_html(index=False, float_format="%.3f"),
            "<h2>Plots</h2>",
        ]
        body += [_img(tmp / "plots" / f"{name}.png") for name in plots]
        if drift:
            import markdown_it  # noqa: PLC0415 (rich's dependency; renders the drift table)

            body += [
                "<h2>Drift between folds</h2>",
                markdown_it.MarkdownIt().enable("table").render("\n".join(drift)),
            ]
        style = (
            "body{font-family:sans-serif;max-width:1200px;margin:2em auto}table{border-collapse:collapse;"
            "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}"
        )
        (tmp / "report.html").write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>ecg-crnn study"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
        )
        best = res.metrics["macro_auroc"].idxmax()
        summary = {
            "best": best,
            "best_macro_auroc": float(res.metrics.loc[best, "macro_auroc"]),
            "reference": reference,
            "reference_minus_best": float(comp.loc[reference, "diff_vs_best"])
            if reference in comp.index
            else None,
            "tied_with_best": int(((comp["diff_vs_best_hi"] >= 0) | (comp.index == best)).sum()),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"compare: best {summary['best']} ({summary['best_macro_auroc']:.4f}) -> {out_dir}/report.html",
        file=sys.stderr,
    )
    return summary
