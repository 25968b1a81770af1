"""The CUDA-graph training step (train.cuda_graph) and a job's GPU binding, on CUDA. Skipped, with that reason, where
no CUDA device is present (`python -m pytest -m gpu` wherever one is).

The graph must be bit-identical to the eager step with the same flags (capturable AdamW with a tensor learning rate,
autocast without its cache): whole runs through `train()`, schedule, validation and early stopping included, and a
graphed run SIGKILLed and resumed, which captures its graph again after loading the checkpoint."""

import functools
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from ecg_crnn import training
from ecg_crnn.dataset import load_study_data
from ecg_crnn.resources import GPU_MEMORY_ENV
from ecg_crnn.train_step import GraphedStep

from .helpers.params import SMALL, params
from .helpers.paths import REPO
from .helpers.processes import kill_after_first_checkpoint, train_cmd

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none is present here"),
]

GRAPHED = {**SMALL, "train.device": "cuda", "train.cuda_graph": True, "train.patience": None}


@pytest.mark.parametrize("arch", ["cnn_bilstm2", "cnn_gru1", "cnn"])
def test_the_graphed_step_is_bit_identical_to_eager_with_the_same_flags(prepared, monkeypatch, arch):
    data = load_study_data(prepared / "filtered", prepared / "segmented", 2.5, splits=("train", "val"))
    batch = next(b for b in (32, 30, 28) if len(data.splits["train"].x) % b)  # a smaller last batch too
    p = params({**GRAPHED, "train.epochs": 3, "train.batch_size": batch})
    graphed = training.train(arch, data, p.models, p.train, 0, progress=False)
    monkeypatch.setattr(training, "GraphedStep", functools.partial(GraphedStep, capture=False))
    eager = training.train(arch, data, p.models, p.train, 0, progress=False)
    assert [r["train_loss"] for r in graphed.history] == [r["train_loss"] for r in eager.history]
    assert [r["val_macro_auroc"] for r in graphed.history] == [r["val_macro_auroc"] for r in eager.history]
    for key, tensor in eager.state_dict.items():
        assert torch.equal(graphed.state_dict[key], tensor), key


def test_a_graphed_run_killed_and_resumed_ends_with_identical_weights(prepared, tmp_path, write_params):
    cfg = write_params({**GRAPHED, "train.epochs": 5})
    cli = (sys.executable, "-m", "ecg_crnn")
    whole = subprocess.run(
        train_cmd(cfg, prepared, tmp_path / "whole", tmp_path / "r1", cli=cli), capture_output=True, text=True
    )
    assert whole.returncode == 0, whole.stderr
    out, resume = tmp_path / "killed", tmp_path / "r2"
    kill_after_first_checkpoint(
        train_cmd(cfg, prepared, out, resume, cli=cli), resume, seconds=300, grace=0.2
    )
    assert 1 <= torch.load(resume / "checkpoint.pt", weights_only=True)["epoch"] < 5
    again = subprocess.run(train_cmd(cfg, prepared, out, resume, cli=cli), capture_output=True, text=True)
    assert again.returncode == 0 and "resuming after epoch" in again.stderr, again.stderr
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    b = torch.load(out / "model.pt", weights_only=True)
    assert a["train_settings"]["cuda_graph"] is True
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key


_BOUND = textwrap.dedent(
    """
    import torch
    from ecg_crnn.resources import bind
    bind(1, torch.device("cuda"))
    total = torch.cuda.get_device_properties(0).total_memory
    for share in (0.05, 0.2):
        try:
            block = torch.empty(int(total * share), dtype=torch.uint8, device="cuda")
            print("allocated", flush=True)
            del block
        except torch.OutOfMemoryError:
            print("refused", flush=True)
    """
)


def test_a_job_allocates_no_more_than_its_share_of_the_gpu():
    env = {**os.environ, GPU_MEMORY_ENV: "0.1", "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-c", _BOUND], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["allocated", "refused"]  # 5 % of the device fits in a 10 % share, 20 % not
