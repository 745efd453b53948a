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
`predict_grid` predicts a whole α × resolution grid at once (see latency.structure); `Domain` is
what a model was calibrated on, and says when a prediction extrapolates. A network is known
by its canonical spec text without the `name` line (`Network`), never by the name or path a
user typed. numpy is imported lazily: the analytic commands never load it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Sequence

from ..dtypes import lookup as lookup_dtype
from ..engine.cost import cost
from ..errors import MobilecostError
from ..lang.spec import LayerKind, Spec
from ..lang.values import exact_text, norm_resolution, to_fraction

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
from ..lang.identity import Network, network_of

# Bytes per element by the dtype's full name (derived from the one dtype table).

# Which kinds share a compute rate: the kind table's latency group (lang.kinds.KINDS).
GROUPS: dict[LayerKind, str] = {k: k.latency_group for k in LayerKind}
COMPUTE_GROUPS: tuple[str, ...] = ("dense", "depthwise")

# The coefficient vector θ, in this order, each in milliseconds per unit.
COEFFICIENTS: tuple[str, ...] = ("ms_per_mac_dense", "ms_per_mac_depthwise", "ms_per_byte", "ms_per_layer")
FORMS: tuple[str, ...] = ("sum", "max")
WITHIN = 0.10  # the ±10% band of the validation
# Latencies a fit accepts: a forward pass takes more than a nanosecond and less than a day.
MIN_LATENCY_MS = 1e-6
MAX_LATENCY_MS = 8.64e7
# A prediction extrapolates in α or resolution when it lies outside the calibrated range by
# more than this factor (α 1.1 on a target calibrated on α ≤ 1 is outside; 1.05 is not).
EXTRAPOLATION_MARGIN = 1.10


def group_index(kind: LayerKind) -> int:
    """Index into COMPUTE_GROUPS of a layer kind's compute rate, -1 for kinds without Mult-Adds."""
    g = GROUPS[kind]
    return COMPUTE_GROUPS.index(g) if g in COMPUTE_GROUPS else -1


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


@lru_cache(maxsize=512)
def layer_features(config: Config, dtype: str = "float32") -> LayerFeatures:
    """Mult-Adds, bytes moved and compute group of each layer of a configuration."""
    import numpy as np

    width = lookup_dtype(dtype).bytes
    net = cost(config.network.spec(), config.alpha, config.resolution)
    b = config.batch
    group = np.array([group_index(c.kind) for c in net.layers])
    macs = np.array([float(c.macs * b) for c in net.layers])
    moved = np.array([float(c.bytes_moved(b, width)) for c in net.layers])
    return LayerFeatures(config, group, macs, moved, net.macs * b)


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

    return f.macs * _rates(f.group, theta) >= f.bytes * theta[len(COMPUTE_GROUPS)]


def _rates(group: "np.ndarray", theta: "np.ndarray") -> "np.ndarray":
    """ms per Mult-Add of each layer by its compute group (0 for layers without Mult-Adds)."""
    import numpy as np

    per_group = np.append(np.asarray(theta[:len(COMPUTE_GROUPS)], float), 0.0)
    return per_group[group]  # index -1 picks the appended 0


def layer_times_ms(f: LayerFeatures, theta: "np.ndarray", form: str = "sum") -> "np.ndarray":
    """Predicted time of each layer, fixed cost included."""
    import numpy as np

    compute = f.macs * _rates(f.group, theta)
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

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        a = rows / latency_ms[:, None]
        scale = np.linalg.norm(a, axis=0)
    used = scale > 0
    theta = np.zeros(a.shape[1])
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(scale))):
        raise MobilecostError("the measured latencies are out of range for a fit (each must be "
                              f"between {MIN_LATENCY_MS:g} and {MAX_LATENCY_MS:g} ms)")
    try:
        theta[used] = nnls(a[:, used] / scale[used], np.ones(len(latency_ms))) / scale[used]
    except np.linalg.LinAlgError as exc:
        raise MobilecostError(f"the latency model's fit did not converge ({exc})") from None
    if not np.all(np.isfinite(theta)):
        raise MobilecostError("the latency model's fit gave non-finite coefficients")
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

    @property
    def domain(self) -> "Domain | None":
        """What the model was calibrated on (None for a model without points)."""
        return Domain.of(self.points)

    def check(self) -> None:
        """A MobilecostError unless the model is usable: known form and dtype, coefficients
        finite and ≥ 0, points with finite positive latencies."""
        if self.form not in FORMS:
            raise MobilecostError(f"unknown model form {self.form!r}; known: {', '.join(FORMS)}")
        lookup_dtype(self.dtype)
        if len(self.theta) != len(COEFFICIENTS) or not all(
                isinstance(x, float) and math.isfinite(x) and x >= 0 for x in self.theta):
            raise MobilecostError(f"coefficients must be {len(COEFFICIENTS)} finite numbers ≥ 0, "
                                  f"got {list(self.theta)}")
        for p in self.points:
            if not MIN_LATENCY_MS <= p.latency_ms <= MAX_LATENCY_MS:
                raise MobilecostError(f"{p.config.label}: latency_ms {p.latency_ms!r} is out of range")


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
    for p in points:
        if not (isinstance(p.latency_ms, (int, float)) and MIN_LATENCY_MS <= p.latency_ms <= MAX_LATENCY_MS):
            raise MobilecostError(f"{p.config.label}: latency_ms must be between {MIN_LATENCY_MS:g} "
                                  f"and {MAX_LATENCY_MS:g} ms, got {p.latency_ms!r}")
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
    for g in range(len(COMPUTE_GROUPS)):
        _check_determined(model, g, bool(np.any((f.group == g) & (f.macs > 0))), config.label)
    return float(layer_times_ms(f, theta, model.form).sum())


def _check_determined(model: Fit, group: int, used: bool, what: str) -> None:
    if used and model.determined and not model.determined[group]:
        raise MobilecostError(f"this target was calibrated on networks without {COMPUTE_GROUPS[group]} "
                              f"layers and cannot predict {what}, which has them")


def predict_many(model: Fit, configs: Iterable[Config]) -> list[float]:
    """Predicted latencies of many configurations, in order (one at a time; `predict_grid`
    does a whole α × resolution grid at once)."""
    return [predict_ms(model, c) for c in configs]


_GRID_CHUNK_ELEMS = 1 << 15  # float64 elements of one (α, resolution) block of a layer's max


def predict_grid(model: Fit, spec: "Spec | str | Network", alphas: Sequence, resolutions: Sequence[int],
                 batch: int = 1) -> "np.ndarray":
    """Predicted latency of every (α, resolution) of a grid, an [n_α, n_r] array, vectorised.

    Equal to `predict_ms` of each configuration up to float rounding. Every per-layer term is
    an α factor times a resolution factor (`structure`), so the sum form is one matrix product
    of the layers' α factors, weighted by θ and summed within groups of equal resolution
    factors, by those factors. The max form takes max(compute, memory) per layer: at each α
    where a layer is compute-bound at every resolution (Σ_q m_q(α)·max_r g_q(r)/g_c(r) ≤ c(α))
    or memory-bound at every resolution (c(α) ≤ Σ_q m_q(α)·min_r g_q(r)/g_c(r)) its term is
    linear and joins the product; only the α where it changes bound between resolutions take
    the per-layer maximum, in blocks.
    """
    import numpy as np

    from ..engine.grid import matmul_one_thread
    from .structure import structure_terms

    s = network_of(spec).spec() if not isinstance(spec, Spec) else spec
    alist = [to_fraction(a) for a in alphas]
    rlist = [int(r) for r in resolutions]
    if not alist or not rlist:
        raise MobilecostError("the grid is empty: give at least one α and one resolution")
    theta = np.asarray(model.theta, float)
    width = lookup_dtype(model.dtype).bytes
    b = float(batch)
    n_g = len(COMPUTE_GROUPS)
    per_byte = width * theta[n_g]
    out = np.empty((len(alist), len(rlist)))
    for st in structure_terms(s, alist, rlist):
        f = st.factors
        group = np.array([group_index(k) for k in st.kinds])
        for g in range(n_g):
            _check_determined(model, g, bool(np.any(f.channel["macs"][:, group == g] > 0)),
                              f"{s.name} on this grid")
        # compute: c(α)·g_c(r) per layer; memory: Σ_q m_q(α)·g_q(r) (θ folded into the factors)
        c = f.channel["macs"] * (_rates(group, theta) * b)[None, :]
        gc = f.spatial["macs"]
        memory = [(f.channel[q] * (per_byte * k), f.spatial[q])
                  for q, k in (("input_elems", b), ("output_elems", b), ("weight_params", 1.0),
                               ("bias_params", 1.0))]
        if model.form == "sum":
            use_c = use_m = None
        else:
            use_c, use_m = _bound_at_every_resolution(
                c, gc.astype(float), [(m, g.astype(float)) for m, g in memory])
        blocks = [(c if use_c is None else np.where(use_c, c, 0.0), gc)]
        blocks += [(m if use_m is None else np.where(use_m, m, 0.0), g) for m, g in memory]
        block = np.empty((len(st.rows), len(rlist)))
        _linear_sum(blocks, block, matmul_one_thread)
        block += st.layers * theta[-1]
        if use_c is not None:  # the maximum where a layer changes bound across resolutions
            step = max(1, _GRID_CHUNK_ELEMS // len(rlist))
            for l in np.flatnonzero((~use_c & ~use_m).any(axis=0)):
                rows_l = np.flatnonzero(~use_c[:, l] & ~use_m[:, l])
                for lo in range(0, len(rows_l), step):
                    r = rows_l[lo:lo + step]
                    comp = c[r, l, None] * gc[l][None, :].astype(float)
                    mem = sum(m[r, l, None] * g[l][None, :].astype(float) for m, g in memory)
                    block[r] += np.maximum(comp, mem)
        out[st.rows] = block
    return out


def _bound_at_every_resolution(c: "np.ndarray", gc: "np.ndarray",
                               memory: list[tuple["np.ndarray", "np.ndarray"]]) -> tuple["np.ndarray", "np.ndarray"]:
    """[α, L] masks: where max(c·g_c, Σ_q m_q·g_q) is a layer's compute term at every
    resolution (Σ_q m_q · max_r g_q/g_c ≤ c), and where, not the former, its memory term at
    every one (c ≤ Σ_q m_q · min_r g_q/g_c). Resolutions where g_c is 0 have no compute."""
    import numpy as np

    pos = gc > 0  # [L, R]
    any_pos = pos.any(axis=1)  # [L]
    safe = np.where(pos, gc, 1.0)
    upper = np.zeros_like(c)
    lower = np.zeros_like(c)
    for m, g in memory:
        ratio = g / safe
        hi = np.where(pos, ratio, -np.inf).max(axis=1, initial=-np.inf)
        lo = np.where(pos, ratio, np.inf).min(axis=1, initial=np.inf)
        hi = np.where(np.isfinite(hi), hi, 0.0)
        lo = np.where(np.isfinite(lo), lo, 0.0)
        unbounded = (np.where(pos, 0.0, g) > 0).any(axis=1)  # memory where no compute
        upper = upper + m * hi[None, :] + np.where(unbounded[None, :] & (m > 0), np.inf, 0.0)
        lower = lower + m * lo[None, :]
    use_c = (c > 0) & any_pos[None, :] & (upper <= c)
    use_m = ~use_c & ((c == 0) | ~any_pos[None, :] | (c <= lower))
    return use_c, use_m


def _linear_sum(blocks: list[tuple["np.ndarray", "np.ndarray"]], out: "np.ndarray", matmul) -> None:
    """out = Σ_k A_k @ G_k for α factors A_k [n, L] (float) and resolution factors G_k [L, R]
    (integer): the columns of equal resolution rows (found by hashing the rows) summed first,
    then one matrix product."""
    import numpy as np

    seen: dict[bytes, int] = {}
    rows: list["np.ndarray"] = []
    which = []
    for _, g in blocks:
        w = np.full(len(g), -1, dtype=np.int64)
        nonzero = g.any(axis=1)
        for l in np.flatnonzero(nonzero).tolist():
            k = seen.setdefault(g[l].tobytes(), len(rows))
            if k == len(rows):
                rows.append(g[l])
            w[l] = k
        which.append(w)
    n_g = len(rows)
    if not n_g:
        out[...] = 0.0
        return
    summed = np.zeros((blocks[0][0].shape[0], n_g))
    for (a, _), w in zip(blocks, which):
        keep = np.flatnonzero(w >= 0)
        if len(keep) * n_g <= 1 << 20:  # a small one-hot [layers, groups]: one product
            onehot = np.zeros((len(keep), n_g))
            onehot[np.arange(len(keep)), w[keep]] = 1.0
            summed += a[:, keep] @ onehot
        else:  # layers sorted by group, then summed in runs
            order = keep[np.argsort(w[keep], kind="stable")]
            starts = np.flatnonzero(np.r_[True, np.diff(w[order]) != 0])
            summed[:, w[order][starts]] += np.add.reduceat(a[:, order], starts, axis=1)
    matmul(summed, np.stack(rows).astype(float), out)


# --------------------------------------------------------------------------- validation

@dataclass(frozen=True, slots=True)
class Prediction:
    point: Point
    predicted_ms: float
    baseline_ms: float  # Mult-Adds-proportional: k·MACs, k fitted on the same points
    affine_ms: float = float("nan")  # affine in Mult-Adds: c0 + k·MACs, fitted on the same points
    layer_ms: float = float("nan")  # layer-level (a target's layer table), overhead fitted on the same points

    @property
    def error(self) -> float:
        """Relative error of the model: predicted / measured − 1."""
        return self.predicted_ms / self.point.latency_ms - 1

    @property
    def baseline_error(self) -> float:
        return self.baseline_ms / self.point.latency_ms - 1

    @property
    def affine_error(self) -> float:
        return self.affine_ms / self.point.latency_ms - 1

    @property
    def layer_error(self) -> float:
        return self.layer_ms / self.point.latency_ms - 1


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

    @property
    def affine(self) -> ErrorSummary:
        """The affine baseline c0 + k·MACs (a fixed overhead plus a rate): the honest second
        baseline, which already does well on one network's grid."""
        return ErrorSummary.of([p.affine_error for p in self.predictions])

    @property
    def layer(self) -> ErrorSummary:
        """The layer-level prediction, where the target has a layer table (n = 0 otherwise)."""
        return ErrorSummary.of([p.layer_error for p in self.predictions if p.layer_ms == p.layer_ms])


def fit_macs_baseline(points: Sequence[Point]) -> float:
    """k (ms per Mult-Add) minimising Σ ((k·m_i − t_i) / t_i)²: k = Σ(m/t) / Σ(m/t)²."""
    r = [layer_features(p.config).total_macs / p.latency_ms for p in points]
    return sum(r) / sum(x * x for x in r)


def fit_affine_baseline(points: Sequence[Point]) -> tuple[float, float]:
    """(c0 ms, k ms per Mult-Add) ≥ 0 minimising Σ ((c0 + k·m_i − t_i) / t_i)², by non-negative
    least squares on the rows (1/t_i, m_i/t_i) against 1."""
    import numpy as np

    m = np.array([layer_features(p.config).total_macs for p in points], dtype=float)
    t = np.array([p.latency_ms for p in points], dtype=float)
    scale = m.max() if len(m) and m.max() > 0 else 1.0  # columns of like size for the solver
    c0, k = nnls(np.stack([1 / t, m / scale / t], axis=1), np.ones(len(t)))
    return float(c0), float(k) / scale


def baselines(train: Sequence[Point], test: Sequence[Point]) -> list[tuple[float, float]]:
    """Both baselines fitted on `train`, at each point of `test`: (k·MACs, c0 + k'·MACs) ms."""
    k = fit_macs_baseline(train)
    c0, k1 = fit_affine_baseline(train)
    macs = [layer_features(p.config).total_macs for p in test]
    return [(k * m, c0 + k1 * m) for m in macs]


def _predict_held_out(train: Sequence[Point], test: Sequence[Point], form: str, dtype: str) -> list[Prediction]:
    model = fit(train, form, dtype)
    return [Prediction(p, predict_ms(model, p.config), b, a)
            for p, (b, a) in zip(test, baselines(train, test))]


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
        return d + (0.0 if a.config.network == b.config.network else 1.0)

    macs = [layer_features(p.config).total_macs for p in points]
    chosen = [points[macs.index(max(macs))]]
    if n > 1:
        chosen.append(points[macs.index(min(macs))])
    while len(chosen) < n:
        rest = [p for p in points if p not in chosen]
        chosen.append(max(rest, key=lambda p: min(dist(p, c) for c in chosen)))
    return chosen


# --------------------------------------------------------------------------- intervals

INTERVAL_COVERAGE = 0.9  # the stated rate of a prediction's interval


def interval_rel(points: Sequence[Point], form: str = "sum", dtype: str = "float32") -> float | None:
    """The relative half-width q of a prediction's 90% interval, predicted × (1 ± q): the
    ⌈0.9·(n+1)⌉-th smallest of the n leave-one-out relative errors (`util.conformal_half_width`).
    None with too few points for a leave-one-out; infinite with too few for the rate (n < 9).
    It holds inside what the points cover; outside it (another network, batch, or α or
    resolution beyond the calibrated range) nothing measured says how wide it is."""
    from ..util import conformal_half_width

    if len(points) < min_points() + 1:
        return None
    return conformal_half_width([p.error for p in leave_one_out(points, form, dtype).predictions],
                                INTERVAL_COVERAGE)


# --------------------------------------------------------------------------- calibration sets

# A calibration set whose scaled design (spread_condition) is worse conditioned than this is
# poorly spread. On this machine's MobileNet v1 grid (reports/cpu/sweep_mobilenet_v1.csv), the
# 10% of the 8,008 six-point sets above 100 put a mean 79% of the other ten within ±10% (54% of
# them miss 90%); the sets at or below 100 a mean 92% (21% miss), those below 30 a mean 100%.
POOR_SPREAD_CONDITION = 100.0


def _scaled_design(configs: Sequence[Config], dtype: str = "float32") -> "np.ndarray":
    """The model's linear features of `configs`, each column scaled by its largest value (so
    that Mult-Adds, bytes and layer counts weigh alike) and each row to unit length (the fit
    is on relative error, so a configuration's size does not count); all-zero columns (a spec
    without depthwise layers) left out."""
    import numpy as np

    rows = np.array([_design_row(layer_features(c, dtype)) for c in configs], dtype=float)
    top = rows.max(axis=0)
    rows = rows[:, top > 0] / top[top > 0]
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def spread_condition(configs: Sequence[Config], dtype: str = "float32") -> float:
    """How well `configs` pin the model down: the condition number of their scaled design
    (1 is ideal; infinite when they cannot determine every coefficient)."""
    import numpy as np

    x = _scaled_design(configs, dtype)
    if len(x) < x.shape[1]:
        return math.inf
    sv = np.linalg.svd(x, compute_uv=False)
    return float(sv[0] / sv[-1]) if sv[-1] > 1e-12 * sv[0] else math.inf


MAX_SUGGEST_CANDIDATES = 5_000  # configurations `suggest` chooses among (each is costed once)


def suggest(configs: Sequence[Config], n: int, dtype: str = "float32") -> list[Config]:
    """The n of `configs` to measure for the best-determined fit: a D-optimal design on the
    scaled features (largest det XᵀX), found greedily from the largest and the smallest network
    and then improved by exchanges until no swap helps. Each step scores every candidate at
    once by the rank-one rule det(M + xxᵀ) = det M · (1 + xᵀM⁻¹x)."""
    import numpy as np

    configs = list(dict.fromkeys(configs))
    if n < min_points():
        raise MobilecostError(f"the latency model needs at least {min_points()} calibration points, "
                              f"got {n}")
    if n > len(configs):
        raise MobilecostError(f"cannot suggest {n} configurations from a grid of {len(configs)}")
    if len(configs) > MAX_SUGGEST_CANDIDATES:
        raise MobilecostError(f"cannot suggest from {len(configs):,} configurations; at most "
                              f"{MAX_SUGGEST_CANDIDATES:,} (give a coarser grid)")
    x = _scaled_design(configs, dtype)
    ridge = 1e-9 * np.eye(x.shape[1])

    def gains(m: "np.ndarray") -> "np.ndarray":
        """1 + xᵀM⁻¹x of every candidate: the factor its addition multiplies det M by."""
        return 1 + np.einsum("ij,jk,ik->i", x, np.linalg.inv(m), x)

    macs = np.array([layer_features(c, dtype).total_macs for c in configs], dtype=float)
    chosen = [int(np.argmax(macs))]
    if n > 1:
        rest = macs.copy()
        rest[chosen[0]] = np.inf
        chosen.append(int(np.argmin(rest)))
    m = x[chosen].T @ x[chosen] + ridge
    while len(chosen) < n:
        g = gains(m)
        g[chosen] = -np.inf
        j = int(np.argmax(g))
        chosen.append(j)
        m = m + np.outer(x[j], x[j])
    for _ in range(100):  # exchanges: each one raises det, so this ends; 100 passes bound it
        improved = False
        for pos in range(len(chosen)):
            c = chosen[pos]
            without = m - np.outer(x[c], x[c])
            g = gains(without)
            keep = g[c]
            g[chosen] = -np.inf
            j = int(np.argmax(g))
            if g[j] > keep * (1 + 1e-9):
                chosen[pos] = j
                m = without + np.outer(x[j], x[j])
                improved = True
        if not improved:
            break
    return [configs[i] for i in chosen]


def held_out_spec(points: Sequence[Point], spec: "Spec | str | Network", form: str = "sum",
                  dtype: str = "float32") -> Validation:
    """Calibrate on every point of the other networks, predict every point of `spec`'s: the
    question "how fast would a network I never measured be?"."""
    net = network_of(spec)
    test = [p for p in points if p.config.network == net]
    train = [p for p in points if p.config.network != net]
    if not test:
        names = sorted({p.config.spec for p in points})
        raise MobilecostError(f"no measurements of {net.name or spec} to hold out; the target has "
                              f"{', '.join(names)}")
    if len(train) < min_points():
        raise MobilecostError(f"holding out {net.name or spec} leaves {len(train)} measurements of other "
                              f"networks; a fit needs at least {min_points()}")
    model = fit(train, form, dtype)
    preds = tuple(Prediction(p, predict_ms(model, p.config), b, a)
                  for p, (b, a) in zip(test, baselines(train, test)))
    return Validation(f"held-out spec {net.name or spec}", preds, tuple(train),
                      tuple(predict_ms(model, p.config) for p in train))


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

    from ..engine.axes import MAX_BUDGET

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
