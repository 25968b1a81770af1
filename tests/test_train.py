"""Training: it learns, and a run killed with SIGKILL resumes to exactly the uninterrupted result."""

import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from ecg_crnn.config import ModelSettings, TrainSettings
from ecg_crnn.dataset import load_study_data
from ecg_crnn.metrics import headline, tune_thresholds
from ecg_crnn.train import predict_proba, random_crops, train

from .conftest import SMALL


@pytest.fixture(scope="module")
def data(prepared):
    return load_study_data(prepared / "filtered", prepared / "segmented")


def test_random_crops_cut_real_windows():
    x = torch.arange(2 * 3 * 20, dtype=torch.float32).reshape(2, 3, 20)
    gen = torch.Generator().manual_seed(0)
    crops = random_crops(x, torch.tensor([1, 0, 1]), 5, gen)
    assert crops.shape == (3, 3, 5)
    for crop, rec in zip(crops, (1, 0, 1), strict=True):
        start = int(crop[0, 0] - x[rec, 0, 0])
        assert torch.equal(crop, x[rec, :, start : start + 5])


def test_short_training_learns_well_above_chance(data):
    model_cfg = ModelSettings(channels=[32, 32, 64, 64], hidden=32)
    result = train(
        "cnn_bilstm1", data, model_cfg, TrainSettings(epochs=8, batch_size=32), seed=0, progress=False
    )
    assert len(result.history) == 8
    assert result.history[-1]["train_loss"] < 0.6 * result.history[0]["train_loss"]
    from ecg_crnn.models import build_model

    model = build_model("cnn_bilstm1", 12, len(data.classes), model_cfg.channels, 7, 32, 0.3)
    model.load_state_dict(result.state_dict)
    val, test = data.splits["val"], data.splits["test"]
    thresholds = tune_thresholds(val.y, predict_proba(model, val.x, data.eval_starts, data.window))
    figures = headline(test.y, predict_proba(model, test.x, data.eval_starts, data.window), thresholds)
    assert figures["macro_auroc"] > 0.85, figures  # chance is 0.5


def test_early_stopping_keeps_the_best_epoch(data):
    result = train(
        "cnn",
        data,
        ModelSettings(channels=[8, 8], hidden=8),
        TrainSettings(epochs=30, patience=2, lr=0.05),
        seed=1,
        progress=False,
    )
    scores = [r["val_macro_auroc"] for r in result.history]
    assert result.best_val_macro_auroc == max(scores)
    assert result.best_epoch == int(np.argmax(scores)) + 1
    if result.stopped_early:
        assert len(scores) - result.best_epoch == 2


def _train_cmd(params, prepared, out, resume):
    return [
        "ecg-crnn",
        "--params",
        str(params),
        "train",
        "cnn_bilstm1",
        "--filtered",
        str(prepared / "filtered"),
        "--segmented",
        str(prepared / "segmented"),
        "--out",
        str(out),
        "--resume-dir",
        str(resume),
    ]


def test_sigkill_then_rerun_ends_where_an_uninterrupted_run_ends(prepared, tmp_path, write_params):
    params = write_params({**SMALL, "train.epochs": 8, "train.patience": 100})
    whole = subprocess.run(
        _train_cmd(params, prepared, tmp_path / "whole", tmp_path / "r1"), capture_output=True, text=True
    )
    assert whole.returncode == 0, whole.stderr

    out, resume = tmp_path / "killed", tmp_path / "r2"
    proc = subprocess.Popen(_train_cmd(params, prepared, out, resume), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (resume / "seed0.pt").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(resume / "seed0.pt", weights_only=False)
    assert 1 <= state["epoch"] < 8, "the run should have been killed part-way"
    assert not (out / "model.pt").exists()

    again = subprocess.run(_train_cmd(params, prepared, out, resume), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert f"resuming after epoch {state['epoch']}" in again.stderr or "resuming after epoch" in again.stderr
    assert not resume.exists()  # finished: nothing left to resume

    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=False)["seeds"][0]
    b = torch.load(out / "model.pt", weights_only=False)["seeds"][0]
    assert a["best_epoch"] == b["best_epoch"]
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key
    # DVCLive's curves hold each epoch exactly once, replayed history included.
    curve = (out / "dvclive" / "plots" / "metrics" / "val_macro_auroc.tsv").read_text().splitlines()
    assert len(curve) == 1 + 8


def test_checkpoint_from_other_settings_is_not_resumed(data, tmp_path):
    ckpt = tmp_path / "seed0.pt"
    small = ModelSettings(channels=[8, 8], hidden=8)
    train("cnn", data, small, TrainSettings(epochs=2), seed=0, checkpoint=ckpt, progress=False)
    fresh = train(
        "cnn", data, small, TrainSettings(epochs=3, lr=0.001), seed=0, checkpoint=ckpt, progress=False
    )
    assert [r["epoch"] for r in fresh.history] == [1, 2, 3]
