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

from ..dtypes import DTYPES as _DTYPE_TABLE
from ..errors import ConfigError, MobilecostError
from ..lang.identity import Network
from ..lang.load import load_spec
from ..lang.spec import Spec, checked_configs
from ..lang.values import norm_resolution, resolution_value, to_fraction
from ..latency.options import NOISY_IQR, PROFILED_RUNTIMES, TimingOptions
from ..util import format_number, write_atomic
from .build import SpecNet, build_model
from .profile import Profile, profile_model

# torch's dtype for each timeable short name of the one dtype table (mobilecost.dtypes).
DTYPES = {d.short: getattr(torch, d.name) for d in _DTYPE_TABLE if d.timeable}

# The columns of every timing row, in order (a latency model reads the first five).
ROW_COLUMNS = ("spec", "alpha", "resolution", "batch", "latency_ms", "latency_iqr_ms",
               "latency_median_ms", "rounds", "runs", "calls_per_run", "noisy", "load", "cores",
               "device", "device_name", "torch_version", "threads", "dtype", "memory_format",
               "compile", "cuda_graphs", "runtime", "runtime_version", "graph_optimization",
               "macs", "params", "cached", "error")


class DeviceError(MobilecostError):
    """The asked device is not there (no GPU for --device cuda)."""


@dataclass(frozen=True, slots=True)
class MeasureOptions(TimingOptions):
    """The timing options (mobilecost.timing_options, fields and defaults defined there),
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


def _row_base(spec: Spec, alpha: Fraction, resolution: int, options: MeasureOptions,
              dev_name: str) -> dict[str, Any]:
    from ..engine.cost import cost

    c = cost(spec, alpha, resolution)
    return {"spec": spec.name, "alpha": alpha, "resolution": resolution_value(resolution),
            "batch": options.batch,
            "latency_ms": None, "latency_iqr_ms": None, "latency_median_ms": None, "rounds": 1,
            "runs": None, "calls_per_run": None, "noisy": False, "load": None, "cores": None,
            "device": options.device, "device_name": dev_name,
            "torch_version": torch.__version__, "threads": options.threads,
            "dtype": options.dtype, "memory_format": options.memory_format,
            "compile": options.compile, "cuda_graphs": options.cuda_graphs,
            **_runtime_fields(options),
            "macs": c.macs, "params": c.params, "cached": False, "error": ""}


def runtime_version(runtime: str) -> str:
    """The version of what runs the network."""
    if runtime == "onnxruntime":
        from .runtimes.onnxruntime import ort_version

        return ort_version()
    if runtime == "executorch":
        from .runtimes.executorch import version

        return version()
    if runtime == "litert":
        from .runtimes.litert import version

        return version()
    return torch.__version__


def _runtime_fields(options: MeasureOptions) -> dict[str, Any]:
    """What runs the network: torch, or ONNX Runtime with its version and graph optimisation,
    or a phone runtime with its version (graph_optimization: the delegate that runs it)."""
    if options.runtime == "onnxruntime":
        from .runtimes.onnxruntime import GRAPH_OPTIMIZATION

        optimization = GRAPH_OPTIMIZATION
    else:
        optimization = {"executorch": "XNNPACK delegate", "litert": "XNNPACK delegate"}.get(
            options.runtime, "")
    return {"runtime": options.runtime, "runtime_version": runtime_version(options.runtime),
            "graph_optimization": optimization}


def prepare_runtime(model, options: MeasureOptions) -> tuple[Callable[[Any], Any], Any, bytes]:
    """(callable, input, file) for timing `model` under a runtime other than torch: the file
    exported in memory as `export` writes it, loaded in that runtime."""
    from .export import to_file
    from .runtimes import executorch, litert
    from .runtimes import onnxruntime as ort

    fmt = {"onnxruntime": "onnx", "executorch": "pte", "litert": "tflite"}[options.runtime]
    data = to_file(model, options.batch, fmt=fmt)
    prepare_fn = {"onnxruntime": ort.prepare_ort, "executorch": executorch.prepare,
                  "litert": litert.prepare}[options.runtime]
    fn, x = prepare_fn(model, options.batch, options.threads, data)
    return fn, x, data


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


def measure(spec: Spec | str, alpha: float | Fraction | str, resolution: int | None,
            options: MeasureOptions, time_share: bool = False) -> dict[str, Any]:
    """Time one configuration; a row with the ROW_COLUMNS (and time shares if asked).

    A RuntimeError from torch while building or running (out of memory, a dtype the device
    cannot run) is recorded in the row's `error` and its latency left empty.
    """
    from .build import build_model

    s = load_spec(spec)
    a = to_fraction(alpha)
    res = s.size if resolution is None else norm_resolution(resolution)
    s.build(a, res)  # bad configurations are the user's error, raised before anything runs
    options = MeasureOptions.of(options).resolved()
    row = _row_base(s, a, res, options, device_name(options.device))
    try:
        model = build_model(s, a, res)
        onnx_file = None
        if options.runtime != "torch":
            fn, x, onnx_file = prepare_runtime(model, options)
        else:
            fn, x = prepare(model, model.example_input(options.batch), options)
        m = time_callable(fn, x, options, label=f"{s.name} {format_number(a)} {res}")
        load, cores = machine_load()
        row |= {"latency_ms": m.median * 1e3, "latency_iqr_ms": m.iqr * 1e3,
                "latency_median_ms": m.median * 1e3, "runs": len(m.times), "calls_per_run": m.number_per_run,
                "load": load, "cores": cores}
        row["noisy"] = bool(noise(row))
        if time_share and options.runtime == "onnxruntime":
            from .profile import time_shares
            from .runtimes.onnxruntime import profile_ort

            row |= time_shares(profile_ort(model, options.batch, options.threads,
                                           data=onnx_file)[0])
        elif time_share:
            from .profile import profile_model, time_shares

            row |= time_shares(profile_model(model, x, options))
    except RuntimeError as exc:
        _record_error(row, exc, options)
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

    The key covers the network (its canonical spec text without the `name` line, as the
    latency model identifies networks: an edited spec file is a new key, a renamed copy is
    not), α, resolution, every field of the resolved MeasureOptions, whether time shares were
    taken, the device's name, the torch version and the round (rounds after the first only,
    so that round 1 is the measurement a single-round run takes and reuses). Files are
    written atomically, so a run killed at any moment leaves complete entries only; rows with
    an error are not kept (an out-of-memory may pass on a rerun).

    Entries are checked when read: one that is not a JSON object, or lacks a positive finite
    `latency_ms`, is not served (`lookup` says why) and the configuration is measured again;
    so is a noisy one (see `noise`).
    """

    VERSION = 2

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(spec: Spec, alpha: Fraction, resolution: int, options: MeasureOptions,
            dev_name: str, time_share: bool = False, round_index: int = 0) -> str:
        opts = asdict(options)
        if opts.get("runtime") == "torch":
            del opts["runtime"]  # torch's keys stay those of before the runtime option
        else:
            opts["runtime_version"] = runtime_version(options.runtime)
        what = {"version": MeasurementCache.VERSION, "network": Network.of(spec).body,
                "alpha": str(alpha), "resolution": resolution_value(resolution), "options": opts,
                "time_share": time_share, "device_name": dev_name,
                "torch_version": torch.__version__}
        if round_index:
            what["round"] = round_index
        blob = json.dumps(what, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def lookup(self, key: str) -> tuple[dict[str, Any] | None, str]:
        """The cached row, or None and why it is not served ('' when there is no entry)."""
        path = self.path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, ""
        except (OSError, UnicodeDecodeError) as exc:
            return None, f"cache entry {path} cannot be read ({exc}); measuring again"
        try:
            row = json.loads(text)
            if not isinstance(row, dict):
                raise ValueError(f"a JSON {type(row).__name__}, not an object")
            ms = row.get("latency_ms")
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not (0 < ms < float("inf")):
                raise ValueError(f"latency_ms is {ms!r}, not a positive number")
            iqr = row.get("latency_iqr_ms")
            if iqr is not None and (isinstance(iqr, bool) or not isinstance(iqr, (int, float))
                                    or not 0 <= iqr < float("inf")):
                raise ValueError(f"latency_iqr_ms is {iqr!r}")
            if "layer" not in row:  # a layer's row (measure_layers) has no α
                row["alpha"] = Fraction(row["alpha"])
        except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
            return None, f"cache entry {path} is not a valid measurement ({exc}); measuring again"
        if why := noise(row):
            what = (f"layer {row.get('layer')}" if "layer" in row else
                    f"{row.get('spec')} α={format_number(row['alpha'])} {row.get('resolution')}")
            return None, f"cache entry for {what} was noisy ({why}); measuring again"
        return row, ""

    def get(self, key: str) -> dict[str, Any] | None:
        return self.lookup(key)[0]

    def put(self, key: str, row: dict[str, Any]) -> None:
        data = dict(row) if "layer" in row else dict(row, alpha=str(row["alpha"]))
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
                         noisy=bool(best.get("noisy")), cached=all(r["cached"] for r in rows)))


def _ordered(row: dict[str, Any]) -> dict[str, Any]:
    """The row with ROW_COLUMNS first, in order (cache entries of older versions lack some)."""
    row.setdefault("latency_median_ms", row.get("latency_ms"))
    row.setdefault("rounds", 1)
    row.pop("round", None)
    return {**{k: row.get(k) for k in ROW_COLUMNS}, **row}


NOISY_RETRIES = 1  # a noisy timing is taken again this many times at once, the quietest kept


def measure_grid(spec: Spec | str, configs: Iterable[tuple[float | Fraction | str, int]],
                 options: MeasureOptions, cache: MeasurementCache | None = None,
                 fresh: bool = False, time_share: bool = False,
                 on_progress: Callable[[int, int, dict[str, Any]], None] | None = None,
                 rounds: int = 1,
                 on_warning: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Time every (α, resolution) of `configs`; one row per configuration, in order.

    * A configuration found in `cache` is not measured again (its row has `cached` True)
      unless `fresh`; each new measurement is written to the cache as soon as it is taken.
    * `rounds` > 1 times the whole grid that many times, one round after the other, each
      round cached under its own key; rows combine the rounds (see `combine_rounds`).
    * `time_share` adds each layer kind's share of time and of Mult-Adds (see `profile`).
    * `on_progress(done, total, row)` is called after every measurement (total is
      configurations × rounds; the row has `round`, counted from 1).
    * A noisy timing (IQR above 10% of the median, or the load above the cores; see
      `noise`) is taken again at once (NOISY_RETRIES), the quietest attempt kept; a row that
      stays noisy has `noisy` True, is reported to `on_warning`, and its cache entry is not
      served: the next run measures it again. Bad cache entries are reported and re-measured.
    * A torch error in one configuration (out of memory) is recorded in its row's `error`
      and the grid goes on. Ctrl-C raises `GridInterrupted` with the measurements finished
      so far; they are already in the cache, so the same call resumes where it stopped.

    Every configuration is built analytically first, so a bad one fails before any timing.
    """
    s = load_spec(spec)
    return measure_configs([(s, a, r) for a, r in checked_configs(s, configs)], options, cache,
                           fresh, time_share, on_progress, rounds, on_warning)


def measure_configs(configs: Iterable[tuple[Spec | str, float | Fraction | str, int]],
                    options: MeasureOptions, cache: MeasurementCache | None = None,
                    fresh: bool = False, time_share: bool = False,
                    on_progress: Callable[[int, int, dict[str, Any]], None] | None = None,
                    rounds: int = 1,
                    on_warning: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """`measure_grid` over (spec, α, resolution) triples of several specs: each round times
    every configuration of every spec before the next round begins, so that a machine that
    drifts (another tenant, the clock) over a long run weighs on every spec alike rather
    than on the specs timed last. Same cache keys, rows and errors as `measure_grid`."""
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    named: dict[str, Spec] = {}  # a spec given by name or path is read once
    todo = []
    for spec, a, r in configs:
        s = (named.get(spec) or named.setdefault(spec, load_spec(spec))) if isinstance(spec, str) \
            else load_spec(spec)
        todo += [(s, *c) for c in checked_configs(s, [(a, r)])]
    options = MeasureOptions.of(options).resolved()
    dev_name = device_name(options.device)
    warn = on_warning or (lambda message: None)

    def one(config: tuple[Spec, Fraction, Any], k: int) -> dict[str, Any]:
        s, a, r = config
        key = MeasurementCache.key(s, a, r, options, dev_name, time_share, k)
        row, problem = (None, "") if (cache is None or fresh) else cache.lookup(key)
        if problem:
            warn(problem)
        if row is not None:
            # the key fixes the network, α and resolution; the name may differ (a renamed copy)
            return row | {"cached": True, "spec": s.name, "alpha": a,
                          "resolution": resolution_value(r)}
        row = _measure_quietly(s, a, r, options, time_share, warn)
        if cache is not None and not row["error"]:
            cache.put(key, row)
        return row

    return [combine_rounds(rows) for rows in _in_rounds(todo, rounds, one, on_progress)]


def _in_rounds(items: list, rounds: int, one: Callable[[Any, int], dict[str, Any]],
               on_progress: Callable[[int, int, dict[str, Any]], None] | None
               ) -> list[list[dict[str, Any]]]:
    """Every item timed once per round, the rounds one after the other (`one(item, k)` gives
    its row in round k, `round` added, counted from 1); each item's rows, in item order.
    `on_progress(done, total, row)` after every row; Ctrl-C raises GridInterrupted with the
    rows finished so far."""
    total = len(items) * rounds
    done: list[dict[str, Any]] = []
    try:
        for k in range(rounds):
            for item in items:
                row = one(item, k)
                row["round"] = k + 1
                done.append(row)
                if on_progress is not None:
                    on_progress(len(done), total, row)
    except KeyboardInterrupt:
        raise GridInterrupted(done, total) from None
    n = len(items)
    return [done[i::n] for i in range(n)]


def _measure_quietly(s: Spec, a: Fraction, r: int, options: MeasureOptions, time_share: bool,
                     warn: Callable[[str], None]) -> dict[str, Any]:
    """`measure`, taken again while noisy (up to NOISY_RETRIES times), the quietest kept."""
    row = measure(s, a, r, options, time_share=time_share)
    tries = 0
    while row["noisy"] and not row["error"] and tries < NOISY_RETRIES:
        tries += 1
        again = measure(s, a, r, options, time_share=time_share)
        if not again["error"] and _spread(again) < _spread(row):
            row = again
        if not row["noisy"]:
            break
    if row["noisy"] and not row["error"]:
        warn(f"{s.name} α={format_number(a)} {r}: noisy timing ({noise(row)}) after "
             f"{tries + 1} attempts; flagged, and measured again on the next run")
    return row


def _spread(row: dict[str, Any]) -> float:
    return (row["latency_iqr_ms"] or 0.0) / row["latency_ms"] if row["latency_ms"] else float("inf")


# --------------------------------------------------------------------------- layers one by one

def layer_input_shapes(config, batch: int) -> tuple[tuple[Any, ...], dict[int, list[tuple[int, ...]]]]:
    """The concrete layers of a configuration (a latency.Config) and the shapes of the tensors
    each layer's module is called with, from one forward pass on torch's meta device (no
    memory, no arithmetic; the network's own example input, whatever its sides)."""
    from ..latency.layers import config_layers
    from .build import SpecNet

    layers = config_layers(config)
    with torch.device("meta"):
        net = SpecNet(config.spec, config.alpha, config.resolution, layers).eval()
        x = net.example_input(batch)
    shapes: dict[int, list[tuple[int, ...]]] = {}
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, i=i: shapes.__setitem__(i, [tuple(a.shape) for a in args]))
        for i, m in enumerate(net.layers)]
    try:
        with torch.inference_mode():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return layers, shapes


class _LayerCall(torch.nn.Module):
    """A two-input layer (add, scale) called on a fixed second input (its saved map)."""

    def __init__(self, module: torch.nn.Module, extra: torch.Tensor) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("extra", extra)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x, self.extra)


def measure_layer(layer, shapes: Sequence[tuple[int, ...]], options: MeasureOptions,
                  dev_name: str) -> dict[str, Any]:
    """Time one layer alone on random inputs of its shapes (`layer_input_shapes`); a row with
    the timing fields of ROW_COLUMNS and the layer's shape text (`layer`)."""
    from ..latency.layers import layer_shape
    from .build import layer_module

    shape = layer_shape(layer)
    row: dict[str, Any] = {"layer": shape, "op": layer.op, "batch": options.batch,
                           "latency_ms": None, "latency_iqr_ms": None, "latency_median_ms": None,
                           "rounds": 1, "runs": None, "calls_per_run": None, "noisy": False,
                           "load": None, "cores": None, "device": options.device,
                           "device_name": dev_name, "torch_version": torch.__version__,
                           "threads": options.threads, "dtype": options.dtype,
                           "memory_format": options.memory_format, "compile": options.compile,
                           "cuda_graphs": options.cuda_graphs, "cached": False, "error": ""}
    try:
        torch.manual_seed(0)
        module = layer_module(layer).eval()
        x, *extra = [torch.randn(s) for s in shapes]
        model = _LayerCall(module, extra[0]) if extra else module
        fn, x = prepare(model, x, options)
        m = time_callable(fn, x, options, label=shape)
        load, cores = machine_load()
        row |= {"latency_ms": m.median * 1e3, "latency_iqr_ms": m.iqr * 1e3,
                "latency_median_ms": m.median * 1e3, "runs": len(m.times),
                "calls_per_run": m.number_per_run, "load": load, "cores": cores}
        row["noisy"] = bool(noise(row))
    except RuntimeError as exc:
        _record_error(row, exc, options)
    return row


def layer_cache_key(shape: str, options: MeasureOptions, dev_name: str, round_index: int = 0) -> str:
    """The cache key of one layer shape's timing: the shape, every timing option (the batch
    among them), the device's name, the torch version and the round (after the first)."""
    what = {"version": MeasurementCache.VERSION, "layer": shape, "options": asdict(options),
            "device_name": dev_name, "torch_version": torch.__version__}
    if round_index:
        what["round"] = round_index
    return "layer-" + hashlib.sha256(json.dumps(what, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def measure_layers(configs: Iterable[Any], options: MeasureOptions,
                   cache: MeasurementCache | None = None, fresh: bool = False,
                   on_progress: Callable[[int, int, dict[str, Any]], None] | None = None,
                   rounds: int = 1,
                   on_warning: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Time each distinct layer shape of `configs` (latency.Config; layertable.distinct_layers)
    alone, at the options' batch; one row per shape, in the order first met.

    As `measure_grid`: each timing is cached as soon as it is taken (a rerun after Ctrl-C, which
    raises GridInterrupted, loses nothing measured), rounds are interleaved and combined
    (lowest round median), a noisy timing is taken again and, if it stays noisy, flagged and
    not served from the cache next time; a torch error is recorded in the row's `error`.
    Only the torch runtime times layers one by one.
    """
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    options = MeasureOptions.of(options)
    if options.runtime != "torch":
        raise ConfigError("layers are timed one by one with torch; --runtime onnxruntime times "
                          "whole networks only")
    options = options.resolved()
    from ..latency.layers import layer_shape

    todo: dict[str, tuple[Any, list[tuple[int, ...]]]] = {}
    for c in configs:
        layers, shapes = layer_input_shapes(c, options.batch)
        for i, layer in enumerate(layers):
            todo.setdefault(layer_shape(layer), (layer, shapes[i]))
    dev_name = device_name(options.device)
    warn = on_warning or (lambda message: None)

    def one(item: tuple[str, tuple[Any, list[tuple[int, ...]]]], k: int) -> dict[str, Any]:
        shape, (layer, shapes) = item
        key = layer_cache_key(shape, options, dev_name, k)
        row, problem = (None, "") if (cache is None or fresh) else cache.lookup(key)
        if problem:
            warn(problem)
        if row is not None:
            row["cached"] = True
            return row
        row = measure_layer(layer, shapes, options, dev_name)
        tries = 0
        while row["noisy"] and not row["error"] and tries < NOISY_RETRIES:
            tries += 1
            again = measure_layer(layer, shapes, options, dev_name)
            if not again["error"] and _spread(again) < _spread(row):
                row = again
        if row["noisy"] and not row["error"]:
            warn(f"layer {shape}: noisy timing ({noise(row)}) after {tries + 1} "
                 f"attempts; flagged, and measured again on the next run")
        if cache is not None and not row["error"]:
            cache.put(key, row)
        return row

    out = []
    for rows in _in_rounds(list(todo.items()), rounds, one, on_progress):
        combined = combine_rounds(rows)
        out.append({k: v for k, v in combined.items()
                    if k not in ("spec", "alpha", "resolution", "macs", "params", "runtime",
                                 "runtime_version", "graph_optimization")})
    return out
__all__ = ["check_device", "combine_rounds", "default_cache_dir", "device_name", "DeviceError",
           "DTYPES", "GridInterrupted", "layer_cache_key", "layer_input_shapes", "machine_load",
           "measure", "measure_configs", "measure_grid", "measure_layer", "measure_layers",
           "MeasurementCache", "MeasureOptions", "noise", "NOISY_RETRIES", "prepare",
           "profile_config", "ROW_COLUMNS", "time_callable"]




def profile_config(spec: Spec | str, alpha: Fraction | float | str, resolution: int | None,
                   options: MeasureOptions, passes: int = 10,
                   warmup: int = 3) -> tuple[SpecNet, Profile]:
    """Build one configuration, prepare it for `options` and profile it."""
    options = options.resolved()
    if options.runtime not in PROFILED_RUNTIMES:
        raise ConfigError(f"profile: not with --runtime {options.runtime} (its XNNPACK delegate "
                          f"runs the network as one call; profile --runtime "
                          f"{' or '.join(PROFILED_RUNTIMES)})")
    model = build_model(spec, alpha, resolution)
    if options.runtime == "onnxruntime":
        from .runtimes.onnxruntime import profile_ort

        return model, profile_ort(model, options.batch, options.threads, passes, warmup)[0]
    _, x = prepare(model, model.example_input(options.batch), options)
    return model, profile_model(model, x, options, passes=passes, warmup=warmup)
