"""The recipe per architecture and window: recipe.yaml read and validated by key, the shared default where an
architecture has no entry, the entry's values in the run's settings, the model file and the resume fingerprint,
and writing entries atomically with the file's comments and order kept."""

import os
import re

import pytest
import yaml

from ecg_crnn.artifact import load_model_file, recipe_of
from ecg_crnn.config import ConfigError
from ecg_crnn.layout import RunKey
from ecg_crnn.recipe import load_recipes, parse_recipes, recipe_for
from ecg_crnn.registry import REGISTRY
from ecg_crnn.search.recipe_writer import write_recipe
from ecg_crnn.stages import train as train_stage
from ecg_crnn.training import fingerprint_of, run_provenance

from .helpers.params import SMALL, params
from .helpers.paths import REPO

ENTRY = {"lr": 0.0042, "dropout": 0.21, "weight_decay": 0.02}


def test_the_shipped_recipe_is_the_shared_default_for_every_architecture():
    recipes = load_recipes(REPO / "recipe.yaml")
    assert set(recipes.recipes) == set(
        REGISTRY
    )  # every train stage finds its key (DVC refuses a missing one)
    p = params()
    for arch in REGISTRY:
        for window in p.study.windows:
            r = recipe_for(recipes, p, arch, window)
            assert (r.lr, r.dropout, r.weight_decay, r.tuned) == (0.003, 0.3, 0.01, False)


def test_an_entry_is_used_for_its_architecture_and_window_only():
    recipes = parse_recipes({"recipes": {"cnn_gru1": {"2.5s": ENTRY}}})
    p = params({"train.lr": 0.008})
    tuned = recipe_for(recipes, p, "cnn_gru1", 2.5)
    assert tuned.as_dict() == {**ENTRY, "tuned": True}
    model_cfg, train_cfg = tuned.settings(p)
    assert (model_cfg.dropout, train_cfg.lr, train_cfg.weight_decay) == (0.21, 0.0042, 0.02)
    assert model_cfg.hidden == p.models.hidden and train_cfg.epochs == p.train.epochs  # nothing else moves
    for arch, window in (("cnn_gru1", 10.0), ("cnn", 2.5)):  # another window, another architecture
        assert recipe_for(recipes, p, arch, window).as_dict() == {
            "lr": 0.008,
            "dropout": 0.3,
            "weight_decay": 0.01,
            "tuned": False,
        }
    assert recipe_for(
        parse_recipes({"recipes": {"cnn": {"10s": ENTRY}}}), p, "cnn", 10.0
    ).tuned  # 10.0 is 10s


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"recipes": {"cnn_lstm4": {}}}, "recipes.cnn_lstm4: unknown architecture"),
        ({"recipes": {"cnn": {"2.5": ENTRY}}}, "recipes.cnn.2.5: a window is written like 2.5s or 10s"),
        (
            {"recipes": {"cnn": {"2.5s": {**ENTRY, "lr": 0}}}},
            "recipes.cnn.2.5s.lr: Input should be greater than 0",
        ),
        (
            {"recipes": {"cnn": {"2.5s": {**ENTRY, "dropout": 1.0}}}},
            "recipes.cnn.2.5s.dropout: Input should be less",
        ),
        (
            {"recipes": {"cnn": {"2.5s": {**ENTRY, "lrr": 1}}}},
            "unknown key recipes.cnn.2.5s.lrr (known keys: lr",
        ),
        (
            {"recipes": {"cnn": {"2.5s": {"lr": 0.1, "dropout": 0.1}}}},
            "recipes.cnn.2.5s.weight_decay: Field required",
        ),
        ({"recipe": {}}, "unknown key recipe (known keys: recipes, tuning)"),
    ],
)
def test_bad_entries_are_refused_by_key(raw, message, tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {message}")):
        load_recipes(path)


def test_writing_keeps_comments_order_and_other_entries(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text((REPO / "recipe.yaml").read_text())
    before = path.read_text()
    write_recipe(path, {("cnn_gru1", "2.5s"): (ENTRY, {"trials": 3, "val_macro_auroc": 0.812345})})
    write_recipe(path, {("cnn", "10s"): ({**ENTRY, "lr": 0.0012345678}, {"trials": 3})})
    after = path.read_text()
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments == [line for line in after.splitlines() if line.lstrip().startswith("#")]
    order = [a for a in yaml.safe_load(after)["recipes"]]
    assert order == list(yaml.safe_load(before)["recipes"])
    recipes = load_recipes(path)
    assert recipes.entry("cnn_gru1", 2.5).model_dump() == ENTRY
    assert recipes.entry("cnn", 10).lr == 0.001235  # four significant digits
    assert recipes.provenance("cnn_gru1", 2.5) == {"trials": 3, "val_macro_auroc": 0.8123}
    untouched = [a for a in REGISTRY if a not in ("cnn", "cnn_gru1")]
    assert all(not recipes.recipes[a] for a in untouched)
    assert (
        "  cnn_gru1:\n    2.5s: {lr: 0.0042, dropout: 0.21, weight_decay: 0.02}\n" in after
    )  # one line each


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "recipe.yaml"
    path.write_text((REPO / "recipe.yaml").read_text())
    before = path.read_text()
    with pytest.raises(
        ConfigError, match=r"recipes.cnn.2.5s.dropout"
    ):  # never written: train would refuse it
        write_recipe(path, {("cnn", "2.5s"): ({**ENTRY, "dropout": 1.5}, {})})
    assert path.read_text() == before

    def interrupted(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        write_recipe(path, {("cnn", "2.5s"): (ENTRY, {})})
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["recipe.yaml"]  # no temporary file left behind


def test_the_train_stage_trains_with_the_entry_and_the_model_file_records_it(prepared, tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"recipes": {"cnn_gru1": {"2.5s": ENTRY}}}))
    p = params({**SMALL, "train.epochs": 1})
    seen = {}
    for arch in ("cnn_gru1", "cnn"):
        out = tmp_path / arch
        paths = train_stage.Paths(
            prepared / "filtered", prepared / "segmented", out, tmp_path / "resume" / arch, recipe
        )
        summary = train_stage.run(p, RunKey(arch, 2.5, 0), paths, progress=False)
        model = load_model_file(out / "model.pt")
        seen[arch] = (summary["recipe"], recipe_of(model), model["train_settings"], model["model_settings"])
    rec, file_rec, train_settings, model_settings = seen["cnn_gru1"]
    assert rec == file_rec == {**ENTRY, "tuned": True}
    assert (train_settings["lr"], train_settings["weight_decay"], model_settings["dropout"]) == (
        0.0042,
        0.02,
        0.21,
    )
    rec, file_rec, train_settings, model_settings = seen["cnn"]
    assert rec == file_rec == {"lr": 0.003, "dropout": 0.3, "weight_decay": 0.01, "tuned": False}
    assert (train_settings["lr"], model_settings["dropout"]) == (0.003, 0.3)


def test_the_resume_fingerprint_covers_the_recipe():
    class Data:  # what the fingerprint reads of the data, fixed here so that only the recipe varies
        def fingerprint(self):
            return "data"

    p = params()
    default = parse_recipes({})
    tuned = parse_recipes({"recipes": {"cnn": {"2.5s": ENTRY}}})

    def run_fingerprint(*args):
        return fingerprint_of(run_provenance(*args))

    prints = {
        name: run_fingerprint("cnn", 0, *recipe_for(r, p, "cnn", 2.5).settings(p), Data())
        for name, r in (("default", default), ("tuned", tuned))
    }
    assert prints["default"] != prints["tuned"]
    again = run_fingerprint("cnn", 0, *recipe_for(tuned, p, "cnn", 2.5).settings(p), Data())
    assert again == prints["tuned"]
