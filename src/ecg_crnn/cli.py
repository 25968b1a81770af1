"""`ecg-crnn`: one subcommand per pipeline stage, each a few lines around a library function.

dvc.yaml runs these commands; tests and Prefect flows call the same library functions directly.
"""

from __future__ import annotations

import argparse
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
    from .pipeline import run_train

    p = load_params(args.params)
    out = args.out or Path("models") / args.arch
    resume = args.resume_dir or Path(".resume") / args.arch
    run_train(args.arch, args.filtered, args.segmented, out, resume, p, progress=not args.quiet)


def _bootstrap(args) -> None:
    from .pipeline import run_bootstrap

    idx = run_bootstrap(args.segmented, args.out, load_params(args.params).evaluate)
    print(f"bootstrap: {idx.shape[0]} resamples of {idx.shape[1]} test records -> {args.out}")


def _evaluate(args) -> None:
    from .pipeline import run_evaluate

    p = load_params(args.params)
    out = args.out or Path("evaluation") / args.arch
    model = args.model or Path("models") / args.arch / "model.pt"
    run_evaluate(args.arch, args.filtered, args.segmented, model, args.bootstrap, out, p.evaluate)


def _compare(args) -> None:
    from .compare import load_results, write_report

    p = load_params(args.params)
    results = load_results(args.evaluation, p.study.architectures)
    write_report(results, p.study.reference, args.out, args.drift, args.prediction_drift)


def _predict(args) -> None:
    import json

    import numpy as np

    from .inference import predict_record

    pred = predict_record(
        args.record, args.models / args.arch / "model.pt", args.evaluation / args.arch / "thresholds.json"
    )
    if args.json:
        print(json.dumps(pred.as_dict(), indent=2))
        return
    print(f"{pred.record}  ({args.arch})")
    print(f"{'class':<12} {'probability':>11} {'threshold':>9}  decision")
    for i in np.argsort(-pred.probabilities):
        mark = "POSITIVE" if pred.decisions[i] else "-"
        print(f"{pred.classes[i]:<12} {pred.probabilities[i]:>11.3f} {pred.thresholds[i]:>9.3f}  {mark}")


def _export(args) -> None:
    from .inference import export_onnx

    out = args.out or args.models / args.arch / "model.onnx"
    meta = export_onnx(args.models / args.arch / "model.pt", out)
    print(
        f"export: {out} ({meta['arch']}, {len(meta['classes'])} classes; max |ONNX - PyTorch| = "
        f"{meta['max_abs_diff_vs_pytorch']:.1e})"
    )


def _drift(args) -> None:
    from .drift import run_drift

    run_drift(args.raw, args.filtered, args.segmented, args.out, args.summary, load_params(args.params).drift)


def _drift_predictions(args) -> None:
    from .drift import run_prediction_drift

    p = load_params(args.params)
    arch = args.arch or p.study.reference
    run_prediction_drift(args.evaluation / arch / "predictions.npz", args.out, args.summary, p.drift)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecg-crnn", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="parameters file (default: %(default)s)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("download", help="fetch and verify PTB-XL from download.source")
    s.add_argument("--out", type=Path, default=Path("data/raw/ptbxl"))
    s.set_defaults(func=_download)

    s = sub.add_parser("filter", help="aggregate labels of filter.task and cache the records' signals")
    s.add_argument("--raw", type=Path, default=Path("data/raw/ptbxl"))
    s.add_argument("--out", type=Path, default=Path("data/filtered"))
    s.set_defaults(func=_filter)

    s = sub.add_parser("segment", help="split, standardization (training folds only) and window layout")
    s.add_argument("--filtered", type=Path, default=Path("data/filtered"))
    s.add_argument("--out", type=Path, default=Path("data/segmented"))
    s.set_defaults(func=_segment)

    s = sub.add_parser("train", help="train one architecture (resumes an interrupted run)")
    s.add_argument("arch", help="architecture name, e.g. cnn_bilstm1")
    s.add_argument("--filtered", type=Path, default=Path("data/filtered"))
    s.add_argument("--segmented", type=Path, default=Path("data/segmented"))
    s.add_argument("--out", type=Path, help="default: models/ARCH")
    s.add_argument("--resume-dir", type=Path, help="checkpoints of an unfinished run (default: .resume/ARCH)")
    s.set_defaults(func=_train)

    s = sub.add_parser("bootstrap", help="draw the test-fold resamples shared by every evaluation")
    s.add_argument("--segmented", type=Path, default=Path("data/segmented"))
    s.add_argument("--out", type=Path, default=Path("evaluation/bootstrap.npz"))
    s.set_defaults(func=_bootstrap)

    s = sub.add_parser("evaluate", help="test-fold figures, intervals and cost of one architecture")
    s.add_argument("arch")
    s.add_argument("--filtered", type=Path, default=Path("data/filtered"))
    s.add_argument("--segmented", type=Path, default=Path("data/segmented"))
    s.add_argument("--model", type=Path, help="default: models/ARCH/model.pt")
    s.add_argument("--bootstrap", type=Path, default=Path("evaluation/bootstrap.npz"))
    s.add_argument("--out", type=Path, help="default: evaluation/ARCH")
    s.set_defaults(func=_evaluate)

    s = sub.add_parser("compare", help="the study table, paired tests, plots and report")
    s.add_argument("--evaluation", type=Path, default=Path("evaluation"))
    s.add_argument("--out", type=Path, default=Path("reports/study"))
    s.add_argument("--drift", type=Path, default=Path("reports/drift.json"), help="linked when present")
    s.add_argument("--prediction-drift", type=Path, default=Path("reports/drift_predictions.json"))
    s.set_defaults(func=_compare)

    s = sub.add_parser("predict", help="class probabilities and decisions for one WFDB record")
    s.add_argument("record", type=Path, help="record path without extension (a .hea path works too)")
    s.add_argument("--arch", default="cnn_bilstm1")
    s.add_argument("--models", type=Path, default=Path("models"))
    s.add_argument("--evaluation", type=Path, default=Path("evaluation"))
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_predict)

    s = sub.add_parser("export", help="write a trained model as ONNX, checked against PyTorch")
    s.add_argument("--arch", default="cnn_bilstm1")
    s.add_argument("--models", type=Path, default=Path("models"))
    s.add_argument("--out", type=Path, help="default: models/ARCH/model.onnx")
    s.set_defaults(func=_export)

    s = sub.add_parser("drift", help="Evidently reports: each fold against the training folds")
    s.add_argument("--raw", type=Path, default=Path("data/raw/ptbxl"))
    s.add_argument("--filtered", type=Path, default=Path("data/filtered"))
    s.add_argument("--segmented", type=Path, default=Path("data/segmented"))
    s.add_argument("--out", type=Path, default=Path("reports/drift"))
    s.add_argument("--summary", type=Path, default=Path("reports/drift.json"))
    s.set_defaults(func=_drift)

    s = sub.add_parser(
        "drift-predictions", help="Evidently report: predicted scores, test fold vs validation fold"
    )
    s.add_argument("--arch", help="default: study.reference")
    s.add_argument("--evaluation", type=Path, default=Path("evaluation"))
    s.add_argument("--out", type=Path, default=Path("reports/drift_predictions.html"))
    s.add_argument("--summary", type=Path, default=Path("reports/drift_predictions.json"))
    s.set_defaults(func=_drift_predictions)

    s = sub.add_parser("publish", help="upload reports and models to S3 with their sha256, manifest last")
    s.add_argument(
        "paths", type=Path, nargs="+", help="files or directories (keys keep their relative paths)"
    )
    s.add_argument("--to", help="s3://bucket/prefix (default: storage.publish_url)")
    s.add_argument("--endpoint-url", help="S3-compatible server (default: storage.endpoint_url)")
    s.set_defaults(func=_publish)

    s = sub.add_parser("synth", help="write a synthetic dataset in PTB-XL's layout")
    s.add_argument("out", type=Path)
    s.add_argument("--records", type=int, default=2000)
    s.add_argument("--rates", type=int, nargs="+", default=[100], choices=[100, 500])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--shift-fold", type=int, help="make this fold drift on purpose (patients, device, signal)"
    )
    s.set_defaults(func=_synth)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except EcgCrnnError as exc:
        print(f"ecg-crnn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ecg-crnn {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
