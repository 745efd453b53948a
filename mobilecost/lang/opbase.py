"""How a layer op is declared: the `Op` base class, the `Grammar` of its statement and the
registry `OPS`.

A statement is `NAME ARG... OPTION...`. Each positional `Arg` and each `Option` names the
`LayerDef` field it sets and carries how its text is read (`read`: text to value, a ValueError
with the reason for bad text) and written (`write`); an option has its default. The parser
(`lang.parse`), the canonical text (`Op.text`) and `LayerDef` (`lang.spec`) are generic over
them, so an op with arguments and options of its own is declared in the op table
(`lang.ops`) alone: its `Grammar` lists them, reusing the shared ones (`STRIDE`, `ACT`, ...)
or declaring new ones beside it.

The size and cost rules are plain integer arithmetic on the fields of a concrete layer (a
`lang.spec.Layer`, or any object with its fields), so the same rules run on numpy arrays: the
grid engine applies them to every α and resolution of a grid at once, the cost engine to one
layer. Every cost is a channel factor, which depends only on α, times a spatial factor, which
depends only on the resolution: `macs = macs_channels(x) · macs_spatial(a_in, a_out)`, and so
on, where a_in and a_out are the areas (height × width) of the layer's input and output maps.
That product is what lets a sweep cost a grid of n_α × n_r configurations from n_α + n_r pieces.

Units: Mult-Adds are multiply-accumulates (FLOPs = 2 × Mult-Adds); elements are tensor
elements (multiply by the dtype's bytes); elementwise ops (`elementwise_channels` ×
`elementwise_spatial`) count one op per output element of each activation, residual add and
channel-wise scale, a quantity of its own, never added to Mult-Adds (`lang.kinds.ACTIVATIONS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, ClassVar, Protocol

from ..errors import MobilecostError
from .kinds import LayerKind
from .values import MAX_CHANNELS, MAX_DIGITS, MAX_KERNEL, Channels


class Builder(Protocol):
    """What an op's `build` works on: the walk of a spec at one (α, resolution). The spec's
    builder (`lang.spec.Builder`) is one; this module cannot import it, since it builds by
    the ops declared here."""

    spec: Any       # the Spec: its default activation and rounding rule
    size: int       # the current map's height
    channels: int   # and its channels
    layers: list    # the concrete layers so far (`len(layers)` is the index the next takes)
    alpha: Any      # the width multiplier, exactly

    def ch(self, c: Any) -> int: ...

    def where(self, line: int) -> str: ...  # "source:line", for an error

    def emit(self, op: str, kernel: int, stride: int, out_c: int, **kw: Any) -> None: ...

    def residual(self, body: Callable[[], None], line: int) -> None: ...


#: A layer statement as written (`lang.spec.LayerDef`): its op and the fields its arguments
#: and options set, read as attributes.
LayerDef = Any


# --------------------------------------------------------------------------- reading values

_INT = re.compile(r"[0-9]+")
_CHANNELS = re.compile(r"([0-9]+)([!+]?)")
_EXPANSION = re.compile(r"[0-9]+(\.[0-9]+)?|[0-9]+/0*[1-9][0-9]*")


def positive(what: str, most: int | None = None) -> Callable[[str], int]:
    """A reader of a positive whole number, at most `most` if given (`what` names it in the
    error)."""

    def read(text: str) -> int:
        if len(text) > MAX_DIGITS and text.isdigit():
            raise ValueError(f"{what} has more than {MAX_DIGITS} digits")
        if not _INT.fullmatch(text) or int(text) < 1:
            raise ValueError(f"{what} must be a positive integer")
        if most is not None and int(text) > most:
            raise ValueError(f"{what} must be at most {most:,}")
        return int(text)

    return read


def channel_count(what: str) -> Callable[[str], Channels]:
    """A reader of a channel count: `64` (scales with α), `1000!` (fixed), `1280+` (never
    below); at most MAX_CHANNELS."""

    def read(text: str) -> Channels:
        m = _CHANNELS.fullmatch(text)
        if m and len(m.group(1)) > MAX_DIGITS:
            raise ValueError(f"{what} has more than {MAX_DIGITS} digits")
        if not m or int(m.group(1)) < 1:
            raise ValueError(f"{what} must be a positive integer, optionally followed by '!' "
                             "(fixed) or '+' (never below)")
        if int(m.group(1)) > MAX_CHANNELS:
            raise ValueError(f"{what} must be at most {MAX_CHANNELS:,}")
        return Channels(int(m.group(1)), {"": "scale", "!": "fixed", "+": "atleast"}[m.group(2)])

    return read


def kernel_size(what: str) -> Callable[[str], int]:
    """A reader of a kernel size, pooling window or stride: 1 to MAX_KERNEL."""
    return positive(what, MAX_KERNEL)


def choice(what: str, values: tuple[str, ...]) -> Callable[[str], str]:
    """A reader of one of `values`."""

    def read(text: str) -> str:
        if text not in values:
            raise ValueError(f"{what} must be one of {', '.join(values)}")
        return text

    return read


_YESNO = {"yes": True, "no": False, "true": True, "false": False}


def yes_no(what: str) -> Callable[[str], bool]:
    def read(text: str) -> bool:
        if text not in _YESNO:
            raise ValueError(f"{what} must be yes or no")
        return _YESNO[text]

    return read


def expansion(text: str) -> Fraction | int:
    """An expansion factor: a positive whole number, decimal (2.5) or fraction (7/3)."""
    if len(text) > MAX_DIGITS:
        raise ValueError(f"expansion has more than {MAX_DIGITS} characters")
    if not _EXPANSION.fullmatch(text) or Fraction(text) <= 0:
        raise ValueError("expansion must be a positive number: a whole number, a decimal such "
                         "as 2.5 or a fraction such as 7/3")
    t = Fraction(text)
    return t.numerator if t.denominator == 1 else t


def window(text: str) -> int:
    """A pooling window: K, or `global` (the whole map, written as kernel 0)."""
    return 0 if text == "global" else kernel_size("pool size")(text)


def yes_no_text(value: bool) -> str:
    return "yes" if value else "no"


# --------------------------------------------------------------------------- grammar

@dataclass(frozen=True, slots=True)
class Arg:
    """A positional argument of a statement: the LayerDef field it sets, what it is (named in
    errors: 'needs a kernel size'), and how its text is read and written."""

    field: str
    what: str
    read: Callable[[str], Any]
    write: Callable[[Any], str] = str


@dataclass(frozen=True, slots=True)
class Option:
    """An option of a statement, `KEY=VALUE` (the stride is written `sN`): the LayerDef field
    it sets, its default, and how its value is read and written."""

    key: str
    field: str
    default: Any
    read: Callable[[str], Any]
    write: Callable[[Any], str] = str

    def text(self, value: Any) -> str:
        return f"s{value}" if self.key == "s" else f"{self.key}={self.write(value)}"


@dataclass(frozen=True, slots=True)
class Grammar:
    """How an op is written: `NAME ARG... OPTION...`; the canonical text writes the options
    that differ from their default, in the order given here."""

    args: tuple[Arg, ...]
    options: tuple[Option, ...]
    defaults: tuple[tuple[str, Any], ...] = ()  # LayerDef fields the op defaults otherwise

    def __post_init__(self) -> None:
        keys = [o.key for o in self.options]
        if len(set(keys)) != len(keys):
            raise MobilecostError(f"an option is given twice in {keys}")


#: Every LayerDef field and its default, across the ops registered: a statement's field that
#: its op does not set reads as this (an op's own `Grammar.defaults` come first).
FIELDS: dict[str, Any] = {"channels": None, "kernel": 1, "stride": 1}


# --------------------------------------------------------------------------- ops

class Op:
    """One layer op. Subclasses set `name`, and `grammar` if the op is written as a statement,
    `kind` if it is a concrete layer, and override the rules that differ from these defaults:
    no Mult-Adds, no weights, input elements = in_channels · a_in."""

    name: ClassVar[str] = ""
    grammar: ClassVar[Grammar | None] = None  # None: not written as a statement (add)
    kind: ClassVar[LayerKind | None] = None   # None: not a concrete layer (ir expands)
    table1: ClassVar[str] = ""                # Table 1's "Type" name
    _defaults: dict[str, Any]

    # -- the statement: defaults, checks, text, building
    def default(self, field: str, d: LayerDef) -> Any:
        """The value of LayerDef `field` that the statement does not write out."""
        try:
            return self._defaults[field]
        except KeyError:
            raise AttributeError(f"'{self.name}' has no field {field!r}") from None

    def options_for(self, d: LayerDef) -> tuple[Option, ...]:
        """The options the statement may take, given its arguments (all of the grammar's)."""
        return self.grammar.options if self.grammar else ()

    def check(self, d: LayerDef, written: frozenset[str]) -> tuple[str, str | None] | None:
        """What is wrong with a statement whose every value was read well (`written`: the keys
        of the options written out), and the key of the option whose token to point at (None:
        the first argument); None if nothing is."""
        if getattr(d, "pad", None) == "same" and d.kernel % 2 == 0:
            return "SAME padding needs an odd kernel size", None
        return None

    def text(self, d: LayerDef) -> str:
        """The statement's canonical text: arguments, then the options that differ from their
        default, in the grammar's order."""
        if self.grammar is None:
            raise MobilecostError(f"'{self.name}' is not written as a statement")
        parts = [self.name] + [a.write(getattr(d, a.field)) for a in self.grammar.args]
        for o in self.options_for(d):
            value = getattr(d, o.field)
            if value is not None and value != self.default(o.field, d):
                parts.append(o.text(value))
        return " ".join(parts)

    def build(self, b: Builder, d: LayerDef) -> None:
        """Emit the concrete layers of statement `d` on builder `b`.

        The grid engine runs the same build on every α of a grid at once (`vector_channels`):
        `b.channels` and what `b.ch` returns are then int64 arrays with one element per α, so
        channel arithmetic here must be integer arithmetic that numpy arrays take too (`+`,
        `*`, `//`, `%`, comparisons, and `lang.values`' `product`, `at_least`,
        `make_divisible_ratio`, `round_ratio` in place of Fractions, `max` and `round`). A
        branch on a channel count (`if`, `max`, `==`) is fine: where it goes both ways, the
        engine splits the α and walks each part on its own."""
        raise MobilecostError(f"'{self.name}' is not written as a statement")

    #: Whether `build` runs on channel counts that are arrays over α (see `build`). An op whose
    #: build needs one Python int at a time sets False: the grid engine then walks every spec
    #: that uses it one α at a time (exact, slower). A build that fails on arrays is walked one
    #: α at a time as well.
    vector_channels: ClassVar[bool] = True

    def max_layers(self, d: LayerDef) -> int:
        """The most concrete layers statement `d` builds (counted before building)."""
        return 1

    #: The output side is the input side of the layer at `skip_from` (a channel-wise scale
    #: multiplies the map saved there), not the size rule's.
    side_from_skip: ClassVar[bool] = False

    # -- the concrete layer: size rule
    def out_size(self, h: Any, kernel: int, stride: int, pad: str) -> Any:
        """Output side for input side `h` (an int or an integer array): SAME padding gives
        ceil(h / s) (symmetric, `same`, or TensorFlow's asymmetric, `tf`), VALID
        floor((h - k) / s) + 1, a global window 1."""
        if pad in ("same", "tf"):
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


def areas(x: Any) -> tuple[Any, Any]:
    """The input and output areas of a concrete layer: height × width of its maps (`in_size`
    and `out_size` are the heights, `in_width` and `out_width` the widths)."""
    return x.in_size * x.in_width, x.out_size * x.out_width


#: The op table: name -> op, in registration order (which is the grammar's keyword order).
OPS: dict[str, Op] = {}
#: The ops written as statements (those with a grammar), in the same order.
STATEMENTS: dict[str, Op] = {}


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: add one instance of `cls` to `OPS`, and the fields of its grammar to
    `FIELDS`; a second op of a name, or a field given two defaults, is refused."""
    if not cls.name:
        raise MobilecostError(f"{cls.__name__} has no name")
    if cls.name in OPS:
        raise MobilecostError(f"op {cls.name!r} is already registered ({type(OPS[cls.name]).__name__})")
    if cls.grammar is None and cls.kind is None:
        raise MobilecostError(f"op {cls.name!r} is neither a statement nor a layer")
    op = cls()
    if cls.grammar is not None:
        for o in cls.grammar.options:
            before = FIELDS.get(o.field)
            if before is not None and before != o.default:
                raise MobilecostError(f"op {cls.name!r}: option {o.key!r} defaults its field "
                                      f"{o.field!r} to {o.default!r}, another op to {before!r}")
            FIELDS[o.field] = o.default
        for a in cls.grammar.args:
            FIELDS.setdefault(a.field, None)
    OPS[cls.name] = op
    if cls.grammar is not None:
        STATEMENTS[cls.name] = op
    for o in OPS.values():  # every op reads every field: its own defaults, else the table's
        o._defaults = {**FIELDS, **dict(o.grammar.defaults if o.grammar else ())}
    return cls


def statement_ops() -> tuple[str, ...]:
    """Names of the ops written as statements, in grammar order."""
    return tuple(STATEMENTS)


def layer_ops() -> tuple[str, ...]:
    """Names of the ops that are concrete layers."""
    return tuple(n for n, op in OPS.items() if op.kind is not None)


__all__ = ["FIELDS", "OPS", "STATEMENTS", "Arg", "Builder", "Grammar", "LayerDef", "Op", "Option",
           "areas", "channel_count", "choice", "expansion", "kernel_size", "layer_ops", "positive",
           "register",
           "statement_ops", "window", "yes_no", "yes_no_text"]
