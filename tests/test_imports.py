"""Imports point one way, package by package, in the order of the data flow:

    base (errors, util, dtypes, runtimes) -> lang -> engine -> latency -> importing -> torch
    -> reports -> cli

A module imports from its own package and from the packages before it, never after; only
mobilecost/cli imports typer and rich; only mobilecost/torch imports torch and fvcore; no
two modules import each other, directly or round a loop, type-only imports included; at most
8 modules sit directly in mobilecost/.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mobilecost"

ORDER = ("base", "lang", "engine", "latency", "importing", "torch", "reports", "cli", "top")
BASE = ("errors", "util", "dtypes", "runtimes")


def _modules():
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _imports(name):
    """Every module `name` imports, at the top, inside a function or for type hints only."""
    f = MODULES[name]
    here = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                found.add(full if full in MODULES else base)
    return found


GRAPH = {m: {d for d in _imports(m) if d in MODULES and d != m} for m in MODULES}


def layer(module: str) -> str:
    """The package of the data flow a module belongs to (see ORDER)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "top"
    if len(parts) == 2 and parts[1] in BASE:
        return "base"
    assert parts[1] in ORDER, f"{module}: not in a package of the data flow"
    return parts[1]


def test_every_module_is_in_a_package_of_the_data_flow():
    top = sorted(m for m in MODULES if m.count(".") == 1 and MODULES[m].name != "__init__.py")
    assert len(top) + 1 <= 8, top  # + mobilecost/__init__.py
    for m in MODULES:
        layer(m)


def test_imports_point_one_way():
    backwards = [f"{m} -> {d}" for m in sorted(GRAPH) for d in sorted(GRAPH[m])
                 if ORDER.index(layer(d)) > ORDER.index(layer(m))
                 and not (layer(m) == "cli" and d == "mobilecost")]  # cli: __version__
    assert not backwards, backwards


def test_third_party_boundaries():
    for m in MODULES:
        roots = {d.split(".")[0] for d in _imports(m)}
        if not m.startswith("mobilecost.cli"):
            assert not roots & {"typer", "rich", "click"}, m
        if not m.startswith("mobilecost.torch"):
            assert "torch" not in roots and "fvcore" not in roots, m


def test_no_import_cycles():
    # packages (their __init__) re-export their modules; a loop must run through modules alone
    packages = {m for m, f in MODULES.items() if f.name == "__init__.py"}
    graph = {m: GRAPH[m] - packages for m in MODULES if m not in packages}
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_the_tests_mirror_the_packages():
    tests = Path(__file__).resolve().parent
    folders = {p.parent.name for p in tests.rglob("test_*.py") if p.parent != tests}
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert folders <= packages, folders - packages
    assert not [p for p in tests.glob("test_*.py") if p.name not in (
        "test_imports.py", "test_ci.py", "test_bench.py")]  # the whole project's, at the top
