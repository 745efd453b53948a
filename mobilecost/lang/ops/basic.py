"""The ops of MobileNet v1 to V3 and MnasNet: convolutions (full, depthwise, pointwise), the
inverted residual, squeeze-and-excitation, pools, the fully connected layer, the residual add
and SE's scale."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..kinds import ACTIVATIONS, LayerKind
from ..opbase import (
    Builder,
    Grammar,
    LayerDef,
    Op,
    Option,
    areas,
    channel_count,
    choice,
    expansion,
    kernel_size,
    positive,
    register,
    yes_no,
    yes_no_text,
)
from ..values import (
    MAX_CHANNELS,
    at_least,
    exact_text,
    make_divisible_ratio,
    product,
    round_ratio,
)
from .common import (
    ACT,
    BN,
    CHANNELS,
    CONV_BIAS,
    GATE,
    GROUPS,
    KERNEL,
    PAD,
    PAD_SAME,
    RATIO,
    SE_DIVISOR,
    SQUEEZE_FROM,
    STRIDE,
    WINDOW,
    check_groups,
    conv_params,
    fc_macs,
)


class _Conv(Op):
    """A convolution (conv, dw and pw differ in grammar, building and Table 1's shape)."""

    def macs_channels(self, x: Any) -> Any:
        return conv_params(x.kernel, x.in_channels, x.out_channels, x.groups)

    def macs_spatial(self, a_in: Any, a_out: Any) -> Any:
        return a_out

    def weights_channels(self, x: Any) -> Any:
        return conv_params(x.kernel, x.in_channels, x.out_channels, x.groups)

    def weights_spatial(self, a_in: Any, a_out: Any) -> Any:
        return 0 * a_in + 1

    def bn_params(self, x: Any) -> Any:
        """Batchnorm's γ and β per output channel (running statistics are buffers)."""
        return 2 * x.out_channels * x.bn

    def bias_params(self, x: Any) -> Any:
        """One bias per output channel where the layer has them (squeeze-and-excitation's)."""
        return x.out_channels * x.bias

    def elementwise_channels(self, x: Any) -> Any:
        """The activation on every output element (`act_ops`: 1, or 0 for none);
        batchnorm folds into the convolution at inference and counts nothing."""
        return x.out_channels * x.act_ops

    def filter_shape(self, x: Any) -> str:
        k = x.kernel
        grouped = f" g={x.groups}" if x.groups > 1 else ""
        return f"{k}×{k}×{x.in_channels // x.groups}×{x.out_channels}{grouped}"


@register
class Conv(_Conv):
    """`conv K CH`: a full K×K convolution (a 1×1 one is a pointwise layer); `g=G`: grouped,
    G groups of in/G channels each."""

    name, kind, table1 = "conv", LayerKind.CONV, "Conv"
    grammar = Grammar((KERNEL, CHANNELS), (STRIDE, ACT, BN, PAD, GROUPS, CONV_BIAS))

    def build(self, b: Builder, d: LayerDef) -> None:
        out = b.ch(d.channels)
        check_groups(b, d, out)
        b.emit("pw" if d.kernel == 1 else "conv", d.kernel, d.stride, out, pad=d.pad,
               groups=d.groups, act=d.act or b.spec.activation, bn=d.bn, bias=d.own_bias,
               line=d.line)


@register
class Depthwise(_Conv):
    """`dw K`: a depthwise K×K convolution, one filter per channel (groups = channels)."""

    name, kind, table1 = "dw", LayerKind.DEPTHWISE, "Conv dw"
    grammar = Grammar((KERNEL,), (STRIDE, ACT, BN, PAD, CONV_BIAS))

    def build(self, b: Builder, d: LayerDef) -> None:
        b.emit("dw", d.kernel, d.stride, b.channels, pad=d.pad, groups=b.channels,
               act=d.act or b.spec.activation, bn=d.bn, bias=d.own_bias, line=d.line)

    def filter_shape(self, x: Any) -> str:
        return f"{x.kernel}×{x.kernel}×{x.in_channels} dw"


@register
class Pointwise(_Conv):
    """`pw CH`: a 1×1 convolution; `g=G`: grouped (ShuffleNet's group convolution), G
    groups of in/G channels each."""

    name, kind, table1 = "pw", LayerKind.POINTWISE, "Conv"
    grammar = Grammar((CHANNELS,), (STRIDE, ACT, BN, GROUPS, CONV_BIAS))

    def build(self, b: Builder, d: LayerDef) -> None:
        out = b.ch(d.channels)
        check_groups(b, d, out)
        b.emit("pw", d.kernel, d.stride, out, pad=d.pad, groups=d.groups,
               act=d.act or b.spec.activation, bn=d.bn, bias=d.own_bias, line=d.line)


@register
class InvertedResidual(Op):
    """`ir CH`: MobileNetV2's inverted residual: 1×1 expansion to T·in channels rounded by
    `expanded_width` (none when T = 1; T may be a fraction, 2.5 or 7/3), or to the explicit width `h=` scaled by the
    spec's rounding (none when it equals the input's, MobileNetV3's 16 → 16), depthwise K×K
    with the stride, optional squeeze-and-excitation (`seact=`: its inner activation, ReLU by
    default; EfficientNet's and MixNet's is the network's own, SiLU or ReLU), linear 1×1
    projection to CH; a residual add around them when the stride is 1 and the input has CH
    channels. `pad=tf`: the depthwise convolution pads as TensorFlow's SAME. Not a layer
    itself."""

    name = "ir"
    grammar = Grammar((CHANNELS,), (
        STRIDE,
        Option("t", "expand", 6, expansion, exact_text),
        Option("h", "hidden", None, channel_count("hidden width")),
        Option("k", "kernel", 1, kernel_size("kernel size")),
        ACT,
        Option("se", "se", 0, positive("SE ratio", MAX_CHANNELS)),
        GATE,
        Option("squeeze", "squeeze", "exp", choice("squeeze", SQUEEZE_FROM)),
        Option("seact", "se_act", "relu", choice("seact", tuple(ACTIVATIONS))),
        PAD_SAME,
    ), defaults=(("kernel", 3),))

    def check(self, d: LayerDef, written: frozenset[str]) -> tuple[str, str | None] | None:
        if "t" in written and "h" in written:
            return "give the expansion t= or the hidden width h=, not both", "h"
        return super().check(d, written)

    def build(self, b: Builder, d: LayerDef) -> None:
        out = b.ch(d.channels)
        act = d.act or b.spec.activation
        block_in = b.channels
        if d.hidden is not None:  # MobileNetV3's explicit width, scaled by the spec's rounding
            hidden = b.ch(d.hidden)
            expands = hidden != b.channels  # torchvision: no expansion when exp == in
        else:
            hidden = expanded_width(b.channels, d.expand, b.spec.rounding)
            expands = d.expand != 1

        def body() -> None:
            if expands:
                b.emit("pw", 1, 1, hidden, act=act, bn=True, line=d.line)
            b.emit("dw", d.kernel, d.stride, b.channels, pad=d.pad, groups=b.channels, act=act,
                   bn=True, line=d.line)
            if d.se:  # MobileNetV3: on the depthwise output, before the projection
                squeeze_excite(b, d.se, d.se_act, d.gate, d.line,
                               at_least(block_in // d.se, 1) if d.squeeze == "in" else None)
            b.emit("pw", 1, 1, out, act="none", bn=True, line=d.line)

        if d.stride == 1 and b.channels == out:
            b.residual(body, d.line)
        else:
            body()

    def max_layers(self, d: LayerDef) -> int:
        """Expand (unless t=1), depthwise, squeeze-and-excitation's four, project, and an add
        when the stride is 1 (and, known only when built, the channels agree)."""
        return 2 + (d.expand != 1 or d.hidden is not None) + 4 * (d.se > 0) + (d.stride == 1)


def expanded_width(channels: int, t: Any, rounding: Any) -> int:
    """The hidden width of an inverted residual on `channels` inputs with expansion `t`, by the
    spec's rounding rule: `rounding multiple N` gives make_divisible(in·t, N), as TF-slim's
    expand_input_by_factor, Keras and timm do; `rounding int` gives round(in·t), as
    torchvision's MobileNetV2 does (half to even, exactly on fractions). The two agree
    whenever in·t is a multiple of N, as in every MobileNetV2 block."""
    t = Fraction(t)  # integer arithmetic only, so that `channels` may be an array over α
    num, den = product(channels, t.numerator), t.denominator
    if rounding.rule == "multiple":
        return make_divisible_ratio(num, den, rounding.divisor)
    return round_ratio(num, den)


def squeeze_excite(b: Builder, ratio: int, act: str, gate: str, line: int,
                   squeeze: int | None = None) -> None:
    """Emit squeeze-and-excitation on the current c-channel map: global average pool, 1×1
    convolution with bias to `squeeze` channels (default make_divisible(c / ratio, 8)) and
    `act`, 1×1 convolution with bias back to c and the `gate`, then the channel-wise scale of
    the map the pool read."""
    c, start = b.channels, len(b.layers)
    if squeeze is None:
        squeeze = make_divisible_ratio(c, ratio, SE_DIVISOR)  # make_divisible(c / ratio, 8)
    b.emit("avgpool", b.size, 1, c, pad="global", line=line)
    b.emit("pw", 1, 1, squeeze, act=act, bias=True, line=line)
    b.emit("pw", 1, 1, c, act=gate, bias=True, line=line)
    b.emit("scale", 1, 1, c, skip_from=start, line=line)


@register
class SqueezeExcite(Op):
    """`se R [w=S]`: squeeze-and-excitation on the current map (see `squeeze_excite`); `act=` is the
    activation between its two 1×1 convolutions (ReLU by default, as in MobileNetV3 and
    MnasNet), `gate=` hsigmoid (MobileNetV3, the default) or sigmoid (MnasNet). Not a layer
    itself: it builds a pool, two 1×1 convolutions and a scale."""

    name = "se"
    grammar = Grammar((RATIO,), (ACT, GATE, Option("w", "squeeze_width", None,
                                                  channel_count("squeeze width"))))

    def build(self, b: Builder, d: LayerDef) -> None:
        """`w=S`: the squeeze width itself (scaled by the spec's rounding), where no ratio
        gives it: MixNet's squeezes from the block's input, 144 channels to int(24 · 0.5)."""
        squeeze_excite(b, d.se, d.act or "relu", d.gate, d.line,
                       None if d.squeeze_width is None else b.ch(d.squeeze_width))

    def max_layers(self, d: LayerDef) -> int:
        return 4


class _Pool(Op):
    """`avgpool K [sS]`, `avgpool global`: pooling without padding; the stride defaults to K,
    and a global window is the whole map (its kernel is the map's side where it is built)."""

    kind = LayerKind.POOL
    grammar = Grammar((WINDOW,), (STRIDE,), defaults=(("pad", "valid"),))

    def options_for(self, d: LayerDef) -> tuple[Option, ...]:
        """None for a global window."""
        return () if d.kernel == 0 else super().options_for(d)

    def default(self, field: str, d: LayerDef) -> Any:
        if field == "stride":
            return d.kernel or 1
        return super().default(field, d)

    def build(self, b: Builder, d: LayerDef) -> None:
        if d.kernel:
            b.emit(self.name, d.kernel, d.stride, b.channels, pad="valid", line=d.line)
        else:
            b.emit(self.name, b.size, 1, b.channels, pad="global", line=d.line)

    def filter_shape(self, x: Any) -> str:
        if x.pad == "global":  # the whole map, which need not be square
            return f"Pool {x.in_size}×{x.in_width}"
        return f"Pool {x.kernel}×{x.kernel}"


@register
class AvgPool(_Pool):
    name, table1 = "avgpool", "Avg Pool"


@register
class MaxPool(_Pool):
    name, table1 = "maxpool", "Max Pool"


@register
class FullyConnected(Op):
    """`fc CH`: fully connected on the flattened input (M = in_channels · a_in features: the input map's area)."""

    name, kind, table1 = "fc", LayerKind.FC, "FC"
    grammar = Grammar((CHANNELS,), (ACT, Option("bias", "bias", True, yes_no("bias"), yes_no_text)))

    def build(self, b: Builder, d: LayerDef) -> None:
        """A linear layer, with no activation unless `act=` (MobileNetV3's 1280-wide hidden
        classifier layer is `fc 1280 act=hswish`); never the spec's default activation."""
        b.emit("fc", 1, 1, b.ch(d.channels), pad="valid", bias=d.bias, act=d.act or "none",
               line=d.line)

    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        return 0 * h + 1

    def macs_channels(self, x: Any) -> Any:
        return fc_macs(x.in_channels, x.out_channels)

    def macs_spatial(self, a_in: Any, a_out: Any) -> Any:
        return a_in

    def weights_channels(self, x: Any) -> Any:
        return fc_macs(x.in_channels, x.out_channels)

    def weights_spatial(self, a_in: Any, a_out: Any) -> Any:
        return a_in

    def bias_params(self, x: Any) -> Any:
        return x.out_channels * x.bias

    def elementwise_channels(self, x: Any) -> Any:
        """The activation, where the layer has one, on its out_channels outputs (a_out = 1)."""
        return x.out_channels * x.act_ops

    def filter_shape(self, x: Any) -> str:
        return f"{areas(x)[0] * x.in_channels}×{x.out_channels}"


@register
class Add(Op):
    """The residual add closing a `residual { }` block or an `ir`: it reads two maps of its
    output's shape (the block's output and the input saved at `skip_from`)."""

    name, kind, table1 = "add", LayerKind.ADD, "Add"

    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        return h

    def input_channels(self, x: Any) -> Any:
        return 2 * x.out_channels

    def input_spatial(self, a_in: Any, a_out: Any) -> Any:
        return a_out

    def elementwise_channels(self, x: Any) -> Any:
        """One add per output element."""
        return x.out_channels


@register
class Scale(Op):
    """Squeeze-and-excitation's channel-wise scale: the map saved at `skip_from` times the
    c gate values (its input, 1×1×c); its output has the saved map's shape."""

    name, kind, table1 = "scale", LayerKind.SCALE, "SE scale"
    side_from_skip = True

    def input_channels(self, x: Any) -> Any:
        return x.out_channels

    def input_spatial(self, a_in: Any, a_out: Any) -> Any:
        """The gate (c values, a_in = 1) and the saved map (c·a_out)."""
        return a_in + a_out

    def elementwise_channels(self, x: Any) -> Any:
        """One multiply per output element."""
        return x.out_channels
