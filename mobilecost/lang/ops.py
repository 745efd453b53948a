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

from ..errors import ConfigError, MobilecostError
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
#: A convolution's own bias (`bias=yes`: one per output channel; the head's 1×1 convolution of
#: MobileNetV3 and LCNet after the global pool, which has no batchnorm).
CONV_BIAS = Option("bias", "own_bias", False, yes_no("bias"), yes_no_text)


def _pad(text: str) -> str:
    if text not in ("same", "valid", "tf"):
        raise ValueError("pad must be same, valid or tf")
    return text


#: Padding: `same` pads K // 2 on every side (torch's and timm's symmetric padding; odd
#: kernels), `tf` TensorFlow's SAME (the `tf_` ports of timm: max((⌈h/s⌉ - 1)·s + K - h, 0)
#: rows in all, the odd one at the bottom and right; any kernel), `valid` none. `same` and
#: `tf` give the same output side, ⌈h/s⌉, hence the same cost; the numbers differ.
PAD = Option("pad", "pad", "same", _pad)
PAD_SAME = Option("pad", "pad", "same", choice("pad", ("same", "tf")))  # blocks: no valid
GATE = Option("gate", "gate", "hsigmoid", choice("gate", GATES))
GROUPS = Option("g", "groups", 1, positive("groups"))
EXPAND = Option("t", "expand", 6, expansion, exact_text)
LAYER_SCALE = Option("ls", "layer_scale", False, yes_no("ls"), yes_no_text)


def kernel_or_none(what: str):
    """A reader of a kernel size or 0 (no such convolution)."""
    read_positive = positive(what)

    def read(text: str) -> int:
        return 0 if text == "0" else read_positive(text)

    return read


def kernel_list(text: str) -> tuple[int, ...]:
    """Kernel sizes separated by commas, `3,5,7`: one per channel group."""
    return tuple(positive("each kernel size")(k) for k in text.split(","))


def _odd(pad: str, *kernels: tuple[str | None, int]) -> tuple[str, str | None] | None:
    """The refusal of an even kernel under `same` padding (0: no convolution), with the key of
    the option that set it (None: the first argument)."""
    if pad == "same":
        for key, k in kernels:
            if k and k % 2 == 0:
                return "SAME padding needs an odd kernel size (pad=tf takes any)", key
    return None


def check_groups(b: Builder, d: LayerDef, out: int) -> None:
    """Refuse a grouped convolution whose channels the groups do not divide."""
    g = d.groups
    if g > 1 and (b.channels % g or out % g):
        raise ConfigError(f"{b.where(d.line)}: '{d.op} ... g={g}' needs input and output "
                          f"channels divisible by {g}, got {b.channels} and {out} at alpha "
                          f"{float(b.alpha):g}")


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
# --------------------------------------------------------------------------- MobileNetV4's blocks
# The Universal Inverted Bottleneck, the fused one, and attention (Qin et al., MobileNetV4,
# arXiv:2404.10518; as timm's `_gen_mobilenet_v4` and tensorflow/models'
# official/vision/modeling/backbones/mobilenet.py build them).


@register
class UniversalInvertedBottleneck(Op):
    """`uib CH [sS] [a=K] [k=K] [t=T] [act=ACT] [ls=yes] [pad=same|tf]`: MobileNetV4's
    Universal Inverted Bottleneck. An optional depthwise a×a convolution on the input
    (batchnorm, no activation), a 1×1 expansion to make_divisible(in·T, 8) under
    `rounding multiple 8` (round(in·T) under `rounding int`; always there, even at T = 1),
    an optional depthwise k×k convolution on the expanded map (batchnorm and the activation),
    the linear 1×1 projection to CH, `ls=yes` a layer scale, and a residual add when the stride
    is 1 and the input has CH channels. The stride is on the k×k convolution, or on the a×a one
    where there is no k×k (timm's UniversalInvertedResidual, TensorFlow's UIB with
    middle_dw_downsample). Its four cases: IB (a=0, k>0: MobileNetV2's block), ConvNext-like
    (a>0, k=0), ExtraDW (a>0, k>0) and FFN (a=0, k=0, which cannot stride). Not a layer."""

    name = "uib"
    grammar = Grammar((CHANNELS,), (
        STRIDE,
        Option("a", "start", 0, kernel_or_none("start kernel size")),
        Option("k", "kernel", 1, kernel_or_none("kernel size")),
        EXPAND, ACT, LAYER_SCALE, PAD_SAME,
    ), defaults=(("kernel", 3), ("expand", 4)))

    def check(self, d: LayerDef, written: frozenset[str]) -> tuple[str, str | None] | None:
        if d.stride > 1 and not (d.start or d.kernel):
            return "a uib with no depthwise convolution (a=0 k=0, FFN) cannot stride", "s"
        return _odd(d.pad, ("a", d.start), ("k", d.kernel))

    def build(self, b: Builder, d: LayerDef) -> None:
        out = b.ch(d.channels)
        act = d.act or b.spec.activation
        hidden = expanded_width(b.channels, d.expand, b.spec.rounding)

        def body() -> None:
            if d.start:
                b.emit("dw", d.start, 1 if d.kernel else d.stride, b.channels, pad=d.pad,
                       groups=b.channels, act="none", bn=True, line=d.line)
            b.emit("pw", 1, 1, hidden, act=act, bn=True, line=d.line)
            if d.kernel:
                b.emit("dw", d.kernel, d.stride, hidden, pad=d.pad, groups=hidden, act=act,
                       bn=True, line=d.line)
            b.emit("pw", 1, 1, out, act="none", bn=True, line=d.line)
            if d.layer_scale:
                b.emit("layerscale", 1, 1, out, line=d.line)

        if d.stride == 1 and b.channels == out:
            b.residual(body, d.line)
        else:
            body()

    def max_layers(self, d: LayerDef) -> int:
        """Start depthwise, expansion, middle depthwise, projection, layer scale, add."""
        return 6


@register
class FusedInvertedBottleneck(Op):
    """`fused CH [sS] [t=T] [k=K] [act=ACT] [ls=yes] [pad=same|tf]`: the fused inverted
    bottleneck (MobileNetV4's FusedIB, EfficientNetV2's Fused-MBConv, timm's EdgeResidual): a
    full K×K convolution with the stride to the hidden width (as `uib`'s, from the input width
    times T; batchnorm and the activation), the linear 1×1 projection to CH, `ls=yes` a layer
    scale, and a residual add when the stride is 1 and the input has CH channels. Not a
    layer."""

    name = "fused"
    grammar = Grammar((CHANNELS,), (
        STRIDE, EXPAND, Option("k", "kernel", 1, positive("kernel size")), ACT, LAYER_SCALE,
        PAD_SAME,
    ), defaults=(("kernel", 3), ("expand", 4)))

    def build(self, b: Builder, d: LayerDef) -> None:
        out = b.ch(d.channels)
        act = d.act or b.spec.activation
        hidden = expanded_width(b.channels, d.expand, b.spec.rounding)

        def body() -> None:
            b.emit("pw" if d.kernel == 1 else "conv", d.kernel, d.stride, hidden, pad=d.pad,
                   act=act, bn=True, line=d.line)
            b.emit("pw", 1, 1, out, act="none", bn=True, line=d.line)
            if d.layer_scale:
                b.emit("layerscale", 1, 1, out, line=d.line)

        if d.stride == 1 and b.channels == out:
            b.residual(body, d.line)
        else:
            body()

    def max_layers(self, d: LayerDef) -> int:
        return 4


@register
class Attention(Op):
    """`attn CH [heads=H] [d=D] [kv=N] [kvs=S] [k=K] [bn=yes|no] [ls=yes] [pad=same|tf]`:
    self-attention on the map, as MobileNetV4's blocks (timm's MobileAttention with
    MultiQueryAttention2d; TensorFlow's MultiHeadSelfAttentionBlock): batchnorm (`bn=no`: none),
    the query as a 1×1 convolution to H·D channels, the key and the value each as a 1×1
    convolution to N·D channels (N key/value heads: `kv=1` is Mobile MQA, multi-query, whose
    H query heads share one key and value; N = H, the default, plain multi-head attention),
    each after its own depthwise K×K convolution with stride S and batchnorm when S > 1 (the
    key/value downsampling), then softmax(Q·Kᵀ/√D)·V (the layer `sdpa`), the output as a 1×1
    convolution to CH, `ls=yes` a layer scale, and a residual add when the input has CH
    channels. No convolution here has a bias or an activation. H, D and N do not scale with α;
    CH does. Not a layer: it builds the layers named, a `tap` before each of the key and the
    value (they read the map the query reads) and a `concat` of the key and the value."""

    name = "attn"
    grammar = Grammar((CHANNELS,), (
        Option("heads", "heads", 8, positive("heads")),
        Option("d", "head_dim", 64, positive("head dimension")),
        Option("kv", "kv_heads", None, positive("key/value heads")),
        Option("kvs", "kv_stride", 1, positive("key/value stride")),
        Option("k", "kernel", 1, positive("kernel size")),
        BN, LAYER_SCALE, PAD_SAME,
    ), defaults=(("kernel", 3),))

    def default(self, field: str, d: LayerDef) -> Any:
        if field == "kv_heads":  # plain multi-head attention: a key and a value per head
            return d.heads
        return super().default(field, d)

    def check(self, d: LayerDef, written: frozenset[str]) -> tuple[str, str | None] | None:
        if d.heads % d.kv_heads:
            return f"kv={d.kv_heads} key/value heads must divide heads={d.heads}", "kv"
        if "k" in written and d.kv_stride == 1:
            return "k= is the key/value downsampling kernel: it needs kvs= above 1", "k"
        return _odd(d.pad, ("k", d.kernel if d.kv_stride > 1 else 0))

    def build(self, b: Builder, d: LayerDef) -> None:
        out, c = b.ch(d.channels), b.channels
        q, kv = d.heads * d.head_dim, d.kv_heads * d.head_dim

        def body() -> None:
            if d.bn:
                b.emit("norm", 1, 1, c, bn=True, line=d.line)
            reads = len(b.layers)  # this layer's input is the (normed) map
            b.emit("pw", 1, 1, q, line=d.line)  # the query
            query = len(b.layers)  # the key's tap: its input is the query
            joins = []  # each tap's index: the key's input is the query, the value's the key
            for _ in ("key", "value"):
                joins.append(len(b.layers))
                b.emit("tap", 1, 1, c, skip_from=reads, line=d.line)  # the normed map again
                reads = len(b.layers)
                if d.kv_stride > 1:
                    b.emit("dw", d.kernel, d.kv_stride, c, pad=d.pad, groups=c, bn=True,
                           line=d.line)
                b.emit("pw", 1, 1, kv, line=d.line)
            b.emit("concat", 1, 1, 2 * kv, skip_from=joins[1], line=d.line)  # key, value
            b.emit("sdpa", d.kv_heads, 1, q, groups=d.heads, skip_from=query, line=d.line)
            b.emit("pw", 1, 1, out, line=d.line)  # the output projection
            if d.layer_scale:
                b.emit("layerscale", 1, 1, out, line=d.line)

        if c == out:
            b.residual(body, d.line)
        else:
            body()

    def max_layers(self, d: LayerDef) -> int:
        """Norm, query, two taps, two downsampling convolutions, key, value, concat,
        attention, output, layer scale, add."""
        return 13


def _too_large(a_in: Any, a_out: Any) -> None:
    """Refuse a_in · a_out past 64 bits on a grid (numpy would wrap silently)."""
    if hasattr(a_in, "max") and getattr(a_in, "size", 1) and \
            int(a_in.max()) * int(a_out.max()) > (1 << 63) - 1:
        raise MobilecostError("attention's Q·Kᵀ would exceed 64-bit integers on this grid; "
                              "sweep smaller resolutions")


@register
class ScaledDotProductAttention(Op):
    """Attention's core, softmax(Q·Kᵀ/√d)·V, one layer: its input is the key and the value,
    concatenated (N·d channels each on the L_kv positions of their map, area a_in); the query
    (H·d channels, L_q positions) is the map saved at `skip_from`, and the output (H·d
    channels) has the query's shape. It carries the query heads H as its groups and the
    key/value heads N as its kernel (d = out / H). Mult-Adds, as FlopCounterMode counts
    scaled_dot_product_attention and the two matmuls: Q·Kᵀ, H·d·L_q·L_kv, and the weighted sum
    of V, the same: channel factor H·2d = H·in/N, spatial factor a_out·a_in. The softmax is
    H·L_q·L_kv elementwise ops (and the 1/√d scale none: it folds into the query projection).
    No weights. Elements read: the key and the value (the query is read too, H·d·L_q, which the
    product form cannot add)."""

    name, kind, table1 = "sdpa", LayerKind.ATTENTION, "Attention"
    side_from_skip = True

    def macs_channels(self, x: Any) -> Any:
        return x.groups * x.in_channels // x.kernel

    def macs_spatial(self, a_in: Any, a_out: Any) -> Any:
        _too_large(a_in, a_out)
        return a_in * a_out

    def weights_channels(self, x: Any) -> Any:
        return 0 * x.in_channels

    def elementwise_channels(self, x: Any) -> Any:
        return x.groups

    def elementwise_spatial(self, a_in: Any, a_out: Any) -> Any:
        _too_large(a_in, a_out)
        return a_in * a_out

    def describe(self, x: Any) -> str:
        return f"Attention / {x.groups} heads"

    def filter_shape(self, x: Any) -> str:
        d = x.out_channels // x.groups
        return f"{x.groups}×{d} Q, {x.kernel}×{d} K, V"


# --------------------------------------------------------------------------- parallel paths

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


# OPS, STATEMENTS and FIELDS are opbase's, filled by the `@register`s above: import them from here.
__all__ = ["ACT", "BN", "CHANNELS", "EXPAND", "FIELDS", "GATE", "GATES", "GROUPS", "KERNEL",
           "LAYER_SCALE", "OPS", "PAD", "PAD_SAME", "RATIO", "SE_DIVISOR", "SQUEEZE_FROM",
           "STATEMENTS", "STRIDE", "WINDOW", "conv_macs", "conv_params", "expanded_width",
           "fc_macs", "kernel_list", "kernel_or_none", "layer_ops", "squeeze_excite",
           "statement_ops"]
