"""Tuning the recipe through the search flow on a real Prefect server: one study per (architecture, window) with
the same budget, the chosen recipe written into recipe.yaml, `dvc repro` training with it, and a change to one
architecture's recipe re-running that architecture's stages only."""

import json
import re
import subprocess
import sys

import optuna

from ecg_crnn.artifact import load_model_file, recipe_of
from ecg_crnn.config import load_params
from ecg_crnn.layout import MODEL_FILE, RunKey, model_dir
from ecg_crnn.recipe import load_recipes
from ecg_crnn.search.recipe_writer import write_recipe
from ecg_crnn.search.storage import make_storage

from .helpers.params import SMALL, set_params
from .helpers.paths import REPO
from .helpers.processes import run
from .helpers.servers import prefect_artifact

ARCHS = ("cnn", "cnn_gru1")
TINY = {
    **SMALL,
    "models.channels": [8, 8, 16, 16],
    "models.hidden": 8,
    "study.architectures": list(ARCHS),
    "study.reference": "cnn",
    "study.windows": [2.5],
    "train.seeds": [0, 1],
    "study.selection_seeds": 0,
    "train.epochs": 2,
    "search.study_name": "tiny",
    "search.tune": {"trials": 3},
}


def _studies(project) -> dict[str, optuna.Study]:
    storage = make_storage(load_params(project / "params.yaml").search, project / "search")
    return {a: optuna.load_study(study_name=f"tiny-tune-{a}-2.5s", storage=storage) for a in ARCHS}


def _check_the_budgets_and_the_choice(project, recipes):
    studies = _studies(project)
    for arch, study in studies.items():
        trials = study.trials
        assert len(trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
        assert trials[0].params == {"lr": 0.003, "dropout": 0.3}  # the default recipe, first in every study
        best = max(trials, key=lambda t: t.value)
        entry, prov = recipes.entry(arch, 2.5), recipes.provenance(arch, 2.5)
        assert entry.lr == float(f"{best.params['lr']:.4g}") and entry.dropout == float(
            f"{best.params['dropout']:.4g}"
        )
        assert entry.weight_decay == 0.01  # not tuned by default: train.weight_decay
        assert {k: prov[k] for k in ("trials", "epochs", "seed", "val_folds", "trial")} == {
            "trials": 3,
            "epochs": 2,
            "seed": 1000,
            "val_folds": [9],
            "trial": best.number,
        }
        assert prov["val_macro_auroc"] == round(best.value, 4)
        assert prov["default_val_macro_auroc"] == round(trials[0].value, 4)
    # One sampler seed for all: every architecture was offered the same candidates.
    assert [t.params for t in studies["cnn"].trials] == [t.params for t in studies["cnn_gru1"].trials]


def test_tuned_recipe_is_what_dvc_repro_trains_and_one_change_retrains_one_architecture(
    prefect_server, project, synthetic_dir
):
    set_params(project, {"download.source": str(synthetic_dir), **TINY})
    run(["dvc", "repro", "segment"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "data"], project)
    proc = subprocess.run(
        [sys.executable, str(REPO / "flows" / "search.py"), "--tune"],
        cwd=project,
        env=prefect_server,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    recipes = load_recipes(project / "recipe.yaml")
    _check_the_budgets_and_the_choice(project, recipes)
    table = json.loads(prefect_artifact("search-recipe", prefect_server))  # a table artifact holds JSON rows
    assert sorted(r["arch"] for r in table) == sorted(ARCHS)
    assert (project / "search" / "tiny-tune" / "recipe.csv").is_file()

    # The grid's stages (train and evaluate of every model); the rest of the pipeline (drift, cost, the report)
    # does not read the recipe, and is left out to keep the test short.
    run(["dvc", "repro", "evaluate"], project)
    for arch in ARCHS:
        model = load_model_file(project / model_dir(RunKey(arch, 2.5, 0)) / MODEL_FILE)
        entry = recipes.entry(arch, 2.5)
        assert recipe_of(model) == {**entry.model_dump(), "tuned": True}
        assert (model["train_settings"]["lr"], model["model_settings"]["dropout"]) == (
            entry.lr,
            entry.dropout,
        )
    header = run(["dvc", "exp", "show", "--csv"], project).stdout.splitlines()[0]
    assert (
        "recipes.cnn_gru1.2.5s.lr" in header and "recipes.cnn.2.5s.dropout" in header
    )  # dvc exp show shows it
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "tuned study"], project)

    changed = recipes.entry("cnn_gru1", 2.5).model_dump()
    write_recipe(project / "recipe.yaml", {("cnn_gru1", "2.5s"): ({**changed, "lr": changed["lr"] / 2}, {})})
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    retrained = {RunKey("cnn_gru1", 2.5, seed) for seed in (0, 1)}
    assert {s for s in status if s.startswith(("train@", "evaluate@"))} == {
        k.stage("train") for k in retrained
    }, status
    out = run(["dvc", "repro", "evaluate"], project).stdout
    ran = set(re.findall(r"Running stage '([^']+)'", out))
    assert ran == {k.stage(kind) for k in retrained for kind in ("train", "evaluate")}, out
    model = load_model_file(project / model_dir(RunKey("cnn_gru1", 2.5, 0)) / MODEL_FILE)
    assert recipe_of(model)["lr"] == float(f"{changed['lr'] / 2:.4g}")
