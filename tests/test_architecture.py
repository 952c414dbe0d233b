"""The layers of ../shared/DESIGN.md hold: each layer imports only the layers below it, nothing below cli/
imports click, no module imports another's private names, and there are no import cycles.

Read from the source with ast, so a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "diagkit"

# Lowest first. A module may import its own layer and the layers before it; the three middle layers
# (probes, the redactor, packets) may not import one another.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "findings", "visible", "scrub", "config", "fsutil", "gcpause", "context", "catalogue", "probe",
     "schemas"),
    ("formats",),
    ("diagnosis", "runner", "plugins"),
    ("collectors", "redact", "packet"),
    ("casework",),
    ("cli", "__main__"),
]
SIBLINGS = {"collectors", "redact", "packet"}


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _rank(module: str) -> int:
    part = _part(module)
    if part == "__init__":
        return 0
    return next(i for i, names in enumerate(LAYERS) if part in names)


def _module_name(path: Path) -> str:
    name = ".".join(("diagkit", *path.relative_to(PACKAGE).with_suffix("").parts))
    return name.removesuffix(".__init__")


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


@functools.cache
def _imports() -> dict[str, list[tuple[str, list[str], int]]]:
    """module -> [(imported module, names imported from it, line)]; `from pkg import mod` counts as mod."""
    found: dict[str, list[tuple[str, list[str], int]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        rows = found.setdefault(module, [])
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                rows += [(alias.name, [], node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [alias.name for alias in node.names]
                submodules = [f"{node.module}.{n}" for n in names if _is_module(f"{node.module}.{n}")]
                if node.module.startswith("diagkit") and submodules and len(submodules) == len(names):
                    rows += [(sub, [], node.lineno) for sub in submodules]
                else:
                    rows.append((node.module, names, node.lineno))
    return found


def _internal() -> dict[str, list[tuple[str, list[str], int]]]:
    return {m: [row for row in rows if row[0].startswith("diagkit")] for m, rows in _imports().items()}


def test_the_scan_sees_the_package():
    # Guards the checks below against silently scanning nothing.
    imports = _imports()
    assert len(imports) > 100
    assert ("diagkit.formats.urls", ["split_host_port"]) in [(m, n) for m, n, _ in imports["diagkit.collectors.tls.probe"]]
    assert any(m == "click" for m, _, _ in imports["diagkit.cli.probe"])
    assert any(m == "diagkit.formats.har" for m, _, _ in imports["diagkit.redact.engine"])  # lazy, inside a function


def test_every_module_belongs_to_a_layer():
    for module in _imports():
        _rank(module)  # StopIteration names a folder or module DESIGN.md has no place for


def test_each_layer_imports_only_the_layers_below():
    wrong = []
    for module, rows in _internal().items():
        for target, _, line in rows:
            mine, theirs = _part(module), _part(target)
            if _rank(target) > _rank(module) or (mine in SIBLINGS and theirs in SIBLINGS and mine != theirs):
                wrong.append(f"{module}:{line} imports {target}")
    assert not wrong, wrong


def test_nothing_below_cli_imports_click():
    wrong = [f"{module}:{line}" for module, rows in _imports().items() for target, _, line in rows
             if target.split(".")[0] == "click" and _part(module) not in ("cli", "__main__")]
    assert not wrong, wrong


def test_no_module_imports_another_s_private_names():
    wrong = [f"{module}:{line} {target}.{name}" for module, rows in _internal().items()
             for target, names, line in rows for name in names
             if name.startswith("_") and not name.endswith("__")]
    assert not wrong, wrong


def test_no_import_cycles():
    from graphlib import CycleError, TopologicalSorter

    graph = {m: {t for t, _, _ in rows if t in _imports() and t != m} for m, rows in _internal().items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
