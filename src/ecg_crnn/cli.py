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
    report = download(source, args.out, p.data.sampling_rate, d.workers, progress=not args.quiet)
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

    info = write_synthetic(args.out, args.records, tuple(args.rates), args.seed, progress=not args.quiet)
    print(
        f"synth: {info['records']} records at {', '.join(map(str, info['rates']))} Hz, "
        f"{info['files']} files -> {args.out}"
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

    s = sub.add_parser("synth", help="write a synthetic dataset in PTB-XL's layout")
    s.add_argument("out", type=Path)
    s.add_argument("--records", type=int, default=2000)
    s.add_argument("--rates", type=int, nargs="+", default=[100], choices=[100, 500])
    s.add_argument("--seed", type=int, default=0)
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
