"""Writing an imported network as a spec (`import_graph`): the recognised statements in
canonical form at α = 1, unknown operations as comments, repeats compressed, built back at the
imported resolution and checked to reproduce the network's shapes layer for layer."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ..engine.cost import layer_cost
from ..lang.parse import parse
from ..lang.spec import Layer, LayerDef, Repeat, Residual, Spec, build, format_spec
from ..lang.spec import Node as SpecNode
from ..lang.values import Channels, Rounding
from .blocks import _stmts_of_residual
from .graph import (
    Graph,
    ModelImportError,
    Shape,
    fuse_activations,
    propagate,
    shape_text,
    walk,
    without_identities,
)
from .recognise import recognise
from .statements import Ctx, Stmt, Unknown

# --------------------------------------------------------------------------- the import

def parse_rounding(text: str) -> Rounding:
    """`int`, `int min=N`, `multiple N` (or `multiple:N`): the spec's rounding line."""
    words = text.replace(":", " ").split()
    if words == ["int"]:
        return Rounding("int")
    if len(words) == 2 and words[0] == "int" and re.fullmatch(r"min=[1-9][0-9]*", words[1]):
        return Rounding("int", min=int(words[1][4:]))
    if len(words) == 2 and words[0] == "multiple" and re.fullmatch(r"[1-9][0-9]*", words[1]):
        return Rounding("multiple", divisor=int(words[1]))
    raise ModelImportError(f"--rounding must be 'int', 'int min=N' or 'multiple N', got {text!r}")


@dataclass
class Imported:
    """A network read into a spec: the spec, its text, and what it could not express."""

    spec: Spec
    text: str
    unknown: list[Unknown]
    total_macs: int  # the network's Mult-Adds: the spec's plus the unknown operations'
    layers: tuple[Layer, ...]  # the spec built at α = 1 and the imported resolution
    rows: list[dict]  # every layer and unknown operation in order, for comparisons

    @property
    def unknown_macs(self) -> int:
        return sum(u.macs for u in self.unknown)


def import_graph(g: Graph, rounding: Rounding = Rounding(), allow_unknown: bool = False) -> Imported:
    """The spec of a network: recognised statements, checked by building it back."""
    if not any(n.op == "conv" for n in g.nodes):
        raise ModelImportError(f"{g.origin}: the network has no convolution; mobilecost "
                               f"imports convolutional networks")
    g = fuse_activations(without_identities(g))
    shapes = propagate(g)
    out = shapes[g.output]
    ctx = Ctx(g, shapes)
    stmts = recognise(walk(g), ctx, fold=True, rounding=rounding)
    unknown = [s.node for s in _flat(stmts) if isinstance(s.node, Unknown)]
    if unknown and not allow_unknown:
        lines = [f"{u.text()}: {u.advice}" for u in unknown[:5]]
        more = f"; and {len(unknown) - 5:,} more" if len(unknown) > 5 else ""
        raise ModelImportError(f"{g.origin}: {len(unknown)} operation(s) the spec cannot "
                               f"express: " + "; ".join(lines) + more
                               + " (--allow-unknown writes them as comments)")
    # the classifier's width and the input channels never scale
    fcs = [s for s in stmts if isinstance(s.node, LayerDef) and s.node.op == "fc"]
    if fcs and fcs[-1] is stmts[-1]:
        d = fcs[-1].node
        fcs[-1].node = d.replace(channels=Channels(d.channels.base, "fixed"))
    _check_rounding(stmts, rounding, g)
    acts = Counter(d.act for d in _layer_defs(stmts) if d.op in ("conv", "dw", "pw"))
    default_act = max(acts, key=lambda a: (acts[a], a != "none")) if acts else "relu"
    body = tuple(_with_default_act(s.node, default_act) for s in stmts
                 if not isinstance(s.node, Unknown))
    body = compress(body)
    if not body:
        raise ModelImportError(f"{g.origin}: nothing of the network is expressible as a spec")
    spec = Spec(name=g.name, resolution=g.resolution, in_channels=Channels(g.in_channels, "fixed"),
                body=body, rounding=rounding, activation=default_act, source=g.origin)
    text = _text_with_comments(spec, stmts, default_act)
    spec = parse(text, source=g.origin)  # the text is what is written: check it reads back
    layers = build(spec, 1, g.resolution)
    rows = _rows(layers, stmts)
    _check_shapes(layers, stmts, g, out)
    total = sum(r["macs"] for r in rows)
    return Imported(spec, text, unknown, total, layers, rows)


def _flat(stmts: list[Stmt]):
    for s in stmts:
        yield s
        if isinstance(s.node, Residual):
            yield from _flat(_stmts_of_residual(s))


def _layer_defs(stmts: list[Stmt]):
    for s in stmts:
        if isinstance(s.node, LayerDef):
            yield s.node
        elif isinstance(s.node, Residual):
            yield from _layer_defs(_stmts_of_residual(s))


def _with_default_act(node: SpecNode, act: str) -> SpecNode:
    """A statement with its activation left to the spec's default where it is that default."""
    if isinstance(node, Residual):
        return Residual(tuple(_with_default_act(n, act) for n in node.body))
    if node.op in ("conv", "dw", "pw", "ir", "mixdw") and node.act == act:
        return node.replace(act=None)
    return node


def _check_rounding(stmts: list[Stmt], rounding: Rounding, g: Graph) -> None:
    for s in _flat(stmts):
        d = s.node
        if isinstance(d, LayerDef) and d.channels is not None:
            got = rounding.apply(d.channels, 1)
            if got != d.channels.base:
                raise ModelImportError(
                    f"{g.origin}: {s.names[0]} has {d.channels.base} channels, which rounding "
                    f"'{rounding}' writes as {got} at α = 1; use --rounding int")


def _text_with_comments(spec: Spec, stmts: list[Stmt], act: str) -> str:
    """The canonical text, with each unknown operation as a comment where it stood."""
    if not any(isinstance(s.node, Unknown) for s in _flat(stmts)):
        return format_spec(spec)
    lines = format_spec(spec).splitlines()[:4]
    run: list = []

    def flush() -> None:
        if run:
            one = Spec(spec.name, spec.resolution, spec.in_channels, compress(tuple(run)),
                       spec.rounding, spec.activation)
            lines.extend(format_spec(one).splitlines()[4:])
            run.clear()

    for s in stmts:
        if isinstance(s.node, Unknown):
            flush()
            u = s.node
            lines.append(f"# unknown: {u.text()}: {shape_text(u.in_shape)} -> "
                         f"{shape_text(u.out_shape)}, {u.macs:,} Mult-Adds")
        else:
            run.append(_with_default_act(s.node, act))
    flush()
    return "\n".join(lines) + "\n"


def compress(nodes: tuple) -> tuple:
    """Runs of a statement, or of a group of up to 4 statements, written as `repeat N { }`.
    Read from the end: at each position the group that covers the most statements (the
    shortest on a tie), so that a stage's first, different layer stays outside its repeat
    (`pw 512` then `repeat 5 { dw 3; pw 512 }`, as MobileNet v1 is written)."""
    nodes = tuple(Residual(compress(n.body), n.line) if isinstance(n, Residual) else n
                  for n in nodes)
    out: list = []
    j = len(nodes)
    while j > 0:
        best = (1, 1)  # (group size, count)
        for p in range(1, 5):
            if j - p < 0:
                break
            group = nodes[j - p:j]
            count = 1
            while j - (count + 1) * p >= 0 and nodes[j - (count + 1) * p:j - count * p] == group:
                count += 1
            if count > 1 and count * p > best[0] * best[1]:
                best = (p, count)
        p, count = best
        out.append(Repeat(count, nodes[j - p:j]) if count > 1 else nodes[j - 1])
        j -= p * count
    return tuple(reversed(out))


def _rows(layers: tuple[Layer, ...], stmts: list[Stmt]) -> list[dict]:
    """One row per built layer and per unknown operation, in the network's order."""
    rows: list[dict] = []
    it = iter(layers)
    for s in stmts:
        if isinstance(s.node, Unknown):
            u = s.node
            rows.append({"layer": u.text(), "op": "unknown", "kind": "unknown",
                         "input": shape_text(u.in_shape), "output": shape_text(u.out_shape),
                         "macs": u.macs, "params": None})
        else:
            for _ in range(s.layers):
                rows.append(layer_row(next(it)))
    return rows


def layer_row(layer: Layer) -> dict:
    c = layer_cost(layer)
    return {"layer": str(layer.index + 1), "op": layer.op, "kind": layer.kind.value,
            "input": f"{layer.in_size}×{layer.in_size}×{layer.in_channels}",
            "output": f"{layer.out_size}×{layer.out_size}×{layer.out_channels}",
            "macs": c.macs, "params": c.params}


def _check_shapes(layers: tuple[Layer, ...], stmts: list[Stmt], g: Graph, out: Shape) -> None:
    """The built spec must map each statement's input to its output as the network does."""
    it = iter(layers)
    for s in stmts:
        if isinstance(s.node, Unknown):
            continue
        built = [next(it) for _ in range(s.layers)]
        first, last = built[0], built[-1]
        got_in = (first.in_channels, first.in_size, first.in_size)
        got_out = (last.out_channels, last.out_size, last.out_size)
        want_in = s.in_shape if len(s.in_shape) == 3 else (s.in_shape[0], 1, 1)
        want_out = s.out_shape if len(s.out_shape) == 3 else (s.out_shape[0], 1, 1)
        if got_in != want_in or got_out != want_out:
            raise ModelImportError(
                f"{g.origin}: at {s.names[0]} the network maps {shape_text(want_in)} to "
                f"{shape_text(want_out)} but the spec maps {shape_text(got_in)} to "
                f"{shape_text(got_out)}"
                + (" (an unknown operation before it changes the shape)"
                   if any(isinstance(x.node, Unknown) for x in stmts) else ""))
