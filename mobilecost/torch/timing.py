"""Time a built network with torch.utils.benchmark, one configuration or a whole grid.

A measurement is the median latency of one forward pass (`latency_ms`) over the timed runs
of `Timer.adaptive_autorange` (after its warm-up), with the interquartile range of those
runs (`latency_iqr_ms`). Inference runs under `torch.inference_mode()` with batchnorm in eval
mode; on CUDA the timer synchronises the device and `cudnn.benchmark` is on.

`measure_grid` times many (α, resolution) configurations and keeps each result in a
`MeasurementCache` as soon as it is measured, so an interrupted grid resumes where it stopped.
With `rounds` > 1 it times the whole grid that many times, rounds interleaved (round 1 over
every configuration, then round 2, ...), so that a burst of load on a shared machine hits one
round of a configuration rather than all of them. It reports the lowest round median
(`latency_ms`: noise only ever adds time, as the timeit documentation advises) and the median
of the round medians (`latency_median_ms`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from ..errors import ConfigError, MobilecostError
from ..util import format_number, write_atomic
from ..spec import Spec, format_spec, load_spec, to_fraction

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEVICES = ("cpu", "cuda")

# The columns of every timing row, in order (a latency model reads the first five).
ROW_COLUMNS = ("spec", "alpha", "resolution", "batch", "latency_ms", "latency_iqr_ms",
               "latency_median_ms", "rounds", "runs", "calls_per_run", "device", "device_name",
               "torch_version", "threads", "dtype", "memory_format", "compile", "cuda_graphs", "macs", "params", "cached", "error")


class DeviceError(MobilecostError):
    """The asked device is not there (no GPU for --device cuda)."""


@dataclass(frozen=True, slots=True)
class MeasureOptions:
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

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ConfigError(f"batch must be >= 1, got {self.batch}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if self.cuda_graphs and self.device != "cuda":
            raise ConfigError("--cuda-graphs needs --device cuda")
        if self.cuda_graphs and self.compile:
            raise ConfigError("use either --compile or --cuda-graphs, not both")
        if not 0 < self.min_run_time_s <= self.max_run_time_s:
            raise ConfigError("min run time must be > 0 and not above the max run time")

    @property
    def memory_format(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"

    def resolved(self) -> "MeasureOptions":
        """Options with `threads` filled in, after checking that the device exists."""
        check_device(self.device)
        return replace(self, threads=self.threads or torch.get_num_threads())


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


def _row_base(spec: Spec, alpha: Fraction, resolution: int, options: MeasureOptions,
              dev_name: str) -> dict[str, Any]:
    from ..cost import cost

    c = cost(spec, alpha, resolution)
    return {"spec": spec.name, "alpha": alpha, "resolution": resolution, "batch": options.batch,
            "latency_ms": None, "latency_iqr_ms": None, "latency_median_ms": None, "rounds": 1,
            "runs": None, "calls_per_run": None,
            "device": options.device, "device_name": dev_name,
            "torch_version": torch.__version__, "threads": options.threads,
            "dtype": options.dtype, "memory_format": options.memory_format,
            "compile": options.compile, "cuda_graphs": options.cuda_graphs,
            "macs": c.macs, "params": c.params, "cached": False, "error": ""}


def is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return (isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text
            or "can't allocate memory" in text)


def measure(spec: Spec | str, alpha: float | Fraction | str, resolution: int | None,
            options: MeasureOptions, time_share: bool = False) -> dict[str, Any]:
    """Time one configuration; a row with the ROW_COLUMNS (and time shares if asked).

    A RuntimeError from torch while building or running (out of memory, a dtype the device
    cannot run) is recorded in the row's `error` and its latency left empty.
    """
    from .build import build_model

    s = load_spec(spec)
    a = to_fraction(alpha)
    res = s.resolution if resolution is None else resolution
    s.build(a, res)  # bad configurations are the user's error, raised before anything runs
    options = options.resolved()
    row = _row_base(s, a, res, options, device_name(options.device))
    try:
        model = build_model(s, a, res)
        fn, x = prepare(model, model.example_input(options.batch), options)
        m = time_callable(fn, x, options, label=f"{s.name} {format_number(a)} {res}")
        row |= {"latency_ms": m.median * 1e3, "latency_iqr_ms": m.iqr * 1e3,
                "latency_median_ms": m.median * 1e3, "runs": len(m.times), "calls_per_run": m.number_per_run}
        if time_share:
            from .profile import profile_model, time_shares

            row |= time_shares(profile_model(model, x, options))
    except RuntimeError as exc:
        row["error"] = ("out of memory: " if is_out_of_memory(exc) else "") + \
            str(exc).strip().splitlines()[0][:200]
        if options.device == "cuda":
            torch.cuda.empty_cache()
    return row


# --------------------------------------------------------------------------- the cache

def default_cache_dir() -> Path:
    """$MOBILECOST_CACHE_DIR, else $XDG_CACHE_HOME/mobilecost/measure, else ~/.cache/..."""
    if os.environ.get("MOBILECOST_CACHE_DIR"):
        return Path(os.environ["MOBILECOST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mobilecost" / "measure"


class MeasurementCache:
    """One JSON file per measurement, named by the hash of everything that changes it.

    The key covers the spec's canonical text (so an edited spec file is a new key), α,
    resolution, every field of the resolved MeasureOptions, whether time shares were taken,
    the device's name, the torch version and the round (rounds after the first only, so that
    round 1 is the measurement a single-round run takes and reuses). Files are written
    atomically, so a run killed at any moment leaves complete entries only; rows with an error
    are not kept (an out-of-memory may pass on a rerun).
    """

    VERSION = 1

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(spec: Spec, alpha: Fraction, resolution: int, options: MeasureOptions,
            dev_name: str, time_share: bool = False, round_index: int = 0) -> str:
        what = {"version": MeasurementCache.VERSION, "spec": format_spec(spec),
                "alpha": str(alpha), "resolution": resolution, "options": asdict(options),
                "time_share": time_share, "device_name": dev_name,
                "torch_version": torch.__version__}
        if round_index:
            what["round"] = round_index
        blob = json.dumps(what, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            text = self.path(key).read_text(encoding="utf-8")
            row = json.loads(text)
        except (OSError, ValueError):
            return None
        if not isinstance(row, dict):
            return None
        row["alpha"] = Fraction(row["alpha"])
        return row

    def put(self, key: str, row: dict[str, Any]) -> None:
        data = dict(row, alpha=str(row["alpha"]))
        data.pop("cached", None)
        try:
            write_atomic(self.path(key), json.dumps(data, sort_keys=True) + "\n")
        except OSError as exc:
            raise MobilecostError(f"cannot write to the measurement cache {self.folder}: "
                                  f"{exc.strerror or exc}") from None

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*.json")) if self.folder.is_dir() else 0


# --------------------------------------------------------------------------- a grid

class GridInterrupted(KeyboardInterrupt):
    """Ctrl-C during `measure_grid`; `rows` holds the measurements finished (all cached, one
    per configuration and round) out of `total`."""

    def __init__(self, rows: list[dict[str, Any]], total: int) -> None:
        super().__init__(f"interrupted after {len(rows)} of {total} measurements")
        self.rows, self.total = rows, total


def combine_rounds(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's row from its rounds: `latency_ms` the lowest round median,
    `latency_median_ms` the median of the round medians, `rounds` how many rounds timed it;
    IQR, runs and time shares come from the round with the lowest median. `cached` only when
    every round came from the cache. Rounds that failed are left out; if all failed, the
    first one's error stands."""
    good = [r for r in rows if not r["error"] and r["latency_ms"] is not None]
    if not good:
        return _ordered(dict(rows[0], rounds=0, cached=all(r["cached"] for r in rows)))
    medians = sorted(r["latency_ms"] for r in good)
    best = min(good, key=lambda r: r["latency_ms"])
    n = len(medians)
    middle = medians[n // 2] if n % 2 else (medians[n // 2 - 1] + medians[n // 2]) / 2
    return _ordered(dict(best, latency_ms=medians[0], latency_median_ms=middle, rounds=n,
                         cached=all(r["cached"] for r in rows)))


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    """The row with ROW_COLUMNS first, in order (cache entries of older versions lack some)."""
    row.setdefault("latency_median_ms", row.get("latency_ms"))
    row.setdefault("rounds", 1)
    row.pop("round", None)
    return {**{k: row.get(k) for k in ROW_COLUMNS}, **row}


def measure_grid(spec: Spec | str, configs: Iterable[tuple[float | Fraction | str, int]],
                 options: MeasureOptions, cache: MeasurementCache | None = None,
                 fresh: bool = False, time_share: bool = False,
                 on_progress: Callable[[int, int, dict[str, Any]], None] | None = None,
                 rounds: int = 1) -> list[dict[str, Any]]:
    """Time every (α, resolution) of `configs`; one row per configuration, in order.

    * A configuration found in `cache` is not measured again (its row has `cached` True)
      unless `fresh`; each new measurement is written to the cache as soon as it is taken.
    * `rounds` > 1 times the whole grid that many times, one round after the other, each
      round cached under its own key; rows combine the rounds (see `combine_rounds`).
    * `time_share` adds each layer kind's share of time and of Mult-Adds (see `profile`).
    * `on_progress(done, total, row)` is called after every measurement (total is
      configurations × rounds; the row has `round`, counted from 1).
    * A torch error in one configuration (out of memory) is recorded in its row's `error`
      and the grid goes on. Ctrl-C raises `GridInterrupted` with the measurements finished
      so far; they are already in the cache, so the same call resumes where it stopped.

    Every configuration is built analytically first, so a bad one fails before any timing.
    """
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    s = load_spec(spec)
    todo = [(to_fraction(a), s.resolution if r is None else int(r)) for a, r in configs]
    for a, r in todo:
        s.build(a, r)
    options = options.resolved()
    dev_name = device_name(options.device)
    total = len(todo) * rounds
    done: list[dict[str, Any]] = []
    try:
        for k in range(rounds):
            for a, r in todo:
                key = MeasurementCache.key(s, a, r, options, dev_name, time_share, k)
                row = None if (cache is None or fresh) else cache.get(key)
                if row is not None:
                    row["cached"] = True
                else:
                    row = measure(s, a, r, options, time_share=time_share)
                    if cache is not None and not row["error"]:
                        cache.put(key, row)
                row["round"] = k + 1
                done.append(row)
                if on_progress is not None:
                    on_progress(len(done), total, row)
    except KeyboardInterrupt:
        raise GridInterrupted(done, total) from None
    n = len(todo)
    return [combine_rounds(done[i::n]) for i in range(n)]


__all__ = ["DTYPES", "DeviceError", "GridInterrupted", "MeasureOptions", "MeasurementCache",
           "ROW_COLUMNS", "check_device", "combine_rounds", "default_cache_dir", "device_name", "measure",
           "measure_grid", "prepare", "time_callable"]
