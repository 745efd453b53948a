"""The op table: every layer op declared once.

An op is one class registered with `@register` (`lang.opbase`); `OPS` maps its name to its one
instance. It declares, in one place:

* its **grammar**: positional arguments and options, each with how its text is read and
  written (the shared ones are below; an op declares its own beside it), for the ops written
  as a statement of a spec; the canonical text (`text`) follows from it;
* how the spec **builder** turns the statement into concrete layers (`build`: one `emit`,
  or several, as `ir` does), and what else makes a statement wrong (`check`);
* for the ops that are concrete layers: its **kind** (a `LayerKind`), its **size rule**
  (`out_size`), its **cost rules** (Mult-Adds, weights, biases, batchnorm parameters,
  elements read) and how Table 1 prints it (`describe`, `filter_shape`).

The torch module of each concrete op is registered, under the same name, in
`mobilecost.torch.build.MODULES` (only `mobilecost.torch` imports torch).

Adding an op: write one `Op` subclass here with `@register` (its options too, if it has new
ones), its torch module in `mobilecost/torch/build.py` with `@register_module`, and its
tests; `tests/lang/test_ops.py` checks that every op has what its role needs. The grid engine
runs `build` with channel counts that are int64 arrays over α (see `Op.build`): integer
arithmetic and `lang.values`' helpers run on both; an op that cannot declares
`vector_channels = False` and is walked one α at a time.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .kinds import ACTIVATIONS, LayerKind
from .opbase import (
    FIELDS,
    OPS,
    STATEMENTS,
    Arg,
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
    layer_ops,
    positive,
    register,
    statement_ops,
    window,
    yes_no,
    yes_no_text,
)
from .values import (
    MAX_CHANNELS,
    at_least,
    exact_text,
    make_divisible_ratio,
    product,
    round_ratio,
)

# --------------------------------------------------------------------------- pure formulas


def conv_macs(kernel: int, in_channels: int, out_channels: int, out_size: int, groups: int = 1) -> int:
    """K·K·(M/g)·N·D_F·D_F: eq. (2) for g = 1, eq. (4) for depthwise (g = M = N)."""
    return kernel * kernel * (in_channels // groups) * out_channels * out_size * out_size


def conv_params(kernel: int, in_channels: int, out_channels: int, groups: int = 1) -> int:
    """K·K·(M/g)·N weights."""
    return kernel * kernel * (in_channels // groups) * out_channels


def fc_macs(in_features: int, out_features: int) -> int:
    return in_features * out_features


#: Squeeze-and-excitation's squeeze width is make_divisible(c / r, SE_DIVISOR) for c channels
#: and ratio r, as in MobileNetV3 (TF-slim, torchvision, Keras) and MnasNet, whatever the spec's
#: own rounding rule.
SE_DIVISOR = 8

#: The gates squeeze-and-excitation may end with: hard-sigmoid (MobileNetV3), sigmoid (MnasNet).
GATES = ("hsigmoid", "sigmoid")

#: What an inverted residual's squeeze width is taken from: `exp`, the expanded width c,
#: make_divisible(c / R, 8) (MobileNetV3: TF-slim, torchvision, Keras); `in`, the block's input
#: width, max(1, int(in / R)) (MnasNet-A1 and EfficientNet in TensorFlow's reference code:
#: `max(1, int(input_filters * se_ratio))`).
SQUEEZE_FROM = ("exp", "in")


# --------------------------------------------------------------------------- shared grammar

KERNEL = Arg("kernel", "a kernel size", kernel_size("a kernel size"))
CHANNELS = Arg("channels", "a channel count", channel_count("channel count"))
WINDOW = Arg("kernel", "a kernel size or 'global'", window,
             lambda k: "global" if k == 0 else str(k))
RATIO = Arg("se", "an SE ratio", positive("SE ratio", MAX_CHANNELS))

STRIDE = Option("s", "stride", 1, kernel_size("stride"))
ACT = Option("act", "act", None, choice("act", tuple(ACTIVATIONS)))
BN = Option("bn", "bn", True, yes_no("bn"), yes_no_text)


def _pad(text: str) -> str:
    if text not in ("same", "valid"):
        raise ValueError("pad must be same or valid")
    return text


PAD = Option("pad", "pad", "same", _pad)
GATE = Option("gate", "gate", "hsigmoid", choice("gate", GATES))


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
        return f"{k}×{k}×{x.in_channels}×{x.out_channels}"


@register
class Conv(_Conv):
    """`conv K CH`: a full K×K convolution (a 1×1 one is a pointwise layer)."""

    name, kind, table1 = "conv", LayerKind.CONV, "Conv"
    grammar = Grammar((KERNEL, CHANNELS), (STRIDE, ACT, BN, PAD))

    def build(self, b: Builder, d: LayerDef) -> None:
        b.emit("pw" if d.kernel == 1 else "conv", d.kernel, d.stride, b.ch(d.channels), pad=d.pad,
               act=d.act or b.spec.activation, bn=d.bn, line=d.line)


@register
class Depthwise(_Conv):
    """`dw K`: a depthwise K×K convolution, one filter per channel (groups = channels)."""

    name, kind, table1 = "dw", LayerKind.DEPTHWISE, "Conv dw"
    grammar = Grammar((KERNEL,), (STRIDE, ACT, BN, PAD))

    def build(self, b: Builder, d: LayerDef) -> None:
        b.emit("dw", d.kernel, d.stride, b.channels, pad=d.pad, groups=b.channels,
               act=d.act or b.spec.activation, bn=d.bn, line=d.line)

    def filter_shape(self, x: Any) -> str:
        return f"{x.kernel}×{x.kernel}×{x.in_channels} dw"


@register
class Pointwise(_Conv):
    """`pw CH`: a 1×1 convolution."""

    name, kind, table1 = "pw", LayerKind.POINTWISE, "Conv"
    grammar = Grammar((CHANNELS,), (STRIDE, ACT, BN))

    def build(self, b: Builder, d: LayerDef) -> None:
        b.emit("pw", d.kernel, d.stride, b.ch(d.channels), pad=d.pad,
               act=d.act or b.spec.activation, bn=d.bn, line=d.line)


@register
class InvertedResidual(Op):
    """`ir CH`: MobileNetV2's inverted residual: 1×1 expansion to T·in channels rounded by
    `expanded_width` (none when T = 1; T may be a fraction, 2.5 or 7/3), or to the explicit width `h=` scaled by the
    spec's rounding (none when it equals the input's, MobileNetV3's 16 → 16), depthwise K×K
    with the stride, optional squeeze-and-excitation, linear 1×1 projection to CH; a residual
    add around them when the stride is 1 and the input has CH channels. Not a layer itself."""

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
            b.emit("dw", d.kernel, d.stride, b.channels, groups=b.channels, act=act, bn=True,
                   line=d.line)
            if d.se:  # MobileNetV3: on the depthwise output, before the projection
                squeeze_excite(b, d.se, "relu", d.gate, d.line,
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
    """`se R`: squeeze-and-excitation on the current map (see `squeeze_excite`); `act=` is the
    activation between its two 1×1 convolutions (ReLU by default, as in MobileNetV3 and
    MnasNet), `gate=` hsigmoid (MobileNetV3, the default) or sigmoid (MnasNet). Not a layer
    itself: it builds a pool, two 1×1 convolutions and a scale."""

    name = "se"
    grammar = Grammar((RATIO,), (ACT, GATE))

    def build(self, b: Builder, d: LayerDef) -> None:
        squeeze_excite(b, d.se, d.act or "relu", d.gate, d.line)

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
# OPS, STATEMENTS and FIELDS are opbase's, filled by the `@register`s above: import them from here.
__all__ = ["ACT", "BN", "CHANNELS", "FIELDS", "GATE", "GATES", "KERNEL", "OPS", "PAD", "RATIO",
           "SE_DIVISOR", "SQUEEZE_FROM", "STATEMENTS", "STRIDE", "WINDOW", "conv_macs",
           "conv_params", "expanded_width", "fc_macs", "layer_ops", "squeeze_excite",
           "statement_ops"]
