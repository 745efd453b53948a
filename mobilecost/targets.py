"""Calibrated devices ("targets"): read measurements, fit the latency model, store it as JSON.

A target is one file, `NAME.json`, in the targets directory: `--targets-dir`, else
$MOBILECOST_TARGETS_DIR, else $XDG_CONFIG_HOME/mobilecost/targets (~/.config/... when unset;
%APPDATA%\\mobilecost\\targets on Windows). It holds the fitted coefficients, the measured
points they were fitted on (so a target can be validated and a measured latency preferred to a
predicted one) and the fit's errors. Files are written atomically: a target is whole or absent.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Sequence

from . import latency
from .errors import MobilecostError
from .latency import COEFFICIENTS, Config, Fit, Point
from .util import format_number, write_atomic
from .spec import load_spec, to_fraction

FORMAT = "mobilecost-target/1"
REQUIRED_COLUMNS: tuple[str, ...] = ("spec", "alpha", "resolution", "batch", "latency_ms")
# `measure` and `sweep --measure` write the short names of their --dtype option.
TIMING_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def default_dir() -> Path:
    """Where targets live when --targets-dir is not given."""
    env = os.environ.get("MOBILECOST_TARGETS_DIR")
    if env:
        return Path(env).expanduser()
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "mobilecost" / "targets"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "mobilecost" / "targets"


def check_name(name: str) -> str:
    if not _NAME.match(name) or name.endswith(".json"):
        raise MobilecostError(f"invalid target name {name!r}: use letters, digits, '.', '_' and '-', "
                              f"starting with a letter or digit")
    return name


# --------------------------------------------------------------------------- measurements

@dataclass(frozen=True, slots=True)
class Measurements:
    points: tuple[Point, ...]
    dtype: str
    device: str | None


def read_measurements(path: Path | str) -> Measurements:
    """Measured latencies from a CSV (columns spec, alpha, resolution, batch, latency_ms; others
    ignored; lines starting with '#' are comments). Every problem is a MobilecostError naming
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
    dtypes: set[str] = set()
    spec_ok: dict[str, str] = {}
    for (lineno, _), row in zip(numbered[1:], rows[1:]):
        where = f"{path}:{lineno}"
        if len(row) < len(header):
            raise MobilecostError(f"{where}: {len(row)} fields, the header has {len(header)}")

        def cell(name: str) -> str:
            return row[col[name]].strip()

        spec = cell("spec")
        if spec not in spec_ok:
            try:
                load_spec(spec)
            except MobilecostError as exc:
                raise MobilecostError(f"{where}: {exc}") from None
            spec_ok[spec] = spec
        alpha = _number(cell("alpha"), "alpha", where, to_fraction)
        resolution = _number(cell("resolution"), "resolution", where, int)
        batch = _number(cell("batch"), "batch", where, int)
        ms = _number(cell("latency_ms"), "latency_ms", where, float)
        for name, v in (("alpha", alpha), ("resolution", resolution), ("batch", batch), ("latency_ms", ms)):
            if not (v > 0) or (isinstance(v, float) and not math.isfinite(v)):
                raise MobilecostError(f"{where}: {name} must be a positive number, got {cell(name)!r}")
        config = Config(spec, alpha, resolution, batch)
        try:
            latency.layer_features(config)
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
            name = cell("dtype").removeprefix("torch.")
            dtypes.add(TIMING_DTYPES.get(name, name))
    if not points:
        raise MobilecostError(f"{path}: a header but no measurements")
    if len(devices) > 1:
        raise MobilecostError(f"{path}: measurements from several devices ({', '.join(sorted(devices))}); "
                              f"calibrate one target per device")
    if len(dtypes) > 1:
        raise MobilecostError(f"{path}: measurements in several dtypes ({', '.join(sorted(dtypes))}); "
                              f"calibrate one target per dtype")
    dtype = dtypes.pop() if dtypes else "float32"
    if dtype not in latency.DTYPE_BYTES:
        raise MobilecostError(f"{path}: unknown dtype {dtype!r}; known: {', '.join(latency.DTYPE_BYTES)}")
    return Measurements(tuple(points), dtype, devices.pop() if devices else None)


def _number(text: str, name: str, where: str, kind):
    try:
        return kind(text)
    except (ValueError, ZeroDivisionError, MobilecostError):
        what = "an integer" if kind is int else "a number"
        raise MobilecostError(f"{where}: {name} must be {what}, got {text!r}") from None


# --------------------------------------------------------------------------- targets

@dataclass(frozen=True)
class Target:
    """A calibrated device: a name, the fitted model and its errors."""

    name: str
    model: Fit
    device: str | None = None
    source: str = ""
    created: str = ""
    fit_median_error: float = float("nan")
    fit_worst_error: float = float("nan")
    loo_within: float | None = None
    loo_median_error: float | None = None
    loo_worst_error: float | None = None

    @property
    def points(self) -> tuple[Point, ...]:
        return self.model.points

    def measured_ms(self, config: Config) -> float | None:
        for p in self.model.points:
            if p.config == config:
                return p.latency_ms
        return None

    def predict_ms(self, config: Config) -> float:
        return latency.predict_ms(self.model, config)

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "name": self.name,
            "device": self.device,
            "source": self.source,
            "created": self.created,
            "model": {"form": self.model.form, "dtype": self.model.dtype,
                      "coefficients": self.model.coefficients,
                      "determined": dict(zip(COEFFICIENTS, self.model.determined))},
            "fit": {"points": len(self.points), "median_rel_error": self.fit_median_error,
                    "worst_rel_error": self.fit_worst_error, "loo_within_10pct": self.loo_within,
                    "loo_median_rel_error": self.loo_median_error, "loo_worst_rel_error": self.loo_worst_error},
            "points": [{"spec": p.config.spec, "alpha": format_number(p.config.alpha),
                        "resolution": p.config.resolution, "batch": p.config.batch,
                        "latency_ms": p.latency_ms} for p in self.points],
        }
        return json.dumps(data, indent=2) + "\n"

    @staticmethod
    def from_json(text: str, where: str) -> "Target":
        try:
            d = json.loads(text)
            if d.get("format") != FORMAT:
                raise ValueError(f"format is {d.get('format')!r}, expected {FORMAT!r}")
            m, f = d["model"], d["fit"]
            points = tuple(Point(Config(p["spec"], Fraction(str(p["alpha"])), int(p["resolution"]),
                                        int(p["batch"])), float(p["latency_ms"])) for p in d["points"])
            coef = m["coefficients"]
            model = Fit(tuple(float(coef[k]) for k in COEFFICIENTS), m["form"], m["dtype"], points,
                        tuple(bool(m["determined"][k]) for k in COEFFICIENTS))
            if model.form not in latency.FORMS or model.dtype not in latency.DTYPE_BYTES:
                raise ValueError("unknown model form or dtype")
            return Target(d["name"], model, d.get("device"), d.get("source", ""), d.get("created", ""),
                          float(f["median_rel_error"]), float(f["worst_rel_error"]),
                          f.get("loo_within_10pct"), f.get("loo_median_rel_error"), f.get("loo_worst_rel_error"))
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
            raise MobilecostError(f"{where}: not a valid mobilecost target ({exc})") from None


def calibrate(name: str, measurements: Measurements, source: str = "", form: str = "sum") -> Target:
    """Fit a target to measurements (nothing is written)."""
    check_name(name)
    try:
        model = latency.fit(measurements.points, form, measurements.dtype)
    except MobilecostError as exc:
        raise MobilecostError(f"{source}: {exc}" if source else str(exc)) from None
    errors = [model.predict_ms(p.config) / p.latency_ms - 1 for p in model.points]
    fit_err = latency.ErrorSummary.of(errors)
    loo = None
    if len(model.points) > latency.min_points():
        loo = latency.leave_one_out(model.points, form, measurements.dtype).model
    return Target(name, model, measurements.device, source,
                  datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  fit_err.median_abs, fit_err.worst_abs,
                  loo.within if loo else None, loo.median_abs if loo else None, loo.worst_abs if loo else None)


def save(target: Target, directory: Path | None = None) -> Path:
    directory = directory or default_dir()
    if directory.exists() and not directory.is_dir():
        raise MobilecostError(f"targets directory {directory} is not a directory")
    try:
        return write_atomic(directory / f"{check_name(target.name)}.json", target.to_json())
    except OSError as exc:
        raise MobilecostError(f"cannot write target to {directory}: {exc.strerror or exc}") from None


def names(directory: Path | None = None) -> list[str]:
    directory = directory or default_dir()
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if _NAME.match(p.stem))


def load(name: str, directory: Path | None = None) -> Target:
    """A stored target by name; an unknown name lists the known ones."""
    directory = directory or default_dir()
    path = directory / f"{name}.json"
    if not _NAME.match(name) or not path.is_file():
        known = names(directory)
        listed = f"known: {', '.join(known)}" if known else "none yet; make one with 'mobilecost calibrate'"
        raise MobilecostError(f"unknown target {name!r} in {directory} ({listed})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MobilecostError(f"{path}: cannot read target: {exc}") from None
    return Target.from_json(text, str(path))


def load_all(directory: Path | None = None) -> list[Target]:
    return [load(n, directory) for n in names(directory)]


def resolve(target: "Target | str", directory: Path | None = None) -> Target:
    return target if isinstance(target, Target) else load(target, directory)


# --------------------------------------------------------------------------- the interface for sweep/pick

def predict_latency_ms(target: "Target | str", spec: str, alpha: float | Fraction | str, resolution: int,
                       batch: int = 1, *, targets_dir: Path | None = None) -> float:
    """Predicted latency in ms of `spec` at (α, resolution, batch) on a calibrated target."""
    t = resolve(target, targets_dir)
    return t.predict_ms(Config(spec, to_fraction(alpha), int(resolution), int(batch)))


def predict_latencies_ms(target: "Target | str", configs: Sequence[tuple[str, object, int, int]],
                         *, targets_dir: Path | None = None) -> list[float]:
    """Predicted latencies for many (spec, α, resolution, batch) tuples, in order."""
    t = resolve(target, targets_dir)
    return latency.predict_many(t.model, [Config(s, to_fraction(a), int(r), int(b)) for s, a, r, b in configs])


def latency_ms(target: "Target | str", spec: str, alpha: float | Fraction | str, resolution: int,
               batch: int = 1, *, targets_dir: Path | None = None) -> tuple[float, str]:
    """The measured latency where the target has one, else the predicted one; and which it is
    ("measured" or "predicted")."""
    t = resolve(target, targets_dir)
    config = Config(spec, to_fraction(alpha), int(resolution), int(batch))
    measured = t.measured_ms(config)
    return (measured, "measured") if measured is not None else (t.predict_ms(config), "predicted")
