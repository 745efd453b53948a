"""A latency model shaped for accelerators: a roofline per layer, with a fill factor.

Each layer l of a configuration (from the exact cost engine at its α, resolution and batch)
has its Mult-Adds m_l, the bytes it moves b_l (maps in and out for every image, weights once,
at the dtype's width), the bytes that batchnorm and activations move when they run as
kernels of their own, e_l (2 · width · batch · (output elements if batchnormed, plus the
activation's elementwise ops): read and written once each), and its work
W_l = batch · output elements, the independent outputs the device spreads over its units.
Its time is

    t_l = max( m_l / (P · ε_g(l) · u_l),  (b_l + φ · e_l) / B )  +  o,   u_l = W_l / (W_l + W½)

- P: peak compute (Mult-Adds per second) of dense layers (full, pointwise, FC, attention);
- ε_dw: the depthwise layers' share of that peak (ε = 1 for dense layers);
- u_l: how well the layer fills the device, saturating in its work; W½ is the work at which
  a layer reaches half the peak (W½ = 0: every layer fills it);
- B: memory bandwidth (bytes per second); φ ∈ {0, 1}: 1 when batchnorm and activations run
  unfused (eager frameworks), 0 when fused into the convolution (compiled runtimes);
- o: a fixed cost per layer (kernel launch, dispatch).

The network's time is Σ_l t_l. The roofline's max is kept, not the whole-network model's sum:
on an accelerator a depthwise layer moves as many bytes whatever its kernel, and its time
follows them, not its Mult-Adds. For fixed W½ and φ the model is linear in (1/P, 1/(P·ε_dw),
1/B, o) once each layer is assigned to its bound; they are fitted by non-negative least squares
on relative error, alternating between assigning each layer to its bound and refitting
(`_fit_bound`), from whole-network latencies only. W½ (a log grid) and φ are chosen by
Akaike's criterion on that objective: each is kept at 0 unless it lowers the relative sum of
squares by more than a free parameter would by chance. numpy is imported lazily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Sequence

from ..dtypes import lookup as lookup_dtype
from ..errors import MobilecostError
from ..util import si_text
from .features import COMPUTE_GROUPS, Layers, layers_of
from .measurements import MAX_LATENCY_MS, MIN_LATENCY_MS, Config, Domain, Point
from .solve import solve_relative

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: W½ candidates (output elements): 0 (every layer fills the device), then 10³ … 10⁶. A larger
#: W½ would say that a layer of a million outputs only half fills the device: more than any
#: device's parallel lanes times a few waves (an H100 holds 132 × 2,048 = 270,336 resident
#: threads), so the grid, and the plausible range, stop there.
FILL_GRID: tuple[float, ...] = (0.0,) + tuple(10.0 ** k for k in range(3, 7))
UNFUSED_GRID: tuple[int, ...] = (0, 1)
#: How far a configuration's share of time on the compute roof may lie outside the range of the
#: calibration points' shares (in share points) before its prediction is marked as
#: extrapolating: a network that leans on the peak more (or less) than any point it was
#: fitted on is priced by a parameter those points barely saw.
SHARE_MARGIN = 0.05
#: The linear coefficients θ, in this order, in ms per unit.
THETA: tuple[str, ...] = ("ms_per_mac", "ms_per_mac_depthwise", "ms_per_byte", "ms_per_layer")


@dataclass(frozen=True)
class Parameter:
    """A physical parameter of the model: its unit and the range a real device lies in."""

    key: str
    label: str
    unit: str
    low: float
    high: float

    def plausible(self, value: float) -> bool:
        return self.low <= value <= self.high


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("peak", "peak compute", "MAC/s", 1e9, 1e15),
    Parameter("depthwise_efficiency", "depthwise share of peak", "", 1e-3, 1.0),
    Parameter("bandwidth", "memory bandwidth", "B/s", 1e8, 1e13),
    Parameter("overhead", "fixed cost per layer", "s", 0.0, 1e-3),
    Parameter("fill_half", "fill half-saturation W½", "output elements", 0.0, 1e6),
    Parameter("unfused", "batchnorm and activations unfused φ", "0 or 1", 0.0, 1.0),
)


def min_points() -> int:
    """Fewest distinct configurations a fit needs: one more than its five continuous
    parameters (the four coefficients and W½)."""
    return len(THETA) + 2


def _terms(L: Layers, fill: float, unfused: int) -> tuple["np.ndarray", "np.ndarray"]:
    """Per layer: Mult-Adds over its fill (m/u) and the bytes it moves (b + φ·e)."""
    import numpy as np

    u = L.work / (L.work + fill) if fill > 0 else np.ones_like(L.work)
    m = np.where(L.macs > 0, L.macs / np.maximum(u, 1e-300), 0.0)
    return m, L.bytes + unfused * L.unfused


def _layer_ms(L: Layers, theta: "np.ndarray", fill: float, unfused: int) -> "np.ndarray":
    import numpy as np

    m, b = _terms(L, fill, unfused)
    rate = np.where(L.group == 0, theta[0], np.where(L.group == 1, theta[1], 0.0))
    return np.maximum(m * rate, b * theta[2]) + theta[3]


def _totals(L: Layers, theta: "np.ndarray", fill: float, unfused: int) -> "np.ndarray":
    import numpy as np

    return np.bincount(L.config, _layer_ms(L, theta, fill, unfused), minlength=L.n)


def _rows(L: Layers, m: "np.ndarray", b: "np.ndarray", compute: "np.ndarray | None") -> "np.ndarray":
    """The linear design: per configuration Σ m of dense and of depthwise layers that count
    their compute, Σ b of those that count their bytes, and the layer count."""
    import numpy as np

    use_c = np.ones(len(m), bool) if compute is None else compute
    use_b = np.ones(len(m), bool) if compute is None else ~compute
    cols = [np.bincount(L.config, m * ((L.group == g) & use_c), minlength=L.n)
            for g in range(len(COMPUTE_GROUPS))]
    cols.append(np.bincount(L.config, b * use_b, minlength=L.n))
    cols.append(np.bincount(L.config, minlength=L.n).astype(float))
    return np.stack(cols, axis=1)


def _bound(L: Layers, m: "np.ndarray", b: "np.ndarray", theta) -> "np.ndarray":
    """Which layers θ makes compute-bound (the rest are memory-bound)."""
    import numpy as np

    rate = np.where(L.group == 0, theta[0], np.where(L.group == 1, theta[1], 0.0))
    return m * rate >= b * theta[2]


def _fit_bound(L: Layers, t: "np.ndarray", fill: float, unfused: int,
               start: "np.ndarray | None" = None) -> tuple[float, "np.ndarray"]:
    """θ ≥ 0 for fixed W½ and φ: alternate between assigning each layer to its bound and
    refitting, from several starts (the sum form's fit, and each layer compute-bound where its
    Mult-Adds per byte reach a ridge, a few ridges per group from the layers' own quantiles);
    the best relative objective found. One start alone can stall: from a fit where no dense
    layer is compute-bound, the refit never prices dense compute again. `start` (a bound per
    layer) replaces the ridge starts: a leave-one-out refit starts from the full fit's bounds
    and from the sum form's fit."""
    import numpy as np

    m, b = _terms(L, fill, unfused)

    def loss(th: "np.ndarray") -> float:
        return float(np.sum((_totals(L, th, fill, unfused) / t - 1) ** 2))

    seen: set[bytes] = set()  # assignments already refitted, by any start: their paths are known

    def descend(compute: "np.ndarray") -> tuple[float, "np.ndarray"]:
        key = np.packbits(compute).tobytes()
        if key in seen:
            return math.inf, np.zeros(len(THETA))
        seen.add(key)
        theta = solve_relative(_rows(L, m, b, compute), t)
        best, best_loss = theta, loss(theta)
        for _ in range(50):
            compute = _bound(L, m, b, theta)
            key = np.packbits(compute).tobytes()
            if key in seen:
                break
            seen.add(key)
            theta = solve_relative(_rows(L, m, b, compute), t)
            if (cur := loss(theta)) < best_loss:
                best, best_loss = theta, cur
        return best_loss, best

    theta = solve_relative(_rows(L, m, b, None), t)
    results = [descend(_bound(L, m, b, theta))]
    if start is not None:
        results.append(descend(start))
        return min(results, key=lambda r: r[0])
    intensity = np.where(b > 0, m / np.where(b > 0, b, 1.0), np.inf)
    ridges = []
    for g in range(len(COMPUTE_GROUPS)):
        x = intensity[(L.group == g) & (m > 0)]
        ridges.append([np.inf] + (list(np.quantile(x, (0.1, 0.3, 0.5, 0.7, 0.9))) if len(x) else []))
    for rd in ridges[0]:
        for rw in ridges[1][::2]:
            ridge = np.where(L.group == 0, rd, np.where(L.group == 1, rw, np.inf))
            results.append(descend((m > 0) & (intensity >= ridge)))
    return min(results, key=lambda r: r[0])


# --------------------------------------------------------------------------- the fit

@dataclass(frozen=True)
class RooflineFit:
    """The fitted model: θ (ms per unit, THETA order), W½, φ, and what it was fitted on."""

    theta: tuple[float, ...]
    fill_half: float
    unfused: int
    dtype: str
    points: tuple[Point, ...]
    determined: tuple[bool, ...]  # per THETA coefficient: did the points see its feature
    declared: bool = False  # φ declared by the user (--unfused), not fitted

    @property
    def domain(self) -> "Domain | None":
        return Domain.of(self.points)

    def predict_many(self, configs: Sequence[Config]) -> list[float]:
        import numpy as np

        L = layers_of(configs, self.dtype)
        for g, name in enumerate(COMPUTE_GROUPS):
            if not self.determined[g]:
                used = np.bincount(L.config, (L.group == g) & (L.macs > 0), minlength=L.n)
                for c, k in zip(configs, used):
                    if k:
                        raise MobilecostError(
                            f"this target's roofline model was calibrated on networks without "
                            f"{name} layers and cannot predict {c.label}, which has them")
        return [float(x) for x in _totals(L, np.asarray(self.theta), self.fill_half, self.unfused)]

    def predict_ms(self, config: Config) -> float:
        return self.predict_many([config])[0]

    def compute_shares(self, configs: Sequence[Config]) -> list[float]:
        """Per configuration, the share of its predicted time in layers bound by compute."""
        import numpy as np

        L = layers_of(configs, self.dtype)
        theta = np.asarray(self.theta)
        m, b = _terms(L, self.fill_half, self.unfused)
        t = _layer_ms(L, theta, self.fill_half, self.unfused)
        on = _bound(L, m, b, theta) & (L.macs > 0)
        total = np.bincount(L.config, t, minlength=L.n)
        share = np.bincount(L.config, t * on, minlength=L.n) / np.maximum(total, 1e-300)
        return [float(x) for x in share]

    @cached_property
    def share_range(self) -> tuple[float, float] | None:
        """The least and greatest share of time on the compute roof among the points (None
        without points)."""
        shares = self.compute_shares([p.config for p in self.points]) if self.points else []
        return (min(shares), max(shares)) if shares else None

    def off_calibrated_share(self, config: Config) -> bool:
        """Whether `config` spends a share of its time on the compute roof more than
        SHARE_MARGIN outside the calibration points' range."""
        if self.share_range is None:
            return False
        lo, hi = self.share_range
        share = self.compute_shares([config])[0]
        return share < lo - SHARE_MARGIN or share > hi + SHARE_MARGIN

    def values(self) -> dict[str, float]:
        """The physical parameters in SI units (inf where a coefficient was fitted 0)."""
        th = self.theta
        dw_share = th[0] / th[1] if th[1] > 0 and th[0] > 0 else math.inf
        return {"peak": _inv(th[0]), "depthwise_efficiency": dw_share, "bandwidth": _inv(th[2]),
                "overhead": th[3] * 1e-3,
                "fill_half": self.fill_half, "unfused": float(self.unfused)}

    def unbounded(self) -> list[str]:
        """The roofline's two roofs that no layer of the points was bound by (fitted 0): the
        model then prices that resource as free, which holds for the points and for no other
        network that leans on it."""
        v = self.values()
        return [p.label for p in PARAMETERS[:3:2] if not math.isfinite(v[p.key])]

    def implausible(self) -> list[str]:
        """Parameters outside their plausible range (undetermined ones are not counted)."""
        v = self.values()
        return [p.label for p in PARAMETERS if math.isfinite(v[p.key]) and not p.plausible(v[p.key])]

    def notes(self) -> list[str]:
        """One line per parameter: value, unit, plausible range, and a flag when outside."""
        v = self.values()
        lines = []
        for p in PARAMETERS:
            x = v[p.key]
            rng = f"plausible {si_text(p.low, p.unit)}–{si_text(p.high, p.unit)}"
            if not math.isfinite(x):
                text = "not determined by these points (fitted as never the bound)"
            else:
                text = si_text(x, p.unit) + ("" if p.plausible(x) else "  ⚠ outside its plausible range")
                if p.key == "unfused" and self.declared:
                    text += ", declared (--unfused)"
                if p.key == "fill_half" and x >= FILL_GRID[-1]:
                    text += ", the largest value tried: the points want more (a fit, not the device)"
            lines.append(f"roofline {p.label}: {text} ({rng})")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"theta": dict(zip(THETA, self.theta)), "fill_half": self.fill_half,
                "unfused": self.unfused, "unfused_declared": self.declared, "dtype": self.dtype,
                "determined": dict(zip(THETA, self.determined))}

    @staticmethod
    def from_dict(d: Any, points: Sequence[Point]) -> "RooflineFit":
        """From a target file's `roofline` object; ValueError on anything malformed."""
        if not isinstance(d, dict):
            raise ValueError("roofline must be an object")
        theta = tuple(float(d["theta"][k]) for k in THETA)
        if not all(math.isfinite(x) and x >= 0 for x in theta):
            raise ValueError(f"roofline coefficients must be finite and ≥ 0, got {list(theta)}")
        fill, unfused = float(d["fill_half"]), d["unfused"]
        if not (math.isfinite(fill) and fill >= 0) or unfused not in (0, 1):
            raise ValueError("roofline fill_half must be ≥ 0 and unfused 0 or 1")
        det = tuple(bool(d["determined"][k]) for k in THETA)
        return RooflineFit(theta, fill, int(unfused), lookup_dtype(str(d["dtype"])).name,
                           tuple(points), det, bool(d.get("unfused_declared", False)))


def _inv(ms_per_unit: float) -> float:
    """Units per second from milliseconds per unit (inf for 0: never the bound)."""
    return 1e3 / ms_per_unit if ms_per_unit > 0 else math.inf


def undetermined(points: Sequence[Point], dtype: str) -> list[str]:
    """The parameters that the points cannot separate (a one-line reason each is the
    caller's): with fewer than `min_points` distinct configurations all of them; else those
    whose features (dense and depthwise Mult-Adds, bytes, layers; each column scaled, each
    row by its latency) lie in a near-null direction of the design."""
    import numpy as np

    configs = {p.config for p in points}
    labels = ("peak compute", "depthwise share of peak", "memory bandwidth", "fixed cost per layer")
    if len(configs) < min_points():
        return list(labels) + ["fill half-saturation W½"]
    pts = list(points)
    L = layers_of([p.config for p in pts], dtype)
    m, b = _terms(L, 0.0, 0)
    rows = _rows(L, m, b, None) / np.array([p.latency_ms for p in pts])[:, None]
    used = np.linalg.norm(rows, axis=0) > 0
    a = rows[:, used] / np.linalg.norm(rows[:, used], axis=0)
    _, s, vt = np.linalg.svd(a, full_matrices=False)
    weak = s < 1e-6 * s[0]
    names = [n for n, u in zip(labels, used) if u]
    out = sorted({names[j] for v in vt[weak] for j in np.flatnonzero(np.abs(v) > 0.1)},
                 key=names.index)
    return out + (["fill half-saturation W½"] if out else [])


def _aic(loss: float, n: int, extra: int) -> float:
    """Akaike's criterion of a fit with `extra` structural choices beyond the default (a
    nonzero W½, φ = 1): n·ln(loss/n) + 2·extra. Each must lower the relative sum of squares
    by a factor e^(-2/n) to be taken (0.80 for 9 points): W½ and φ are kept at 0 unless the
    points show them, not merely allow them."""
    return n * math.log(max(loss, 1e-300) / n) + 2 * extra


def fit(points: Sequence[Point], dtype: str = "float32", unfused: int | None = None) -> RooflineFit:
    """Fit the roofline model to whole-network latencies; a MobilecostError naming the
    parameters the points cannot determine. `unfused` declares φ (1: the runtime runs
    batchnorm and activations as kernels of their own, as eager PyTorch does; 0: fused, as
    compiled runtimes do); None chooses it with W½. Points of one or two families rarely
    show φ (batchnorm and activation bytes grow with every convolution's output alike), so a
    user who knows the runtime should say."""
    import numpy as np

    _check(points, dtype, unfused)
    L = layers_of([p.config for p in points], dtype)
    t = np.array([p.latency_ms for p in points], float)
    _, fill, phi, theta = _fit_grid(L, t, unfused)
    return _result(L, theta, fill, phi, dtype, points, unfused)


def _check(points: Sequence[Point], dtype: str, unfused: int | None) -> None:
    """The refusals of `fit`: latencies out of range, too few configurations, features that
    move together, φ neither 0 nor 1."""
    for p in points:
        if not (isinstance(p.latency_ms, (int, float)) and MIN_LATENCY_MS <= p.latency_ms <= MAX_LATENCY_MS):
            raise MobilecostError(f"{p.config.label}: latency_ms must be between {MIN_LATENCY_MS:g} "
                                  f"and {MAX_LATENCY_MS:g} ms, got {p.latency_ms!r}")
    if len({p.config for p in points}) < min_points():
        raise MobilecostError(f"the roofline model needs at least {min_points()} distinct measured "
                              f"configurations, got {len({p.config for p in points})}; it cannot "
                              f"determine {', '.join(undetermined(points, dtype))}")
    bad = undetermined(points, dtype)
    if bad:
        raise MobilecostError(f"these {len(points)} points cannot determine the roofline model's "
                              f"{', '.join(bad)} (their features move together); measure other "
                              f"networks or sizes (`mobilecost suggest --model roofline`)")
    if unfused not in (None, 0, 1):
        raise MobilecostError(f"unfused must be 0 or 1, got {unfused!r}")


def _fit_grid(L: Layers, t: "np.ndarray", unfused: int | None, starts: dict | None = None,
              thetas: dict | None = None) -> tuple[float, float, int, "np.ndarray"]:
    """The best (AIC, W½, φ, θ) over W½ and φ (φ fixed where declared); `starts` maps (φ, W½)
    to a bound per layer to start from instead of the ridges; `thetas`, where given, gets
    each (φ, W½)'s fitted θ."""
    best = None
    for phi in (UNFUSED_GRID if unfused is None else (unfused,)):
        for fill in FILL_GRID:
            start = None if starts is None else starts[(phi, fill)]
            loss, theta = _fit_bound(L, t, fill, phi, start)
            if thetas is not None:
                thetas[(phi, fill)] = theta
            score = _aic(loss, len(t), (fill > 0) + (phi if unfused is None else 0))
            if best is None or score < best[0] - 1e-9:
                best = (score, fill, phi, theta)
    return best


def _result(L: Layers, theta, fill: float, phi: int, dtype: str, points: Sequence[Point],
            unfused: int | None) -> RooflineFit:
    import numpy as np

    m, _ = _terms(L, 0.0, 0)
    seen = [bool(np.any((L.group == g) & (m > 0))) for g in range(len(COMPUTE_GROUPS))] + [True, True]
    return RooflineFit(tuple(float(x) for x in theta), float(fill), int(phi), dtype,
                       tuple(points), tuple(seen), unfused is not None)


__all__ = ["FILL_GRID", "PARAMETERS", "Parameter", "RooflineFit", "SHARE_MARGIN", "THETA", "fit",
           "min_points", "undetermined"]
