"""params.yaml -> typed, validated settings, by schema.

One pydantic model per section of params.yaml, named like it. What each key means is said once, in params.yaml's
comments; here are only the types and the bounds. Loading checks every key before any work starts: an unknown key,
a value of the wrong type or outside its allowed set is reported by its dotted name (e.g. `filter.task`), the bad
value and what is allowed, together with the file it came from.

Strict types: an int is accepted where a float is asked for (and becomes a float), nothing else is converted, so a
bool is no int and "2" is no number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import EcgCrnnError
from .redaction import redact, url_secret
from .registry import ALL_ARCHITECTURES, REGISTRY
from .shapes import git_url_problem, pool_problem

TASKS = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
SAMPLING_RATES = (100, 500)


class ConfigError(EcgCrnnError):
    pass


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def replaced(self, **changes):
        """A copy with `changes`, validated like a section read from params.yaml."""
        return type(self).model_validate({**self.model_dump(), **changes})


Positive = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


def _refuse_secrets(section: BaseModel, name: str, keys: tuple[str, ...]) -> None:
    """URL-valued keys hold no credential: params.yaml, dvc.lock, git history, experiment refs and Prefect's
    parameters keep a value forever, and no redaction of a message can take it back out of them."""
    for key in keys:
        value = getattr(section, key)
        if value is not None and (secret := url_secret(value)):
            raise ConfigError(
                f"{name}.{key}: {redact(value)} holds {secret}; a URL here is stored in dvc.lock, git history "
                "and experiment refs. Give credentials through the environment, ~/.netrc, ~/.pgpass or a git "
                "credential helper instead (README: Security)"
            )


class DataSettings(Section):
    sampling_rate: Literal[100, 500] = 100


class DownloadSettings(Section):
    source: str = "https://physionet.org/files/ptb-xl/1.0.3/"
    s3_endpoint_url: str | None = None
    s3_unsigned: bool = True
    workers: Positive = 16
    retries: NonNegative = 3
    timeout_s: PositiveFloat = 60.0
    file_deadline_s: PositiveFloat = 600.0
    listing_sha256: str | None = None

    @model_validator(mode="after")
    def _digest(self):
        d = self.listing_sha256
        if d is not None and (len(d) != 64 or any(c not in "0123456789abcdefABCDEF" for c in d)):
            raise ConfigError(f"download.listing_sha256: must be 64 hexadecimal digits (a sha256), got {d!r}")
        return self

    @model_validator(mode="after")
    def _no_secrets(self):
        _refuse_secrets(self, "download", ("source", "s3_endpoint_url"))
        return self


class FilterSettings(Section):
    task: Literal[TASKS] = "subdiagnostic"
    min_class_count: NonNegative = 0
    validated_only: bool = False
    records: Literal["all", "present"] = "all"
    bad_records: Literal["drop", "refuse"] = "drop"
    workers: Positive = 2


class SegmentSettings(Section):
    stride_s: PositiveFloat = 1.25
    train_folds: list[int] = [1, 2, 3, 4, 5, 6, 7, 8]
    val_folds: list[int] = [9]
    test_folds: list[int] = [10]
    rotations: list[Annotated[int, Field(ge=0, le=9)]] = [0]

    @model_validator(mode="after")
    def _disjoint(self):
        if not self.rotations or len(set(self.rotations)) != len(self.rotations):
            raise ConfigError(f"segment.rotations: must be distinct shifts in 0..9, got {self.rotations!r}")
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
        return self


class Margins(Section):
    macro_auroc: NonNegativeFloat = 0.01
    class_auroc: NonNegativeFloat = 0.02
    macro_auprc: NonNegativeFloat = 0.02
    micro_f1: NonNegativeFloat = 0.01
    subset_accuracy: NonNegativeFloat = 0.02
    hamming_loss: NonNegativeFloat = 0.002


QUESTIONS = (
    "recurrence",
    "reference_depth",
    "published_choice",
    "depth",
    "published_figures",
    "context",
    "label_families",
    "adequacy",
    "classes",
    "robustness",
    "learning_curves",
    "overfitting",
)


class Hypotheses(Section):
    primary: list[Literal[QUESTIONS]] = ["recurrence", "reference_depth", "published_choice"]
    secondary: list[Literal[QUESTIONS]] = [
        "depth",
        "published_figures",
        "context",
        "label_families",
        "adequacy",
        "classes",
        "robustness",
        "learning_curves",
        "overfitting",
    ]
    primary_share: Annotated[float, Field(gt=0, le=1)] = 0.8
    primary_classes: NonNegative = 20

    @model_validator(mode="after")
    def _once(self):
        named = [*self.primary, *self.secondary]
        if not self.primary:
            raise ConfigError("study.hypotheses.primary: must name at least one question")
        twice = sorted({q for q in named if named.count(q) > 1})
        if twice:
            raise ConfigError(f"study.hypotheses: {', '.join(twice)} named more than once")
        return self


class StudySettings(Section):
    architectures: list[str] = list(ALL_ARCHITECTURES)
    windows: list[PositiveFloat] = [2.5, 10.0]
    reference: str = "cnn_bilstm1"
    train_fractions: list[Annotated[float, Field(gt=0, le=1)]] = [1.0]
    selection_seeds: NonNegative = 2
    hypotheses: Hypotheses = Hypotheses()
    margins: Margins = Margins()
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05

    @model_validator(mode="after")
    def _grid(self):
        if not self.architectures:
            raise ConfigError("study.architectures: must name at least one architecture")
        for i, name in enumerate(self.architectures):
            if name not in REGISTRY:
                raise ConfigError(
                    f"study.architectures[{i}]: unknown architecture {name!r}; known: {', '.join(REGISTRY)}"
                )
        if len(set(self.architectures)) != len(self.architectures):
            raise ConfigError("study.architectures: names must be unique")
        if self.reference not in self.architectures:
            raise ConfigError(f"study.reference: {self.reference!r} is not in study.architectures")
        if not self.windows:
            raise ConfigError("study.windows: must name at least one window length")
        if len(set(self.windows)) != len(self.windows):
            raise ConfigError(f"study.windows: lengths must be distinct, got {self.windows!r}")
        if not self.train_fractions or len(set(self.train_fractions)) != len(self.train_fractions):
            raise ConfigError(
                f"study.train_fractions: must be distinct shares in (0, 1], got {self.train_fractions!r}"
            )
        return self


class ModelSettings(Section):
    channels: list[Positive] = [64, 64, 128, 128]
    kernel_size: Positive = 7
    hidden: Positive = 128
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3

    @model_validator(mode="after")
    def _channels(self):
        if not self.channels:
            raise ConfigError(f"models.channels: must be positive integers, got {self.channels!r}")
        return self


class TrainSettings(Section):
    epochs: Positive = 40
    batch_size: Positive = 64
    lr: PositiveFloat = 0.003
    weight_decay: NonNegativeFloat = 0.01
    grad_clip: NonNegativeFloat = 1.0
    warmup: Annotated[float, Field(ge=0, lt=1)] = 0.1
    cooldown: Annotated[float, Field(gt=0, le=1)] = 0.25
    patience: Positive | None = 8
    class_weighted: bool = False
    train_score_records: NonNegative = 1000
    augment_snr_db: list[float] | None = None
    seeds: list[NonNegative] = [0, 1, 2, 3, 4]
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = True
    threads: Positive = 1
    cuda_graph: bool = False

    @model_validator(mode="after")
    def _schedule_and_seeds(self):
        if self.warmup + self.cooldown > 1:
            raise ConfigError(
                f"train.warmup + train.cooldown: must not exceed 1, got {self.warmup} + {self.cooldown}"
            )
        if self.augment_snr_db is not None and (
            len(self.augment_snr_db) != 2 or self.augment_snr_db[0] > self.augment_snr_db[1]
        ):
            raise ConfigError(
                f"train.augment_snr_db: expected [low, high] in dB, got {self.augment_snr_db!r}"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(
                f"train.seeds: must be a non-empty list of distinct integers, got {self.seeds!r}"
            )
        return self


class EvaluateSettings(Section):
    aggregate: Literal["max", "mean"] = "max"
    bootstrap: Positive = 1000
    bootstrap_seed: int = 0
    latency_runs: Positive = 30


class DriftSettings(Section):
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    method: Literal["auto", "tests", "distances"] = "auto"
    top: Positive = 10


class RobustnessSettings(Section):
    seed: NonNegative = 0
    noise_source: str | None = None  # where the noise stage downloads nstdb from; None: synthetic generators
    snr_per: Literal["lead", "record"] = "lead"
    # name -> severities; the names and what a severity may be are checked when the robustness stage starts
    corruptions: dict[str, list[float]] = {
        "gaussian": [24.0, 12.0, 6.0],
        "baseline_wander": [24.0, 12.0, 6.0],
        "electrode_motion": [24.0, 12.0, 6.0],
        "muscle": [24.0, 12.0, 6.0],
        "powerline50": [24.0, 12.0, 6.0],
        "powerline60": [24.0, 12.0, 6.0],
        "lead_loss_random": [1.0, 3.0, 6.0],
        "limb_leads_only": [1.0],
        "lead_I_only": [1.0],
        "gain": [0.5, 2.0],
        "time_shift": [0.1, 0.5],
    }

    @model_validator(mode="after")
    def _no_secrets(self):
        _refuse_secrets(self, "robustness", ("noise_source",))
        return self


class StorageSettings(Section):
    publish_url: str | None = None
    endpoint_url: str | None = None

    @model_validator(mode="after")
    def _no_secrets(self):
        _refuse_secrets(self, "storage", ("publish_url", "endpoint_url"))
        return self


OBJECTIVES = ("macro_auroc", "params", "macs", "latency")  # the first is maximized, the costs minimized


class TuneSettings(Section):
    trials: Positive = 12
    epochs: Positive | None = None
    weight_decay: list[PositiveFloat] | None = None

    @model_validator(mode="after")
    def _range(self):
        wd = self.weight_decay
        if wd is not None and (len(wd) != 2 or not wd[0] <= wd[1]):
            raise ConfigError(
                f"search.tune.weight_decay: expected [low, high] with 0 < low <= high, got {wd!r}"
            )
        return self


class SearchSettings(Section):
    trials: Positive = 20
    study_name: str = "ecg-crnn"
    storage: str | None = None
    objectives: list[Literal[OBJECTIVES]] = ["macro_auroc"]
    sampler: Literal["tpe", "nsga2"] = "tpe"
    windows: list[PositiveFloat] = [2.5, 10.0]
    rnn: list[Literal["none", "lstm", "gru"]] = ["none", "lstm", "gru"]
    bidirectional: list[bool] = [False, True]
    depth: list[Annotated[int, Field(ge=1, le=3)]] = [1, 2, 3]
    hidden: list[Positive] = [64, 128, 256]
    dropout: list[NonNegativeFloat] = [0.1, 0.5]
    lr: list[NonNegativeFloat] = [0.0003, 0.01]
    epochs: Positive = 20
    pruner: Literal["median", "hyperband", "none"] = "median"
    seed: NonNegative = 1000
    tune: TuneSettings = TuneSettings()
    heartbeat_s: Positive = 30
    retries: int = 2
    mode: Literal["local", "pool"] = "local"
    work_pool: str = "ecg-crnn"
    workers: Positive = 2
    worker_timeout_s: Positive = 300
    flow_heartbeat_s: int = 30
    stale_after_s: int = 100
    promote_timeout_s: Positive = 259200

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @model_validator(mode="after")
    def _space(self):
        _prefect_heartbeats("search", self.flow_heartbeat_s, self.stale_after_s)
        _refuse_secrets(self, "search", ("storage",))
        if problem := pool_problem(self.work_pool):
            raise ConfigError(f"search.work_pool: {self.work_pool!r}: {problem}")
        for key in ("windows", "rnn", "bidirectional", "hidden", "dropout", "lr"):
            if not getattr(self, key):
                raise ConfigError(f"search.{key}: the search space is empty")
        if any(r != "none" for r in self.rnn) and not self.depth:
            raise ConfigError("search.depth: needs a depth in 1..3 when search.rnn includes lstm or gru")
        for key in ("dropout", "lr"):
            lo_hi = getattr(self, key)
            if len(lo_hi) != 2 or not lo_hi[0] <= lo_hi[1]:
                raise ConfigError(f"search.{key}: expected [low, high] with 0 <= low <= high, got {lo_hi!r}")
        if self.dropout[1] >= 1:
            raise ConfigError(f"search.dropout: must stay below 1, got {self.dropout!r}")
        if self.lr[0] <= 0:
            raise ConfigError(f"search.lr: must be > 0, got {self.lr!r}")
        if (
            not self.objectives
            or self.objectives[0] != "macro_auroc"
            or len(set(self.objectives)) != len(self.objectives)
        ):
            raise ConfigError(
                "search.objectives: macro_auroc first, then any of params, macs, latency once each, "
                f"got {self.objectives!r}"
            )
        return self


def _prefect_heartbeats(section: str, every_s: int, stale_after_s: int) -> None:
    # Prefect sends flow-run heartbeats at most every 30 s; a run is stale only after two are missed.
    key = "heartbeat_s" if section == "grid" else "flow_heartbeat_s"
    if every_s < 30:
        raise ConfigError(f"{section}.{key}: Prefect sends heartbeats at most every 30 s, got {every_s}")
    if stale_after_s <= 2 * every_s:
        raise ConfigError(
            f"{section}.stale_after_s: must exceed two heartbeats (2 x {section}.{key} = {2 * every_s}), "
            f"got {stale_after_s}"
        )


class GridSettings(Section):
    work_pool: str = "ecg-crnn"
    git_remote: str | None = None
    resume_root: str | None = None
    heartbeat_s: int = 30
    stale_after_s: int = 100
    retries: NonNegative = 2
    worker_timeout_s: Positive = 600
    command_timeout_s: Positive = 86400
    jobs_per_gpu: Positive = 1

    @model_validator(mode="after")
    def _heartbeats(self):
        _prefect_heartbeats("grid", self.heartbeat_s, self.stale_after_s)
        if self.git_remote is not None and (problem := git_url_problem(self.git_remote, remote_name_ok=True)):
            raise ConfigError(f"grid.git_remote: {redact(self.git_remote)!r}: {problem}")
        if problem := pool_problem(self.work_pool):
            raise ConfigError(f"grid.work_pool: {self.work_pool!r}: {problem}")
        return self


class RetrainSettings(Section):
    cron: str = "0 3 * * 0"
    timezone: str = "UTC"
    publish: bool = True
    timeout_s: Positive = 259200


class Params(Section):
    data: DataSettings = DataSettings()
    download: DownloadSettings = DownloadSettings()
    filter: FilterSettings = FilterSettings()
    segment: SegmentSettings = SegmentSettings()
    study: StudySettings = StudySettings()
    models: ModelSettings = ModelSettings()
    train: TrainSettings = TrainSettings()
    evaluate: EvaluateSettings = EvaluateSettings()
    drift: DriftSettings = DriftSettings()
    robustness: RobustnessSettings = RobustnessSettings()
    storage: StorageSettings = StorageSettings()
    search: SearchSettings = SearchSettings()
    grid: GridSettings = GridSettings()
    retrain: RetrainSettings = RetrainSettings()

    @model_validator(mode="after")
    def _seeds(self):
        # a contrast's seed part needs a seed variance: at least 2 seeds on each side of it
        seeds, n = self.train.seeds, self.study.selection_seeds
        if len(seeds) < 2:
            raise ConfigError(
                f"train.seeds: the study needs at least 2 seeds (a seed variance), got {seeds!r}"
            )
        if n and len(seeds) - n < 2:
            raise ConfigError(
                f"study.selection_seeds: {n} of the {len(seeds)} train.seeds select, leaving "
                f"{len(seeds) - n} to confirm; confirmation needs at least 2 (or set 0: no separate selection)"
            )
        if self.search.seed in seeds:
            raise ConfigError(
                f"search.seed: {self.search.seed} is also in train.seeds {seeds}; the search trains with a seed of "
                "its own, so that what it chooses is tested on seeds that took no part in the choice"
            )
        return self


# ---- messages that name the key -------------------------------------------------------------------------

_TYPE_NAMES = {
    "int_type": "int",
    "float_type": "float",
    "string_type": "str",
    "bool_type": "bool",
    "list_type": "a list",
    "model_type": "a mapping",
    "dict_type": "a mapping",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _dotted(loc: tuple) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _section_of(loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the last key of `loc` (for the list of known keys or allowed values)."""
    model: Any = Params
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        tp = field.annotation if field else None
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            break
        model = tp
    return model


def _literal_values(tp) -> tuple:
    """The values of the Literal inside an annotation (Literal[...], list[Literal[...]], Literal[...] | None)."""
    if getattr(tp, "__origin__", None) is Literal:
        return get_args(tp)
    for arg in get_args(tp):
        if values := _literal_values(arg):
            return values
    return ()


def _allowed(loc: tuple) -> str:
    model = _section_of(loc)
    name = next((p for p in reversed(loc) if isinstance(p, str) and model and p in model.model_fields), None)
    return ", ".join(map(str, _literal_values(model.model_fields[name].annotation))) if name else ""


def describe(error: dict) -> str:
    """One pydantic error as today's messages put it: the dotted key, what is wrong, the bad value."""
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    key = _dotted(loc)
    if kind == "extra_forbidden":
        parent = _dotted(loc[:-1])
        model = _section_of(loc)
        known = ", ".join(model.model_fields) if model else ""
        return f"unknown key {key} (known keys{' in ' + parent if parent else ''}: {known})"
    if kind == "literal_error":
        return f"{key}: {value!r} is not one of {_allowed(loc)}"
    if kind in _TYPE_NAMES:
        return f"{key or 'params'}: expected {_TYPE_NAMES[kind]}, got {value!r}"
    if kind in _BOUNDS:
        bound = next(iter(error["ctx"].values()))
        return f"{key}: must be {_BOUNDS[kind]} {bound:g}, got {value!r}"
    return f"{key}: {error['msg']}, got {value!r}"


def from_dict(raw: Any) -> Params:
    if raw is None:
        raw = {}
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(exc.errors()[0])) from None


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


def load_params_or_defaults(path: str | Path) -> Params:
    """params.yaml when it exists (predict and export work from a bare model folder too), else the defaults."""
    return load_params(path) if Path(path).is_file() else Params()
