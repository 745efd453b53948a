"""The layer-spec language: parse, format, and build a spec at a width α and a resolution.

A spec is a line-oriented text file describing a network at α = 1. Grammar::

    spec       := line*
    line       := [statement] ['#' comment]
    statement  := header | layer | block-open | '}'

    header     := 'name' NAME
                | 'input' SIZE INCH                  # base input size; its channels (3! for an image)
                | 'rounding' 'int' ['min=' N]        # c -> max(min, floor(α·c)): the paper, Keras, TF-slim
                | 'rounding' 'multiple' N            # c -> nearest multiple of N, not below 90% (MobileNetV2)
                | 'activation' ACT                   # default activation after conv layers

    layer      := 'conv' K CH [sS] [opts]            # full K×K convolution to CH channels
                | 'dw'   K    [sS] [opts]            # depthwise K×K convolution, channels unchanged
                | 'pw'   CH   [sS] [opts]            # pointwise 1×1 convolution to CH channels
                | 'ir'   CH   [sS] ['t=' T | 'h=' CH] ['k=' K] ['act=' ACT] ['se=' R] ['gate=' GATE]
                         ['squeeze=' (exp | in)]
                                                     # inverted residual (MobileNetV2): pw to
                                                     #   round(T·in) (T: 6, 2.5 or 7/3) or to h=CH
                                                     #   (MobileNetV3's widths; none if it equals in),
                                                     #   dw K×K, linear pw to CH; add when s=1, in=CH;
                                                     #   act: after the expansion and the depthwise;
                                                     #   se=R: squeeze-and-excitation after the dw,
                                                     #   squeezing to make_divisible(hidden/R, 8)
                                                     #   (squeeze=exp) or int(in/R) (squeeze=in)
                | 'se'   R    ['act=' ACT] ['gate=' GATE]
                                                     # squeeze-and-excitation: global pool, 1×1 conv
                                                     #   (bias) to make_divisible(c/R, 8), act (relu),
                                                     #   1×1 conv (bias) to c, gate, channel-wise scale
                | 'avgpool' ('global' | K [sS])      # pooling, no padding; stride defaults to K
                | 'maxpool' K [sS]
                | 'fc' CH ['act=' ACT] ['bias=' yes|no]
                                                     # fully connected on the flattened input;
                                                     #   no activation unless act= is given

    block-open := 'repeat' N '{'                     # the body N times
                | 'residual' '{'                     # the body, then add its input to its output

    CH         := INT       # scales with α by the spec's rounding rule
                | INT '!'   # fixed: never scales (the number of classes)
                | INT '+'   # scales with α but never below INT (MobileNetV2's last 1280)
    SIZE       := INT       # a square input, 224
                | INT 'x' INT   # height x width, 224x160 (torch's NCHW order; '×' too)
    INCH       := INT '!' | INT '+'   # as CH
                | INT '*'   # scales with α, as CH does: the input of a block cut from a network
                            # (a bare INT is refused: 'input 320 240' is not 240 channels)
    sS         := 's' INT   # stride (default 1)
    opts       := 'act=' ACT | 'bn=' (yes | no) | 'pad=' (same | valid)
    ACT        := relu | relu6 | hswish | hsigmoid | sigmoid | silu | none
    GATE       := hsigmoid | sigmoid                 # hsigmoid (MobileNetV3) is the default
    R          := INT                                # SE ratio, ≥ 1

Blocks close with '}' on a line of its own and nest, at most MAX_DEPTH (64) deep. A spec may
build at most MAX_LAYERS (100,000) layers, counted with repeats multiplied out before anything
is built, and hold at most MAX_SPEC_BYTES (8 MiB) of text. Convolutions use SAME padding by
default, so a feature map of side h leaves a stride-s layer with side ceil(h / s); pooling uses none
(floor((h - k) / s) + 1), and 'avgpool global' averages the whole map to 1×1. Each rule applies
to the height and the width on their own: a 224x160 input leaves a 7×5 map after stride 32.

Building a spec at (α, resolution) turns it into a flat tuple of concrete `Layer` records with
every shape known; the cost engine and the torch backend both start from those records.

Each layer op is declared once, in the op table (`mobilecost.ops`): its grammar (the arguments
and options above), canonical text, how it builds, its size and cost rules. The parser,
formatter and builder here are generic over that table; adding an op is one `Op` class there
(and its torch module in `mobilecost.torch.build`), not an edit here.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator, Union

from ..errors import ConfigError, SpecError
from .ops import ACTIVATIONS as _ACT_OPS
from .ops import GATES, OPS, OPTIONS, SQUEEZE_FROM, STATEMENTS, LayerKind, act_ops, make_divisible

#: Activation names, in the op table's order (`ops.ACTIVATIONS`: what each costs).
ACTIVATIONS = tuple(_ACT_OPS)

# Bounds on what a spec may ask for, checked before any work that grows with them.
MAX_LAYERS = 100_000  # concrete layers a spec may expand to (repeats multiplied out)
MAX_DEPTH = 64  # blocks (repeat, residual) nested inside one another
MAX_SPEC_BYTES = 8 * 2**20  # spec text; a larger file is refused before it is read
MAX_DIGITS = 100  # digits of a number in a spec (Python refuses to read past 4,300)


# --------------------------------------------------------------------------- symbolic spec


@dataclass(frozen=True, slots=True)
class Channels:
    """A channel count written for α = 1, and how it scales."""

    base: int
    mode: str = "scale"  # "scale" | "fixed" | "atleast"

    def __str__(self) -> str:
        return f"{self.base}{ {'scale': '', 'fixed': '!', 'atleast': '+'}[self.mode] }"


@dataclass(frozen=True, slots=True)
class Rounding:
    """How a scaled channel count becomes an integer."""

    rule: str = "int"  # "int": max(min, floor(α·c)); "multiple": nearest multiple of `divisor`
    divisor: int = 8
    min: int = 1

    def apply(self, channels: Channels, alpha: Fraction) -> int:
        if channels.mode == "fixed":
            return channels.base
        scale = max(alpha, Fraction(1)) if channels.mode == "atleast" else alpha
        value = channels.base * scale
        if self.rule == "int":
            return max(self.min, int(value))  # int() of a Fraction truncates: floor for value > 0
        return make_divisible(value, self.divisor)  # never more than 10% down

    def __str__(self) -> str:
        if self.rule == "int":
            return "int" if self.min == 1 else f"int min={self.min}"
        return f"multiple {self.divisor}"


@dataclass(frozen=True, slots=True)
class LayerDef:
    """One layer statement as written in the spec."""

    op: str  # a statement op of the op table: conv | dw | pw | ir | avgpool | maxpool | fc
    kernel: int = 1  # 0 means global pooling
    stride: int = 1
    channels: Channels | None = None
    act: str | None = None  # None: the spec's default activation
    bn: bool = True
    pad: str = "same"
    expand: Fraction | int = 6  # ir only: T (a whole number or a fraction)
    hidden: Channels | None = None  # ir only: the explicit hidden width (h=), in place of T
    se: int = 0  # squeeze-and-excitation ratio r (ir: 0 for none; se: its argument)
    gate: str = "hsigmoid"  # squeeze-and-excitation's gate
    squeeze: str = "exp"  # ir only: the squeeze width from the expanded width, or the input's
    bias: bool = True  # fc only
    line: int = field(default=0, compare=False)

    def __str__(self) -> str:
        """The statement's canonical text (the op table's `text`)."""
        return OPS[self.op].text(self)


@dataclass(frozen=True, slots=True)
class Repeat:
    count: int
    body: tuple["Node", ...]
    line: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Residual:
    body: tuple["Node", ...]
    line: int = field(default=0, compare=False)


Node = Union[LayerDef, Repeat, Residual]


@dataclass(frozen=True, slots=True)
class Spec:
    """A network written at α = 1 and its base input size: `resolution` is the height (the
    side of a square input), `width` the width where the input is not square (None: square)."""

    name: str
    resolution: int
    in_channels: Channels
    body: tuple[Node, ...]
    rounding: Rounding = Rounding()
    activation: str = "relu"
    source: str = field(default="<spec>", compare=False)
    width: int | None = None

    @property
    def size(self) -> "Resolution":
        """The base input size as a resolution: an int when square, else (height, width)."""
        return norm_resolution((self.resolution, self.width or self.resolution))

    def build(self, alpha: float | Fraction = 1,
              resolution: "Resolution | str | None" = None) -> tuple["Layer", ...]:
        """The concrete layers at width `alpha` and input `resolution` (default: the base)."""
        return build(self, alpha, resolution)

    def resolution_for(self, rho: "float | Fraction | str") -> "Resolution":
        """The input size for a resolution multiplier ρ: each side of the base times ρ, rounded
        to the nearest pixel (ρ is read as α is, by `to_fraction`); an int for a square base.
        A ρ that rounds a side to less than 1 px is refused."""
        r = to_fraction(rho)
        if not r > 0:
            raise ConfigError(f"rho must be > 0, got {rho}")
        h, w = sides(self.size)
        side = min(h, w)
        if round(r * side) < 1:
            raise ConfigError(
                f"rho {float(r):g} gives {float(r * side):g} px at {self.name}'s base "
                f"resolution {resolution_text(self.size)}, less than 1 px (rho must be more than "
                f"{Fraction(1, 2 * side)})")
        return norm_resolution((round(r * h), round(r * w)))

    def format(self) -> str:
        return format_spec(self)


# --------------------------------------------------------------------------- concrete layers


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer with every shape known (NCHW thinking). `in_size` and `out_size` are the
    heights of its input and output maps, `in_width` and `out_width` their widths (equal to the
    heights for a square input; left 0 by a caller that builds a square layer by hand)."""

    index: int
    op: str  # a layer op of the op table: conv | dw | pw | avgpool | maxpool | fc | add | scale
    kernel: int
    stride: int
    in_size: int
    in_channels: int
    out_size: int
    out_channels: int
    groups: int = 1
    act: str = "none"
    bn: bool = False
    bias: bool = False
    skip_from: int | None = None  # add only: the layer whose input is added to the previous output
    line: int = 0  # where the layer is written in the spec
    pad: str = "same"  # same | valid | global (a window as large as the map): the size rule's mode
    in_width: int = 0  # 0: as in_size (a square map)
    out_width: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.in_width, int) and not self.in_width:
            object.__setattr__(self, "in_width", self.in_size)
        if isinstance(self.out_width, int) and not self.out_width:
            object.__setattr__(self, "out_width", self.out_size)

    @property
    def kind(self) -> LayerKind:
        """The op's layer kind (`ops.OPS[op].kind`)."""
        return OPS[self.op].kind

    @property
    def padding(self) -> int:
        """Zero padding on each side: K // 2 for SAME (odd kernels), none otherwise."""
        return self.kernel // 2 if self.pad == "same" else 0

    @property
    def describe(self) -> str:
        """Type / stride as Table 1 prints it."""
        return OPS[self.op].describe(self)

    @property
    def filter_shape(self) -> str:
        """Filter shape as Table 1 prints it."""
        return OPS[self.op].filter_shape(self)

    @property
    def input_shape(self) -> str:
        return f"{self.in_size}×{self.in_width}×{self.in_channels}"

    @property
    def output_shape(self) -> str:
        return f"{self.out_size}×{self.out_width}×{self.out_channels}"

    @property
    def act_ops(self) -> int:
        """Elementwise ops per output element of the layer's activation (`ops.act_ops`)."""
        return act_ops(self.act)


ALPHA_DIGITS = 12  # significant digits a float α is read to (see to_fraction)

#: An input size: an int for a square input, (height, width) for any other (never a tuple of
#: two equal sides: `norm_resolution` makes that the int, so that equal sizes compare equal).
Resolution = Union[int, tuple[int, int]]

_SIZE_TEXT = re.compile(r"\s*([0-9]+)\s*(?:[x×]\s*([0-9]+)\s*)?")


def sides(res: Resolution) -> tuple[int, int]:
    """(height, width) of a resolution (an int is square)."""
    return (res, res) if isinstance(res, numbers.Integral) else (res[0], res[1])


def norm_resolution(res: "Resolution | str", what: str = "resolution") -> Resolution:
    """A resolution checked and in its one form: an int when square, else (height, width).
    Takes an int, a (height, width) pair, or text: "224", or "320x240" (height first, as
    torch's NCHW tensors and Table 1's shapes write it; "×" too)."""
    if isinstance(res, str):
        m = _SIZE_TEXT.fullmatch(res)
        if not m or len(res) > 40:
            raise ConfigError(f"{what} {res.strip()!r}: expected a whole number of pixels or "
                              f"HEIGHTxWIDTH (e.g. 224 or 320x240)")
        h = int(m.group(1))
        pair = (h, int(m.group(2)) if m.group(2) else h)
    elif isinstance(res, bool):
        raise ConfigError(f"{what} must be a positive integer or (height, width), got {res!r}")
    elif isinstance(res, numbers.Integral):
        pair = (int(res), int(res))
    elif (isinstance(res, (tuple, list)) and len(res) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in res)):
        pair = (int(res[0]), int(res[1]))
    else:
        raise ConfigError(f"{what} must be a positive integer or (height, width), got {res!r}")
    if min(pair) < 1:
        if pair[0] == pair[1]:
            raise ConfigError(f"{what} must be a positive integer, got {pair[0]}")
        raise ConfigError(f"{what} {pair[0]}x{pair[1]}: each side must be a positive integer")
    return pair[0] if pair[0] == pair[1] else pair


def resolution_value(res: Resolution) -> int | str:
    """A resolution as data (CSV, JSON, a frame's `resolution` column): the int of a square
    input, "320x240" text for any other, read back by `norm_resolution`."""
    return res if isinstance(res, int) else resolution_text(res)


def resolution_text(res: Resolution) -> str:
    """"224" for a square input, "320x240" (height x width) for any other."""
    h, w = sides(res)
    return str(h) if h == w else f"{h}x{w}"


def to_fraction(alpha: "float | Fraction | str | int") -> Fraction:
    """α (or any multiplier) as an exact fraction, by one policy for every entry point.

    Strings, integers and Fractions are exact: "0.29" is 29/100, "1/3" is 1/3. A float (numpy
    floats included) is read as its nearest short decimal, 12 significant digits: 0.7 - 0.2
    (0.49999999999999994) is 1/2, and np.arange(0.25, 1.0001, 0.05) gives 1/4, 3/10, 7/20, ...
    as the grid option 0.25..1:0.05 does; a numpy float32 is read from its own shortest text
    (np.float32(0.3) is 3/10). For a value that needs more digits, pass a string or a Fraction.
    """
    if isinstance(alpha, Fraction):
        return alpha
    if isinstance(alpha, bool):
        raise ConfigError(f"alpha must be a number, got {alpha!r}")
    if isinstance(alpha, numbers.Integral):
        return Fraction(int(alpha))
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, Decimal):
        value = float(alpha)
        if not isinstance(alpha, float):  # numpy float32 and kin: their own shortest text first
            try:
                value = float(str(alpha))
            except ValueError:
                pass
        text = format(value, f".{ALPHA_DIGITS}g")
    else:
        text = str(alpha).strip()
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError, TypeError):
        raise ConfigError(f"alpha must be a number, got {alpha!r}") from None


def checked_configs(spec: Spec, configs) -> list[tuple[Fraction, Resolution]]:
    """(α exactly, resolution) of each configuration, the spec's base resolution where None is
    given, each built once so that a bad one fails before any work (timing, export)."""
    out = [(to_fraction(a), spec.size if r is None else norm_resolution(r)) for a, r in configs]
    for a, r in out:
        build(spec, a, r)
    return out


def build(spec: Spec, alpha: float | Fraction = 1,
          resolution: "Resolution | str | None" = None) -> tuple[Layer, ...]:
    """Apply α and the resolution to a spec: the layers with their concrete shapes.

    α is read by `to_fraction`: strings, ints and Fractions exactly, a float as its nearest
    12-significant-digit decimal. The resolution is an int (square), (height, width) or text
    such as "320x240" (`norm_resolution`); default the spec's base size."""
    a = to_fraction(alpha)
    if a <= 0:
        raise ConfigError(f"alpha must be > 0, got {alpha}")
    res = spec.size if resolution is None else norm_resolution(resolution)
    check_expansion(spec.body, spec.source)  # a Spec made in code has not met the parser
    builder = Builder(spec, a, res)
    builder.walk(spec.body)
    return tuple(builder.layers)


class Builder:
    """Walks a spec at one (α, resolution), emitting one concrete layer per `emit` call.

    Each statement is built by its op (`ops.OPS[d.op].build`), which calls `emit` once per
    concrete layer; `emit` applies that layer's size rule. `ch` (channel rounding) and `emit`
    are the extension points: the vectorised sweep overrides them to record only what its
    formulas need, and so shares this walk (repeats, residuals, inverted residuals, rounding)
    instead of repeating it.
    """

    def __init__(self, spec: Spec, alpha: Fraction, resolution: Resolution) -> None:
        self.spec, self.alpha, self.resolution = spec, alpha, resolution
        self.size, self.width = sides(resolution)  # the current map's height and width
        self.channels = spec.rounding.apply(spec.in_channels, alpha)
        self.layers: list[Layer] = []

    def where(self, line: int) -> str:
        return f"{self.spec.source}:{line}" if line else self.spec.source

    def ch(self, c: Channels) -> int:
        return self.spec.rounding.apply(c, self.alpha)

    def walk(self, nodes: tuple[Node, ...]) -> None:
        for node in nodes:
            if isinstance(node, Repeat):
                for _ in range(node.count):
                    self.walk(node.body)
            elif isinstance(node, Residual):
                self.residual(lambda body=node.body: self.walk(body), node.line)
            else:
                self.layer(node)

    def residual(self, body: Callable[[], None], line: int) -> None:
        """Emit the block `body` emits, then the add of its input to its output."""
        start, shape = len(self.layers), (self.size, self.width, self.channels)
        body()
        if (self.size, self.width, self.channels) != shape:
            raise ConfigError(
                f"{self.where(line)}: residual block maps {'×'.join(map(str, shape))} to "
                f"{self.size}×{self.width}×{self.channels}; an add needs equal shapes")
        self.emit("add", 1, 1, shape[2], skip_from=start, line=line)

    def layer(self, d: LayerDef) -> None:
        OPS[d.op].build(self, d)

    def emit(self, op: str, kernel: int, stride: int, out_c: int, *, pad: str = "same",
             groups: int = 1, act: str = "none", bn: bool = False, bias: bool = False,
             skip_from: int | None = None, line: int = 0) -> None:
        """Append one concrete layer of op `op` on the current map; its size by the op's rule."""
        rule = OPS[op]
        size, width = self.size, self.width
        if rule.side_from_skip:  # a scale: the shape of the map saved at skip_from
            saved = self.layers[skip_from]
            out_size, out_width = saved.in_size, saved.in_width
        else:
            out_size = rule.out_size(size, kernel, stride, pad)
            out_width = rule.out_size(width, kernel, stride, pad)
        if out_size < 1 or out_width < 1 or out_c < 1:
            what = f"{op} {kernel}×{kernel} s{stride}" if op != "fc" else op
            raise ConfigError(
                f"{self.where(line)}: {what} on a {size}×{width} feature map leaves nothing "
                f"at resolution {resolution_text(self.resolution)} (alpha "
                f"{float(self.alpha):g}); use a larger resolution")
        self.layers.append(Layer(
            index=len(self.layers), op=op, kernel=kernel, stride=stride,
            in_size=size, in_channels=self.channels, out_size=out_size, out_channels=out_c,
            groups=groups, act=act, bn=bn, bias=bias, skip_from=skip_from, line=line, pad=pad,
            in_width=width, out_width=out_width))
        self.size, self.width, self.channels = out_size, out_width, out_c


# --------------------------------------------------------------------------- parser

_TOKEN = re.compile(r"\S+")
_INT = re.compile(r"[0-9]+")
_CHANNELS = re.compile(r"([0-9]+)([!+]?)")
_STRIDE = re.compile(r"s([0-9]+)")
_EXPANSION = re.compile(r"[0-9]+(\.[0-9]+)?|[0-9]+/0*[1-9][0-9]*")
_LAYER_OPS = STATEMENTS  # the op table's statements; live, so an op registered later parses too
_HEADERS = ("name", "input", "rounding", "activation")
_KEYWORDS = tuple(_LAYER_OPS) + _HEADERS + ("repeat", "residual", "}")
_YESNO = {"yes": True, "no": False, "true": True, "false": False}
_POSITIVE_OPTIONS = {"s": "stride", "k": "kernel size",
                     "se": "SE ratio"}  # option: its name


@dataclass(slots=True)
class _Tok:
    text: str
    line: int
    col: int


def _token_lines(text: str, chunk: int = 1 << 20) -> Iterator[list[_Tok]]:
    """The tokens of each line that has any, read lazily (a refused spec is never tokenised
    whole). Lines break as str.splitlines breaks them; chunks end just after a newline, where
    splitlines breaks anyway."""
    n, start = 0, 0
    while start < len(text):
        end = text.find("\n", start + chunk)
        end = len(text) if end < 0 else end + 1
        for raw in text[start:end].splitlines():
            n += 1
            code = raw.split("#", 1)[0]
            toks = [_Tok(m.group(), n, m.start() + 1) for m in _TOKEN.finditer(code)]
            if toks:
                yield toks
        start = end


def expanded_layers(nodes: tuple[Node, ...], cap: int | None = None, depth: int = 0) -> int:
    """How many concrete layers `nodes` expand to at most, counted without expanding them
    (an inverted residual as up to 4: expand, depthwise, project, add). Counting stops past
    `cap`, so that a repeat of 10**9 costs no more than one of 2."""
    if depth > MAX_DEPTH:
        raise SpecError(f"blocks nest more than {MAX_DEPTH} deep")
    cap = MAX_LAYERS if cap is None else cap
    total = 0
    for node in nodes:
        if isinstance(node, Repeat):
            total += node.count * expanded_layers(node.body, cap, depth + 1)
        elif isinstance(node, Residual):
            total += expanded_layers(node.body, cap, depth + 1) + 1
        else:
            total += OPS[node.op].max_layers(node)  # an ir up to 8, an se 4
        if total > cap:
            return cap + 1
    return total


def check_expansion(nodes: tuple[Node, ...], source: str = "<spec>") -> None:
    """Refuse a body that expands to more than MAX_LAYERS layers, naming the outermost
    statement that alone goes over the limit (else the spec as a whole)."""
    try:
        if expanded_layers(nodes) <= MAX_LAYERS:
            return
    except SpecError as exc:  # nested too deep (a Spec made in code; the parser stops sooner)
        raise SpecError(exc.message, source) from None
    line, what, count = 0, "the spec", expanded_layers(nodes, _COUNT_CAP)
    for node in nodes:
        if isinstance(node, (Repeat, Residual)) and expanded_layers((node,)) > MAX_LAYERS:
            line, count = node.line, expanded_layers((node,), _COUNT_CAP)
            what = f"'repeat {node.count}'" if isinstance(node, Repeat) else "this residual block"
            break
    size = f"{count:,}" if count <= _COUNT_CAP else f"more than {_COUNT_CAP:.0e}"
    raise SpecError(f"{what} expands to {size} layers; a spec may build at most "
                    f"{MAX_LAYERS:,}", source, line)


_COUNT_CAP = 10**18  # counted exactly up to here for messages


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.headers: dict[str, object] = {}
        self.lines = _token_lines(text)  # one iterator, shared by the nested blocks
        self.depth = 0  # blocks open
        self.written = 0  # layer statements so far: each expands to at least one layer

    def error(self, msg: str, tok: _Tok | None, show: bool = True) -> SpecError:
        if tok is None:
            return SpecError(msg, self.source)
        return SpecError(msg, self.source, tok.line, tok.col, tok.text if show else None)

    def parse(self) -> Spec:
        body = self.block(None)
        if "input" not in self.headers:
            raise SpecError("missing 'input SIZE CHANNELS' line (e.g. 'input 224 3!')", self.source)
        if not body:
            raise SpecError("the spec has no layers", self.source)
        (height, width), in_c = self.headers["input"]
        check_expansion(body, self.source)
        return Spec(
            name=str(self.headers.get("name", Path(self.source).stem)),
            resolution=height, in_channels=in_c, body=body,
            rounding=self.headers.get("rounding", Rounding()),
            activation=str(self.headers.get("activation", "relu")),
            source=self.source, width=None if width == height else width)

    def block(self, opener: _Tok | None) -> tuple[Node, ...]:
        if opener is not None:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"blocks nest more than {MAX_DEPTH} deep", opener, show=False)
        nodes: list[Node] = []
        for toks in self.lines:
            head = toks[0]
            kw = head.text
            if kw == "}":
                if opener is None:
                    raise self.error("'}' closes no block", head)
                self.expect_end(toks, 1)
                if not nodes:
                    raise self.error("empty block", opener)
                self.depth -= 1
                return tuple(nodes)
            if kw in _HEADERS:
                if opener is not None:
                    raise self.error(f"'{kw}' must be at the top level, not inside a block", head)
                self.header(toks)
            elif kw == "repeat":
                count = self.int_arg(toks, 1, "repeat count")
                self.open_brace(toks, 2)
                nodes.append(Repeat(count, self.block(head), line=head.line))
            elif kw == "residual":
                self.open_brace(toks, 1)
                nodes.append(Residual(self.block(head), line=head.line))
            elif kw in _LAYER_OPS:
                self.written += 1
                if self.written > MAX_LAYERS:
                    raise self.error(f"more than {MAX_LAYERS:,} layers written; a spec may "
                                     f"expand to at most {MAX_LAYERS:,}", head, show=False)
                nodes.append(self.layer(toks))
            else:
                raise self.error(f"unknown layer kind; expected one of {', '.join(_KEYWORDS)}", head)
        if opener is not None:
            raise self.error(f"'{opener.text}' block opened here is never closed with '}}'",
                             opener, show=False)
        return tuple(nodes)

    # -- helpers
    def arg(self, toks: list[_Tok], i: int, what: str) -> _Tok:
        if i >= len(toks):
            last = toks[-1]
            raise SpecError(f"'{toks[0].text}' needs {what}", self.source, last.line,
                            last.col + len(last.text))
        return toks[i]

    def int_arg(self, toks: list[_Tok], i: int, what: str) -> int:
        tok = self.arg(toks, i, what)
        return self.positive(tok, what)

    def positive(self, tok: _Tok, what: str, text: str | None = None) -> int:
        text = tok.text if text is None else text
        if len(text) > MAX_DIGITS and text.isdigit():
            raise self.error(f"{what} has more than {MAX_DIGITS} digits", tok, show=False)
        if not _INT.fullmatch(text) or int(text) < 1:
            raise self.error(f"{what} must be a positive integer", tok)
        return int(text)

    def input_size(self, tok: _Tok) -> tuple[int, int]:
        """`224` or `224x160` (height x width)."""
        h_text, x, w_text = tok.text.replace("×", "x").partition("x")
        if x and not (h_text and w_text):
            raise self.error("input size must be HEIGHTxWIDTH with both sides (e.g. 224x160)", tok)
        h = self.positive(tok, "input height" if x else "input resolution", h_text)
        return (h, self.positive(tok, "input width", w_text) if x else h)

    def input_channels(self, tok: _Tok, res: tuple[int, int]) -> Channels:
        """The input's channels, with their mark: `3!` (fixed: an image), `64+` (never below),
        `512*` (scales with α, as a layer's do: the input of a block cut from a network). A bare
        number is refused: `input 320 240` would read as 240 channels of a 320×320 input."""
        m = re.fullmatch(r"([0-9]+)\*", tok.text)
        if m:
            return self.channel_count(tok, m.group(1), "input channel count")
        if _INT.fullmatch(tok.text):
            raise self.error(
                f"input channels need a mark: {tok.text}! (fixed, as an image's 3!) or "
                f"{tok.text}* (scaling with alpha); a {res[0]}x{tok.text} input is written "
                f"'input {res[0]}x{tok.text} 3!'", tok)
        return self.channel_count(tok, tok.text, "input channel count")

    def channels(self, toks: list[_Tok], i: int) -> Channels:
        tok = self.arg(toks, i, "a channel count")
        return self.channel_count(tok, tok.text, "channel count")

    def channel_count(self, tok: _Tok, text: str, what: str) -> Channels:
        m = _CHANNELS.fullmatch(text)
        if m and len(m.group(1)) > MAX_DIGITS:
            raise self.error(f"{what} has more than {MAX_DIGITS} digits", tok, show=False)
        if not m or int(m.group(1)) < 1:
            raise self.error(f"{what} must be a positive integer, optionally "
                             "followed by '!' (fixed) or '+' (never below)", tok)
        return Channels(int(m.group(1)), {"": "scale", "!": "fixed", "+": "atleast"}[m.group(2)])

    def expansion(self, tok: _Tok, text: str) -> Fraction | int:
        """An expansion factor: a positive whole number, decimal (2.5) or fraction (7/3)."""
        if len(text) > MAX_DIGITS:
            raise self.error(f"expansion has more than {MAX_DIGITS} characters", tok, show=False)
        if not _EXPANSION.fullmatch(text) or Fraction(text) <= 0:
            raise self.error("expansion must be a positive number: a whole number, a decimal "
                             "such as 2.5 or a fraction such as 7/3", tok)
        t = Fraction(text)
        return t.numerator if t.denominator == 1 else t

    def open_brace(self, toks: list[_Tok], i: int) -> None:
        tok = self.arg(toks, i, "'{' to open its block")
        if tok.text != "{":
            raise self.error("expected '{' to open the block", tok)
        self.expect_end(toks, i + 1)

    def expect_end(self, toks: list[_Tok], i: int) -> None:
        if i < len(toks):
            raise self.error(f"unexpected token after '{toks[0].text}'", toks[i])

    def header(self, toks: list[_Tok]) -> None:
        kw = toks[0]
        if kw.text in self.headers:
            raise self.error(f"'{kw.text}' given twice", kw, show=False)
        if kw.text == "name":
            tok = self.arg(toks, 1, "a name")
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+", tok.text):
                raise self.error("name may hold letters, digits, '_', '-' and '.' only", tok)
            self.expect_end(toks, 2)
            self.headers["name"] = tok.text
        elif kw.text == "input":
            res = self.input_size(self.arg(toks, 1, "an input size (224, or 224x160)"))
            chans = self.input_channels(self.arg(toks, 2, "the input channels (3! for an image)"), res)
            self.expect_end(toks, 3)
            self.headers["input"] = (res, chans)
        elif kw.text == "activation":
            tok = self.arg(toks, 1, "an activation")
            if tok.text not in ACTIVATIONS:
                raise self.error(f"activation must be one of {', '.join(ACTIVATIONS)}", tok)
            self.expect_end(toks, 2)
            self.headers["activation"] = tok.text
        else:  # rounding
            tok = self.arg(toks, 1, "a rule: 'int [min=N]' or 'multiple N'")
            if tok.text == "int":
                minimum = 1
                if len(toks) > 2:
                    opt = toks[2]
                    if not opt.text.startswith("min="):
                        raise self.error("expected 'min=N'", opt)
                    minimum = self.positive(opt, "min", opt.text[4:])
                self.expect_end(toks, 3)
                self.headers["rounding"] = Rounding("int", min=minimum)
            elif tok.text == "multiple":
                divisor = self.int_arg(toks, 2, "divisor")
                self.expect_end(toks, 3)
                self.headers["rounding"] = Rounding("multiple", divisor=divisor)
            else:
                raise self.error("rounding must be 'int' or 'multiple N'", tok)

    def layer(self, toks: list[_Tok]) -> LayerDef:
        """A layer statement, read by its op's grammar (`ops.OPS[op].grammar`)."""
        head = toks[0]
        rule = STATEMENTS[head.text]
        grammar = rule.grammar
        fields: dict[str, object] = {"op": head.text, "line": head.line, **dict(grammar.defaults)}
        window_global = False
        for i, arg in enumerate(grammar.args, start=1):
            if arg == "kernel":
                fields["kernel"] = self.int_arg(toks, i, "a kernel size")
            elif arg == "channels":
                fields["channels"] = self.channels(toks, i)
            elif arg == "ratio":
                tok = self.arg(toks, i, "an SE ratio")
                fields["se"] = self.positive(tok, "SE ratio")
            else:  # window: K or 'global'
                tok = self.arg(toks, i, "a kernel size or 'global'")
                window_global = tok.text == "global"
                fields["kernel"] = 0 if window_global else self.positive(tok, "pool size")
        provisional = LayerDef(**fields)
        for key in grammar.options:  # defaults that depend on the arguments (a pool's stride)
            name = OPTIONS[key].field
            if name not in fields:
                fields[name] = rule.default(name, provisional)
        allowed = set() if window_global else set(grammar.options)
        seen: set[str] = set()
        for tok in toks[1 + len(grammar.args):]:
            m = _STRIDE.fullmatch(tok.text)
            key, val = ("s", m.group(1)) if m else (tok.text.split("=", 1) + [None])[:2]
            if val is None or key not in allowed:
                opts = ", ".join(sorted("sN" if a == "s" else f"{a}=" for a in allowed)) or "none"
                raise self.error(f"unexpected argument to '{head.text}' (options: {opts})", tok)
            if key in seen:
                raise self.error(f"'{key}' given twice", tok)
            seen.add(key)
            fields[OPTIONS[key].field] = self.option_value(key, val, tok)
        if "t" in seen and "h" in seen:
            raise self.error("give the expansion t= or the hidden width h=, not both",
                             next(t for t in toks if t.text.startswith("h=")))
        d = LayerDef(**fields)
        if d.pad == "same" and d.kernel % 2 == 0:
            raise self.error("SAME padding needs an odd kernel size", toks[min(1, len(toks) - 1)])
        return d

    def option_value(self, key: str, val: str, tok: _Tok) -> object:
        """The value of option `key` written `val`, checked."""
        if key in _POSITIVE_OPTIONS:
            return self.positive(tok, _POSITIVE_OPTIONS[key], val)
        if key == "act":
            if val not in ACTIVATIONS:
                raise self.error(f"act must be one of {', '.join(ACTIVATIONS)}", tok)
            return val
        if key == "t":
            return self.expansion(tok, val)
        if key == "h":
            return self.channel_count(tok, val, "hidden width")
        if key == "gate":
            if val not in GATES:
                raise self.error(f"gate must be one of {', '.join(GATES)}", tok)
            return val
        if key == "squeeze":
            if val not in SQUEEZE_FROM:
                raise self.error(f"squeeze must be one of {', '.join(SQUEEZE_FROM)}", tok)
            return val
        if key == "pad":
            if val not in ("same", "valid"):
                raise self.error("pad must be same or valid", tok)
            return val
        if val not in _YESNO:  # bn, bias
            raise self.error(f"{key} must be yes or no", tok)
        return _YESNO[val]


def parse(text: str, source: str = "<spec>") -> Spec:
    """Parse spec text; errors name `source`, the line, the column and the offending token.

    Text longer than MAX_SPEC_BYTES characters, blocks nested deeper than MAX_DEPTH and bodies
    that would build more than MAX_LAYERS layers are refused before any of it is expanded."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(f"the spec is {len(text):,} characters long; a spec may be at most "
                        f"{MAX_SPEC_BYTES:,} ({MAX_SPEC_BYTES // 2**20} MiB)", source)
    return _Parser(text, source).parse()


def format_spec(spec: Spec) -> str:
    """Canonical text of a spec: parse(format_spec(s)) == s."""
    in_c = spec.in_channels
    out = [f"name {spec.name}",
           f"input {resolution_text(spec.size)} {in_c}{'*' if in_c.mode == 'scale' else ''}",
           f"rounding {spec.rounding}", f"activation {spec.activation}"]

    def emit(nodes: tuple[Node, ...], depth: int) -> None:
        pad = "  " * depth
        for node in nodes:
            if isinstance(node, Repeat):
                out.append(f"{pad}repeat {node.count} {{")
                emit(node.body, depth + 1)
                out.append(f"{pad}}}")
            elif isinstance(node, Residual):
                out.append(f"{pad}residual {{")
                emit(node.body, depth + 1)
                out.append(f"{pad}}}")
            else:
                out.append(pad + str(node))

    emit(spec.body, 0)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- loading

def builtin_names() -> list[str]:
    """Names of the specs shipped inside the package."""
    folder = resources.files("mobilecost.lang") / "specs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".spec"))


def load_spec(name_or_path: str | Path | Spec) -> Spec:
    """A built-in spec by name (`mobilenet_v1`) or a spec file by path."""
    if isinstance(name_or_path, Spec):
        return name_or_path
    text_name = str(name_or_path)
    builtin = resources.files("mobilecost.lang") / "specs" / f"{text_name}.spec"
    if "/" not in text_name and not text_name.endswith(".spec") and builtin.is_file():
        return parse(builtin.read_text(encoding="utf-8"), source=text_name)
    path = Path(text_name)
    if path.is_file():
        try:
            size = path.stat().st_size
            if size > MAX_SPEC_BYTES:
                raise SpecError(f"the spec file is {size:,} bytes; a spec may be at most "
                                f"{MAX_SPEC_BYTES:,} bytes ({MAX_SPEC_BYTES // 2**20} MiB)",
                                text_name)
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read spec file: {exc}", text_name) from None
        return parse(text, source=text_name)
    if path.exists():
        raise SpecError("not a spec file (it is a directory)", text_name)
    if "/" in text_name or path.suffix:
        raise SpecError("no such spec file", text_name)
    raise SpecError(f"unknown spec; built-in specs are {', '.join(builtin_names())}, "
                    f"or give the path of a spec file", text_name)


def with_classes(spec: Spec, classes: int) -> Spec:
    """The spec with `classes` outputs: its last statement, which must be a fixed-width
    classifier `fc N!` at the top level, becomes `fc classes!` (TF-slim's checkpoints have
    1001 classes, a background class first; torchvision's and Keras's 1000)."""
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ConfigError(f"the number of classes must be a positive integer, got {classes!r}")
    last = spec.body[-1] if spec.body else None
    if not (isinstance(last, LayerDef) and last.op == "fc" and last.channels is not None
            and last.channels.mode == "fixed"):
        raise SpecError("--classes needs a spec that ends in a fixed-width classifier "
                        "'fc N!'", spec.source, getattr(last, "line", 0))
    fc = replace(last, channels=Channels(classes, "fixed"))
    return replace(spec, body=spec.body[:-1] + (fc,))


def classes_of(spec: Spec) -> int | None:
    """The number of classes: N of a last statement `fc N!` at the top level, else None."""
    last = spec.body[-1] if spec.body else None
    if (isinstance(last, LayerDef) and last.op == "fc" and last.channels is not None
            and last.channels.mode == "fixed"):
        return last.channels.base
    return None


def iter_layer_defs(nodes: tuple[Node, ...]) -> Iterator[LayerDef]:
    """Every layer statement in a spec body, blocks entered once (not repeated)."""
    for node in nodes:
        if isinstance(node, (Repeat, Residual)):
            yield from iter_layer_defs(node.body)
        else:
            yield node


__all__ = ["MAX_DEPTH", "MAX_DIGITS", "MAX_LAYERS", "MAX_SPEC_BYTES", "Channels", "checked_configs", "Layer", "LayerDef",
           "LayerKind", "Node", "Repeat", "Residual", "Rounding", "Spec", "build", "builtin_names",
           "check_expansion", "classes_of", "expanded_layers", "format_spec", "iter_layer_defs", "load_spec",
           "norm_resolution", "parse", "Resolution", "resolution_text", "resolution_value", "sides", "to_fraction",
           "with_classes"]
