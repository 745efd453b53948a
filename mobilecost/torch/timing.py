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

from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

import torch

from ..errors import ConfigError, Interrupted
from ..lang.load import load_spec
from ..lang.spec import Spec, checked_configs
from ..lang.values import norm_resolution, resolution_value, to_fraction
from ..runtimes import PROFILED, runtime
from ..util import format_number
from . import runtimes
from .build import SpecNet, build_model
from .cache import MeasurementCache
from .clock import (
    MeasureOptions,
    _record_error,
    device_name,
    machine_load,
    noise,
    time_callable,
)
from .profile import Profile, time_shares

# The columns of every timing row, in order (a latency model reads the first five).
ROW_COLUMNS = ("spec", "alpha", "resolution", "batch", "latency_ms", "latency_iqr_ms",
               "latency_median_ms", "rounds", "runs", "calls_per_run", "noisy", "load", "cores",
               "device", "device_name", "torch_version", "threads", "dtype", "memory_format",
               "compile", "cuda_graphs", "runtime", "runtime_version", "graph_optimization",
               "macs", "params", "cached", "error")


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
            **runtimes.fields(options),
            "macs": c.macs, "params": c.params, "cached": False, "error": ""}


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
        rt = runtimes.load(options.runtime)
        prepared = rt.prepare(model, options)
        m = time_callable(prepared.fn, prepared.x, options, label=f"{s.name} {format_number(a)} {res}")
        load, cores = machine_load()
        row |= {"latency_ms": m.median * 1e3, "latency_iqr_ms": m.iqr * 1e3,
                "latency_median_ms": m.median * 1e3, "runs": len(m.times), "calls_per_run": m.number_per_run,
                "load": load, "cores": cores}
        row["noisy"] = bool(noise(row))
        if time_share:
            row |= time_shares(rt.profile(model, options, prepared=prepared))
    except RuntimeError as exc:
        _record_error(row, exc, options)
    return row


# --------------------------------------------------------------------------- a grid

class GridInterrupted(Interrupted):
    """Ctrl-C during `measure_grid` or `measure_layers`; `rows` holds the measurements
    finished (all cached, one per configuration and round) out of `total`."""

    def __init__(self, rows: list[dict[str, Any]], total: int, what: str = "measurements",
                 cache: Any = None, done: str = "measured") -> None:
        where = f" in the cache {cache.folder}" if cache is not None else ""
        super().__init__(f"interrupted after {len(rows)} of {total} {what}; the {len(rows)} "
                         f"{done} are kept{where}, run the same command again to resume")
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

    what = "configurations" if rounds == 1 else "measurements (configurations × rounds)"
    return [combine_rounds(rows) for rows in _in_rounds(todo, rounds, one, on_progress, what, cache)]


def run_grid(spec: Spec, configs: Sequence[tuple[Any, Any]], timing: Any,
             on_progress: Callable[[int, int, str], None] | None = None,
             on_warning: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """`measure_grid` with every option of a `latency.options.Timing`, through the measurement
    cache (its folder, or the default one); `on_progress(done, total, text)` after each
    measurement. The device is checked before the first one (no GPU for --device cuda: one
    line)."""
    from .cache import default_cache_dir

    options = MeasureOptions.of(timing.options).resolved()
    cache = MeasurementCache(timing.grid.cache_dir or default_cache_dir())
    rounds = timing.rounds

    def step(done: int, total: int, row: dict[str, Any]) -> None:
        if on_progress is None:
            return
        latency = "error" if row["error"] else f"{row['latency_ms']:.2f} ms" + (
            " (noisy)" if row.get("noisy") else "")
        where = f" round {row['round']}/{rounds}" if rounds > 1 else ""
        on_progress(done, total, f"{spec.name} α={format_number(row['alpha'])} "
                                 f"{row['resolution']}{where}: {latency}"
                                 + (" (cached)" if row["cached"] else ""))

    return measure_grid(spec, configs, options, cache, fresh=timing.grid.fresh,
                        time_share=timing.time_share, on_progress=step, rounds=rounds,
                        on_warning=on_warning)


def _in_rounds(items: list, rounds: int, one: Callable[[Any, int], dict[str, Any]],
               on_progress: Callable[[int, int, dict[str, Any]], None] | None,
               what: str = "measurements", cache: Any = None) -> list[list[dict[str, Any]]]:
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
        raise GridInterrupted(done, total, what, cache) from None
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
__all__ = ["combine_rounds", "GridInterrupted", "measure", "measure_configs", "measure_grid", "run_grid",
           "NOISY_RETRIES", "profile_config", "ROW_COLUMNS"]


def profile_config(spec: Spec | str, alpha: Fraction | float | str, resolution: int | None,
                   options: MeasureOptions, passes: int = 10,
                   warmup: int = 3) -> tuple[SpecNet, Profile]:
    """Build one configuration, prepare it for `options` and profile it."""
    options = options.resolved()
    if not runtime(options.runtime).profiled:
        raise ConfigError(f"profile: not with --runtime {options.runtime} (its XNNPACK delegate "
                          f"runs the network as one call; profile --runtime "
                          f"{' or '.join(PROFILED)})")
    model = build_model(spec, alpha, resolution)
    return model, runtimes.load(options.runtime).profile(model, options, passes, warmup)
