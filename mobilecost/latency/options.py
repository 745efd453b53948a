"""The timing options and their defaults, defined once (no torch needed to hold or check them).

`TimingOptions` is everything besides the configuration that changes one measurement; the
torch backend's `MeasureOptions` is the same fields plus `resolved()`. `GridTiming` adds how a
grid is timed (rounds, time shares, the cache); `Timing` holds both. `measure`, `profile` and `sweep --measure`
take their command-line defaults from `DEFAULTS` and `GRID_DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from ..dtypes import eager_shorts, timeable_shorts
from ..errors import ConfigError
from ..runtimes import PROFILED, RUNTIMES

DEVICES: tuple[str, ...] = ("cpu", "cuda")
# What runs the network is a runtime of the runtime table (mobilecost.runtimes): torch eager
# (with --compile, --cuda-graphs), or another runtime on its own model file (CPU, fp32).
# A timing is noisy when its interquartile range exceeds this share of its median.
NOISY_IQR = 0.10


@dataclass(frozen=True, slots=True)
class TimingOptions:
    """Everything besides the configuration that changes a measurement."""

    batch: int = 1
    device: str = "cpu"
    dtype: str = "fp32"
    threads: int | None = None  # None: torch's current number of intra-op threads
    channels_last: bool = False
    compile: bool = False
    cuda_graphs: bool = False
    min_run_time_s: float = 1.0  # adaptive_autorange's minimum timed time
    max_run_time_s: float = 10.0
    runtime: str = "torch"

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.dtype not in timeable_shorts():
            raise ConfigError(f"dtype must be one of {', '.join(timeable_shorts())}, got {self.dtype!r}")
        rt = RUNTIMES.get(self.runtime)
        if rt is not None and not rt.file_format and self.dtype not in eager_shorts():
            quantizing = [r.name for r in RUNTIMES.values() if self.dtype in r.quantizes]
            raise ConfigError(f"--dtype {self.dtype}: torch runs {', '.join(eager_shorts())}; "
                              f"an {self.dtype} network runs from a quantized file on --runtime "
                              f"{' or '.join(quantizing)}")
        if rt is not None and rt.file_format and self.dtype != "fp32" \
                and self.dtype not in rt.quantizes:
            raise ConfigError(f"--dtype {self.dtype}: --runtime {self.runtime} runs fp32"
                              + (f" or {', '.join(rt.quantizes)}" if rt.quantizes else "")
                              + " files")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.cuda_graphs and self.device != "cuda":
            raise ConfigError("--cuda-graphs needs --device cuda")
        if self.cuda_graphs and self.compile:
            raise ConfigError("use either --compile or --cuda-graphs, not both")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if RUNTIMES[self.runtime].file_format:  # it runs the exported file: fp32, on the CPU
            torch_only = [o for o, on in (("--device cuda", self.device != "cpu"),
                                          ("--channels-last", self.channels_last),
                                          ("--compile", self.compile),
                                          ("--cuda-graphs", self.cuda_graphs)) if on]
            if torch_only:
                raise ConfigError(f"{', '.join(torch_only)}: not with --runtime {self.runtime} "
                                  f"(it runs its file on the CPU)")
        if not 0 < self.min_run_time_s <= self.max_run_time_s:
            raise ConfigError(f"--min-time ({self.min_run_time_s:g} s) must be > 0 and not above "
                              f"--max-time ({self.max_run_time_s:g} s)")

    @property
    def memory_format(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"


@dataclass(frozen=True, slots=True)
class GridTiming:
    """How a grid is timed, besides the options of each measurement."""

    rounds: int = 1
    time_share: bool = False
    cache_dir: Path | None = None
    fresh: bool = False

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ConfigError(f"rounds must be >= 1, got {self.rounds}")


DEFAULTS = TimingOptions()
GRID_DEFAULTS = GridTiming()


@dataclass(frozen=True, slots=True)
class Timing:
    """How to time, as one object: the options of each measurement and how a grid is timed,
    checked together (time shares need a runtime that times each layer)."""

    options: TimingOptions = DEFAULTS
    grid: GridTiming = GRID_DEFAULTS

    def __post_init__(self) -> None:
        if self.grid.time_share and self.options.runtime not in PROFILED:
            raise ConfigError(f"--time-share: not with --runtime {self.options.runtime} (its "
                              f"XNNPACK delegate runs the network as one call; per-layer time "
                              f"comes from --runtime {' or '.join(PROFILED)})")

    @property
    def batch(self) -> int:
        return self.options.batch

    @property
    def rounds(self) -> int:
        return self.grid.rounds

    @property
    def time_share(self) -> bool:
        return self.grid.time_share

    def changed(self) -> list[str]:
        """The options set away from their defaults, as written on the command line."""
        return changed(self.options, self.grid)

# The command-line spelling of each field, where it is not --field-with-dashes.
OPTION_NAMES = {"min_run_time_s": "--min-time", "max_run_time_s": "--max-time"}


def option_name(field: str) -> str:
    return OPTION_NAMES.get(field, "--" + field.replace("_", "-"))


def changed(options: TimingOptions, grid: GridTiming = GRID_DEFAULTS) -> list[str]:
    """The options set away from their defaults, as written on the command line."""
    out = []
    for obj, default in ((options, DEFAULTS), (grid, GRID_DEFAULTS)):
        out += [option_name(f.name) for f in fields(obj)
                if getattr(obj, f.name) != getattr(default, f.name)]
    return out


__all__ = ["DEFAULTS", "DEVICES", "GRID_DEFAULTS", "GridTiming", "NOISY_IQR", "Timing", "TimingOptions",
           "changed", "option_name"]
