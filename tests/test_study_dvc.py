"""The whole study through `dvc repro`, as a user runs it: 13 architectures on synthetic data, then a short
study on the real records of ../shared/ptbxl with predict and export on a real record."""

import json
import subprocess

import numpy as np
import onnxruntime as ort
import yaml

from ecg_crnn.data.segment import eval_starts
from ecg_crnn.inference import read_record

from .conftest import SMALL, run, set_params


def _small(project, **extra):
    for dotted, value in {**SMALL, "train.epochs": 2, **extra}.items():
        set_params(project, **{dotted.replace(".", "__", 1): value})


def test_study_end_to_end_on_synthetic(project, synthetic_dir):
    set_params(project, download__source=str(synthetic_dir))
    _small(project)
    run(["dvc", "repro"], project)
    archs = yaml.safe_load((project / "params.yaml").read_text())["study"]["architectures"]
    assert len(archs) == 13
    for arch in archs:
        assert (project / "models" / arch / "model.pt").is_file()
        metrics = json.loads((project / "evaluation" / arch / "metrics.json").read_text())
        assert metrics["macro_auroc_lo"] <= metrics["macro_auroc"] <= metrics["macro_auroc_hi"]
        assert metrics["params"] > 0 and metrics["cpu_latency_ms"] > 0
    report = project / "reports" / "study"
    for name in ("depth", "frontier", "per_class_auroc", "roc"):
        assert (report / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (report / "report.md").read_text()
    assert "## Answer" in md and "Best test macro-AUROC" in md and "cnn_bilstm1" in md
    html = (report / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # self-contained
    study = json.loads((report / "summary.json").read_text())
    assert study["best"] in archs
    assert "Data and pipelines are up to date" in run(["dvc", "status"], project).stdout

    # A changed run beside the baseline: another reference re-runs only what reads it.
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline study"], project)
    out = run(["dvc", "exp", "run", "-n", "ref-lstm1", "-S", "study.reference=cnn_lstm1"], project).stdout
    assert "Running stage 'train@" not in out and "Running stage 'evaluate@" not in out
    assert "Running stage 'compare'" in out
    table = run(["dvc", "exp", "show", "--csv"], project).stdout.splitlines()
    header = table[0].split(",")
    assert "evaluation/cnn_bilstm1/metrics.json:macro_auroc" in header and "study.reference" in header
    assert any(line.startswith("ref-lstm1,") for line in table)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    references = {
        exp["data"]["params"]["params.yaml"]["data"]["study"]["reference"]
        for commit in shown
        for exp in [commit, *[e for r in (commit.get("experiments") or []) for e in r["revs"]]]
        if exp.get("data")
    }
    assert references == {"cnn_bilstm1", "cnn_lstm1"}


def test_study_on_real_records_then_predict_and_export(project, shared_ptbxl, tmp_path):
    set_params(
        project,
        download__source=str(shared_ptbxl),
        filter__records="present",
        study__architectures=["cnn", "cnn_bilstm1"],
    )
    _small(project, **{"train.epochs": 3})
    run(["dvc", "repro"], project)
    assert (project / "reports" / "study" / "report.html").is_file()

    record = shared_ptbxl / "records100" / "00000" / "00009_lr"
    shown = run(["ecg-crnn", "predict", str(record), "--arch", "cnn_bilstm1"], project).stdout
    classes = json.loads((project / "data" / "filtered" / "classes.json").read_text())["classes"]
    assert all(c in shown for c in classes) and "probability" in shown
    pred = json.loads(run(["ecg-crnn", "predict", str(record) + ".hea", "--json"], project).stdout)
    assert set(pred["classes"]) == set(classes)
    thresholds = json.loads((project / "evaluation/cnn_bilstm1/thresholds.json").read_text())["thresholds"]
    for c, v in pred["classes"].items():
        assert v["positive"] == (v["probability"] >= thresholds[c])

    out = run(["ecg-crnn", "export", "--arch", "cnn_bilstm1"], project).stdout
    assert "max |ONNX - PyTorch|" in out
    onnx_path = project / "models" / "cnn_bilstm1" / "model.onnx"
    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    # Independent of predict: the ONNX graph on the record's windows, max over windows, gives the same probabilities.
    import torch

    checkpoint = torch.load(project / "models/cnn_bilstm1/model.pt", weights_only=False)
    x = read_record(record, checkpoint)
    starts = eval_starts(x.shape[1], meta["window"], meta["stride"])
    windows = np.stack([x[:, s : s + meta["window"]] for s in starts])
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    probs = session.run(None, {"windows": windows})[0].max(axis=0)
    np.testing.assert_allclose(probs, [pred["classes"][c]["probability"] for c in meta["classes"]], atol=1e-4)

    # Records the model cannot read correctly are refused by name.
    run(["ecg-crnn", "-q", "synth", "--records", "10", str(tmp_path / "hr"), "--rates", "500"], project)
    failed = subprocess.run(
        ["ecg-crnn", "predict", str(tmp_path / "hr/records500/00000/00001_hr")],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "00001_hr.hea: sampled at 500 Hz, the model at 100 Hz" in failed.stderr
    missing = subprocess.run(
        ["ecg-crnn", "predict", str(tmp_path / "nope")], cwd=project, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "nope.hea: record header not found" in missing.stderr


def test_unknown_architecture_in_params_fails_before_work(project, synthetic_dir):
    set_params(project, study__architectures=["cnn", "cnn_lstm9"])
    failed = run(["ecg-crnn", "train", "cnn"], project, check=False)
    assert failed.returncode == 1
    assert "study.architectures[1]: unknown architecture 'cnn_lstm9'" in failed.stderr
