"""Imports point one way: spec -> cost -> grid/sweep -> latency -> report -> cli, with
mobilecost.util beneath them all; only mobilecost/cli imports typer and rich, only
mobilecost/torch imports torch; no two modules import each other, directly or round a loop."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mobilecost"


def _modules():
    out = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


MODULES = _modules()


def _walk_runtime(tree):
    """ast.walk, leaving out `if TYPE_CHECKING:` blocks (imports for type hints only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if (isinstance(child, ast.If) and isinstance(child.test, ast.Name)
                    and child.test.id == "TYPE_CHECKING"):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def _imports(name):
    """Every module `name` imports, at the top or inside a function (absolute names)."""
    f = MODULES[name]
    here = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in _walk_runtime(ast.parse(f.read_text())):
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


def test_third_party_boundaries():
    for m in MODULES:
        roots = {d.split(".")[0] for d in _imports(m)}
        if not m.startswith("mobilecost.cli"):
            assert not roots & {"typer", "rich", "click"}, m
        if not m.startswith("mobilecost.torch"):
            assert "torch" not in roots and "fvcore" not in roots, m


def test_util_and_report_sit_beneath_the_rest():
    assert GRAPH["mobilecost.util"] == set()
    assert GRAPH["mobilecost.report"] <= {"mobilecost.util", "mobilecost.errors"}


def test_the_model_imports_no_presentation():
    presentation = {"mobilecost.report", "mobilecost.plots", "mobilecost.sweepreport",
                    "mobilecost.tables"}
    for m in ("mobilecost.spec", "mobilecost.cost", "mobilecost.grid", "mobilecost.gridcost",
              "mobilecost.latency", "mobilecost.targets", "mobilecost.accuracy"):
        assert not GRAPH[m] & presentation, (m, GRAPH[m] & presentation)
        assert not any(d.startswith("mobilecost.cli") for d in GRAPH[m]), m


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
