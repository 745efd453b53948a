"""The benchmarks' one timer: the fastest of a few runs, the least disturbed by other work on
a shared machine."""

from __future__ import annotations

import gc
import time
from typing import Any, Callable


def best_of(fn: Callable[[], Any], repeats: int = 1, collect: bool = False) -> tuple[float, Any]:
    """The fastest of `repeats` runs of `fn` in seconds, and the last run's result; with
    `collect`, a garbage collection before each run (so one run's garbage is not timed in the
    next)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        if collect:
            gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out
