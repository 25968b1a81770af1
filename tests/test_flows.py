"""The Optuna search and the Prefect flows, against real servers: a Prefect server on 127.0.0.1, PostgreSQL
on a loopback port, two process workers on one work pool (one killed mid-trial), and the scheduled
retraining deployment triggered with `prefect deployment run`."""

import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime

import numpy as np
import optuna
import pandas as pd
import psutil
import pytest
import yaml

from ecg_crnn.config import from_dict
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.search.objective import run_trials
from ecg_crnn.search.results import save_results
from ecg_crnn.search.space import best_point
from ecg_crnn.search.storage import make_storage
from ecg_crnn.search.study import create_study

from .helpers.params import SMALL, set_params
from .helpers.paths import REPO, VENV_BIN
from .helpers.processes import kill_tree, run, start_workers, stop_group
from .helpers.servers import prefect_artifact

SEARCH = {
    "models.channels": [8, 8, 16, 16],
    "search.hidden": [8, 16],
    "search.epochs": 3,
    "search.trials": 6,
    "search.heartbeat_s": 2,
    "search.pruner": "median",
}


def _params(write_params, tmp_path, name="params.yaml", **extra):
    return write_params({**SMALL, **SEARCH, **extra}, tmp_path / name)


def test_embedded_search_reaches_its_trial_count(prepared, tmp_path, write_params):
    params = from_dict(yaml.safe_load(_params(write_params, tmp_path, **{"search.trials": 4}).read_text()))
    study = create_study(params.search, tmp_path / "search")
    f, s = prepared / "filtered", prepared / "segmented"
    epochs, finished = [], []
    ran = run_trials(
        study,
        f,
        s,
        params,
        report=lambda t, p, r: epochs.append((t.number, r["epoch"])),
        on_trial=lambda st, t: finished.append(t.number),
    )
    assert ran == 4
    assert run_trials(study, f, s, params) == 0  # already complete: a re-run adds nothing
    trials = study.get_trials()
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    assert sorted(finished) == [t.number for t in trials]  # each trial reported once when it ends
    for t in trials:
        assert list(t.intermediate_values) == list(range(1, len(t.intermediate_values) + 1))  # one per epoch
        assert [e for n, e in epochs if n == t.number] == list(t.intermediate_values)  # progress as it runs
        # The space is conditional: depth, direction and hidden size exist only with recurrence.
        assert (t.params["rnn"] == "none") == ("depth" not in t.params) == ("hidden" not in t.params)
        assert t.params["window_s"] in (2.5, 10.0)
    point = best_point(study)
    assert point["value"] == max(t.value for t in trials if t.value is not None)
    save_results(study, tmp_path / "out", params)
    for name in ("best.json", "trials.csv", "depth.png", "optuna_history.png"):
        assert (tmp_path / "out" / name).is_file()
    best = json.loads((tmp_path / "out" / "best.json").read_text())
    assert f"study.architectures=[{point['arch']}]" in best["dvc_exp_run"]
    # Optuna's own dashboard opens the journal, as the README shows.
    from .helpers.servers import free_port, wait_http

    port = free_port()
    dash = subprocess.Popen(
        [
            os.path.join(VENV_BIN, "optuna-dashboard"),
            str(tmp_path / "search" / "journal.log"),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import urllib.request

        wait_http(f"http://127.0.0.1:{port}/api/studies", 30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as resp:
            assert params.search.study_name in resp.read().decode()
    finally:
        dash.terminate()
        dash.wait(timeout=10)


def test_a_trial_that_raises_ends_clearly_and_keeps_the_study(prepared, tmp_path, write_params, monkeypatch):
    params = from_dict(yaml.safe_load(_params(write_params, tmp_path).read_text()))
    study = create_study(params.search, tmp_path / "search")

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr("ecg_crnn.search.objective.train", broken)
    with pytest.raises(EcgCrnnError, match="trials failed in a row.*CUDA out of memory"):
        run_trials(study, prepared / "filtered", prepared / "segmented", params)
    again = optuna.load_study(
        study_name=params.search.study_name, storage=make_storage(params.search, tmp_path / "search")
    )
    assert len(again.get_trials(states=(optuna.trial.TrialState.FAIL,))) == 3


def test_unreachable_storage_is_named_and_a_password_in_it_refused():
    """A password in search.storage is refused at load (the URL would stay in params.yaml and dvc.lock; it comes
    from PGPASSWORD or ~/.pgpass instead); an unreachable server is named."""
    with pytest.raises(EcgCrnnError) as info:
        from_dict({"search": {"storage": "postgresql+psycopg2://optuna:s3cret@127.0.0.1:1/optuna"}})
    assert "search.storage: postgresql+psycopg2://optuna:***@127.0.0.1:1/optuna holds a password" in str(
        info.value
    )
    assert "s3cret" not in str(info.value)
    cfg = from_dict({"search": {"storage": "postgresql+psycopg2://optuna@127.0.0.1:1/optuna"}}).search
    with pytest.raises(
        EcgCrnnError, match=r"search.storage: cannot open postgresql\+psycopg2://optuna@127.0.0.1:1/"
    ):
        make_storage(cfg, None)


def _artifact(key: str, env: dict) -> str:
    return prefect_artifact(key, env)


def _prefect(args, env, **kw):
    return subprocess.run(
        [os.path.join(VENV_BIN, "prefect"), *args], env=env, capture_output=True, text=True, **kw
    )


def _search_cmd(params, prepared, tmp_path, *extra):
    return [
        sys.executable,
        str(REPO / "flows" / "search.py"),
        "--params",
        str(params),
        "--filtered",
        str(prepared / "filtered"),
        "--segmented",
        str(prepared / "segmented"),
        "--search-dir",
        str(tmp_path / "search"),
        *extra,
    ]


def test_pool_search_on_postgres_with_two_workers_one_killed(
    prefect_server, postgres, prepared, tmp_path, write_params
):
    params = _params(
        write_params,
        tmp_path,
        **{
            "search.storage": postgres,
            "search.mode": "pool",
            "search.work_pool": "gpus",
            "search.study_name": "pool-test",
            "search.epochs": 4,
        },
    )
    env = prefect_server
    deployed = subprocess.run(
        _search_cmd(params, prepared, tmp_path, "--deploy"), env=env, capture_output=True, text=True, cwd=REPO
    )
    assert deployed.returncode == 0, deployed.stderr
    workers = start_workers("gpus", env)
    try:
        search = subprocess.Popen(
            _search_cmd(params, prepared, tmp_path),
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        storage = optuna.storages.RDBStorage(postgres)
        deadline = time.monotonic() + 240
        killed = None
        while time.monotonic() < deadline and killed is None:
            try:
                study = optuna.load_study(study_name="pool-test", storage=storage)
                running = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
            except KeyError:
                running, complete = [], []
            for t in running if len(running) == 2 and complete else []:
                # Both workers busy: kill the worker running a trial that started moments ago, with its trial
                # process (the trial records which process runs it).
                pid = int(t.user_attrs.get("worker", ":0").rsplit(":", 1)[1] or 0)
                worker = next(
                    (
                        w
                        for w in workers
                        if pid and pid in {p.pid for p in psutil.Process(w.pid).children(recursive=True)}
                    ),
                    None,
                )
                age = (datetime.now() - t.datetime_start).total_seconds()
                if worker is not None and age < 0.5:
                    kill_tree(worker.pid)
                    with contextlib.suppress(psutil.NoSuchProcess):  # already gone is fine
                        _, alive = psutil.wait_procs([psutil.Process(pid)], timeout=10)
                        assert not alive, "the trial process survived its worker"
                    killed = t.number
                    break
            time.sleep(0.05)
        assert killed is not None, "both workers never ran trials at once"
        out, _ = search.communicate(timeout=400)
        assert search.returncode == 0, out[-4000:]
    finally:
        for w in workers:
            stop_group(w)
    study = optuna.load_study(study_name="pool-test", storage=storage)
    states = [t.state for t in study.get_trials()]
    done = [s for s in states if s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(done) >= 6
    assert optuna.trial.TrialState.RUNNING not in states  # every trial accounted for
    # The killed trial was failed once its heartbeats stopped, and retried by another trial.
    assert study.trials[killed].state == optuna.trial.TrialState.FAIL
    retried = [
        optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in study.get_trials()
    ]
    assert killed in retried, "the failed trial should have been retried"
    assert (tmp_path / "search" / "pool-test" / "best.json").is_file()
    assert "best:" in out


def test_pool_without_workers_times_out_clearly(prefect_server, prepared, tmp_path, write_params):
    params = _params(
        write_params,
        tmp_path,
        **{
            "search.mode": "pool",
            "search.work_pool": "nobody-home",
            "search.worker_timeout_s": 5,
            "search.study_name": "lonely",
        },
    )
    assert (
        subprocess.run(
            _search_cmd(params, prepared, tmp_path, "--deploy"),
            env=prefect_server,
            cwd=REPO,
            capture_output=True,
        ).returncode
        == 0
    )
    t = time.monotonic()
    proc = subprocess.run(
        _search_cmd(params, prepared, tmp_path),
        env=prefect_server,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 1
    assert "no worker of work pool 'nobody-home' picked up the trial runs within 5 s" in proc.stderr
    assert time.monotonic() - t < 120


def test_retrain_deployment_runs_on_schedule_and_by_hand(prefect_server, project, synthetic_dir, tmp_path):
    set_params(
        project,
        {
            "download.source": str(synthetic_dir),
            "study.architectures": ["cnn"],
            "study.reference": "cnn",
            "study.windows": [2.5],
            "retrain.cron": "15 4 * * 1",
            **SMALL,
            "train.epochs": 1,
            "train.seeds": [0, 1],
            "study.selection_seeds": 0,
        },
    )
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "local", str(remote)], project)
    env = {**prefect_server}
    server = subprocess.Popen(
        [sys.executable, str(REPO / "flows" / "retrain.py"), "--serve", "--repo", str(project)],
        env=env,
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            shown = _prefect(["deployment", "inspect", "ecg-crnn-retrain/ecg-crnn-retrain"], env)
            if shown.returncode == 0:
                break
            time.sleep(1)
        assert shown.returncode == 0, shown.stderr
        assert "15 4 * * 1" in shown.stdout  # the schedule from params.yaml's retrain.cron
        ran = _prefect(
            ["deployment", "run", "ecg-crnn-retrain/ecg-crnn-retrain", "--watch", "--watch-timeout", "600"],
            env,
            timeout=700,
        )
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
        assert "Completed" in ran.stdout
    finally:
        stop_group(server)
    assert (project / "reports" / "study" / "report.html").is_file()
    assert (project / "reports" / "drift.json").is_file()
    assert any(remote.rglob("*")), "dvc push should have filled the remote"
    summary = _artifact("retrain-summary", env)
    assert "Stages re-run" in summary and "pushed to DVC remote local" in summary
    assert "publish: storage.publish_url is not set" in summary  # what was skipped, and why


def test_search_flow_promotes_the_best_configuration_into_dvc(prefect_server, project, synthetic_dir):
    """--promote trains the best configuration as a DVC experiment without moving the workspace off the study
    (the next scheduled retraining must reproduce the study, not the promoted configuration)."""
    set_params(project, {"download.source": str(synthetic_dir)})
    overrides = {
        **SMALL,
        **SEARCH,
        "search.trials": 3,
        "search.study_name": "promo",
        "train.epochs": 2,
        "train.seeds": [0, 1],
        "study.selection_seeds": 0,
    }
    set_params(project, overrides)
    run(["dvc", "repro", "segment"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "data"], project)
    before = {name: (project / name).read_text() for name in ("params.yaml", "recipe.yaml")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "flows" / "search.py"), "--promote"],
        cwd=project,
        env=prefect_server,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name, text in before.items():  # the workspace stays on the study
        assert (project / name).read_text() == text, name
    assert not run(
        ["git", "status", "--porcelain", "params.yaml", "recipe.yaml", "dvc.lock"], project
    ).stdout.strip()
    best = json.loads((project / "search" / "promo" / "best.json").read_text())
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    exps = [e for commit in shown for r in (commit.get("experiments") or []) for e in r["revs"]]
    exp = next(e for e in exps if e.get("name") == "search-promo")["data"]
    exp_params = exp["params"]["params.yaml"]["data"]
    assert exp_params["study"]["architectures"] == [best["arch"]]
    assert exp_params["study"]["windows"] == [best["window_s"]]
    if best["hidden"] is not None:
        assert exp_params["models"]["hidden"] == best["hidden"]
    # It trains with the trial's learning rate and dropout: its entry of the experiment's recipe.yaml.
    entry = exp["params"]["recipe.yaml"]["data"]["recipes"][best["arch"]][f"{best['window_s']:g}s"]
    assert entry == pytest.approx(
        {"lr": best["lr"], "dropout": best["dropout"], "weight_decay": 0.01}, rel=1e-3
    )
    headline = exp["metrics"]["reports/study.json"]["data"]
    assert 0 <= headline[f"{best['window_s']:g}s"][best["arch"]] <= 1
    assert "search-promo" in run(["dvc", "exp", "show", "--csv"], project).stdout
    # The artifacts render in the Prefect UI itself: tables and Markdown, the plot inline (not a file:// link).
    best_md = _artifact("search-best", prefect_server)
    assert "data:image/png;base64," in best_md and "file://" not in best_md
    assert "Best validation macro-AUROC by recurrent type and depth" in best_md


def _dominated(values: np.ndarray) -> np.ndarray:
    """Brute force, (macro-AUROC up, cost down): trial j is dominated when another is at least as good in both
    and better in one."""
    return np.array(
        [
            any(
                a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])
                for i, a in enumerate(values)
                if i != j
            )
            for j, b in enumerate(values)
        ]
    )


def test_multi_objective_search_publishes_its_front_and_the_smallest_model_within_the_margin(
    prefect_server, project, synthetic_dir
):
    set_params(
        project,
        {
            "download.source": str(synthetic_dir),
            **SMALL,
            **SEARCH,
            "search.trials": 5,
            "search.study_name": "mo",
            "search.objectives": ["macro_auroc", "params"],
        },
    )
    run(["dvc", "repro", "segment"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "data"], project)
    params = from_dict(yaml.safe_load((project / "params.yaml").read_text()))
    study = create_study(params.search, project / "search")
    # The same network twice, at two learning rates: the same cost, so whichever scores lower is dominated.
    for lr in (0.01, 0.0003):
        point = {"window_s": 2.5, "rnn": "gru", "depth": 1, "bidirectional": False, "hidden": 8}
        study.enqueue_trial({**point, "dropout": 0.2, "lr": lr})
    proc = subprocess.run(
        [sys.executable, str(REPO / "flows" / "search.py")],
        cwd=project,
        env=prefect_server,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = optuna.load_study(study_name="mo", storage=make_storage(params.search, project / "search"))
    assert study.metric_names == ["val_macro_auroc", "params"]  # what optuna-dashboard names the axes
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(done) == 5 and all(not t.intermediate_values for t in done)  # multi-objective: never pruned
    values = np.array([t.values for t in done])
    dominated = _dominated(values)
    assert dominated.any(), values  # the enqueued pair guarantees one
    out = project / "search" / "mo"
    front = pd.read_csv(out / "pareto.csv")
    assert set(front["trial"]) == {t.number for t, d in zip(done, dominated, strict=True) if not d}
    assert set(front["trial"]) == {t.number for t in study.best_trials}  # the front optuna-dashboard draws
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Promoted: the fewest parameters among trials within study.margins.macro_auroc of the best.
    margin = params.study.margins.macro_auroc
    inside = values[:, 0] >= values[:, 0].max() - margin
    cheapest = values[inside, 1].min()
    expected = max(
        (t for t, ok in zip(done, inside, strict=True) if ok and t.values[1] == cheapest),
        key=lambda t: t.values[0],
    )
    best = json.loads((out / "best.json").read_text())
    assert best["trial"] == expected.number and best["margin_key"] == "study.margins.macro_auroc"
    assert front.loc[front["promoted"], "trial"].tolist() == [expected.number]
    # The artifacts render in the Prefect UI: the front as a table, and the front, its plot and the chosen point.
    table = json.loads(prefect_artifact("search-pareto", prefect_server))  # a table artifact holds JSON rows
    assert sorted(r["trial"] for r in table) == sorted(front["trial"])
    md = prefect_artifact("search-best", prefect_server)
    assert "the Pareto front" in md and "data:image/png;base64," in md and "file://" not in md
    assert "smallest model by parameters" in md
    # What --promote runs (test_search_flow_promotes_the_best_configuration_into_dvc runs it): that point.
    command = " ".join(best["dvc_exp_run"])
    assert f"study.architectures=[{best['arch']}]" in command
    entry = f"{best['window_s']:g}s: {{lr: {best['lr']:.4g}, dropout: {best['dropout']:.4g}"
    assert f"recipe.yaml:++recipes.{best['arch']}={{{entry}" in command
    assert "to promote (the smallest model by parameters" in proc.stdout
