"""Scheduled retraining: pull data and models, re-run the pipeline, check drift, push and publish.

  python flows/retrain.py                 one run now, no server needed
  python flows/retrain.py --serve         a deployment with the cron schedule of retrain.cron (params.yaml);
                                          watch it in the Prefect UI, trigger it by hand with
                                          `prefect deployment run ecg-crnn-retrain/ecg-crnn-retrain`
Every step is a command a user could type (dvc pull / repro / push, ecg-crnn publish); the flow adds the
schedule, retries, logs and a summary artifact. Each step is bounded by retrain.timeout_s; the flow's parameters
(which anyone who reaches the Prefect server can set) never become options: targets must be stage names.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from orchestration import QUICK_S, run
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from ecg_crnn.config import load_params
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.markup import md_escape
from ecg_crnn.redaction import redact

STAGE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_@.\-]*")  # dvc.yaml's stage names, matrix keys included


def _run(cmd: list[str], repo: str, timeout_s: float = QUICK_S) -> str:
    return run(cmd, repo, echo=True, timeout_s=timeout_s)


@task
def remotes(repo: str) -> list[str]:
    return [line.split()[0] for line in _run(["dvc", "remote", "list"], repo).splitlines() if line.strip()]


@task(retries=2, retry_delay_seconds=30)
def dvc_pull(repo: str, timeout_s: float) -> None:
    # --allow-missing: outputs the remote does not have yet (a first run) are produced by repro.
    _run(["dvc", "pull", "--allow-missing"], repo, timeout_s)


@task
def dvc_repro(repo: str, targets: list[str], timeout_s: float) -> str:
    bad = [t for t in targets if not STAGE_NAME.fullmatch(t)]
    if bad:
        raise EcgCrnnError(f"retrain: targets {bad!r} are not stage names")
    return _run(["dvc", "repro", *targets], repo, timeout_s)


@task(retries=2, retry_delay_seconds=30)
def dvc_push(repo: str, timeout_s: float) -> None:
    _run(["dvc", "push"], repo, timeout_s)


@task(retries=2, retry_delay_seconds=30)
def publish(repo: str, params_path: str, timeout_s: float) -> str:
    paths = [p for p in ("reports", "models") if (Path(repo) / p).exists()]
    # --params=PATH is one token: a path from a flow parameter can never be read as another option
    return _run(["ecg-crnn", f"--params={params_path}", "publish", *paths], repo, timeout_s)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def summary_markdown(done: list[str], skipped: list[str], stages: list[str], study: dict, drift: dict) -> str:
    """The retraining summary artifact: what ran, what was skipped and why, the best model, drift per fold."""
    lines = ["# ecg-crnn retraining", "", "## Done", "", *[f"- {d}" for d in done]]
    if stages:
        lines += ["", "Stages re-run: " + ", ".join(md_escape(s) for s in stages) + "."]
    lines += ["", "## Skipped, and why", "", *([f"- {s}" for s in skipped] or ["- nothing"]), ""]
    if study:
        best = study["best"]
        m = study["models"].get(f"{best['arch']} @ {best['window_s']:g} s", {})
        if m:
            lo, hi = m["macro_auroc"]["ci"]
            lines += [
                f"Best model (chosen on validation): **{md_escape(best['arch'])} @ {best['window_s']:g} s**, test "
                f"macro-AUROC {m['macro_auroc']['point']:.4f} [{lo:.4f}, {hi:.4f}].",
                "",
            ]
    if drift:
        lines += ["| fold | role | drifted columns | dataset drift |", "|---|---|---|---|"]
        lines += [
            f"| {md_escape(k)} | {md_escape(v['role'])} | {int(v['drifted_columns'])}/{int(v['columns'])} | "
            f"{'**yes**' if v['dataset_drift'] else 'no'} |"
            for k, v in drift.items()
        ]
    return "\n".join(lines)


@flow(name="ecg-crnn-retrain", log_prints=True)
def retrain_flow(
    repo: str = ".", params_path: str = "params.yaml", targets: list[str] | None = None, push: bool = True
) -> dict:
    repo = str(Path(repo).resolve())
    params = load_params(Path(repo) / params_path)
    step_s = params.retrain.timeout_s
    configured = remotes(repo)
    done, skipped = [], []
    if configured:
        dvc_pull(repo, step_s)
        done.append(f"pulled data and models from DVC remote {', '.join(configured)}")
    else:
        skipped.append("dvc pull and push: no DVC remote is configured (`dvc remote add -d NAME URL`)")
    ran = dvc_repro(repo, targets or [], step_s)
    stages = [line.split("'")[1] for line in ran.splitlines() if line.startswith("Running stage '")]
    done.append(
        f"dvc repro: {len(stages)} stage(s) re-ran" if stages else "dvc repro: everything was up to date"
    )
    if configured and push:
        dvc_push(repo, step_s)
        done.append(f"pushed to DVC remote {', '.join(configured)}")
    elif configured:
        skipped.append("dvc push: push=False was asked for")
    if not params.storage.publish_url:
        skipped.append("publish: storage.publish_url is not set")
    elif not params.retrain.publish:
        skipped.append("publish: retrain.publish is false")
    else:
        publish(repo, params_path, step_s)
        done.append(f"published reports and models to {redact(params.storage.publish_url)}")
    drift = _read_json(Path(repo) / "reports" / "drift" / "summary.json")
    study = _read_json(Path(repo) / "reports" / "study" / "summary.json")
    for line in done:
        print(f"done: {line}")
    for line in skipped:
        print(f"skipped: {line}")
    create_markdown_artifact(
        key="retrain-summary",
        markdown=summary_markdown(done, skipped, stages, study, drift),
        description="Retraining summary",
    )
    return {
        "stages": stages,
        "remotes": configured,
        "published": bool(params.storage.publish_url and params.retrain.publish),
        "skipped": skipped,
        "drifted_folds": [k for k, v in drift.items() if v.get("dataset_drift")],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="ecg-crnn scheduled retraining")
    parser.add_argument("--repo", default=".")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument(
        "--serve", action="store_true", help="serve the scheduled deployment (runs until stopped)"
    )
    parser.add_argument("--json", action="store_true", help="also print the result as JSON")
    args = parser.parse_args(argv)
    if args.serve:
        from prefect.schedules import Cron

        cfg = load_params(Path(args.repo) / args.params).retrain
        retrain_flow.serve(
            name="ecg-crnn-retrain",
            schedules=[Cron(cfg.cron, timezone=cfg.timezone)],
            parameters={"repo": str(Path(args.repo).resolve()), "params_path": args.params},
        )
        return 0
    try:
        result = retrain_flow(args.repo, args.params)
    except EcgCrnnError as exc:
        print(f"retrain: error: {exc}", file=sys.stderr)
        return 1
    ran = ", ".join(result["stages"]) or "nothing (up to date)"
    print(
        f"retrain: re-ran {ran}; "
        + ("; ".join(f"skipped {s}" for s in result["skipped"]) or "nothing skipped")
    )
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
