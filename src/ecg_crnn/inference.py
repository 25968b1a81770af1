"""Using a trained model: class probabilities and decisions for one WFDB record, and ONNX export.

Both start from the train stage's model.pt, which carries everything preprocessing needs (leads,
sampling rate, standardization, window layout), and the evaluate stage's thresholds (tuned on validation).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .artifact import load_model_file, model_from_artifact
from .atomic import atomic_path
from .data.plausibility import amplitude_problems
from .data.records import gains_in_mv, read_digital, signal_problems
from .data.signals import to_physical
from .data.windows import eval_starts
from .dataset import standardize
from .errors import EcgCrnnError
from .models import predict_proba


@dataclass
class Prediction:
    record: str
    arch: str
    window_s: float
    seed: int
    model_path: Path
    thresholds_path: Path
    classes: list[str]
    probabilities: np.ndarray
    thresholds: np.ndarray

    @property
    def decisions(self) -> np.ndarray:
        return self.probabilities >= self.thresholds

    def as_dict(self) -> dict:
        return {
            "record": self.record,
            "model": {
                "arch": self.arch,
                "window_s": self.window_s,
                "seed": self.seed,
                "file": str(self.model_path),
            },
            "thresholds": {"file": str(self.thresholds_path), "tuned_on": "validation fold"},
            "classes": {
                c: {"probability": float(p), "threshold": float(t), "positive": bool(p >= t)}
                for c, p, t in zip(self.classes, self.probabilities, self.thresholds, strict=True)
            },
        }


def load_thresholds(path: Path, classes: list[str]) -> tuple[np.ndarray, str]:
    try:
        info = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EcgCrnnError(f"{path}: no tuned thresholds (run the evaluate stage first)") from None
    missing = [c for c in classes if c not in info["thresholds"]]
    if missing:
        raise EcgCrnnError(f"{path}: no threshold for {', '.join(missing)}; re-run the evaluate stage")
    return np.array([info["thresholds"][c] for c in classes]), info.get("aggregate", "max")


def read_record(record: Path, checkpoint: dict) -> np.ndarray:
    """A WFDB record as the model's standardized input (leads, samples), checked against the training data:
    sampling rate, lead names (reordered to the model's order), units, leads that carry no signal, and physical
    amplitudes no ECG can have (the filter stage's checks, so a record it would drop gets no prediction)."""
    record = Path(record)
    if record.is_dir():
        raise EcgCrnnError(
            f"{record}: is a directory; give a record's path without extension, e.g. "
            f"{record / '00001_lr'} for {record / '00001_lr.hea'}"
        )
    record = Path(str(record).removesuffix(".hea").removesuffix(".dat"))
    digital, header = read_digital(record)
    where = f"{record}.hea"
    if header.fs != checkpoint["fs"]:
        raise EcgCrnnError(f"{where}: sampled at {header.fs:g} Hz, the model at {checkpoint['fs']:g} Hz")
    leads = [lead.upper() for lead in header.leads]
    want = [lead.upper() for lead in checkpoint["leads"]]
    if sorted(leads) != sorted(want):
        raise EcgCrnnError(f"{where}: leads {list(header.leads)}, the model expects {checkpoint['leads']}")
    if header.n_samples < checkpoint["window"]:
        raise EcgCrnnError(
            f"{where}: {header.n_samples} samples, shorter than one window ({checkpoint['window']})"
        )
    gains = gains_in_mv(header, where)
    problems = signal_problems(digital, header.leads) + amplitude_problems(
        digital, gains, header.baselines, header.leads
    )
    if problems:
        raise EcgCrnnError(
            f"{where}: no prediction for a record whose signal is unusable or implausible: {'; '.join(problems)}"
        )
    order = [leads.index(lead) for lead in want]
    x = to_physical(digital, np.array(gains), np.array(header.baselines))[order]
    return standardize(
        x, np.asarray(checkpoint["mean"], np.float32), np.asarray(checkpoint["std"], np.float32)
    )


def predict_record(record: Path, model_path: Path, thresholds_path: Path) -> Prediction:
    checkpoint = load_model_file(model_path)
    thresholds, aggregate = load_thresholds(thresholds_path, checkpoint["classes"])
    x = read_record(record, checkpoint)
    # Windows laid out as in evaluation, over however long this record is.
    starts = eval_starts(x.shape[1], checkpoint["window"], checkpoint["stride"])
    p = predict_proba(model_from_artifact(checkpoint), x[None], starts, checkpoint["window"], aggregate)[0]
    return Prediction(
        str(record),
        checkpoint["arch"],
        checkpoint["window_s"],
        checkpoint["seed"],
        Path(model_path),
        Path(thresholds_path),
        checkpoint["classes"],
        p,
        thresholds,
    )


class _Probabilities(torch.nn.Module):
    """What the ONNX graph computes: windows (N, leads, window) -> class probabilities (N, classes)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(windows))


def export_onnx(model_path: Path, out: Path, atol: float = 1e-4) -> dict:
    """Write the model as one self-contained ONNX file (weights inside, no companion data file) and check
    onnxruntime's outputs against PyTorch's before it is kept; the preprocessing goes beside it as JSON."""
    import onnxruntime as ort

    checkpoint = load_model_file(model_path)
    model = _Probabilities(model_from_artifact(checkpoint)).eval()
    example = torch.randn(len(checkpoint["eval_starts"]), len(checkpoint["leads"]), checkpoint["window"])
    batch = torch.export.Dim("windows", min=1, max=65536)
    with atomic_path(out, suffix=".onnx") as tmp, _quiet_exporter():
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["windows"],
            output_names=["probabilities"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,  # weights inside the file: it loads wherever it is copied
            verbose=False,
        )
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        check = torch.randn(11, *example.shape[1:])
        got = session.run(None, {"windows": check.numpy()})[0]
        with torch.no_grad():
            want = model(check).numpy()
        max_diff = float(np.abs(got - want).max())
        if not max_diff <= atol:
            raise EcgCrnnError(
                f"{out}: ONNX outputs differ from PyTorch's by {max_diff:.2e} (> {atol:g}); not written"
            )
    meta = {
        "arch": checkpoint["arch"],
        "window_s": checkpoint["window_s"],
        "seed": checkpoint["seed"],
        "classes": checkpoint["classes"],
        "leads": checkpoint["leads"],
        "fs": checkpoint["fs"],
        "window": checkpoint["window"],
        "stride": checkpoint["stride"],
        "eval_starts": checkpoint["eval_starts"],
        "mean": checkpoint["mean"],
        "std": checkpoint["std"],
        "max_abs_diff_vs_pytorch": max_diff,
    }
    with atomic_path(Path(out).with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


@contextlib.contextmanager
def _quiet_exporter():
    """torch.onnx's exporter narrates every step and warns about its own internals (FutureWarnings from dynamo,
    tensor attributes it reassigns while tracing), attributed to whatever module it happens to be in. Within
    this call alone, those are silenced; a real problem still raises, and the exported graph is checked against
    PyTorch right after."""
    import logging
    import warnings

    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "torch._dynamo", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"The tensor attributes .* were assigned")
        warnings.filterwarnings(
            "ignore", module=r"torch\.onnx.*|onnxscript.*|torch\._export.*|torch\.export.*"
        )
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)
