"""Import a spec from a traced network: recognise its layers, write the spec, compare.

The readers (`mobilecost.onnx_import` for ONNX files, `mobilecost.torch.importer` for
PyTorch modules) turn a network into a `Graph` of `Node`s in one small vocabulary, `NODE_OPS`
(conv, bn, the activations, add, mul, a scalar add or multiply, pools, flatten, linear,
identity; anything else is kept as `unknown` with the source's own op name); the graph and
what is done to it first live in `mobilecost.importgraph`: activations written as arithmetic
(Keras's hard-swish x·relu6(x + 3)/6, x·sigmoid(x)) fused into one node each, every tensor's
C×H×W (or F after a flatten) from the input size (`propagate`), and the walk from the input
to the output into a sequence where a path that leaves a tensor and joins it again is a
`Branch` (a residual add when the join is an add of the branch point itself). This module
does the rest, the same for both readers:

3. **Recognise** (`RECOGNISERS`, one table): each recogniser takes the items at a position and
   returns the spec statement they make and how many items it used: a convolution with its
   batchnorm and activation (full, depthwise or pointwise), a pool, a classifier (with its
   activation), a residual block, a squeeze-and-excitation (a path that meets its input again
   at a multiply). A second pass gives each squeeze-and-excitation the ratio the network
   uses (`choose_se_ratios`) and folds expand/depthwise/(SE)/project runs into `ir` where
   they match the `ir` op exactly (`fold_inverted_residuals`). A new op is one more entry.
4. **Write** the spec in canonical form at α = 1 (`format_spec`), build it back at the
   imported resolution and check that it reproduces the network's shapes layer for layer.

Nothing here imports torch or onnx.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

from ..engine.cost import layer_cost
from ..errors import MobilecostError
from ..lang.kinds import LayerKind
from ..lang.ops import SE_DIVISOR, expanded_width
from ..lang.parse import parse
from ..lang.spec import Layer, LayerDef, Repeat, Residual, Spec, build, format_spec
from ..lang.spec import Node as SpecNode
from ..lang.values import Channels, Rounding, make_divisible
from .graph import (
    ACT_OPS,
    Branch,
    Graph,
    ModelImportError,
    Node,
    Region,
    Shape,
    fuse_activations,
    pool_out,
    propagate,
    shape_text,
    walk,
    without_identities,
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
        more = f" and {len(self.nodes) - 4} more" if len(self.nodes) > 4 else ""
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


Recogniser = Callable[[list, int, Ctx], "tuple[int, Stmt] | None"]

#: The recognisers, tried in order at each position: name -> function.
RECOGNISERS: dict[str, Recogniser] = {}


def recogniser(name: str) -> Callable[[Recogniser], Recogniser]:
    def deco(fn: Recogniser) -> Recogniser:
        if name in RECOGNISERS:
            raise MobilecostError(f"recogniser {name!r} is already registered")
        RECOGNISERS[name] = fn
        return fn
    return deco


def _is(item: Any, *ops: str) -> bool:
    return isinstance(item, Node) and item.op in ops


def _square(pair: tuple[int, int]) -> int | None:
    return pair[0] if pair[0] == pair[1] else None


def conv_problem(n: Node) -> str | None:
    """Why a convolution cannot be a spec statement, or None."""
    a = n.attrs
    k, s = _square(a["kernel"]), _square(a["stride"])
    if k is None or s is None:
        return f"kernel {a['kernel']} / stride {a['stride']} is not square"
    if a["dilation"] != (1, 1):
        return f"dilation {a['dilation']} (the spec has none)"
    pads = set(a["pads"])
    if len(pads) != 1:
        return f"uneven padding {a['pads']}"
    p = pads.pop()
    if p not in (0, k // 2) or (p and k % 2 == 0):
        return f"padding {p} on a {k}×{k} kernel (the spec pads {k // 2}, SAME, or 0, VALID)"
    cin, cout, g = a["in_channels"], a["out_channels"], a["groups"]
    if g != 1 and not (g == cin == cout):
        return f"{g} groups on {cin} → {cout} channels (the spec has full and depthwise only)"
    if k == 1 and g != 1 and cin > 1:
        return "a 1×1 depthwise convolution"
    if k == 1 and p:
        return "padding on a 1×1 convolution"
    return None


@recogniser("conv")
def _conv(items: list, i: int, ctx: Ctx):
    """A convolution, then optionally batchnorm, then optionally an activation."""
    n = items[i]
    if not _is(n, "conv") or conv_problem(n):
        return None
    j, bn, act = i + 1, bool(n.attrs.get("folded_bn")), "none"
    if j < len(items) and _is(items[j], "bn"):
        bn, j = True, j + 1
    if j < len(items) and _is(items[j], *ACT_OPS):
        act, j = items[j].op, j + 1
    a = n.attrs
    k, s, p = a["kernel"][0], a["stride"][0], a["pads"][0]
    cout, g = a["out_channels"], a["groups"]
    pad = "same" if (p == k // 2 and k % 2) else "valid"
    if k == 1 and g == 1:
        d = LayerDef("pw", kernel=1, stride=s, channels=Channels(cout), act=act, bn=bn)
    elif g == 1:
        d = LayerDef("conv", kernel=k, stride=s, channels=Channels(cout), act=act, bn=bn, pad=pad)
    else:
        d = LayerDef("dw", kernel=k, stride=s, act=act, bn=bn, pad=pad)
    used = items[i:j]
    return j - i, Stmt(d, ctx.shape_in(n), ctx.shape_out(used[-1]), 1, [x.name for x in used])


@recogniser("pool")
def _pool(items: list, i: int, ctx: Ctx):
    """Average or max pooling without padding; a window the size of the map is global."""
    n = items[i]
    if not _is(n, "avgpool", "maxpool", "gpool"):
        return None
    x, y = ctx.shape_in(n), ctx.shape_out(n)
    if len(x) != 3 or x[1] != x[2]:
        return None
    op = "maxpool" if n.op == "maxpool" else "avgpool"
    if n.op == "gpool" or (_square(n.attrs["kernel"]) == x[1] and set(n.attrs["pads"]) == {0}):
        if n.op != "gpool" and y[1] != 1:
            return None
        d = LayerDef(op, kernel=0, stride=1, pad="valid")
    else:
        k, s = _square(n.attrs["kernel"]), _square(n.attrs["stride"])
        if k is None or s is None or set(n.attrs["pads"]) != {0} or (
                n.attrs["ceil"] and pool_out(x[1], k, s, 0, 0, True) != pool_out(x[1], k, s, 0, 0, False)):
            return None
        d = LayerDef(op, kernel=k, stride=s, pad="valid")
    j = i + 1
    if n.op == "gpool" and not n.attrs.get("keepdim", True) and j < len(items) and not _is(items[j], "linear"):
        return None  # a squeezed map the spec can only use as the classifier's input
    return 1, Stmt(d, x, (x[0],) + y[1:] if len(y) == 3 else (x[0], 1, 1), 1, [n.name])


@recogniser("fc")
def _fc(items: list, i: int, ctx: Ctx):
    """A fully connected layer on the flattened map (a flatten before it is implicit), then
    optionally an activation (MobileNetV3's 1280-wide layer: `fc 1280 act=hswish`)."""
    j = i
    if _is(items[j], "flatten") and j + 1 < len(items):
        j += 1
    n = items[j]
    if not _is(n, "linear"):
        return None
    x = ctx.shape_in(items[i])
    if _is(items[i], "linear") and len(x) == 1:
        # a vector: only a squeezed global pool's 1×1 map, or an earlier fc's output, is one
        x = (x[0], 1, 1)
    if len(x) == 3 and x[1] != x[2]:
        return None
    act = None
    if j + 1 < len(items) and _is(items[j + 1], *ACT_OPS):
        j += 1
        act = items[j].op
    d = LayerDef("fc", channels=Channels(n.attrs["out_features"]), bias=n.attrs["bias"], act=act)
    return j + 1 - i, Stmt(d, x, (n.attrs["out_features"], 1, 1), 1,
                           [x.name for x in items[i:j + 1]])


@recogniser("residual")
def _residual(items: list, i: int, ctx: Ctx):
    """A path whose input is added to its output: `residual { }` around its statements."""
    b = items[i]
    if not (isinstance(b, Branch) and b.join.op == "add"):
        return None
    inner = recognise(b.body, ctx)
    if any(isinstance(s.node, Unknown) for s in inner):
        return None
    x = ctx.shape_in(b)
    node = Residual(tuple(s.node for s in inner))
    return 1, Stmt(node, x, x, sum(s.layers for s in inner) + 1,
                   [n for s in inner for n in s.names] + [b.join.name], inner)


@recogniser("se")
def _se(items: list, i: int, ctx: Ctx):
    """Squeeze-and-excitation: a path from a C-channel map through a global average pool, a
    1×1 convolution to S channels, an activation, a 1×1 convolution back to C and a gate,
    multiplied with the map: `se R` for the ratio R with make_divisible(C / R, 8) = S (chosen
    for the whole network by `choose_se_ratios`). Both 1×1 convolutions have a bias and no
    batchnorm (an ONNX file's bias reads the same). Other gates, and squeeze widths that no
    ratio gives, are unknown operations that say so."""
    b = items[i]
    if not (isinstance(b, Branch) and b.join.op == "mul") or len(b.body) not in (4, 5):
        return None
    body = b.body
    if not all(isinstance(x, Node) for x in body):
        return None
    x = ctx.shape_in(b)
    if len(x) != 3 or x[1] != x[2] or ctx.shapes[body[-1].output] != (x[0], 1, 1):
        return None
    pool, down, rest = body[0], body[1], body[2:]
    act = rest[0].op if len(rest) == 3 else "none"
    up, gate = rest[-2], rest[-1]
    if not (_is(pool, "gpool") or (_is(pool, "avgpool") and set(pool.attrs["pads"]) == {0}
                                   and _square(pool.attrs["kernel"]) == x[1])):
        return None
    if not (_is(down, "conv") and _is(up, "conv") and len(ctx.shape_out(pool)) == 3) or \
            (len(rest) == 3 and not _is(rest[0], *ACT_OPS)):
        return None
    for c in (down, up):
        a = c.attrs
        if a["kernel"] != (1, 1) or a["stride"] != (1, 1) or a["groups"] != 1 or \
                set(a["pads"]) != {0}:
            return None
    c, squeeze = x[0], down.attrs["out_channels"]
    names = [n.name for n in body] + [b.join.name]
    why, ratios = None, None
    if not _is(gate, "hsigmoid", "sigmoid"):
        why = (f"squeeze-and-excitation gated by {gate.name} ({gate.source_op}); the spec's "
               f"se gates with hsigmoid or sigmoid only")
    elif not (down.attrs["bias"] and up.attrs["bias"]):
        why = ("squeeze-and-excitation whose 1×1 convolutions have no bias; the spec's se has "
               "one on each")
    else:
        ratios = se_ratios(c, squeeze)
        if not ratios:
            near = max(1, round(Fraction(c, squeeze)))
            why = (f"squeeze-and-excitation squeezing {c} channels to {squeeze}: no ratio R "
                   f"gives make_divisible({c}/R, 8) = {squeeze}, the spec's se width (the "
                   f"nearest, se {near}, squeezes to "
                   f"{make_divisible(Fraction(c, near), SE_DIVISOR)})")
    d = LayerDef("se", se=0, act=None if act == "relu" else act, gate=gate.op)
    if why is not None and ratios == ():  # an inverted residual may squeeze from its input
        return 1, Stmt(d, x, x, 4, names, squeeze=squeeze, fallback=_unknown_stmt(b, ctx, why))
    if why is not None:
        return 1, _unknown_stmt(b, ctx, why)
    return 1, Stmt(d, x, x, 4, names, ratios=ratios, squeeze=squeeze)


def se_ratios(channels: int, squeeze: int) -> tuple[int, ...]:
    """The ratios R with make_divisible(channels / R, 8) = squeeze (R = 1 … channels; a
    larger R gives what R = channels gives). make_divisible is monotone: the R that fit are
    one run."""
    out = []
    for r in range(1, channels + 1):
        w = make_divisible(Fraction(channels, r), SE_DIVISOR)
        if w == squeeze:
            out.append(r)
        elif w < squeeze:
            break
    return tuple(out)


def _in_ratios(block_in: int, squeeze: int) -> tuple[int, ...]:
    """The ratios R with max(1, int(block_in / R)) = squeeze: an inverted residual's SE that
    squeezes from the block's input (`squeeze=in`, MnasNet-A1's and EfficientNet's rule)."""
    return tuple(r for r in range(1, block_in + 1) if max(1, block_in // r) == squeeze)


def _se_contexts(stmts: list[Stmt]):
    """(the SE statement, the input width of the inverted residual it would sit in, or 0) for
    every squeeze-and-excitation: [pw, dw, se] or [dw, se] before it reads the block's input."""
    for k, s in enumerate(stmts):
        if isinstance(s.node, Residual):
            yield from _se_contexts(_stmts_of_residual(s))
        elif isinstance(s.node, LayerDef) and s.node.op == "se":
            ops = [x.node.op if isinstance(x.node, LayerDef) else "" for x in stmts[max(0, k - 2):k]]
            block_in = 0
            if ops[-1:] == ["dw"]:
                first = stmts[k - 2] if ops == ["pw", "dw"] else stmts[k - 1]
                block_in = first.in_shape[0]
            yield s, block_in


def choose_se_ratios(stmts: list[Stmt]) -> None:
    """Give every squeeze-and-excitation its rule and ratio: the one that fits the most blocks
    of the network, MobileNetV3's make_divisible(expanded / R, 8) before MnasNet-A1's
    max(1, int(in / R)) (`squeeze=in`, inside an inverted residual only), then 4, then the
    smallest R; a block it does not fit takes, by the same order, the best of its own. An SE
    that no rule fits keeps no ratio and ends as the unknown operation it was read as."""
    ses = [(s, [("exp", r) for r in s.ratios]
            + ([("in", r) for r in _in_ratios(block_in, s.squeeze)] if block_in else []))
           for s, block_in in _se_contexts(stmts)]
    count = Counter(c for _, fits in ses for c in fits)
    order = lambda c: (count[c], c[0] == "exp", c[1] == 4, -c[1])  # noqa: E731
    if not count:
        return
    best = max(count, key=order)
    for s, fits in ses:
        if not fits:
            continue
        mode, r = best if best in fits else max(fits, key=order)
        s.node = s.node.replace(se=r, squeeze=mode)


def _resolve_squeezes(stmts: list[Stmt]) -> list[Stmt]:
    """Every SE statement left outside an inverted residual with no ratio of the spec's own
    `se` rule is the unknown operation it was read as."""
    out = []
    for s in stmts:
        if isinstance(s.node, Residual):
            s.inner = _resolve_squeezes(s.inner)
            s.node = Residual(tuple(x.node for x in s.inner))
        if (isinstance(s.node, LayerDef) and s.node.op == "se"
                and (s.node.se == 0 or s.node.squeeze != "exp")):
            s = s.fallback if s.fallback is not None else s
        out.append(s)
    return out


def recognise(items: list, ctx: Ctx, fold: bool = False,
              rounding: Rounding = Rounding()) -> list[Stmt]:
    """The statements the items make; what no recogniser reads becomes an Unknown. With
    `fold`, squeeze-and-excitation ratios are chosen and runs that are exactly an inverted
    residual are written as `ir` (see `fold_inverted_residuals`)."""
    out: list[Stmt] = []
    i = 0
    while i < len(items):
        for fn in RECOGNISERS.values():
            got = fn(items, i, ctx)
            if got:
                used, stmt = got
                out.append(stmt)
                i += used
                break
        else:
            out.append(_unknown_stmt(items[i], ctx))
            i += 1
    if fold:
        choose_se_ratios(out)
        out = _resolve_squeezes(fold_inverted_residuals(out, rounding))
    return out


def _nodes_of(item: Any) -> list[Node]:
    if isinstance(item, Node):
        return [item]
    if isinstance(item, Branch):
        return [n for x in item.body for n in _nodes_of(x)] + [item.join]
    return list(item.nodes)


def _node_macs(n: Node, shapes: dict[str, Shape]) -> int:
    a = n.attrs
    if n.op == "conv":
        out = shapes[n.output]
        kh, kw = a["kernel"]
        return kh * kw * (a["in_channels"] // a["groups"]) * a["out_channels"] * out[1] * out[2]
    if n.op == "linear":
        return a["in_features"] * a["out_features"]
    return int(a.get("macs", 0))


ADVICE = {
    "conv": "write it by hand as the nearest conv/dw/pw, or leave it out",
    "relu": "the spec has activations only right after a convolution",
    "relu6": "the spec has activations only right after a convolution",
    "bn": "the spec has batchnorm only right after a convolution",
    "add": "the spec adds only a block's input to its output (residual { })",
    "mul": "the spec multiplies only in squeeze-and-excitation (se R)",
    "addc": "the spec adds a constant only inside hard-swish, x·relu6(x + 3)/6",
    "mulc": "the spec multiplies by a constant only inside hard-swish, x·relu6(x + 3)/6",
    **{a: "the spec has activations only right after a convolution or linear layer"
       for a in ACT_OPS},
}


def _unknown_stmt(item: Any, ctx: Ctx, why: str | None = None) -> Stmt:
    nodes = _nodes_of(item)
    macs = sum(_node_macs(n, ctx.shapes) for n in nodes)
    first = nodes[0]
    if why is not None:
        advice = why
    elif isinstance(item, Branch) and item.join.op == "mul":
        advice = ("a path multiplied back into its input that is not squeeze-and-excitation as "
                  "the spec's se builds it (global average pool, 1×1 convolution with bias, "
                  "activation, 1×1 convolution with bias, gate)")
    elif isinstance(item, (Region, Branch)):
        advice = ("a split whose paths meet other than by adding the input back; "
                  "the spec has residual blocks only")
    elif first.op == "conv":
        advice = f"{conv_problem(first)}: {ADVICE['conv']}"
    else:
        advice = ADVICE.get(first.op, "the spec has no such operation; leave it out, or "
                                      "write its nearest spec layer by hand")
    return Stmt(Unknown(nodes, macs, advice, ctx.shape_in(item), ctx.shape_out(item)),
                ctx.shape_in(item), ctx.shape_out(item), 0, [n.name for n in nodes])


def fold_inverted_residuals(stmts: list[Stmt], rounding: Rounding = Rounding()) -> list[Stmt]:
    """Write [pw to hidden, dw K sS, (se R,) linear pw to C] (or [dw, (se R,) linear pw]
    without expansion) as `ir` where it builds exactly those layers: batchnorm on the three
    convolutions, the same activation on the first two, none on the projection, the
    squeeze-and-excitation's inner activation ReLU, the hidden width the spec's rounding makes
    of in·T for T = hidden/in, and a residual around it exactly when the stride is 1 and the
    input has C channels."""
    out: list[Stmt] = []
    i = 0
    while i < len(stmts):
        s = stmts[i]
        if isinstance(s.node, Residual):
            d = _ir_of(s.inner, residual=True, rounding=rounding)
            if d is not None:
                out.append(Stmt(d, s.in_shape, s.out_shape, s.layers, s.names))
            else:
                inner = fold_inverted_residuals(s.inner, rounding)
                out.append(Stmt(Residual(tuple(x.node for x in inner)), s.in_shape,
                                s.out_shape, s.layers, s.names, inner))
            i += 1
            continue
        for n in (4, 3, 2):
            run = stmts[i:i + n]
            if len(run) == n:
                d = _ir_of(run, residual=False, rounding=rounding)
                if d is not None:
                    out.append(Stmt(d, run[0].in_shape, run[-1].out_shape,
                                    sum(r.layers for r in run), [x for r in run for x in r.names]))
                    i += n
                    break
        else:
            out.append(s)
            i += 1
    return out


def _stmts_of_residual(s: Stmt) -> list[Stmt]:
    return s.inner


def _ir_of(run: list[Stmt], residual: bool, rounding: Rounding = Rounding()) -> LayerDef | None:
    if not run or not all(isinstance(r.node, LayerDef) for r in run):
        return None
    ds = [r.node for r in run]
    ops = [d.op for d in ds]
    se = None
    if "se" in ops[1:-1]:
        se = ds[ops.index("se")]
        if se.act is not None or ops.index("se") != len(ops) - 2:
            return None  # an ir's squeeze-and-excitation has ReLU inside, after the depthwise
        ds = [d for d in ds if d.op != "se"]
        ops = [d.op for d in ds]
    if ops == ["pw", "dw", "pw"]:
        expand, dw, proj = ds
    elif ops == ["dw", "pw"]:
        expand, (dw, proj) = None, ds
    else:
        return None
    cin = run[0].in_shape[0]
    cout = proj.channels.base
    if not all(d.bn for d in ds) or proj.act != "none" or dw.pad != "same" or proj.stride != 1:
        return None
    if expand is not None:
        if expand.stride != 1 or expand.act != dw.act:
            return None
        hidden = expand.channels.base
        t = Fraction(hidden, cin)
        if t == 1 or expanded_width(cin, t, rounding) != hidden:
            return None
        t = t.numerator if t.denominator == 1 else t
    else:
        t = 1
    if residual != (dw.stride == 1 and cin == cout):
        return None
    if se is not None and se.se == 0:
        return None  # no rule fits its squeeze width
    return LayerDef("ir", kernel=dw.kernel, stride=dw.stride, channels=Channels(cout),
                    act=dw.act, expand=t, se=se.se if se else 0,
                    gate=se.gate if se else "hsigmoid", squeeze=se.squeeze if se else "exp")


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
        more = f"; and {len(unknown) - 5} more" if len(unknown) > 5 else ""
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
    if node.op in ("conv", "dw", "pw", "ir") and node.act == act:
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


# --------------------------------------------------------------------------- comparison

@dataclass
class Comparison:
    """A spec at (α, resolution) beside a network, layer by layer."""

    rows: list[dict]
    first: dict | None  # the first disagreeing row
    macs_disagree: bool  # on a convolution's or linear layer's Mult-Adds (or a layer missing)

    @property
    def agree(self) -> bool:
        return self.first is None


def compare(spec_layers: tuple[Layer, ...], net: Imported) -> Comparison:
    """Row i of the spec beside row i of the network: shapes, Mult-Adds, parameters."""
    ours = [layer_row(l) for l in spec_layers]
    theirs = net.rows
    rows: list[dict] = []
    first = None
    macs_bad = False
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else None
        b = theirs[i] if i < len(theirs) else None
        r = {"layer": i + 1,
             "spec": _side(a), "network": _side(b),
             "spec_macs": a["macs"] if a else None, "network_macs": b["macs"] if b else None,
             "spec_params": a["params"] if a else None,
             "network_params": b["params"] if b else None}
        same = (a is not None and b is not None and a["op"] == b["op"]
                and a["input"] == b["input"] and a["output"] == b["output"]
                and a["macs"] == b["macs"] and a["params"] == b["params"])
        r["agree"] = "yes" if same else "NO"
        if not same:
            kinds = {x["kind"] for x in (a, b) if x}
            mac_kind = bool(kinds & ({k.value for k in LayerKind if k.has_macs} | {"unknown"}))
            if mac_kind and (a is None or b is None or a["macs"] != b["macs"]):
                macs_bad = True
            if first is None:
                first = r
        rows.append(r)
    return Comparison(rows, first, macs_bad)


def _side(r: dict | None) -> str:
    if r is None:
        return "—"
    if r["op"] == "unknown":
        return f"unknown {r['layer']}"
    return f"{r['op']} {r['input']} → {r['output']}"


__all__ = ["ADVICE", "RECOGNISERS", "Comparison", "Imported", "ModelImportError", "Stmt",
           "Unknown", "choose_se_ratios", "compare", "import_graph", "layer_row",
           "parse_rounding", "recognise", "se_ratios"]
