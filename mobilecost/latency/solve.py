"""The fits' arithmetic: non-negative least squares (Lawson and Hanson's active set) and the
fit on relative error that the whole-network model and the layer table share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import MobilecostError
from .measurements import MAX_LATENCY_MS, MIN_LATENCY_MS

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


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


def solve_relative(rows: "np.ndarray", latency_ms: "np.ndarray") -> "np.ndarray":
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
