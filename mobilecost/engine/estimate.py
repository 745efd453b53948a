"""The accuracy estimate between published points (`estimate`, `accuracy_grid`), which never
contradicts them, with its jackknife interval.

The estimate is anchored on the checkpoints rather than read off the law (the law alone puts
1.0-220 at 71.9%, above the 70.9% published for 1.0-224):

- at a released width α_i it interpolates the published figures linearly in ln(Mult-Adds)
  (the paper's log-linear law, between neighbours), Mult-Adds from the closed form
  (`engine.closedform`, exact at the released configurations);
- between two released widths it moves from one width's curve to the next by the fitted law's
  progress at the base resolution: weight u = (ψ(α) − ψ(α_i)) / (ψ(α_i+1) − ψ(α_i)) with
  ψ(α) = c1 · ln MACs(α, base) + c2 · (ln α)².

Both steps are monotone, so the estimate rises with resolution at a fixed width (with Mult-Adds)
and with width at a fixed resolution, equals the published figure at every released point, and
so is never above a published point that dominates it (≥ α and ≥ resolution) nor below one it
dominates; it is also clipped to those bounds explicitly. Its uncertainty is a jackknife interval:
the estimate ± the ⌈0.9·(n+1)⌉-th smallest of the n leave-one-out errors (the estimator rebuilt
without each checkpoint in turn, which then predicts it), intersected with the dominance bounds.
Estimates are given only inside the released box (0.25 ≤ α ≤ 1, 128 ≤ resolution ≤ 224 for v1)
and always marked "estimated"; outside it, and for specs without published points, there is no
accuracy rather than a guess.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

from ..lang.load import load_spec
from ..lang.spec import Spec
from ..lang.values import to_fraction
from .accuracy import (
    ESTIMATED_SPECS,
    METRICS,
    SOURCES,
    LooPoint,
    PublishedAccuracy,
    _builtin,
    _fit,
    _points,
    builtin_match,
    lookup,
)

if TYPE_CHECKING:
    import numpy as np

# --------------------------------------------------------------------------- the estimate

COVERAGE = 0.9  # the stated rate of the jackknife interval
ESTIMATE_METHOD = ("interpolated between the released checkpoints, log-linear in Mult-Adds "
                   "within a width, across widths along the fitted law "
                   "top = c0 + c1·ln(MACs) + c2·(ln α)²")


@lru_cache(maxsize=None)
def _macs_polynomial(spec_name: str):
    from .closedform import closed_form

    return closed_form(spec_name).macs


@dataclass(frozen=True)
class Estimator:
    """The anchored estimate of one metric of one built-in spec (see the module docstring).

    `curves` holds, for each published width in ascending order, its published (resolution,
    value) points in ascending resolution; `law` is (c0, c1, c2) of the law fitted to the same
    points. `half_width` is the jackknife interval's half-width (None where not worked out)."""

    spec: str
    metric: str
    law: tuple[float, float, float]
    widths: tuple[Fraction, ...]
    curves: tuple[tuple[tuple[int, float], ...], ...]
    base_resolution: int
    half_width: float | None = None
    coverage: float = COVERAGE

    @property
    def alpha_range(self) -> tuple[Fraction, Fraction]:
        return self.widths[0], self.widths[-1]

    @property
    def resolution_range(self) -> tuple[int, int]:
        """Resolutions that every published width has been released at or around."""
        return (max(c[0][0] for c in self.curves), min(c[-1][0] for c in self.curves))

    def _log_macs(self, alpha: "Fraction | np.ndarray", res: "np.ndarray") -> "np.ndarray":
        """ln MACs by the closed form, α (one, or an array) against the resolutions."""
        import numpy as np

        p = _macs_polynomial(self.spec)
        rho = np.asarray(res, dtype=np.float64) / self.base_resolution
        a = np.asarray(alpha, dtype=np.float64)[..., None]
        return np.log(p(a, rho))

    def psi(self, alphas: "Sequence[Fraction] | np.ndarray") -> "np.ndarray":
        """The fitted law at the base resolution, up to its constant: c1·ln MACs + c2·(ln α)²."""
        import numpy as np

        _, c1, c2 = self.law
        a = np.array([float(x) for x in alphas])
        x = self._log_macs(a, np.array([self.base_resolution]))[:, 0]
        return c1 * x + c2 * np.log(a) ** 2

    def width_curve(self, i: int, res: "np.ndarray") -> "np.ndarray":
        """Width i's curve at these resolutions: linear in ln(Mult-Adds) between its published
        points; beyond the first and last (only when a point is left out) the law's slope c1."""
        import numpy as np

        pts = self.curves[i]
        xs = self._log_macs(self.widths[i], np.array([r for r, _ in pts]))
        ys = np.array([v for _, v in pts])
        x = self._log_macs(self.widths[i], res)
        out = np.interp(x, xs, ys)
        c1 = self.law[1]
        out = np.where(x < xs[0], ys[0] + c1 * (x - xs[0]), out)
        return np.where(x > xs[-1], ys[-1] + c1 * (x - xs[-1]), out)

    def predict(self, alphas: Sequence[Fraction], res: "np.ndarray") -> "np.ndarray":
        """The estimate on a grid, [len(alphas), len(res)]; NaN for α outside the widths."""
        import numpy as np

        res = np.asarray(res, dtype=np.int64)
        curves = np.array([self.width_curve(i, res) for i in range(len(self.widths))])
        curves = np.vstack([curves, curves[-1:]])  # so that the last width has a "next"
        inside = np.array([self.widths[0] <= a <= self.widths[-1] for a in alphas], dtype=bool)
        # i: the last published width <= α (exact, on fractions); u: the way to the next one
        i = np.array([bisect.bisect_right(self.widths, a) - 1 if ok else 0
                      for a, ok in zip(alphas, inside)], dtype=np.int64)
        exact = np.array([ok and self.widths[j] == a for a, ok, j in zip(alphas, inside, i)], dtype=bool)
        psi_w = np.append(self.psi(self.widths), np.nan)
        u = np.zeros(len(alphas))
        between = inside & ~exact
        if between.any():
            psi_a = self.psi([a for a, b in zip(alphas, between) if b])
            lo, hi = psi_w[i[between]], psi_w[i[between] + 1]
            u[between] = (psi_a - lo) / (hi - lo)
        out = curves[i] + u[:, None] * (curves[i + 1] - curves[i])
        out[~inside] = np.nan
        return out


def _estimator(spec_name: str, metric: str,
               rows: Sequence[tuple[PublishedAccuracy, int, float]]) -> Estimator:
    by_width: dict[Fraction, list[tuple[int, float]]] = {}
    for p, _, value in rows:
        by_width.setdefault(p.alpha, []).append((p.resolution, value))
    widths = tuple(sorted(by_width))
    coef = _fit(rows)
    return Estimator(spec_name, metric, (coef[0], coef[1], coef[2]), widths,
                     tuple(tuple(sorted(by_width[w])) for w in widths), _builtin(spec_name).resolution)


def _loo_errors(spec_name: str, metric: str,
                rows: Sequence[tuple[PublishedAccuracy, int, float]]) -> list[LooPoint]:
    import numpy as np

    out = []
    for k, (p, macs, value) in enumerate(rows):
        est = _estimator(spec_name, metric, list(rows[:k]) + list(rows[k + 1:]))
        pred = float(est.predict([p.alpha], np.array([p.resolution]))[0, 0])
        out.append(LooPoint(p.alpha, p.resolution, macs, value, pred))
    return out


def jackknife_half_width(errors: Sequence[float], coverage: float = COVERAGE) -> float:
    """The ⌈coverage·(n+1)⌉-th smallest absolute leave-one-out error (infinite when that rank
    exceeds n: too few points for the rate); `util.conformal_half_width`."""
    from ..util import conformal_half_width

    return conformal_half_width(errors, coverage)


def build_estimator(spec_name: str, metric: str,
                    rows: Sequence[tuple[PublishedAccuracy, int, float]]) -> Estimator:
    """The estimator on these published points, with its jackknife interval from them."""
    half = jackknife_half_width([p.error for p in _loo_errors(spec_name, metric, rows)])
    return dataclasses.replace(_estimator(spec_name, metric, rows), half_width=half)


@lru_cache(maxsize=None)
def estimator(spec_name: str = "mobilenet_v1", metric: str = "top1") -> Estimator | None:
    """The anchored estimate of a built-in spec, or None when it has too few checkpoints."""
    if spec_name not in ESTIMATED_SPECS:
        return None
    rows = _points(spec_name, metric)
    if len(rows) < 4:
        return None
    return build_estimator(spec_name, metric, rows)


def estimate_leave_one_out(spec_name: str = "mobilenet_v1", metric: str = "top1") -> list[LooPoint]:
    """Rebuild the estimate without each checkpoint in turn and predict it."""
    return _loo_errors(spec_name, metric, _points(spec_name, metric))


def dominance_bounds(spec: Spec, metric: str, alphas: Sequence[Fraction],
                     resolutions: Sequence[int]) -> tuple["np.ndarray", "np.ndarray"]:
    """For each (α, resolution): the lowest published figure of a point that dominates it
    (≥ α and ≥ resolution; +inf if none) and the highest of a point it dominates (-inf if none)."""
    import numpy as np

    pts = [(a, r, getattr(p, metric)) for (a, r), p in lookup(spec).items()
           if getattr(p, metric) is not None]
    n_a, n_r = len(alphas), len(resolutions)
    upper = np.full((n_a, n_r), np.inf)
    lower = np.full((n_a, n_r), -np.inf)
    if not pts:
        return lower, upper
    pa = sorted({a for a, _, _ in pts})
    pr = sorted({r for _, r, _ in pts})
    # Work on the small table of published α × resolution classes, then gather: a grid cell's
    # bounds depend only on where its α and resolution fall among the published ones.
    up_tab = np.full((len(pa) + 1, len(pr) + 1), np.inf)  # index: how many published values are < it
    lo_tab = np.full((len(pa) + 1, len(pr) + 1), -np.inf)  # index: how many are <= it
    for ia in range(len(pa) + 1):
        for ir in range(len(pr) + 1):
            above = [v for a, r, v in pts if a >= (pa[ia] if ia < len(pa) else math.inf)
                     and r >= (pr[ir] if ir < len(pr) else math.inf)]
            below = [v for a, r, v in pts if ia > 0 and ir > 0 and a <= pa[ia - 1] and r <= pr[ir - 1]]
            up_tab[ia, ir] = min(above, default=np.inf)
            lo_tab[ia, ir] = max(below, default=-np.inf)
    a_lt = np.array([bisect.bisect_left(pa, a) for a in alphas])
    a_le = np.array([bisect.bisect_right(pa, a) for a in alphas])
    res = np.asarray(resolutions, dtype=np.int64)
    r_lt = np.searchsorted(np.array(pr), res, side="left")
    r_le = np.searchsorted(np.array(pr), res, side="right")
    upper = up_tab[a_lt[:, None], r_lt[None, :]]
    lower = lo_tab[a_le[:, None], r_le[None, :]]
    return lower, upper


# --------------------------------------------------------------------------- on a grid

ACCURACY_COLUMNS = ("top1", "top1_low", "top1_high", "top5", "top5_low", "top5_high")


def accuracy_grid(spec: Spec, alphas: Sequence[Fraction],
                  resolutions: Sequence[int]) -> tuple[dict[str, "np.ndarray"], "np.ndarray"]:
    """The accuracy columns (ACCURACY_COLUMNS: [α, R] floats, NaN where unknown) and the source
    codes (index into SOURCES, -1 where unknown). top1_low/top1_high (and top5's) are the
    estimate's jackknife interval, clipped to the published points that bound it; on a published
    row both equal the published figure. The estimate's coordinate is the closed form's
    Mult-Adds, so the grid's own counts are not needed."""
    import numpy as np

    n_a, n_r = len(alphas), len(resolutions)
    cols = {k: np.full((n_a, n_r), np.nan) for k in ACCURACY_COLUMNS}
    code = np.full((n_a, n_r), -1, dtype=np.int8)
    name = builtin_match(spec)
    if name is None:
        return cols, code
    res = np.asarray(resolutions, dtype=np.int64)
    for metric in METRICS:
        est = estimator(name, metric)
        if est is None:
            continue
        lo, hi = est.resolution_range
        rows = np.array([est.alpha_range[0] <= a <= est.alpha_range[1] for a in alphas], dtype=bool)
        keep = (res >= lo) & (res <= hi)
        if not (rows.any() and keep.any()):
            continue
        sub_alphas = [a for a, k in zip(alphas, rows) if k]
        value = est.predict(sub_alphas, res[keep])
        lower, upper = dominance_bounds(spec, metric, sub_alphas, res[keep])
        value = np.minimum(np.maximum(value, lower), upper)
        box = np.ix_(rows, keep)
        cols[metric][box] = value
        cols[f"{metric}_low"][box] = np.maximum(value - est.half_width, lower)
        cols[f"{metric}_high"][box] = np.minimum(value + est.half_width, upper)
        code[box] = SOURCES.index("estimated")
    table = lookup(spec)
    if table:
        a_index = {a: i for i, a in enumerate(alphas)}
        r_index = {int(r): j for j, r in enumerate(resolutions)}
        for (a, r), p in table.items():
            if a in a_index and r in r_index:
                i, j = a_index[a], r_index[r]
                for metric in METRICS:
                    v = getattr(p, metric)
                    for k in (metric, f"{metric}_low", f"{metric}_high"):
                        cols[k][i, j] = np.nan if v is None else v
                code[i, j] = SOURCES.index("published")
    return cols, code


def estimate(spec: Spec | str, alpha: Fraction, resolution: int,
             metric: str = "top1") -> tuple[float | None, str]:
    """One configuration's accuracy and its source ('published', 'estimated', or None and '')."""
    import numpy as np

    s = load_spec(spec)
    cols, code = accuracy_grid(s, [to_fraction(alpha)], [int(resolution)])
    if code[0, 0] < 0 or np.isnan(cols[metric][0, 0]):
        return None, ""
    return float(cols[metric][0, 0]), SOURCES[code[0, 0]]
