"""Grid syntax for widths, resolutions and budgets: `0.25..1`, `128..224:16`, `0.5,1`, `300M`.

A grid option is a comma-separated list of items; an item is a number or an inclusive range
`a..b` (the option's default step) or `a..b:step`. A range runs upwards from `a` and stops at
the last value not above `b`. Values keep the order written; repeats are dropped. Numbers are
exact (α 0.1 is 1/10, not 0.1000000000000000055). Pure Python: no numpy, no torch.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Callable, TypeVar

from .errors import ConfigError, MobilecostError
from .spec import to_fraction

DEFAULT_ALPHA_STEP = Fraction(1, 4)
DEFAULT_RES_STEP = 32
DEFAULT_RHO_STEP = Fraction(1, 4)
MAX_AXIS = 10_000_000  # values on one axis; a longer range is refused before it is built

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
    return int(t)


def _parse(text: str, option: str, convert: Callable[[str, str, str], T], default_step: T,
           what: str) -> list[T]:
    whole = str(text).strip()
    if not whole:
        raise MobilecostError(f"{option}: empty value")
    out: list[T] = []
    seen: set[T] = set()
    for item in whole.split(","):
        if not item.strip():
            raise MobilecostError(f"{option} {whole}: empty item in the list")
        if ".." in item:
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
            count = int((hi - lo) // step) + 1
            if count > MAX_AXIS:
                raise MobilecostError(
                    f"{option} {whole}: {count:,} values; at most {MAX_AXIS:,} per axis")
            values = [lo + i * step for i in range(count)]
        else:
            values = [convert(item, option, whole)]
        for v in values:
            if v <= 0:
                raise MobilecostError(f"{option} {whole}: {what} must be > 0, got {v}")
            if v not in seen:
                seen.add(v)
                out.append(v)
    return out


def parse_alphas(text: str, option: str = "--alpha") -> list[Fraction]:
    """Width multipliers α as exact fractions; ranges step by 0.25 unless told."""
    return _parse(text, option, _number, DEFAULT_ALPHA_STEP, "alpha")


def parse_resolutions(text: str, option: str = "--res") -> list[int]:
    """Input resolutions in pixels; ranges step by 32 unless told."""
    return _parse(text, option, _integer, DEFAULT_RES_STEP, "resolution")


def parse_rhos(text: str, option: str = "--rho") -> list[Fraction]:
    """Resolution multipliers ρ (of a spec's base resolution); ranges step by 0.25 unless told."""
    return _parse(text, option, _number, DEFAULT_RHO_STEP, "rho")


def parse_quantity(text: str, option: str = "budget") -> int:
    """A count with an optional suffix k (10³), M (10⁶) or G (10⁹): '300M' -> 300000000."""
    m = _QUANTITY.fullmatch(str(text))
    if not m:
        raise MobilecostError(f"{option} {text}: expected a number with an optional suffix "
                              f"k, M or G (e.g. 300M)")
    value = Fraction(m.group(1)) * _SUFFIX[m.group(2).lower()]
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


__all__ = ["DEFAULT_ALPHA_STEP", "DEFAULT_RES_STEP", "DEFAULT_RHO_STEP", "MAX_AXIS",
           "format_quantity", "parse_alphas", "parse_quantity", "parse_resolutions", "parse_rhos"]
