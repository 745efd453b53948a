"""Reports of the torch backend: measured latencies (`measure`) and where the time goes
(`profile`), built here so that the commands only parse options and render.

Imports run one way: this module uses timing and profile; timing uses profile for time
shares; profile uses neither.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import torch

from ..errors import ConfigError
from ..report import Column, Report
from ..spec import Spec, resolution_text
from ..sweepreport import measurement_notes
from ..timing_options import PROFILED_RUNTIMES
from ..util import format_number, milliseconds, percent, plain
from .build import SpecNet, build_model
from .profile import TIME_KIND_LABELS, TIME_KINDS, Profile, profile_model, time_kind
from .timing import ROW_COLUMNS, MeasureOptions, device_name, prepare


def timing_report(rows: list[dict[str, Any]], time_share: bool, rounds: int = 1) -> Report:
    """Measured rows (timing.measure_grid) as a report, with the setting in the notes."""
    shown = {"spec", "alpha", "resolution", "batch", "latency_ms", "latency_iqr_ms", "runs",
             "macs", "cached", "error"} | ({"latency_median_ms", "rounds"} if rounds > 1 else set()) \
        | ({"noisy"} if any(r.get("noisy") for r in rows) else set())
    headers = {"latency_ms": "latency ms", "latency_iqr_ms": "IQR ms",
               "latency_median_ms": "median of rounds ms", "macs": "Mult-Adds"}
    numeric = {"alpha", "resolution", "batch", "latency_ms", "latency_iqr_ms",
               "latency_median_ms", "rounds", "runs", "calls_per_run", "threads", "macs", "params",
               "load", "cores"}
    cols = [Column(k, headers.get(k, k), milliseconds if k.endswith("_ms") else plain,
                   numeric=k in numeric, table=k in shown) for k in ROW_COLUMNS]
    if time_share:
        for kind in TIME_KINDS:
            cols.append(Column(f"time_share_{kind}", f"time {kind}", percent, table=True))
            cols.append(Column(f"macs_share_{kind}", f"MACs {kind}", percent, table=False))
    return Report("Measured latency", cols, rows, measurement_notes(rows, rounds),
                  drop_order=("cached", "runs", "latency_iqr_ms", "batch", "spec"))


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
        from .ort import profile_ort

        return model, profile_ort(model, options.batch, options.threads, passes, warmup)[0]
    _, x = prepare(model, model.example_input(options.batch), options)
    return model, profile_model(model, x, options, passes=passes, warmup=warmup)


def profile_report(model: SpecNet, prof: Profile, options: MeasureOptions,
                   per_layer: bool = False) -> Report:
    """Time per layer kind (or per layer) beside its share of Mult-Adds."""
    opts = options.resolved()
    total_ms = sum(t.time_ms for t in prof.layers) + prof.outside_ms
    total_macs = sum(t.macs for t in prof.layers) or 1
    if per_layer:
        rows = [{"group": str(t.layer.index + 1), "kind": time_kind(t.layer), "op": t.layer.op,
                 "shape": f"{t.layer.input_shape}→{t.layer.output_shape}", "layers": 1,
                 "time_ms": t.time_ms, "time_share": t.time_ms / total_ms,
                 "macs": t.macs, "macs_share": t.macs / total_macs} for t in prof.layers]
        rows.append({"group": "outside", "kind": "other", "op": "", "shape": "", "layers": 0,
                     "time_ms": prof.outside_ms, "time_share": prof.outside_ms / total_ms,
                     "macs": 0, "macs_share": 0.0})
    else:
        rows = [{"group": TIME_KIND_LABELS[k], "kind": k, "layers": d["layers"],
                 "time_ms": d["time_ms"], "time_share": d["time_share"], "macs": d["macs"],
                 "macs_share": d["macs_share"]} for k, d in prof.by_kind().items()]
    for r in rows:
        r["time_to_macs"] = (r["time_share"] / r["macs_share"]) if r["macs_share"] else None

    def ms(x: Any) -> str:
        return f"{x:.3f}"

    def ratio(x: Any) -> str:
        return "" if x is None else f"{x:.2f}×"

    cols = [Column("group", "Layer" if per_layer else "Kind", numeric=False),
            Column("kind", "kind", numeric=False, table=per_layer)]
    if per_layer:
        cols += [Column("op", "Op", numeric=False), Column("shape", "Shape", numeric=False)]
    cols += [Column("layers", "Layers", table=not per_layer), Column("time_ms", "Time ms", ms),
             Column("time_share", "% time", percent), Column("macs", "Mult-Adds"),
             Column("macs_share", "% Mult-Adds", percent),
             Column("time_to_macs", "time/MACs share", ratio)]
    where = "device (kernel) time" if opts.device == "cuda" else "CPU time"
    if opts.runtime == "onnxruntime":
        from .ort import GRAPH_OPTIMIZATION, ort_version

        notes = [f"{device_name('cpu')} (cpu), ONNX Runtime {ort_version()} (CPU execution "
                 f"provider, {GRAPH_OPTIMIZATION}) on the exported file, {opts.threads} threads, "
                 f"fp32, batch {opts.batch}; kernel time per run from ONNX Runtime's profiler, "
                 f"mean of {prof.passes} profiled runs (sum of kinds {total_ms:.3f} ms).",
                 "Each kernel of the optimised graph is traced back to the spec layer it came "
                 "from (fused Conv+activation kernels count for their layer). Other: pooling, "
                 "residual adds, ONNX Runtime's layout reorders and time in the run outside any "
                 f"kernel ({prof.outside_ms:.3f} ms)."]
    else:
        notes = [f"{device_name(opts.device)} ({opts.device}), torch "
                 f"{torch.__version__}, {opts.threads} threads, {opts.dtype}, batch "
                 f"{opts.batch}, {opts.memory_format}; {where} per forward pass, mean of "
                 f"{prof.passes} profiled passes (sum of kinds {total_ms:.3f} ms).",
                 "Other: pooling, residual adds, and time in the pass outside any layer range "
                 f"({prof.outside_ms:.3f} ms). Profiler ranges add a little overhead per layer; "
                 "use `measure` for latency."]
    title = (f"Where the time goes: {model.name}, alpha {format_number(model.alpha)}, "
             f"resolution {resolution_text(model.resolution)}")
    return Report(title, cols, rows, notes, drop_order=("kind", "shape", "layers", "macs"))


__all__ = ["profile_config", "profile_report", "timing_report"]
