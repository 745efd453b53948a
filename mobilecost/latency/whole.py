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


