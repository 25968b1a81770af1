"""params.yaml -> typed, validated settings.

Each section of params.yaml is a frozen dataclass below, named like the section. Loading checks every key
before any work starts: an unknown key, a value of the wrong type or outside its allowed set is reported by
its dotted name (e.g. `filter.task`) together with the file it came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import EcgCrnnError

TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
SAMPLING_RATES = (100, 500)


def _choices(*values: Any) -> dict:
    return {"choices": values}


@dataclass(frozen=True)
class DataSettings:
    # 100 Hz (records100/, the reference recipe) or 500 Hz (records500/); only that folder is fetched and read.
    sampling_rate: int = field(default=100, metadata=_choices(*SAMPLING_RATES))


@dataclass(frozen=True)
class DownloadSettings:
    # PhysioNet over HTTPS, an s3:// URL (PhysioNet's open-data bucket or a mirror), or a local directory.
    source: str = "https://physionet.org/files/ptb-xl/1.0.3/"
    # For S3-compatible mirrors (MinIO, SeaweedFS, ...); null means AWS itself.
    s3_endpoint_url: str | None = None
    # Unsigned (anonymous) S3 access, as PhysioNet's public bucket needs; false uses the usual AWS credentials.
    s3_unsigned: bool = True
    workers: int = 16
    retries: int = 3
    timeout_s: float = 60.0

    def validate(self) -> None:
        _positive("download.workers", self.workers)
        _non_negative("download.retries", self.retries)
        _positive("download.timeout_s", self.timeout_s)


@dataclass(frozen=True)
class FilterSettings:
    task: str = field(default="subdiagnostic", metadata=_choices(*TASKS))
    # Classes with fewer positive records than this are dropped (then records left without a label).
    min_class_count: int = 0
    # Keep only records whose report a cardiologist validated (`validated_by_human`).
    validated_only: bool = False
    # `all`: every record the database names must be on disk; `present`: use those that are (a partial mirror).
    records: str = field(default="all", metadata=_choices("all", "present"))
    # Records with a lead that carries no signal (every sample the WFDB invalid value -32768, or flat):
    # `drop` leaves them out and lists them with the reason in dropped.csv; `refuse` stops at the first.
    bad_records: str = field(default="drop", metadata=_choices("drop", "refuse"))
    # Processes that read the WFDB records.
    workers: int = 2

    def validate(self) -> None:
        _non_negative("filter.min_class_count", self.min_class_count)
        _positive("filter.workers", self.workers)


@dataclass(frozen=True)
class SegmentSettings:
    stride_s: float = 1.25  # evaluation windows' stride (their length is each run's window, study.windows)
    train_folds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8])
    val_folds: list[int] = field(default_factory=lambda: [9])
    test_folds: list[int] = field(default_factory=lambda: [10])

    def validate(self) -> None:
        _positive("segment.stride_s", self.stride_s)
        seen: dict[int, str] = {}
        for name in ("train_folds", "val_folds", "test_folds"):
            folds = getattr(self, name)
            if not folds:
                raise ConfigError(f"segment.{name}: must name at least one fold")
            for fold in folds:
                if not 1 <= fold <= 10:
                    raise ConfigError(f"segment.{name}: fold {fold} is not in 1..10")
                if fold in seen:
                    raise ConfigError(f"segment.{name}: fold {fold} is already in segment.{seen[fold]}")
                seen[fold] = name


ALL_ARCHITECTURES = [
    "cnn",
    *(f"cnn_{kind}{depth}" for kind in ("lstm", "gru", "bilstm", "bigru") for depth in (1, 2, 3)),
]


@dataclass(frozen=True)
class Margins:
    """Non-inferiority margins: how much worse than the best a model may be and still count as "as good as
    the best" (a one-sided test, Holm-corrected with the report's other tests). Hamming loss: how much higher."""

    macro_auroc: float = 0.005
    macro_auprc: float = 0.02
    micro_f1: float = 0.01
    subset_accuracy: float = 0.02
    hamming_loss: float = 0.002

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            _non_negative(f"study.margins.{f.name}", getattr(self, f.name))


@dataclass(frozen=True)
class StudySettings:
    # The architectures that dvc.yaml trains and evaluates (one axis of its matrix) and the report compares.
    architectures: list[str] = field(default_factory=lambda: list(ALL_ARCHITECTURES))
    # Context length, the second axis: training crops and evaluation windows of this many seconds.
    windows: list[float] = field(default_factory=lambda: [2.5, 10.0])
    # The reference of the paired comparisons (the published claim: one BiLSTM layer is the best balance).
    reference: str = "cnn_bilstm1"
    margins: Margins = field(default_factory=Margins)
    alpha: float = 0.05  # family-wise error rate of the report's tests (Holm)

    def validate(self) -> None:
        from .models import REGISTRY

        for i, name in enumerate(self.architectures):
            if name not in REGISTRY:
                raise ConfigError(
                    f"study.architectures[{i}]: unknown architecture {name!r}; known: {', '.join(REGISTRY)}"
                )
        if not self.architectures:
            raise ConfigError("study.architectures: must name at least one architecture")
        if len(set(self.architectures)) != len(self.architectures):
            raise ConfigError("study.architectures: names must be unique")
        if self.reference not in self.architectures:
            raise ConfigError(f"study.reference: {self.reference!r} is not in study.architectures")
        if not self.windows:
            raise ConfigError("study.windows: must name at least one window length")
        for i, w in enumerate(self.windows):
            _positive(f"study.windows[{i}]", w)
        if len(set(self.windows)) != len(self.windows):
            raise ConfigError(f"study.windows: lengths must be distinct, got {self.windows!r}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"study.alpha: must be in (0, 1), got {self.alpha!r}")


@dataclass(frozen=True)
class ModelSettings:
    channels: list[int] = field(
        default_factory=lambda: [64, 64, 128, 128]
    )  # CNN blocks; the first 3 halve time
    kernel_size: int = 7
    hidden: int = 128  # recurrent units per direction
    dropout: float = 0.3  # before the classifier, and between stacked recurrent layers

    def validate(self) -> None:
        if not self.channels or any(c <= 0 for c in self.channels):
            raise ConfigError(f"models.channels: must be positive integers, got {self.channels!r}")
        _positive("models.kernel_size", self.kernel_size)
        _positive("models.hidden", self.hidden)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"models.dropout: must be in [0, 1), got {self.dropout!r}")


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 40  # the budget: the most epochs any run gets (the same for every architecture)
    batch_size: int = 64
    lr: float = 0.003  # peak learning rate (AdamW)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    warmup: float = 0.1  # share of the epochs spent warming the learning rate up linearly to its peak
    cooldown: float = 0.25  # share of the epochs of the final cosine decay to zero
    # Epochs after the warm-up without a better validation macro-AUROC before the cool-down starts (the
    # run then ends once it has annealed); null: no early stopping, every run uses the whole budget.
    patience: int | None = 8
    class_weighted: bool = False  # BCE positive weights from the training folds' class balance
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # each seed is its own model (DVC stage)
    device: str = field(default="auto", metadata=_choices("auto", "cpu", "cuda"))
    bf16: bool = True  # autocast to bfloat16 on CUDA (ignored on CPU)

    def validate(self) -> None:
        for key in ("epochs", "batch_size", "lr"):
            _positive(f"train.{key}", getattr(self, key))
        if self.patience is not None:
            _positive("train.patience", self.patience)
        _non_negative("train.weight_decay", self.weight_decay)
        _non_negative("train.grad_clip", self.grad_clip)
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"train.warmup: must be in [0, 1), got {self.warmup!r}")
        if not 0 < self.cooldown <= 1:
            raise ConfigError(f"train.cooldown: must be in (0, 1], got {self.cooldown!r}")
        if self.warmup + self.cooldown > 1:
            raise ConfigError(
                f"train.warmup + train.cooldown: must not exceed 1, got {self.warmup} + {self.cooldown}"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(
                f"train.seeds: must be a non-empty list of distinct integers, got {self.seeds!r}"
            )
        if any(s < 0 for s in self.seeds):
            raise ConfigError(f"train.seeds: seeds must be >= 0, got {self.seeds!r}")


@dataclass(frozen=True)
class EvaluateSettings:
    aggregate: str = field(default="max", metadata=_choices("max", "mean"))  # windows -> record
    bootstrap: int = 1000  # test-set resamples for the confidence intervals and paired tests
    bootstrap_seed: int = 0
    latency_runs: int = 30  # timed single-record forward passes (one CPU thread)

    def validate(self) -> None:
        _positive("evaluate.bootstrap", self.bootstrap)
        _positive("evaluate.latency_runs", self.latency_runs)


@dataclass(frozen=True)
class DriftSettings:
    # A comparison is flagged as dataset drift when at least this share of its columns drift (Evidently).
    drift_share: float = 0.5
    # Per-column drift detection. tests: K-S (numeric) and chi-square (categorical), drift when p < 0.05;
    # distances: normed Wasserstein and Jensen-Shannon, drift when >= 0.1 (Evidently's choice for large data);
    # auto: tests when the compared fold has under 1,000 records (distances are noisy there), else distances.
    method: str = field(default="auto", metadata=_choices("auto", "tests", "distances"))
    top: int = 10  # most drifted columns listed per comparison in the summary

    def validate(self) -> None:
        if not 0 < self.drift_share <= 1:
            raise ConfigError(f"drift.drift_share: must be in (0, 1], got {self.drift_share!r}")
        _positive("drift.top", self.top)


@dataclass(frozen=True)
class StorageSettings:
    # Where `ecg-crnn publish` (and the retraining flow) put reports and models: s3://bucket/prefix or null.
    publish_url: str | None = None
    # An S3-compatible server (MinIO, SeaweedFS, ...); null: AWS, or AWS_ENDPOINT_URL from the environment.
    endpoint_url: str | None = None


@dataclass(frozen=True)
class SearchSettings:
    trials: int = 20  # trials the study reaches (completed + pruned), however many workers share it
    study_name: str = "ecg-crnn"
    # null: an Optuna journal file under search/ (embedded, one machine); or an RDB URL for many workers,
    # e.g. postgresql://user@host:5432/optuna (the password from PGPASSWORD or ~/.pgpass, never from here).
    storage: str | None = None
    windows: list[float] = field(default_factory=lambda: [2.5, 10.0])  # context lengths (s) to search over
    rnn: list[str] = field(default_factory=lambda: ["none", "lstm", "gru"])
    bidirectional: list[bool] = field(default_factory=lambda: [False, True])
    depth: list[int] = field(default_factory=lambda: [1, 2, 3])  # recurrent layers when rnn is not none
    hidden: list[int] = field(default_factory=lambda: [64, 128, 256])
    dropout: list[float] = field(default_factory=lambda: [0.1, 0.5])  # uniform range
    lr: list[float] = field(default_factory=lambda: [0.0003, 0.01])  # log-uniform range
    epochs: int = 20
    pruner: str = field(default="median", metadata=_choices("median", "hyperband", "none"))
    seed: int = 0
    heartbeat_s: int = (
        30  # RDB storage: a trial whose worker stops beating this long (x2) is failed, then retried
    )
    retries: int = 2  # how often a failed trial is retried
    # Prefect: where trials run. local: in the flow's process; pool: flow runs on a work pool's workers.
    mode: str = field(default="local", metadata=_choices("local", "pool"))
    work_pool: str = "ecg-crnn"
    workers: int = 2  # trial-runner flow runs submitted in pool mode
    worker_timeout_s: int = 300  # pool mode: fail clearly when no worker picks the runs up in this time

    def validate(self) -> None:
        _positive("search.trials", self.trials)
        _positive("search.epochs", self.epochs)
        for key in ("windows", "rnn", "bidirectional", "hidden", "dropout", "lr"):
            if not getattr(self, key):
                raise ConfigError(f"search.{key}: the search space is empty")
        for i, rnn in enumerate(self.rnn):
            if rnn not in ("none", "lstm", "gru"):
                raise ConfigError(f"search.rnn[{i}]: {rnn!r} is not one of none, lstm, gru")
        if any(r != "none" for r in self.rnn) and not [d for d in self.depth if 1 <= d <= 3]:
            raise ConfigError("search.depth: needs a depth in 1..3 when search.rnn includes lstm or gru")
        if any(not 1 <= d <= 3 for d in self.depth):
            raise ConfigError(f"search.depth: depths must be in 1..3, got {self.depth!r}")
        for key in ("dropout", "lr"):
            lo_hi = getattr(self, key)
            if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
                raise ConfigError(f"search.{key}: expected [low, high] with 0 <= low <= high, got {lo_hi!r}")
        if self.dropout[1] >= 1:
            raise ConfigError(f"search.dropout: must stay below 1, got {self.dropout!r}")
        if self.lr[0] <= 0:
            raise ConfigError(f"search.lr: must be > 0, got {self.lr!r}")
        _positive("search.workers", self.workers)
        _positive("search.worker_timeout_s", self.worker_timeout_s)
        _positive("search.heartbeat_s", self.heartbeat_s)


@dataclass(frozen=True)
class GridSettings:
    """flows/grid.py: the study's train and evaluate stages on a Prefect work pool (one model per GPU)."""

    work_pool: str = "ecg-crnn"
    # Where workers get the code: a git URL they can reach (the flow pushes a snapshot ref there), or null for
    # the coordinator's own repository path (one machine, or a shared file system).
    git_remote: str | None = None
    # A directory every worker reaches (NFS, ...): training checkpoints go there, so a run retried on another
    # worker resumes instead of restarting. null: each worker's own .resume/ (a retried run restarts).
    resume_root: str | None = None
    heartbeat_s: int = 30  # flow-run heartbeat interval the workers' runs send (Prefect's minimum is 30)
    stale_after_s: int = 100  # a running stage without a heartbeat this long is crashed and resubmitted
    retries: int = 2  # resubmissions of a stage whose run crashed or failed
    worker_timeout_s: int = 600  # a clear error when no worker picks up a stage in this time

    def validate(self) -> None:
        if self.heartbeat_s < 30:
            raise ConfigError(
                f"grid.heartbeat_s: Prefect sends heartbeats at most every 30 s, got {self.heartbeat_s}"
            )
        if self.stale_after_s <= 2 * self.heartbeat_s:
            raise ConfigError(
                f"grid.stale_after_s: must exceed two heartbeats (2 x grid.heartbeat_s = {2 * self.heartbeat_s}), "
                f"got {self.stale_after_s}"
            )
        _non_negative("grid.retries", self.retries)
        _positive("grid.worker_timeout_s", self.worker_timeout_s)


@dataclass(frozen=True)
class RetrainSettings:
    cron: str = "0 3 * * 0"  # the retraining deployment's schedule (Sundays 03:00)
    timezone: str = "UTC"
    publish: bool = True  # publish reports and models to storage.publish_url when it is set


@dataclass(frozen=True)
class Params:
    data: DataSettings = field(default_factory=DataSettings)
    download: DownloadSettings = field(default_factory=DownloadSettings)
    filter: FilterSettings = field(default_factory=FilterSettings)
    segment: SegmentSettings = field(default_factory=SegmentSettings)
    study: StudySettings = field(default_factory=StudySettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    grid: GridSettings = field(default_factory=GridSettings)
    retrain: RetrainSettings = field(default_factory=RetrainSettings)


class ConfigError(EcgCrnnError):
    pass


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: must be > 0, got {value!r}")


def _non_negative(key: str, value: float) -> None:
    if value < 0:
        raise ConfigError(f"{key}: must be >= 0, got {value!r}")


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """Return `value` if it fits the annotation `tp` (ints are accepted for floats), else raise by key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(key, value, arg)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_check_type(f"{key}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}")
    return value


def _build(cls: type, raw: Any, prefix: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'params'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]!s} (known keys{' in ' + prefix if prefix else ''}: {', '.join(fields)})"
        )
    values = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = _build(tp, raw[name], key)
            continue
        value = _check_type(key, raw[name], tp)
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
        values[name] = value
    obj = cls(**values)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def from_dict(raw: dict) -> Params:
    return _build(Params, raw, "")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every error names the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such parameters file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return from_dict(raw or {})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
