"""`ecg-crnn`: one subcommand per pipeline stage, each a few lines around a library function.

dvc.yaml runs these commands; tests and Prefect flows call the same library functions directly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import load_params
from .errors import EcgCrnnError


def _download(args) -> None:
    from .data.download import download
    from .data.sources import open_source

    p = load_params(args.params)
    d = p.download
    source = open_source(d.source, d.s3_endpoint_url, d.s3_unsigned, d.retries, d.timeout_s)
    report = download(
        source, args.out, p.data.sampling_rate, d.workers, progress=not args.quiet, retries=d.retries
    )
    print(
        f"download: {report.wanted} files in {args.out} ({report.already_verified} already verified, "
        f"{report.fetched} fetched, {report.bytes_fetched / 1e6:.1f} MB)"
    )


def _filter(args) -> None:
    from .data.filtering import run_filter

    p = load_params(args.params)
    summary = run_filter(args.raw, args.out, p.data, p.filter, progress=not args.quiet)
    print(f"filter: {summary['records']} records, {len(summary['classes'])} classes -> {args.out}")


def _segment(args) -> None:
    from .data.segment import run_segment

    p = load_params(args.params)
    run_segment(args.filtered, args.out, p.segment)
    print(f"segment: -> {args.out}")


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


def _train(args) -> None:
    from .pipeline import default_resume_dir, run_train, window_name

    p = load_params(args.params)
    out = args.out or Path("models") / window_name(args.window) / args.arch / f"seed{args.seed}"
    resume = args.resume_dir or default_resume_dir(out)
    run_train(
        args.arch,
        args.window,
        args.seed,
        args.filtered,
        args.segmented,
        out,
        p,
        resume,
        progress=not args.quiet,
    )


def _bootstrap(args) -> None:
    from .pipeline import run_bootstrap

    w = run_bootstrap(args.segmented, args.filtered, args.out, load_params(args.params).evaluate)
    print(f"bootstrap: {w.shape[0]} patient resamples of {w.shape[1]} test records -> {args.out}")


def _evaluate(args) -> None:
    from .pipeline import run_evaluate, window_name

    p = load_params(args.params)
    run_dir = Path(window_name(args.window)) / args.arch / f"seed{args.seed}"
    out = args.out or Path("evaluation") / run_dir
    model = args.model or Path("models") / run_dir / "model.pt"
    run_evaluate(
        args.arch, args.window, args.seed, args.filtered, args.segmented, model, args.bootstrap, out, p
    )


def _cost(args) -> None:
    from .pipeline import run_cost, window_name

    out = args.out or Path("evaluation") / window_name(args.window) / args.arch / "cost.json"
    c = run_cost(args.arch, args.window, args.filtered, args.segmented, out, load_params(args.params))
    print(
        f"cost {args.arch} {args.window:g} s: {c['params']:,} parameters, "
        f"{c['macs_per_record'] / 1e6:.1f} MMAC and {c['cpu_latency_ms']:.1f} ms (1 CPU thread) per record"
    )


def _compare(args) -> None:
    import pandas as pd

    from .compare import analyse, load_models
    from .report import RunInfo, write_report

    p = load_params(args.params)
    models = load_models(args.evaluation, args.models, p)
    split = pd.read_csv(args.segmented / "split.csv")
    classes = json.loads((args.filtered / "classes.json").read_text())
    info = RunInfo(
        source=p.download.source,
        task=classes.get("task", p.filter.task),
        sampling_rate=p.data.sampling_rate,
        split_records=split["split"].value_counts().to_dict(),
        class_count=len(classes["classes"]),
    )
    write_report(analyse(models, p), info, args.out, args.metrics, args.drift, args.prediction_drift)


def _model_dir(args, p) -> tuple[str, float, int, Path]:
    """The model a predict/export call means: --arch/--window/--seed, defaulting to the study's reference
    architecture at its first window and first seed."""
    from .models import REGISTRY
    from .pipeline import window_name

    arch = args.arch or p.study.reference
    if arch not in REGISTRY:
        raise EcgCrnnError(f"unknown architecture {arch!r}; known: {', '.join(REGISTRY)}")
    window = args.window if args.window is not None else p.study.windows[0]
    seed = args.seed if args.seed is not None else p.train.seeds[0]
    if window not in p.study.windows:
        raise EcgCrnnError(
            f"--window {window:g}: not in study.windows ({', '.join(f'{w:g}' for w in p.study.windows)})"
        )
    if seed not in p.train.seeds:
        raise EcgCrnnError(f"--seed {seed}: not in train.seeds ({', '.join(map(str, p.train.seeds))})")
    return arch, window, seed, Path(window_name(window)) / arch / f"seed{seed}"


def _params_or_defaults(path: Path):
    from .config import Params

    return load_params(path) if Path(path).is_file() else Params()


def _predict(args) -> None:
    import numpy as np

    from .inference import predict_record

    p = _params_or_defaults(args.params)
    arch, window, seed, run_dir = _model_dir(args, p)
    pred = predict_record(
        args.record, args.models / run_dir / "model.pt", args.evaluation / run_dir / "thresholds.json"
    )
    if args.json:
        print(json.dumps(pred.as_dict(), indent=2))
        return
    print(f"{pred.record}  ({arch}, {window:g} s windows, seed {seed}; {pred.model_path})")
    print(f"{'class':<12} {'probability':>11} {'threshold':>9}  decision")
    for i in np.argsort(-pred.probabilities):
        mark = "POSITIVE" if pred.decisions[i] else "-"
        print(f"{pred.classes[i]:<12} {pred.probabilities[i]:>11.3f} {pred.thresholds[i]:>9.3f}  {mark}")
    print(f"thresholds: {pred.thresholds_path} (tuned on the validation fold)")


def _export(args) -> None:
    from .inference import export_onnx

    p = _params_or_defaults(args.params)
    arch, window, seed, run_dir = _model_dir(args, p)
    out = args.out or args.models / run_dir / "model.onnx"
    meta = export_onnx(args.models / run_dir / "model.pt", out)
    print(
        f"export: {out} ({meta['arch']}, {window:g} s, seed {seed}, {len(meta['classes'])} classes; "
        f"max |ONNX - PyTorch| = {meta['max_abs_diff_vs_pytorch']:.1e})"
    )


def _drift(args) -> None:
    from .drift import run_drift

    run_drift(args.raw, args.filtered, args.segmented, args.out, args.summary, load_params(args.params).drift)


def _drift_predictions(args) -> None:
    from .drift import run_prediction_drift

    p = load_params(args.params)
    _, _, _, run_dir = _model_dir(args, p)
    run_prediction_drift(args.evaluation / run_dir / "predictions.npz", args.out, args.summary, p.drift)


def _publish(args) -> None:
    from .config import StorageSettings
    from .storage import endpoint_from_env, publish, s3_client

    # Explicit flags need no parameters file; without them, storage.* from params.yaml.
    p = load_params(args.params).storage if args.params.is_file() or not args.to else StorageSettings()
    dest = args.to or p.publish_url
    if not dest:
        raise EcgCrnnError(
            "publish: no destination (give --to s3://bucket/prefix or set storage.publish_url)"
        )
    client = s3_client(endpoint_from_env(args.endpoint_url or p.endpoint_url))
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

    def command(name: str, help: str, func):
        s = sub.add_parser(name, help=help, description=help, parents=[common], formatter_class=_Formatter)
        s.set_defaults(func=func)
        return s

    def data_dirs(s, *names):
        where = {
            "raw": ("data/raw/ptbxl", "the download stage's output (PhysioNet's layout)"),
            "filtered": ("data/filtered", "the filter stage's output (labels and signal cache)"),
            "segmented": ("data/segmented", "the segment stage's output (split, standardization, layout)"),
        }
        for n in names:
            default, text = where[n]
            s.add_argument(f"--{n}", type=Path, default=Path(default), help=text)

    def run_id(s, required: bool):
        if required:
            s.add_argument("arch", help="architecture: cnn or cnn_{lstm,gru,bilstm,bigru}{1,2,3}")
            s.add_argument(
                "--window", type=float, required=True, help="window length in seconds (study.windows)"
            )
            s.add_argument("--seed", type=int, required=True, help="training seed (train.seeds)")
        else:
            s.add_argument("--arch", help="architecture (default: study.reference)")
            s.add_argument(
                "--window", type=float, help="window length in s (default: first of study.windows)"
            )
            s.add_argument("--seed", type=int, help="training seed (default: first of train.seeds)")

    s = command("download", "fetch and verify PTB-XL from download.source", _download)
    s.add_argument("--out", type=Path, default=Path("data/raw/ptbxl"), help="where the dataset goes")

    s = command("filter", "aggregate labels of filter.task and cache the records' signals", _filter)
    data_dirs(s, "raw")
    s.add_argument("--out", type=Path, default=Path("data/filtered"), help="output directory")

    s = command("segment", "split, standardization (training folds only) and evaluation layout", _segment)
    data_dirs(s, "filtered")
    s.add_argument("--out", type=Path, default=Path("data/segmented"), help="output directory")

    s = command(
        "train", "train one architecture at one window with one seed (resumes an interrupted run)", _train
    )
    run_id(s, required=True)
    data_dirs(s, "filtered", "segmented")
    s.add_argument("--out", type=Path, help="output directory (default: models/WINDOWs/ARCH/seedSEED)")
    s.add_argument(
        "--resume-dir",
        type=Path,
        help="checkpoint of an unfinished run (default: .resume/OUT, or under $ECG_CRNN_RESUME_ROOT)",
    )

    s = command("bootstrap", "draw the test fold's patient resamples shared by every evaluation", _bootstrap)
    data_dirs(s, "filtered", "segmented")
    s.add_argument("--out", type=Path, default=Path("evaluation/bootstrap.npz"), help="output file")

    s = command("evaluate", "thresholds on validation, test figures with resamples, for one model", _evaluate)
    run_id(s, required=True)
    data_dirs(s, "filtered", "segmented")
    s.add_argument("--model", type=Path, help="model file (default: models/WINDOWs/ARCH/seedSEED/model.pt)")
    s.add_argument(
        "--bootstrap", type=Path, default=Path("evaluation/bootstrap.npz"), help="patient resamples"
    )
    s.add_argument("--out", type=Path, help="output directory (default: evaluation/WINDOWs/ARCH/seedSEED)")

    s = command("cost", "parameters, multiply-accumulates and CPU latency of an architecture", _cost)
    s.add_argument("arch", help="architecture")
    s.add_argument("--window", type=float, required=True, help="window length in seconds")
    data_dirs(s, "filtered", "segmented")
    s.add_argument("--out", type=Path, help="output file (default: evaluation/WINDOWs/ARCH/cost.json)")

    s = command("compare", "the study: choices on validation, corrected tests, plots and report", _compare)
    s.add_argument("--evaluation", type=Path, default=Path("evaluation"), help="the evaluate stages' outputs")
    s.add_argument(
        "--models", type=Path, default=Path("models"), help="the train stages' outputs (curves, timing)"
    )
    data_dirs(s, "filtered", "segmented")
    s.add_argument("--out", type=Path, default=Path("reports/study"), help="output directory")
    s.add_argument(
        "--metrics", type=Path, default=Path("reports/study.json"), help="DVC metric: each model's headline"
    )
    s.add_argument(
        "--drift",
        type=Path,
        default=Path("reports/drift"),
        help="the drift stage's reports, linked if present",
    )
    s.add_argument(
        "--prediction-drift",
        type=Path,
        default=Path("reports/drift_predictions"),
        help="the prediction drift report, linked if present",
    )

    s = command("predict", "class probabilities and decisions for one WFDB record", _predict)
    s.add_argument("record", type=Path, help="record path without extension (a .hea path works too)")
    run_id(s, required=False)
    s.add_argument("--models", type=Path, default=Path("models"), help="the train stages' outputs")
    s.add_argument("--evaluation", type=Path, default=Path("evaluation"), help="where the thresholds are")
    s.add_argument("--json", action="store_true", help="print JSON (with the model and thresholds used)")

    s = command(
        "export", "write a trained model as one self-contained ONNX file, checked against PyTorch", _export
    )
    run_id(s, required=False)
    s.add_argument("--models", type=Path, default=Path("models"), help="the train stages' outputs")
    s.add_argument("--out", type=Path, help="output file (default: beside model.pt, model.onnx)")

    s = command("drift", "Evidently reports: each fold against the training folds", _drift)
    data_dirs(s, "raw", "filtered", "segmented")
    s.add_argument("--out", type=Path, default=Path("reports/drift"), help="output directory (HTML reports)")
    s.add_argument(
        "--summary", type=Path, default=Path("reports/drift.json"), help="DVC metric: drift per fold"
    )

    s = command(
        "drift-predictions",
        "Evidently report: predicted scores, test fold vs validation fold",
        _drift_predictions,
    )
    s.add_argument("--arch", help="architecture (default: study.reference)")
    s.add_argument("--window", type=float, help="window length in s (default: first of study.windows)")
    s.add_argument("--seed", type=int, help="seed (default: first of train.seeds)")
    s.add_argument("--evaluation", type=Path, default=Path("evaluation"), help="the evaluate stages' outputs")
    s.add_argument("--out", type=Path, default=Path("reports/drift_predictions"), help="report directory")
    s.add_argument("--summary", type=Path, default=Path("reports/drift_predictions.json"), help="DVC metric")

    s = command("publish", "upload reports and models to S3 with their sha256, manifest last", _publish)
    s.add_argument(
        "paths", type=Path, nargs="+", help="files or directories (keys keep their relative paths)"
    )
    s.add_argument("--to", help="s3://bucket/prefix (default: storage.publish_url)")
    s.add_argument("--endpoint-url", help="S3-compatible server (default: storage.endpoint_url)")

    s = command("synth", "write a synthetic dataset in PTB-XL's layout", _synth)
    s.add_argument("out", type=Path, help="output directory (replaced)")
    s.add_argument("--records", type=int, default=3000, help="number of records")
    s.add_argument("--rates", type=int, nargs="+", default=[100], choices=[100, 500], help="sampling rates")
    s.add_argument("--seed", type=int, default=0, help="random seed")
    s.add_argument(
        "--shift-fold", type=int, help="make this fold drift on purpose (patients, device, signal)"
    )
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
        print(f"ecg-crnn {args.command}: error: {exc}", file=sys.stderr)
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
