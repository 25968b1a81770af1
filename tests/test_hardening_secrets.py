"""Secrets never reach a message or an output: `redact` on every URL of a message, URL-valued parameters that
refuse embedded credentials, the CLI's errors redacted."""

import pytest

from ecg_crnn.cli import main
from ecg_crnn.config import ConfigError, from_dict
from ecg_crnn.redaction import redact


@pytest.mark.parametrize(
    ("url", "expected", "secrets"),
    [
        (
            "postgresql+psycopg2://optuna:s3cret@127.0.0.1:5432/optuna",
            "postgresql+psycopg2://optuna:***@127.0.0.1:5432/optuna",
            ["s3cret"],
        ),
        ("postgresql://u:p@ss@host/db", "postgresql://u:***@host/db", ["p@ss", "ss@", "p@"]),
        ("postgresql://u:a/b?c@host:5432/db", "postgresql://u:***@host:5432/db", ["a/b", "?c"]),
        (
            "postgresql://u@host/db?password=hunter2&sslmode=require",
            "postgresql://u@host/db?password=***&sslmode=require",
            ["hunter2"],
        ),
        (
            "postgresql://host/db?sslmode=require&PASSWORD=hunter2",
            "postgresql://host/db?sslmode=require&PASSWORD=***",
            ["hunter2"],
        ),
        (
            "postgresql://u:pw@host/db?sslpassword=k3y&user=a@b",
            "postgresql://u:***@host/db?sslpassword=***&user=a@b",
            ["pw@", "k3y"],
        ),
        ("postgresql://postgres@127.0.0.1:5432/optuna", "postgresql://postgres@127.0.0.1:5432/optuna", []),
        ("sqlite:///search/optuna.db", "sqlite:///search/optuna.db", []),
    ],
)
def test_redact_hides_every_password(url, expected, secrets):
    redacted = redact(url)
    assert redacted == expected
    for secret in secrets:
        assert secret not in redacted


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        ("https://mirror/ptbxl/?p%61ssword=hunter2&x=1", ["hunter2"]),  # the parameter's name percent-encoded
        ("https://mirror/?%70%61%73%73%77%6f%72%64=hunter2", ["hunter2"]),
        ("s3://b/p?X-Amz-Signature=abc123&X-Amz-Credential=AKIA9", ["abc123", "AKIA9"]),  # a presigned URL
        ("https://ghp_T0KEN@github.com/org/repo.git", ["ghp_T0KEN"]),  # a token given as the user name
        ("git fetch https://u:pw1@a/r and s3://k:pw2@b/p failed", ["pw1", "pw2"]),  # two URLs in one message
        ("https://u:pw1@a/x,https://v:pw2@b/y", ["pw1", "pw2"]),  # glued together
        ("fetch https://u:pw1@a/?ref=main failed; then https://v:pw2@b/ too", ["pw1", "pw2"]),
        ("error: 'postgresql://u:pw3@h/db' (x=https://t:pw4@h2/)", ["pw3", "pw4"]),
        ("https://h/a#access_token=tok5", ["tok5"]),
    ],
)
def test_redact_hides_secrets_anywhere_in_a_message(text, secrets):
    redacted = redact(text)
    for secret in secrets:
        assert secret not in redacted, redacted
    assert "***" in redacted


@pytest.mark.parametrize(
    "text",
    [
        "ssh://git@github.com/org/repo.git",  # a user name in ssh is not a secret
        "git@github.com:org/repo.git",
        "https://registry.example/@scope/pkg",  # an '@' in the path
        "https://physionet.org/files/ptb-xl/1.0.3/?format=raw",
        "no URL here: password=1",
    ],
)
def test_redact_leaves_urls_without_secrets_alone(text):
    assert redact(text) == text


URL_KEYS = [
    ("download", "source"),
    ("download", "s3_endpoint_url"),
    ("storage", "publish_url"),
    ("storage", "endpoint_url"),
    ("search", "storage"),
    ("grid", "git_remote"),
]
WITH_SECRETS = [
    "https://alice:hunter2@mirror.example/ptb-xl/",
    "https://ghp_hunter2@github.com/org/repo.git",
    "postgresql://optuna@db.example/optuna?p%61ssword=hunter2",
    "s3://bucket/prefix?X-Amz-Signature=hunter2",
]


@pytest.mark.parametrize(("section", "key"), URL_KEYS)
@pytest.mark.parametrize("url", WITH_SECRETS)
def test_url_parameters_refuse_embedded_credentials(section, key, url):
    """dvc.lock, params.yaml, experiment refs and Prefect's parameters keep these values forever: refused at load,
    with a message that names the key and how to give the secret instead, without the secret."""
    with pytest.raises(ConfigError) as info:
        from_dict({section: {key: url}})
    message = str(info.value)
    assert message.startswith(f"{section}.{key}: ") and "hunter2" not in message
    assert "credential helper" in message or "~/.netrc" in message


@pytest.mark.parametrize(("section", "key"), URL_KEYS)
def test_url_parameters_without_credentials_load(section, key):
    value = {
        "download": "https://physionet.org/files/ptb-xl/1.0.3/",
        "storage": "s3://bucket/prefix",
        "search": "postgresql+psycopg2://optuna@127.0.0.1:5432/optuna",
        "grid": "ssh://git@git.example/org/ecg-crnn.git",
    }[section]
    assert getattr(getattr(from_dict({section: {key: value}}), section), key) == value


def test_no_secret_reaches_the_console_from_the_cli(tmp_path, write_params, capsys):
    """A source URL with a password is refused before anything is fetched, and the error does not print it."""
    params = write_params({"download.source": "https://alice:hunter2@mirror.example/ptb-xl/"})
    assert main(["--params", str(params), "download", "--out", str(tmp_path / "raw")]) == 1
    captured = capsys.readouterr()
    assert "download.source" in captured.err and "hunter2" not in captured.out + captured.err
    assert not (tmp_path / "raw").exists()
    # publish's flags obey the same rule as params.yaml
    assert main(["publish", str(tmp_path), "--to", "s3://b/p?X-Amz-Signature=hunter2"]) == 1
    captured = capsys.readouterr()
    assert "storage.publish_url" in captured.err and "hunter2" not in captured.out + captured.err


def test_every_error_the_cli_prints_is_redacted(monkeypatch, capsys):
    """Whatever a stage raises (a source's answer, a server's message), the console gets it redacted."""
    from ecg_crnn import cli
    from ecg_crnn.errors import EcgCrnnError

    def failing(args):
        raise EcgCrnnError("https://u:hunter2@a/x: HTTP 500; retried with s3://k:hunter3@b/y")

    monkeypatch.setattr(cli, "_segment", failing)
    monkeypatch.setattr(
        cli, "COMMANDS", [(n, t, failing if n == "segment" else f, o) for n, t, f, o in cli.COMMANDS]
    )
    assert cli.main(["segment"]) == 1
    err = capsys.readouterr().err
    assert "hunter2" not in err and "hunter3" not in err and "u:***@a/x" in err
