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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..dtypes import lookup as lookup_dtype
from ..errors import MobilecostError
from ..lang.identity import Network, network_of
from ..lang.spec import Spec
from ..lang.values import to_fraction
from .features import COMPUTE_GROUPS, NetworkFeatures, group_index, network_features
from .measurements import MAX_LATENCY_MS, MIN_LATENCY_MS, Config, Domain, Point
from .solve import solve_relative

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

# The coefficient vector θ, in this order, each in milliseconds per unit.
COEFFICIENTS: tuple[str, ...] = ("ms_per_mac_dense", "ms_per_mac_depthwise", "ms_per_byte", "ms_per_layer")
FORMS: tuple[str, ...] = ("sum", "max")


# --------------------------------------------------------------------------- the model

def _design_row(f: NetworkFeatures, compute_bound: "np.ndarray | None" = None) -> "np.ndarray":
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


def _bounds(f: NetworkFeatures, theta: "np.ndarray") -> "np.ndarray":
    """Which layers the roofline calls compute-bound under coefficients θ."""

    return f.macs * _rates(f.group, theta) >= f.bytes * theta[len(COMPUTE_GROUPS)]


def _rates(group: "np.ndarray", theta: "np.ndarray") -> "np.ndarray":
    """ms per Mult-Add of each layer by its compute group (0 for layers without Mult-Adds)."""
    import numpy as np

    per_group = np.append(np.asarray(theta[:len(COMPUTE_GROUPS)], float), 0.0)
    return per_group[group]  # index -1 picks the appended 0


def layer_times_ms(f: NetworkFeatures, theta: "np.ndarray", form: str = "sum") -> "np.ndarray":
    """Predicted time of each layer, fixed cost included."""
    import numpy as np

    compute = f.macs * _rates(f.group, theta)
    memory = f.bytes * theta[len(COMPUTE_GROUPS)]
    body = compute + memory if form == "sum" else np.maximum(compute, memory)
    return body + theta[-1]


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
    feats = [network_features(p.config, dtype) for p in points]
    t = np.array([p.latency_ms for p in points], float)
    rows = np.array([_design_row(f) for f in feats])
    theta = solve_relative(rows, t)
    if form == "max":
        theta = _fit_max(feats, t, theta)
    determined = tuple(bool(x) for x in np.linalg.norm(rows, axis=0) > 0)
    return Fit(tuple(float(x) for x in theta), form, dtype, tuple(points), determined)


def _fit_max(feats: list[NetworkFeatures], t: "np.ndarray", theta: "np.ndarray") -> "np.ndarray":
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
        theta = solve_relative(np.array([_design_row(f, cb) for f, cb in zip(feats, bounds)]), t)
        if (cur := loss(theta)) < best_loss:
            best, best_loss = theta, cur
    return best


def predict_ms(model: Fit, config: Config) -> float:
    """Predicted latency of one configuration in milliseconds."""
    import numpy as np

    f = network_features(config, model.dtype)
    theta = np.array(model.theta)
    for g in range(len(COMPUTE_GROUPS)):
        _check_determined(model, g, bool(np.any((f.group == g) & (f.macs > 0))), config.label)
    return float(layer_times_ms(f, theta, model.form).sum())


def _check_determined(model: Fit, group: int, used: bool, what: str) -> None:
    if used and model.determined and not model.determined[group]:
        raise MobilecostError(f"this target was calibrated on networks without {COMPUTE_GROUPS[group]} "
                              f"layers and cannot predict {what}, which has them")


_GRID_CHUNK_ELEMS = 1 << 21  # float64 elements of one (α, layer, resolution) block, max form


def predict_grid(model: Fit, spec: "Spec | str | Network", alphas: Sequence, resolutions: Sequence[int],
                 batch: int = 1) -> "np.ndarray":
    """Predicted latency of every (α, resolution) of a grid, an [n_α, n_r] array, vectorised.

    Equal to `predict_ms` of each configuration up to float rounding. The sum form is
    linear in per-group sums of per-layer features, and each sum is one matrix product of an
    α factor and a resolution factor (see `latency.structure`); the max form takes the per-layer
    maximum in blocks of α, so that memory stays bounded.
    """
    import numpy as np

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
    out = np.empty((len(alist), len(rlist)))
    for st in structure_terms(s, alist, rlist):
        group = np.array([group_index(k) for k in st.kinds])
        for g in range(n_g):
            _check_determined(model, g, bool(np.any(st.per_alpha["macs"][:, group == g] > 0)),
                              f"{s.name} on this grid")
        if model.form == "sum":
            # Per-layer weights of each feature, summed over layers by one matrix product each.
            rate = _rates(group, theta) * b
            macs = (st.per_alpha["macs"] * rate) @ st.per_res["macs"]
            moved = (b * (st.per_alpha["input_elems"] @ st.per_res["input_elems"]
                          + st.per_alpha["output_elems"] @ st.per_res["output_elems"])
                     + st.per_alpha["weight_params"] @ st.per_res["weight_params"]
                     + st.per_alpha["bias_params"] @ st.per_res["bias_params"])
            out[st.rows] = macs + moved * (width * theta[n_g]) + st.layers * theta[-1]
            continue
        rate = _rates(group, theta)[None, :, None] * b
        step = max(1, _GRID_CHUNK_ELEMS // max(1, st.layers * len(rlist)))
        for lo in range(0, len(st.rows), step):
            hi = min(len(st.rows), lo + step)
            compute = st.quantity("macs", lo, hi) * rate
            memory = (b * (st.quantity("input_elems", lo, hi) + st.quantity("output_elems", lo, hi))
                      + st.quantity("weight_params", lo, hi) + st.quantity("bias_params", lo, hi))
            memory *= width * theta[n_g]
            out[st.rows[lo:hi]] = np.maximum(compute, memory).sum(axis=1) + st.layers * theta[-1]
    return out
