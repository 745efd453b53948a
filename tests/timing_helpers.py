"""A stand-in for torch.utils.benchmark's Measurement in the timing tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeMeasurement:
    """What time_callable returns: torch.utils.benchmark's Measurement, the fields read."""

    median: float
    iqr: float
    times: list = field(default_factory=lambda: [0.0] * 10)
    number_per_run: int = 1
