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


def all_quiet(monkeypatch) -> None:
    """Take every real timing as quiet: on a shared test machine they often are not, and the
    tests that count measurements (or cache hits) must not depend on the machine's load. The
    noise rule is read where a timing is taken and where a cache entry is served."""
    from mobilecost.torch import cache, timing

    monkeypatch.setattr(timing, "noise", lambda row: "")
    monkeypatch.setattr(cache, "noise", lambda row: "")
