"""The download stage: PTB-XL's files for data.sampling_rate from download.source, verified, into data/raw/ptbxl."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Params
from ..data.datasets import ptbxl
from ..data.download import DownloadReport, download
from ..data.sources import open_source
from ..layout import RAW


@dataclass(frozen=True)
class Paths:
    out: Path = RAW


def run(params: Params, paths: Paths = Paths(), progress: bool = True) -> DownloadReport:
    d = params.download
    source = open_source(d.source, d.s3_endpoint_url, d.s3_unsigned, d.timeout_s)
    report = download(
        source,
        paths.out,
        ptbxl(params.data.sampling_rate),
        d.workers,
        progress,
        d.retries,
        d.file_deadline_s,
        d.listing_sha256,
    )
    print(
        f"download: {report.wanted} files in {paths.out} ({report.already_verified} already verified, "
        f"{report.fetched} fetched, {report.bytes_fetched / 1e6:.1f} MB)"
    )
    return report
