"""Where the time goes: per-layer time from torch.profiler beside each layer's Mult-Adds.

The network runs with one `record_function` range per spec layer (`mobilecost.layer.i`)
inside one range for the whole pass (`mobilecost.forward`). A layer's time is its range's
total: CPU time on the CPU, device (kernel) time on CUDA. Time kinds are the paper's: full
convolution, depthwise, pointwise (1×1), fully connected, and `other` — pooling, residual
adds and whatever the pass spends outside any layer. Times are per forward pass, averaged
over the profiled passes.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..engine.cost import layer_cost
from ..lang.kinds import TIME_KIND_LABELS, TIME_KINDS
from ..lang.spec import Layer
from .build import SpecNet


class Options(Protocol):
    """What profiling reads of `timing.MeasureOptions` (timing imports this module for time
    shares; this module never imports timing, so the two form no cycle)."""

    device: str
    threads: int | None

    def resolved(self) -> "Options": ...

def time_kind(layer: Layer) -> str:
    """The time kind of a layer (the kind table's, mobilecost.ops.KINDS)."""
    return layer.kind.time_kind


@dataclass(frozen=True, slots=True)
class LayerTime:
    layer: Layer
    time_ms: float
    macs: int


@dataclass(frozen=True)
class Profile:
    """Per-layer time of one configuration (ms per forward pass)."""

    layers: tuple[LayerTime, ...]
    forward_ms: float  # the whole pass's range
    passes: int
    device: str

    @property
    def outside_ms(self) -> float:
        """Time in the pass outside every layer range (Python glue, the range bookkeeping)."""
        return max(0.0, self.forward_ms - sum(t.time_ms for t in self.layers))

    def by_kind(self) -> dict[str, dict[str, float]]:
        """time_ms, time_share, macs, macs_share and layers per time kind, in TIME_KINDS order."""
        out = {k: {"layers": 0, "time_ms": 0.0, "macs": 0} for k in TIME_KINDS}
        for t in self.layers:
            d = out[time_kind(t.layer)]
            d["layers"] += 1
            d["time_ms"] += t.time_ms
            d["macs"] += t.macs
        out["other"]["time_ms"] += self.outside_ms
        total_t = sum(d["time_ms"] for d in out.values()) or 1.0
        total_m = sum(d["macs"] for d in out.values()) or 1
        for d in out.values():
            d["time_share"] = d["time_ms"] / total_t
            d["macs_share"] = d["macs"] / total_m
        return out


@contextmanager
def _native_stderr_silenced():
    """Send file descriptor 2 to /dev/null: the profiler's native start/stop log lines
    ("USDT: ... profiler_start") would otherwise break the progress bar."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_model(model: SpecNet, x: torch.Tensor, options: Options, passes: int = 10,
                  warmup: int = 3) -> Profile:
    """Profile `passes` forward passes of a built network (after `warmup` untimed ones).

    `model` and `x` come as `timing.prepare` leaves them: on the device, in the dtype and
    memory format of `options` (`torch.report.profile_config` does all of it from a spec).
    """
    from torch.profiler import ProfilerActivity, profile

    options = options.resolved()
    activities = [ProfilerActivity.CPU]
    cuda = options.device == "cuda"
    if cuda:
        activities.append(ProfilerActivity.CUDA)
        torch.backends.cudnn.benchmark = True
    previous = torch.get_num_threads()
    torch.set_num_threads(options.threads)
    model._ranges = True
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            if cuda:
                torch.cuda.synchronize()
            prof = profile(activities=activities)
            with _native_stderr_silenced():
                prof.start()
            try:
                for _ in range(passes):
                    model(x)
                if cuda:
                    torch.cuda.synchronize()
            finally:
                with _native_stderr_silenced():
                    prof.stop()
    finally:
        model._ranges = False
        torch.set_num_threads(previous)
    totals: dict[str, float] = {}
    for ev in prof.events():
        if ev.name.startswith("mobilecost."):
            us = ev.device_time_total if cuda else ev.cpu_time_total
            totals[ev.name] = totals.get(ev.name, 0.0) + us
    per = 1e-3 / passes  # µs summed over passes -> ms per pass
    layers = tuple(LayerTime(layer, totals.get(f"mobilecost.layer.{layer.index}", 0.0) * per,
                             layer_cost(layer).macs) for layer in model.spec_layers)
    return Profile(layers, totals.get("mobilecost.forward", 0.0) * per, passes, options.device)


def time_shares(p: Profile) -> dict[str, Any]:
    """Flat columns time_share_<kind> and macs_share_<kind> for a timing row."""
    row: dict[str, Any] = {}
    for kind, d in p.by_kind().items():
        row[f"time_share_{kind}"] = d["time_share"]
        row[f"macs_share_{kind}"] = d["macs_share"]
    return row


__all__ = ["LayerTime", "Profile", "TIME_KINDS", "TIME_KIND_LABELS", "profile_model",
           "time_kind", "time_shares"]
