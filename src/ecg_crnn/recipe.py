"""The training recipe per architecture and window: which peak learning rate, dropout and weight decay a run
trains with, read from recipe.yaml (a DVC params file beside params.yaml).

recipe.yaml's `recipes.ARCH.WINDOWs` entries are what `python flows/search.py --tune` chose on the validation
fold (or what a user wrote); an (architecture, window) without an entry trains with params.yaml's shared default
(train.lr, models.dropout, train.weight_decay) and is "not tuned". Each train stage tracks its architecture's
entry (`recipes.ARCH`, all its windows: DVC splits a params key at dots, so "2.5s" cannot be a key of its own),
so changing one architecture's recipe re-runs that architecture's stages only. `tuning` holds the provenance
of each tuned entry (trials, epochs, seed, validation folds, date, the search's best value); training never
reads it, so re-tuning to the same values retrains nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, model_validator

from .config import (
    ConfigError,
    ModelSettings,
    NonNegativeFloat,
    Params,
    PositiveFloat,
    Section,
    TrainSettings,
)
from .registry import REGISTRY

RECIPE_FILE = "recipe.yaml"
KEYS = ("lr", "dropout", "weight_decay")


def window_key(window_s: float) -> str:
    """2.5 -> "2.5s", 10.0 -> "10s": a window's key inside an architecture's entry (as its folder is named)."""
    return f"{float(window_s):g}s"


class RecipeEntry(Section):
    lr: PositiveFloat
    dropout: Annotated[float, Field(ge=0, lt=1)]
    weight_decay: NonNegativeFloat


class RecipeFile(Section):
    recipes: dict[str, dict[str, RecipeEntry] | None] = {}
    tuning: dict[str, dict[str, dict[str, Any]] | None] | None = None

    @model_validator(mode="after")
    def _names(self):
        for section in ("recipes", "tuning"):
            for arch, windows in (getattr(self, section) or {}).items():
                if arch not in REGISTRY:
                    raise ConfigError(f"{section}.{arch}: unknown architecture; known: {', '.join(REGISTRY)}")
                for key in windows or {}:
                    if not (key.endswith("s") and _is_number(key[:-1]) and float(key[:-1]) > 0):
                        raise ConfigError(f"{section}.{arch}.{key}: a window is written like 2.5s or 10s")
        return self

    def entry(self, arch: str, window_s: float) -> RecipeEntry | None:
        windows = self.recipes.get(arch) or {}
        return next((e for k, e in windows.items() if float(k[:-1]) == float(window_s)), None)

    def provenance(self, arch: str, window_s: float) -> dict | None:
        windows = (self.tuning or {}).get(arch) or {}
        return next((p for k, p in windows.items() if float(k[:-1]) == float(window_s)), None)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Recipe:
    """What one (architecture, window) trains with, and whether it is its own (tuned) or the shared default."""

    lr: float
    dropout: float
    weight_decay: float
    tuned: bool

    def as_dict(self) -> dict:
        return asdict(self)

    def settings(self, params: Params) -> tuple[ModelSettings, TrainSettings]:
        """The model and training settings of params.yaml with this recipe's values in place."""
        return (
            params.models.replaced(dropout=self.dropout),
            params.train.replaced(lr=self.lr, weight_decay=self.weight_decay),
        )


def default_recipe(params: Params) -> Recipe:
    """params.yaml's shared recipe: the same for every architecture, not tuned."""
    return Recipe(params.train.lr, params.models.dropout, params.train.weight_decay, tuned=False)


def recipe_for(recipes: RecipeFile | None, params: Params, arch: str, window_s: float) -> Recipe:
    entry = recipes.entry(arch, window_s) if recipes is not None else None
    if entry is None:
        return default_recipe(params)
    return Recipe(entry.lr, entry.dropout, entry.weight_decay, tuned=True)


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        known = ", ".join(KEYS) if len(error["loc"]) == 4 else "recipes, tuning"
        return f"unknown key {key} (known keys: {known})"
    return f"{key or 'recipe'}: {error['msg']}, got {error.get('input')!r}"


def parse_recipes(raw: Any) -> RecipeFile:
    try:
        return RecipeFile.model_validate(raw or {})
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors()[0])) from None


def load_recipes(path: str | Path) -> RecipeFile:
    """recipe.yaml, validated; every error names the file and the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such recipe file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return parse_recipes(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def recipe_beside(params_path: str | Path) -> Path:
    """Where a params file's recipe lives when none is named: recipe.yaml in the same folder."""
    return Path(params_path).with_name(RECIPE_FILE)
