"""Torch commands: validate, measure, profile. torch is imported inside each command, after
checking that it is installed, so the analytic commands never load it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MobilecostError
from ..reports.report import Format
from ..torch import require_torch
from .common import (
    FormatOpt,
    ResOpt,
    SpecArg,
    check_output_dir,
    check_output_file,
    command,
    err_console,
    fail,
    nonempty_path,
    parse_alpha,
    parse_res,
    report_written,
    say,
    writing,
)
from .measuring import (
    DEFAULT_BATCH,
    DEFAULT_DEVICE,
    DEFAULT_DTYPE,
    DEFAULT_MAX_TIME_S,
    DEFAULT_MIN_TIME_S,
    DEFAULT_ROUNDS,
    DEFAULT_RUNTIME,
    BatchOpt,
    CacheDirOpt,
    ChannelsLastOpt,
    CompileOpt,
    DeviceOpt,
    DtypeOpt,
    FreshOpt,
    GraphsOpt,
    MaxTimeOpt,
    MinTimeOpt,
    RoundsOpt,
    RuntimeOpt,
    ThreadsOpt,
    TimeShareOpt,
    timing_of,
)
from .progress import progress
from .render import render

AlphaListOpt = Annotated[str, typer.Option(
    "--alpha", "-a", help="Width multipliers α: a list and/or ranges, 1,0.5 or 0.25..1 (step 0.25) "
                          "or 0.5..1:0.1.")]
ResListOpt = Annotated[Optional[str], typer.Option(
    "--res", "-r", help="Input resolutions: a list and/or ranges, 224,192 or 128..224 (step 32) "
                        "\\[default: the spec's base resolution].")]


# ----------------------------------------------------------------------------- validate

@command("crosscheck")
def crosscheck_cmd(spec: SpecArg = "mobilenet_v1", alpha: Annotated[str, typer.Option(
                     "--alpha", "-a", help="Width multiplier α (> 0).")] = "1",
                 res: ResOpt = None,
                 per_layer: Annotated[bool, typer.Option(
                     "--per-layer", help="One row per layer instead of per layer kind.")] = False,
                 against: Annotated[Optional[str], typer.Option(
                     "--against", help="Compare the spec layer by layer with this network "
                                       "instead: model.onnx, package.module:callable or "
                                       "file.py:callable.")] = None,
                 format: FormatOpt = Format.table) -> None:
    """Reconcile the engine's counts with FlopCounterMode, fvcore and torch's parameters.

    Exit code 1 if any disagree on convolution or linear Mult-Adds, or on parameters. With
    --against, compare the spec at (α, resolution) with an outside network instead: shapes,
    Mult-Adds and parameters per layer, the first disagreeing layer named; exit code 1 on any
    disagreement in convolution or linear Mult-Adds.

    Example: mobilecost crosscheck mobilenet_v2 --alpha 0.75 --res 160

    Example: mobilecost crosscheck mine.spec --alpha 0.5 --against model.onnx
    Example: mobilecost crosscheck mobilenet_v3_small --res 320x240 (height x width)
    """
    res = parse_res(res, spec)
    if against is not None:
        if isinstance(res, tuple):
            raise MobilecostError("--against compares at a square --res (the import reads "
                                  "square inputs)")
        _validate_against(spec, parse_alpha(alpha), res, against, format)
        return
    require_torch()
    from ..torch import require_fvcore

    require_fvcore()
    from ..reports.crosscheck import reconcile_report
    from ..torch.counters import cross_check

    a = parse_alpha(alpha)
    with err_console.status("building and counting…"):
        check = cross_check(spec, a, res)
    render(reconcile_report(check, per_layer), format)
    if not (check.macs_agree and check.params_agree):
        bad = [c for c in check.layers if not (c.macs_agree and c.params_agree)]
        raise fail(f"the engine and a counter disagree on {len(bad)} layer(s), first layer "
                   f"{bad[0].index + 1} ({bad[0].op}); see --per-layer", 1)


def _validate_against(spec: str, alpha, res: int | None, against: str, format: Format) -> None:
    from ..lang.load import load_spec
    from ..reports.importing import against_report, disagreement_text, read_source

    s = load_spec(spec)
    r = s.resolution if res is None else res
    with err_console.status(f"reading {against}…"):
        imp = read_source(against, r, allow_unknown=True)
    report, cmp = against_report(s, alpha, r, against, imp)
    render(report, format)
    if not cmp.agree:
        message = disagreement_text(cmp)
        if cmp.macs_disagree:
            raise fail(message, 1)
        err_console.print(f"warning: {message}", highlight=False, markup=False)


# ----------------------------------------------------------------------------- measure

@command("measure")
def measure_cmd(spec: SpecArg = "mobilenet_v1", alpha: AlphaListOpt = "1", res: ResListOpt = None,
                batch: BatchOpt = DEFAULT_BATCH, device: DeviceOpt = DEFAULT_DEVICE,
                dtype: DtypeOpt = DEFAULT_DTYPE, threads: ThreadsOpt = None,
                channels_last: ChannelsLastOpt = False, compile: CompileOpt = False,
                cuda_graphs: GraphsOpt = False, time_share: TimeShareOpt = False,
                min_time: MinTimeOpt = DEFAULT_MIN_TIME_S, max_time: MaxTimeOpt = DEFAULT_MAX_TIME_S,
                rounds: RoundsOpt = DEFAULT_ROUNDS, cache_dir: CacheDirOpt = None, fresh: FreshOpt = False,
                runtime: RuntimeOpt = DEFAULT_RUNTIME,
                output: Annotated[Optional[Path], typer.Option(
                    "--output", "-o", help="Also write the rows to this CSV file (its folder must "
                                           "exist).")] = None,
                plot_dir: Annotated[Optional[Path], typer.Option(
                    "--plot-dir", help="Write plots here, PNG and SVG: latency against "
                                       "Mult-Adds, against accuracy (where known) and, with "
                                       "--time-share, time share by layer kind.",
                    parser=nonempty_path("--plot-dir"), metavar="<path>")] = None,
                format: FormatOpt = Format.table) -> None:
    """Time the built network for every α × resolution given (cached, resumable).

    Rows: median latency, IQR, runs, device, torch version, threads, dtype, batch, format.
    On a noisy machine, --rounds 3 times the grid three times over and keeps each
    configuration's lowest round median.

    Example: mobilecost measure mobilenet_v1 --alpha 1,0.5 --res 224,128 --threads 2 -o lat.csv
    Example: mobilecost measure --alpha 1,0.5 --threads 1 --runtime onnxruntime
    """
    from ..engine.axes import parse_alphas, parse_resolutions, with_aspect
    from ..lang.load import load_spec
    from ..reports.measure import measure_grid_report

    timing = timing_of(batch=batch, device=device, dtype=dtype, threads=threads,
                       channels_last=channels_last, compile=compile, cuda_graphs=cuda_graphs,
                       min_time=min_time, max_time=max_time, runtime=runtime, rounds=rounds,
                       time_share=time_share, cache_dir=cache_dir, fresh=fresh, torch_needed=True)
    alphas = parse_alphas(alpha)
    s = load_spec(spec)
    resolutions = [s.size] if res is None else with_aspect(s, parse_resolutions(res), None)
    if output is not None:
        check_output_file(output)
    if plot_dir is not None:
        check_output_dir(plot_dir, "--plot-dir")
    configs = [(a, r) for r in resolutions for a in alphas]
    with progress(f"measuring {s.name}", len(configs) * rounds) as step, \
            writing(output or plot_dir or Path(".")):
        m = measure_grid_report(s, configs, timing, output, plot_dir, step)
    report_written(m.files)
    render(m.csv_report if format is Format.csv else m.report, format)
    for message in m.warnings:
        say(f"warning: {message}")


# ----------------------------------------------------------------------------- profile

@command("profile")
def profile_cmd(spec: SpecArg = "mobilenet_v1", alpha: Annotated[str, typer.Option(
                    "--alpha", "-a", help="Width multiplier α (> 0).")] = "1",
                res: ResOpt = None, batch: BatchOpt = DEFAULT_BATCH, device: DeviceOpt = DEFAULT_DEVICE,
                dtype: DtypeOpt = DEFAULT_DTYPE, threads: ThreadsOpt = None,
                channels_last: ChannelsLastOpt = False, runtime: RuntimeOpt = DEFAULT_RUNTIME,
                passes: Annotated[int, typer.Option(
                    "--passes", min=1, help="Forward passes profiled (after 3 untimed).")] = 10,
                per_layer: Annotated[bool, typer.Option(
                    "--per-layer", help="One row per layer instead of per layer kind.")] = False,
                format: FormatOpt = Format.table) -> None:
    """Where the time goes: time per layer kind beside its share of Mult-Adds.

    From torch.profiler, per layer kind or per layer: CPU time on a CPU, device time on CUDA;
    with --runtime onnxruntime, from ONNX Runtime's own profiler (its kernels traced back to
    the spec layers they came from).

    Example: mobilecost profile mobilenet_v1 --alpha 1 --res 224 --threads 2
    Example: mobilecost profile --threads 1 --runtime onnxruntime
    """
    from ..reports.measure import profile_report
    from ..torch.clock import MeasureOptions
    from ..torch.timing import profile_config

    a = parse_alpha(alpha)
    timing = timing_of(batch=batch, device=device, dtype=dtype, threads=threads,
                       channels_last=channels_last, runtime=runtime, torch_needed=True)
    options = MeasureOptions.of(timing.options)
    with err_console.status(f"profiling {passes} passes…"):
        model, prof = profile_config(spec, a, parse_res(res, spec), options, passes=passes)
    render(profile_report(model, prof, options, per_layer), format)


__all__ = ["measure_cmd", "profile_cmd", "crosscheck_cmd"]
