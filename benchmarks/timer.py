"""The benchmarks' one timer: contenders run in interleaved rounds, and each is reported as the
median over the rounds with its spread (interquartile range), never the best round.

On a shared machine a round's time is its own work plus whatever else ran meanwhile. Running
the contenders round by round, in an order that changes each round, lets a busy spell hit them
alike; the median is what a round typically took, the IQR how much that moved. A ratio is taken
round by round (each round's two times were measured side by side) and summarised the same way.
Every benchmark prints the machine's load (`machine_line`) beside its figures.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Spread:
    """A median over rounds and its interquartile range (q1, q3)."""

    median: float
    q1: float
    q3: float
    rounds: int

    @staticmethod
    def of(values: list[float]) -> "Spread":
        v = sorted(values)
        if len(v) == 1:
            return Spread(v[0], v[0], v[0], 1)
        q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive")
        return Spread(statistics.median(v), q1, q3, len(v))

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    def text(self, scale: float = 1.0, digits: int = 3, unit: str = "") -> str:
        """'0.123 s (IQR 0.120–0.131, 15 rounds)', values times `scale`."""
        f = f"{{:.{digits}f}}"
        return (f"{f.format(self.median * scale)}{unit} (IQR {f.format(self.q1 * scale)}–"
                f"{f.format(self.q3 * scale)}, {self.rounds} rounds)")


def interleaved(contenders: dict[str, Callable[[], Any]], rounds: int,
                collect: bool = True) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Seconds of each contender in each of `rounds` rounds, and each one's last result. Every
    round runs every contender once, in an order rotated by one each round (so that none is
    always first, or always after the same one); with `collect`, a garbage collection before
    each run, so that one run's garbage is not timed in the next."""
    names = list(contenders)
    times: dict[str, list[float]] = {n: [] for n in names}
    last: dict[str, Any] = {}
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            if collect:
                gc.collect()
            t = time.perf_counter()
            last[name] = contenders[name]()
            times[name].append(time.perf_counter() - t)
    return times, last


def ratio(a: list[float], b: list[float]) -> Spread:
    """a / b round by round (times measured side by side), as a median and IQR."""
    return Spread.of([x / y for x, y in zip(a, b)])


def machine_line() -> str:
    """The machine's cores and load averages, for the record beside every figure."""
    try:
        one, five, fifteen = os.getloadavg()
        load = f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min)"
    except OSError:
        load = "load average unknown"
    return f"machine: {os.cpu_count()} cores, {load}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
