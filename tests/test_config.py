import re

import pytest

from ecg_crnn.cli import main
from ecg_crnn.config import ConfigError, from_dict, load_params

from .helpers.paths import REPO


def test_repository_params_load_with_defaults():
    params = load_params(REPO / "params.yaml")
    assert params.filter.task == "subdiagnostic"
    assert params.data.sampling_rate == 100
    assert params.segment.test_folds == [10]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"filter": {"task": "subdiagnostc"}}, "filter.task: 'subdiagnostc' is not one of"),
        ({"data": {"sampling_rate": 250}}, "data.sampling_rate: 250 is not one of 100, 500"),
        ({"filtr": {}}, "unknown key filtr"),
        ({"filter": {"tsk": "rhythm"}}, "unknown key filter.tsk"),
        ({"filter": {"workers": "two"}}, "filter.workers: expected int"),
        ({"segment": {"val_folds": [8]}}, "segment.val_folds: fold 8 is already in segment.train_folds"),
        ({"segment": {"test_folds": [11]}}, "segment.test_folds: fold 11 is not in 1..10"),
        ({"download": {"workers": 0}}, "download.workers: must be > 0"),
        ({"train": {"warmup": 0.8, "cooldown": 0.3}}, "train.warmup + train.cooldown: must not exceed 1"),
        ({"train": {"patience": 0}}, "train.patience: must be > 0"),
        ({"train": {"seeds": [0, 0]}}, "train.seeds: must be a non-empty list of distinct integers"),
        ({"study": {"windows": []}}, "study.windows: must name at least one window length"),
        ({"study": {"windows": [2.5, -1]}}, "study.windows[1]: must be > 0"),
        ({"study": {"margins": {"macro_auroc": -0.1}}}, "study.margins.macro_auroc: must be >= 0"),
        ({"study": {"margins": {"auroc": 0.1}}}, "unknown key study.margins.auroc"),
        ({"search": {"windows": []}}, "search.windows: the search space is empty"),
        ({"search": {"seed": 2}}, "search.seed: 2 is also in train.seeds [0, 1, 2, 3, 4]"),
        (
            {"search": {"seed": 7}, "train": {"seeds": [5, 7, 8, 9]}},
            "search.seed: 7 is also in train.seeds [5, 7, 8, 9]",
        ),
        ({"search": {"objectives": ["params"]}}, "search.objectives: macro_auroc first"),
        (
            {"search": {"objectives": ["macro_auroc", "params", "params"]}},
            "search.objectives: macro_auroc first",
        ),
        ({"search": {"objectives": ["macro_auroc", "flops"]}}, "search.objectives[1]: 'flops' is not one of"),
        ({"search": {"tune": {"trials": 0}}}, "search.tune.trials: must be > 0"),
        (
            {"search": {"tune": {"weight_decay": [0.1, 0.01]}}},
            "search.tune.weight_decay: expected [low, high]",
        ),
    ],
)
def test_bad_values_are_reported_by_key(raw, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict(raw)


def test_the_default_search_seed_is_no_grid_seed():
    params = load_params(REPO / "params.yaml")
    assert params.search.seed not in params.train.seeds
    assert from_dict({"search": {"seed": 5}}).search.seed == 5  # any seed outside train.seeds is accepted


def test_ints_are_accepted_for_floats_but_bools_not_for_ints():
    assert from_dict({"segment": {"stride_s": 1}}).segment.stride_s == 1.0
    assert from_dict({"train": {"patience": None}}).train.patience is None  # null: the whole budget
    assert from_dict({"study": {"windows": [2.5, 10]}}).study.windows == [2.5, 10.0]
    with pytest.raises(ConfigError, match="filter.min_class_count"):
        from_dict({"filter": {"min_class_count": True}})


def test_cli_names_file_and_key_and_exits_nonzero(write_params, tmp_path, capsys):
    params = write_params({"filter.task": "nonsense"})
    out = tmp_path / "filtered"
    out.mkdir()
    (out / "keep.txt").write_text("previous output")
    assert main(["--params", str(params), "filter", "--raw", str(tmp_path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(params) in err and "filter.task" in err and "nonsense" in err
    assert (out / "keep.txt").read_text() == "previous output"


def test_missing_params_file(tmp_path, capsys):
    assert main(["--params", str(tmp_path / "nope.yaml"), "segment"]) == 1
    assert "nope.yaml: no such parameters file" in capsys.readouterr().err


def test_the_repository_params_name_every_key_of_the_schema():
    """DVC tracks parameters by key: a key left to its default in config.py would change results unseen."""
    import yaml
    from pydantic import BaseModel

    from ecg_crnn.config import Params

    def missing(model, raw, prefix=""):
        out = []
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            if not isinstance(raw, dict) or name not in raw:
                out.append(key)
            elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                out += missing(field.annotation, raw[name], key + ".")
        return out

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert missing(Params, raw) == []
