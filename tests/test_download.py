"""The download stage against a real HTTP server on 127.0.0.1 serving PTB-XL's own layout."""

import contextlib
import functools
import json
import shutil
import signal
import subprocess
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ecg_crnn.cli import main
from ecg_crnn.data.checksums import parse_sums
from ecg_crnn.data.datasets import ptbxl
from ecg_crnn.data.download import download
from ecg_crnn.data.ownership import MARKER
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
        first = download(source, out, ptbxl(100), workers=8, progress=False)
        assert first.fetched == first.wanted and first.already_verified == 0
        assert first.wanted == _all_verified(out, shared_ptbxl) + 1  # + LICENSE.txt
        second = download(source, out, ptbxl(100), workers=8, progress=False)
    assert second.already_verified == second.wanted and second.fetched == 0
    assert not (out / ".partial").exists()
    assert parse_sums((out / "SHA256SUMS.txt").read_text()).keys() == {
        p
        for p in parse_sums((shared_ptbxl / "SHA256SUMS.txt").read_text())
        if p.startswith("records100/") or p.endswith(".csv") or p == "LICENSE.txt"
    }


def test_only_the_chosen_sampling_rate_is_fetched(synthetic_dir, tmp_path):
    with http_server(synthetic_dir) as url, pytest.raises(Exception, match="lists no file under records500/"):
        download(open_source(url), tmp_path / "raw", ptbxl(500), progress=False)


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
    assert (out / MARKER).is_file(), "the marker comes before the first byte, so the resume may go on"
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
    report = download(
        open_source(str(synthetic_copy)), tmp_path / "raw", ptbxl(100), workers=4, progress=False
    )
    assert report.fetched == report.wanted == 2 + 2 * 300
    (synthetic_copy / "records100" / "00000" / "00003_lr.hea").unlink()
    with pytest.raises(Exception, match="00003_lr.hea: no such file in the source"):
        download(open_source(str(synthetic_copy)), tmp_path / "raw2", ptbxl(100), workers=4, progress=False)


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
        download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
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
        download(open_source(url), out, ptbxl(100), workers=2, progress=False)
    assert "records100/../../escaped.txt" in str(err.value) and f"{url}SHA256SUMS.txt" in str(err.value)
    assert not (tmp_path / "deep" / "escaped.txt").exists()


def test_listed_path_through_a_symlink_out_of_the_output_is_refused(synthetic_copy, tmp_path):
    out = tmp_path / "raw"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "records100").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(EcgCrnnError, match=r"records100/00000/00001_lr\.\w+.*outside"):
        download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
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
    download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
    assert json.loads((out / MARKER).read_text()) == {"dataset": "ptb-xl"}
    before = filter_records(out, tmp_path / "f1")
    ids = set(load_labels(tmp_path / "f1")[0]["ecg_id"])
    assert {3, 4} <= ids
    outside = tmp_path / "outside.txt"
    outside.write_text("not the download's")
    (out / "records100" / "link.txt").symlink_to(outside)
    (out / "records100" / "stray").mkdir()
    (out / "records100" / "stray" / "notes.txt").write_text("not listed, in the dataset's own folder")
    # Record 3 leaves the source altogether; record 4 loses only its header.
    _unlist(synthetic_copy, "records100/00000/00003_lr.hea", "records100/00000/00003_lr.dat")
    _unlist(synthetic_copy, "records100/00000/00004_lr.hea")
    capsys.readouterr()
    report = download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
    err = capsys.readouterr().err
    assert report.removed == 5 and report.fetched == 0
    assert "5 no longer listed" in err
    assert not (out / "records100/00000/00003_lr.hea").exists()
    assert not (out / "records100/00000/00003_lr.dat").exists()
    assert not (out / "records100/00000/00004_lr.hea").exists()
    assert (out / "records100/00000/00004_lr.dat").exists()
    assert not (out / "records100" / "link.txt").is_symlink() and not (out / "records100" / "stray").exists()
    assert outside.read_text() == "not the download's"
    assert (out / "SHA256SUMS.txt").is_file() and (out / "ptbxl_database.csv").is_file()
    after = filter_records(out, tmp_path / "f2", records="present")
    assert after["records"] == before["records"] - 2
    assert set(load_labels(tmp_path / "f2")[0]["ecg_id"]) == ids - {3, 4}


# --- Hardening: nothing deleted that is not the dataset's --------------------------------------------


def _tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_download_into_a_checkout_deletes_nothing_and_says_why(
    synthetic_copy, tmp_path, write_params, monkeypatch, capsys
):
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    (checkout / ".git" / "config").write_text("[core]\n\trepositoryformatversion = 0\n")
    (checkout / "notes.md").write_text("the user's notes")
    (checkout / "records100").mkdir()  # even beside a folder named like the dataset's
    (checkout / "records100" / "mine.txt").write_text("also the user's")
    before = _tree(checkout)
    params = write_params({"download.source": str(synthetic_copy)})
    monkeypatch.chdir(checkout)
    assert main(["--params", str(params), "-q", "download", "--out", "."]) == 1
    err = capsys.readouterr().err
    assert "download --out .: holds files that are not part of ptb-xl (.git/, notes.md)" in err
    assert "must never delete what it does not own" in err and "Traceback" not in err
    assert _tree(checkout) == before
    assert not (checkout / MARKER).exists() and not (checkout / "SHA256SUMS.txt").exists()


def test_a_marked_dataset_that_gains_a_foreign_file_is_refused_whole(synthetic_copy, tmp_path):
    out = tmp_path / "raw"
    download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
    (out / "analysis.ipynb").write_text("{}")
    _unlist(synthetic_copy, "records100/00000/00003_lr.hea")  # would be pruned, if the folder were accepted
    with pytest.raises(EcgCrnnError, match=r"holds files that are not part of ptb-xl \(analysis\.ipynb\)"):
        download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
    assert (out / "analysis.ipynb").read_text() == "{}"
    assert (out / "records100/00000/00003_lr.hea").is_file()


def test_a_folder_marked_as_another_dataset_is_refused(synthetic_copy, tmp_path):
    out = tmp_path / "raw"
    out.mkdir()
    (out / MARKER).write_text(json.dumps({"dataset": "nstdb"}))
    with pytest.raises(EcgCrnnError, match=r"holds the dataset 'nstdb'.*not 'ptb-xl'"):
        download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [MARKER]


def test_an_unmarked_copy_is_adopted_and_pruned_only_from_the_next_run(synthetic_copy, tmp_path, capsys):
    out = tmp_path / "raw"
    download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
    (out / MARKER).unlink()  # as a copy made before the marker existed
    _unlist(synthetic_copy, "records100/00000/00003_lr.hea")
    capsys.readouterr()
    first = download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
    assert first.removed == 0 and first.kept == 1
    assert "1 not listed (kept: no previous download had marked" in capsys.readouterr().err
    assert (out / "records100/00000/00003_lr.hea").is_file() and (out / MARKER).is_file()
    second = download(open_source(str(synthetic_copy)), out, ptbxl(100), workers=2, progress=False)
    assert second.removed == 1 and not (out / "records100/00000/00003_lr.hea").exists()


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
            download(source, tmp_path / "raw", ptbxl(100), workers=2, progress=False, retries=retries)
    assert counts[bad] == retries + 1
    assert counts["/SHA256SUMS.txt"] == 1
    assert f"{url}records100/00000/00007_lr.dat: HTTP 503" in str(err.value)


def test_a_failing_listing_is_tried_retries_plus_one_times(synthetic_copy, tmp_path):
    with _failing_server(synthetic_copy, "*") as (url, counts):
        source = open_source(url, timeout_s=5)
        with pytest.raises(EcgCrnnError) as err:
            download(source, tmp_path / "raw", ptbxl(100), progress=False, retries=2)
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


# --- Hardening: bounded work, each transfer within its bytes and its deadline -------------------------

_RECORD = "/records100/00000/00007_lr.dat"
_DEADLINE = 3
_HOSTILE = [
    ("/SHA256SUMS.txt", "endless", "SHA256SUMS.txt: more bytes arrived than the 16,777,216 that this file"),
    (
        "/SHA256SUMS.txt",
        "huge-length",
        "SHA256SUMS.txt: 1,000,000,000,000 bytes declared, more than the 16,777,216",
    ),
    (
        "/SHA256SUMS.txt",
        "trickle",
        f"SHA256SUMS.txt: did not arrive whole within its deadline of {_DEADLINE} s",
    ),
    (
        "/SHA256SUMS.txt",
        "trickle-headers",
        f"SHA256SUMS.txt: did not arrive whole within its deadline of {_DEADLINE}",
    ),
    ("/SHA256SUMS.txt", "gzip", "SHA256SUMS.txt: the server sent it with Content-Encoding 'gzip'"),
    (_RECORD, "trickle", f"00007_lr.dat: did not arrive whole within its deadline of {_DEADLINE} s"),
    (_RECORD, "gzip", "00007_lr.dat: the server sent it with Content-Encoding 'gzip'"),
    (_RECORD, "huge-length", "00007_lr.dat: 1,000,000,000,000 bytes declared, more than the 48,000 that"),
]


@pytest.mark.parametrize(
    ("path", "mode", "expected"), _HOSTILE, ids=[f"{p[1:8]}-{m}" for p, m, _ in _HOSTILE]
)
def test_a_hostile_response_ends_with_a_clear_error(
    synthetic_copy, tmp_path, write_params, path, mode, expected
):
    out = tmp_path / "raw"
    with http_server(synthetic_copy, misbehave={path: mode}, trickle_s=0.5) as url:
        params = write_params(
            {"download.source": url, "download.file_deadline_s": _DEADLINE, "download.workers": 2}
        )
        # The timeout only keeps a regression (an endless transfer) from hanging the suite; the test checks the
        # error the download ends with, whose deadline is 3 s.
        done = subprocess.run(
            ["ecg-crnn", "--params", str(params), "-q", "download", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    assert expected in done.stderr, done.stderr
    assert url in done.stderr and "Traceback" not in done.stderr
    assert not (out / "SHA256SUMS.txt").exists() and not (out / path[1:]).exists()
    if mode == "trickle":  # not retried: a source this slow would be as slow again
        assert "raise download.file_deadline_s" in done.stderr


def test_a_fifo_in_a_local_source_is_refused_not_waited_on(synthetic_copy, tmp_path):
    import os

    victim = synthetic_copy / "records100" / "00000" / "00007_lr.dat"
    victim.unlink()
    os.mkfifo(victim)  # nothing ever writes to it: reading it would block forever
    with pytest.raises(EcgCrnnError, match=r"00007_lr\.dat: not a regular file in the source"):
        download(open_source(str(synthetic_copy)), tmp_path / "raw", ptbxl(100), workers=2, progress=False)


def test_a_local_file_over_its_cap_is_refused_before_it_is_read(synthetic_copy, tmp_path):
    big = synthetic_copy / "records100" / "00000" / "00007_lr.dat"
    with open(big, "r+b") as f:
        f.truncate(10**9)  # sparse: a 1 GB record costs no disk
    with pytest.raises(
        EcgCrnnError, match=r"00007_lr\.dat: 1,000,000,000 bytes declared, more than the 48,000"
    ):
        download(open_source(str(synthetic_copy)), tmp_path / "raw", ptbxl(100), workers=2, progress=False)


# --- Hardening: a pinned listing ----------------------------------------------------------------------


def test_a_pinned_listing_catches_a_self_consistent_mirror(synthetic_copy, tmp_path, write_params, capsys):
    sums = synthetic_copy / "SHA256SUMS.txt"
    pinned = _sha(sums.read_bytes())
    out = tmp_path / "raw"
    args = ["-q", "download", "--out", str(out)]
    params = write_params({"download.source": str(synthetic_copy), "download.listing_sha256": pinned.upper()})
    assert main(["--params", str(params), *args]) == 0
    # The mirror changes a record and lists the new checksum: every file matches the listing, but not the pin.
    victim = synthetic_copy / "records100" / "00000" / "00007_lr.dat"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    lines = [
        f"{_sha(bytes(data))}  {p}" if p == "records100/00000/00007_lr.dat" else ln
        for ln, p in ((ln, ln.split(maxsplit=1)[1]) for ln in sums.read_text().splitlines())
    ]
    sums.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["--params", str(params), *args]) == 1
    err = capsys.readouterr().err
    assert f"but download.listing_sha256 pins {pinned}" in err and "SHA256SUMS.txt: sha256 " in err
    assert "Traceback" not in err
    assert sha256_file(out / "records100" / "00000" / "00007_lr.dat") != _sha(bytes(data))
    # Without a pin, the same mirror is believed: the pin is what catches it.
    unpinned = write_params({"download.source": str(synthetic_copy)})
    assert main(["--params", str(unpinned), *args]) == 0
    assert sha256_file(out / "records100" / "00000" / "00007_lr.dat") == _sha(bytes(data))


# --- One mechanism, several datasets: nstdb through the same verified download ------------------------


def _nstdb():
    from ecg_crnn.data.datasets import NSTDB_FILES, nstdb

    return nstdb(), NSTDB_FILES


def test_nstdb_downloads_through_the_same_mechanism(synthetic_dir, tmp_path):
    from .helpers.nstdb import write_nstdb_fixture

    dataset, files = _nstdb()
    sums = write_nstdb_fixture(tmp_path / "mirror", seconds=10)
    out = tmp_path / "nstdb"
    with http_server(tmp_path / "mirror") as url:
        report = download(open_source(url), out, dataset, workers=2, progress=False)
    assert report.fetched == report.wanted == len(files) == 6
    assert sorted(p.name for p in out.iterdir()) == sorted([*files, MARKER, "SHA256SUMS.txt"])  # no RECORDS
    assert all(sha256_file(out / name) == sums[name] for name in files)
    assert json.loads((out / MARKER).read_text()) == {"dataset": "nstdb"}
    with pytest.raises(EcgCrnnError, match=r"holds the dataset 'nstdb'.*not 'ptb-xl'"):
        download(open_source(str(synthetic_dir)), out, ptbxl(100), progress=False)


def test_nstdb_caps_are_its_own(tmp_path):
    from .helpers.nstdb import write_nstdb_fixture

    dataset, _ = _nstdb()
    mirror = tmp_path / "mirror"
    write_nstdb_fixture(mirror, seconds=10)
    with open(mirror / "em.dat", "r+b") as f:
        f.truncate(2_000_001)  # one byte over nstdb's cap (a real .dat is 1,950,000 bytes)
    _list_extra(mirror, "em.dat", (mirror / "em.dat").read_bytes())
    with pytest.raises(EcgCrnnError, match=r"em\.dat: 2,000,001 bytes declared, more than the 2,000,000"):
        download(open_source(str(mirror)), tmp_path / "nstdb", dataset, progress=False)
    assert dataset.listing_max_bytes == 64 * 1024 and dataset.max_bytes("bw.hea") == 4096
