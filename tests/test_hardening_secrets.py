"""Passwords never reach a message: `redact` on storage URLs."""

import pytest

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
