"""What a latency is of and what was measured: a configuration (`Config`: a network, α,
a square resolution and a batch), a measured `Point`, the `Domain` a model was calibrated on
(and when a configuration lies outside it), and measurements read from a CSV."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from ..dtypes import lookup as lookup_dtype
from ..errors import MobilecostError
from ..lang.identity import Network, network_of
from ..lang.spec import build
from ..lang.values import exact_text, norm_resolution, to_fraction
from .precision import single

# A prediction extrapolates in α or resolution when it lies outside the calibrated range by
# more than this factor (α 1.1 on a target calibrated on α ≤ 1 is outside; 1.05 is not).
EXTRAPOLATION_MARGIN = 1.10
# Latencies a fit accepts: a forward pass takes more than a nanosecond and less than a day.
MIN_LATENCY_MS = 1e-6
MAX_LATENCY_MS = 8.64e7


@dataclass(frozen=True, slots=True)
class Config:
    """One network configuration: what a latency is measured or predicted for.

    `spec` may be a built-in name, a spec file's path or a Spec; it is resolved at once to
    the `network` (see Network), and `spec` keeps the network's name as a label. Two
    configurations are equal when their networks, α, resolution and batch are.
    """

    spec: str = field(compare=False)
    alpha: Fraction
    resolution: int
    batch: int = 1
    network: Network = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.network is None:
            net = network_of(self.spec)
            object.__setattr__(self, "network", net)
            object.__setattr__(self, "spec", net.name)
        elif not isinstance(self.spec, str):
            object.__setattr__(self, "spec", self.network.name)
        if not isinstance(self.alpha, Fraction):
            object.__setattr__(self, "alpha", to_fraction(self.alpha))
        if not isinstance(self.resolution, int) or isinstance(self.resolution, bool):
            r = self.resolution
            res = norm_resolution(int(r) if isinstance(r, float) and r.is_integer() else r)
            if isinstance(res, tuple):
                raise MobilecostError(
                    f"{self.spec} at {res[0]}x{res[1]}: latency targets are calibrated and "
                    f"predicted on square inputs only")
            object.__setattr__(self, "resolution", res)

    @property
    def label(self) -> str:
        from ..util import format_number

        b = f" b{self.batch}" if self.batch != 1 else ""
        return f"{self.spec} {format_number(self.alpha)}/{self.resolution}{b}"


@dataclass(frozen=True, slots=True)
class Point:
    """A measured configuration."""

    config: Config
    latency_ms: float


# --------------------------------------------------------------------------- calibrated domain

@dataclass(frozen=True)
class Domain:
    """What a model was calibrated on: networks, batches, and the α and resolution ranges."""

    networks: frozenset[Network]
    batches: frozenset[int]
    alpha: tuple[Fraction, Fraction]
    resolution: tuple[int, int]

    @staticmethod
    def of(points: Sequence[Point]) -> "Domain | None":
        if not points:
            return None
        cs = [p.config for p in points]
        return Domain(frozenset(c.network for c in cs), frozenset(c.batch for c in cs),
                      (min(c.alpha for c in cs), max(c.alpha for c in cs)),
                      (min(c.resolution for c in cs), max(c.resolution for c in cs)))

    def outside(self, config: Config) -> list[str]:
        """Why a prediction of `config` extrapolates (empty when it does not), shortest words."""
        why = []
        if config.network not in self.networks:
            why.append("spec")
        if config.batch not in self.batches:
            why.append("batch")
        if not self.alpha_inside(config.alpha):
            why.append("α")
        if not self.resolution_inside(config.resolution):
            why.append("resolution")
        return why

    def alpha_inside(self, alpha: Fraction) -> bool:
        """Whether α is inside the calibrated range, widened by EXTRAPOLATION_MARGIN."""
        lo, hi = self.alpha_bounds
        return lo <= alpha <= hi

    @property
    def alpha_bounds(self) -> tuple[Fraction, Fraction]:
        """The widened α range, exactly: the floats α₀ / margin and α₁ · margin as fractions
        (comparing with them is comparing with the floats, which Python does exactly)."""
        m = EXTRAPOLATION_MARGIN
        return Fraction(self.alpha[0] / m), Fraction(self.alpha[1] * m)

    def resolution_inside(self, resolution: int) -> bool:
        """Whether the resolution is inside the calibrated range, widened the same way."""
        m = EXTRAPOLATION_MARGIN
        return self.resolution[0] / m <= resolution <= self.resolution[1] * m

    def describe(self) -> str:
        names = sorted({n.name for n in self.networks})
        return (f"{', '.join(names)}; batch {', '.join(str(b) for b in sorted(self.batches))}; "
                f"α {exact_text(self.alpha[0])}–{exact_text(self.alpha[1])}; "
                f"resolution {self.resolution[0]}–{self.resolution[1]}")


def parse_alpha_res(text: str) -> Config:
    """'0.5/160' or '0.5/160/4' (α/resolution[/batch]) of mobilenet_v1, or 'spec:0.5/160'."""
    spec, _, rest = text.rpartition(":")
    parts = rest.split("/")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        return Config(spec or "mobilenet_v1", to_fraction(parts[0]), int(parts[1]),
                      int(parts[2]) if len(parts) == 3 else 1)
    except (ValueError, MobilecostError):
        raise MobilecostError(f"cannot read configuration {text!r}; write α/resolution[/batch], "
                              f"e.g. 0.5/160, optionally after 'spec:'") from None


REQUIRED_COLUMNS: tuple[str, ...] = ("spec", "alpha", "resolution", "batch", "latency_ms")


# --------------------------------------------------------------------------- measurements

@dataclass(frozen=True, slots=True)
class Measurements:
    points: tuple[Point, ...]
    dtype: str
    device: str | None


def read_measurements(path: Path | str) -> Measurements:
    """Measured latencies from a CSV (columns spec, alpha, resolution, batch, latency_ms; an
    `alpha_exact` column, as a sweep writes, is read for α in place of `alpha`; others ignored; lines starting with '#' are comments). Every problem is a MobilecostError naming
    the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MobilecostError(f"{path}: no such measurements file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MobilecostError(f"{path}: cannot read measurements: {exc}") from None
    numbered = [(i, line) for i, line in enumerate(text.splitlines(), 1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise MobilecostError(f"{path}: no header and no rows (needs columns {', '.join(REQUIRED_COLUMNS)})")
    rows = list(csv.reader(line for _, line in numbered))
    header = [h.strip() for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise MobilecostError(f"{path}:{numbered[0][0]}: missing column(s) {', '.join(missing)} "
                              f"(needs {', '.join(REQUIRED_COLUMNS)})")
    col = {h: header.index(h) for h in header}
    seen: dict[Config, tuple[float, int]] = {}
    points: list[Point] = []
    devices: set[str] = set()
    dtypes: dict[str, str] = {}  # the line each precision is first on: dtype name -> 'file:line'

    networks: dict[str, Network] = {}
    for (lineno, _), row in zip(numbered[1:], rows[1:]):
        where = f"{path}:{lineno}"
        if len(row) < len(header):
            raise MobilecostError(f"{where}: {len(row)} fields, the header has {len(header)}")

        def cell(name: str) -> str:
            return row[col[name]].strip()

        spec = cell("spec")
        if spec not in networks:
            networks[spec] = _csv_network(spec, path, where)
        # a sweep's CSV carries α exactly in alpha_exact ('1/3') beside the float alpha
        exact = "alpha_exact" in col and cell("alpha_exact")
        alpha = _number(cell("alpha_exact") if exact else cell("alpha"), "alpha", where, to_fraction)
        resolution = _number(cell("resolution"), "resolution", where, int)
        batch = _number(cell("batch"), "batch", where, int)
        ms = _number(cell("latency_ms"), "latency_ms", where, float)
        for name, v in (("alpha", alpha), ("resolution", resolution), ("batch", batch), ("latency_ms", ms)):
            if not (v > 0) or (isinstance(v, float) and not math.isfinite(v)):
                raise MobilecostError(f"{where}: {name} must be a positive number, got {cell(name)!r}")
        if not MIN_LATENCY_MS <= ms <= MAX_LATENCY_MS:
            raise MobilecostError(f"{where}: latency_ms must be between {MIN_LATENCY_MS:g} and "
                                  f"{MAX_LATENCY_MS:g} ms, got {cell('latency_ms')!r}")
        net = networks[spec]
        config = Config(net.name, alpha, resolution, batch, net)
        try:
            build(net.spec(), alpha, resolution)  # refused here, not in the fit
        except MobilecostError as exc:
            raise MobilecostError(f"{where}: {exc}") from None
        if config in seen:
            prev_ms, prev_line = seen[config]
            if prev_ms != ms:
                raise MobilecostError(f"{where}: {config.label} is also on line {prev_line} with a different "
                                      f"latency_ms ({prev_ms:g} vs {ms:g}); keep one measurement per configuration")
            continue
        seen[config] = (ms, lineno)
        points.append(Point(config, ms))
        if "device" in col and cell("device"):
            devices.add(cell("device"))
        if "dtype" in col and cell("dtype"):
            try:
                dtypes.setdefault(lookup_dtype(cell("dtype")).name, where)
            except MobilecostError as exc:
                raise MobilecostError(f"{where}: {exc}") from None
    if not points:
        raise MobilecostError(f"{path}: a header but no measurements")
    if len(devices) > 1:
        raise MobilecostError(f"{path}: measurements from several devices ({', '.join(sorted(devices))}); "
                              f"calibrate one target per device")
    # one precision; a CSV without a dtype column is of fp32 (what a sweep times by default)
    dtype = single({where: d for d, where in dtypes.items()})
    return Measurements(tuple(points), dtype, devices.pop() if devices else None)


def _csv_network(spec: str, csv_path: Path, where: str) -> Network:
    """The network a CSV's spec cell names: a built-in, a path from the working directory, or
    a path from the CSV's own folder (a CSV beside its spec file reads from anywhere)."""
    try:
        return network_of(spec)
    except MobilecostError as exc:
        beside = csv_path.parent / spec
        if not Path(spec).is_absolute() and beside.is_file():
            try:
                return network_of(str(beside))
            except MobilecostError as exc2:
                raise MobilecostError(f"{where}: {exc2}") from None
        raise MobilecostError(f"{where}: {exc}") from None


def _number(text: str, name: str, where: str, kind):
    try:
        return kind(text)
    except (ValueError, ZeroDivisionError, MobilecostError):
        what = "an integer" if kind is int else "a number"
        raise MobilecostError(f"{where}: {name} must be {what}, got {text!r}") from None
