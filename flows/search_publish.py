"""What the search flow publishes as Prefect artifacts, which the UI renders: the best configuration (or, for a
multi-objective search, the Pareto front and the point --promote trains) and the tuned recipe. Plots are inline
(a file:// link would not open in a browser elsewhere).

Imported by flows/search.py as a sibling module, like orchestration.py.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
from prefect.artifacts import create_markdown_artifact, create_table_artifact


def png_markdown(path: Path, alt: str) -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


def _point_rows(point: dict) -> str:
    return (
        f"| | |\n|---|---|\n| architecture | **{point['arch']}** |\n| window | {point['window_s']:g} s |\n"
        f"| hidden | {point['hidden'] or '(no recurrent layer)'} |\n| dropout | {point['dropout']:.3f} |\n"
        f"| learning rate | {point['lr']:.2e} |\n"
        f"| validation macro-AUROC | {point['value']:.4f} (trial {point['trial']}) |\n"
    )


def _depth_section(out: Path) -> str:
    depth = pd.read_csv(out / "depth.csv")
    return (
        "## Best validation macro-AUROC by recurrent type and depth\n\n"
        f"{depth.to_markdown(index=False) if len(depth) else '(no completed trial)'}\n\n"
        f"{png_markdown(out / 'depth.png', 'validation macro-AUROC against depth per type')}\n"
    )


def publish_best(study_name: str, point: dict, trials: int, out: Path, command: str) -> None:
    """A single-objective search: its best configuration, and the depth-by-type table with its plot."""
    create_markdown_artifact(
        key="search-best",
        description="Best configuration (by validation macro-AUROC)",
        markdown=(
            f"# Search {study_name}: best configuration\n\n{_point_rows(point)}\n"
            f"{trials} trials. Train and version it through DVC (the workspace is left as it is):\n\n"
            f"```\n{command}\n```\n\n{_depth_section(out)}"
        ),
    )


def publish_pareto(study_name: str, point: dict, trials: int, out: Path, command: str) -> None:
    """A multi-objective search: the Pareto front as a table artifact, and a Markdown artifact with the front,
    its plot and the point --promote trains (with the rule that chose it)."""
    front = pd.read_csv(out / "pareto.csv")
    keep = [
        c
        for c in (
            "trial",
            "arch",
            "window_s",
            "hidden",
            "lr",
            "dropout",
            "val_macro_auroc",
            point["cost"],
            "promoted",
        )
        if c in front.columns
    ]
    create_table_artifact(
        key="search-pareto",
        table=front[keep].to_dict(orient="records"),
        description=f"Pareto front of study {study_name}: validation macro-AUROC against {point['cost']}",
    )
    create_markdown_artifact(
        key="search-best",
        description="Pareto front, and the point --promote trains",
        markdown=(
            f"# Search {study_name}: the Pareto front\n\n{len(front)} of {trials} trials are on the front "
            f"(validation macro-AUROC against {point['cost']}; unpruned: Optuna's pruners are single-objective).\n\n"
            f"{front[keep].to_markdown(index=False)}\n\n{png_markdown(out / 'pareto.png', 'Pareto front')}\n\n"
            f"## The point to promote\n\n{point['rule']}:\n\n{_point_rows(point)}\n"
            "It rests on one seed on the validation fold; --promote trains it on the grid's seeds (disjoint from "
            f"the search's) and tests it, through DVC:\n\n```\n{command}\n```\n\n{_depth_section(out)}"
        ),
    )


def publish_recipe(study_name: str, entries: dict, recipe_path: Path, out: Path) -> list[dict]:
    """The tuned recipe per (architecture, window): recipe.csv in `out`, a table artifact, and a Markdown one."""
    rows = [
        {
            "arch": arch,
            "window": window,
            **entry,
            **{
                k: prov[k]
                for k in ("val_macro_auroc", "default_val_macro_auroc", "trials", "epochs", "seed", "trial")
            },
        }
        for (arch, window), (entry, prov) in entries.items()
    ]
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "recipe.csv", index=False)
    create_table_artifact(key="search-recipe", table=rows, description=f"Tuned recipe ({study_name})")
    first = next(iter(entries.values()))[1]
    create_markdown_artifact(
        key="search-recipe-summary",
        description="The tuned recipe, written into recipe.yaml",
        markdown=(
            f"# Tuned recipe: {len(rows)} (architecture, window) studies\n\n"
            f"Each with {first['trials']} trials of {first['epochs']} epochs, training seed {first['seed']}, "
            f"chosen on validation fold(s) {first['val_folds']}; written into `{recipe_path}`, which the grid's "
            "train stages read (`dvc repro` retrains what changed).\n\n"
            f"{table.round(5).to_markdown(index=False)}\n"
        ),
    )
    return rows
