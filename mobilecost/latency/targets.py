"""Calibrated devices ("targets"): read measurements, fit the latency model, store it as JSON.

A target is one file, `NAME.json`, in the targets directory: `--targets-dir`, else
$MOBILECOST_TARGETS_DIR, else $XDG_CONFIG_HOME/mobilecost/targets (~/.config/... when unset;
%APPDATA%\\mobilecost\\targets on Windows). It holds the fitted coefficients, the measured
points they were fitted on (so a target can be validated and a measured latency preferred to a
predicted one) and the fit's errors. Files are written atomically: a target is whole or absent.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..dtypes import lookup as lookup_dtype
from ..errors import MobilecostError
from ..lang.identity import Network, network_of
from ..lang.values import exact_text, to_fraction
from ..util import write_atomic
from .choice import MODELS, choose_model
from .layers import LayerTable
from .measurements import Config, Domain, Measurements, Point
from .predictor import LayerLevel, Predictor, Roofline, WholeNetwork
from .roofline import RooflineFit
from .validation import ErrorSummary, leave_one_out
from .whole import COEFFICIENTS, Fit, fit, min_points

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ..lang.spec import Spec

FORMAT = "mobilecost-target/2"
OLD_FORMATS = ("mobilecost-target/1",)  # points name their spec by name or path; α to 6 digits
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
    roofline: RooflineFit | None = None  # the accelerator model, where it could be fitted
    chosen: str = "whole"  # which whole-network-fitted model predicts: whole | roofline
    choice: str = ""       # why (one line, for calibrate's notes)

    @cached_property
    def predictor(self) -> Predictor:
        """How the target predicts: layer by layer where it holds a layer table, else by the
        model calibrate chose (the whole-network model or the roofline model)."""
        if self.layers is not None:
            return LayerLevel(self.model, self.layers)
        if self.chosen == "roofline" and self.roofline is not None:
            return Roofline(self.model, self.roofline)
        return WholeNetwork(self.model)

    @property
    def roofline_predictor(self) -> Roofline | None:
        """The roofline model as a predictor, whichever model the target chose (None where it
        has none)."""
        return None if self.roofline is None else Roofline(self.model, self.roofline)

    @property
    def dtype(self) -> str:
        """The precision of the measurements the target was calibrated on, and so of every
        latency it gives ('float32', 'int8'; `latency.precision`)."""
        return self.model.dtype

    @property
    def points(self) -> tuple[Point, ...]:
        return self.model.points

    @property
    def domain(self) -> Domain | None:
        """What the target was calibrated on: networks, batches, α and resolution ranges."""
        return self.model.domain

    @property
    def method(self) -> str:
        """How the target predicts ('sum model', 'layer-level', ...)."""
        return self.predictor.method

    @cached_property
    def _measured(self) -> dict[Config, float]:
        return {p.config: p.latency_ms for p in self.model.points}

    def measured_ms(self, config: Config) -> float | None:
        return self._measured.get(config)

    def predict_ms(self, config: Config) -> float:
        return self.predictor.predict_ms(config)

    def latency(self, config: Config) -> tuple[float, str]:
        """The measured latency where the target has one, else the predicted one, and which it
        is ('measured' or 'predicted')."""
        measured = self.measured_ms(config)
        return (measured, "measured") if measured is not None else (self.predict_ms(config), "predicted")

    def extrapolation(self, config: Config) -> list[str]:
        return self.predictor.extrapolation(config)

    def interval_ms(self, config: Config) -> tuple[float, float]:
        return self.predictor.interval_ms(config)

    @property
    def interval_rel(self) -> float | None:
        return self.predictor.interval_rel

    @property
    def prediction_loo_median(self) -> float | None:
        """The leave-one-out median error of the target's predictor (None with too few
        points)."""
        errors = self.predictor.loo_errors
        return None if not errors else ErrorSummary.of(errors).median_abs

    def grid(self, spec: "Spec | str | Network", alphas: Sequence, resolutions: Sequence[int],
             batch: int = 1) -> "GridLatency":
        """Predicted and measured latencies of an α × resolution grid, and where the
        predictions extrapolate beyond the target's calibration."""
        import numpy as np

        net = network_of(spec)
        alist = [to_fraction(a) for a in alphas]
        rlist = [int(r) for r in resolutions]
        g = self.predictor.grid(net, alist, rlist, batch)
        measured = np.full(g.predicted_ms.shape, np.nan)
        own = [p for p in self.points if p.config.network == net and p.config.batch == batch]
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
        return GridLatency(g.predicted_ms, measured, g.extrapolated_codes, g.extrapolated_texts,
                           g.low_ms, g.high_ms)

    def to_json(self) -> str:
        nets = {p.config.network.key: p.config.network for p in self.points}
        d = self.domain
        data = {
            "format": FORMAT,
            "name": self.name,
            "device": self.device,
            "source": self.source,
            "created": self.created,
            "dtype": self.dtype,
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
        if self.roofline is not None:
            data["roofline"] = self.roofline.to_dict()
        data["chosen"] = {"model": self.chosen, "why": self.choice}
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


def _dtype_of(d: dict, m: dict) -> str:
    """The target's precision: its `dtype`, which the model's must equal; a file written before
    targets recorded it (no `dtype`) is of the model's, and one with neither of fp32."""
    top = lookup_dtype(_need(d["dtype"], str, "dtype")).name if "dtype" in d else None
    own = lookup_dtype(_need(m["dtype"], str, "model.dtype")).name if "dtype" in m else None
    if top is not None and own is not None and top != own:
        raise ValueError(f"dtype {top} but model.dtype {own}")
    return top or own or "float32"


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
                _need(m["form"], str, "model.form"), _dtype_of(d, m),
                tuple(points), tuple(_need(determined[k], bool, f"determined.{k}") for k in COEFFICIENTS))
    model.check()
    table = None if d.get("layer_table") is None else LayerTable.from_dict(d["layer_table"])
    roofline = None if d.get("roofline") is None else RooflineFit.from_dict(d["roofline"], points)
    chosen = _need(d.get("chosen", {"model": "whole", "why": ""}), dict, "chosen")
    model_name = _need(chosen.get("model", "whole"), str, "chosen.model")
    if model_name not in MODELS[1:] or (model_name == "roofline" and roofline is None):
        raise ValueError(f"chosen.model must be whole, or roofline with a roofline object; got {model_name!r}")
    return Target(_need(d["name"], str, "name"), model, d.get("device"), str(d.get("source", "")),
                  str(d.get("created", "")), _finite(f["median_rel_error"], "fit.median_rel_error"),
                  _finite(f["worst_rel_error"], "fit.worst_rel_error"),
                  _finite(f.get("loo_within_10pct"), "loo_within_10pct", optional=True),
                  _finite(f.get("loo_median_rel_error"), "loo_median_rel_error", optional=True),
                  _finite(f.get("loo_worst_rel_error"), "loo_worst_rel_error", optional=True), table,
                  roofline, model_name, str(chosen.get("why", "")))


def calibrate(name: str, measurements: Measurements, source: str = "", form: str = "sum",
              model_choice: str = "auto", unfused: int | None = None,
              on_progress: Callable[[int, int, str], None] | None = None) -> Target:
    """Fit a target to measurements (nothing is written): the whole-network model always, the
    roofline model where the points determine it, and choose which predicts (`model_choice`:
    auto, by leave-one-out median error; or whole, or roofline). `on_progress(done, total,
    text)` follows auto's leave-one-out refits of the roofline."""
    from dataclasses import replace

    check_name(name)
    if model_choice not in MODELS:
        raise MobilecostError(f"unknown model {model_choice!r}; known: {', '.join(MODELS)}")
    try:
        model = fit(measurements.points, form, measurements.dtype)
    except MobilecostError as exc:
        raise MobilecostError(f"{source}: {exc}" if source else str(exc)) from None
    target = _whole_target(name, model, measurements, source, form)
    return replace(target, **choose_model(target, model_choice, source, unfused, on_progress))


def _whole_target(name: str, model: Fit, measurements: Measurements, source: str, form: str) -> Target:
    errors = [model.predict_ms(p.config) / p.latency_ms - 1 for p in model.points]
    fit_err = ErrorSummary.of(errors)
    loo = None
    if len(model.points) > min_points():
        loo = leave_one_out(model.points, form, measurements.dtype).model
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


@dataclass(frozen=True)
class GridLatency:
    """Latencies of an α × resolution grid on a target, each [n_α, n_r] (α-major when
    flattened, the order of `mobilecost.sweep`'s rows)."""

    predicted_ms: "np.ndarray"
    measured_ms: "np.ndarray"           # NaN where the target has no measurement
    extrapolated_codes: "np.ndarray"    # of int: index into extrapolated_texts
    extrapolated_texts: tuple[str, ...]  # why a prediction extrapolates, '' if it does not
    low_ms: "np.ndarray"                # the prediction's 90% interval, NaN where it
    high_ms: "np.ndarray"               # extrapolates or the target cannot say

    @property
    def extrapolated(self) -> "np.ndarray":
        """Of str: why each prediction extrapolates, '' if it does not."""
        import numpy as np

        return np.array(self.extrapolated_texts, dtype=object)[self.extrapolated_codes]

    @property
    def latency_ms(self) -> "np.ndarray":
        """The measurement where there is one, else the prediction."""
        import numpy as np

        return np.where(np.isnan(self.measured_ms), self.predicted_ms, self.measured_ms)


__all__ = ["FORMAT", "GridLatency", "Target", "calibrate", "check_name", "default_dir", "load",
           "names", "resolve", "save", "scan", "with_layer_table"]
