"""The values a spec is written in: channel counts and how α scales them (`Channels`,
`Rounding`, `make_divisible`), exact multipliers (`to_fraction`, `exact_text`) and input sizes
(`Resolution`: an int when square, else (height, width); `norm_resolution` reads them all)."""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Union

from ..errors import ConfigError

MAX_DIGITS = 100  # digits of a number in a spec (Python refuses to read past 4,300)
# Upper bounds on what a spec and a grid may ask for. No real network comes near them (the
# widest MobileNet layer has 1,280 channels, the largest kernel 7, the largest input some
# thousands of pixels), and under them every count of the grid engine's int64 arithmetic
# stays exact: K²·M·N ≤ 2⁵⁶ for one layer at α 1, a map's area ≤ 2⁴⁰.
MAX_CHANNELS = 1 << 20  # 1,048,576 channels written in a spec (before α)
MAX_KERNEL = 256  # kernel sizes, pooling windows and strides
MAX_RESOLUTION = 1 << 20  # pixels a side: a spec's input, and every resolution of a grid


# --------------------------------------------------------------------------- channel counts


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
        return self.apply_ratio(channels, alpha.numerator, alpha.denominator)

    def apply_ratio(self, channels: Channels, num: Any, den: Any) -> Any:
        """The count at α = num / den (den > 0), in integer arithmetic only: num and den are
        ints, or integer arrays with one element per α (the grid engine's vectorised walk),
        and so is the result."""
        if channels.mode == "fixed":
            return channels.base
        if channels.mode == "atleast":
            num = at_least(num, den)  # max(α, 1)
        value = product(channels.base, num)
        if self.rule == "int":
            return at_least(value // den, self.min)  # floor(base·α), at least `min`
        return make_divisible_ratio(value, den, self.divisor)  # never more than 10% down

    def __str__(self) -> str:
        if self.rule == "int":
            return "int" if self.min == 1 else f"int min={self.min}"
        return f"multiple {self.divisor}"


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
    return make_divisible_ratio(v.numerator, v.denominator, divisor)


# --------------------------------------------------------------------------- integer channel arithmetic
# The channel rules in integer arithmetic alone, so that the same code runs on Python ints (one
# configuration, exact at any size) and on int64 arrays with one element per α (the grid
# engine's vectorised walk). Nothing here imports numpy: an array is recognised by its
# methods. A product of arrays that could leave 64-bit integers raises OverflowError (the grid
# engine then takes the exact per-α walk); Python ints never overflow.

_SAFE = 1 << 62  # |value| below this: a sum of two such, or a comparison, stays inside int64


def _is_array(x: Any) -> bool:
    return hasattr(x, "dtype")


def _largest(x: Any) -> int:
    """The largest magnitude in an int or an integer array, as a Python int."""
    if not _is_array(x):
        return abs(int(x))
    return max(abs(int(x.max(initial=0))), abs(int(x.min(initial=0))))


def product(a: Any, b: Any) -> Any:
    """a · b for ints or integer arrays; OverflowError where an array's product could leave
    int64 (checked on the operands' largest values, before multiplying)."""
    if (_is_array(a) or _is_array(b)) and _largest(a) * _largest(b) >= _SAFE:
        raise OverflowError("channel arithmetic past 64-bit integers")
    return a * b


def at_least(x: Any, low: Any) -> Any:
    """max(x, low), elementwise where either is an array (never a truth value of an array)."""
    if _is_array(x):
        return x.clip(low, None)
    if _is_array(low):
        return low.clip(x, None)
    return max(x, low)


def make_divisible_ratio(num: Any, den: Any, divisor: int = 8) -> Any:
    """`make_divisible(num / den, divisor)` in integers: num ≥ 0 and den > 0 are ints or integer
    arrays (one element per α), and so is the result. floor(v + d/2) is
    (2·num + d·den) // (2·den), and out < 9/10 · v is 10·den·out < 9·num."""
    half = product(2, num) + product(divisor, den)
    out = at_least(half // product(2, den) // divisor * divisor, divisor)
    below = product(product(10, den), out) < product(9, num)
    return out + divisor * below


def round_ratio(num: Any, den: Any) -> Any:
    """round(num / den) with halves to even, as Python rounds a Fraction, in integers (ints or
    integer arrays, den > 0)."""
    q, r = num // den, num % den
    twice = product(2, r)
    up = (twice > den) | ((twice == den) & (q % 2 == 1))
    return q + up
