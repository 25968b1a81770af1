"""A finished search: the trials table, the best validation macro-AUROC by recurrent type and depth, and files."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import optuna

from ..registry import get_architecture
from .space import best_point, promotion_overrides


def trials_table(study: optuna.Study) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "arch": t.user_attrs.get("arch", ""),
                "worker": t.user_attrs.get("worker", ""),
                "window_s": t.params.get("window_s"),
                "hidden": t.params.get("hidden"),
                "lr": round(t.params.get("lr", float("nan")), 6),
                "dropout": round(t.params.get("dropout", float("nan")), 3),
                "val_macro_auroc": None if t.value is None else round(t.value, 4),
                "epochs": len(t.intermediate_values),
            }
        )
    return rows


def with_type_and_depth(done):
    """The trials with each architecture's recurrent type and depth, as the registry knows them."""
    archs = [get_architecture(a) for a in done["arch"]]
    return done.assign(type=[a.rnn_type for a in archs], depth=[a.layers for a in archs])


def depth_table(done):
    """Best validation macro-AUROC per recurrent type (rows) and depth (columns), per window: the search's
    answer to the study's question, as a table the Prefect UI shows."""
    import pandas as pd

    if not len(done):
        return pd.DataFrame()
    return (
        with_type_and_depth(done)
        .pivot_table(index=["window_s", "type"], columns="depth", values="val_macro_auroc", aggfunc="max")
        .round(4)
    )


def plot_search_depth(done, study_name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..report.palette import COLORS, LABELS

    fig, ax = plt.subplots(figsize=(6.5, 4))
    if len(done):
        done = with_type_and_depth(done)
        markers = {w: "os^D"[i % 4] for i, w in enumerate(sorted(done["window_s"].dropna().unique()))}
        for (kind, w), rows in done.groupby(["type", "window_s"]):
            ax.scatter(
                rows["depth"],
                rows["val_macro_auroc"],
                color=COLORS.get(kind, "k"),
                marker=markers[w],
                label=f"{LABELS.get(kind, kind)}, {w:g} s",
                alpha=0.8,
            )
        ax.legend(fontsize=8)
    ax.set_xticks([0, 1, 2, 3])
    ax.set_xlabel("recurrent layers")
    ax.set_ylabel("validation macro-AUROC")
    ax.set_title(f"Search {study_name}: {len(done)} completed trials")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_results(study: optuna.Study, out_dir: Path) -> dict:
    """best.json, trials.csv, and plots: macro-AUROC against depth per type, and Optuna's own.

    Trials left RUNNING by a worker that died are failed first (RDB storage with heartbeats), so the
    table accounts for every trial."""
    with warnings.catch_warnings():  # experimental in Optuna, relied on here (see make_storage)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a no-op for storages without heartbeats (the journal)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from ..atomic import write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    point = best_point(study)
    table = pd.DataFrame(trials_table(study))
    table.to_csv(out_dir / "trials.csv", index=False)
    write_json(
        out_dir / "best.json",
        {
            **point,
            "dvc_exp_run": ["dvc", "exp", "run", "-n", f"search-{study.study_name}"]
            + [a for o in promotion_overrides(point) for a in ("-S", o)],
        },
    )
    done = table[table["state"] == "COMPLETE"].copy()
    plot_search_depth(done, study.study_name, out_dir / "depth.png")
    depth_table(done).to_csv(out_dir / "depth.csv")
    from optuna.visualization import matplotlib as ovm

    for name, fn in (
        ("history", ovm.plot_optimization_history),
        ("intermediate", ovm.plot_intermediate_values),
    ):
        try:
            with warnings.catch_warnings():  # Optuna's matplotlib plots are marked experimental too
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = fn(study)
            ax.figure.savefig(out_dir / f"optuna_{name}.png", dpi=100, bbox_inches="tight")
            plt.close(ax.figure)
        except Exception as exc:  # a plot Optuna cannot draw (too few trials) is skipped, not fatal
            print(f"search: optuna {name} plot skipped: {exc}", file=sys.stderr)
    (out_dir / "summary.json").write_text(
        json.dumps(
            {"best": point, "trials": len(table), "states": table["state"].value_counts().to_dict()}, indent=2
        )
    )
    return point
