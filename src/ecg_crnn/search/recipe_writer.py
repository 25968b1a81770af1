"""Writing tuned entries into recipe.yaml: atomically, and keeping the file as people wrote it.

The file is read and written back with ruamel.yaml's round trip, so its comments, its key order and the entries
not being written stay as they were; only the named (architecture, window) entries and their provenance change.
The new text is validated as a recipe file before it replaces the old one in one rename (atomic.write_text), so a
reader (a train stage, `dvc status`) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from ..atomic import write_text
from ..recipe import KEYS, parse_recipes

SIGNIFICANT = 4  # digits a tuned value is written with: far finer than any difference a seed could show


def _yaml() -> YAML:
    yaml = YAML()  # round trip
    yaml.width = 200  # one provenance entry per line
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _block(parent: CommentedMap, key: str) -> CommentedMap:
    """parent[key] as a block-style mapping (an empty `{}` or a missing key becomes one); existing keys kept."""
    current = parent.get(key)
    if not isinstance(current, CommentedMap) or (not len(current) and current.fa.flow_style()):
        fresh = CommentedMap(current or {})
        fresh.fa.set_block_style()
        parent[key] = current = fresh
    return current


def _flow(values: dict) -> CommentedMap:
    entry = CommentedMap(values)
    entry.fa.set_flow_style()
    return entry


def _rounded(value):
    return float(f"{value:.{SIGNIFICANT}g}") if isinstance(value, float) else value


def recipe_text(text: str, entries: dict) -> str:
    """`text` (recipe.yaml) with `entries` {(arch, window key): (entry, provenance)} written in."""
    yaml = _yaml()
    doc = yaml.load(text) if text.strip() else CommentedMap()
    doc = doc if isinstance(doc, CommentedMap) else CommentedMap()
    recipes, tuning = _block(doc, "recipes"), _block(doc, "tuning")
    for (arch, window), (entry, provenance) in entries.items():
        _block(recipes, arch)[window] = _flow({k: _rounded(float(entry[k])) for k in KEYS})
        _block(tuning, arch)[window] = _flow({k: _rounded(v) for k, v in provenance.items()})
    out = io.StringIO()
    yaml.dump(doc, out)
    return out.getvalue()


def write_recipe(path: Path, entries: dict) -> None:
    """Write `entries` into the recipe file at `path` (created if missing), atomically."""
    path = Path(path)
    text = recipe_text(path.read_text() if path.is_file() else "", entries)
    import yaml as pyyaml

    parse_recipes(pyyaml.safe_load(text))  # never replace a readable file with one the train stage refuses
    write_text(path, text)
