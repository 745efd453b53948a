"""Recognise a network's layers: the recogniser table.

The readers (`importing.onnx` for ONNX files, `mobilecost.torch.fx` for PyTorch modules) turn a network into a `Graph` of `Node`s in one small vocabulary, `NODE_OPS`
(conv, bn, the activations, add, mul, a scalar add or multiply, pools, flatten, linear,
identity; anything else is kept as `unknown` with the source's own op name); the graph and
what is done to it first live in `importing.graph`: activations written as arithmetic
(Keras's hard-swish x·relu6(x + 3)/6, x·sigmoid(x)) fused into one node each, every tensor's
C×H×W (or F after a flatten) from the input size (`propagate`), and the walk from the input
to the output into a sequence where a path that leaves a tensor and joins it again is a
`Branch` (a residual add when the join is an add of the branch point itself). This module
and the modules after it do the rest, the same for both readers:

3. **Recognise** (`RECOGNISERS`, one table): each recogniser takes the items at a position and
   returns the spec statement they make and how many items it used: a convolution with its
   batchnorm and activation (full, depthwise or pointwise), a pool, a classifier (with its
   activation), a residual block, a squeeze-and-excitation (a path that meets its input again
   at a multiply). A second pass gives each squeeze-and-excitation the ratio the network
   uses (`choose_se_ratios`) and folds expand/depthwise/(SE)/project runs into `ir` where
   they match the `ir` op exactly (`importing.blocks`). A new op is one more entry.
4. **Write** the spec in canonical form at α = 1 (`importing.write`), build it back at the
   imported resolution and check that it reproduces the network's shapes layer for layer.

Nothing here imports torch or onnx.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

from ..errors import MobilecostError
from ..lang.ops import SE_DIVISOR
from ..lang.spec import LayerDef, Residual
from ..lang.values import Channels, Rounding, make_divisible
from .attention import attention_block
from .blocks import _resolve_squeezes, choose_se_ratios, fold_inverted_residuals, se_ratios
from .graph import (
    ACT_OPS,
    Branch,
    ModelImportError,
    Node,
    Region,
    Shape,
    pool_out,
)
from .statements import Ctx, Stmt, Unknown

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


def tf_same_pads(a: dict, shape: Shape | None) -> tuple[int, int, int, int] | None:
    """TensorFlow's SAME padding of a convolution on a map of `shape` (C, H, W): ⌈h/s⌉
    outputs, max((⌈h/s⌉ - 1)·s + (K - 1)·d + 1 - h, 0) rows in all, the odd one at the bottom
    (right). As (top, left, bottom, right)."""
    if shape is None or len(shape) != 3:
        return None
    out = []
    for h, k, s, d in zip(shape[1:], a["kernel"], a["stride"], a["dilation"]):
        total = max((-(-h // s) - 1) * s + (k - 1) * d + 1 - h, 0)
        out.append((total // 2, total - total // 2))
    return (out[0][0], out[1][0], out[0][1], out[1][1])


def conv_pad(n: Node, shape: Shape | None = None) -> str | None:
    """The spec's padding of a convolution on a map of `shape`: same (K // 2 on every side,
    odd K), valid (none), tf (TensorFlow's SAME where it pads unevenly), or None."""
    a = n.attrs
    k = _square(a["kernel"])
    pads = set(a["pads"])
    if pads == {0}:
        return "valid"
    if len(pads) == 1 and k is not None and k % 2 and pads == {k // 2}:
        return "same"
    if a["pads"] == tf_same_pads(a, shape) and k is not None:
        return "tf"
    return None


def conv_problem(n: Node, shape: Shape | None = None) -> str | None:
    """Why a convolution (on a map of `shape`, where known) cannot be a spec statement, or
    None."""
    a = n.attrs
    k, s = _square(a["kernel"]), _square(a["stride"])
    if k is None or s is None:
        return f"kernel {a['kernel']} / stride {a['stride']} is not square"
    if a["dilation"] != (1, 1):
        return f"dilation {a['dilation']} (the spec has none)"
    pad = conv_pad(n, shape)
    if pad is None:
        if len(set(a["pads"])) != 1:
            return (f"uneven padding {a['pads']} (neither symmetric nor TensorFlow's SAME on "
                    f"this map)")
        p = a["pads"][0]
        return f"padding {p} on a {k}×{k} kernel (the spec pads {k // 2}, SAME, or 0, VALID)"
    cin, cout, g = a["in_channels"], a["out_channels"], a["groups"]
    if g != 1 and not (g == cin == cout):
        return f"{g} groups on {cin} → {cout} channels (the spec has full and depthwise only)"
    if k == 1 and g != 1 and cin > 1:
        return "a 1×1 depthwise convolution"
    if k == 1 and pad != "valid":
        return "padding on a 1×1 convolution"
    return None


@recogniser("conv")
def _conv(items: list, i: int, ctx: Ctx):
    """A convolution, then optionally batchnorm, then optionally an activation. A bias that
    is not batchnorm folded in by an exporter is the convolution's own (`bias=yes`)."""
    n = items[i]
    if not _is(n, "conv") or conv_problem(n, ctx.shape_in(n)):
        return None
    j, bn, act = i + 1, bool(n.attrs.get("folded_bn")), "none"
    if j < len(items) and _is(items[j], "bn"):
        bn, j = True, j + 1
    if j < len(items) and _is(items[j], *ACT_OPS):
        act, j = items[j].op, j + 1
    a = n.attrs
    k, s = a["kernel"][0], a["stride"][0]
    cout, g = a["out_channels"], a["groups"]
    pad = conv_pad(n, ctx.shape_in(n))
    bias = bool(a.get("bias")) and not a.get("folded_bn")
    if k == 1 and g == 1:
        d = LayerDef("pw", kernel=1, stride=s, channels=Channels(cout), act=act, bn=bn, own_bias=bias)
    elif g == 1:
        d = LayerDef("conv", kernel=k, stride=s, channels=Channels(cout), act=act, bn=bn, pad=pad,
                     own_bias=bias)
    else:
        d = LayerDef("dw", kernel=k, stride=s, act=act, bn=bn, pad=pad, own_bias=bias)
    used = items[i:j]
    return j - i, Stmt(d, ctx.shape_in(n), ctx.shape_out(used[-1]), 1, [x.name for x in used])


def _mixconv_def(n: Node, shape: Shape) -> LayerDef | None:
    """MixNet's split-convolve-concatenate as one statement: `mixdw K,K,...` where every part
    is depthwise and the channels split as mixdw splits them (c // n each, the first the
    remainder too), `pw CH g=N` where every part is a 1×1 convolution of equal width."""
    splits, parts = n.attrs["splits"], n.attrs["parts"]
    if len({(p["stride"], p["dilation"]) for p in parts}) != 1 or parts[0]["dilation"] != (1, 1):
        return None
    s = _square(parts[0]["stride"])
    pads = {conv_pad(Node(n.name, "conv", n.inputs, n.output, "", p), shape) for p in parts}
    ks = [_square(p["kernel"]) for p in parts]
    c, g = sum(splits), len(splits)
    if s is None or None in ks or any(p["bias"] for p in parts):
        return None
    if all(p["groups"] == p["in_channels"] == p["out_channels"] == w
           for p, w in zip(parts, splits)):
        want = [c // g] * g
        want[0] += c - sum(want)
        if splits != want or len(pads) != 1 or pads & {None, "valid"}:
            return None
        return LayerDef("mixdw", kernels=tuple(ks), stride=s, pad=pads.pop())
    outs = {p["out_channels"] for p in parts}
    if set(ks) == {1} and len(set(splits)) == 1 and len(outs) == 1 and pads == {"valid"} and \
            all(p["groups"] == 1 for p in parts):
        return LayerDef("pw", kernel=1, stride=s, channels=Channels(outs.pop() * g), groups=g)
    return None


@recogniser("mixconv")
def _mixconv(items: list, i: int, ctx: Ctx):
    """Channels split, a convolution on each part, concatenated (MixNet's MixConv): `mixdw`
    or a grouped `pw`, then optionally batchnorm and an activation."""
    n = items[i]
    if not _is(n, "mixconv"):
        return None
    d = _mixconv_def(n, ctx.shape_in(n))
    if d is None:
        return None
    j, bn, act = i + 1, False, "none"
    if j < len(items) and _is(items[j], "bn"):
        bn, j = True, j + 1
    if j < len(items) and _is(items[j], *ACT_OPS):
        act, j = items[j].op, j + 1
    d = d.replace(act=act, bn=bn)
    layers = 4 * len(d.kernels) - 3 if d.op == "mixdw" else 1  # dw, tap, take, concat
    used = items[i:j]
    return j - i, Stmt(d, ctx.shape_in(n), ctx.shape_out(used[-1]), layers,
                       [x.name for x in used])


@recogniser("layerscale")
def _layerscale(items: list, i: int, ctx: Ctx):
    """The map times a learned value per channel (MobileNetV4-Hybrid's layer scale)."""
    n = items[i]
    if not _is(n, "layerscale"):
        return None
    x = ctx.shape_in(n)
    return 1, Stmt(LayerDef("layerscale"), x, x, 1, [n.name])


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
    bad = [s.node for s in inner if isinstance(s.node, Unknown)]
    if bad and any(n.source_op.split()[0].lower() in ATTENTION_OPS for n in _nodes_of(b)):
        got = attention_block(b, ctx, conv_pad, _node_macs)
        if got is not None:
            return 1, got
    if bad:  # unknown as a whole, saying what inside it the spec cannot write
        return 1, _unknown_stmt(b, ctx, f"in a residual block, {bad[0].text()}: {bad[0].advice}")
    x = ctx.shape_in(b)
    node = Residual(tuple(s.node for s in inner))
    return 1, Stmt(node, x, x, sum(s.layers for s in inner) + 1,
                   [n for s in inner for n in s.names] + [b.join.name], inner,
                   fallback=_unknown_stmt(b, ctx))


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
    if n.op == "mixconv":
        out = shapes[n.output]
        return sum(p["kernel"][0] * p["kernel"][1] * (p["in_channels"] // p["groups"])
                   * p["out_channels"] for p in a["parts"]) * out[1] * out[2]
    return int(a.get("macs", 0))


#: The source ops of attention (fx function names and ONNX op types, lower case).
ATTENTION_OPS = ("matmul", "bmm", "softmax", "scaled_dot_product_attention", "einsum")

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
    elif isinstance(item, (Region, Branch)) and any(
            n.source_op.split()[0].lower() in ("cat", "concat") for n in nodes):
        advice = ("paths concatenated along the channels (as GhostNet's ghost module does): "
                  "the importer reads only residual adds and squeeze-and-excitation's product; "
                  "the spec's ghost op writes a ghost module by hand")
    elif isinstance(item, (Region, Branch)) and any(
            n.source_op.split()[0].lower() in ATTENTION_OPS for n in nodes):
        advice = ("attention (matrix products and softmax): the importer does not read it; the "
                  "spec's attn op writes Mobile MQA and multi-head attention by hand")
    elif isinstance(item, (Region, Branch)):
        advice = ("a split whose paths meet other than by adding the input back; "
                  "the spec has residual blocks only")
    elif first.op == "mixconv":
        advice = ("channels split into groups, a convolution on each, concatenated, other than "
                  "the spec's mixdw (depthwise groups split c // n, the first the remainder "
                  "too) or pw g=N (equal 1×1 groups)")
    elif first.op == "conv":
        advice = f"{conv_problem(first, ctx.shape_in(first))}: {ADVICE['conv']}"
    else:
        advice = ADVICE.get(first.op, "the spec has no such operation; leave it out, or "
                                      "write its nearest spec layer by hand")
    return Stmt(Unknown(nodes, macs, advice, ctx.shape_in(item), ctx.shape_out(item)),
                ctx.shape_in(item), ctx.shape_out(item), 0, [n.name for n in nodes])
__all__ = ["ADVICE", "ModelImportError", "recognise", "RECOGNISERS"]
