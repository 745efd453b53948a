"""The statements recognisers make of a graph's items: a spec statement with the graph nodes
it came from (`Stmt`), an operation the spec cannot express kept with its measured cost
(`Unknown`), and what a recogniser is given (`Ctx`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .graph import (
    Branch,
    Graph,
    Node,
    Shape,
)

# --------------------------------------------------------------------------- recognisers

@dataclass
class Unknown:
    """Operations no recogniser reads: their names, what they are and their Mult-Adds."""

    nodes: list[Node]
    macs: int
    advice: str
    in_shape: Shape
    out_shape: Shape

    def text(self) -> str:
        names = ", ".join(f"{n.name} ({n.source_op})" for n in self.nodes[:4])
        more = f" and {len(self.nodes) - 4:,} more" if len(self.nodes) > 4 else ""
        return f"{names}{more}"


@dataclass
class Stmt:
    """A spec statement made from some items, with the shapes it reads and makes."""

    node: Any  # a spec LayerDef or Residual, or an Unknown
    in_shape: Shape
    out_shape: Shape
    layers: int  # concrete layers it builds
    names: list[str]  # the source nodes it stands for
    inner: list["Stmt"] = field(default_factory=list)  # a residual block's statements
    ratios: tuple[int, ...] = ()  # squeeze-and-excitation: the ratios its widths fit
    squeeze: int = 0  # squeeze-and-excitation: its squeeze width
    fallback: "Stmt | None" = None  # squeeze-and-excitation: the unknown it is if no rule fits


class Ctx:
    """What the recognisers share: the shapes and the items' list."""

    def __init__(self, g: Graph, shapes: dict[str, Shape]) -> None:
        self.g, self.shapes = g, shapes

    def shape_in(self, item: Any) -> Shape:
        n = _first_node(item)
        return self.shapes[n.inputs[0]] if n.inputs else self.shapes[self.g.input]

    def shape_out(self, item: Any) -> Shape:
        return self.shapes[_last_node(item).output]


def _first_node(item: Any) -> Node:
    if isinstance(item, Node):
        return item
    if isinstance(item, Branch):
        return _first_node(item.body[0])
    return item.nodes[0]


def _last_node(item: Any) -> Node:
    if isinstance(item, Node):
        return item
    if isinstance(item, Branch):
        return item.join
    return item.nodes[-1]
