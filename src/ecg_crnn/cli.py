"""ecg-crnn: the pipeline's stages, and grid, synth, predict, export, power and publish.

One subcommand per pipeline stage (each a call of its stages/ module's `run`), plus grid (the study's models N at a
time), synth, predict, export, power and publish.

dvc.yaml runs these commands; tests and Prefect flows call the same stage functions directly. Stage modules are
imported only by the subcommand that runs them, so a stage's run imports exactly what its dvc.yaml entry lists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import layout
from .config import load_params, load_params_or_defaults
from .errors import EcgCrnnError
from .layout import RunKey
from .redaction import redact


def _key(args) -> RunKey:
    return RunKey(args.arch, float(args.window), args.seed, args.rotation, float(args.fraction))


def _download(args) -> None:
    from .stages import download

    download.run(load_params(args.params), download.Paths(args.out), progress=not args.quiet)


def _download_noise(args) -> None:
    from .stages import noise

    noise.run(load_params(args.params), noise.Paths(args.out), progress=not args.quiet)


def _filter(args) -> None:
    from .stages import filter

    filter.run(load_params(args.params), filter.Paths(args.raw, args.out), progress=not args.quiet)


def _segment(args) -> None:
    from .stages import segment

    segment.run(load_params(args.params), segment.Paths(args.filtered, args.out))


def _recipe_file(args) -> Path | None:
    """--recipe: named, it must exist; not named, recipe.yaml beside the params file when there is one, else None
    (params.yaml's shared default for every architecture)."""
    from .recipe import recipe_beside

    recipe = args.recipe or recipe_beside(args.params)
    return recipe if args.recipe or recipe.is_file() else None


def _train(args) -> None:
    from .stages import train

    recipe = _recipe_file(args)
    paths = train.Paths(args.filtered, args.segmented, args.out, args.resume_dir, recipe)
    train.run(load_params(args.params), _key(args), paths, progress=not args.quiet)


def _bootstrap(args) -> None:
    from .stages import bootstrap

    bootstrap.run(load_params(args.params), bootstrap.Paths(args.filtered, args.segmented, args.out))


def _evaluate(args) -> None:
    from .stages import evaluate

    paths = evaluate.Paths(args.filtered, args.segmented, args.model, args.bootstrap, args.out)
    evaluate.run(load_params(args.params), _key(args), paths)


def _robustness(args) -> None:
    from .stages import robustness

    paths = robustness.Paths(
        args.filtered, args.segmented, args.models, args.evaluation, args.bootstrap, args.out, args.noise
    )
    robustness.run(load_params(args.params), _key(args), paths)


def _cost(args) -> None:
    from .stages import cost

    cost.run(
        load_params(args.params), args.arch, args.window, cost.Paths(args.filtered, args.segmented, args.out)
    )


def _compare(args) -> None:
    from .stages import compare

    paths = compare.Paths(
        args.evaluation,
        args.models,
        args.filtered,
        args.segmented,
        args.out,
        args.metrics,
        args.drift,
        args.prediction_drift,
        args.robustness,
        _recipe_file(args),
    )
    compare.run(load_params(args.params), paths)


def _power(args) -> None:
    import pandas as pd

    from .analysis.compare import analyse, sized
    from .analysis.results import load_models
    from .report.tables import power_table

    p = load_params(args.params)
    st = analyse(load_models(args.evaluation, args.models, p), p)
    rows = sized(st, args.target, args.confidence)
    table = power_table(st, rows)
    if args.json:
        print(table.to_json(orient="records", indent=2))
        return
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 40):
        print(table.to_string(index=False))
    target = f"{args.target:g}" if args.target else "each hypothesis's margin (study.margins)"
    print(
        f"power: this run as a pilot ({len(st.confirmation)} confirmation seeds); target difference {target}; "
        f"seed variances at their {args.confidence:.0%} upper confidence bound"
    )


def _drift(args) -> None:
    from .stages import drift

    drift.run(
        load_params(args.params), drift.Paths(args.raw, args.filtered, args.segmented, args.out, args.summary)
    )


def _drift_predictions(args) -> None:
    from .stages import drift_predictions

    p = load_params(args.params)
    key = layout.resolve_run(p, args.arch, args.window, args.seed, args.rotation, args.fraction)
    drift_predictions.run(p, key, drift_predictions.Paths(args.evaluation, args.out, args.summary))


def _grid(args) -> None:
    from .grid.runner import run_grid

    result = run_grid(args.repo, args.jobs)
    print(
        f"grid: {len(result['stages'])} models trained side by side and restored here from DVC's run-cache, "
        f"{len(result['trained_here'])} trained here; dvc status: {result['status']}"
    )


def _synth(args) -> None:
    from .data.synthetic import write_synthetic

    info = write_synthetic(
        args.out,
        args.records,
        tuple(args.rates),
        args.seed,
        progress=not args.quiet,
        shift_fold=args.shift_fold,
    )
    print(
        f"synth: {info['records']} records at {', '.join(map(str, info['rates']))} Hz, "
        f"{info['files']} files -> {args.out}"
    )


def _predict(args) -> None:
    import numpy as np

    from .inference import predict_record

    p = load_params_or_defaults(args.params)
    key = layout.resolve_run(p, args.arch, args.window, args.seed, args.rotation, args.fraction)
    model = layout.model_dir(key, args.models) / layout.MODEL_FILE
    pred = predict_record(args.record, model, layout.evaluation_dir(key, args.evaluation) / "thresholds.json")
    if args.json:
        print(json.dumps(pred.as_dict(), indent=2))
        return
    print(f"{pred.record}  ({key.arch}, {key.window:g} s windows, seed {key.seed}; {pred.model_path})")
    print(f"{'class':<12} {'probability':>11} {'threshold':>9}  decision")
    for i in np.argsort(-pred.probabilities):
        mark = "POSITIVE" if pred.decisions[i] else "-"
        print(f"{pred.classes[i]:<12} {pred.probabilities[i]:>11.3f} {pred.thresholds[i]:>9.3f}  {mark}")
    print(f"thresholds: {pred.thresholds_path} (tuned on the validation fold)")


def _export(args) -> None:
    from .inference import export_onnx

    p = load_params_or_defaults(args.params)
    key = layout.resolve_run(p, args.arch, args.window, args.seed, args.rotation, args.fraction)
    folder = layout.model_dir(key, args.models)
    out = args.out or folder / "model.onnx"
    meta = export_onnx(folder / layout.MODEL_FILE, out)
    print(
        f"export: {out} ({meta['arch']}, {key.window:g} s, seed {key.seed}, {len(meta['classes'])} classes; "
        f"max |ONNX - PyTorch| = {meta['max_abs_diff_vs_pytorch']:.1e})"
    )


def _publish(args) -> None:
    from .config import StorageSettings
    from .publish import publish
    from .s3 import endpoint_from_env, s3_client

    # Explicit flags need no parameters file; without them, storage.* from params.yaml.
    p = load_params(args.params).storage if args.params.is_file() or not args.to else StorageSettings()
    dest = args.to or p.publish_url
    if not dest:
        raise EcgCrnnError(
            "publish: no destination (give --to s3://bucket/prefix or set storage.publish_url)"
        )
    endpoint = args.endpoint_url or p.endpoint_url
    StorageSettings(publish_url=dest, endpoint_url=endpoint)  # flags obey params.yaml's rules: no credentials
    client = s3_client(endpoint_from_env(endpoint))
    info = publish(args.paths, dest, client)
    print(
        f"publish: {info['files']} files ({info['uploaded']} uploaded, the rest unchanged) -> {info['manifest']}"
    )


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows a default once: not when the help already says where it comes from, nor for None or a flag."""

    def _get_help_string(self, action):
        if "(default:" in (action.help or "") or action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


# ---- the table of subcommands -----------------------------------------------------------------------------
# Each option is (flags, keyword arguments of argparse's add_argument); each subcommand its name, help, handler and
# options. Defaults come from layout.py, so the CLI, the stages and dvc.yaml agree on where files live.


def _path(flag: str, default, text: str):
    return ([flag], {"type": Path, "default": default, "help": text})


_DATA = {
    "raw": _path("--raw", layout.RAW, "the download stage's output (PhysioNet's layout)"),
    "filtered": _path("--filtered", layout.FILTERED, "the filter stage's output (labels and signal cache)"),
    "segmented": _path(
        "--segmented", layout.SEGMENTED, "the segment stage's output (split, standardization, layout)"
    ),
}
_RUN = [
    (["arch"], {"help": "architecture: cnn or cnn_{lstm,gru,bilstm,bigru}{1,2,3}"}),
    (["--window"], {"type": float, "required": True, "help": "window length in seconds (study.windows)"}),
    (["--seed"], {"type": int, "required": True, "help": "training seed (train.seeds)"}),
    (["--rotation"], {"type": int, "default": 0, "help": "rotation of the folds (segment.rotations)"}),
    (
        ["--fraction"],
        {"type": float, "default": 1.0, "help": "share of the training data (study.train_fractions)"},
    ),
]
_CHOSEN_RUN = [
    (["--arch"], {"help": "architecture (default: study.reference)"}),
    (["--window"], {"type": float, "help": "window length in s (default: first of study.windows)"}),
    (["--seed"], {"type": int, "help": "training seed (default: first of train.seeds)"}),
    (["--rotation"], {"type": int, "help": "rotation of the folds (default: first of segment.rotations)"}),
    (
        ["--fraction"],
        {"type": float, "help": "share of the training data (default: the largest of study.train_fractions)"},
    ),
]
_OUT = "output directory"
COMMANDS = [
    (
        "download",
        "fetch and verify PTB-XL from download.source",
        _download,
        [
            _path("--out", layout.RAW, "where the dataset goes"),
        ],
    ),
    (
        "download-noise",
        "fetch and verify nstdb's noise records from robustness.noise_source (unset: nothing to fetch)",
        _download_noise,
        [
            _path("--out", layout.NOISE, "where the noise records go"),
        ],
    ),
    (
        "filter",
        "aggregate labels of filter.task and cache the records' signals",
        _filter,
        [
            _DATA["raw"],
            _path("--out", layout.FILTERED, _OUT),
        ],
    ),
    (
        "segment",
        "split, standardization (training folds only) and evaluation layout",
        _segment,
        [
            _DATA["filtered"],
            _path("--out", layout.SEGMENTED, _OUT),
        ],
    ),
    (
        "train",
        "train one architecture at one window with one seed (resumes an interrupted run)",
        _train,
        [
            *_RUN,
            _DATA["filtered"],
            _DATA["segmented"],
            _path("--out", None, "output directory (default: models/WINDOWs/ARCH/fracF/rotR/seedS)"),
            _path(
                "--resume-dir",
                None,
                "where unfinished runs keep their checkpoints, one private folder per run named by its "
                "fingerprint (default: .resume, or $ECG_CRNN_RESUME_ROOT); only the run's own files are removed",
            ),
            _path(
                "--recipe",
                None,
                "per-architecture recipe (default: recipe.yaml beside --params if it exists; else params.yaml's "
                "train.lr, models.dropout, train.weight_decay for every architecture)",
            ),
        ],
    ),
    (
        "bootstrap",
        "draw the test fold's patient resamples shared by every evaluation",
        _bootstrap,
        [
            _DATA["filtered"],
            _DATA["segmented"],
            _path("--out", layout.BOOTSTRAP, "output file"),
        ],
    ),
    (
        "evaluate",
        "thresholds on validation, test figures with resamples, for one model",
        _evaluate,
        [
            *_RUN,
            _DATA["filtered"],
            _DATA["segmented"],
            _path("--model", None, "model file (default: models/WINDOWs/ARCH/fracF/rotR/seedS/model.pt)"),
            _path("--bootstrap", layout.BOOTSTRAP, "patient resamples"),
            _path("--out", None, "output directory (default: evaluation/WINDOWs/ARCH/fracF/rotR/seedS)"),
        ],
    ),
    (
        "robustness",
        "one trained run scored on the test fold under every corruption of params.yaml",
        _robustness,
        [
            *_RUN,
            _DATA["filtered"],
            _DATA["segmented"],
            _path("--models", layout.MODELS, "the train stages' outputs"),
            _path("--evaluation", layout.EVALUATION, "the evaluate stages' outputs (thresholds)"),
            _path("--bootstrap", layout.BOOTSTRAP, "patient resamples (one file per rotation)"),
            _path("--out", None, "output directory (default: robustness/WINDOWs/ARCH/fracF/rotR/seedS)"),
            _path(
                "--noise",
                layout.NOISE,
                "the noise stage's nstdb copy (read when robustness.noise_source is set)",
            ),
        ],
    ),
    (
        "cost",
        "parameters, multiply-accumulates and CPU latency of an architecture",
        _cost,
        [
            (["arch"], {"help": "architecture"}),
            (["--window"], {"type": float, "required": True, "help": "window length in seconds"}),
            _DATA["filtered"],
            _DATA["segmented"],
            _path("--out", None, "output file (default: evaluation/WINDOWs/ARCH/cost.json)"),
        ],
    ),
    (
        "compare",
        "the study: choices on validation, corrected tests, plots and report",
        _compare,
        [
            _path("--evaluation", layout.EVALUATION, "the evaluate stages' outputs"),
            _path("--models", layout.MODELS, "the train stages' outputs (curves, timing)"),
            _DATA["filtered"],
            _DATA["segmented"],
            _path("--out", layout.REPORTS / "study", _OUT),
            _path("--metrics", layout.REPORTS / "study.json", "DVC metric: each model's headline"),
            _path("--drift", layout.REPORTS / "drift", "the drift stage's reports, linked if present"),
            _path(
                "--prediction-drift",
                layout.REPORTS / "drift_predictions",
                "the prediction drift report, linked if present",
            ),
            _path("--robustness", layout.ROBUSTNESS, "the robustness stages' outputs, reported if present"),
            _path(
                "--recipe",
                None,
                "the recipe the train stages read, shown per model (default: recipe.yaml beside --params if it "
                "exists; else params.yaml's shared default)",
            ),
        ],
    ),
    (
        "grid",
        "train and evaluate the study's stale models N at a time, then restore them here from DVC's run-cache",
        _grid,
        [
            (
                ["--jobs"],
                {
                    "type": int,
                    "help": "models at once (default and cap on CPU: cores / train.threads; with GPUs: per GPU, "
                    "default 1)",
                },
            ),
            _path("--repo", Path("."), "the project's workspace (its params.yaml, dvc.yaml and DVC cache)"),
        ],
    ),
    (
        "predict",
        "class probabilities and decisions for one WFDB record",
        _predict,
        [
            (["record"], {"type": Path, "help": "record path without extension (a .hea path works too)"}),
            *_CHOSEN_RUN,
            _path("--models", layout.MODELS, "the train stages' outputs"),
            _path("--evaluation", layout.EVALUATION, "where the thresholds are"),
            (["--json"], {"action": "store_true", "help": "print JSON (with the model and thresholds used)"}),
        ],
    ),
    (
        "export",
        "write a trained model as one self-contained ONNX file, checked against PyTorch",
        _export,
        [
            *_CHOSEN_RUN,
            _path("--models", layout.MODELS, "the train stages' outputs"),
            _path("--out", None, "output file (default: beside model.pt, model.onnx)"),
        ],
    ),
    (
        "power",
        "size a study from a finished (pilot) run: power, and the seeds or folds a target needs",
        _power,
        [
            _path("--evaluation", layout.EVALUATION, "the evaluate stages' outputs"),
            _path("--models", layout.MODELS, "the train stages' outputs"),
            (
                ["--target"],
                {"type": float, "help": "the difference to resolve (default: each hypothesis's margin)"},
            ),
            (
                ["--confidence"],
                {"type": float, "default": 0.8, "help": "upper confidence bound on the seed variance"},
            ),
            (["--json"], {"action": "store_true", "help": "print JSON"}),
        ],
    ),
    (
        "drift",
        "Evidently reports: each fold against the training folds",
        _drift,
        [
            _DATA["raw"],
            _DATA["filtered"],
            _DATA["segmented"],
            _path("--out", layout.REPORTS / "drift", "output directory (HTML reports)"),
            _path("--summary", layout.REPORTS / "drift.json", "DVC metric: drift per fold"),
        ],
    ),
    (
        "drift-predictions",
        "Evidently report: predicted scores, test fold vs validation fold",
        _drift_predictions,
        [
            *_CHOSEN_RUN,
            _path("--evaluation", layout.EVALUATION, "the evaluate stages' outputs"),
            _path("--out", layout.REPORTS / "drift_predictions", "report directory"),
            _path("--summary", layout.REPORTS / "drift_predictions.json", "DVC metric"),
        ],
    ),
    (
        "publish",
        "upload reports and models to S3 with their sha256, manifest last",
        _publish,
        [
            (
                ["paths"],
                {"type": Path, "nargs": "+", "help": "files or directories (keys keep their relative paths)"},
            ),
            (["--to"], {"help": "s3://bucket/prefix (default: storage.publish_url)"}),
            (["--endpoint-url"], {"help": "S3-compatible server (default: storage.endpoint_url)"}),
        ],
    ),
    (
        "synth",
        "write a synthetic dataset in PTB-XL's layout",
        _synth,
        [
            (["out"], {"type": Path, "help": "output directory (replaced)"}),
            (["--records"], {"type": int, "default": 3000, "help": "number of records"}),
            (
                ["--rates"],
                {
                    "type": int,
                    "nargs": "+",
                    "default": [100],
                    "choices": [100, 500],
                    "help": "sampling rates",
                },
            ),
            (["--seed"], {"type": int, "default": 0, "help": "random seed"}),
            (
                ["--shift-fold"],
                {"type": int, "help": "make this fold drift on purpose (patients, device, signal)"},
            ),
        ],
    ),
]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    # --params and -q are accepted before or after the subcommand (SUPPRESS keeps the top level's value when a
    # subcommand does not repeat them).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--params", type=Path, default=argparse.SUPPRESS, help="parameters file (default: params.yaml)"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )
    parser = argparse.ArgumentParser(
        prog="ecg-crnn", description=__doc__.splitlines()[0], parents=[common], formatter_class=_Formatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text, func, options in COMMANDS:
        s = sub.add_parser(name, help=text, description=text, parents=[common], formatter_class=_Formatter)
        s.set_defaults(func=func)
        for flags, kwargs in options:
            s.add_argument(*flags, **kwargs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Defaults here, not on the parsers: their --params/-q actions are shared objects (argparse parents), and a
    # default set on one would make every subcommand overwrite the value given before the subcommand.
    args.params = getattr(args, "params", Path("params.yaml"))
    args.quiet = getattr(args, "quiet", False)
    try:
        args.func(args)
    except EcgCrnnError as exc:
        # A message may quote a URL from a source, a remote or a server's answer: never with its credentials.
        print(f"ecg-crnn {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ecg-crnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ecg-crnn predict REC | head`): stop quietly, as command-line tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
