"""Small utilities every module may import: number formatting and atomic file writes.

Nothing here imports another mobilecost module, so the import graph stays one-way
(spec -> cost -> grid/sweep -> latency -> report -> cli, with this module beneath them all).
"""

from __future__ import annotations

import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable


def millions(x: Any, digits: int = 2) -> str:
    return "" if x is None else f"{x / 1e6:,.{digits}f}"


def percent(x: Any, digits: int = 2) -> str:
    return "" if x is None else f"{100 * x:.{digits}f}%"


def milliseconds(x: Any) -> str:
    return "" if x is None else f"{x:.3f}"


def format_number(x: Fraction | float) -> str:
    """Shortest decimal text for an α or ρ: 3/4 -> '0.75', 1 -> '1'."""
    f = float(x)
    return str(int(f)) if f == int(f) else f"{f:g}"


def plain(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, Fraction):
        return format_number(x)
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return str(x)


def write_atomic(path: Path | str, data: "str | bytes | Iterable[bytes]") -> Path:
    """Write a file so that it is either complete or absent, never half-written. `data` may be
    an iterable of byte blocks, written one after the other (a big file is never whole in
    memory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, (str, bytes, bytearray, memoryview)):
                fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            else:
                for block in data:
                    fh.write(block)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the mode open() would
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def conformal_half_width(errors: "Iterable[float]", coverage: float) -> float:
    """The ⌈coverage·(n+1)⌉-th smallest of n absolute leave-one-out errors: a half-width that
    holds a new point with probability ≥ coverage when the points are exchangeable (the
    jackknife / split-conformal rank); infinite when that rank exceeds n (too few points)."""
    ranked = sorted(abs(e) for e in errors)
    k = math.ceil(coverage * (len(ranked) + 1))
    return ranked[k - 1] if k <= len(ranked) else math.inf


def si_text(x: float, unit: str) -> str:
    """x with an SI prefix and its unit, 3 significant digits; units that count things ('',
    '0 or 1', 'output elements': the roofline model's parameters) print the plain number."""
    if unit in ("", "0 or 1", "output elements"):
        return format_number(round(x, 3)) if x < 1e4 else f"{x:.3g}"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""),
                           (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
        if abs(x) >= factor or factor == 1e-9:
            return f"{x / factor:.3g} {prefix}{unit}" if x else f"0 {unit}"
    return f"{x:g} {unit}"  # pragma: no cover


__all__ = ["conformal_half_width", "format_number", "millions", "milliseconds", "percent", "plain",
           "si_text", "write_atomic"]
