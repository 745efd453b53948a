"""Which configurations to measure: the D-optimal choice of a few from a grid (`suggest`), how
well a set determines the model (`spread_condition`), a spread subset (`spread_subset`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from ..errors import MobilecostError
from .features import network_features
from .measurements import Config, Point
from .whole import _design_row, min_points

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


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

    macs = [network_features(p.config).total_macs for p in points]
    chosen = [points[macs.index(max(macs))]]
    if n > 1:
        chosen.append(points[macs.index(min(macs))])
    while len(chosen) < n:
        rest = [p for p in points if p not in chosen]
        chosen.append(max(rest, key=lambda p: min(dist(p, c) for c in chosen)))
    return chosen


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

    rows = np.array([_design_row(network_features(c, dtype)) for c in configs], dtype=float)
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

    macs = np.array([network_features(c, dtype).total_macs for c in configs], dtype=float)
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
