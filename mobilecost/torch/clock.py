"""Timing one callable: the network prepared on its device, dtype and memory format (compiled
or captured as a CUDA graph where asked), timed by torch.utils.benchmark's adaptive_autorange;
the machine's load and when a timing is noisy."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from ..dtypes import DTYPES as _DTYPE_TABLE
from ..errors import MobilecostError
from ..latency.options import NOISY_IQR, TimingOptions

# torch's dtype for each short name torch runs a network in (the one dtype table, mobilecost.dtypes).
DTYPES = {d.short: getattr(torch, d.name) for d in _DTYPE_TABLE if d.eager}


class DeviceError(MobilecostError):
    """The asked device is not there (no GPU for --device cuda)."""


@dataclass(frozen=True, slots=True)
class MeasureOptions(TimingOptions):
    """The timing options (latency.options, fields and defaults defined there),
    with what needs torch: the device checked and the thread count filled in."""

    def resolved(self) -> "MeasureOptions":
        """Options with `threads` filled in, after checking that the device exists."""
        check_device(self.device)
        return replace(self, threads=self.threads or torch.get_num_threads())

    @staticmethod
    def of(options: TimingOptions) -> "MeasureOptions":
        if isinstance(options, MeasureOptions):
            return options
        return MeasureOptions(**{f: getattr(options, f) for f in TimingOptions.__dataclass_fields__})


def machine_load() -> tuple[float | None, int]:
    """The 1-minute load average (None where the system has none) and the number of cores."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = None
    return load, os.cpu_count() or 1


def noise(row: dict[str, Any]) -> str:
    """Why a timing row is noisy ('' when it is not): its IQR large against its median, or
    the machine's load above its cores while it was taken."""
    why = []
    median, iqr = row.get("latency_ms"), row.get("latency_iqr_ms")
    if median and iqr is not None and iqr > NOISY_IQR * median:
        why.append(f"IQR {iqr / median:.0%} of the median")
    load, cores = row.get("load"), row.get("cores")
    if load is not None and cores and load > cores:
        why.append(f"load {load:.1f} on {cores} cores")
    return ", ".join(why)


def check_device(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA GPU is available to this torch "
                          f"({torch.__version__}); use --device cpu")


def device_name(device: str) -> str:
    """The GPU's name, or the CPU model as lscpu / /proc/cpuinfo name it."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- one measurement

def prepare(model: torch.nn.Module, x: torch.Tensor, options: MeasureOptions):
    """Move model and input to the device, dtype and memory format; return (callable, input)."""
    dtype = DTYPES[options.dtype]
    fmt = torch.channels_last if options.channels_last else torch.contiguous_format
    model = model.to(device=options.device, dtype=dtype, memory_format=fmt).eval()
    x = x.to(device=options.device, dtype=dtype).contiguous(memory_format=fmt)
    fn: Callable[[torch.Tensor], torch.Tensor] = model
    if options.compile:
        fn = torch.compile(model)
    if options.cuda_graphs:
        fn = _cuda_graph(model, x)
    return fn, x


def _cuda_graph(model: torch.nn.Module, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Capture one forward pass in a CUDA graph; the returned callable replays it."""
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream), torch.inference_mode():
        for _ in range(3):
            model(static_x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        static_y = model(static_x)

    def replay(inp: torch.Tensor) -> torch.Tensor:
        if inp is not static_x:
            static_x.copy_(inp)
        graph.replay()
        return static_y

    return replay


def _cuda_sync_timer() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def time_callable(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, options: MeasureOptions,
                  label: str = "forward"):
    """A torch.utils.benchmark Measurement of `fn(x)` under inference mode."""
    from torch.utils import benchmark

    if options.device == "cuda":
        torch.backends.cudnn.benchmark = True
    with torch.inference_mode():
        for _ in range(2):  # first calls: allocation, cudnn algorithm search, compilation
            fn(x)
        if options.device == "cuda":
            torch.cuda.synchronize()
        timer = benchmark.Timer(
            stmt="fn(x)", globals={"fn": fn, "x": x}, label=label,
            num_threads=options.threads or torch.get_num_threads(),
            timer=_cuda_sync_timer if options.device == "cuda" else time.perf_counter)
        return timer.adaptive_autorange(threshold=0.1, min_run_time=options.min_run_time_s,
                                        max_run_time=options.max_run_time_s)


def _record_error(row: dict[str, Any], exc: RuntimeError, options: MeasureOptions) -> None:
    """A torch error in one measurement, in its row's `error` (its first line, 200
    characters); on a GPU the allocator's cache is emptied so the grid can go on."""
    row["error"] = ("out of memory: " if is_out_of_memory(exc) else "") + \
        str(exc).strip().splitlines()[0][:200]
    if options.device == "cuda":
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text
            or "can't allocate memory" in text)
