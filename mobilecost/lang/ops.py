"""The op table: every layer op declared once, and every layer kind.

An op is one class registered with `@register`; `OPS` maps its name to its one instance. It
declares, in one place:

* its **grammar** (`grammar`: positional arguments and options) and **canonical text**
  (`text`), for the ops written as a statement of a spec;
* how the spec **builder** turns the statement into concrete layers (`build`: one `emit`,
  or several, as `ir` does);
* for the ops that are concrete layers: its **kind** (a `LayerKind`), its **size rule**
  (`out_size`), its **cost rules** (Mult-Adds, weights, biases, batchnorm parameters,
  elements read) and how Table 1 prints it (`describe`, `filter_shape`).

The size and cost rules are plain integer arithmetic on the fields of a `spec.Layer` (any
object with its fields will do), so the same rules run on numpy arrays: the grid engine
(`gridcost`) applies them to every α and resolution of a grid at once, the cost engine
(`cost`) to one layer. Every cost is a channel factor, which depends only on α, times a
spatial factor, which depends only on the resolution: `macs = macs_channels(x) ·
macs_spatial(a_in, a_out)`, and so on, where a_in and a_out are the areas (height × width) of
the layer's input and output maps. That product is what lets a sweep cost a grid of
n_α × n_r configurations from n_α + n_r pieces.

Units: Mult-Adds are multiply-accumulates (FLOPs = 2 × Mult-Adds); elements are tensor
elements (multiply by the dtype's bytes); elementwise ops (`elementwise_channels` ×
`elementwise_spatial`) count one op per output element of each activation, residual add and
channel-wise scale, a quantity of its own, never added to Mult-Adds (see `ACTIVATIONS`).

The torch module of each concrete op is registered, under the same name, in
`mobilecost.torch.build.MODULES` (only `mobilecost.torch` imports torch).

Adding an op: write one `Op` subclass here with `@register`, its torch module in
`mobilecost/torch/build.py` with `@register_module`, and its tests; `tests/test_ops.py` checks
that every op has what its role needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from fractions import Fraction
from typing import Any, Callable, ClassVar, Protocol

from ..errors import MobilecostError


class Builder(Protocol):
    """What an op's `build` works on: the walk of a spec at one (α, resolution). The spec's
    builder is one; the table cannot import it, since it builds by this table."""

    spec: Any       # the Spec: its default activation and rounding rule
    size: int       # the current map's height
    channels: int   # and its channels
    layers: list    # the concrete layers so far

    def ch(self, c: Any) -> int: ...

    def emit(self, op: str, kernel: int, stride: int, out_c: int, **kw: Any) -> None: ...

    def residual(self, body: Callable[[], None], line: int) -> None: ...


#: A layer statement as written (the spec's `LayerDef`): op, kernel, stride, channels and the
#: fields its options set (`OPTIONS`).
LayerDef = Any


# --------------------------------------------------------------------------- layer kinds

class LayerKind(str, Enum):
    """What a layer is, for cost breakdowns (Table 2's rows); its facts are in `KINDS`."""

    CONV = "conv"            # full (standard) convolution, kernel > 1
    DEPTHWISE = "depthwise"  # depthwise convolution
    POINTWISE = "pointwise"  # 1×1 convolution
    FC = "fc"                # fully connected
    POOL = "pool"            # average or max pooling
    ADD = "add"              # residual addition
    SCALE = "scale"          # channel-wise scale (squeeze-and-excitation's last step)

    @property
    def label(self) -> str:
        """Table 2's name of the kind."""
        return KINDS[self].label

    @property
    def short(self) -> str:
        """A short name for column headers ('DW' in '% DW MACs')."""
        return KINDS[self].short

    @property
    def latency_group(self) -> str:
        """The latency model's compute rate the kind runs at: dense, depthwise or other."""
        return KINDS[self].latency_group

    @property
    def time_kind(self) -> str:
        """The profiler's time kind the kind's time is counted under (one of TIME_KINDS)."""
        return KINDS[self].time_kind

    @property
    def has_macs(self) -> bool:
        """Whether layers of the kind do Mult-Adds (a `macs_share_<kind>` column of a sweep)."""
        return KINDS[self].has_macs


@dataclass(frozen=True, slots=True)
class KindInfo:
    label: str          # Table 2's row label, the profiler's kind label
    short: str          # column headers: "% {short} MACs"
    latency_group: str  # dense | depthwise | other: which compute rate the latency model uses
    time_kind: str      # the profiler's kind: the kind itself, or "other"
    has_macs: bool      # does Mult-Adds


#: The one table of layer kinds. Depthwise convolutions do ~9 Mult-Adds per element read and
#: run far slower per Mult-Add than the GEMM-like dense layers: their own latency group.
KINDS: dict[LayerKind, KindInfo] = {
    LayerKind.CONV: KindInfo("Conv (full)", "Conv", "dense", "conv", True),
    LayerKind.DEPTHWISE: KindInfo("Conv DW", "DW", "depthwise", "depthwise", True),
    LayerKind.POINTWISE: KindInfo("Conv 1×1", "1×1", "dense", "pointwise", True),
    LayerKind.FC: KindInfo("Fully Connected", "FC", "dense", "fc", True),
    LayerKind.POOL: KindInfo("Pool", "Pool", "other", "other", False),
    LayerKind.ADD: KindInfo("Add", "Add", "other", "other", False),
    LayerKind.SCALE: KindInfo("Scale (SE)", "Scale", "other", "other", False),
}

#: The profiler's time kinds, in report order: each kind with Mult-Adds, then everything else.
TIME_KINDS: tuple[str, ...] = tuple(dict.fromkeys(
    [i.time_kind for i in KINDS.values() if i.time_kind != "other"] + ["other"]))
TIME_KIND_LABELS: dict[str, str] = {
    **{i.time_kind: i.label for i in KINDS.values() if i.time_kind != "other"},
    "other": "Other (pool, add, scale, glue)",
}
#: Kinds with Mult-Adds, in LayerKind order.
MAC_KINDS: tuple[LayerKind, ...] = tuple(k for k in LayerKind if KINDS[k].has_macs)


# --------------------------------------------------------------------------- activations

#: The activations a layer may end with, and the elementwise ops each costs per output element.
#: Every activation counts one: whatever its arithmetic (hard-swish is x·ReLU6(x + 3)/6, a few
#: operations; sigmoid an exponential and a division), it reads and writes each element once
#: and runs fused or memory-bound on the hardware these networks target, so the count of
#: elements it touches is the comparable figure; the arithmetic inside differs by library and
#: instruction set. `none` (a linear layer, MobileNetV2's projections) costs nothing.
ACTIVATIONS: dict[str, int] = {
    "relu": 1, "relu6": 1, "hswish": 1, "hsigmoid": 1, "sigmoid": 1, "silu": 1, "none": 0,
}


def act_ops(act: str) -> int:
    """Elementwise ops per output element of activation `act` (a name of `ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise MobilecostError(f"unknown activation {act!r}; known: {', '.join(ACTIVATIONS)}") from None


# --------------------------------------------------------------------------- pure formulas

def areas(x: Any) -> tuple[Any, Any]:
    """The input and output areas of a concrete layer: height × width of its maps (`in_size`
    and `out_size` are the heights, `in_width` and `out_width` the widths)."""
    return x.in_size * x.in_width, x.out_size * x.out_width


def conv_macs(kernel: int, in_channels: int, out_channels: int, out_size: int, groups: int = 1) -> int:
    """K·K·(M/g)·N·D_F·D_F: eq. (2) for g = 1, eq. (4) for depthwise (g = M = N)."""
    return kernel * kernel * (in_channels // groups) * out_channels * out_size * out_size


def conv_params(kernel: int, in_channels: int, out_channels: int, groups: int = 1) -> int:
    """K·K·(M/g)·N weights."""
    return kernel * kernel * (in_channels // groups) * out_channels


def fc_macs(in_features: int, out_features: int) -> int:
    return in_features * out_features


def exact_text(x: Any) -> str:
    """A rational number as text that reads back exactly: a whole number ('6'), a decimal
    where one is exact ('0.75', '2.5'), else a fraction ('1/3', '7/3'). The one way α, ρ and
    expansion factors are written, in specs, files and outputs."""
    a = Fraction(x)
    d = a.denominator
    twos = fives = 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return f"{a.numerator}/{a.denominator}"
    places = max(twos, fives)
    if places == 0:
        return str(a.numerator)
    scaled = a.numerator * 10**places // a.denominator
    sign = "-" if scaled < 0 else ""
    digits = str(abs(scaled)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def make_divisible(value: Fraction | int, divisor: int = 8) -> int:
    """The nearest multiple of `divisor` to `value` (halves round up), at least `divisor`, and
    never more than 10% below `value`: TF-slim's, torchvision's and timm's rule for MobileNetV2
    and V3 widths (`rounding multiple N`) and squeeze-and-excitation widths. Exact on fractions."""
    v = Fraction(value)
    out = max(divisor, int(v + Fraction(divisor, 2)) // divisor * divisor)
    if out < Fraction(9, 10) * v:
        out += divisor
    return out


#: Squeeze-and-excitation's squeeze width is make_divisible(c / r, SE_DIVISOR) for c channels
#: and ratio r, as in MobileNetV3 (TF-slim, torchvision, Keras) and MnasNet, whatever the spec's
#: own rounding rule.
SE_DIVISOR = 8


# --------------------------------------------------------------------------- grammar

@dataclass(frozen=True, slots=True)
class Option:
    """An option of a layer statement: which LayerDef field it sets and its default."""

    key: str
    field: str
    default: Any

    def text(self, value: Any) -> str:
        if self.key == "s":
            return f"s{value}"
        if self.key == "t":
            return f"t={exact_text(value)}"
        if isinstance(value, bool):
            return f"{self.key}={'yes' if value else 'no'}"
        return f"{self.key}={value}"


#: Every option a statement can take, in canonical order ('sS' is written without '=').
OPTIONS: dict[str, Option] = {o.key: o for o in (
    Option("s", "stride", 1),
    Option("t", "expand", 6),
    Option("h", "hidden", None),
    Option("k", "kernel", 1),
    Option("act", "act", None),
    Option("se", "se", 0),
    Option("gate", "gate", "hsigmoid"),
    Option("squeeze", "squeeze", "exp"),
    Option("bn", "bn", True),
    Option("pad", "pad", "same"),
    Option("bias", "bias", True),
)}

#: Positional arguments: a kernel size, a channel count, a pooling window (K or 'global'), a
#: squeeze-and-excitation ratio.
ARGS = ("kernel", "channels", "window", "ratio")

#: The gates squeeze-and-excitation may end with: hard-sigmoid (MobileNetV3), sigmoid (MnasNet).
GATES = ("hsigmoid", "sigmoid")

#: What an inverted residual's squeeze width is taken from: `exp`, the expanded width c,
#: make_divisible(c / R, 8) (MobileNetV3: TF-slim, torchvision, Keras); `in`, the block's input
#: width, max(1, int(in / R)) (MnasNet-A1 and EfficientNet in TensorFlow's reference code:
#: `max(1, int(input_filters * se_ratio))`).
SQUEEZE_FROM = ("exp", "in")


@dataclass(frozen=True, slots=True)
class Grammar:
    """How an op is written: `NAME ARG... OPTION...`."""

    args: tuple[str, ...]       # each one of ARGS
    options: tuple[str, ...]    # keys of OPTIONS it accepts (the text writes them in OPTIONS order)
    defaults: tuple[tuple[str, Any], ...] = ()  # LayerDef fields the statement sets otherwise

    def __post_init__(self) -> None:
        for a in self.args:
            if a not in ARGS:
                raise MobilecostError(f"unknown argument kind {a!r}; known: {', '.join(ARGS)}")
        for o in self.options:
            if o not in OPTIONS:
                raise MobilecostError(f"unknown option {o!r}; known: {', '.join(OPTIONS)}")


# --------------------------------------------------------------------------- ops

class Op:
    """One layer op. Subclasses set `name`, and `grammar` if the op is written as a statement,
    `kind` if it is a concrete layer, and override the rules that differ from these defaults:
    no Mult-Adds, no weights, input elements = in_channels · a_in."""

    name: ClassVar[str] = ""
    grammar: ClassVar[Grammar | None] = None  # None: not written as a statement (add)
    kind: ClassVar[LayerKind | None] = None   # None: not a concrete layer (ir expands)
    table1: ClassVar[str] = ""                # Table 1's "Type" name

    # -- the statement: defaults, text, building
    def default(self, field: str, d: LayerDef) -> Any:
        """The value of LayerDef `field` that the statement does not write out."""
        for f, v in (self.grammar.defaults if self.grammar else ()):
            if f == field:
                return v
        for o in OPTIONS.values():
            if o.field == field:
                return o.default
        raise MobilecostError(f"'{self.name}' has no default for {field!r}")

    def text(self, d: LayerDef) -> str:
        """The statement's canonical text: arguments, then the options that differ from their
        default, in `OPTIONS` order."""
        if self.grammar is None:
            raise MobilecostError(f"'{self.name}' is not written as a statement")
        parts = [self.name]
        for a in self.grammar.args:
            if a == "kernel":
                parts.append(str(d.kernel))
            elif a == "channels":
                parts.append(str(d.channels))
            elif a == "ratio":
                parts.append(str(d.se))
            else:  # window
                parts.append("global" if d.kernel == 0 else str(d.kernel))
        if not (self.grammar.args == ("window",) and d.kernel == 0):
            for key in OPTIONS:
                if key in self.grammar.options:
                    o = OPTIONS[key]
                    value = getattr(d, o.field)
                    if value is not None and value != self.default(o.field, d):
                        parts.append(o.text(value))
        return " ".join(parts)

    def build(self, b: Builder, d: LayerDef) -> None:
        """Emit the concrete layers of statement `d` on builder `b`."""
        raise MobilecostError(f"'{self.name}' is not written as a statement")

    def max_layers(self, d: LayerDef) -> int:
        """The most concrete layers statement `d` builds (counted before building)."""
        return 1

    #: The output side is the input side of the layer at `skip_from` (a channel-wise scale
    #: multiplies the map saved there), not the size rule's.
    side_from_skip: ClassVar[bool] = False

    # -- the concrete layer: size rule
    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        """Output side for input side `h` (an int or an integer array): SAME padding gives
        ceil(h / s), VALID floor((h - k) / s) + 1, a global window 1."""
        if pad == "same":
            return -(-h // stride)
        if pad == "global":
            return 0 * h + 1
        return (h - kernel) // stride + 1

    # -- the concrete layer: cost rules, each a channel factor times a spatial factor
    def macs_channels(self, x: Any) -> Any:
        return 0

    def macs_spatial(self, a_in: Any, a_out: Any) -> Any:
        return 0 * a_in

    def weights_channels(self, x: Any) -> Any:
        return 0

    def weights_spatial(self, a_in: Any, a_out: Any) -> Any:
        return 0 * a_in

    def bias_params(self, x: Any) -> Any:
        return 0

    def bn_params(self, x: Any) -> Any:
        return 0

    def elementwise_channels(self, x: Any) -> Any:
        """Channel factor of the elementwise ops (activation, add, scale): 0 by default."""
        return 0

    def elementwise_spatial(self, a_in: Any, a_out: Any) -> Any:
        return a_out

    def input_channels(self, x: Any) -> Any:
        """Channel factor of the elements read (the input map)."""
        return x.in_channels

    def input_spatial(self, a_in: Any, a_out: Any) -> Any:
        return a_in

    # -- the products, for one concrete layer (a spec.Layer)
    def macs(self, x: Any) -> Any:
        return self.macs_channels(x) * self.macs_spatial(*areas(x))

    def weights(self, x: Any) -> Any:
        return self.weights_channels(x) * self.weights_spatial(*areas(x))

    def elementwise_ops(self, x: Any) -> Any:
        return self.elementwise_channels(x) * self.elementwise_spatial(*areas(x))

    def input_elems(self, x: Any) -> Any:
        return self.input_channels(x) * self.input_spatial(*areas(x))

    def output_elems(self, x: Any) -> Any:
        return x.out_channels * areas(x)[1]

    # -- Table 1
    def describe(self, x: Any) -> str:
        """Type / stride as Table 1 prints it."""
        return f"{self.table1} / s{x.stride}"

    def filter_shape(self, x: Any) -> str:
        """Filter shape as Table 1 prints it."""
        return "—"


#: The op table: name -> op, in registration order (which is the grammar's keyword order).
OPS: dict[str, Op] = {}
#: The ops written as statements (those with a grammar), in the same order.
STATEMENTS: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: add one instance of `cls` to `OPS`; a second op of a name is refused."""
    if not cls.name:
        raise MobilecostError(f"{cls.__name__} has no name")
    if cls.name in OPS:
        raise MobilecostError(f"op {cls.name!r} is already registered ({type(OPS[cls.name]).__name__})")
    if cls.grammar is None and cls.kind is None:
        raise MobilecostError(f"op {cls.name!r} is neither a statement nor a layer")
    OPS[cls.name] = cls()
    if cls.grammar is not None:
        STATEMENTS[cls.name] = OPS[cls.name]
    return cls


def statement_ops() -> tuple[str, ...]:
    """Names of the ops written as statements, in grammar order."""
    return tuple(STATEMENTS)


def layer_ops() -> tuple[str, ...]:
    """Names of the ops that are concrete layers."""
    return tuple(n for n, op in OPS.items() if op.kind is not None)


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
    grammar = Grammar(("kernel", "channels"), ("s", "act", "bn", "pad"))

    def build(self, b: Builder, d: LayerDef) -> None:
        b.emit("pw" if d.kernel == 1 else "conv", d.kernel, d.stride, b.ch(d.channels), pad=d.pad,
               act=d.act or b.spec.activation, bn=d.bn, line=d.line)


@register
class Depthwise(_Conv):
    """`dw K`: a depthwise K×K convolution, one filter per channel (groups = channels)."""

    name, kind, table1 = "dw", LayerKind.DEPTHWISE, "Conv dw"
    grammar = Grammar(("kernel",), ("s", "act", "bn", "pad"))

    def build(self, b: Builder, d: LayerDef) -> None:
        b.emit("dw", d.kernel, d.stride, b.channels, pad=d.pad, groups=b.channels,
               act=d.act or b.spec.activation, bn=d.bn, line=d.line)

    def filter_shape(self, x: Any) -> str:
        return f"{x.kernel}×{x.kernel}×{x.in_channels} dw"


@register
class Pointwise(_Conv):
    """`pw CH`: a 1×1 convolution."""

    name, kind, table1 = "pw", LayerKind.POINTWISE, "Conv"
    grammar = Grammar(("channels",), ("s", "act", "bn"))

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
    grammar = Grammar(("channels",), ("s", "t", "h", "k", "act", "se", "gate", "squeeze"),
                      defaults=(("kernel", 3),))

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
                               max(1, block_in // d.se) if d.squeeze == "in" else None)
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
    v = channels * Fraction(t)
    if rounding.rule == "multiple":
        return make_divisible(v, rounding.divisor)
    return round(v)


def squeeze_excite(b: Builder, ratio: int, act: str, gate: str, line: int,
                   squeeze: int | None = None) -> None:
    """Emit squeeze-and-excitation on the current c-channel map: global average pool, 1×1
    convolution with bias to `squeeze` channels (default make_divisible(c / ratio, 8)) and
    `act`, 1×1 convolution with bias back to c and the `gate`, then the channel-wise scale of
    the map the pool read."""
    c, start = b.channels, len(b.layers)
    if squeeze is None:
        squeeze = make_divisible(Fraction(c, ratio), SE_DIVISOR)
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
    grammar = Grammar(("ratio",), ("act", "gate"))

    def build(self, b: Builder, d: LayerDef) -> None:
        squeeze_excite(b, d.se, d.act or "relu", d.gate, d.line)

    def max_layers(self, d: LayerDef) -> int:
        return 4


class _Pool(Op):
    """`avgpool K [sS]`, `avgpool global`: pooling without padding; the stride defaults to K,
    and a global window is the whole map (its kernel is the map's side where it is built)."""

    kind = LayerKind.POOL
    grammar = Grammar(("window",), ("s",), defaults=(("pad", "valid"),))

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
    grammar = Grammar(("channels",), ("act", "bias"))

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


__all__ = ["ACTIVATIONS", "ARGS", "GATES", "KINDS", "SQUEEZE_FROM", "SE_DIVISOR", "MAC_KINDS", "OPS", "OPTIONS", "STATEMENTS", "TIME_KINDS", "TIME_KIND_LABELS",
           "Grammar", "KindInfo", "LayerKind", "Op", "Option", "conv_macs", "conv_params",
           "act_ops", "areas", "expanded_width", "exact_text", "fc_macs", "layer_ops", "make_divisible", "squeeze_excite", "register", "statement_ops"]
