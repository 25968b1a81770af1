"""The noise stage: the MIT-BIH Noise Stress Test Database (nstdb) from robustness.noise_source, verified, into
data/raw/nstdb, through the same download code as PTB-XL (listing, size caps, sha256, resume, ownership).

Unset (the embedded default), the robustness stage uses the synthetic generators: nothing is fetched and the folder
is only created, so that dvc.yaml can name it as the robustness stages' dependency either way (anything an earlier
download left there is kept, and used again once the source is set back)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Params
from ..data.datasets import NSTDB_FILES, nstdb
from ..data.download import download
from ..data.sources import open_source
from ..layout import NOISE
from ..redaction import redact


@dataclass(frozen=True)
class Paths:
    out: Path = NOISE


def run(params: Params, paths: Paths = Paths(), progress: bool = True) -> None:
    source = params.robustness.noise_source
    if source is None:
        paths.out.mkdir(parents=True, exist_ok=True)
        print(
            f"noise: robustness.noise_source is not set: the robustness stage uses the synthetic generators; "
            f"nothing fetched into {paths.out}"
        )
        return
    d = params.download  # how to download (workers, retries, deadlines, S3 endpoint) is shared with PTB-XL
    report = download(
        open_source(source, d.s3_endpoint_url, d.s3_unsigned, d.timeout_s, "robustness.noise_source"),
        paths.out,
        nstdb(),
        d.workers,
        progress,
        d.retries,
        d.file_deadline_s,
    )
    print(
        f"noise: nstdb's {len(NSTDB_FILES)} noise files from {redact(source)} in {paths.out} "
        f"({report.already_verified} already verified, {report.fetched} fetched, "
        f"{report.bytes_fetched / 1e6:.1f} MB)"
    )
