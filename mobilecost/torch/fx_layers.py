"""What model libraries write that torch.fx reads whole (`mobilecost.torch.fx` uses them).

timm's and geffnet's code has three things fx cannot trace into, or should not: `Conv2dSame`,
a Conv2d subclass padding at run time with arithmetic on the input's size (`_Tracer` keeps
every Conv2d a leaf; `run_time_pads` reads its padding from the shapes it maps); activation
modules whose forward calls TorchScript (geffnet's `HardSwishMe`: `activation_of` probes a
parameter-free module against torch's activations); and MixNet's `MixedConv2d`, a split, a
convolution per part and a concatenation, read as one operation (`mixed_convs`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn
from torch.nn import functional as F


class Tracer(fx.Tracer):
    """fx's tracer with every Conv2d a leaf, subclasses included: timm's and geffnet's
    `Conv2dSame` pad at run time from the input's size (TensorFlow's SAME), Python arithmetic
    on shapes that fx cannot trace; as a leaf it keeps its attributes, and its padding is read
    from the shapes it maps (`run_time_pads`)."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return (isinstance(m, nn.Conv2d) or super().is_leaf_module(m, qualname)
                or activation_of(m) is not None)


#: The activations a module outside torch.nn may compute, by the function that does.
_PROBES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu, "relu6": F.relu6, "hswish": F.hardswish, "hsigmoid": F.hardsigmoid,
    "sigmoid": torch.sigmoid, "silu": F.silu, "gelu": F.gelu}


def activation_of(m: nn.Module) -> str | None:
    """The activation a module of a library's own computes (geffnet's `HardSwishJit`, whose
    forward calls a TorchScript function fx cannot trace): one without parameters or
    submodules whose output equals one of torch's activations on values from -8 to 8."""
    if type(m).__module__.startswith("torch.") or next(m.children(), None) is not None or \
            next(m.parameters(), None) is not None or isinstance(m, fx.GraphModule):
        return None
    cached = m.__dict__.get("_mobilecost_activation", False)
    if cached is not False:
        return cached
    x = torch.linspace(-8, 8, 400).reshape(1, 16, 5, 5)
    found = None
    try:
        with torch.no_grad():
            y = m(x.clone())
        if isinstance(y, torch.Tensor) and y.shape == x.shape:
            found = next((name for name, f in _PROBES.items()
                          if torch.allclose(y, f(x), rtol=1e-5, atol=1e-6)), None)
    except Exception:  # noqa: BLE001 - any failure: not an activation
        found = None
    m.__dict__["_mobilecost_activation"] = found
    return found


_SPLITS = (torch.split, torch.chunk, "split", "chunk")


def mixed_convs(gm: fx.GraphModule, mods: dict) -> tuple[dict, set]:
    """MixNet's MixConv as code writes it (timm's and geffnet's `MixedConv2d`): the channels
    split (`torch.split`, `.split`, `chunk`), a Conv2d on each part, the outputs concatenated
    in order (`torch.cat(..., 1)`). {the cat node: (the split's input, the convolutions, the
    parts' channels)} and the nodes that fused reading stands for."""
    fused, inside = {}, set()
    for n in gm.graph.nodes:
        if n.op not in ("call_function", "call_method") or n.target not in _SPLITS:
            continue
        dim = n.args[2] if len(n.args) > 2 else n.kwargs.get("dim", 0)
        meta = n.meta.get("tensor_meta")
        if dim != 1 or not isinstance(meta, (tuple, list)) or not meta:
            continue
        gets = sorted(n.users, key=lambda u: u.args[1] if len(u.args) > 1 else -1)
        if [u.args[1] if u.target is operator.getitem else None for u in gets] != \
                list(range(len(meta))):
            continue
        convs = [next(iter(u.users)) if len(u.users) == 1 else None for u in gets]
        if not all(c is not None and c.op == "call_module" and isinstance(mods.get(c.target),
                   nn.Conv2d) and len(c.users) == 1 for c in convs):
            continue
        cat = next(iter(convs[0].users))
        if cat.target is not torch.cat or \
                (cat.args[1] if len(cat.args) > 1 else cat.kwargs.get("dim", 0)) != 1 or \
                list(cat.args[0]) != convs:
            continue
        fused[cat] = (n.args[0], convs, [int(m.shape[1]) for m in meta])
        inside |= {n, *gets, *convs}
    return fused, inside


def common_prefix(names: list[str]) -> str:
    """The module path the names share (`blocks.2.0.conv_dw` of `blocks.2.0.conv_dw.0`, ...)."""
    parts = [x.split(".") for x in names]
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common) or names[0]


def run_time_pads(op: str, attrs: dict, before: Any, after: Any) -> tuple[str, dict]:
    """A Conv2d subclass with a forward of its own (timm's and geffnet's Conv2dSame): its
    padding attribute where that gives the output it made, else TensorFlow's SAME where that
    does (what `pad_same` computes from the input size at run time), else unknown."""
    if before is None or after is None or len(before.shape) != 4:
        return "unknown", attrs
    h, w = (int(v) for v in before.shape[2:])
    got = tuple(int(v) for v in after.shape[2:])
    pads = []
    for size, k, s, d, p in zip((h, w), attrs["kernel"], attrs["stride"], attrs["dilation"],
                                attrs["pads"][:2]):
        if (size + 2 * p - d * (k - 1) - 1) // s + 1 == got[len(pads)]:
            pads.append((p, p))
            continue
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    a = dict(attrs, pads=(pads[0][0], pads[1][0], pads[0][1], pads[1][1]))
    outs = tuple((size + p0 + p1 - d * (k - 1) - 1) // s + 1 for size, (p0, p1), k, s, d in
                 zip((h, w), pads, a["kernel"], a["stride"], a["dilation"]))
    return ("conv", a) if outs == got else ("unknown", attrs)


__all__ = ["Tracer", "activation_of", "common_prefix", "mixed_convs", "run_time_pads"]
