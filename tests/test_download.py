"""The download stage against a real HTTP server on 127.0.0.1 serving PTB-XL's own layout."""

import shutil
import signal
import subprocess
import time

import pytest

from ecg_crnn.cli import main
from ecg_crnn.data.checksums import parse_sums, sha256_file
from ecg_crnn.data.download import download
from ecg_crnn.data.sources import open_source

from .conftest import http_server


def _all_verified(out, source_root) -> int:
    sums = parse_sums((source_root / "SHA256SUMS.txt").read_text())
    files = [p for p in sums if p.startswith("records100/") or p.endswith(".csv")]
    for p in files:
        assert sha256_file(out / p) == sums[p], p
    return len(files)


def test_http_download_verifies_everything_and_rerun_skips(shared_ptbxl, tmp_path):
    out = tmp_path / "raw"
    with http_server(shared_ptbxl) as url:
        source = open_source(url)
        first = download(source, out, 100, workers=8, progress=False)
        assert first.fetched == first.wanted and first.already_verified == 0
        assert first.wanted == _all_verified(out, shared_ptbxl) + 1  # + LICENSE.txt
        second = download(source, out, 100, workers=8, progress=False)
    assert second.already_verified == second.wanted and second.fetched == 0
    assert not (out / ".partial").exists()
    assert parse_sums((out / "SHA256SUMS.txt").read_text()).keys() == {
        p
        for p in parse_sums((shared_ptbxl / "SHA256SUMS.txt").read_text())
        if p.startswith("records100/") or p.endswith(".csv") or p == "LICENSE.txt"
    }


def test_only_the_chosen_sampling_rate_is_fetched(synthetic_dir, tmp_path):
    with http_server(synthetic_dir) as url, pytest.raises(Exception, match="lists no file under records500/"):
        download(open_source(url), tmp_path / "raw", 500, progress=False)


def test_killed_download_resumes(shared_ptbxl, tmp_path, write_params):
    out = tmp_path / "raw"
    with http_server(shared_ptbxl, delay=0.05) as slow_url:
        params = write_params({"download.source": slow_url, "download.workers": 4})
        proc = subprocess.Popen(
            ["ecg-crnn", "--params", str(params), "-q", "download", "--out", str(out)], stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(out.glob("records100/*/*"))) < 100:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    partial = list(out.glob("records100/*/*"))
    assert 100 <= len(partial) < 976, "the download should have been killed part-way"
    assert not (out / "SHA256SUMS.txt").exists()
    # Whatever reached its final name is whole and verified: nothing half-written.
    sums = parse_sums((shared_ptbxl / "SHA256SUMS.txt").read_text())
    for f in partial:
        assert sha256_file(f) == sums[str(f.relative_to(out))]

    with http_server(shared_ptbxl) as url:
        params = write_params({"download.source": url})
        done = subprocess.run(
            ["ecg-crnn", "--params", str(params), "-q", "download", "--out", str(out)],
            capture_output=True,
            text=True,
        )
    assert done.returncode == 0, done.stderr
    already = int(done.stdout.split("(")[1].split(" already verified")[0])
    assert already >= len(partial)
    _all_verified(out, shared_ptbxl)


def test_tampered_file_is_refused_by_name(shared_ptbxl, tmp_path, write_params, capsys):
    mirror = tmp_path / "mirror"
    shutil.copytree(shared_ptbxl, mirror)
    victim = mirror / "records100" / "00000" / "00007_lr.dat"
    victim.chmod(0o644)
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    out = tmp_path / "raw"
    with http_server(mirror) as url:
        params = write_params({"download.source": url})
        assert main(["--params", str(params), "-q", "download", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "records100/00000/00007_lr.dat: checksum mismatch" in err
    assert not (out / "records100" / "00000" / "00007_lr.dat").exists()
    assert not (out / "SHA256SUMS.txt").exists()


def test_local_directory_source_and_missing_file(synthetic_copy, tmp_path):
    report = download(open_source(str(synthetic_copy)), tmp_path / "raw", 100, workers=4, progress=False)
    assert report.fetched == report.wanted == 2 + 2 * 300
    (synthetic_copy / "records100" / "00000" / "00003_lr.hea").unlink()
    with pytest.raises(Exception, match="00003_lr.hea: no such file in the source"):
        download(open_source(str(synthetic_copy)), tmp_path / "raw2", 100, workers=4, progress=False)


def test_unreachable_server_is_a_clear_error(tmp_path, write_params, capsys):
    params = write_params(
        {"download.source": "http://127.0.0.1:9/ptb-xl/", "download.retries": 0, "download.timeout_s": 5}
    )
    assert main(["--params", str(params), "-q", "download", "--out", str(tmp_path / "raw")]) == 1
    assert "http://127.0.0.1:9/ptb-xl/SHA256SUMS.txt: ConnectionError" in capsys.readouterr().err
