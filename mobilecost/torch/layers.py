"""Layer shapes timed alone, for a target's layer table (`latency.layers`): each distinct
shape of some configurations, on random inputs of its own shapes, through the measurement
cache, in interleaved rounds, as whole networks are (`torch.timing`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any, Callable, Iterable, Sequence

import torch

from ..errors import ConfigError
from .cache import MeasurementCache
from .clock import (
    MeasureOptions,
    _record_error,
    device_name,
    machine_load,
    noise,
    prepare,
    time_callable,
)
from .timing import NOISY_RETRIES, GridInterrupted, _in_rounds, _spread, combine_rounds


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
    """Time each distinct layer shape of `configs` (latency.Config; latency.layers.distinct_layers)
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
    for rows in _in_rounds(list(todo.items()), rounds, one, on_progress, "layer timings", cache):
        combined = combine_rounds(rows)
        out.append({k: v for k, v in combined.items()
                    if k not in ("spec", "alpha", "resolution", "macs", "params", "runtime",
                                 "runtime_version", "graph_optimization")})
    return out


def time_layer_table(target: Any, extra: Sequence[Any], timing: Any, dtype: str,
                     on_progress: Callable[[int, int, str], None] | None = None,
                     on_warning: Callable[[str], None] | None = None) -> Any:
    """The target with a layer table: the distinct layers of its measured configurations at
    the timing's batch, and of `extra` (latency.Config), each timed alone (`measure_layers`,
    cached and resumable), the overhead fitted on the target's whole-network points.
    `on_progress(done, total, text)` after each timing; `on_warning` is told of each layer
    whose timing stayed noisy or whose cache entry was bad. Ctrl-C: GridInterrupted, no target
    made; what was timed is in the cache and the same call resumes."""
    from dataclasses import replace

    from ..dtypes import lookup as lookup_dtype
    from ..latency.layers import distinct_layers
    from ..latency.targets import with_layer_table
    from .cache import MeasurementCache, default_cache_dir

    if lookup_dtype(dtype).quantized:
        raise ConfigError(f"--layers: the measurements are at {lookup_dtype(dtype).short}, and layers are "
                          f"timed alone in torch, which runs fp32, fp16 and bf16; calibrate without "
                          f"--layers (the whole-network model)")
    options = MeasureOptions.of(replace(timing.options, dtype=lookup_dtype(dtype).short)).resolved()
    batch, rounds = options.batch, timing.rounds
    if not any(p.config.batch == batch for p in target.points):
        raise ConfigError(f"--layers: no measurement at batch {batch} to fit the overhead on "
                          f"(give --batch as measured)")
    configs = [p.config for p in target.points if p.config.batch == batch] + list(extra)
    layers = distinct_layers(configs)
    cache = MeasurementCache(timing.grid.cache_dir or default_cache_dir())
    def step(done: int, total: int, row: dict[str, Any]) -> None:
        if on_progress is not None:
            took = "error" if row["error"] else f"{1e3 * row['latency_ms']:.0f} µs"
            where = f" round {row['round']}/{rounds}" if rounds > 1 else ""
            on_progress(done, total, f"layer {row['op']}{where}: {took}"
                        + (" (cached)" if row["cached"] else ""))

    try:
        rows = measure_layers(configs, options, cache, fresh=timing.grid.fresh, on_progress=step,
                              rounds=rounds, on_warning=on_warning)
    except GridInterrupted as exc:
        raise GridInterrupted(exc.rows, exc.total, "layer timings; no target written", cache,
                              "timed") from None
    info = {"device": options.device, "device_name": device_name(options.device),
            "threads": options.threads, "min_time_s": options.min_run_time_s,
            "max_time_s": options.max_run_time_s, "rounds": rounds,
            "noisy_layers": sum(bool(r.get("noisy")) for r in rows),
            "failed_layers": sum(bool(r.get("error")) for r in rows)}
    return with_layer_table(target, rows, layers, batch, dtype, info)


__all__ = ["layer_cache_key", "layer_input_shapes", "measure_layer", "measure_layers",
           "time_layer_table"]
