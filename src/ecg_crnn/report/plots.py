"""The study's figures. One colour per recurrent type everywhere (the search's plot uses the same ones)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from ..analysis.compare import ENDPOINT, StudyResult  # noqa: E402
from ..schedule import budget_curve  # noqa: E402
from .palette import COLORS, LABELS, TYPES, WINDOW_STYLES  # noqa: E402


def thousands(value: float, _pos=None) -> str:
    """16000 -> 16k, 1.2e6 -> 1.2M: tick labels a reader takes in at a glance."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.0f}"


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _errorbar(st: StudyResult, models, figure: str = ENDPOINT):
    pts = np.array([st.point(m.key, figure) for m in models])
    ci = np.array([st.interval(m.key, figure) for m in models]).reshape(-1, 2)
    return pts, np.vstack([pts - ci[:, 0], ci[:, 1] - pts])


def plot_depth(st: StudyResult, path: Path) -> None:
    """The primary endpoint against recurrent depth, per type, one panel per window."""
    windows = st.windows
    fig, axes = plt.subplots(1, len(windows), figsize=(5.2 * len(windows), 4.2), sharey=True, squeeze=False)
    for ax, w in zip(axes[0], windows, strict=True):
        cnn = st.models.get(("cnn", w))
        for i, kind in enumerate(TYPES[1:]):
            stack = sorted(
                (m for k, m in st.models.items() if k[1] == w and m.rnn_type == kind), key=lambda m: m.depth
            )
            if not stack:
                continue
            line = ([cnn] if cnn else []) + stack
            pts, err = _errorbar(st, line)
            x = np.array([m.depth for m in line]) + 0.04 * (i - 1.5)
            ax.errorbar(x, pts, yerr=err, marker="o", capsize=3, color=COLORS[kind], label=LABELS[kind])
        if cnn is not None:
            pts, err = _errorbar(st, [cnn])
            ax.errorbar([0], pts, yerr=err, marker="s", color=COLORS["none"], capsize=3, label=LABELS["none"])
        ax.set_xticks([0, 1, 2, 3])
        ax.set_xlabel("recurrent layers (0 = CNN with pooling only)")
        ax.set_title(f"{w:g} s windows")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("primary macro-AUROC (test), mean of seeds (95% CI)")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("How much temporal modeling is enough?")
    _save(fig, path)


def _literal(name) -> str:
    """A name from the data as plain text: a '$' would start matplotlib's mathtext (and a malformed formula
    fails the whole figure)."""
    return str(name).replace("$", r"\$")


def plot_context(st: StudyResult, path: Path) -> None:
    """The value of recurrence (best recurrent model minus the CNN, chosen on validation) per label family
    and overall, at each window: does it grow with context?"""
    fams = st.family_order
    windows = [w for w in st.windows if w in st.best_recurrent and ("cnn", w) in st.models]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * (len(fams) + 1) * max(1, len(windows))), 4.2))
    width = 0.8 / max(1, len(windows))
    groups = ["primary endpoint", *map(_literal, fams)]
    for j, w in enumerate(windows):
        tests = [st.get(f"recurrence/{w:g}"), *[st.get(f"label_families/{w:g}/{f}") for f in fams]]
        vals = [t.difference if t else np.nan for t in tests]
        errs = [(t.difference - t.interval.lo, t.interval.hi - t.difference) if t else (0, 0) for t in tests]
        x = np.arange(len(groups)) + (j - (len(windows) - 1) / 2) * width
        ax.bar(x, vals, width, yerr=np.array(errs).T, capsize=3, label=f"{w:g} s", alpha=0.85)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(groups)), groups, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("AUROC gain of recurrence over the CNN\n(mean per class; 95% CI)")
    ax.set_title("Value of recurrence by label family and window length")
    ax.legend(title="window")
    ax.grid(alpha=0.3, axis="y")
    _save(fig, path)


def plot_frontier(st: StudyResult, path: Path) -> None:
    """Parameters against the primary endpoint; the trade-off frontier when it has more than one point, and the
    models shown non-inferior to the best (the adequacy question) ringed."""
    FIG = ENDPOINT
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    models = list(st.models.values())
    params = np.array([m.cost.get("params", np.nan) for m in models], float)
    for j, w in enumerate(st.windows):
        sel = [m for m in models if m.window == w]
        pts, err = _errorbar(st, sel, FIG)
        ax.errorbar(
            [m.cost.get("params", np.nan) for m in sel],
            pts,
            yerr=err,
            fmt="os^D"[j % 4],
            alpha=0.7,
            capsize=2,
            color=f"C{j}",
            label=f"{w:g} s windows",
        )
        for m, p in zip(sel, pts, strict=True):
            ax.annotate(
                m.arch.replace("cnn_", "") if m.arch != "cnn" else "cnn",
                (m.cost.get("params", np.nan), p),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    score = np.array([st.point(m.key, FIG) for m in models])
    front = pareto_front(params, score)
    if len(front) > 1:
        ax.plot(params[front], score[front], "k--", lw=1, label="trade-off frontier")
    adequate = [i for i, m in enumerate(models) if m.key == st.best or _noninferior(st, m)]
    ax.scatter(
        params[adequate],
        score[adequate],
        s=160,
        facecolors="none",
        edgecolors="k",
        lw=1,
        label="the best, and the models non-inferior to it",
    )
    ax.set_xscale("log")
    _log_ticks(ax.xaxis, params[np.isfinite(params)])
    ax.set_xlabel("parameters")
    ax.set_ylabel("primary macro-AUROC (test, 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def _noninferior(st: StudyResult, m) -> bool:
    h = st.get(f"adequacy/{m.name}")
    return bool(h is not None and h.verdict.noninferior)


def _log_ticks(axis, values: np.ndarray) -> None:
    """Labelled ticks on a log axis however narrow its range: within one decade (a grid whose models differ by
    2x) a log axis has no power of ten to label, so ticks fall on 1-1.5-2-3-5-7 x 10^k there, on 1-2-5 over two
    decades, on powers of ten beyond."""
    decades = np.log10(values.max() / values.min()) if values.size and values.min() > 0 else 3
    subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 1 else (1.0, 2.0, 5.0) if decades < 2 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(thousands))
    axis.set_minor_formatter(NullFormatter())


def pareto_front(params: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the models that no smaller-or-equal model beats, ordered by size. Of models of equal size
    (one architecture at several windows), only the best can be on it."""
    order = np.lexsort((-score, params))
    front, best = [], -np.inf
    for i in order:
        if np.isfinite(params[i]) and score[i] > best:
            front.append(i)
            best = score[i]
    return np.array(front, int)


def plot_heatmap(st: StudyResult, path: Path) -> None:
    """Per-class test AUROC (mean of seeds) of every model; classes without test positives are hatched."""
    models = sorted(st.models.values(), key=lambda m: (m.window, m.depth, m.rnn_type))
    first = models[0].per_class
    classes = list(first["class"])
    values = np.array([m.per_class["auroc"].to_numpy(float) for m in models])
    missing = first["test_positives"].to_numpy() == 0
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(classes) + 2.5), max(4, 0.32 * len(models) + 1.8)))
    finite = values[np.isfinite(values)]
    vmin = float(min(0.5, finite.min())) if finite.size else 0.0
    im = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap="viridis", vmin=vmin, vmax=1.0)
    for j in np.flatnonzero(missing):
        ax.add_patch(
            plt.Rectangle((j - 0.5, -0.5), 1, len(models), fill=False, hatch="///", color="0.6", lw=0)
        )
    ax.set_xticks(
        range(len(classes)),
        [f"{_literal(c)}\n({_literal(f)})" for c, f in zip(classes, first["family"], strict=True)],
        rotation=90,
        fontsize=7,
    )
    ax.set_yticks(range(len(models)), [m.name for m in models], fontsize=7)
    # The values in the cells: near 1 the colours of 0.99 and 1.00 cannot be told apart.
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            shade = (v - vmin) / max(1.0 - vmin, 1e-9)
            ax.text(
                j, i, f"{v:.2f}", ha="center", va="center", fontsize=5.5, color="k" if shade > 0.6 else "w"
            )
    fig.colorbar(im, ax=ax, label="test AUROC (mean of seeds)")
    if missing.any():
        ax.legend(
            handles=[
                Patch(facecolor="white", edgecolor="0.6", hatch="///", label="no positive in the test fold")
            ],
            loc="upper left",
            bbox_to_anchor=(0, -0.25),
            fontsize=8,
            frameon=False,
        )
    ax.set_title("Per-class AUROC")
    _save(fig, path)


def plot_roc(st: StudyResult, path: Path) -> None:
    """Micro-averaged ROC of the best model, the reference and the CNN at each window (first seed)."""
    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    shown = []
    for w in st.windows:
        for key in (st.best_per_window[w], (st.params.study.reference, w), ("cnn", w)):
            if key in st.models and key not in shown:
                shown.append(key)
    for key in shown:
        m = st.models[key]
        seed = m.seeds[0]
        fpr, tpr, _ = roc_curve(m.test_y.ravel(), m.test_p[seed].ravel())
        style = WINDOW_STYLES[st.windows.index(m.window) % len(WINDOW_STYLES)]
        ax.plot(fpr, tpr, style, lw=1.2, color=COLORS[m.rnn_type], label=f"{m.name} (seed {seed})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("Micro-averaged ROC, test fold")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_schedule(st: StudyResult, path: Path) -> None:
    """Left: the learning rate every run followed. Right: per model, where each seed's best validation
    epoch and its last epoch fell within the budget."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, max(4, 0.25 * len(st.models) + 1.5)))
    t, lr = budget_curve(st.params.train)
    a1.plot(t, lr, "k-", lw=1.5, label="the budget's schedule")
    for m in st.models.values():
        for h in m.histories.values():
            a1.plot(h["epoch"], h["lr"], ".", color=COLORS[m.rnn_type], alpha=0.5, ms=4)
    a1.plot([], [], ".", color="0.4", label="each run, end of each epoch (early cool-downs start sooner)")
    a1.legend(fontsize=8)
    a1.set_xlabel("epoch")
    a1.set_ylabel("learning rate")
    a1.set_title("Schedule: warm-up, constant, cosine cool-down")
    a1.grid(alpha=0.3)
    models = sorted(st.models.values(), key=lambda m: (m.window, m.depth, m.rnn_type))
    for i, m in enumerate(models):
        for j, h in enumerate(m.histories.values()):
            best = int(h.loc[h["val_macro_auroc"].idxmax(), "epoch"]) if len(h) else 0
            y = i + 0.15 * (j - 1)
            a2.plot([1, len(h)], [y, y], color=COLORS[m.rnn_type], lw=1, alpha=0.5)
            a2.plot(best, y, "o", color=COLORS[m.rnn_type], ms=4, zorder=3)
            a2.plot(len(h), y, "|", color="k", ms=7, mew=1.5, zorder=3)
    a2.axvline(st.params.train.epochs, color="0.5", ls=":", lw=1, zorder=1)  # under the markers it would hide
    a2.set_yticks(range(len(models)), [m.name for m in models], fontsize=7)
    a2.set_xlabel("epoch (o best validation epoch, | last epoch; dotted: the budget)")
    a2.set_title("Where each seed stopped")
    a2.grid(alpha=0.3, axis="x")
    _save(fig, path)


def plot_robustness(st: StudyResult, path: Path) -> None:
    """Robustness curves: the primary macro-AUROC (mean of seeds) against each corruption's severity, per
    architecture (colour: recurrent type; line style: window), the clean figure at the start of each curve."""
    from .robustness import corruptions

    names = corruptions(st)
    cols = min(4, len(names))
    rows_n = -(-len(names) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.6 * cols, 2.9 * rows_n), squeeze=False, sharey=True)
    idx = [list(next(iter(st.models.values())).per_class["class"]).index(c) for c in st.primary_classes]
    for ax, c in zip(axes.flat, names, strict=False):
        for m in st.models.values():
            rob = m.robustness
            conds = rob.conditions_of(c)
            sev = [rob.severity[k] for k in conds]
            ys = [float(np.nanmean(rob.seed_class_auroc[k][:, idx])) for k in conds]
            style = WINDOW_STYLES[st.windows.index(m.window) % len(WINDOW_STYLES)]
            clean = float(np.nanmean(m.seed_class_auroc[:, idx]))
            order = np.argsort(sev) if c in ("gain",) else np.arange(len(sev))
            ax.plot(
                ["clean", *[f"{sev[i]:g}" for i in order]],
                [clean, *[ys[i] for i in order]],
                style,
                marker="o",
                ms=3,
                color=COLORS[m.rnn_type],
                alpha=0.8,
            )
        ax.set_title(c, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    present = {m.rnn_type for m in st.models.values()}
    handles = [plt.Line2D([], [], color=COLORS[t], label=LABELS[t]) for t in TYPES if t in present]
    handles += [
        plt.Line2D([], [], color="k", ls=WINDOW_STYLES[i], label=f"{w:g} s") for i, w in enumerate(st.windows)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(
        "Robustness: primary macro-AUROC under each corruption (severity: SNR in dB, leads, factor, s)"
    )
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_learning_curves(st: StudyResult, path: Path) -> None:
    """The primary macro-AUROC against the share of training data (nested, patient-level subsets; every share the
    same optimizer steps), per architecture, one panel per window."""
    fig, axes = plt.subplots(
        1, len(st.windows), figsize=(5.2 * len(st.windows), 4.2), sharey=True, squeeze=False
    )
    shares = list(st.curves)
    for ax, w in zip(axes[0], st.windows, strict=True):
        for m in sorted(st.models.values(), key=lambda m: (m.depth, m.rnn_type)):
            if m.window != w:
                continue
            figs = [st.curves[f][m.key] for f in shares]
            pts = np.array([x.point for x in figs])
            err = np.vstack([pts - [x.interval.lo for x in figs], [x.interval.hi for x in figs] - pts])
            style = ["-", "--", ":", "-."][m.depth % 4]
            ax.errorbar(
                shares,
                pts,
                yerr=err,
                fmt=style,
                marker="o",
                ms=4,
                capsize=2,
                color=COLORS[m.rnn_type],
                label=m.arch,
            )
        ax.set_xscale("log")
        ax.set_xticks(shares, [f"{f:g}" for f in shares])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("share of the training folds' patients")
        ax.set_title(f"{w:g} s windows")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("primary macro-AUROC (test), mean of seeds (95% CI)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Learning curves (line style: recurrent depth)")
    _save(fig, path)


def plot_gaps(st: StudyResult, path: Path) -> None:
    """The generalization gap at the kept epoch against recurrent depth, per type, one panel per window."""
    fig, axes = plt.subplots(
        1, len(st.windows), figsize=(5.2 * len(st.windows), 4.0), sharey=True, squeeze=False
    )
    for ax, w in zip(axes[0], st.windows, strict=True):
        for i, kind in enumerate(TYPES):
            ms = sorted(
                (m for m in st.models.values() if m.window == w and m.rnn_type == kind), key=lambda m: m.depth
            )
            if not ms:
                continue
            g = [st.gaps[m.key]["gap_kept"] for m in ms]
            pts = np.array([x.point for x in g])
            err = np.vstack([pts - [x.interval.lo for x in g], [x.interval.hi for x in g] - pts])
            x = np.array([m.depth for m in ms]) + 0.04 * (i - 2)
            ax.errorbar(
                x,
                pts,
                yerr=err,
                marker="o" if kind != "none" else "s",
                capsize=3,
                color=COLORS[kind],
                label=LABELS[kind],
            )
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks([0, 1, 2, 3])
        ax.set_xlabel("recurrent layers")
        ax.set_title(f"{w:g} s windows")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(
        "training subset minus validation macro-AUROC\n(at the kept epoch; 95% CI over seeds)"
    )
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Generalization gap against depth")
    _save(fig, path)


def plots_for(st: StudyResult) -> dict:
    """The plots this run can draw: the robustness curves only when the robustness stage ran, the learning curves
    only with several shares of training data."""
    have = next(iter(st.models.values())).robustness is not None
    return {
        **PLOTS,
        **({"robustness": plot_robustness} if have else {}),
        **({"learning_curves": plot_learning_curves} if st.curves else {}),
        **({"gaps": plot_gaps} if any(np.isfinite(g["gap_kept"].point) for g in st.gaps.values()) else {}),
    }


PLOTS = {
    "depth": plot_depth,
    "context": plot_context,
    "frontier": plot_frontier,
    "per_class_auroc": plot_heatmap,
    "roc": plot_roc,
    "schedule": plot_schedule,
}
