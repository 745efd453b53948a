"""Timing options and the measuring loop shared by `measure` and `sweep --measure`.

Importing this module costs nothing: torch and rich.progress load inside `run_grid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..dtypes import timeable_shorts
from ..errors import MobilecostError
from ..latency.options import (
    DEFAULTS,
    DEVICES,
    GRID_DEFAULTS,
    PROFILED_RUNTIMES,
    RUNTIMES,
    GridTiming,
    TimingOptions,
    changed,
)
from ..torch import require_torch
from ..util import format_number
from .common import err_console, fail

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
                        "$MOBILECOST_CACHE_DIR or ~/.cache/mobilecost/measure].")]
RuntimeOpt = Annotated[Runtime, typer.Option(
    "--runtime", help="What runs the network: torch, or ONNX Runtime (CPU execution provider, "
                      "fp32) on the file `export` writes (needs mobilecost\\[onnx]), or "
                      "ExecuTorch (XNNPACK, .pte; mobilecost\\[executorch]) or LiteRT (.tflite; "
                      "mobilecost\\[litert]) on theirs.")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Measure again even what the cache holds.")]

# The commands' defaults, each defined once in mobilecost.timing_options.
DEFAULT_BATCH = DEFAULTS.batch
DEFAULT_DEVICE = Device(DEFAULTS.device)
DEFAULT_DTYPE = Dtype(DEFAULTS.dtype)
DEFAULT_MIN_TIME_S = DEFAULTS.min_run_time_s
DEFAULT_MAX_TIME_S = DEFAULTS.max_run_time_s
DEFAULT_ROUNDS = GRID_DEFAULTS.rounds
DEFAULT_RUNTIME = Runtime(DEFAULTS.runtime)


@dataclass(frozen=True, slots=True)
class TimingArgs:
    """The timing options as given on the command line, checked (no torch needed)."""

    options: TimingOptions = DEFAULTS
    grid: GridTiming = GRID_DEFAULTS

    @staticmethod
    def of(batch: int = DEFAULTS.batch, device: Any = DEFAULTS.device, dtype: Any = DEFAULTS.dtype,
           threads: int | None = DEFAULTS.threads, channels_last: bool = DEFAULTS.channels_last,
           compile: bool = DEFAULTS.compile, cuda_graphs: bool = DEFAULTS.cuda_graphs,
           min_time: float = DEFAULTS.min_run_time_s, max_time: float = DEFAULTS.max_run_time_s,
           rounds: int = GRID_DEFAULTS.rounds, time_share: bool = GRID_DEFAULTS.time_share,
           cache_dir: Path | None = GRID_DEFAULTS.cache_dir, fresh: bool = GRID_DEFAULTS.fresh,
           runtime: Any = DEFAULTS.runtime) -> "TimingArgs":
        """From the command's options; a bad combination (--min-time above --max-time) is a
        MobilecostError here, before any work."""
        runtime = getattr(runtime, "value", runtime)
        if time_share and runtime not in PROFILED_RUNTIMES:
            raise MobilecostError(f"--time-share: not with --runtime {runtime} (its XNNPACK "
                                  f"delegate runs the network as one call; per-layer time "
                                  f"comes from --runtime {' or '.join(PROFILED_RUNTIMES)})")
        return TimingArgs(
            TimingOptions(batch, getattr(device, "value", device), getattr(dtype, "value", dtype), threads,
                          channels_last, compile, cuda_graphs, min_time, max_time,
                          getattr(runtime, "value", runtime)),
            GridTiming(rounds, time_share, cache_dir, fresh))

    @property
    def rounds(self) -> int:
        return self.grid.rounds

    @property
    def time_share(self) -> bool:
        return self.grid.time_share

    def changed(self) -> list[str]:
        """The options set away from their defaults, as written on the command line."""
        return changed(self.options, self.grid)

    def measure_options(self):
        """torch's MeasureOptions (imports torch); with --runtime onnxruntime, executorch or
        litert, that runtime must be installed (one line saying how, if not)."""
        if self.options.runtime != "torch":
            from ..torch import require_runtime

            require_runtime(self.options.runtime, f"--runtime {self.options.runtime}")
        from ..torch.timing import MeasureOptions

        return MeasureOptions.of(self.options)


def run_grid(spec, configs: list[tuple[Any, int]], args: TimingArgs) -> list[dict[str, Any]]:
    """Time `configs` of `spec` with a progress bar on stderr, through the measurement cache.

    Ctrl-C ends the command with exit code 130 and one line saying how many measurements
    were kept (they are in the cache, so running the same command again resumes).
    """
    require_torch()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..torch.timing import GridInterrupted, MeasurementCache, default_cache_dir, measure_grid

    options = args.measure_options()
    options.resolved()  # no GPU for --device cuda: one line, before the progress bar starts
    cache = MeasurementCache(args.grid.cache_dir or default_cache_dir())
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                        transient=True)
    rounds = args.rounds
    with progress:
        task = progress.add_task(f"measuring {spec.name}", total=len(configs) * rounds)

        def step(done: int, total: int, row: dict[str, Any]) -> None:
            latency = "error" if row["error"] else f"{row['latency_ms']:.2f} ms" + (
                " (noisy)" if row.get("noisy") else "")
            where = f" round {row['round']}/{rounds}" if rounds > 1 else ""
            progress.update(task, completed=done, description=(
                f"{spec.name} α={format_number(row['alpha'])} {row['resolution']}{where}: "
                f"{latency}" + (" (cached)" if row["cached"] else "")))

        warnings: list[str] = []
        try:
            rows = measure_grid(spec, configs, options, cache, fresh=args.grid.fresh,
                                time_share=args.time_share, on_progress=step, rounds=rounds,
                                on_warning=warnings.append)
        except GridInterrupted as exc:
            progress.stop()
            what = "configurations" if rounds == 1 else "measurements (configurations × rounds)"
            raise fail(f"interrupted after {len(exc.rows)} of {exc.total} {what}; "
                       f"the {len(exc.rows)} measured are kept in the cache {cache.folder}, "
                       f"run the same command again to resume", 130) from None
    for message in warnings:
        err_console.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)
    return rows


__all__ = ["BatchOpt", "CacheDirOpt", "ChannelsLastOpt", "CompileOpt", "DEFAULT_BATCH", "DEFAULT_DEVICE",
           "DEFAULT_DTYPE", "DEFAULT_MAX_TIME_S", "DEFAULT_MIN_TIME_S", "DEFAULT_ROUNDS",
           "DEFAULT_RUNTIME", "Device", "DeviceOpt", "Dtype", "DtypeOpt", "FreshOpt", "GraphsOpt",
           "MaxTimeOpt", "MinTimeOpt", "RoundsOpt", "Runtime", "RuntimeOpt", "ThreadsOpt",
           "TimeShareOpt", "TimingArgs", "run_grid"]
