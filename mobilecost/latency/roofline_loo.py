"""The roofline model's leave-one-out (`latency.roofline`): each point predicted by the model
refitted on the others, W½ and φ chosen again in each refit, as `calibrate` and its choice
between the models (`latency.choice`) ask."""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import MobilecostError
from .features import Layers, layers_of
from .measurements import Point
from .roofline import _bound, _check, _fit_grid, _result, _terms, min_points, undetermined

#: Points left out one at a time at most: beyond it, this many spread evenly through the set
#: (each refit still fits on all the others), so 500 points take seconds, not a minute.
LOO_MAX = 60


def held_out(n: int) -> list[int]:
    """Which of n points the roofline's leave-one-out leaves out: all up to LOO_MAX, else
    LOO_MAX of them spread evenly, the first and the last included."""
    if n <= LOO_MAX:
        return list(range(n))
    return sorted({round(i * (n - 1) / (LOO_MAX - 1)) for i in range(LOO_MAX)})


def loo_errors(points: Sequence[Point], dtype: str, unfused: int | None = None,
               on_progress: Callable[[int, int, str], None] | None = None) -> list[float] | None:
    """Leave-one-out relative errors, W½ (and φ unless declared) chosen again in each refit
    (None with too few points or where a refit cannot be determined). Each refit descends
    from the full fit's bounds at its W½ and φ and from the sum form's fit, not from every
    ridge start (`_fit_bound`): 96 points take seconds, not half a minute. Errors of the
    points `held_out` gives, in their order; `on_progress(done, total, text)` after each."""
    import numpy as np

    if len(points) < min_points() + 1:
        return None
    try:
        _check(points, dtype, unfused)
    except MobilecostError:
        return None
    L = layers_of([p.config for p in points], dtype)
    t = np.array([p.latency_ms for p in points], float)
    thetas: dict = {}
    _fit_grid(L, t, unfused, thetas=thetas)
    starts = {(phi, fill): _bound(L, *_terms(L, fill, phi), theta)
              for (phi, fill), theta in thetas.items()}
    errors: list[float] = []
    left_out = held_out(len(points))
    for i in left_out:
        p = points[i]
        rest = [q for j, q in enumerate(points) if j != i]
        if len({q.config for q in rest}) < min_points() or undetermined(rest, dtype):
            return None
        keep = L.config != i
        Li = Layers(np.where(L.config[keep] > i, L.config[keep] - 1, L.config[keep]),
                    L.group[keep], L.macs[keep], L.bytes[keep], L.unfused[keep], L.work[keep],
                    L.n - 1)
        _, fill, phi, theta = _fit_grid(Li, np.delete(t, i), unfused,
                                        {k: v[keep] for k, v in starts.items()})
        model = _result(Li, theta, fill, phi, dtype, rest, unfused)
        try:
            errors.append(model.predict_ms(p.config) / p.latency_ms - 1)
        except MobilecostError:
            return None
        if on_progress is not None:
            on_progress(len(errors), len(left_out), "roofline leave-one-out")
    return errors


__all__ = ["LOO_MAX", "held_out", "loo_errors"]
