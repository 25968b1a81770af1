"""The Pareto front of a multi-objective search, as a table and a plot: every completed trial by its cost and
validation macro-AUROC, the front joined as a staircase, the margin below the best, and the promoted point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..registry import get_architecture
from .pareto import COST_LABELS


def plot_pareto(table: pd.DataFrame, cost: str, margin: float, promoted: int, title: str, path: Path) -> None:
    """`table`: one row per completed trial with `val_macro_auroc`, `cost`'s column, `arch` and `on_front`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..report.palette import COLORS, LABELS

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    kinds = [get_architecture(a).rnn_type for a in table["arch"]]
    for kind in dict.fromkeys(kinds):
        rows = table[[k == kind for k in kinds]]
        ax.scatter(
            rows[cost],
            rows["val_macro_auroc"],
            color=COLORS.get(kind, "k"),
            alpha=0.75,
            label=LABELS.get(kind, kind),
            zorder=3,
        )
    front = table[table["on_front"]].sort_values(cost)
    # The staircase runs on to the costliest trial: whatever costs more than a front point and scores lower is
    # dominated by it.
    xs = [*front[cost], table[cost].max()]
    ys = [*front["val_macro_auroc"], front["val_macro_auroc"].iloc[-1]]
    ax.step(xs, ys, where="post", color="k", lw=1, label="Pareto front", zorder=2)
    best = table["val_macro_auroc"].max()
    ax.axhspan(best - margin, best, color="#999999", alpha=0.2, label=f"within {margin:g} of the best")
    chosen = table[table["trial"] == promoted]
    ax.scatter(
        chosen[cost],
        chosen["val_macro_auroc"],
        s=160,
        facecolors="none",
        edgecolors="k",
        lw=1.5,
        label="promoted: smallest within the margin",
        zorder=4,
    )
    if np.all(table[cost] > 0) and table[cost].max() > 10 * table[cost].min():
        ax.set_xscale("log")
    ax.set_xlabel(COST_LABELS.get(cost, cost))
    ax.set_ylabel("validation macro-AUROC")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
