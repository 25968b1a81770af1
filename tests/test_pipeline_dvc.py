"""`dvc repro segment` end to end, as a user runs it, in a scratch copy of the project."""

import json

import yaml

from .helpers.params import set_params
from .helpers.processes import run


def test_repro_on_synthetic_then_status_clean_and_experiment(project, synthetic_dir):
    set_params(project, {"download.source": str(synthetic_dir)})
    run(["dvc", "repro", "segment"], project)
    assert (
        "Data and pipelines are up to date"
        in run(["dvc", "status", "--with-deps", "segment"], project).stdout
    )
    split = (project / "data/segmented/rot0/split.csv").read_text().splitlines()
    assert len(split) == 1 + 300
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"download", "filter", "segment"}
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline"], project)

    # A changed parameter re-runs only what depends on it, as an experiment beside the baseline.
    out = run(["dvc", "exp", "run", "-S", "segment.stride_s=1.0", "segment"], project).stdout
    assert "Stage 'download' didn't change" in out and "Stage 'filter' didn't change" in out
    assert "Running stage 'segment'" in out
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    strides = [
        exp["data"]["params"]["params.yaml"]["data"]["segment"]["stride_s"]
        for commit in shown
        for exp in [commit, *[e for run_ in (commit.get("experiments") or []) for e in run_["revs"]]]
    ]
    assert 1.25 in strides and 1.0 in strides
    layout = json.loads((project / "data/segmented/layout.json").read_text())
    assert layout == {"fs": 100.0, "record_samples": 1000, "stride": 100}


def test_repro_on_real_subset_restricted_to_present(project, shared_ptbxl):
    set_params(project, {"download.source": str(shared_ptbxl)})
    failed = run(["dvc", "repro", "segment"], project, check=False)
    assert failed.returncode != 0
    assert "set filter.records: present" in failed.stderr + failed.stdout
    set_params(project, {"filter.records": "present"})
    run(["dvc", "repro", "segment"], project)
    assert (
        "Data and pipelines are up to date"
        in run(["dvc", "status", "--with-deps", "segment"], project).stdout
    )
    classes = json.loads((project / "data/filtered/classes.json").read_text())
    assert classes["records"] == 477 and classes["task"] == "subdiagnostic"
