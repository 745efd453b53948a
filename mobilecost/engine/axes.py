"""Grid syntax for widths, resolutions and budgets: `0.25..1`, `128..224:16`, `0.5,1`, `300M`.

A grid option is a comma-separated list of items; an item is a number or an inclusive range
`a..b` (the option's default step) or `a..b:step`. A range runs upwards from `a` and stops at
the last value not above `b`. Values keep the order written; repeats are dropped. Numbers are
exact (α 0.1 is 1/10, not 0.1000000000000000055). Pure Python: no numpy, no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, TypeVar

from ..errors import ConfigError, MobilecostError
from ..lang.spec import Spec
from ..lang.values import (
    MAX_RESOLUTION,
    Resolution,
    norm_resolution,
    resolution_text,
    sides,
    to_fraction,
)

DEFAULT_ALPHA_STEP = Fraction(1, 4)
DEFAULT_RES_STEP = 32
DEFAULT_RHO_STEP = Fraction(1, 4)
MAX_AXIS = 10_000_000  # values on one axis; a longer range is refused before it is built
MAX_ASPECT = 10_000  # width / height at most this, and at least its inverse
MAX_BUDGET = 10**300  # the largest budget accepted: finite, and a float after any unit scaling

T = TypeVar("T", Fraction, int)

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_QUANTITY = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgG]?)\s*")


def _number(text: str, option: str, whole: str) -> Fraction:
    try:
        return to_fraction(text.strip())  # the one α policy: text is exact
    except ConfigError:
        raise MobilecostError(f"{option} {whole}: {text.strip()!r} is not a number") from None


def _integer(text: str, option: str, whole: str) -> int:
    t = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", t):
        raise MobilecostError(f"{option} {whole}: {t!r} is not a whole number")
    if len(t) > 30:  # int() refuses past 4,300 digits; nothing sane has 30
        raise MobilecostError(f"{option}: {t[:12]}… has {len(t):,} digits, too many for a resolution")
    return int(t)


def _size(text: str, option: str, whole: str) -> int | tuple[int, int]:
    """A resolution item: a whole number of pixels, or HEIGHTxWIDTH (a single item only)."""
    t = text.strip().replace("×", "x")
    if "x" not in t:
        return _integer(t, option, whole)
    h_text, _, w_text = t.partition("x")
    if not h_text.strip() or not w_text.strip():
        raise MobilecostError(f"{option} {whole}: {t!r} needs both sides, HEIGHTxWIDTH "
                              f"(e.g. 320x240)")
    h, w = _integer(h_text, option, whole), _integer(w_text, option, whole)
    if h < 1 or w < 1:
        raise MobilecostError(f"{option} {whole}: {t!r}: each side must be > 0")
    return (h, w)


def _least(v: Any) -> Any:
    """The value a positivity check reads: the smaller side of a HEIGHTxWIDTH item."""
    return min(v) if isinstance(v, tuple) else v


@dataclass(frozen=True)
class GridAxis:
    """One grid option, checked and counted but not yet enumerated.

    `items` are (first value, step, count) with step None for a single value. `upper` is the
    number of values written (repeats included), `lower` the fewest distinct values the axis can
    have (the longest range, or the distinct single values): a grid is refused on these counts
    before any value is made."""

    option: str
    text: str
    items: tuple[tuple[Any, Any, int], ...]
    upper: int
    lower: int

    def values(self) -> list:
        """The values in the order written, repeats dropped."""
        out, seen = [], set()
        for lo, step, count in self.items:
            for v in ([lo] if step is None else (lo + i * step for i in range(count))):
                if v not in seen:
                    seen.add(v)
                    out.append(v)
        return out

    def lower_after(self, scale: int) -> int:
        """The fewest distinct values once each is multiplied by `scale` and rounded to a whole
        number (ρ -> pixels). A range of values 2 or more apart keeps its count, one of values
        at least 1 apart half of it; a denser one covers every whole number of its span."""
        singles = {round(lo * scale) for lo, step, _ in self.items if step is None}
        counts = [len(singles)]
        for lo, step, count in self.items:
            if step is not None:
                gap = step * scale
                counts.append(count if gap >= 2 else (count + 1) // 2 if gap >= 1 else
                              round((lo + (count - 1) * step) * scale) - round(lo * scale) + 1)
        return max(counts)

    def pixels(self, to_pixels: Callable[[Any], int], scale: int) -> list[int]:
        """The distinct whole numbers `to_pixels` makes of the values (ρ -> resolution, rounding
        v·scale), in the order written; a range denser than 1 a step is not enumerated: its
        values cover every whole number from its first value's to its last's."""
        out: dict[int, None] = {}
        for lo, step, count in self.items:
            if step is None:
                out.setdefault(to_pixels(lo))
            elif step * scale < 1 and isinstance(first := to_pixels(lo), int):
                last = to_pixels(lo + (count - 1) * step)
                for px in range(first, last + 1):
                    out.setdefault(px)
            else:
                for i in range(count):
                    out.setdefault(to_pixels(lo + i * step))
        return list(out)


def _axis(text: str, option: str, convert: Callable[[str, str, str], T], default_step: T,
          what: str, most: int | None = None) -> GridAxis:
    whole = str(text).strip()
    if not whole:
        raise MobilecostError(f"{option}: empty value")
    items: list[tuple[T, T | None, int]] = []
    for item in whole.split(","):
        if not item.strip():
            raise MobilecostError(f"{option} {whole}: empty item in the list")
        if ".." in item:
            if "x" in item.replace("×", "x"):
                raise MobilecostError(
                    f"{option} {whole}: a range runs over one number; list HEIGHTxWIDTH sizes "
                    f"(320x240,480x360), or give a range of heights and --aspect")
            bounds, _, step_text = item.partition(":")
            lo_text, _, hi_text = bounds.partition("..")
            lo, hi = convert(lo_text, option, whole), convert(hi_text, option, whole)
            step = convert(step_text, option, whole) if step_text.strip() else default_step
            if step <= 0:
                raise MobilecostError(f"{option} {whole}: the step must be > 0, got {step_text.strip()}")
            if hi < lo:
                raise MobilecostError(
                    f"{option} {whole}: the range runs downwards; write it as {hi_text.strip()}.."
                    f"{lo_text.strip()}")
            items.append((lo, step, int((hi - lo) // step) + 1))  # counted, not enumerated
        else:
            lo = convert(item, option, whole)
            items.append((lo, None, 1))
        if _least(lo) <= 0:  # the first value of a rising range is its least
            raise MobilecostError(f"{option} {whole}: {what} must be > 0, got {lo}")
        step, count = items[-1][1:]
        last = lo if step is None else lo + (count - 1) * step
        if most is not None and max(last if isinstance(last, tuple) else (last,)) > most:
            value = max(last) if isinstance(last, tuple) else last
            raise MobilecostError(f"{what} {value} is more than a sweep takes ({most:,} px a "
                                  f"side; `cost` takes any)")
    upper = sum(c for _, _, c in items)
    if upper > MAX_AXIS:
        raise MobilecostError(f"{option} {whole}: {upper:,} values; at most {MAX_AXIS:,} per axis")
    singles = {lo for lo, step, _ in items if step is None}
    lower = max([len(singles)] + [c for _, step, c in items if step is not None])
    return GridAxis(option, whole, tuple(items), upper, lower)


def alpha_axis(text: str, option: str = "--alpha") -> GridAxis:
    """The α option, counted; `.values()` gives the exact fractions."""
    return _axis(text, option, _number, DEFAULT_ALPHA_STEP, "alpha")


def resolution_axis(text: str, option: str = "--res") -> GridAxis:
    """Resolutions: whole numbers (square inputs, or heights with --aspect), ranges of them, and
    HEIGHTxWIDTH items (320x240)."""
    return _axis(text, option, _size, DEFAULT_RES_STEP, "resolution", MAX_RESOLUTION)


def rho_axis(text: str, option: str = "--rho") -> GridAxis:
    return _axis(text, option, _number, DEFAULT_RHO_STEP, "rho")


def parse_alphas(text: str, option: str = "--alpha") -> list[Fraction]:
    """Width multipliers α as exact fractions; ranges step by 0.25 unless told."""
    return alpha_axis(text, option).values()


def parse_resolutions(text: str, option: str = "--res") -> list[Resolution]:
    """Input resolutions in pixels (an int, or (height, width) for a HEIGHTxWIDTH item); ranges
    step by 32 unless told."""
    return [norm_resolution(r) for r in resolution_axis(text, option).values()]


def parse_aspect(text: str, option: str = "--aspect") -> Fraction:
    """An aspect ratio, width over height: 'W:H' (4:3) or a number (1.5, 0.75)."""
    whole = str(text).strip()
    w_text, colon, h_text = whole.partition(":")
    if colon:
        w, h = _number(w_text, option, whole), _number(h_text, option, whole)
        if w <= 0 or h <= 0:
            raise MobilecostError(f"{option} {whole}: both sides of W:H must be > 0")
        return _bounded_aspect(w / h, option, whole)
    value = _number(whole, option, whole)
    if value <= 0:
        raise MobilecostError(f"{option} {whole}: the aspect (width / height) must be > 0")
    return _bounded_aspect(value, option, whole)


def _bounded_aspect(value: Fraction, option: str, whole: str) -> Fraction:
    if not Fraction(1, MAX_ASPECT) <= value <= MAX_ASPECT:
        raise MobilecostError(f"{option} {whole}: the aspect (width / height) must be between "
                              f"1/{MAX_ASPECT:,} and {MAX_ASPECT:,}")
    return value


def with_aspect(spec: Spec, resolutions: list[Resolution], aspect: Fraction | None,
                option: str = "--aspect") -> list[Resolution]:
    """Widths for the resolutions given as one number: that number is the height, and the width
    is the height times `aspect` (width / height), rounded to the nearest pixel; without
    `aspect`, the spec's own (1 for a square spec, so its grids stay square). A HEIGHTxWIDTH
    item keeps its width; with an explicit `aspect` it is refused (which width was meant?)."""
    h0, w0 = sides(spec.size)
    ratio = aspect if aspect is not None else Fraction(w0, h0)
    out: dict[Resolution, None] = {}
    for r in resolutions:
        if isinstance(r, tuple):
            if aspect is not None:
                raise MobilecostError(f"{option}: {resolution_text(r)} already has its width; give "
                                      f"heights with {option}, or HEIGHTxWIDTH sizes without it")
            out.setdefault(r)
            continue
        w = round(r * ratio)
        if w < 1:
            raise MobilecostError(f"{option} {float(ratio):g} makes a width of {float(r * ratio):g} "
                                  f"px at height {r}, less than 1 px")
        out.setdefault(norm_resolution((r, w)))
    return list(out)


def parse_rhos(text: str, option: str = "--rho") -> list[Fraction]:
    """Resolution multipliers ρ (of a spec's base resolution); ranges step by 0.25 unless told."""
    return rho_axis(text, option).values()


def grid_from_text(spec: Spec, alpha: str, res: str | None, rho: str | None,
                   check: Callable[[int, int], MobilecostError | None] | None = None,
                   default_res: str = "224,192,160,128",
                   aspect: str | None = None) -> tuple[list[Fraction], list[Resolution]]:
    """The α and resolution lists of grid options; `check(n_alphas, n_resolutions)` returns the
    refusal of a grid too large, and is asked first with the fewest values the options can give
    (counted arithmetically, nothing enumerated), then with the real counts.

    A resolution given as one number is a square input's side for a square spec without
    `aspect`; with `aspect` (width / height, `parse_aspect`), or for a spec with a non-square
    base, it is the height and the width follows (`with_aspect`). --rho scales both sides of
    the spec's base."""
    if res is not None and rho is not None:
        raise MobilecostError("give --res or --rho, not both")
    ratio = parse_aspect(aspect) if aspect is not None else None
    a_axis = alpha_axis(alpha)
    if rho is not None:
        r_axis = rho_axis(rho)
        r_lower = r_axis.lower_after(spec.resolution)
    else:
        r_axis = resolution_axis(res if res is not None else default_res)
        r_lower = r_axis.lower
    if check is not None:
        err = check(a_axis.lower, r_lower)
        if err:
            raise err
    alphas = a_axis.values()
    if rho is not None:
        if ratio is not None:  # heights from ρ, widths from the aspect
            resolutions = with_aspect(spec, r_axis.pixels(
                lambda v: sides(spec.resolution_for(v))[0], spec.resolution), ratio)
        else:
            resolutions = r_axis.pixels(spec.resolution_for, spec.resolution)
    else:
        resolutions = with_aspect(spec, parse_resolutions(r_axis.text, r_axis.option), ratio)
    if check is not None:
        err = check(len(alphas), len(resolutions))
        if err:
            raise err
    return alphas, resolutions


def specs_grid(specs: list[Spec], alpha: str, res: str | None, cap: int,
               refusal: Callable[[int], MobilecostError]) -> tuple[list[Fraction], list[Resolution]]:
    """The α and resolution lists that every one of `specs` is taken over, refused with
    `refusal(total)` (counted from the options, before anything is enumerated) when specs × α ×
    resolutions is more than `cap`."""
    def check(n_a: int, n_r: int) -> MobilecostError | None:
        total = len(specs) * n_a * n_r
        return refusal(total) if total > cap else None

    return grid_from_text(specs[0], alpha, res, None, check)


def parse_quantity(text: str, option: str = "budget") -> int:
    """A count with an optional suffix k (10³), M (10⁶) or G (10⁹): '300M' -> 300000000.

    The rule every budget follows (latency budgets too, `latency.parse_latency_ms`): a finite
    positive number, at most `MAX_BUDGET`, with an optional suffix; `inf`, `nan`, `1e400`,
    0 and negatives are refused.
    """
    m = _QUANTITY.fullmatch(str(text))
    if not m:
        raise MobilecostError(f"{option} {text}: expected a finite positive number with an "
                              f"optional suffix k, M or G (e.g. 300M)")
    value = Fraction(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if value > MAX_BUDGET:
        raise MobilecostError(f"{option} {text}: too large (at most 1e300)")
    if value.denominator != 1:
        raise MobilecostError(f"{option} {text}: not a whole number ({float(value):g})")
    if value <= 0:
        raise MobilecostError(f"{option} {text}: must be > 0")
    return int(value)


def format_quantity(n: float) -> str:
    """Short text for a count: 300000000 -> '300M', 1500 -> '1.5k'."""
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{suffix}"
    return f"{n:g}"
__all__ = ["alpha_axis", "DEFAULT_ALPHA_STEP", "DEFAULT_RES_STEP", "DEFAULT_RHO_STEP",
           "format_quantity", "grid_from_text", "GridAxis", "MAX_AXIS", "MAX_BUDGET",
           "parse_alphas", "parse_aspect", "parse_latency_ms", "parse_quantity",
           "parse_resolutions", "parse_rhos", "resolution_axis", "rho_axis", "specs_grid",
           "with_aspect"]


def parse_latency_ms(text: str, option: str = "latency") -> float:
    """A latency budget as written on the command line, in ms: '5ms', '5', '0.5 s', '800us'.

    The rule of every budget (`grid.parse_quantity`): a finite positive number, at most
    `grid.MAX_BUDGET`, with an optional unit; `inf`, `nan`, `1e400`, 0 and negatives are refused.
    """
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s|us|µs)?\s*", text)
    if not m:
        raise MobilecostError(f"{option} {text}: expected a finite positive number with an "
                              f"optional unit ms, s or us (e.g. 5ms, 0.5s, 800us)")
    value = Fraction(m.group(1)) * {"ms": 1, None: 1, "s": 1000, "us": Fraction(1, 1000),
                                    "µs": Fraction(1, 1000)}[m.group(2)]
    if value > MAX_BUDGET:
        raise MobilecostError(f"{option} {text}: too large (at most 1e300 ms)")
    if value <= 0:
        raise MobilecostError(f"{option} {text}: must be > 0")
    return float(value)
