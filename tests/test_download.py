"""The download stage against a real HTTP server on 127.0.0.1 serving PTB-XL's own layout."""

import contextlib
import functools
import shutil
import signal
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ecg_crnn.cli import main
from ecg_crnn.data.checksums import parse_sums
from ecg_crnn.data.download import download
from ecg_crnn.data.sources import open_source
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.hashing import sha256_file

from .helpers.servers import http_server


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


# --- Hardening: what a mirror's listing may make the download do -------------------------------------


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _list_extra(source_root, entry: str, data: bytes) -> None:
    sums = source_root / "SHA256SUMS.txt"
    sums.write_text(sums.read_text() + f"{_sha(data)}  {entry}\n")


@pytest.mark.parametrize("entry", ["records100/../../escaped.txt", "ABSOLUTE"])
def test_listed_path_outside_the_output_is_refused_local(synthetic_copy, tmp_path, entry):
    outside = tmp_path / "escaped.txt"
    outside.write_bytes(b"planted by the mirror")
    if entry == "ABSOLUTE":
        entry = str(tmp_path / "abs_escaped.txt")
    _list_extra(synthetic_copy, entry, b"planted by the mirror")
    out = tmp_path / "deep" / "raw"
    with pytest.raises(EcgCrnnError) as err:
        download(open_source(str(synthetic_copy)), out, 100, workers=2, progress=False)
    message = str(err.value)
    assert entry in message and "SHA256SUMS.txt" in message and str(synthetic_copy) in message
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert not (tmp_path / "abs_escaped.txt").exists()
    assert not (out / "SHA256SUMS.txt").exists()


def test_listed_path_outside_the_output_is_refused_http(synthetic_copy, tmp_path):
    # The HTTP server normalizes `..` away and serves the source's own escaped.txt: the data does arrive.
    (synthetic_copy / "escaped.txt").write_bytes(b"planted by the mirror")
    _list_extra(synthetic_copy, "records100/../../escaped.txt", b"planted by the mirror")
    out = tmp_path / "deep" / "raw"
    with http_server(synthetic_copy) as url, pytest.raises(EcgCrnnError) as err:
        download(open_source(url), out, 100, workers=2, progress=False)
    assert "records100/../../escaped.txt" in str(err.value) and f"{url}SHA256SUMS.txt" in str(err.value)
    assert not (tmp_path / "deep" / "escaped.txt").exists()


def test_listed_path_through_a_symlink_out_of_the_output_is_refused(synthetic_copy, tmp_path):
    out = tmp_path / "raw"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "records100").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(EcgCrnnError, match=r"records100/00000/00001_lr\.\w+.*outside"):
        download(open_source(str(synthetic_copy)), out, 100, workers=2, progress=False)
    assert not any(elsewhere.rglob("*"))


# --- Hardening: the local copy follows the source's listing ------------------------------------------


def _unlist(source_root, *relpaths: str) -> None:
    sums = source_root / "SHA256SUMS.txt"
    keep = [ln for ln in sums.read_text().splitlines() if ln.split(maxsplit=1)[1] not in relpaths]
    sums.write_text("\n".join(keep) + "\n")
    for p in relpaths:
        (source_root / p).unlink()


def test_record_dropped_by_the_source_disappears_locally(synthetic_copy, tmp_path, capsys):
    from ecg_crnn.data.labels import load_labels

    from .helpers.stages import filter_records

    out = tmp_path / "raw"
    download(open_source(str(synthetic_copy)), out, 100, workers=2, progress=False)
    before = filter_records(out, tmp_path / "f1")
    ids = set(load_labels(tmp_path / "f1")[0]["ecg_id"])
    assert {3, 4} <= ids
    outside = tmp_path / "outside.txt"
    outside.write_text("not the download's")
    (out / "records100" / "link.txt").symlink_to(outside)
    (out / "stray").mkdir()
    (out / "stray" / "notes.txt").write_text("not listed")
    # Record 3 leaves the source altogether; record 4 loses only its header.
    _unlist(synthetic_copy, "records100/00000/00003_lr.hea", "records100/00000/00003_lr.dat")
    _unlist(synthetic_copy, "records100/00000/00004_lr.hea")
    capsys.readouterr()
    report = download(open_source(str(synthetic_copy)), out, 100, workers=2, progress=False)
    err = capsys.readouterr().err
    assert report.removed == 5 and report.fetched == 0
    assert "5 no longer listed" in err
    assert not (out / "records100/00000/00003_lr.hea").exists()
    assert not (out / "records100/00000/00003_lr.dat").exists()
    assert not (out / "records100/00000/00004_lr.hea").exists()
    assert (out / "records100/00000/00004_lr.dat").exists()
    assert not (out / "records100" / "link.txt").is_symlink() and not (out / "stray").exists()
    assert outside.read_text() == "not the download's"
    assert (out / "SHA256SUMS.txt").is_file() and (out / "ptbxl_database.csv").is_file()
    after = filter_records(out, tmp_path / "f2", records="present")
    assert after["records"] == before["records"] - 2
    assert set(load_labels(tmp_path / "f2")[0]["ecg_id"]) == ids - {3, 4}


# --- Hardening: one retry layer, and an unreachable source said plainly ------------------------------


class _FailingHandler(SimpleHTTPRequestHandler):
    fail: str = ""
    counts: dict = {}  # noqa: RUF012 (one server per test; reset before use)
    lock = threading.Lock()

    def do_GET(self):
        with self.lock:
            self.counts[self.path] = self.counts.get(self.path, 0) + 1
        if self.path == self.fail or self.fail == "*":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _failing_server(root, fail: str):
    _FailingHandler.fail, _FailingHandler.counts = fail, {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_FailingHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", _FailingHandler.counts
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("retries", [0, 2])
def test_a_failing_file_is_tried_retries_plus_one_times(synthetic_copy, tmp_path, retries):
    bad = "/records100/00000/00007_lr.dat"
    with _failing_server(synthetic_copy, bad) as (url, counts):
        source = open_source(url, timeout_s=5)
        with pytest.raises(EcgCrnnError) as err:
            download(source, tmp_path / "raw", 100, workers=2, progress=False, retries=retries)
    assert counts[bad] == retries + 1
    assert counts["/SHA256SUMS.txt"] == 1
    assert f"{url}records100/00000/00007_lr.dat: HTTP 503" in str(err.value)


def test_a_failing_listing_is_tried_retries_plus_one_times(synthetic_copy, tmp_path):
    with _failing_server(synthetic_copy, "*") as (url, counts):
        source = open_source(url, timeout_s=5)
        with pytest.raises(EcgCrnnError) as err:
            download(source, tmp_path / "raw", 100, progress=False, retries=2)
    assert counts == {"/SHA256SUMS.txt": 3}
    assert "SHA256SUMS.txt: HTTP 503" in str(err.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("url", ["CLOSED", "http://nonexistent.invalid/ptb-xl/"])
def test_unreachable_source_names_the_url_and_the_ways_on(tmp_path, write_params, capsys, url):
    if url == "CLOSED":
        url = f"http://127.0.0.1:{_closed_port()}/ptb-xl/"
    params = write_params({"download.source": url, "download.retries": 0, "download.timeout_s": 5})
    assert main(["--params", str(params), "-q", "download", "--out", str(tmp_path / "raw")]) == 1
    err = capsys.readouterr().err
    assert f"{url} is unreachable" in err and f"{url}SHA256SUMS.txt" in err
    assert "dvc exp run -S download.source=../shared/ptbxl -S filter.records=present" in err
    assert "ecg-crnn synth --records 3000 data/synthetic" in err
    assert "-S download.source=data/synthetic" in err
    assert "Traceback" not in err
