"""Reports of the torch backend: measured latencies (`measure`) and where the time goes
(`profile`), built here so that the commands only parse options and render.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..lang.values import resolution_text
from ..torch import runtimes
from ..torch.build import SpecNet
from ..torch.clock import MeasureOptions
from ..torch.profile import TIME_KIND_LABELS, TIME_KINDS, Profile, time_kind
from ..torch.timing import ROW_COLUMNS
from ..util import format_number, milliseconds, percent, plain
from .report import Column, Report
from .timing_notes import measurement_notes

if TYPE_CHECKING:  # pragma: no cover
    from ..lang.spec import Spec


@dataclass(frozen=True)
class Measured:
    """A measured grid: its report, the rows as they go to a CSV (α exact: '1/3', so that
    `calibrate` reads back the same α), the files written and one warning per failed row."""

    rows: list[dict[str, Any]]
    report: Report
    csv_report: Report
    files: list[Path]
    warnings: list[str]


def measure_grid_report(spec: "Spec", configs: Sequence[tuple[Any, Any]], timing: Any,
                        output: Path | None = None, plot_dir: Path | None = None,
                        on_progress: Callable[[int, int, str], None] | None = None) -> Measured:
    """Time `configs` of `spec` (`torch.timing.run_grid`: cached, resumable), and write the
    rows to `output` (CSV) and the plots into `plot_dir` where given."""
    from ..lang.values import exact_text
    from ..torch.timing import run_grid
    from ..util import write_atomic
    from .report import to_csv

    warnings: list[str] = []
    rows = run_grid(spec, configs, timing, on_progress, warnings.append)
    report = timing_report(rows, timing.time_share, timing.rounds)
    exact = dataclasses.replace(report, rows=[dict(r, alpha=exact_text(r["alpha"])) for r in rows])
    files: list[Path] = []
    if output is not None:
        files.append(write_atomic(output, to_csv(exact)))
    if plot_dir is not None:
        from .timing_plots import (
            latency_vs_accuracy,
            latency_vs_macs,
            time_share_bars,
            with_accuracy,
        )

        files += latency_vs_macs(rows, plot_dir / f"{spec.name}_latency_vs_macs")
        rated = with_accuracy(rows, spec)
        if any(r["top1"] is not None for r in rated):
            files += latency_vs_accuracy(rated, plot_dir / f"{spec.name}_latency_vs_accuracy")
        if timing.time_share:
            files += time_share_bars(rows, plot_dir / f"{spec.name}_time_share")
    warnings += [f"{spec.name} α={format_number(r['alpha'])} {r['resolution']}: {r['error']}"
                 for r in rows if r["error"]]
    return Measured(rows, report, exact, files, warnings)


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
    notes = runtimes.load(opts.runtime).profile_notes(opts, prof, total_ms)
    title = (f"Where the time goes: {model.name}, alpha {format_number(model.alpha)}, "
             f"resolution {resolution_text(model.resolution)}")
    return Report(title, cols, rows, notes, drop_order=("kind", "shape", "layers", "macs"))


__all__ = ["profile_report", "timing_report"]
