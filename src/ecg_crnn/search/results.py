"""A finished search: the trials table, the best validation macro-AUROC by recurrent type and depth, and files;
for a multi-objective search also its Pareto front (pareto.csv, pareto.png) and the point --promote trains."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import optuna

from ..config import Params
from ..registry import get_architecture
from .pareto import COST_LABELS, front_numbers, promotion_margin, promotion_trial
from .pareto_plot import plot_pareto
from .space import best_point, promotion_overrides, trial_point
from .study import METRIC_NAMES, metric_names


def trials_table(study: optuna.Study) -> list[dict]:
    costs = metric_names(study)[1:] if len(study.directions) > 1 else []
    front = front_numbers(study) if costs else set()
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {
            "trial": t.number,
            "state": t.state.name,
            "arch": t.user_attrs.get("arch", ""),
            "worker": t.user_attrs.get("worker", ""),
            "window_s": t.params.get("window_s", t.user_attrs.get("window_s")),
            "hidden": t.params.get("hidden"),
            "lr": round(t.params.get("lr", float("nan")), 6),
            "dropout": round(t.params.get("dropout", float("nan")), 3),
            "val_macro_auroc": None if not t.values else round(t.values[0], 4),
            "epochs": t.user_attrs.get("epochs_run", len(t.intermediate_values)),  # pruned: the epochs it ran
        }
        for i, name in enumerate(costs, start=1):
            row[name] = None if not t.values else t.values[i]
        if costs:
            row["on_front"] = t.number in front
        rows.append(row)
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


def _optuna_plots(study: optuna.Study, out_dir: Path) -> None:
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    plots = [("history", ovm.plot_optimization_history), ("intermediate", ovm.plot_intermediate_values)]
    if len(study.directions) > 1:  # Optuna's history and intermediate values are single-objective
        plots = [("pareto", lambda s: ovm.plot_pareto_front(s, target_names=s.metric_names))]
    for name, fn in plots:
        try:
            with warnings.catch_warnings():  # Optuna's matplotlib plots are marked experimental too
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = fn(study)
            ax.figure.savefig(out_dir / f"optuna_{name}.png", dpi=100, bbox_inches="tight")
            plt.close(ax.figure)
        except Exception as exc:  # a plot Optuna cannot draw (too few trials) is skipped, not fatal
            print(f"search: optuna {name} plot skipped: {exc}", file=sys.stderr)


def chosen_point(study: optuna.Study, params: Params) -> dict:
    """The point the search hands on: its best trial; for a multi-objective search the smallest model (by the
    first cost) within the macro-AUROC margin of the best, with the rule that chose it."""
    if len(study.directions) == 1:
        return best_point(study)
    margin, key = promotion_margin(params.study)
    cost = params.search.objectives[1]
    point = trial_point(promotion_trial(study, margin))
    point["rule"] = (
        f"the smallest model by {COST_LABELS[cost]} whose validation macro-AUROC is within {margin:g} ({key}) "
        "of the best trial's"
    )
    point.update({"cost": cost, "margin": margin, "margin_key": key})
    return point


def save_pareto(table, point: dict, out_dir: Path, study_name: str) -> None:
    """pareto.csv (the front, cheapest first) and pareto.png (every completed trial, the front marked)."""
    cost = point["cost"]
    done = table[table["state"] == "COMPLETE"].rename(columns={METRIC_NAMES[cost]: cost})
    front = done[done["on_front"]].sort_values([cost, "val_macro_auroc"], ascending=[True, False])
    front.assign(promoted=front["trial"] == point["trial"]).to_csv(out_dir / "pareto.csv", index=False)
    title = f"Search {study_name}: {len(front)} of {len(done)} completed trials on the front"
    plot_pareto(done, cost, point["margin"], point["trial"], title, out_dir / "pareto.png")


def save_results(study: optuna.Study, out_dir: Path, params: Params) -> dict:
    """best.json, trials.csv, and plots: macro-AUROC against depth per type, and Optuna's own; for a
    multi-objective study also pareto.csv and pareto.png.

    Trials left RUNNING by a worker that died are failed first (RDB storage with heartbeats), so the
    table accounts for every trial."""
    with warnings.catch_warnings():  # experimental in Optuna, relied on here (see make_storage)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # a no-op for storages without heartbeats (the journal)
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from ..atomic import write_json

    out_dir.mkdir(parents=True, exist_ok=True)
    point = chosen_point(study, params)
    table = pd.DataFrame(trials_table(study))
    table.to_csv(out_dir / "trials.csv", index=False)
    overrides = promotion_overrides(point, params.train.weight_decay)
    write_json(
        out_dir / "best.json",
        {
            **point,
            "dvc_exp_run": ["dvc", "exp", "run", "-n", f"search-{study.study_name}"]
            + [a for o in overrides for a in ("-S", o)],
        },
    )
    done = table[table["state"] == "COMPLETE"].copy()
    plot_search_depth(done, study.study_name, out_dir / "depth.png")
    depth_table(done).to_csv(out_dir / "depth.csv")
    if "cost" in point:
        save_pareto(table, point, out_dir, study.study_name)
    _optuna_plots(study, out_dir)
    (out_dir / "summary.json").write_text(
        json.dumps(
            {"best": point, "trials": len(table), "states": table["state"].value_counts().to_dict()}, indent=2
        )
    )
    return point
