"""MobileNetV4-Hybrid's attention block read back as the spec's `attn`: a residual branch whose
work is batchnorm, a 1×1 query, a key and a value (each a 1×1, after a strided depthwise and
batchnorm where the key/value is downsampled), softmax(Q·Kᵀ/√D)·V by whatever operations
(`scaled_dot_product_attention`, or matmul and softmax with the reshapes around them), a 1×1
output projection and optionally a layer scale. The heads and the head dimension come from the
shapes the query is reshaped to; the statement is kept only where building it gives the
branch's measured Mult-Adds and its convolutions' weights exactly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..lang.spec import LayerDef, Spec, build
from ..lang.values import Channels, Rounding
from .graph import Branch, Node
from .statements import Ctx, Stmt


def _nodes(item: Any) -> list[Node]:
    if isinstance(item, Node):
        return [item]
    if isinstance(item, Branch):
        return [n for x in item.body for n in _nodes(x)] + [item.join]
    return list(item.nodes)


def attention_block(b: Branch, ctx: Ctx, conv_pad: Callable, node_macs: Callable) -> Stmt | None:
    """The `attn` statement a residual branch is, or None (`conv_pad` and `node_macs` are the
    recognisers' padding rule and Mult-Adds of a node)."""
    nodes = [n for x in b.body for n in _nodes(x)]
    x = ctx.shape_in(b)
    if len(x) != 3 or b.join.op != "add":
        return None
    convs = [n for n in nodes if n.op == "conv"]
    if len(convs) not in (4, 6) or any(c.attrs["bias"] and not c.attrs.get("folded_bn")
                                       for c in convs):
        return None
    pw = [c for c in convs if c.attrs["kernel"] == (1, 1) and c.attrs["groups"] == 1]
    dw = [c for c in convs if c not in pw]
    if len(pw) != 4 or len(dw) not in (0, 2):
        return None
    after = {n.inputs[0]: n for n in nodes if n.inputs}

    def normed(c: Node) -> bool:
        return bool(c.attrs.get("folded_bn")) or getattr(after.get(c.output), "op", "") == "bn"

    if any(normed(c) for c in pw) or not all(normed(c) for c in dw):
        return None  # attn's 1×1s have no batchnorm, its downsampling depthwise ones have
    query, out = pw[0], pw[-1]
    kv = {c.attrs["out_channels"] for c in pw[1:3]}
    q_out = query.attrs["out_channels"]
    if len(kv) != 1 or out.attrs["out_channels"] != x[0]:
        return None
    kv_out = kv.pop()
    side = x[1] * x[2]
    # the heads and head dimension: a tensor of H × L × D with H·D the query's width
    cands = {(s[0], s[2]) for n in nodes if n.op == "unknown"
             for s in [n.attrs.get("out_shape")] if s and len(s) == 3 and s[1] == side
             and s[0] * s[2] == q_out}
    stride, kernel, pad = 1, 3, "same"
    if dw:
        a = dw[0].attrs
        stride, kernel = a["stride"][0], a["kernel"][0]
        pad = conv_pad(dw[0], x)
        if pad not in ("same", "tf") or any(d.attrs["stride"] != a["stride"] or
                                            d.attrs["kernel"] != a["kernel"] for d in dw):
            return None
    bn = nodes[0].op == "bn"
    ls = any(n.op == "layerscale" for n in nodes)
    measured = sum(node_macs(n, ctx.shapes) for n in nodes)
    for heads, d in sorted(cands):
        if kv_out % d:
            continue
        stmt = LayerDef("attn", channels=Channels(x[0]), heads=heads, head_dim=d,
                        kv_heads=kv_out // d, kv_stride=stride, kernel=kernel, bn=bn,
                        layer_scale=ls, pad=pad)
        try:
            spec = Spec("attn", x[1], Channels(x[0], "fixed"), (stmt,), Rounding(), "none")
            layers = build(spec, 1, x[1])
        except Exception:  # noqa: BLE001, S112 - a statement that does not build is not this block
            continue
        from ..engine.cost import layer_cost

        if sum(layer_cost(ly).macs for ly in layers) == measured:
            return Stmt(stmt, x, x, len(layers), [n.name for n in nodes])
    return None


__all__ = ["attention_block"]
