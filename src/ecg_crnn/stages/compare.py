"""The compare stage: every model of the grid read back, every choice and test computed once, and the report
written from that result (reports/study/: report.html, report.md, study.csv, tests.csv, family_gains.csv,
summary.json, plots/; the DVC metric reports/study.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..analysis.compare import analyse
from ..analysis.results import load_models
from ..config import Params
from ..layout import EVALUATION, FILTERED, MODELS, REPORTS, ROBUSTNESS, SEGMENTED, rotation_dir
from ..recipe import load_recipes, recipe_for
from ..report.render import write_report
from ..report.sentences import RunInfo


@dataclass(frozen=True)
class Paths:
    evaluation: Path = EVALUATION
    models: Path = MODELS
    filtered: Path = FILTERED
    segmented: Path = SEGMENTED
    out: Path = REPORTS / "study"
    metrics: Path = REPORTS / "study.json"
    drift: Path | None = REPORTS / "drift"  # linked when present
    prediction_drift: Path | None = REPORTS / "drift_predictions"
    robustness: Path | None = ROBUSTNESS  # the robustness stages' outputs, reported when present
    recipe: Path | None = (
        None  # recipe.yaml, what the train stages read; None: the shared default for every model
    )


def run_info(params: Params, filtered: Path, segmented: Path, recipe: Path | None = None) -> RunInfo:
    recipes = load_recipes(recipe) if recipe is not None else None
    split = pd.read_csv(rotation_dir(segmented, params.segment.rotations[0]) / "split.csv")
    classes = json.loads((Path(filtered) / "classes.json").read_text())
    return RunInfo(
        source=params.download.source,
        task=classes.get("task", params.filter.task),
        sampling_rate=params.data.sampling_rate,
        split_records=split["split"].value_counts().to_dict(),
        class_count=len(classes["classes"]),
        recipes={
            (arch, float(w)): recipe_for(recipes, params, arch, w)
            for arch in params.study.architectures
            for w in params.study.windows
        },
    )


def run(params: Params, paths: Paths = Paths()) -> dict:
    models = load_models(paths.evaluation, paths.models, params, robustness=paths.robustness)
    shares = params.study.train_fractions
    fractions = (
        {f: load_models(paths.evaluation, paths.models, params, fraction=f) for f in shares}
        if len(shares) > 1
        else None
    )
    info = run_info(params, paths.filtered, paths.segmented, paths.recipe)
    return write_report(
        analyse(models, params, fractions),
        info,
        paths.out,
        paths.metrics,
        paths.drift,
        paths.prediction_drift,
    )
