"""Where an Optuna study lives: a journal file by default (embedded, nothing to run); any RDB URL (PostgreSQL) for
many workers, with heartbeats: a trial whose worker died is failed after two missed heartbeats and retried, so the
study still reaches its trial count."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna

from ..config import SearchSettings
from ..errors import EcgCrnnError
from ..redaction import redact


def make_storage(cfg: SearchSettings, search_dir: Path):
    # Optuna marks the journal backend and the heartbeat retry callback experimental and warns at every use;
    # both are what this project relies on, so the warning says nothing to its users: silenced here alone.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_storage(cfg, search_dir)


def _make_storage(cfg: SearchSettings, search_dir: Path):
    if cfg.storage is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        search_dir.mkdir(parents=True, exist_ok=True)
        path = str(search_dir / "journal.log")
        return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    try:
        return RDBStorage(
            cfg.storage,
            heartbeat_interval=cfg.heartbeat_s,
            grace_period=2 * cfg.heartbeat_s,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=cfg.retries),
            engine_kwargs={"pool_pre_ping": True},
        )
    except Exception as exc:  # sqlalchemy raises many types; the message must not carry the password
        detail = redact(str(exc).splitlines()[0].replace(cfg.storage, redact(cfg.storage)))
        raise EcgCrnnError(
            f"search.storage: cannot open {redact(cfg.storage)}: {type(exc).__name__}: {detail[:300]}"
        ) from None
