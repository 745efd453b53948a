"""Torch commands: validate, measure, profile. torch is imported inside each command, after
checking that it is installed, so the analytic commands never load it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..latency import alpha_text
from ..report import Column, Format, Report, format_number, percent, plain, to_csv, write_atomic
from ..torch import require_torch
from .common import FormatOpt, SpecArg, check_output_dir, command, err_console, fail, parse_alpha, render
from .measuring import (DEFAULT_BATCH, DEFAULT_DEVICE, DEFAULT_DTYPE, DEFAULT_MAX_TIME_S,
                        DEFAULT_MIN_TIME_S, DEFAULT_ROUNDS, BatchOpt, CacheDirOpt, ChannelsLastOpt,
                        CompileOpt, Device, DeviceOpt, DtypeOpt, FreshOpt, GraphsOpt, MaxTimeOpt,
                        MinTimeOpt, RoundsOpt, ThreadsOpt, TimeShareOpt, TimingArgs,
                        check_output_file, check_output_folder, noisy_note, run_grid,
                        setting_note, timing_note)

AlphaListOpt = Annotated[str, typer.Option(
    "--alpha", "-a", help="Width multipliers α: a list and/or ranges, 1,0.5 or 0.25..1 (step 0.25) "
                          "or 0.5..1:0.1.")]
ResListOpt = Annotated[Optional[str], typer.Option(
    "--res", "-r", help="Input resolutions: a list and/or ranges, 224,192 or 128..224 (step 32) "
                        "\\[default: the spec's base resolution].")]
ResOpt1 = Annotated[Optional[int], typer.Option(
    "--res", "-r", help="Input resolution in pixels \\[default: the spec's base resolution].")]


def _options(batch: int, device, dtype, threads: int | None,
             channels_last: bool, compile: bool, cuda_graphs: bool):
    return TimingArgs.of(batch, device, dtype, threads, channels_last, compile,
                         cuda_graphs).measure_options()


# ----------------------------------------------------------------------------- validate

@command("validate")
def validate_cmd(spec: SpecArg = "mobilenet_v1", alpha: Annotated[str, typer.Option(
                     "--alpha", "-a", help="Width multiplier α (> 0).")] = "1",
                 res: ResOpt1 = None,
                 per_layer: Annotated[bool, typer.Option(
                     "--per-layer", help="One row per layer instead of per layer kind.")] = False,
                 format: FormatOpt = Format.table) -> None:
    """Reconcile the engine's counts with FlopCounterMode, fvcore and torch's parameters.

    Exit code 1 if any disagree on convolution or linear Mult-Adds, or on parameters.

    Example: mobilecost validate mobilenet_v2 --alpha 0.75 --res 160
    """
    require_torch()
    from ..torch import require_fvcore

    require_fvcore()
    from ..torch.counters import cross_check, reconcile_report

    a = parse_alpha(alpha)
    with err_console.status("building and counting…"):
        check = cross_check(spec, a, res)
    render(reconcile_report(check, per_layer), format)
    if not (check.macs_agree and check.params_agree):
        bad = [c for c in check.layers if not (c.macs_agree and c.params_agree)]
        raise fail(f"the engine and a counter disagree on {len(bad)} layer(s), first layer "
                   f"{bad[0].index + 1} ({bad[0].op}); see --per-layer", 1)


# ----------------------------------------------------------------------------- measure

def timing_report(rows: list[dict[str, Any]], time_share: bool, rounds: int = 1) -> Report:
    from ..torch.profile import TIME_KINDS
    from ..torch.timing import ROW_COLUMNS

    ms = lambda x: "" if x is None else f"{x:.3f}"  # noqa: E731
    shown = {"spec", "alpha", "resolution", "batch", "latency_ms", "latency_iqr_ms", "runs",
             "macs", "cached", "error"} | ({"latency_median_ms", "rounds"} if rounds > 1 else set()) \
        | ({"noisy"} if any(r.get("noisy") for r in rows) else set())
    headers = {"latency_ms": "latency ms", "latency_iqr_ms": "IQR ms",
               "latency_median_ms": "median of rounds ms", "macs": "Mult-Adds"}
    numeric = {"alpha", "resolution", "batch", "latency_ms", "latency_iqr_ms",
               "latency_median_ms", "rounds", "runs", "calls_per_run", "threads", "macs", "params",
               "load", "cores"}
    cols = [Column(k, headers.get(k, k), ms if k.endswith("_ms") else plain,
                   numeric=k in numeric, table=k in shown) for k in ROW_COLUMNS]
    if time_share:
        for kind in TIME_KINDS:
            cols.append(Column(f"time_share_{kind}", f"time {kind}", percent, table=True))
            cols.append(Column(f"macs_share_{kind}", f"MACs {kind}", percent, table=False))
    notes = []
    if rows:
        notes.append(setting_note(rows[0]))
        notes.append(timing_note(rows, rounds))
        if noisy := noisy_note(rows):
            notes.append(noisy)
    cached = sum(1 for r in rows if r.get("cached"))
    if cached:
        notes.append(f"{cached} of {len(rows)} rows come from the measurement cache "
                     f"(--fresh measures again).")
    return Report("Measured latency", cols, rows, notes)


@command("measure")
def measure_cmd(spec: SpecArg = "mobilenet_v1", alpha: AlphaListOpt = "1", res: ResListOpt = None,
                batch: BatchOpt = DEFAULT_BATCH, device: DeviceOpt = DEFAULT_DEVICE,
                dtype: DtypeOpt = DEFAULT_DTYPE, threads: ThreadsOpt = None,
                channels_last: ChannelsLastOpt = False, compile: CompileOpt = False,
                cuda_graphs: GraphsOpt = False, time_share: TimeShareOpt = False,
                min_time: MinTimeOpt = DEFAULT_MIN_TIME_S, max_time: MaxTimeOpt = DEFAULT_MAX_TIME_S,
                rounds: RoundsOpt = DEFAULT_ROUNDS, cache_dir: CacheDirOpt = None, fresh: FreshOpt = False,
                output: Annotated[Optional[Path], typer.Option(
                    "--output", "-o", help="Also write the rows to this CSV file (its folder must "
                                           "exist).")] = None,
                plot_dir: Annotated[Optional[Path], typer.Option(
                    "--plot-dir", help="Write plots here, PNG and SVG: latency against "
                                       "Mult-Adds, against accuracy (where known) and, with "
                                       "--time-share, time share by layer kind.")] = None,
                format: FormatOpt = Format.table) -> None:
    """Time the built network for every α × resolution given (cached, resumable).

    Rows: median latency, IQR, runs, device, torch version, threads, dtype, batch, format.
    On a noisy machine, --rounds 3 times the grid three times over and keeps each
    configuration's lowest round median.

    Example: mobilecost measure mobilenet_v1 --alpha 1,0.5 --res 224,128 --threads 2 -o lat.csv
    """
    require_torch()
    from ..grid import parse_alphas, parse_resolutions
    from ..spec import load_spec

    args = TimingArgs.of(batch, device, dtype, threads, channels_last, compile, cuda_graphs,
                         min_time, max_time, rounds, time_share, cache_dir, fresh)
    alphas = parse_alphas(alpha)
    s = load_spec(spec)
    resolutions = [s.resolution] if res is None else parse_resolutions(res)
    if output is not None:
        check_output_file(output, "--output")
    if plot_dir is not None:
        check_output_folder(plot_dir, "--plot-dir")
    configs = [(a, r) for r in resolutions for a in alphas]
    rows = run_grid(s, configs, args)
    report = timing_report(rows, time_share, rounds)
    # CSV keeps α exact ('1/3', not 0.3333333333333333), so calibrate reads back the same α
    exact = dataclasses.replace(report, rows=[dict(r, alpha=alpha_text(r["alpha"])) for r in rows])
    if output is not None:
        try:
            write_atomic(output, to_csv(exact))
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc.strerror or exc}") from None
    if plot_dir is not None:
        check_output_dir(plot_dir)
        from ..torch.plots import latency_vs_accuracy, latency_vs_macs, time_share_bars, with_accuracy

        paths = latency_vs_macs(rows, plot_dir / f"{s.name}_latency_vs_macs")
        rated = with_accuracy(rows, s)
        if any(r["top1"] is not None for r in rated):
            paths += latency_vs_accuracy(rated, plot_dir / f"{s.name}_latency_vs_accuracy")
        if time_share:
            paths += time_share_bars(rows, plot_dir / f"{s.name}_time_share")
        for p in paths:
            err_console.print(f"wrote {p}", highlight=False)
    render(exact if format is Format.csv else report, format)
    errors = [r for r in rows if r["error"]]
    for r in errors:
        err_console.print(f"warning: {s.name} α={format_number(r['alpha'])} "
                          f"{r['resolution']}: {r['error']}", highlight=False, markup=False)


# ----------------------------------------------------------------------------- profile

@command("profile")
def profile_cmd(spec: SpecArg = "mobilenet_v1", alpha: Annotated[str, typer.Option(
                    "--alpha", "-a", help="Width multiplier α (> 0).")] = "1",
                res: ResOpt1 = None, batch: BatchOpt = DEFAULT_BATCH, device: DeviceOpt = DEFAULT_DEVICE,
                dtype: DtypeOpt = DEFAULT_DTYPE, threads: ThreadsOpt = None,
                channels_last: ChannelsLastOpt = False,
                passes: Annotated[int, typer.Option(
                    "--passes", min=1, help="Forward passes profiled (after 3 untimed).")] = 10,
                per_layer: Annotated[bool, typer.Option(
                    "--per-layer", help="One row per layer instead of per layer kind.")] = False,
                format: FormatOpt = Format.table) -> None:
    """Where the time goes: time per layer kind beside its share of Mult-Adds.

    From torch.profiler, per layer kind or per layer: CPU time on a CPU, device time on CUDA.

    Example: mobilecost profile mobilenet_v1 --alpha 1 --res 224 --threads 2
    """
    require_torch()
    a = parse_alpha(alpha)
    from ..torch.build import build_model
    from ..torch.profile import TIME_KIND_LABELS, profile_model, time_kind
    from ..torch.timing import device_name

    options = _options(batch, device, dtype, threads, channels_last, False, False)
    model = build_model(spec, a, res)
    with err_console.status(f"profiling {passes} passes…"):
        prof = profile_model(model, options, passes=passes)
    opts = options.resolved()
    total_ms = sum(t.time_ms for t in prof.layers) + prof.outside_ms
    total_macs = sum(t.macs for t in prof.layers) or 1
    if per_layer:
        rows = [{"group": str(t.layer.index + 1), "kind": time_kind(t.layer), "op": t.layer.op,
                 "shape": f"{t.layer.input_shape}→{t.layer.out_size}×{t.layer.out_size}×"
                          f"{t.layer.out_channels}", "layers": 1,
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
    ms = lambda x: f"{x:.3f}"  # noqa: E731
    ratio = lambda x: "" if x is None else f"{x:.2f}×"  # noqa: E731
    cols = [Column("group", "Layer" if per_layer else "Kind", numeric=False),
            Column("kind", "kind", numeric=False, table=per_layer)]
    if per_layer:
        cols += [Column("op", "Op", numeric=False), Column("shape", "Shape", numeric=False)]
    cols += [Column("layers", "Layers", table=not per_layer), Column("time_ms", "Time ms", ms),
             Column("time_share", "% time", percent), Column("macs", "Mult-Adds"),
             Column("macs_share", "% Mult-Adds", percent),
             Column("time_to_macs", "time/MACs share", ratio)]
    where = "device (kernel) time" if device is Device.cuda else "CPU time"
    import torch

    notes = [f"{device_name(opts.device)} ({opts.device}), torch "
             f"{torch.__version__}, {opts.threads} threads, {opts.dtype}, batch "
             f"{opts.batch}, {opts.memory_format}; {where} per forward pass, mean of {passes} "
             f"profiled passes (sum of kinds {total_ms:.3f} ms).",
             "Other: pooling, residual adds, and time in the pass outside any layer range "
             f"({prof.outside_ms:.3f} ms). Profiler ranges add a little overhead per layer; "
             "use `measure` for latency."]
    title = (f"Where the time goes: {model.name}, alpha {format_number(a)}, "
             f"resolution {model.resolution}")
    render(Report(title, cols, rows, notes), format)


__all__ = ["measure_cmd", "profile_cmd", "timing_report", "validate_cmd"]
