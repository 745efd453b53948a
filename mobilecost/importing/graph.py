"""The importer's graph: what the readers produce and the importer reads.

The readers (`importing.onnx` for ONNX files, `mobilecost.torch.fx` for
PyTorch modules) turn a network into a `Graph` of `Node`s in one small vocabulary, `NODE_OPS`.
This module holds that graph and what is done to it before any spec statement is recognised
(`importing.recognise` does that): activations written as arithmetic fused into one node
each (`fuse_activations`), identities dropped (`without_identities`), every tensor's shape
(`propagate`), and the walk from input to output into a sequence with branches (`walk`).
Nothing here imports torch or onnx.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import MobilecostError
from ..lang.spec import MAX_LAYERS


class ModelImportError(MobilecostError):
    """A network that cannot be imported: what is wrong and where."""


#: The most operations of any kind (constants aside) a network may have before it is read:
#: as many as the layers a spec may build (MAX_LAYERS). A network under the layer limit with
#: more (an activation and an add beside every convolution) is far beyond a mobile network.
MAX_OPERATIONS = MAX_LAYERS


def check_size(origin: str, layers: int, operations: int | None = None) -> None:
    """Refuse, before any tracing or reading, a network with more convolutions and linear
    layers than a spec may build (`MAX_LAYERS`), or more operations than `MAX_OPERATIONS`."""
    if layers > MAX_LAYERS:
        raise ModelImportError(f"{origin}: the network has {layers:,} convolutions and linear "
                               f"layers; a spec builds at most {MAX_LAYERS:,} layers")
    if operations is not None and operations > MAX_OPERATIONS:
        raise ModelImportError(f"{origin}: the network has {operations:,} operations; "
                               f"mobilecost reads at most {MAX_OPERATIONS:,}")



#: The neutral vocabulary the readers translate to. `mul` multiplies two tensors (a map by
#: a map, or by a 1×1 gate); `addc` and `mulc` add or multiply a scalar constant (attrs
#: value), what the decomposed hard-swish x·ReLU6(x + 3)/6 is made of (`fuse_activations`).
NODE_OPS = ("conv", "bn", "relu", "relu6", "hswish", "hsigmoid", "sigmoid", "silu", "gelu", "add",
            "mul", "addc", "mulc", "avgpool", "maxpool", "gpool", "flatten", "linear",
            "mixconv", "layerscale", "identity", "unknown")

#: The activations a node may be, by the spec's names (`ops.ACTIVATIONS` less none).
ACT_OPS = ("relu", "relu6", "hswish", "hsigmoid", "sigmoid", "silu", "gelu")


@dataclass
class Node:
    """One operation of a network, as a reader translated it.

    attrs: conv: in_channels, out_channels, kernel (kh, kw), stride (sh, sw), pads (top, left,
    bottom, right), dilation (dh, dw), groups, bias, folded_bn (a bias that is batchnorm folded
    in by an exporter: read as bn=yes); mixconv (the channels split into groups, a convolution
    on each, concatenated in order: MixNet's MixConv): splits (input channels of each group),
    parts (each group's conv attrs); linear: in_features, out_features, bias;
    avgpool/maxpool: kernel, stride, pads, ceil; gpool: keepdim."""

    name: str  # where it is in the source: a module path or an ONNX node name
    op: str  # one of NODE_OPS
    inputs: tuple[str, ...]  # the data tensors it reads (not weights or constants)
    output: str
    source_op: str = ""  # the source's own name of the operation ("Conv2d", "Sigmoid")
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A network as a reader found it: nodes in an order where inputs come first."""

    origin: str  # the source as the user named it
    name: str  # a spec name for it
    input: str
    output: str
    in_channels: int
    resolution: int
    nodes: list[Node]


# --------------------------------------------------------------------------- shapes

Shape = tuple  # (C, H, W) for a map, (F,) for a flattened vector


def _conv_out(h: int, k: int, s: int, p0: int, p1: int, d: int = 1) -> int:
    return (h + p0 + p1 - d * (k - 1) - 1) // s + 1


def pool_out(h: int, k: int, s: int, p0: int, p1: int, ceil: bool) -> int:
    span = h + p0 + p1 - k
    return (-(-span // s) if ceil else span // s) + 1


def propagate(g: Graph) -> dict[str, Shape]:
    """Every tensor's shape, from the input's and the nodes' attributes; a node whose input
    does not fit it (a convolution expecting other channels) is refused by name."""
    shapes: dict[str, Shape] = {g.input: (g.in_channels, g.resolution, g.resolution)}
    for n in g.nodes:
        ins = [shapes.get(t) for t in n.inputs]
        if any(s is None for s in ins):
            raise ModelImportError(f"{n.name} ({n.source_op}): reads a tensor no earlier "
                                   f"operation makes")
        x = ins[0] if ins else None
        a = n.attrs
        if n.op == "conv":
            if len(x) != 3 or x[0] != a["in_channels"]:
                raise ModelImportError(f"{n.name} ({n.source_op}): expects {a['in_channels']} "
                                       f"input channels, gets {shape_text(x)}")
            (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = (a["kernel"], a["stride"], a["pads"],
                                                                a["dilation"])
            out = (a["out_channels"], _conv_out(x[1], kh, sh, pt, pb, dh),
                   _conv_out(x[2], kw, sw, pl, pr, dw))
        elif n.op == "mixconv":  # channels split, a convolution on each, concatenated
            if len(x) != 3 or x[0] != sum(a["splits"]):
                raise ModelImportError(f"{n.name} ({n.source_op}): splits {sum(a['splits'])} "
                                       f"channels, gets {shape_text(x)}")
            sides = {(_conv_out(x[1], p["kernel"][0], p["stride"][0], p["pads"][0], p["pads"][2],
                                p["dilation"][0]),
                      _conv_out(x[2], p["kernel"][1], p["stride"][1], p["pads"][1], p["pads"][3],
                                p["dilation"][1])) for p in a["parts"]}
            if len(sides) != 1:
                raise ModelImportError(f"{n.name} ({n.source_op}): its groups' convolutions "
                                       f"make maps of different sizes")
            out = (sum(p["out_channels"] for p in a["parts"]),) + sides.pop()
        elif n.op in ("avgpool", "maxpool"):
            (kh, kw), (sh, sw), (pt, pl, pb, pr) = a["kernel"], a["stride"], a["pads"]
            out = (x[0], pool_out(x[1], kh, sh, pt, pb, a["ceil"]),
                   pool_out(x[2], kw, sw, pl, pr, a["ceil"]))
        elif n.op == "gpool":
            out = (x[0], 1, 1) if a.get("keepdim", True) else (x[0],)
        elif n.op == "flatten":
            out = (math.prod(x),)
        elif n.op == "linear":
            if math.prod(x) != a["in_features"]:
                raise ModelImportError(f"{n.name} ({n.source_op}): expects "
                                       f"{a['in_features']} features, gets {shape_text(x)}")
            out = (a["out_features"],)
        elif n.op == "add":
            if len(set(ins)) != 1:
                raise ModelImportError(f"{n.name} ({n.source_op}): adds tensors of shapes "
                                       f"{' and '.join(shape_text(s) for s in ins)}")
            out = x
        elif n.op == "mul" and any(len(s) != 3 for s in ins):  # no map: broadcast
            out = _broadcast(ins)
            if out is None:
                raise ModelImportError(f"{n.name} ({n.source_op}): multiplies tensors of "
                                       f"shapes {' and '.join(shape_text(s) for s in ins)}")
        elif n.op == "mul":  # equal shapes, or a map times a 1×1 gate of its channels
            big = max(ins, key=len) if len(ins[0]) != len(ins[1]) else max(ins, key=math.prod)
            if not all(s == big or (len(s) == 3 and len(big) == 3 and s == (big[0], 1, 1))
                       for s in ins):
                raise ModelImportError(f"{n.name} ({n.source_op}): multiplies tensors of "
                                       f"shapes {' and '.join(shape_text(s) for s in ins)}")
            out = big
        elif n.op == "unknown":
            out = a.get("out_shape", x)
        else:  # bn, activations, addc, mulc, identity keep the shape
            out = x
        if out is None or any(v < 1 for v in out):
            raise ModelImportError(f"{n.name} ({n.source_op}): leaves nothing of a "
                                   f"{shape_text(x)} input")
        shapes[n.output] = out
    return shapes


def _broadcast(shapes: list[Shape]) -> Shape | None:
    """numpy's broadcast of shapes without the batch dimension (attention's tensors)."""
    width = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (width - len(s)) + tuple(s) for s in shapes]):
        big = {d for d in dims if d != 1}
        if len(big) > 1:
            return None
        out.append(big.pop() if big else 1)
    return tuple(out)


def shape_text(s: Shape | None) -> str:
    if s is None:
        return "nothing"
    return "×".join(str(v) for v in (s[1:] + s[:1] if len(s) == 3 else s))


def without_identities(g: Graph) -> Graph:
    """The graph with identity operations (dropout at inference, `nn.Identity`) taken out,
    their readers reading their input instead."""
    alias: dict[str, str] = {}
    nodes = []
    for n in g.nodes:
        ins = tuple(alias.get(t, t) for t in n.inputs)
        if n.op == "identity" and len(ins) == 1:
            alias[n.output] = ins[0]
            continue
        nodes.append(Node(n.name, n.op, ins, n.output, n.source_op, n.attrs))
    return Graph(g.origin, g.name, g.input, alias.get(g.output, g.output), g.in_channels,
                 g.resolution, nodes)


def _near(v: Any, want: float) -> bool:
    return v is not None and abs(float(v) - want) <= 1e-6 * max(1.0, abs(want))


def fuse_activations(g: Graph) -> Graph:
    """The graph with activations written out as arithmetic taken back to one node each:
    hard-sigmoid ReLU6(x + 3)/6 (Keras's and TF's form: an add, a ReLU6, a multiply by 1/6 or
    a division by 6), hard-swish x·hsigmoid(x) and x·ReLU6(x + 3)/6, and SiLU x·sigmoid(x). A
    node inside a pattern whose output is also read elsewhere stops the match. The fused node
    keeps the name of the pattern's last node and writes the pattern as its source op."""
    nodes = list(g.nodes)
    for step in (_fuse_hsigmoid, _fuse_hswish_decomposed, _fuse_gated_self, _fuse_gelu):
        nodes = step(nodes, g.output)
    return Graph(g.origin, g.name, g.input, g.output, g.in_channels, g.resolution, nodes)


class _Pass:
    """One pass over the nodes: patterns found, each replaced by one node at its last node.
    Nodes already taken by a pattern are not matched again in the same pass."""

    def __init__(self, nodes: list[Node], output: str) -> None:
        self.nodes, self.output = nodes, output
        self.readers: Counter = Counter(t for n in nodes for t in n.inputs)
        self.by_out = {n.output: i for i, n in enumerate(nodes)}
        self.taken: set[int] = set()
        self.new: dict[int, Node] = {}

    def producer(self, t: str, op: str, private: bool = True) -> int | None:
        """The index of the node making tensor t if it is an `op` not yet taken (and, with
        `private`, read by one node only and not the network's output)."""
        i = self.by_out.get(t)
        if i is None or i in self.taken or self.nodes[i].op != op:
            return None
        n = self.nodes[i]
        if private and (self.readers[n.output] != 1 or n.output == self.output):
            return None
        return i

    def replace(self, drop: tuple[int, ...], at: int, node: Node) -> None:
        self.taken.update(drop)
        self.taken.add(at)
        self.new[at] = node

    def result(self) -> list[Node]:
        return [self.new.get(i, n) for i, n in enumerate(self.nodes)
                if i in self.new or i not in self.taken]


def _fuse_hsigmoid(nodes: list[Node], output: str) -> list[Node]:
    """addc(3) -> relu6 -> mulc(1/6): hsigmoid."""
    p = _Pass(nodes, output)
    for k, n in enumerate(nodes):
        if n.op != "mulc" or not _near(n.attrs.get("value"), 1 / 6) or k in p.taken:
            continue
        j = p.producer(n.inputs[0], "relu6")
        i = None if j is None else p.producer(nodes[j].inputs[0], "addc")
        if i is None or not _near(nodes[i].attrs.get("value"), 3):
            continue
        p.replace((i, j), k, Node(n.name, "hsigmoid", nodes[i].inputs, n.output,
                                  "relu6(x + 3)/6"))
    return p.result()


def _fuse_hswish_decomposed(nodes: list[Node], output: str) -> list[Node]:
    """mul(x, relu6(addc(3)(x))) -> mulc(1/6): hswish (the division after the product)."""
    p = _Pass(nodes, output)
    for k, n in enumerate(nodes):
        if n.op != "mulc" or not _near(n.attrs.get("value"), 1 / 6) or k in p.taken:
            continue
        m = p.producer(n.inputs[0], "mul")
        if m is None or len(nodes[m].inputs) != 2:
            continue
        for x, r in (nodes[m].inputs, nodes[m].inputs[::-1]):
            j = p.producer(r, "relu6")
            i = None if j is None else p.producer(nodes[j].inputs[0], "addc")
            if i is not None and nodes[i].inputs == (x,) and _near(nodes[i].attrs.get("value"), 3):
                p.replace((i, j, m), k, Node(n.name, "hswish", (x,), n.output,
                                             "x·relu6(x + 3)/6"))
                break
    return p.result()


def _fuse_gated_self(nodes: list[Node], output: str) -> list[Node]:
    """mul(x, hsigmoid(x)): hswish; mul(x, sigmoid(x)): silu."""
    made = {"hsigmoid": ("hswish", "x·hsigmoid(x)"), "sigmoid": ("silu", "x·sigmoid(x)")}
    p = _Pass(nodes, output)
    for k, n in enumerate(nodes):
        if n.op != "mul" or len(n.inputs) != 2 or k in p.taken:
            continue
        for x, r in (n.inputs, n.inputs[::-1]):
            j = next((j for g in made if (j := p.producer(r, g)) is not None), None)
            if j is not None and nodes[j].inputs == (x,):
                op, text = made[nodes[j].op]
                p.replace((j,), k, Node(n.name, op, (x,), n.output, text))
                break
    return p.result()


def _fuse_gelu(nodes: list[Node], output: str) -> list[Node]:
    """mulc(0.5)(mul(x, addc(1)(erf(mulc(1/√2)(x))))): GELU, x·(1 + erf(x/√2))/2, as the
    TorchScript exporter writes `nn.GELU` below opset 20."""
    p = _Pass(nodes, output)
    for k, n in enumerate(nodes):
        if n.op != "mulc" or not _near(n.attrs.get("value"), 0.5) or k in p.taken:
            continue
        m = p.producer(n.inputs[0], "mul")
        if m is None or len(nodes[m].inputs) != 2:
            continue
        for x, r in (nodes[m].inputs, nodes[m].inputs[::-1]):
            a = p.producer(r, "addc")
            e = None if a is None or not _near(nodes[a].attrs.get("value"), 1) else \
                p.producer(nodes[a].inputs[0], "unknown")
            d = None if e is None or nodes[e].source_op != "Erf" else \
                p.producer(nodes[e].inputs[0], "mulc")
            if d is not None and nodes[d].inputs == (x,) and \
                    _near(nodes[d].attrs.get("value"), 0.5 ** 0.5):
                p.replace((d, e, a, m), k, Node(n.name, "gelu", (x,), n.output,
                                                "x·(1 + erf(x/√2))/2"))
                break
    return p.result()


# --------------------------------------------------------------------------- walk

@dataclass
class Branch:
    """Two paths from one tensor that meet again at `join`: `body` is the path that does
    work, the other is the join's direct read of the branch point (the skip)."""

    body: list  # items
    join: Node


@dataclass
class Region:
    """Nodes between a split and its join that no recogniser reads (shown as unknown)."""

    nodes: list[Node]


def walk(g: Graph) -> list:
    """The graph from its input to its output as a list of items: Nodes, Branches, Regions."""
    order = {n.output: i for i, n in enumerate(g.nodes)}
    consumers: dict[str, list[Node]] = {}
    for n in g.nodes:
        for t in dict.fromkeys(n.inputs):
            consumers.setdefault(t, []).append(n)
    by_output = {n.output: n for n in g.nodes}
    reach_cache: dict[str, frozenset[str]] = {}

    def reach(t: str) -> frozenset[str]:
        """Outputs of every node downstream of tensor t (iteratively, deepest first)."""
        if t in reach_cache:
            return reach_cache[t]
        todo = sorted({t} | _downstream(t, consumers), key=lambda x: -order.get(x, -1))
        for u in todo:
            if u in reach_cache:
                continue
            out: set[str] = set()
            for c in consumers.get(u, []):
                out.add(c.output)
                out |= reach_cache.get(c.output, frozenset())
            reach_cache[u] = frozenset(out)
        return reach_cache[t]

    def run(t: str, stop: str) -> list:
        items: list = []
        while t != stop:
            cons = consumers.get(t, [])
            if not cons:
                raise ModelImportError(f"the path through {_who(by_output.get(t))} ends "
                                       f"before the network's output")
            if len(cons) == 1:
                n = cons[0]
                if len(set(n.inputs)) != 1:  # joins a tensor made off this path
                    raise ModelImportError(f"{n.name} ({n.source_op}): reads a tensor from "
                                           f"outside the path it is on")
                items.append(n)
                t = n.output
                continue
            # a split: the first node downstream of every consumer joins the paths again
            common = set.intersection(*({c.output} | reach(c.output) for c in cons))
            if not common:
                raise ModelImportError(f"{_who(by_output.get(t))}: its output feeds "
                                       f"{len(cons)} paths that never meet again "
                                       f"(more than one output?)")
            join = by_output[min(common, key=lambda x: order[x])]
            others = [c for c in cons if c is not join]
            if join in cons and len(others) == 1 and len(join.inputs) == 2:
                inner = next(i for i in join.inputs if i != t) if len(set(join.inputs)) == 2 else t
                body = run_from(others[0], inner)
                items.append(Branch(body, join))
            else:
                lo, hi = order.get(t, -1), order[join.output]
                inside = [n for n in g.nodes if lo < order[n.output] <= hi
                          and (n.output in reach(t))]
                items.append(Region(inside))
            t = join.output
        return items

    def run_from(first: Node, stop: str) -> list:
        if len(set(first.inputs)) != 1:
            raise ModelImportError(f"{first.name} ({first.source_op}): reads a tensor from "
                                   f"outside the path it is on")
        items = [first]
        if first.output != stop:
            items += run(first.output, stop)
        return items

    return run(g.input, g.output)


def _downstream(t: str, consumers: dict[str, list[Node]]) -> set[str]:
    seen: set[str] = set()
    todo = [t]
    while todo:
        u = todo.pop()
        for c in consumers.get(u, []):
            if c.output not in seen:
                seen.add(c.output)
                todo.append(c.output)
    return seen


def _who(n: Node | None) -> str:
    return "the input" if n is None else f"{n.name} ({n.source_op})"


__all__ = ["ACT_OPS", "MAX_OPERATIONS", "NODE_OPS", "check_size", "Branch", "Graph", "ModelImportError", "Node", "Region", "Shape",
           "fuse_activations", "pool_out", "propagate", "shape_text", "walk", "without_identities"]
