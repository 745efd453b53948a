"""torch itself: the built module run eagerly (or compiled, or as a CUDA graph), on the CPU or
a GPU, in any timeable dtype and memory format (`torch.clock.prepare`); its layers are timed
by torch's profiler (`torch.profile.profile_model`)."""

from __future__ import annotations

from typing import Any

import torch

from ..build import SpecNet
from ..clock import prepare as prepare_module
from ..profile import Profile, profile_model
from . import Prepared


def version() -> str:
    return torch.__version__


def prepare(model: SpecNet, options: Any, data: bytes | None = None) -> Prepared:
    fn, x = prepare_module(model, model.example_input(options.batch), options)
    return Prepared(fn, x)


def profile(model: SpecNet, options: Any, passes: int = 10, warmup: int = 3,
            prepared: Prepared | None = None) -> Profile:
    x = prepared.x if prepared is not None else prepare(model, options).x
    return profile_model(model, x, options, passes=passes, warmup=warmup)


def profile_notes(opts: Any, prof: Profile, total_ms: float) -> list[str]:
    """What a profile's report says of how it was taken."""
    from ..clock import device_name

    where = "device (kernel) time" if opts.device == "cuda" else "CPU time"
    return [f"{device_name(opts.device)} ({opts.device}), torch {version()}, {opts.threads} "
            f"threads, {opts.dtype}, batch {opts.batch}, {opts.memory_format}; {where} per "
            f"forward pass, mean of {prof.passes} profiled passes (sum of kinds "
            f"{total_ms:.3f} ms).",
            "Other: pooling, residual adds, and time in the pass outside any layer range "
            f"({prof.outside_ms:.3f} ms). Profiler ranges add a little overhead per layer; use "
            "`measure` for latency."]


__all__ = ["prepare", "profile", "profile_notes", "version"]
