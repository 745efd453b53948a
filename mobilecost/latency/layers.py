"""Layer-level latency: each distinct layer shape timed once on a device, networks summed.

In the spirit of nn-Meter's kernels and Once-for-All's lookup tables. A network at (α,
resolution, batch) is a list of concrete layers (`spec.Layer`); many configurations share
layers (the first convolution at one resolution is the same at every α that rounds it to the
same width, MobileNet v1's five 14×14×512 blocks are one shape). `distinct_layers` lists each
shape once; the torch backend (`mobilecost.torch.timing.measure_layers`) times each on the
device, alone, on an input of its own shape, through the measurement cache; a `LayerTable`
holds those times. A network's prediction is

    T = s · Σ_l t(l)  +  w · weight bytes  +  m · map bytes  +  c · layers  +  c0

with t(l) the table's time of layer l, or, for a layer the table lacks, the time a per-layer
model fitted on the table predicts (`LayerModel`: per op, and per kernel for convolutions,
t = a + b·Mult-Adds + c·bytes + d·elementwise ops, non-negative). The other terms, all ≥ 0,
are the whole-network overhead (OVERHEAD_TERMS), fitted on whole-network measurements (the
target's points) by the same relative least squares as the whole-network model. They stand
for what a layer timed alone does not show. Timed alone, a layer runs again and again on the
same input with the same weights, all in cache; in a network each weight is read once a pass,
largely from memory (a MobileNet's weights, 10–22 MB at α 1, share the cache with its maps
and stay there only in part from one pass to the next), and
each map is written by one layer and read by the next. So the weight bytes and the map bytes
of the network (from the cost rules) carry a cost of their own, and each layer call one of the
framework's. On this CPU, fitted on MobileNet v1 and v2 alone, these terms carry the layer
table to MobileNetV3 and MnasNet (docs/latency.md, "Across families"); s·Σ + c0 alone does not
(per Mult-Add, V3-Large reads 1.7–2.2× the weight bytes of v2 and V3-Small 2.9–3.9×, in
their SE layers and heads, over α 0.35–1 and 96–224).
With fewer than FULL_OVERHEAD_POINTS whole-network points only s and c0 are fitted (five
terms from a handful of points are not determined); the others stay 0.

A layer's identity (`layer_shape`) is every field of `spec.Layer` but where it stands (index,
the spec line, the index of the map an add or scale reads): op, kernel, stride, padding,
sizes, channels, groups, activation, batchnorm, bias. Features come from the op table's cost
rules (`cost.layer_cost`), never from arithmetic on the sides here. numpy is imported lazily.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Iterable, Sequence

from ..dtypes import lookup as lookup_dtype
from ..engine.cost import layer_cost
from ..errors import MobilecostError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ..lang.spec import Layer
    from .measurements import Config, Point

# Fields of spec.Layer that say where a layer stands, not what it computes.
PLACE_FIELDS = ("index", "line", "skip_from")
# The per-layer model's features, in order (each per layer, times the batch where it scales).
FEATURES = ("macs", "bytes", "elementwise", "one")
# A group of the per-layer model needs this many timed layers of its own; with fewer, the
# layer falls back to its op's group, then to one model over the whole table.
MIN_GROUP = 2 * len(FEATURES)
# The whole-network overhead's terms, in order: × Σ of the layer times, ms per weight byte,
# ms per map byte (in and out of every layer, every image), ms per layer, ms.
OVERHEAD_TERMS = ("layer_sum", "weight_bytes", "map_bytes", "layers", "one")
# Whole-network points needed to fit every overhead term; with fewer, s·Σ + c0 only.
FULL_OVERHEAD_POINTS = 2 * len(OVERHEAD_TERMS)


def layer_shape(layer: "Layer") -> str:
    """The canonical text of what a layer computes: `name=value` for every field of
    spec.Layer except PLACE_FIELDS, in field order (a field added to Layer joins it)."""
    parts = []
    for f in dataclasses.fields(layer):
        if f.name in PLACE_FIELDS:
            continue
        v = getattr(layer, f.name)
        parts.append(f"{f.name}={v.value if isinstance(v, Enum) else v}")
    return " ".join(parts)


def shape_features(layer: "Layer", batch: int, dtype: str = "float32") -> tuple[float, ...]:
    """FEATURES of one layer: Mult-Adds and elementwise ops times the batch, bytes moved
    (input and output maps times the batch, plus weights and biases, at the dtype's width)."""
    c = layer_cost(layer)
    width = lookup_dtype(dtype).bytes
    return (float(c.macs * batch), float(c.bytes_moved(batch, width)), float(c.elementwise_ops * batch), 1.0)


def group_names(layer: "Layer") -> tuple[str, str]:
    """The per-layer model's group of a layer and its op's wider group: ('dw k5', 'dw')."""
    fine = f"{layer.op} k{layer.kernel}" if layer.op in ("conv", "dw") else layer.op
    return fine, layer.op


def config_layers(config: "Config") -> tuple["Layer", ...]:
    return config.network.spec().build(config.alpha, config.resolution)


def distinct_layers(configs: Iterable["Config"]) -> dict[str, "Layer"]:
    """Each distinct layer shape of `configs`, once, with one layer of that shape, in the
    order first met."""
    seen: dict[str, "Layer"] = {}
    for c in configs:
        for layer in config_layers(c):
            seen.setdefault(layer_shape(layer), layer)
    return seen


# --------------------------------------------------------------------------- the table

@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One timed layer shape: its time (lowest round median, ms), the IQR of that round, and
    its FEATURES at the table's batch and dtype (for the per-layer model)."""

    shape: str
    ms: float
    iqr_ms: float | None
    group: str
    op: str
    features: tuple[float, ...]


def _solve(rows: "np.ndarray", t: "np.ndarray") -> "np.ndarray":
    from .solve import solve_relative

    return solve_relative(rows, t)


@dataclass(frozen=True)
class LayerModel:
    """Per-layer times of the layers a table lacks: one non-negative fit of FEATURES per
    group with at least MIN_GROUP timed layers ('dw k5'), per op ('dw'), and over the whole
    table ('*'), each on the relative error of the table's times."""

    coefficients: dict[str, tuple[float, ...]]

    @staticmethod
    def fit(entries: Sequence[LayerEntry]) -> "LayerModel":
        import numpy as np

        if not entries:
            raise MobilecostError("a layer table needs at least one timed layer")
        groups: dict[str, list[LayerEntry]] = {"*": list(entries)}
        for e in entries:
            groups.setdefault(e.group, []).append(e)
            if e.op != e.group:
                groups.setdefault(e.op, []).append(e)
        coef = {}
        for name, es in groups.items():
            if name != "*" and len(es) < MIN_GROUP:
                continue
            rows = np.array([e.features for e in es], float)
            coef[name] = tuple(float(x) for x in _solve(rows, np.array([e.ms for e in es], float)))
        return LayerModel(coef)

    def which(self, layer: "Layer") -> str:
        fine, op = group_names(layer)
        return fine if fine in self.coefficients else op if op in self.coefficients else "*"

    def predict_ms(self, layer: "Layer", batch: int, dtype: str) -> float:
        theta = self.coefficients[self.which(layer)]
        return float(sum(a * b for a, b in zip(theta, shape_features(layer, batch, dtype))))


@dataclass(frozen=True, slots=True)
class LayerPrediction:
    """A network's layer-level prediction and how it was made."""

    total_ms: float      # the overhead's terms applied to the network (LayerTable.terms)
    sum_ms: float        # Σ of the layers' times
    layers: int
    from_table: int      # layers whose shape the table holds
    modelled: int        # layers priced by the per-layer model


@dataclass(frozen=True)
class LayerTable:
    """Timed layer shapes of one device at one batch and dtype, and the whole-network
    overhead (one coefficient per OVERHEAD_TERMS) with the number of whole-network
    measurements it was fitted on."""

    entries: tuple[LayerEntry, ...]
    batch: int
    dtype: str
    timing: dict                    # how the layers were timed (device, threads, rounds, ...)
    overhead: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 0.0)
    overhead_points: int = 0

    @property
    def scale(self) -> float:
        """s, the factor on Σ of the layer times."""
        return self.overhead[0]

    @property
    def overhead_ms(self) -> float:
        """c0, the fixed part, ms."""
        return self.overhead[-1]

    def describe_overhead(self) -> str:
        """The overhead as a formula: '0.772 × Σ layer times + 0.149 ms/MB of weights + ...'
        (the terms the fit gave a share)."""
        s, w, m, c, c0 = self.overhead
        def num(x: float, digits: int = 3) -> str:  # fixed point, but never a 300-digit line
            return f"{x:.{digits}f}" if x < 1e6 else f"{x:.4g}"

        parts = [f"{num(s)} × Σ layer times"]
        if w:
            parts.append(f"{num(w * 1e6)} ms/MB of weights")
        if m:
            parts.append(f"{num(m * 1e6)} ms/MB of maps")
        if c:
            parts.append(f"{num(c * 1e3, 1)} µs a layer")
        parts.append(f"{num(c0)} ms")
        return " + ".join(parts)

    @cached_property
    def times(self) -> dict[str, float]:
        """Time of each shape the table holds, ms."""
        return {e.shape: e.ms for e in self.entries}

    @cached_property
    def model(self) -> LayerModel:
        """The per-layer model fitted on the table, for the shapes it lacks."""
        return LayerModel.fit(self.entries)

    def terms(self, config: "Config") -> tuple[float, ...]:
        """The network's OVERHEAD_TERMS: Σ of its layer times, its weight bytes and map bytes
        (the cost rules' LayerCost.weight_bytes and map_bytes at the table's dtype: weights
        and biases; batchnorm's vectors, under 0.5% of a MobileNet's weights, are left out),
        its layers, 1."""
        return self._priced(config)[0]

    def layer_ms(self, config: "Config") -> tuple[float, int, int]:
        """Σ of the layer times of `config`, how many came from the table, how many from the
        per-layer model (every layer is priced: none is dropped)."""
        terms, hit, modelled = self._priced(config)
        return terms[0], hit, modelled

    def _priced(self, config: "Config") -> tuple[tuple[float, ...], int, int]:
        """(terms, layers from the table, layers from the per-layer model), the network built
        once."""
        times, width = self.times, lookup_dtype(self.dtype).bytes
        total, hit, modelled, weight_bytes, map_bytes = 0.0, 0, 0, 0, 0
        layers = config_layers(config)
        for layer in layers:
            t = times.get(layer_shape(layer)) if config.batch == self.batch else None
            if t is None:
                t = self.model.predict_ms(layer, config.batch, self.dtype)
                modelled += 1
            else:
                hit += 1
            total += t
            c = layer_cost(layer)
            weight_bytes += c.weight_bytes(width)
            map_bytes += c.map_bytes(config.batch, width)
        return (total, float(weight_bytes), float(map_bytes), float(len(layers)), 1.0), hit, modelled

    @cached_property
    def _predictions(self) -> dict:
        return {}

    def predict(self, config: "Config") -> LayerPrediction:
        """The layer-level prediction of `config` (kept: a grid asks for each one several times)."""
        hit = self._predictions.get(config)
        if hit is None:
            terms, timed, modelled = self._priced(config)
            total = sum(a * b for a, b in zip(self.overhead, terms))
            hit = LayerPrediction(total, terms[0], timed + modelled, timed, modelled)
            self._predictions[config] = hit
        return hit

    def predict_ms(self, config: "Config") -> float:
        return self.predict(config).total_ms

    def with_overhead(self, points: Sequence["Point"]) -> "LayerTable":
        return dataclasses.replace(self, overhead=fit_overhead(self, points),
                                   overhead_points=len(points))

    def to_dict(self) -> dict:
        return {"batch": self.batch, "dtype": self.dtype, "timing": self.timing,
                "overhead": {"terms": dict(zip(OVERHEAD_TERMS, self.overhead)),
                             "fitted_on_points": self.overhead_points},
                "layers": [{"shape": e.shape, "ms": e.ms, "iqr_ms": e.iqr_ms, "group": e.group,
                            "op": e.op, "features": dict(zip(FEATURES, e.features))}
                           for e in self.entries]}

    @staticmethod
    def from_dict(d) -> "LayerTable":
        """A table from its JSON form; a malformed one raises ValueError, KeyError or TypeError
        (the target's reader names the file)."""
        if not isinstance(d, dict):
            raise TypeError("layer_table must be an object")
        entries = []
        for i, e in enumerate(d["layers"]):
            ms = float(e["ms"])
            if not (math.isfinite(ms) and ms > 0):
                raise ValueError(f"layer_table.layers[{i}].ms must be a positive number, got {e['ms']!r}")
            iqr = e.get("iqr_ms")
            feats = tuple(float(e["features"][f]) for f in FEATURES)
            if not all(math.isfinite(x) and x >= 0 for x in feats):
                raise ValueError(f"layer_table.layers[{i}].features must be finite and >= 0")
            entries.append(LayerEntry(str(e["shape"]), ms, None if iqr is None else float(iqr),
                                      str(e["group"]), str(e["op"]), feats))
        if not entries:
            raise ValueError("layer_table has no layers")
        o = d["overhead"]
        if "terms" in o:
            missing = [k for k in OVERHEAD_TERMS if k not in o["terms"]]
            if missing:
                raise ValueError(f"layer_table.overhead.terms lacks {', '.join(missing)}")
            terms = tuple(float(o["terms"][k]) for k in OVERHEAD_TERMS)
        else:  # a target written before the bytes and layer terms: s·Σ + c0
            terms = (float(o["scale"]), 0.0, 0.0, 0.0, float(o["ms"]))
        n = int(o["fitted_on_points"])
        if not all(math.isfinite(x) and x >= 0 for x in terms):
            raise ValueError("layer_table.overhead must be finite numbers >= 0")
        batch = int(d["batch"])
        if batch < 1:
            raise ValueError("layer_table.batch must be >= 1")
        return LayerTable(tuple(entries), batch, lookup_dtype(str(d["dtype"])).name,
                          dict(d.get("timing") or {}), terms, n)


def entry_of(layer: "Layer", ms: float, iqr_ms: float | None, batch: int, dtype: str) -> LayerEntry:
    return LayerEntry(layer_shape(layer), float(ms), iqr_ms, group_names(layer)[0], layer.op,
                      shape_features(layer, batch, dtype))


def fit_overhead(table: LayerTable, points: Sequence["Point"]) -> tuple[float, ...]:
    """The overhead's coefficients (OVERHEAD_TERMS, each ≥ 0) minimising
    Σ ((Σ_k θ_k·x_k,i − t_i) / t_i)² over whole-network measurements at the table's batch;
    with fewer than FULL_OVERHEAD_POINTS of them, s and c0 only."""
    import numpy as np

    pts = [p for p in points if p.config.batch == table.batch]
    if len(pts) < 2:
        raise MobilecostError(f"the layer table's overhead is fitted on whole-network measurements "
                              f"at batch {table.batch}: at least 2 are needed, got {len(pts)}")
    rows = np.array([table.terms(p.config) for p in pts], float)
    return _fit_terms(rows, np.array([p.latency_ms for p in pts], float))


def _fit_terms(rows: "np.ndarray", t: "np.ndarray") -> tuple[float, ...]:
    import numpy as np

    theta = np.zeros(len(OVERHEAD_TERMS))
    used = [0, len(OVERHEAD_TERMS) - 1] if len(t) < FULL_OVERHEAD_POINTS else slice(None)
    theta[used] = _solve(rows[:, used], t)
    return tuple(float(x) for x in theta)


def loo_errors(table: LayerTable, points: Sequence["Point"]) -> list[float]:
    """Leave-one-out relative errors of the layer-level prediction over whole-network points:
    the overhead refitted without each point, that point predicted (the table is kept: it times
    layers, not networks)."""
    import numpy as np

    pts = [p for p in points if p.config.batch == table.batch]
    if len(pts) < 3:
        raise MobilecostError(f"a layer-level leave-one-out needs at least 3 whole-network "
                              f"measurements at batch {table.batch}, got {len(pts)}")
    rows = np.array([table.terms(p.config) for p in pts], float)  # each network once
    t = np.array([p.latency_ms for p in pts], float)
    out = []
    for i in range(len(pts)):
        keep = np.arange(len(pts)) != i
        theta = np.array(_fit_terms(rows[keep], t[keep]))
        out.append(float(rows[i] @ theta) / t[i] - 1)
    return out


__all__ = ["FEATURES", "FULL_OVERHEAD_POINTS", "LayerEntry", "LayerModel", "LayerPrediction", "LayerTable", "MIN_GROUP",
           "config_layers", "distinct_layers", "entry_of", "fit_overhead", "group_names",
           "shape_features", "layer_shape",
           "loo_errors", "OVERHEAD_TERMS"]
