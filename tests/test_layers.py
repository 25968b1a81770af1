"""The house's floors: no module imports one of a higher floor, no two import each other in a circle, and no
function grows past ~60 lines without a stated reason."""

import ast
from pathlib import Path

from .helpers.paths import REPO

SRC = REPO / "src" / "ecg_crnn"
# Bottom to top: what the project stands on; the data layer; models and metrics; what reads their results
# (analysis, report, search, prediction, drift, publishing); the stages; the entry points. README's "Layout" names
# the same floors.
FLOORS = [
    (
        "base",
        {
            "errors",
            "atomic",
            "hashing",
            "redaction",
            "shapes",
            "markup",
            "provenance",
            "registry",
            "config",
            "recipe",
            "layout",
            "s3",
            "schedule",
            "resources",
        },
    ),
    ("data", {"data"}),
    (
        "model",
        {
            "metrics",
            "shared_data",
            "dataset",
            "models",
            "artifact",
            "resume",
            "train_step",
            "training",
            "evaluation",
            "cost",
            "robustness",
        },
    ),
    ("results", {"analysis", "report", "search", "inference", "drift", "publish"}),
    ("stages", {"stages"}),
    ("entry", {"cli", "__main__", "grid"}),
]
# Functions that are long for a reason (a table or a sequence that reads best whole).
LONG = {
    # the renderer of one synthetic record: template, beats, noise, in the order a reader follows them
    "src/ecg_crnn/data/synthetic.py:render",
}


def _floor(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else ""
    for i, (_, names) in enumerate(FLOORS):
        if top in names:
            return i
    raise AssertionError(f"{module}: on no floor; add it to FLOORS (and to README's layout)")


def _module(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ecg_crnn module `path` imports, at the top or inside a function (lazy imports count)."""
    here = _module(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "ecg_crnn"}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if mod.split(".")[0] != "ecg_crnn":
                continue
            for a in node.names:  # `from . import layout` names a module, `from .x import f` a name in x
                sub = f"{mod}.{a.name}"
                out.add(sub if (SRC.parent / Path(*sub.split("."))).with_suffix(".py").exists() else mod)
    return out


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in SRC.rglob("*.py")}


def test_no_module_imports_a_higher_floor():
    wrong = []
    for name, path in _modules().items():
        for dep in _imports(path):
            if dep != "ecg_crnn" and _floor(dep) > _floor(name):
                wrong.append(f"{name} ({FLOORS[_floor(name)][0]}) imports {dep} ({FLOORS[_floor(dep)][0]})")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    graph = {name: {d for d in _imports(p) if d != name} for name, p in _modules().items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError("import circle: " + " -> ".join([*trail, node]))
        if state.get(node) == 2 or node not in graph:
            return
        state[node] = 1
        for nxt in graph[node]:
            if nxt.startswith(node + ".") and node in graph and _modules()[node].name == "__init__.py":
                continue  # a package importing its own submodule is no circle back to itself
            visit(nxt, [*trail, node])
        state[node] = 2

    for name in graph:
        visit(name, [])


def test_functions_stay_short():
    long = []
    for path in [*SRC.rglob("*.py"), *(REPO / "flows").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                key = f"{path.relative_to(REPO)}:{node.name}"
                if lines > 60 and key not in LONG:
                    long.append(f"{key} ({lines} lines)")
    assert not long, "longer than 60 lines without a stated reason in LONG: " + ", ".join(long)
