"""The symbolic spec and what it builds: statements (`LayerDef`), blocks (`Repeat`,
`Residual`), the `Spec`, its canonical text (`format_spec`), and the concrete `Layer`s it
builds at a width α and an input resolution (`build`), every shape known; the cost engine and
the torch backend both start from those records.

Each layer op is declared once, in the op table (`lang.ops`): its grammar, canonical text, how
it builds, its size and cost rules. `LayerDef`, the formatter and the builder here are generic
over that table; adding an op is one `Op` class there (and its torch module in
`mobilecost.torch.build`), not an edit here. The grammar is in `lang.parse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterator, Union

from ..errors import ConfigError, SpecError
from .kinds import LayerKind, act_ops
from .ops import FIELDS, OPS, STATEMENTS
from .values import (
    Channels,
    Resolution,
    Rounding,
    norm_resolution,
    resolution_text,
    sides,
    to_fraction,
)

# Bounds on what a spec may ask for, checked before any work that grows with them.
MAX_LAYERS = 100_000  # concrete layers a spec may expand to (repeats multiplied out)
MAX_DEPTH = 64  # blocks (repeat, residual) nested inside one another
MAX_SPEC_BYTES = 8 * 2**20  # spec text; a larger file is refused before it is read


class LayerDef:
    """One layer statement as written: its op and the fields its arguments and options set,
    read as attributes (`d.kernel`, `d.channels`, `d.stride`, `d.expand`, ...: the fields the
    op table declares, `opbase.FIELDS`). A field the statement does not set reads as its op's
    default for it, and a field set to that default is not stored, so that two statements
    that mean the same compare equal however they were written. `line` (where it is written)
    takes no part in equality."""

    __slots__ = ("op", "line", "_fields", "_hash")

    def __init__(self, op: str, *, line: int = 0, **fields: Any) -> None:
        rule = OPS.get(op)
        if rule is None or rule.grammar is None:
            raise SpecError(f"{op!r} is not a statement of the op table "
                            f"({', '.join(STATEMENTS)})")
        unknown = sorted(set(fields) - FIELDS.keys())
        if unknown:
            raise TypeError(f"LayerDef has no field {', '.join(unknown)} "
                            f"(fields: {', '.join(FIELDS)})")
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "_fields", fields)  # provisional: defaults may read them
        kept = {k: v for k, v in fields.items() if v != rule.default(k, self)}
        object.__setattr__(self, "_fields", kept)
        object.__setattr__(self, "_hash", hash((op, frozenset(kept.items()))))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._fields[name]
        except KeyError:
            if name not in FIELDS:
                raise AttributeError(f"LayerDef has no field {name!r}") from None
            return OPS[self.op].default(name, self)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a LayerDef is immutable; use .replace(...)")

    def replace(self, **changes: Any) -> "LayerDef":
        """A copy with `changes` (fields, or `line`)."""
        line = changes.pop("line", self.line)
        return LayerDef(self.op, line=line, **{**self._fields, **changes})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerDef):
            return NotImplemented
        return self.op == other.op and self._fields == other._fields

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        fields = "".join(f", {k}={v!r}" for k, v in self._fields.items())
        return f"LayerDef({self.op!r}{fields})"

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
    op: str  # a layer op of the op table (`ops.layer_ops()`): conv, dw, pw, fc, sdpa, add, ...
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
    skip_from: int | None = None  # the layer whose input this one reads too (add, scale, tap,
    #                              concat, sdpa), beside the previous layer's output
    line: int = 0  # where the layer is written in the spec
    pad: str = "same"  # same | tf | valid | global (a window as large as the map): the size rule's mode
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
        """Zero padding on each side: K // 2 for SAME (odd kernels), none otherwise
        (TensorFlow's SAME, `tf`, pads unevenly: `mobilecost.torch.build.tf_same_padding`)."""
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


def iter_layer_defs(nodes: tuple[Node, ...]) -> Iterator[LayerDef]:
    """Every layer statement in a spec body, blocks entered once (not repeated)."""
    for node in nodes:
        if isinstance(node, (Repeat, Residual)):
            yield from iter_layer_defs(node.body)
        else:
            yield node
__all__ = ["build", "check_expansion", "checked_configs", "expanded_layers", "format_spec",
           "iter_layer_defs", "Layer", "LayerDef", "LayerKind", "MAX_DEPTH", "MAX_LAYERS",
           "MAX_SPEC_BYTES", "Node", "Repeat", "Residual", "Spec"]
