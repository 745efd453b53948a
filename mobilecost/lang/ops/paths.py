"""Ops of parallel paths and layout: MixNet's mixed depthwise convolution, GhostNet's ghost
module, ShuffleNet's shuffle, batchnorm and layer scale on their own, and the views that
re-read, slice and join maps."""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError
from ..kinds import LayerKind
from ..opbase import (
    Arg,
    Builder,
    Grammar,
    LayerDef,
    Op,
    Option,
    positive,
    register,
)
from .common import ACT, BN, CHANNELS, PAD_SAME, STRIDE, _odd, kernel_list


@register
class MixedDepthwise(Op):
    """`mixdw K,K,... [sS] [act=ACT] [bn=yes|no] [pad=same|tf]`: MixNet's mixed depthwise
    convolution (MixConv): the channels split into one group per kernel, as timm's
    `_split_channels` (c // n each, the first group the remainder too), a depthwise
    convolution of its own kernel on each, with the stride, and the groups concatenated again
    in order. Not a layer: for each group after the first a `tap` of the rest of the map, a
    `take` of the group's channels (the last group is the rest), its `dw`, then the `concat`s."""

    name = "mixdw"
    grammar = Grammar((Arg("kernels", "kernel sizes, one per group (3,5,7)", kernel_list,
                           lambda ks: ",".join(map(str, ks))),),
                      (STRIDE, ACT, BN, PAD_SAME))

    def check(self, d: LayerDef, written: frozenset[str]) -> tuple[str, str | None] | None:
        return _odd(d.pad, *((None, k) for k in d.kernels))

    def build(self, b: Builder, d: LayerDef) -> None:
        c, ks, n = b.channels, d.kernels, len(d.kernels)
        if c < n:
            raise ConfigError(f"{b.where(d.line)}: mixdw splits {c} channels into {n} groups at "
                              f"alpha {float(b.alpha):g}; each needs a channel")
        splits = [c // n] * n
        splits[0] += c - sum(splits)
        act = d.act or b.spec.activation
        rest, remaining, joins = len(b.layers), c, []
        for i, (k, ci) in enumerate(zip(ks, splits)):
            if i:  # the rest of the map again: this tap's input is the last group's output
                joins.append(len(b.layers))
                b.emit("tap", 1, 1, remaining, skip_from=rest, line=d.line)
                rest = len(b.layers)
            if i < n - 1:
                b.emit("take", 1, 1, ci, line=d.line)
            b.emit("dw", k, d.stride, ci, pad=d.pad, groups=ci, act=act, bn=d.bn, line=d.line)
            remaining -= ci
        width = splits[-1]
        for i in range(n - 2, -1, -1):  # group i's output, before the groups after it
            width += splits[i]
            b.emit("concat", 1, 1, width, skip_from=joins[i], line=d.line)

    def max_layers(self, d: LayerDef) -> int:
        return 4 * len(d.kernels)


@register
class Ghost(Op):
    """`ghost CH [sS] [ratio=R] [k=K] [dw=K] [act=ACT] [pad=same|tf]`: GhostNet's ghost
    module: a K×K convolution (1×1 by default) with the stride to ⌈CH/R⌉ channels, a depthwise
    dw×dw convolution (3×3 by default) making R - 1 maps of each of them, both with batchnorm
    and the activation (`act=none`: the module without one), and the two concatenated, cut to
    CH channels. Not a layer: the convolution, the depthwise one and a `concat`."""

    name = "ghost"
    grammar = Grammar((CHANNELS,), (
        STRIDE, Option("ratio", "ratio", 2, positive("ratio")),
        Option("k", "kernel", 1, positive("kernel size")),
        Option("dw", "cheap", 3, positive("cheap kernel size")), ACT, PAD_SAME,
    ))

    def check(self, d: LayerDef, written: frozenset[str]) -> tuple[str, str | None] | None:
        if d.ratio < 2:
            return "a ghost module's ratio is at least 2 (ratio=1 is a convolution)", "ratio"
        return _odd(d.pad, ("k", d.kernel), ("dw", d.cheap))

    def build(self, b: Builder, d: LayerDef) -> None:
        out = b.ch(d.channels)
        act = d.act or b.spec.activation
        init = -(-out // d.ratio)
        b.emit("pw" if d.kernel == 1 else "conv", d.kernel, d.stride, init, pad=d.pad, act=act,
               bn=True, line=d.line)
        primary = len(b.layers)  # this layer's input is the primary convolution's output
        b.emit("dw", d.cheap, 1, init * (d.ratio - 1), pad=d.pad, groups=init, act=act,
               bn=True, line=d.line)
        b.emit("concat", 1, 1, out, skip_from=primary, line=d.line)

    def max_layers(self, d: LayerDef) -> int:
        return 3


@register
class Shuffle(Op):
    """`shuffle G`: ShuffleNet's channel shuffle, G groups of c/G channels interleaved (c
    viewed as G × c/G, transposed); no arithmetic."""

    name, kind, table1 = "shuffle", LayerKind.LAYOUT, "Shuffle"
    grammar = Grammar((Arg("groups", "a group count", positive("group count")),), ())

    def build(self, b: Builder, d: LayerDef) -> None:
        if b.channels % d.groups:
            raise ConfigError(f"{b.where(d.line)}: shuffle {d.groups} needs channels divisible "
                              f"by {d.groups}, got {b.channels} at alpha {float(b.alpha):g}")
        b.emit("shuffle", 1, 1, b.channels, groups=d.groups, line=d.line)

    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        return h

    def describe(self, x: Any) -> str:
        return f"Shuffle / {x.groups} groups"


@register
class Norm(Op):
    """`norm`: batchnorm on its own (attention's pre-norm): γ and β per channel; no
    elementwise ops, as batchnorm folds at inference."""

    name, kind, table1 = "norm", LayerKind.NORM, "BN"
    grammar = Grammar((), ())

    def build(self, b: Builder, d: LayerDef) -> None:
        b.emit("norm", 1, 1, b.channels, bn=True, line=d.line)

    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        return h

    def bn_params(self, x: Any) -> Any:
        return 2 * x.out_channels * x.bn


@register
class LayerScale(Op):
    """`layerscale`: the map times a learned γ per channel (CaiT's layer scale; MobileNetV4's
    hybrids, init 1e-5). γ counts where biases count (`--biases`, the torchvision and keras
    conventions: a per-channel parameter outside the convolutions' and FC layers' weights);
    one multiply per element."""

    name, kind, table1 = "layerscale", LayerKind.SCALE, "Layer scale"
    grammar = Grammar((), ())

    def build(self, b: Builder, d: LayerDef) -> None:
        b.emit("layerscale", 1, 1, b.channels, line=d.line)

    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        return h

    def bias_params(self, x: Any) -> Any:
        return x.out_channels

    def elementwise_channels(self, x: Any) -> Any:
        return x.out_channels


class _View(Op):
    """Channels re-read or cut, not computed: no arithmetic."""

    kind = LayerKind.LAYOUT

    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        return h


@register
class Tap(_View):
    """A map read again: the input of the layer at `skip_from` (a branch starts there: the
    key's and the value's convolutions in `attn`, each group of `mixdw`), its last
    out_channels channels (all of them, or the rest of a split). It reads nothing: its map
    is one already made (and, as every layer's output, counts in the activations)."""

    name, table1 = "tap", "Tap"
    side_from_skip = True

    def input_channels(self, x: Any) -> Any:
        return 0 * x.out_channels


@register
class Take(_View):
    """The first out_channels channels of the map (a group of `mixdw`); its input counts as
    read, as every first layer's does (the engine's activations start from it)."""

    name, table1 = "take", "Slice"


@register
class Concat(Op):
    """The map saved at `skip_from` (the input of that layer) and the current one,
    concatenated along the channels in that order and cut to out_channels (GhostNet's
    module, `mixdw`'s groups, attention's key and value); both have the output's side. It
    reads the out_channels channels it writes."""

    name, kind, table1 = "concat", LayerKind.LAYOUT, "Concat"

    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        return h

    def input_channels(self, x: Any) -> Any:
        return x.out_channels
