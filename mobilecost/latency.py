"""A latency model for one device, fitted to a handful of whole-network measurements.

Each layer l of a network built at (α, resolution, batch) has, from the cost engine, its
Mult-Adds m_l, the bytes it moves b_l (input and output activations, times the batch, plus
its weights, at the dtype's width) and its kind. Layer kinds share coefficients in groups
(`GROUPS`): dense convolutions (full, pointwise, FC), depthwise convolutions, and the rest
(pooling, adds), which have no Mult-Adds. The predicted latency is

    T = Σ_l  ( m_l / P_g(l)  +  b_l / B )  +  L · c

with P_g the compute rate of the layer's group (Mult-Adds per second), B the memory bandwidth
(bytes per second), L the number of layers and c a fixed cost per layer (kernel launch,
framework overhead). The roofline's max(compute, memory) is replaced by their sum: the sum is
linear in the coefficients, so the fit is a non-negative least squares problem, and it is
never less than the max and at most twice it. `form="max"` fits the max itself (alternating
between assigning each layer to its bound and refitting).

The coefficients are fitted by non-negative least squares on the relative error,
min Σ_i ((T_i − t_i) / t_i)², so that a 2 ms network counts as much as a 30 ms one.
numpy is imported lazily: the analytic commands never load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Sequence

from .cost import cost
from .errors import MobilecostError
from .spec import LayerKind, to_fraction

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

DTYPE_BYTES: dict[str, int] = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

# Which kinds share a compute rate. Depthwise convolutions do ~9 Mult-Adds per element read
# and run far slower per Mult-Add than the GEMM-like dense layers.
GROUPS: dict[LayerKind, str] = {
    LayerKind.CONV: "dense", LayerKind.POINTWISE: "dense", LayerKind.FC: "dense",
    LayerKind.DEPTHWISE: "depthwise", LayerKind.POOL: "other", LayerKind.ADD: "other",
}
COMPUTE_GROUPS: tuple[str, ...] = ("dense", "depthwise")

# The coefficient vector θ, in this order, each in milliseconds per unit.
COEFFICIENTS: tuple[str, ...] = ("ms_per_mac_dense", "ms_per_mac_depthwise", "ms_per_byte", "ms_per_layer")
FORMS: tuple[str, ...] = ("sum", "max")
WITHIN = 0.10  # the ±10% band of the validation


@dataclass(frozen=True, slots=True)
class Config:
    """One network configuration: what a latency is measured or predicted for."""

    spec: str
    alpha: Fraction
    resolution: int
    batch: int = 1

    @property
    def label(self) -> str:
        from .util import format_number

        b = f" b{self.batch}" if self.batch != 1 else ""
        return f"{self.spec} {format_number(self.alpha)}/{self.resolution}{b}"


@dataclass(frozen=True, slots=True)
class Point:
    """A measured configuration."""

    config: Config
    latency_ms: float


@dataclass(frozen=True)
class LayerFeatures:
    """Per-layer features of one configuration (numpy arrays, one entry per layer)."""

    config: Config
    group: "np.ndarray"   # index into COMPUTE_GROUPS, or -1 for layers without Mult-Adds
    macs: "np.ndarray"
    bytes: "np.ndarray"
    total_macs: int

    @property
    def layers(self) -> int:
        return len(self.macs)


@lru_cache(maxsize=64)
def _loaded_spec(name: str):
    """A spec parsed once per process (a big grid predicts thousands of configurations of it)."""
    from .spec import load_spec

    return load_spec(name)


@lru_cache(maxsize=512)
def layer_features(config: Config, dtype: str = "float32") -> LayerFeatures:
    """Mult-Adds, bytes moved and compute group of each layer of a configuration."""
    import numpy as np

    if dtype not in DTYPE_BYTES:
        raise MobilecostError(f"unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    width = DTYPE_BYTES[dtype]
    net = cost(_loaded_spec(config.spec), config.alpha, config.resolution)
    b = config.batch
    group = np.array([COMPUTE_GROUPS.index(GROUPS[c.kind]) if GROUPS[c.kind] in COMPUTE_GROUPS else -1
                      for c in net.layers])
    macs = np.array([float(c.macs * b) for c in net.layers])
    moved = np.array([float(((c.input_elems + c.output_elems) * b + c.weight_elems) * width)
                      for c in net.layers])
    return LayerFeatures(config, group, macs, moved, net.macs * b)


# --------------------------------------------------------------------------- the model

def _design_row(f: LayerFeatures, compute_bound: "np.ndarray | None" = None) -> "np.ndarray":
    """The linear features of one configuration, in COEFFICIENTS order.

    `compute_bound` (max form) says which layers count their Mult-Adds; the others count their
    bytes. None (sum form) counts both for every layer.
    """
    import numpy as np

    use_macs = np.ones(f.layers, bool) if compute_bound is None else compute_bound
    use_bytes = np.ones(f.layers, bool) if compute_bound is None else ~compute_bound
    row = [float(f.macs[(f.group == g) & use_macs].sum()) for g in range(len(COMPUTE_GROUPS))]
    row.append(float(f.bytes[use_bytes].sum()))
    row.append(float(f.layers))
    return np.array(row)


def _bounds(f: LayerFeatures, theta: "np.ndarray") -> "np.ndarray":
    """Which layers the roofline calls compute-bound under coefficients θ."""
    import numpy as np

    rate = np.array([theta[g] if g >= 0 else 0.0 for g in f.group])
    return f.macs * rate >= f.bytes * theta[len(COMPUTE_GROUPS)]


def layer_times_ms(f: LayerFeatures, theta: "np.ndarray", form: str = "sum") -> "np.ndarray":
    """Predicted time of each layer, fixed cost included."""
    import numpy as np

    rate = np.array([theta[g] if g >= 0 else 0.0 for g in f.group])
    compute = f.macs * rate
    memory = f.bytes * theta[len(COMPUTE_GROUPS)]
    body = compute + memory if form == "sum" else np.maximum(compute, memory)
    return body + theta[-1]


def nnls(a: "np.ndarray", b: "np.ndarray", max_iter: int | None = None) -> "np.ndarray":
    """min ‖a·x − b‖ subject to x ≥ 0 (Lawson and Hanson's active-set method)."""
    import numpy as np

    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, bool)
    tol = 10 * np.finfo(float).eps * np.linalg.norm(a, 1) * max(m, n)
    w = a.T @ (b - a @ x)
    for _ in range(max_iter or 3 * n + 10):
        if passive.all() or np.max(np.where(passive, -np.inf, w)) <= tol:
            break
        passive[int(np.argmax(np.where(passive, -np.inf, w)))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if np.all(z[passive] > tol):
                x = z
                break
            shrink = passive & (z <= tol)
            step = np.min(x[shrink] / (x[shrink] - z[shrink]))
            x = x + step * (z - x)
            passive &= x > tol
            x[~passive] = 0.0
        w = a.T @ (b - a @ x)
    return x


def _solve_relative(rows: "np.ndarray", latency_ms: "np.ndarray") -> "np.ndarray":
    """Non-negative θ minimising Σ ((rows·θ − t) / t)², columns scaled for conditioning."""
    import numpy as np

    a = rows / latency_ms[:, None]
    scale = np.linalg.norm(a, axis=0)
    used = scale > 0
    theta = np.zeros(a.shape[1])
    theta[used] = nnls(a[:, used] / scale[used], np.ones(len(latency_ms))) / scale[used]
    return theta


@dataclass(frozen=True)
class Fit:
    """Fitted coefficients (ms per unit, COEFFICIENTS order) and what they were fitted on."""

    theta: tuple[float, ...]
    form: str
    dtype: str
    points: tuple[Point, ...]
    determined: tuple[bool, ...] = ()  # which coefficients the data could see

    def predict_ms(self, config: Config) -> float:
        return predict_ms(self, config)

    @property
    def coefficients(self) -> dict[str, float]:
        return dict(zip(COEFFICIENTS, self.theta))


def min_points() -> int:
    """Fewest distinct configurations a fit needs: one more than the coefficients."""
    return len(COEFFICIENTS) + 1


def fit(points: Sequence[Point], form: str = "sum", dtype: str = "float32") -> Fit:
    """Fit the model's coefficients to measured points by non-negative relative least squares."""
    import numpy as np

    if form not in FORMS:
        raise MobilecostError(f"unknown model form {form!r}; known: {', '.join(FORMS)}")
    need = min_points()
    if len(points) < need:
        raise MobilecostError(f"the latency model needs at least {need} measured configurations "
                              f"(it has {len(COEFFICIENTS)} coefficients), got {len(points)}")
    feats = [layer_features(p.config, dtype) for p in points]
    t = np.array([p.latency_ms for p in points], float)
    rows = np.array([_design_row(f) for f in feats])
    theta = _solve_relative(rows, t)
    if form == "max":
        theta = _fit_max(feats, t, theta)
    determined = tuple(bool(x) for x in np.linalg.norm(rows, axis=0) > 0)
    return Fit(tuple(float(x) for x in theta), form, dtype, tuple(points), determined)


def _fit_max(feats: list[LayerFeatures], t: "np.ndarray", theta: "np.ndarray") -> "np.ndarray":
    """Alternate: assign each layer to its bound under θ, refit θ; keep the best objective."""
    import numpy as np

    def loss(th: "np.ndarray") -> float:
        pred = np.array([layer_times_ms(f, th, "max").sum() for f in feats])
        return float(np.sum(((pred - t) / t) ** 2))

    best, best_loss = theta, loss(theta)
    seen: set[bytes] = set()
    for _ in range(50):
        bounds = [_bounds(f, theta) for f in feats]
        key = b"".join(np.packbits(b).tobytes() for b in bounds)
        if key in seen:
            break
        seen.add(key)
        theta = _solve_relative(np.array([_design_row(f, cb) for f, cb in zip(feats, bounds)]), t)
        if (cur := loss(theta)) < best_loss:
            best, best_loss = theta, cur
    return best


def predict_ms(model: Fit, config: Config) -> float:
    """Predicted latency of one configuration in milliseconds."""
    import numpy as np

    f = layer_features(config, model.dtype)
    theta = np.array(model.theta)
    if model.determined:
        for g, name in enumerate(COMPUTE_GROUPS):
            if not model.determined[g] and np.any((f.group == g) & (f.macs > 0)):
                raise MobilecostError(f"this target was calibrated on networks without {name} layers "
                                      f"and cannot predict {config.label}, which has them")
    return float(layer_times_ms(f, theta, model.form).sum())


def predict_many(model: Fit, configs: Iterable[Config]) -> list[float]:
    """Predicted latencies of many configurations, in order."""
    return [predict_ms(model, c) for c in configs]


# --------------------------------------------------------------------------- validation

@dataclass(frozen=True, slots=True)
class Prediction:
    point: Point
    predicted_ms: float
    baseline_ms: float  # Mult-Adds-proportional: k·MACs, k fitted on the same points

    @property
    def error(self) -> float:
        """Relative error of the model: predicted / measured − 1."""
        return self.predicted_ms / self.point.latency_ms - 1

    @property
    def baseline_error(self) -> float:
        return self.baseline_ms / self.point.latency_ms - 1


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    n: int
    within: float          # share of |error| ≤ WITHIN
    median_abs: float      # median |relative error|
    worst_abs: float       # largest |relative error|

    @staticmethod
    def of(errors: Sequence[float]) -> "ErrorSummary":
        import numpy as np

        e = np.abs(np.asarray(errors, float))
        if not len(e):
            return ErrorSummary(0, float("nan"), float("nan"), float("nan"))
        return ErrorSummary(len(e), float(np.mean(e <= WITHIN + 1e-12)), float(np.median(e)), float(e.max()))


@dataclass(frozen=True)
class Validation:
    """Predictions of points the model was not fitted on, and their errors."""

    method: str  # "leave-one-out" or "held-out"
    predictions: tuple[Prediction, ...]
    calibration: tuple[Point, ...] = ()  # held-out: the points fitted on
    calibration_fitted_ms: tuple[float, ...] = ()  # and the model's values there

    @property
    def model(self) -> ErrorSummary:
        return ErrorSummary.of([p.error for p in self.predictions])

    @property
    def baseline(self) -> ErrorSummary:
        return ErrorSummary.of([p.baseline_error for p in self.predictions])


def fit_macs_baseline(points: Sequence[Point]) -> float:
    """k (ms per Mult-Add) minimising Σ ((k·m_i − t_i) / t_i)²: k = Σ(m/t) / Σ(m/t)²."""
    r = [layer_features(p.config).total_macs / p.latency_ms for p in points]
    return sum(r) / sum(x * x for x in r)


def _predict_held_out(train: Sequence[Point], test: Sequence[Point], form: str, dtype: str) -> list[Prediction]:
    model = fit(train, form, dtype)
    k = fit_macs_baseline(train)
    return [Prediction(p, predict_ms(model, p.config), k * layer_features(p.config).total_macs) for p in test]


def leave_one_out(points: Sequence[Point], form: str = "sum", dtype: str = "float32") -> Validation:
    """Fit on all points but one, predict that one, for each point."""
    if len(points) < min_points() + 1:
        raise MobilecostError(f"leave-one-out needs at least {min_points() + 1} measured configurations "
                              f"(each fit needs {min_points()}), got {len(points)}")
    preds = [_predict_held_out([q for j, q in enumerate(points) if j != i], [p], form, dtype)[0]
             for i, p in enumerate(points)]
    return Validation("leave-one-out", tuple(preds))


def held_out(points: Sequence[Point], calibration: Sequence[Point], form: str = "sum",
             dtype: str = "float32") -> Validation:
    """Fit on `calibration`, predict every other point."""
    cal = set(p.config for p in calibration)
    test = [p for p in points if p.config not in cal]
    if not test:
        raise MobilecostError("nothing left to predict: every measured configuration is in the calibration set")
    fitted = [p.predicted_ms for p in _predict_held_out(calibration, calibration, form, dtype)]
    return Validation("held-out", tuple(_predict_held_out(calibration, test, form, dtype)), tuple(calibration),
                      tuple(fitted))


def spread_subset(points: Sequence[Point], n: int) -> list[Point]:
    """n points that span the measured range: the largest and the smallest network first, then
    greedily the point farthest (in log α, log resolution, log batch, spec) from those chosen."""
    import math

    if n < min_points():
        raise MobilecostError(f"the latency model needs at least {min_points()} calibration points, got {n}")
    if n >= len(points):
        raise MobilecostError(f"cannot calibrate on {n} of {len(points)} measured configurations "
                              f"and have any left to predict")

    def coords(p: Point) -> tuple[float, ...]:
        c = p.config
        return (math.log(c.alpha), math.log(c.resolution), math.log(c.batch))

    all_c = [coords(p) for p in points]
    span = [max(c[i] for c in all_c) - min(c[i] for c in all_c) or 1.0 for i in range(3)]

    def dist(a: Point, b: Point) -> float:
        ca, cb = coords(a), coords(b)
        d = sum(((x - y) / s) ** 2 for x, y, s in zip(ca, cb, span))
        return d + (0.0 if a.config.spec == b.config.spec else 1.0)

    macs = [layer_features(p.config).total_macs for p in points]
    chosen = [points[macs.index(max(macs))]]
    if n > 1:
        chosen.append(points[macs.index(min(macs))])
    while len(chosen) < n:
        rest = [p for p in points if p not in chosen]
        chosen.append(max(rest, key=lambda p: min(dist(p, c) for c in chosen)))
    return chosen


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


def parse_latency_ms(text: str, option: str = "latency") -> float:
    """A latency budget as written on the command line, in ms: '5ms', '5', '0.5 s', '800us'.

    The rule of every budget (`grid.parse_quantity`): a finite positive number, at most
    `grid.MAX_BUDGET`, with an optional unit; `inf`, `nan`, `1e400`, 0 and negatives are refused.
    """
    import re

    from .grid import MAX_BUDGET

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
