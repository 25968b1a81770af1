"""Which code made a result: the source files of the ecg_crnn modules a run has loaded, with their sha256.

This is the list DVC uses for a stage's code deps (tests/test_stage_deps.py records the modules a real run of each
stage imports and requires dvc.yaml's `deps:` to equal them), so a resumed training run and DVC agree on what
"the same code" means: a change to any module in the train stage's import closure (data/windows.py as much as
training.py) is a change of the run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .hashing import sha256_file

PACKAGE = Path(__file__).resolve().parent
# Modules whose change cannot change a stage's output: the parameters are DVC params (config.py, and what it uses
# to check them: shapes, redaction); errors, atomic writes, the layout of paths (dvc.yaml passes every path
# explicitly), the CLI that maps arguments onto a stage's run() and package markers do not touch the numbers.
NEUTRAL = frozenset(
    {"config.py", "errors.py", "atomic.py", "layout.py", "cli.py", "__main__.py", "redaction.py", "shapes.py"}
)


def is_code_dep(relpath: str) -> bool:
    """A module file (relative to the package) that counts as a stage's code: not neutral, no package marker."""
    return Path(relpath).name != "__init__.py" and relpath not in NEUTRAL


def loaded_code_files(modules=None) -> list[str]:
    """The package-relative files of the ecg_crnn modules loaded now (or in `modules`), neutral ones left out."""
    out = set()
    for name, module in list((modules if modules is not None else sys.modules).items()):
        if name.split(".")[0] != "ecg_crnn" or not getattr(module, "__file__", None):
            continue
        path = Path(module.__file__).resolve()
        if path.is_relative_to(PACKAGE):
            rel = path.relative_to(PACKAGE).as_posix()
            if is_code_dep(rel):
                out.add(rel)
    return sorted(out)


def code_fingerprint(modules=None) -> dict[str, str]:
    """{package-relative file: sha256} of the code loaded now (see loaded_code_files)."""
    return {rel: sha256_file(PACKAGE / rel) for rel in loaded_code_files(modules)}
