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
from functools import cached_property
from pathlib import Path
from typing import Sequence

from ..dtypes import lookup as lookup_dtype
from ..errors import MobilecostError
from ..lang.identity import Network, network_of
from ..lang.values import exact_text, to_fraction
from ..util import write_atomic
from . import model as latency
from .layers import LayerTable
from .model import COEFFICIENTS, Config, Fit, Point

FORMAT = "mobilecost-target/2"
OLD_FORMATS = ("mobilecost-target/1",)  # points name their spec by name or path; α to 6 digits
REQUIRED_COLUMNS: tuple[str, ...] = ("spec", "alpha", "resolution", "batch", "latency_ms")
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
    dtypes: set[str] = set()
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
        if not latency.MIN_LATENCY_MS <= ms <= latency.MAX_LATENCY_MS:
            raise MobilecostError(f"{where}: latency_ms must be between {latency.MIN_LATENCY_MS:g} and "
                                  f"{latency.MAX_LATENCY_MS:g} ms, got {cell('latency_ms')!r}")
        net = networks[spec]
        config = Config(net.name, alpha, resolution, batch, net)
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
            try:
                dtypes.add(lookup_dtype(cell("dtype")).name)
            except MobilecostError as exc:
                raise MobilecostError(f"{where}: {exc}") from None
    if not points:
        raise MobilecostError(f"{path}: a header but no measurements")
    if len(devices) > 1:
        raise MobilecostError(f"{path}: measurements from several devices ({', '.join(sorted(devices))}); "
                              f"calibrate one target per device")
    if len(dtypes) > 1:
        raise MobilecostError(f"{path}: measurements in several dtypes ({', '.join(sorted(dtypes))}); "
                              f"calibrate one target per dtype")
    dtype = dtypes.pop() if dtypes else "float32"
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
    layers: LayerTable | None = None  # timed layer shapes: predictions are layer-level

    @property
    def points(self) -> tuple[Point, ...]:
        return self.model.points

    @property
    def domain(self) -> latency.Domain | None:
        """What the target was calibrated on: networks, batches, α and resolution ranges."""
        return self.model.domain

    @cached_property
    def _measured(self) -> dict[Config, float]:
        return {p.config: p.latency_ms for p in self.model.points}

    def measured_ms(self, config: Config) -> float | None:
        return self._measured.get(config)

    def predict_ms(self, config: Config) -> float:
        """The layer-level prediction where the target has a layer table, else the
        whole-network model's."""
        if self.layers is not None:
            return self.layers.predict_ms(config)
        return latency.predict_ms(self.model, config)

    @property
    def method(self) -> str:
        """How the target predicts: 'layer-level' or the whole-network model's form."""
        return "layer-level" if self.layers is not None else f"{self.model.form} model"

    @cached_property
    def interval_rel(self) -> float | None:
        """Relative half-width of the 90% interval inside the calibrated range
        (latency.interval_rel, or over the layer-level leave-one-out errors with a layer
        table; None with too few points)."""
        if self.layers is not None:
            from ..util import conformal_half_width

            errors = self.layer_loo_errors
            return None if errors is None else conformal_half_width(errors, latency.INTERVAL_COVERAGE)
        return latency.interval_rel(self.model.points, self.model.form, self.model.dtype)

    @property
    def prediction_loo_median(self) -> float | None:
        """The leave-one-out median error of how the target predicts: layer-level with a layer
        table, else the whole-network model's (None with too few points)."""
        if self.layers is None:
            return self.loo_median_error
        errors = self.layer_loo_errors
        return None if not errors else latency.ErrorSummary.of(errors).median_abs

    @cached_property
    def layer_loo_errors(self) -> list[float] | None:
        """Leave-one-out errors of the layer-level prediction (the overhead refitted without
        each whole-network point); None without a layer table or with under 3 points."""
        if self.layers is None:
            return None
        pts = [p for p in self.points if p.config.batch == self.layers.batch]
        if len(pts) < 3:
            return None
        from .layers import loo_errors

        return loo_errors(self.layers, pts)

    def interval_ms(self, config: Config) -> tuple[float, float]:
        """The prediction's 90% interval (low, high) in ms; NaN, NaN where the prediction
        extrapolates or the target has too few points to say."""
        q = self.interval_rel
        if q is None or math.isinf(q) or self.extrapolation(config):
            return math.nan, math.nan
        p = self.predict_ms(config)
        return p * (1 - q), p * (1 + q)

    def extrapolation(self, config: Config) -> list[str]:
        """Why a prediction of `config` lies outside what the target was calibrated on
        (empty: inside)."""
        if self.layers is not None:  # layer-level: inside where every layer was timed
            why = [] if self.layers.predict(config).modelled == 0 else ["untimed layers"]
            return why + (["batch"] if config.batch != self.layers.batch else [])
        d = self.domain
        return d.outside(config) if d is not None else []

    def to_json(self) -> str:
        nets = {p.config.network.key: p.config.network for p in self.points}
        d = self.domain
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
            "calibrated_on": None if d is None else {
                "specs": sorted({n.name for n in d.networks}), "batches": sorted(d.batches),
                "alpha": [exact_text(d.alpha[0]), exact_text(d.alpha[1])],
                "resolution": list(d.resolution)},
            "networks": {k: n.text for k, n in sorted(nets.items())},
            "points": [{"spec": p.config.spec, "network": p.config.network.key,
                        "alpha": exact_text(p.config.alpha), "resolution": p.config.resolution,
                        "batch": p.config.batch, "latency_ms": p.latency_ms} for p in self.points],
        }
        if self.layers is not None:
            data["layer_table"] = self.layers.to_dict()
        return json.dumps(data, indent=2, allow_nan=False) + "\n"

    @staticmethod
    def from_json(text: str, where: str) -> "Target":
        """A target from its file's text; anything malformed is a MobilecostError naming `where`."""
        try:
            return _target_from(json.loads(text))
        except (ValueError, KeyError, TypeError, ZeroDivisionError, IndexError, AttributeError,
                RecursionError) as exc:
            raise MobilecostError(f"{where}: not a valid mobilecost target ({exc})") from None
        except MobilecostError as exc:
            raise MobilecostError(f"{where}: not a valid mobilecost target ({exc})") from None


_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
               bool: "true or false", type(None): "null"}


def _need(value, kind, what: str):
    """`value` if it is of the JSON type `kind`, else a ValueError saying what it is instead."""
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        names = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
        got = _JSON_NAMES.get(type(value), type(value).__name__)
        raise ValueError(f"{what} must be {names}, got {got}")
    return value


def _finite(value, what: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    v = float(_need(value, (int, float), what))
    if not math.isfinite(v):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return v


def _format1_alpha(text: str, alpha: Fraction) -> Fraction:
    """α of a format-1 file, which wrote f"{α:g}" (6 significant digits: 1/3 became
    '0.333333'): a text of 6 significant digits is read as the simplest fraction (denominator
    up to 10,000) that prints as it, so that the target finds its own points again."""
    if len(text.strip().lstrip("-").replace(".", "").lstrip("0")) < 6:
        return alpha
    for bound in (10, 100, 1000, 10_000):
        simple = alpha.limit_denominator(bound)
        if f"{float(simple):g}" == text.strip():
            return simple
    return alpha


def _target_from(d) -> Target:
    _need(d, dict, "the file's JSON")
    fmt = d.get("format")
    if fmt != FORMAT and fmt not in OLD_FORMATS:
        raise ValueError(f"format is {fmt!r}, expected {FORMAT!r}")
    m, f = _need(d["model"], dict, "model"), _need(d["fit"], dict, "fit")
    coef = _need(m["coefficients"], dict, "model.coefficients")
    determined = _need(m["determined"], dict, "model.determined")
    networks: dict[str, Network] = {}
    if fmt == FORMAT:
        for key, text in _need(d["networks"], dict, "networks").items():
            net = Network.from_text(_need(text, str, f"networks.{key}"))
            if net.key != key:
                raise ValueError(f"network {key} holds a spec whose hash is {net.key}")
            networks[key] = net
    points = []
    for i, p in enumerate(_need(d["points"], list, "points")):
        _need(p, dict, f"points[{i}]")
        if fmt == FORMAT:
            net = networks[_need(p["network"], str, f"points[{i}].network")]
        else:  # format 1 named the spec as typed; it must still be found from here
            net = network_of(_need(p["spec"], str, f"points[{i}].spec"))
        alpha = to_fraction(_need(p["alpha"], (str, int, float), f"points[{i}].alpha"))
        if fmt != FORMAT and isinstance(p["alpha"], str):
            alpha = _format1_alpha(p["alpha"], alpha)
        res, batch = _need(p["resolution"], int, "resolution"), _need(p["batch"], int, "batch")
        if alpha <= 0 or res < 1 or batch < 1:
            raise ValueError(f"points[{i}]: α, resolution and batch must be positive")
        config = Config(net.name, alpha, res, batch, net)
        points.append(Point(config, _finite(p["latency_ms"], f"points[{i}].latency_ms")))
    if not points:
        raise ValueError("no measured points")
    model = Fit(tuple(_finite(coef[k], f"coefficient {k}") for k in COEFFICIENTS),
                _need(m["form"], str, "model.form"), lookup_dtype(_need(m["dtype"], str, "model.dtype")).name,
                tuple(points), tuple(_need(determined[k], bool, f"determined.{k}") for k in COEFFICIENTS))
    model.check()
    table = None if d.get("layer_table") is None else LayerTable.from_dict(d["layer_table"])
    return Target(_need(d["name"], str, "name"), model, d.get("device"), str(d.get("source", "")),
                  str(d.get("created", "")), _finite(f["median_rel_error"], "fit.median_rel_error"),
                  _finite(f["worst_rel_error"], "fit.worst_rel_error"),
                  _finite(f.get("loo_within_10pct"), "loo_within_10pct", optional=True),
                  _finite(f.get("loo_median_rel_error"), "loo_median_rel_error", optional=True),
                  _finite(f.get("loo_worst_rel_error"), "loo_worst_rel_error", optional=True), table)


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


def with_layer_table(target: Target, rows: Sequence[dict], layers: dict, batch: int, dtype: str,
                     timing: dict) -> Target:
    """The target with a layer table made of timed layer rows (`torch.timing.measure_layers`:
    `layer`, `latency_ms`, `latency_iqr_ms`, `error`) and `layers` (shape text -> a spec.Layer
    of that shape), its overhead fitted on the target's whole-network points. A layer whose
    timing failed is left out of the table and priced by the per-layer model."""
    from dataclasses import replace

    from .layers import entry_of

    dtype = lookup_dtype(dtype).name
    entries = tuple(entry_of(layers[r["layer"]], r["latency_ms"], r.get("latency_iqr_ms"), batch, dtype)
                    for r in rows if not r.get("error") and r.get("latency_ms"))
    if not entries:
        raise MobilecostError("no layer could be timed; the layer table would be empty")
    table = LayerTable(entries, batch, dtype, dict(timing)).with_overhead(target.points)
    return replace(target, layers=table)


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


def scan(directory: Path | None = None) -> tuple[list[Target], list[str]]:
    """Every readable target in the folder, and one message for each file that is not one
    (the good targets are listed even when a file is corrupt)."""
    good, bad = [], []
    for n in names(directory):
        try:
            good.append(load(n, directory))
        except MobilecostError as exc:
            bad.append(f"skipped {exc}")
    return good, bad


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
    return [t.predict_ms(Config(s, to_fraction(a), int(r), int(b))) for s, a, r, b in configs]


# A layer-level target prices a grid one configuration at a time (each built and summed layer by
# layer, a few ms each): a grid larger than this is refused before any work.
MAX_LAYER_GRID = 20_000


@dataclass(frozen=True)
class GridLatency:
    """Latencies of an α × resolution grid on a target, each [n_α, n_r] (α-major when
    flattened, the order of `mobilecost.sweep`'s rows)."""

    predicted_ms: "object"      # np.ndarray of float
    measured_ms: "object"       # np.ndarray of float, NaN where the target has no measurement
    extrapolated_codes: "object"  # np.ndarray of int: index into extrapolated_texts
    extrapolated_texts: tuple[str, ...]  # why a prediction extrapolates, '' if not
    low_ms: "object" = None     # np.ndarray of float: the prediction's 90% interval, NaN where
    high_ms: "object" = None    # it extrapolates or the target cannot say (Target.interval_ms)

    @property
    def extrapolated(self):
        """np.ndarray of str: why each prediction extrapolates, '' if not."""
        import numpy as np

        return np.array(self.extrapolated_texts, dtype=object)[self.extrapolated_codes]

    @property
    def latency_ms(self):
        """The measurement where there is one, else the prediction."""
        import numpy as np

        return np.where(np.isnan(self.measured_ms), self.predicted_ms, self.measured_ms)


def grid_latency(target: "Target | str", spec, alphas: Sequence, resolutions: Sequence[int],
                 batch: int = 1, *, targets_dir: Path | None = None) -> GridLatency:
    """Predicted (vectorised, see latency.predict_grid) and measured latencies of a grid, and
    where the predictions extrapolate beyond the target's calibration."""
    import numpy as np

    t = resolve(target, targets_dir)
    net = network_of(spec)
    alist = [to_fraction(a) for a in alphas]
    rlist = [int(r) for r in resolutions]
    if t.layers is not None:  # layer-level: one configuration at a time
        if len(alist) * len(rlist) > MAX_LAYER_GRID:
            raise MobilecostError(f"target {t.name} predicts layer by layer, one configuration at a "
                                  f"time: at most {MAX_LAYER_GRID:,} per grid, got "
                                  f"{len(alist) * len(rlist):,} (give a coarser grid)")
        configs = [[Config(net.name, a, r, batch, net) for r in rlist] for a in alist]
        predicted = np.array([[t.predict_ms(c) for c in row] for row in configs], float)
        measured = np.array([[np.nan if t.measured_ms(c) is None else t.measured_ms(c) for c in row]
                             for row in configs], float)
        texts: dict[str, int] = {}
        codes = np.array([[texts.setdefault(", ".join(t.extrapolation(c)), len(texts)) for c in row]
                          for row in configs], dtype=np.int64).reshape(len(alist), len(rlist))
        bounds = np.array([[t.interval_ms(c) for c in row] for row in configs], float)
        return GridLatency(predicted, measured, codes, tuple(texts), bounds[..., 0], bounds[..., 1])
    predicted = latency.predict_grid(t.model, net, alist, rlist, batch)
    measured = np.full(predicted.shape, np.nan)
    own = [p for p in t.points if p.config.network == net and p.config.batch == batch]
    if own:  # the grid's cells of the target's own measurements, each α and size looked up once
        a_rows: dict[Fraction, list[int]] = {}
        r_cols: dict[int, list[int]] = {}
        for i, a in enumerate(alist):
            a_rows.setdefault(a, []).append(i)
        for j, r in enumerate(rlist):
            r_cols.setdefault(r, []).append(j)
        for p in own:
            for i in a_rows.get(p.config.alpha, ()):
                for j in r_cols.get(p.config.resolution, ()):
                    measured[i, j] = p.latency_ms
    d = t.domain
    if d is None:
        nan = np.full(predicted.shape, np.nan)
        return GridLatency(predicted, measured, np.zeros(predicted.shape, dtype=np.int8), ("",),
                           nan, nan)
    base = [w for w, out in (("spec", net not in d.networks), ("batch", batch not in d.batches)) if out]
    lo, hi = d.alpha_bounds  # compared as integers: lo ≤ n/d ≤ hi
    a_out = np.array([not (lo.numerator * a.denominator <= a.numerator * lo.denominator
                           and a.numerator * hi.denominator <= hi.numerator * a.denominator)
                      for a in alist])
    r_out = np.array([not d.resolution_inside(r) for r in rlist])
    # the four combinations of (α outside, resolution outside), each one text
    texts = tuple(", ".join(base + ["α"] * ao + ["resolution"] * ro)
                  for ao in (0, 1) for ro in (0, 1))
    codes = 2 * a_out[:, None].astype(np.int8) + r_out[None, :].astype(np.int8)
    q = t.interval_rel
    if q is None or math.isinf(q):
        nan = np.full(predicted.shape, np.nan)
        return GridLatency(predicted, measured, codes, texts, nan, nan)
    ok = np.array([x == "" for x in texts])[codes]
    low = np.where(ok, predicted * (1 - q), np.nan)
    high = np.where(ok, predicted * (1 + q), np.nan)
    return GridLatency(predicted, measured, codes, texts, low, high)


def latency_ms(target: "Target | str", spec: str, alpha: float | Fraction | str, resolution: int,
               batch: int = 1, *, targets_dir: Path | None = None) -> tuple[float, str]:
    """The measured latency where the target has one, else the predicted one; and which it is
    ("measured" or "predicted")."""
    t = resolve(target, targets_dir)
    config = Config(spec, to_fraction(alpha), int(resolution), int(batch))
    measured = t.measured_ms(config)
    return (measured, "measured") if measured is not None else (t.predict_ms(config), "predicted")
