"""Timing options and the measuring loop shared by `measure` and `sweep --measure`.

Importing this module costs nothing: torch and rich.progress load inside `run_grid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..sweepreport import setting_note, timing_note  # noqa: F401  (their home is the library)
from ..util import format_number
from ..torch import require_torch
from .common import err_console, fail


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class Dtype(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


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
                                  "(fewer once the IQR is within 10% of the median).")]
RoundsOpt = Annotated[int, typer.Option(
    "--rounds", min=1, help="Time the whole grid N times, one round after the other; "
                            "latency_ms is the lowest round median (noise only adds time), "
                            "latency_median_ms the median of the round medians.")]
CacheDirOpt = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Measurement cache folder \\[default: "
                        "$MOBILECOST_CACHE_DIR or ~/.cache/mobilecost/measure].")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Measure again even what the cache holds.")]

DEFAULT_MIN_TIME_S = 1.0
DEFAULT_MAX_TIME_S = 10.0


@dataclass(frozen=True, slots=True)
class TimingArgs:
    """The timing options as given on the command line (no torch needed to hold them)."""

    batch: int = 1
    device: Device = Device.cpu
    dtype: Dtype = Dtype.fp32
    threads: int | None = None
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    min_time_s: float = DEFAULT_MIN_TIME_S
    max_time_s: float = DEFAULT_MAX_TIME_S
    rounds: int = 1
    time_share: bool = False
    cache_dir: Path | None = None
    fresh: bool = False

    def changed(self) -> list[str]:
        """The options set away from their defaults, as written on the command line."""
        default = TimingArgs()
        names = {"min_time_s": "min-time", "max_time_s": "max-time", "cuda_graphs": "cuda-graphs",
                 "channels_last": "channels-last", "time_share": "time-share",
                 "cache_dir": "cache-dir"}
        return [f"--{names.get(f, f)}" for f in self.__dataclass_fields__
                if getattr(self, f) != getattr(default, f)]

    def options(self):
        """torch's MeasureOptions (imports torch)."""
        from ..torch.timing import MeasureOptions

        return MeasureOptions(batch=self.batch, device=self.device.value, dtype=self.dtype.value,
                              threads=self.threads, channels_last=self.channels_last,
                              compile=self.compile, cuda_graphs=self.cuda_graphs,
                              min_run_time_s=self.min_time_s,
                              max_run_time_s=max(self.min_time_s, self.max_time_s))


def run_grid(spec, configs: list[tuple[Any, int]], args: TimingArgs) -> list[dict[str, Any]]:
    """Time `configs` of `spec` with a progress bar on stderr, through the measurement cache.

    Ctrl-C ends the command with exit code 130 and one line saying how many measurements
    were kept (they are in the cache, so running the same command again resumes).
    """
    require_torch()
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    from ..torch.timing import GridInterrupted, MeasurementCache, default_cache_dir, measure_grid

    options = args.options()
    options.resolved()  # no GPU for --device cuda: one line, before the progress bar starts
    cache = MeasurementCache(args.cache_dir or default_cache_dir())
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                        transient=True)
    rounds = args.rounds
    with progress:
        task = progress.add_task(f"measuring {spec.name}", total=len(configs) * rounds)

        def step(done: int, total: int, row: dict[str, Any]) -> None:
            latency = "error" if row["error"] else f"{row['latency_ms']:.2f} ms"
            where = f" round {row['round']}/{rounds}" if rounds > 1 else ""
            progress.update(task, completed=done, description=(
                f"{spec.name} α={format_number(row['alpha'])} {row['resolution']}{where}: "
                f"{latency}" + (" (cached)" if row["cached"] else "")))

        try:
            return measure_grid(spec, configs, options, cache, fresh=args.fresh,
                                time_share=args.time_share, on_progress=step, rounds=rounds)
        except GridInterrupted as exc:
            progress.stop()
            what = "configurations" if rounds == 1 else "measurements (configurations × rounds)"
            raise fail(f"interrupted after {len(exc.rows)} of {exc.total} {what}; "
                       f"the {len(exc.rows)} measured are kept in the cache {cache.folder}, "
                       f"run the same command again to resume", 130) from None


__all__ = ["BatchOpt", "CacheDirOpt", "ChannelsLastOpt", "CompileOpt", "Device", "DeviceOpt",
           "Dtype", "DtypeOpt", "FreshOpt", "GraphsOpt", "MaxTimeOpt", "MinTimeOpt", "RoundsOpt",
           "ThreadsOpt", "TimeShareOpt", "TimingArgs", "run_grid",
           "setting_note", "timing_note"]
