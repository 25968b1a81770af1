"""The GPU path, end to end on CUDA: train (bf16 autocast), SIGKILL, resume to bit-identical weights, evaluate on
the GPU, predict and export. Skipped, with that reason, where no CUDA device is present; run them wherever one is
(`python -m pytest -m gpu`)."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from ecg_crnn.artifact import load_model_file
from ecg_crnn.config import ModelSettings, TrainSettings
from ecg_crnn.dataset import load_study_data
from ecg_crnn.models import build_model, rnn_runs_in_bf16
from ecg_crnn.training import run_epoch

from .helpers.params import SMALL
from .helpers.processes import checkpoint_in, kill_after_first_checkpoint, train_cmd

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none is present here"),
]


def _cli(*args):
    # `python -m ecg_crnn`, so that the tests need no installed console script on a GPU machine.
    return [sys.executable, "-m", "ecg_crnn", *args]


def _train(params, prepared, out, resume, arch):
    return train_cmd(params, prepared, out, resume, arch, cli=_cli())


@pytest.mark.parametrize("arch", ["cnn_bilstm2", "cnn_gru1"])
def test_gpu_sigkill_and_resume_end_with_identical_weights(prepared, tmp_path, write_params, arch):
    params = write_params({**SMALL, "train.epochs": 6, "train.patience": None, "train.device": "cuda"})
    whole = subprocess.run(
        _train(params, prepared, tmp_path / "whole", tmp_path / "r1", arch), capture_output=True, text=True
    )
    assert whole.returncode == 0, whole.stderr
    out, resume = tmp_path / "killed", tmp_path / "r2"
    kill_after_first_checkpoint(_train(params, prepared, out, resume, arch), resume, seconds=300, grace=0.2)
    state = torch.load(checkpoint_in(resume), weights_only=True)  # RNG states come back on the CPU
    assert state["generator"].device.type == "cpu" and state["cuda_rng"].device.type == "cpu"
    assert 1 <= state["epoch"] < 6, "the run should have been killed part-way"
    again = subprocess.run(_train(params, prepared, out, resume, arch), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "resuming after epoch" in again.stderr
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    b = torch.load(out / "model.pt", weights_only=True)
    assert a["best_epoch"] == b["best_epoch"]
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key
    assert (out / "history.csv").read_text() == (tmp_path / "whole" / "history.csv").read_text()
    assert '"device": "cuda"' in (out / "timing.json").read_text()


def test_gpu_evaluate_predict_export(prepared, tmp_path, write_params):
    params = write_params({**SMALL, "train.epochs": 2, "train.device": "cuda", "evaluate.bootstrap": 100})
    common = [
        "--params",
        str(params),
        "--filtered",
        str(prepared / "filtered"),
        "--segmented",
        str(prepared / "segmented"),
    ]
    model = tmp_path / "models" / "2.5s" / "cnn_bilstm1" / "frac1.0" / "rot0" / "seed0"
    evaluation = tmp_path / "evaluation" / "2.5s" / "cnn_bilstm1" / "frac1.0" / "rot0" / "seed0"
    for cmd in (
        _cli("train", "cnn_bilstm1", "--window", "2.5", "--seed", "0", "--out", str(model), *common),
        _cli("bootstrap", "--out", str(tmp_path / "evaluation" / "bootstrap"), *common),
        _cli(
            "evaluate",
            "cnn_bilstm1",
            "--window",
            "2.5",
            "--seed",
            "0",
            "--model",
            str(model / "model.pt"),
            "--bootstrap",
            str(tmp_path / "evaluation" / "bootstrap"),
            "--out",
            str(evaluation),
            *common,
        ),
        _cli(
            "export",
            "--arch",
            "cnn_bilstm1",
            "--window",
            "2.5",
            "--seed",
            "0",
            "--models",
            str(tmp_path / "models"),
        ),
    ):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
    assert (model / "model.onnx").is_file()
    # predict needs a record at the training data's rate and leads: a synthetic one from the prepared set
    raw = prepared / "raw" / "records100" / "00000" / "00001_lr"
    shown = subprocess.run(
        _cli(
            "predict",
            str(raw),
            "--arch",
            "cnn_bilstm1",
            "--window",
            "2.5",
            "--seed",
            "0",
            "--json",
            "--models",
            str(tmp_path / "models"),
            "--evaluation",
            str(tmp_path / "evaluation"),
        ),
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert '"probability"' in shown.stdout
    checkpoint = load_model_file(model / "model.pt")
    assert all(t.device.type == "cpu" for t in checkpoint["state_dict"].values())  # saved for any machine


def test_gpu_training_step_never_waits_on_the_device(prepared):
    """CUDA's sync debug mode warns on every synchronizing call: one per epoch (the loss read at its end)."""
    data = load_study_data(prepared / "filtered", prepared / "segmented", 2.5, splits=("train",))
    device = torch.device("cuda")
    model = build_model(
        "cnn_bilstm1",
        12,
        len(data.classes),
        ModelSettings(channels=[16, 16, 32, 32], kernel_size=7, hidden=16, dropout=0.3),
    ).to(device)
    opt = torch.optim.AdamW(model.parameters())
    x = torch.from_numpy(data.splits["train"].x).to(device)
    y = torch.from_numpy(data.splits["train"].y).to(device)
    gen = torch.Generator(device=device).manual_seed(0)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    run_epoch(model, opt, None, loss_fn, x, y, data.window, 16, gen, 1.0, True, max_steps=2)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run_epoch(model, opt, None, loss_fn, x, y, data.window, 16, gen, 1.0, True, max_steps=8)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) == 1, [str(w.message) for w in syncs]


def test_gpu_bf16_recurrent_layers_run_or_fall_back(prepared):
    device = torch.device("cuda")
    for kind, arch in (("lstm", "cnn_bilstm1"), ("gru", "cnn_gru2")):
        supported = rnn_runs_in_bf16(device, kind)
        model = build_model(
            arch, 12, 5, ModelSettings(channels=[16, 16], kernel_size=5, hidden=16, dropout=0.1)
        ).to(device)
        seen = []
        model.rnn[0].register_forward_hook(lambda m, i, o, seen=seen: seen.append(i[0].dtype))
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(torch.randn(4, 12, 250, device=device))
        out.float().sum().backward()
        assert torch.isfinite(out.float()).all()
        assert seen[0] == (torch.bfloat16 if supported else torch.float32), (kind, supported, seen)
        print(f"{kind}: bf16 recurrent kernels {'used' if supported else 'unavailable: float32 fallback'}")


def test_gpu_training_learns(prepared):
    from ecg_crnn.training import train

    data = load_study_data(prepared / "filtered", prepared / "segmented", 2.5, splits=("train", "val"))
    result = train(
        "cnn_bilstm1",
        data,
        ModelSettings(channels=[32, 32, 64, 64], hidden=32),
        TrainSettings(epochs=8, batch_size=32, patience=None, device="cuda"),
        seed=0,
        progress=False,
    )
    assert result.history[-1]["train_loss"] < 0.6 * result.history[0]["train_loss"]
    assert np.isfinite(result.best_val_macro_auroc) and result.best_val_macro_auroc > 0.7
