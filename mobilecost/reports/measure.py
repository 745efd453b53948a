"""Reports of the torch backend: measured latencies (`measure`) and where the time goes
(`profile`), built here so that the commands only parse options and render.

Imports run one way: this module uses timing and profile; timing uses profile for time
shares; profile uses neither.
"""

from __future__ import annotations

from typing import Any

from ..lang.values import resolution_text
from ..torch.build import SpecNet
from ..torch.profile import TIME_KIND_LABELS, TIME_KINDS, Profile, time_kind
from ..torch.timing import ROW_COLUMNS, MeasureOptions, device_name, runtime_version
from ..util import format_number, milliseconds, percent, plain
from .report import Column, Report
from .sweep import measurement_notes


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
        from ..torch.runtimes.onnxruntime import GRAPH_OPTIMIZATION, ort_version

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
                 f"{runtime_version('torch')}, {opts.threads} threads, {opts.dtype}, batch "
                 f"{opts.batch}, {opts.memory_format}; {where} per forward pass, mean of "
                 f"{prof.passes} profiled passes (sum of kinds {total_ms:.3f} ms).",
                 "Other: pooling, residual adds, and time in the pass outside any layer range "
                 f"({prof.outside_ms:.3f} ms). Profiler ranges add a little overhead per layer; "
                 "use `measure` for latency."]
    title = (f"Where the time goes: {model.name}, alpha {format_number(model.alpha)}, "
             f"resolution {resolution_text(model.resolution)}")
    return Report(title, cols, rows, notes, drop_order=("kind", "shape", "layers", "macs"))
__all__ = ["profile_report", "timing_report"]
