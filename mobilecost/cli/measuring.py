"""The timing options the measuring commands share (`measure`, `profile`, `sweep --measure`,
`calibrate --layers`), read into one `latency.options.Timing`. Importing this module costs
nothing: torch loads only when a command runs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..dtypes import timeable_shorts
from ..latency.options import DEFAULTS, DEVICES, GRID_DEFAULTS, GridTiming, Timing, TimingOptions
from ..runtimes import RUNTIMES
from ..torch import require_torch
from .common import nonempty_path

# The choices of --device and --dtype, from the one table of each.
Device = Enum("Device", {d: d for d in DEVICES}, type=str)  # type: ignore[misc]
Dtype = Enum("Dtype", {d: d for d in timeable_shorts()}, type=str)  # type: ignore[misc]
Runtime = Enum("Runtime", {r: r for r in RUNTIMES}, type=str)  # type: ignore[misc]

BatchOpt = Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size.")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where to run.")]
DtypeOpt = Annotated[Dtype, typer.Option("--dtype", help="Data type of weights and activations.")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", "-t", min=1, help="Intra-op CPU threads \\[default: torch's default].")]
ChannelsLastOpt = Annotated[bool, typer.Option("--channels-last", help="NHWC memory format.")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="Run the model through torch.compile.")]
GraphsOpt = Annotated[bool, typer.Option("--cuda-graphs", help="Replay a captured CUDA graph.")]
TimeShareOpt = Annotated[bool, typer.Option(
    "--time-share", help="Also profile each configuration: each layer kind's share of time "
                         "beside its share of Mult-Adds.")]
MinTimeOpt = Annotated[float, typer.Option(
    "--min-time", min=0.001, help="Seconds of timed runs per configuration and round, at least.")]
MaxTimeOpt = Annotated[float, typer.Option(
    "--max-time", min=0.001, help="Seconds of timed runs per configuration and round, at most "
                                  "(fewer once the IQR is within 10% of the median); not below --min-time.")]
RoundsOpt = Annotated[int, typer.Option(
    "--rounds", min=1, help="Time the whole grid N times, one round after the other; "
                            "latency_ms is the lowest round median (noise only adds time), "
                            "latency_median_ms the median of the round medians.")]
CacheDirOpt = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Measurement cache folder \\[default: "
                        "$MOBILECOST_CACHE_DIR or ~/.cache/mobilecost/measure].",
    parser=nonempty_path("--cache-dir"), metavar="<path>")]
RuntimeOpt = Annotated[Runtime, typer.Option(
    "--runtime", help="What runs the network: torch, or ONNX Runtime (CPU execution provider, "
                      "fp32) on the file `export` writes (needs mobilecost\\[onnx]), or "
                      "ExecuTorch (XNNPACK, .pte; mobilecost\\[executorch]) or LiteRT (.tflite; "
                      "mobilecost\\[litert]) on theirs.")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Measure again even what the cache holds.")]

# The commands' defaults, each defined once in latency.options.
DEFAULT_BATCH = DEFAULTS.batch
DEFAULT_DEVICE = Device(DEFAULTS.device)
DEFAULT_DTYPE = Dtype(DEFAULTS.dtype)
DEFAULT_MIN_TIME_S = DEFAULTS.min_run_time_s
DEFAULT_MAX_TIME_S = DEFAULTS.max_run_time_s
DEFAULT_ROUNDS = GRID_DEFAULTS.rounds
DEFAULT_RUNTIME = Runtime(DEFAULTS.runtime)


def timing_of(*, batch: int = DEFAULTS.batch, device: Any = DEFAULTS.device,
              dtype: Any = DEFAULTS.dtype, threads: int | None = DEFAULTS.threads,
              channels_last: bool = DEFAULTS.channels_last, compile: bool = DEFAULTS.compile,
              cuda_graphs: bool = DEFAULTS.cuda_graphs, min_time: float = DEFAULTS.min_run_time_s,
              max_time: float = DEFAULTS.max_run_time_s, runtime: Any = DEFAULTS.runtime,
              rounds: int = GRID_DEFAULTS.rounds, time_share: bool = GRID_DEFAULTS.time_share,
              cache_dir: Path | None = GRID_DEFAULTS.cache_dir, fresh: bool = GRID_DEFAULTS.fresh,
              torch_needed: bool = False) -> Timing:
    """The timing options as given on the command line, as one `Timing`, checked before any
    work (a bad combination is one line); with `torch_needed`, torch and the runtime's
    packages must be installed (one line saying how, if not)."""
    runtime = getattr(runtime, "value", runtime)
    timing = Timing(TimingOptions(batch=batch, device=getattr(device, "value", device),
                                  dtype=getattr(dtype, "value", dtype), threads=threads,
                                  channels_last=channels_last, compile=compile,
                                  cuda_graphs=cuda_graphs, min_run_time_s=min_time,
                                  max_run_time_s=max_time, runtime=runtime),
                    GridTiming(rounds=rounds, time_share=time_share, cache_dir=cache_dir,
                               fresh=fresh))
    if torch_needed:
        require_torch()
        from ..torch.runtimes import require

        require(runtime, f"--runtime {runtime}")
    return timing


__all__ = ["DEFAULT_BATCH", "DEFAULT_DEVICE", "DEFAULT_DTYPE", "DEFAULT_MAX_TIME_S",
           "DEFAULT_MIN_TIME_S", "DEFAULT_ROUNDS", "DEFAULT_RUNTIME", "BatchOpt", "CacheDirOpt", "ChannelsLastOpt", "CompileOpt", "DeviceOpt", "DtypeOpt",
           "FreshOpt", "GraphsOpt", "MaxTimeOpt", "MinTimeOpt", "RoundsOpt", "RuntimeOpt",
           "ThreadsOpt", "TimeShareOpt", "timing_of"]
