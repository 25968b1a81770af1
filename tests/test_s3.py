"""S3 against a real S3-compatible server on 127.0.0.1 (rclone serve s3): the download stage's S3 source,
DVC push/pull to an S3 remote, publishing results, and the faults."""

import contextlib
import hashlib
import json
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from ecg_crnn.cli import main
from ecg_crnn.data.checksums import parse_sums
from ecg_crnn.data.datasets import ptbxl
from ecg_crnn.data.download import download
from ecg_crnn.data.sources import open_source
from ecg_crnn.errors import EcgCrnnError
from ecg_crnn.hashing import sha256_file
from ecg_crnn.publish import publish
from ecg_crnn.s3 import s3_client

from .helpers.params import set_params
from .helpers.processes import run
from .helpers.servers import S3_KEY, S3_SECRET, S3Server


@pytest.fixture
def seeded(s3, shared_ptbxl):
    """The bucket laid out as PhysioNet's open-data bucket: s3://physionet-open/ptb-xl/1.0.3/."""
    client = s3.client()
    client.create_bucket(Bucket="physionet-open")
    shutil.copytree(shared_ptbxl, s3.root / "physionet-open" / "ptb-xl" / "1.0.3")
    return s3


def _params(write_params, server, **extra):
    return write_params(
        {
            "download.source": "s3://physionet-open/ptb-xl/1.0.3/",
            "download.s3_endpoint_url": server.endpoint,
            "download.s3_unsigned": False,
            **extra,
        }
    )


def test_download_from_s3_with_credentials_verifies_every_file(
    seeded, shared_ptbxl, tmp_path, write_params, capsys
):
    out = tmp_path / "raw"
    assert main(["--params", str(_params(write_params, seeded)), "-q", "download", "--out", str(out)]) == 0
    sums = parse_sums((out / "SHA256SUMS.txt").read_text())
    assert sum(p.startswith("records100/") for p in sums) == 976
    for p in sums:
        assert sha256_file(out / p) == sums[p]
    assert S3_SECRET not in capsys.readouterr().err


def test_download_unsigned_from_an_anonymous_bucket(shared_ptbxl, tmp_path):
    root = tmp_path / "anon"
    shutil.copytree(shared_ptbxl, root / "physionet-open" / "ptb-xl" / "1.0.3")
    server = S3Server(root, auth=False).start()
    try:
        source = open_source("s3://physionet-open/ptb-xl/1.0.3/", server.endpoint, s3_unsigned=True)
        report = download(source, tmp_path / "raw", ptbxl(100), workers=8, progress=False)
    finally:
        server.stop()
    assert report.fetched == report.wanted == 979


def test_tampered_object_is_refused_by_name(seeded, tmp_path, write_params, capsys):
    victim = seeded.root / "physionet-open/ptb-xl/1.0.3/records100/00000/00010_lr.hea"
    victim.chmod(0o644)
    victim.write_text(victim.read_text().replace("00010_lr 12", "00010_lr  12"))
    out = tmp_path / "raw"
    assert main(["--params", str(_params(write_params, seeded)), "-q", "download", "--out", str(out)]) == 1
    assert "records100/00000/00010_lr.hea: checksum mismatch" in capsys.readouterr().err
    assert not (out / "records100/00000/00010_lr.hea").exists()


@pytest.mark.parametrize(
    ("env", "source", "expected"),
    [
        (
            {"AWS_SECRET_ACCESS_KEY": "wrong-secret-value"},
            "s3://physionet-open/ptb-xl/1.0.3/",
            "SignatureDoesNotMatch: the secret key does not match",
        ),
        ({}, "s3://no-such-bucket/ptb-xl/1.0.3/", "NoSuchBucket: no such bucket"),
        ({}, "s3://physionet-open/ptb-xl/9.9.9/", "SHA256SUMS.txt: no such object"),
    ],
)
def test_bad_credentials_bucket_or_key_are_clear_and_secret_free(
    seeded, tmp_path, write_params, capsys, monkeypatch, env, source, expected
):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    params = _params(write_params, seeded, **{"download.source": source, "download.retries": 0})
    assert main(["--params", str(params), "-q", "download", "--out", str(tmp_path / "raw")]) == 1
    out = capsys.readouterr()
    assert expected in out.err
    for secret in (S3_SECRET, "wrong-secret-value", S3_KEY):
        assert secret not in out.err + out.out


def test_server_gone_mid_transfer_then_resume(seeded, tmp_path, write_params):
    out = tmp_path / "raw"
    params = _params(
        write_params, seeded, **{"download.workers": 2, "download.retries": 1, "download.timeout_s": 5}
    )
    proc = subprocess.Popen(
        ["ecg-crnn", "--params", str(params), "-q", "download", "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("records100/*/*"))) < 50:
        time.sleep(0.01)
    seeded.proc.send_signal(signal.SIGKILL)  # the server goes away mid-transfer
    seeded.proc.wait()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "s3://physionet-open/ptb-xl/1.0.3/" in err and "Traceback" not in err
    partial = list(out.glob("records100/*/*"))
    sums = parse_sums((seeded.root / "physionet-open/ptb-xl/1.0.3/SHA256SUMS.txt").read_text())
    assert 50 <= len(partial) < 976 and not (out / "SHA256SUMS.txt").exists()
    for f in partial:  # nothing half-written
        assert sha256_file(f) == sums[str(f.relative_to(out))]
    seeded.start()  # back on the same port: the re-run picks up where it was
    done = subprocess.run(
        ["ecg-crnn", "--params", str(params), "-q", "download", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split("(")[1].split(" already verified")[0]) >= len(partial)


def _json(client, key: str, bucket: str = "results") -> dict:
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_publish_uploads_with_hashes_and_manifest_last(s3, tmp_path, monkeypatch):
    client = s3.client()
    client.create_bucket(Bucket="results")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports" / "study").mkdir(parents=True)
    (tmp_path / "reports" / "study" / "report.html").write_text("<html>study</html>")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"\0" * (9 * 1024 * 1024))  # multipart-sized
    args = [
        "publish",
        "reports",
        "models/model.pt",
        "--to",
        "s3://results/run1",
        "--endpoint-url",
        s3.endpoint,
    ]
    assert main(args) == 0
    latest = _json(client, "run1/latest.json")
    version = latest["version"]
    assert latest["manifest"] == f"run1/{version}/manifest.json"
    manifest = _json(client, latest["manifest"])
    keys = {f["key"]: f for f in manifest["files"]}
    assert set(keys) == {f"run1/{version}/reports/study/report.html", f"run1/{version}/models/model.pt"}
    body = client.get_object(Bucket="results", Key=f"run1/{version}/models/model.pt")["Body"].read()
    assert len(body) == 9 * 1024 * 1024
    assert keys[f"run1/{version}/models/model.pt"]["sha256"] == sha256_file(tmp_path / "models" / "model.pt")
    # Re-publishing unchanged files is the same version: nothing uploaded.
    again = publish(
        [tmp_path / "reports", tmp_path / "models" / "model.pt"],
        "s3://results/run1",
        s3_client(s3.endpoint),
        root=tmp_path,
    )
    assert again["uploaded"] == 0 and again["version"] == version


def test_a_new_publish_never_changes_what_an_old_manifest_lists(s3, tmp_path):
    client = s3.client()
    client.create_bucket(Bucket="results")
    report = tmp_path / "reports" / "study" / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>first</html>")
    first = publish([tmp_path / "reports"], "s3://results/run1", s3_client(s3.endpoint), root=tmp_path)
    old = _json(client, first["manifest"].removeprefix("s3://results/"))
    report.write_text("<html>changed</html>")
    second = publish([tmp_path / "reports"], "s3://results/run1", s3_client(s3.endpoint), root=tmp_path)
    assert second["version"] != first["version"] and second["uploaded"] == 1
    # Every object the old manifest names still holds exactly the bytes it lists.
    for entry in old["files"]:
        data = client.get_object(Bucket="results", Key=entry["key"])["Body"].read()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["size"]
    assert _json(client, "run1/latest.json")["version"] == second["version"]
    new = _json(client, second["manifest"].removeprefix("s3://results/"))
    data = client.get_object(Bucket="results", Key=new["files"][0]["key"])["Body"].read()
    assert data == b"<html>changed</html>"


def test_publish_refuses_links_out_of_the_tree_and_files_outside_it(s3, tmp_path, capsys):
    client = s3.client()
    client.create_bucket(Bucket="results")
    secret = tmp_path / "elsewhere" / "credentials"
    secret.parent.mkdir()
    secret.write_text("aws_secret_access_key = not-for-the-bucket")
    project = tmp_path / "project"
    (project / "reports").mkdir(parents=True)
    (project / "reports" / "report.html").write_text("<html></html>")
    (project / "reports" / "notes.txt").symlink_to(secret)
    (project / "reports" / "linked").symlink_to(secret.parent, target_is_directory=True)
    endpoint = s3_client(s3.endpoint)
    for given in ("reports", "reports/linked"):
        with pytest.raises(EcgCrnnError, match="is a symbolic link .* that leads out of the tree"):
            publish([project / given], "s3://results/run", endpoint, root=project)
    (project / "reports" / "notes.txt").unlink()
    (project / "reports" / "linked").unlink()
    # Files outside the project are keyed by their names: two of one name would share a key, and the manifest would
    # list one sha256 for two files.
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.pt").write_text(folder)
    with pytest.raises(
        EcgCrnnError, match=r"a/model\.pt and .*b/model\.pt would both be published as 'model\.pt'"
    ):
        publish(
            [tmp_path / "a" / "model.pt", tmp_path / "b" / "model.pt"],
            "s3://results/run",
            endpoint,
            root=project,
        )
    assert client.list_objects_v2(Bucket="results").get("KeyCount", 0) == 0
    # A link that stays in the tree is published under its own key, and a path given twice once.
    (project / "reports" / "same.html").symlink_to(project / "reports" / "report.html")
    info = publish(
        [project / "reports", project / "reports" / "report.html"], "s3://results/run", endpoint, root=project
    )
    manifest = _json(client, info["manifest"].removeprefix("s3://results/"))
    assert sorted(f["path"] for f in manifest["files"]) == ["reports/report.html", "reports/same.html"]


def test_publish_refuses_a_fifo_before_any_request(tmp_path):
    import os

    (tmp_path / "reports").mkdir()
    os.mkfifo(tmp_path / "reports" / "pipe")  # hashing it would wait forever for a writer
    with pytest.raises(EcgCrnnError, match=r"reports/pipe is not a regular file"):
        publish([tmp_path / "reports"], "s3://results/run", client=None, root=tmp_path)


def test_publish_to_a_missing_bucket_writes_nothing(s3, tmp_path, capsys):
    (tmp_path / "f.txt").write_text("x")
    assert (
        main(
            [
                "publish",
                str(tmp_path / "f.txt"),
                "--to",
                "s3://missing-bucket/p",
                "--endpoint-url",
                s3.endpoint,
            ]
        )
        == 1
    )
    assert "NoSuchBucket" in capsys.readouterr().err
    assert not (s3.root / "missing-bucket").exists()


def test_dvc_push_and_pull_through_an_s3_remote(project, s3, synthetic_dir):
    s3.client().create_bucket(Bucket="dvcstore")
    set_params(project, {"download.source": str(synthetic_dir)})
    run(["dvc", "repro", "segment"], project)
    run(["dvc", "remote", "add", "-d", "store", "s3://dvcstore/ecg-crnn"], project)
    run(["dvc", "remote", "modify", "store", "endpointurl", s3.endpoint], project)
    run(["dvc", "remote", "modify", "--local", "store", "access_key_id", S3_KEY], project)
    run(["dvc", "remote", "modify", "--local", "store", "secret_access_key", S3_SECRET], project)
    assert S3_SECRET not in (project / ".dvc" / "config").read_text()  # only in config.local, git-ignored
    pushed = run(["dvc", "push", "--with-deps", "segment"], project)
    assert S3_SECRET not in pushed.stdout + pushed.stderr
    assert any((s3.root / "dvcstore" / "ecg-crnn").rglob("*"))
    before = (project / "data" / "segmented" / "rot0" / "split.csv").read_text()
    shutil.rmtree(project / ".dvc" / "cache")
    shutil.rmtree(project / "data")
    run(["dvc", "pull", "--with-deps", "segment"], project)
    assert (project / "data" / "segmented" / "rot0" / "split.csv").read_text() == before
    assert (
        "Data and pipelines are up to date"
        in run(["dvc", "status", "--with-deps", "segment"], project).stdout
    )


@contextlib.contextmanager
def _dropping_server():
    """A TCP server that accepts each connection and closes it at once; yields its URL and the count."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.2)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join()
        sock.close()


def test_s3_requests_are_tried_retries_plus_one_times(tmp_path):
    with _dropping_server() as (endpoint, accepted):
        source = open_source("s3://physionet-open/ptb-xl/1.0.3/", endpoint, True, timeout_s=5)
        with pytest.raises(EcgCrnnError, match=r"s3://physionet-open/ptb-xl/1\.0\.3/SHA256SUMS\.txt"):
            download(source, tmp_path / "raw", ptbxl(100), progress=False, retries=2)
    assert len(accepted) == 3


def test_unreachable_s3_endpoint_names_it_and_the_ways_on(tmp_path, write_params, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    params = write_params(
        {
            "download.source": "s3://physionet-open/ptb-xl/1.0.3/",
            "download.s3_endpoint_url": endpoint,
            "download.retries": 0,
            "download.timeout_s": 5,
        }
    )
    assert main(["--params", str(params), "-q", "download", "--out", str(tmp_path / "raw")]) == 1
    err = capsys.readouterr().err
    assert f"s3://physionet-open/ptb-xl/1.0.3/ at {endpoint} is unreachable" in err
    assert "-S download.source=../shared/ptbxl" in err and "ecg-crnn synth --records 3000" in err
