"""Latency commands: calibrate a target from measurements, list targets, predict and validate.

Each command parses its options, makes one library call (`reports.latency`) and renders.
numpy and matplotlib are imported inside the library functions, never at import: loading this
module costs the analytic commands nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MobilecostError
from ..reports.report import Format
from .common import (
    FormatOpt,
    SpecArg,
    check_output_dir,
    command,
    err_console,
    nonempty_path,
    say,
    split_list,
    writing,
)
from .measuring import (
    BatchOpt,
    CacheDirOpt,
    Dtype,
    FreshOpt,
    MaxTimeOpt,
    MinTimeOpt,
    RoundsOpt,
    ThreadsOpt,
    timing_of,
)
from .progress import progress
from .render import render

TargetOpt = Annotated[str, typer.Option("--target", help="A calibrated target's name (see `mobilecost targets`).")]
TargetsDirOpt = Annotated[Optional[Path], typer.Option(
    "--targets-dir", help="Where targets are stored \\[default: $MOBILECOST_TARGETS_DIR, "
                          "else ~/.config/mobilecost/targets].", file_okay=False,
    parser=nonempty_path("--targets-dir"), metavar="<path>")]
LatencyDtypeOpt = Annotated[Optional[Dtype], typer.Option(
    "--dtype", help="The precision of the latencies: the target's own (it was calibrated at one "
                    "precision and predicts no other) \\[default: the target's].")]
GRID_HELP = "a list or a range a..b[:step]"


@command("calibrate")
def calibrate_cmd(
    measurements: Annotated[list[Path], typer.Argument(
        help="CSV of measured latencies: columns spec, alpha, resolution, batch, latency_ms "
             "(from `sweep --measure` or any other source); or benchmark logs of TFLite's "
             "benchmark_model or onnxruntime_perf_test (files, or folders of *.log / *.txt).")],
    target: Annotated[Optional[str], typer.Option(
        "--target", help="Name of the target to write (see `mobilecost targets`).")] = None,
    form: Annotated[str, typer.Option("--form", help="The whole-network model's layer time: 'sum' "
                                                     "(compute + memory) or 'max' (the larger "
                                                     "of the two).")] = "sum",
    model: Annotated[str, typer.Option(
        "--model", help="Which model predicts: 'auto' (the roofline model where its leave-one-out "
                        "errors are lower than the whole-network model's on significantly more "
                        "points and in median, else the whole-network model), 'whole' or "
                        "'roofline' (per-layer max of compute at a fill-dependent rate and bytes "
                        "at a bandwidth, plus a fixed cost: for GPUs, NPUs, DSPs).")] = "auto",
    unfused: Annotated[str, typer.Option(
        "--unfused", help="For the roofline model: 'yes' where the runtime runs batchnorm and "
                          "activations as kernels of their own (eager PyTorch), 'no' where it "
                          "fuses them (TFLite, ONNX Runtime, torch.compile), 'auto' to fit "
                          "it.")] = "auto",
    manifest: Annotated[Optional[Path], typer.Option(
        "--manifest", help="With logs: the manifest.csv of `mobilecost export`, matching each "
                           "log's model file to its configuration [default: read the "
                           "configuration from the file name, SPEC_ALPHA_RES].")] = None,
    spec: Annotated[Optional[str], typer.Option(
        "--spec", help="With logs: the spec (built-in or file) the models were made from "
                       "[default: the manifest's, or the file name's].")] = None,
    layers: Annotated[bool, typer.Option(
        "--layers", help="Also time each distinct layer shape of the measured configurations "
                         "(and of --layer-specs) alone on this machine with torch, cached and "
                         "resumable; the target then predicts a network as the sum of its "
                         "layers' times plus an overhead fitted on the measurements.")] = False,
    layer_specs: Annotated[Optional[str], typer.Option(
        "--layer-specs", help="With --layers: time the layers of these specs too "
                              "(comma-separated), over --alpha × --res.")] = None,
    alpha: Annotated[str, typer.Option(
        "--alpha", "-a", help=f"With --layer-specs: width multipliers, {GRID_HELP}.")] = "1,0.75,0.5,0.25",
    res: Annotated[str, typer.Option(
        "--res", "-r", help=f"With --layer-specs: resolutions, {GRID_HELP}.")] = "224,192,160,128",
    batch: BatchOpt = 1, threads: ThreadsOpt = None, min_time: MinTimeOpt = 0.2,
    max_time: MaxTimeOpt = 2.0, rounds: RoundsOpt = 1, cache_dir: CacheDirOpt = None,
    fresh: FreshOpt = False, targets_dir: TargetsDirOpt = None, format: FormatOpt = Format.table,
) -> None:
    """Fit the latency model to measured latencies and store it as a named target.

    The latencies come from a CSV, or from the logs of the on-device benchmark tools (the
    median of each log's timed runs; see docs/deploy.md). --batch, --threads, --min-time,
    --max-time, --rounds, --cache-dir and --fresh time the layers of --layers. Which
    configurations to measure: `mobilecost suggest`.

    Example: mobilecost calibrate reports/cpu/sweep_mobilenet_v1.csv --target my-cpu
    Example: mobilecost calibrate logs/ --manifest onnx/manifest.csv --target pixel-7
    Example: mobilecost calibrate m.csv --target my-cpu --layers -t 1 --layer-specs mnasnet_b1 -a 1,0.5 -r 224,160
    """
    from ..reports.latency import calibrate_target

    if target is None:
        raise MobilecostError("calibrate needs --target NAME, the name to store the target under")
    timing = None
    if layers:
        timing = timing_of(batch=batch, threads=threads, min_time=min_time, max_time=max_time,
                           rounds=rounds, cache_dir=cache_dir, fresh=fresh, torch_needed=True)
    with progress("calibrating", 0) as step:  # the roofline's leave-one-out, --layers' timing
        done = calibrate_target(measurements, target, form=form, model=model, unfused=unfused,
                                manifest=manifest, spec=spec,
                                layers=timing, layer_specs=layer_specs, alpha=alpha, res=res,
                                targets_dir=targets_dir, on_progress=step)
    for message in done.timing_warnings:
        say(f"warning: {message}")
    render(done.report, format)
    if done.warning and format not in (Format.csv, Format.json):  # those print notes on stderr
        say(f"warning: {done.warning}")
    say(f"wrote target {target} to {done.path}")


@command("suggest")
def suggest_cmd(
    specs: Annotated[list[str], typer.Argument(help="The specs to choose from (built-in or files).")],
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="How many configurations.")] = 6,
    alpha: Annotated[str, typer.Option(
        "--alpha", "-a", help=f"Width multipliers, {GRID_HELP}.")] = "1,0.75,0.5,0.25",
    res: Annotated[str, typer.Option(
        "--res", "-r", help=f"Resolutions, {GRID_HELP}.")] = "224,192,160,128",
    batch: BatchOpt = 1,
    model: Annotated[str, typer.Option(
        "--model", help="'whole' (the whole-network model) or 'roofline' (for accelerators: "
                        "the order to measure in, and how the 90% interval narrows with "
                        "each).")] = "whole",
    dtype: Annotated[str, typer.Option(
        "--dtype", help="With --model roofline: the dtype the device runs at.")] = "float32",
    format: FormatOpt = Format.table,
) -> None:
    """Which N configurations to measure for a well-determined latency fit (then `calibrate`).

    Chosen from every spec × --alpha × --res, D-optimal on the model's scaled features (with
    --model roofline, on its sensitivities at a prior accelerator).

    Example: mobilecost suggest mobilenet_v1 mobilenet_v2 -n 6
    Example: mobilecost suggest mobilenet_v1 mobilenet_v2 -n 8 --model roofline --dtype fp16
    """
    from ..reports.latency import suggest_report

    render(suggest_report(specs, alpha, res, n, batch, model, dtype), format)


@command("targets")
def targets_cmd(targets_dir: TargetsDirOpt = None, format: FormatOpt = Format.table) -> None:
    """List the calibrated targets, with how many points each was fitted on and its error.

    Example: mobilecost targets --format json
    """
    from ..reports.latency import targets_report

    report, warnings = targets_report(targets_dir)
    for message in warnings:
        say(message)
    render(report, format)


@command("predict")
def predict_cmd(
    spec: SpecArg = "mobilenet_v1",
    target: TargetOpt = ...,  # type: ignore[assignment]
    alpha: Annotated[str, typer.Option("--alpha", "-a", help="Width multipliers α, comma-separated.")] = "1",
    res: Annotated[Optional[str], typer.Option(
        "--res", "-r", help="Resolutions, comma-separated \\[default: the spec's base resolution].")] = None,
    batch: BatchOpt = 1,
    dtype: LatencyDtypeOpt = None,
    validate: Annotated[bool, typer.Option(
        "--validate", help="Validate the target instead: leave-one-out over its measured points "
                           "(or held-out, with --calibrate-on / --calibrate-with / --measurements).")] = False,
    calibrate_on: Annotated[Optional[int], typer.Option(
        "--calibrate-on", help="With --validate: refit on N of the target's points that span its range "
                               "and predict the others.")] = None,
    calibrate_with: Annotated[Optional[str], typer.Option(
        "--calibrate-with", help="With --validate: refit on these points (α/resolution or α/resolution/batch, comma-separated, "
                                 "e.g. 1/224,0.25/128) and predict the others.")] = None,
    measurements: Annotated[Optional[Path], typer.Option(
        "--measurements", help="With --validate: predict these measurements with the stored target as it is.",
        dir_okay=False)] = None,
    hold_out_spec: Annotated[Optional[str], typer.Option(
        "--hold-out-spec", help="With --validate: refit on the target's measurements of every other "
                                "network and predict all of this one's (a network never measured).")] = None,
    output_dir: Annotated[Path, typer.Option(
        "--output-dir", help="With --validate: where the plot goes.", file_okay=False,
        parser=nonempty_path("--output-dir"), metavar="<path>")] = Path("mobilecost-reports"),
    targets_dir: TargetsDirOpt = None,
    format: FormatOpt = Format.table,
) -> None:
    """Predict latencies on a calibrated target, or validate the target's predictions.

    Example: mobilecost predict mobilenet_v1 --target my-cpu --alpha 0.5,0.35 --res 160,96
    Example: mobilecost predict --validate --target my-cpu --calibrate-on 6
    Example: mobilecost predict --validate --target my-cpu --hold-out-spec mobilenet_v2
    """
    from ..latency.precision import check_dtype
    from ..latency.targets import load

    held = {"calibrate_on": calibrate_on, "calibrate_with": calibrate_with,
            "measurements": measurements, "hold_out_spec": hold_out_spec}
    if validate:
        check_output_dir(output_dir)
    elif any(v is not None for v in held.values()):
        raise MobilecostError("--calibrate-on, --calibrate-with, --measurements and --hold-out-spec "
                              "go with --validate")
    t = load(target, targets_dir)
    check_dtype(t, None if dtype is None else dtype.value)
    if validate:
        from ..latency.checks import validate as validate_target
        from ..reports.latency import validation_report

        v = validate_target(t, **held)
        with writing(output_dir):
            render(validation_report(v, output_dir), format)
        return
    from ..reports.latency import predict_report
    from .common import parse_alpha

    alphas = [parse_alpha(a) for a in split_list(alpha, "--alpha")]
    try:
        resolutions = None if res is None else [int(r) for r in split_list(res, "--res")]
    except ValueError:
        raise MobilecostError(f"--res must be comma-separated integers, got {res!r}") from None
    report, warning = predict_report(t, spec, alphas, resolutions, batch)
    render(report, format)
    if warning and format not in (Format.csv, Format.json):  # those print their notes on stderr
        err_console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)


__all__ = ["LatencyDtypeOpt", "TargetOpt", "TargetsDirOpt"]
