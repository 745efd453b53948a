"""Latency commands: calibrate a target from measurements, list targets, predict and validate.

numpy and matplotlib are imported inside the library functions these commands call, never at
import: loading this module costs the analytic commands nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MobilecostError
from ..reports.report import Column, Format, Report, format_number, milliseconds, percent
from .common import (
    FormatOpt,
    SpecArg,
    check_output_dir,
    command,
    err_console,
    fail,
    render,
    writing,
)
from .measuring import (
    BatchOpt,
    CacheDirOpt,
    FreshOpt,
    MaxTimeOpt,
    MinTimeOpt,
    RoundsOpt,
    ThreadsOpt,
)

TargetOpt = Annotated[str, typer.Option("--target", help="A calibrated target's name (see `mobilecost targets`).")]
TargetsDirOpt = Annotated[Optional[Path], typer.Option(
    "--targets-dir", help="Where targets are stored \\[default: $MOBILECOST_TARGETS_DIR, "
                          "else ~/.config/mobilecost/targets].", file_okay=False)]


def _pct(x: object) -> str:
    return "" if x is None else percent(x, 1)


def _signed_pct(x: object) -> str:
    return "" if x is None else f"{100 * x:+.1f}%"


def _coefficient_notes(target) -> list[str]:
    c = target.model.coefficients

    def rate(v: float, unit: str) -> str:
        return f"{1e-6 / v:,.1f} {unit}" if v > 0 else "not used (fitted 0)"

    return [f"dense (conv, pointwise, FC) compute: {rate(c['ms_per_mac_dense'], 'GMAC/s')}",
            f"depthwise compute: {rate(c['ms_per_mac_depthwise'], 'GMAC/s')}",
            f"memory: {rate(c['ms_per_byte'], 'GB/s')} ({target.model.dtype})",
            f"fixed cost per layer: {1e3 * c['ms_per_layer']:.1f} µs"]


@command("calibrate")
def calibrate_cmd(
    measurements: Annotated[list[Path], typer.Argument(
        help="CSV of measured latencies: columns spec, alpha, resolution, batch, latency_ms "
             "(from `sweep --measure` or any other source); or benchmark logs of TFLite's "
             "benchmark_model or onnxruntime_perf_test (files, or folders of *.log / *.txt); "
             "with --suggest, the specs to choose from.")],
    target: Annotated[Optional[str], typer.Option(
        "--target", help="Name of the target to write (see `mobilecost targets`).")] = None,
    suggest: Annotated[Optional[int], typer.Option(
        "--suggest", min=1, help="Instead of calibrating: which N configurations of the specs "
                                 "given (over --alpha × --res) to measure for the best-determined "
                                 "fit.")] = None,
    alpha: Annotated[str, typer.Option(
        "--alpha", "-a", help="With --suggest or --layer-specs: width multipliers, a list or a range a..b[:step] "
                              "\\[default: 1,0.75,0.5,0.25].")] = "1,0.75,0.5,0.25",
    res: Annotated[str, typer.Option(
        "--res", "-r", help="With --suggest or --layer-specs: resolutions, a list or a range a..b[:step] "
                            "\\[default: 224,192,160,128].")] = "224,192,160,128",
    form: Annotated[str, typer.Option("--form", help="The model: 'sum' (compute + memory per layer) "
                                                     "or 'max' (the roofline's max).")] = "sum",
    manifest: Annotated[Optional[Path], typer.Option(
        "--manifest", help="With logs: the manifest.csv of `mobilecost export`, matching each "
                           "log's model file to its configuration \\[default: read the "
                           "configuration from the file name, SPEC_ALPHA_RES].")] = None,
    spec: Annotated[Optional[str], typer.Option(
        "--spec", help="With logs: the spec (built-in or file) the models were made from "
                       "\\[default: the manifest's, or the file name's].")] = None,
    layers: Annotated[bool, typer.Option(
        "--layers", help="Also time each distinct layer shape of the measured configurations "
                         "(and of --layer-specs) alone on this machine with torch, cached and "
                         "resumable; the target then predicts a network as the sum of its "
                         "layers' times plus an overhead fitted on the measurements.")] = False,
    layer_specs: Annotated[Optional[str], typer.Option(
        "--layer-specs", help="With --layers: time the layers of these specs too "
                              "(comma-separated), over --alpha × --res.")] = None,
    batch: BatchOpt = 1,
    threads: ThreadsOpt = None,
    min_time: MinTimeOpt = 0.2,
    max_time: MaxTimeOpt = 2.0,
    rounds: RoundsOpt = 1,
    cache_dir: CacheDirOpt = None,
    fresh: FreshOpt = False,
    targets_dir: TargetsDirOpt = None,
    format: FormatOpt = Format.table,
) -> None:
    """Fit the latency model to measured latencies and store it as a named target.

    The latencies come from a CSV, or from the logs of the on-device benchmark tools (the
    median of each log's timed runs; see docs/deploy.md). --batch, --threads, --min-time,
    --max-time, --rounds, --cache-dir and --fresh time the layers of --layers.

    Example: mobilecost calibrate reports/cpu/sweep_mobilenet_v1.csv --target my-cpu
    Example: mobilecost calibrate logs/ --manifest onnx/manifest.csv --target pixel-7
    Example: mobilecost calibrate --suggest 6 mobilenet_v1 mobilenet_v2
    Example: mobilecost calibrate m.csv --target my-cpu --layers -t 1 --layer-specs mnasnet_b1 -a 1,0.5 -r 224,160
    """
    from ..latency import model as lt
    from ..latency import targets as tg

    if suggest is not None:
        if target is not None or manifest is not None or spec is not None:
            raise MobilecostError("--suggest chooses configurations to measure: give specs, not "
                                  "--target, --manifest or --spec")
        if layers or layer_specs is not None:
            raise MobilecostError("--layers times layers for a target; not with --suggest")
        from ..reports.sweep import suggest_report

        render(suggest_report([str(m) for m in measurements], alpha, res, suggest), format)
        return
    if target is None:
        raise MobilecostError("calibrate needs --target NAME, the name to store the target under")
    tg.check_name(target)
    if layer_specs is not None and not layers:
        raise MobilecostError("--layer-specs goes with --layers")
    timing_args = None
    if layers:
        from .measuring import TimingArgs

        timing_args = TimingArgs.of(batch=batch, threads=threads, min_time=min_time,
                                    max_time=max_time, rounds=rounds, cache_dir=cache_dir,
                                    fresh=fresh)
        extra_configs = _layer_spec_configs(layer_specs, alpha, res, batch)
    csvs = [m for m in measurements if m.suffix.lower() == ".csv"]
    notes_first: list[str] = []
    if csvs:
        if len(measurements) > 1:
            raise MobilecostError("give one CSV of measurements, or benchmark logs, not both "
                                  "or several CSVs")
        if manifest is not None or spec is not None:
            raise MobilecostError("--manifest and --spec go with benchmark logs, not a CSV")
        if measurements[0].is_dir():
            raise MobilecostError(f"{measurements[0]}: is a folder, not a CSV")
        data = tg.read_measurements(measurements[0])
        source = str(measurements[0])
    else:
        from ..latency.logs import measurements_from_logs

        data, note = measurements_from_logs(measurements, manifest, spec)
        notes_first.append(note)
        source = ", ".join(map(str, measurements))
    t = tg.calibrate(target, data, source=source, form=form)
    if timing_args is not None:
        t = _time_layers(t, extra_configs, timing_args, data.dtype)
    path = tg.save(t, targets_dir)
    rows = [{"spec": p.config.spec, "alpha": p.config.alpha, "resolution": p.config.resolution,
             "batch": p.config.batch, "latency_ms": p.latency_ms, "fitted_latency_ms": t.predict_ms(p.config),
             "error": t.predict_ms(p.config) / p.latency_ms - 1} for p in t.points]
    notes = notes_first + _coefficient_notes(t)
    notes.append(f"fit on {len(t.points)} points: median error {t.fit_median_error:.1%}, "
                 f"worst {t.fit_worst_error:.1%}")
    if t.loo_within is not None:
        notes.append(f"leave-one-out: {t.loo_within:.0%} within ±10%, median {t.loo_median_error:.1%}, "
                     f"worst {t.loo_worst_error:.1%}")
    cond = lt.spread_condition([p.config for p in t.points], t.model.dtype)
    poor = None
    if cond > lt.POOR_SPREAD_CONDITION:
        poor = (f"the {len(t.points)} calibration points are poorly spread (spread condition "
                f"{cond:.0f}, above {lt.POOR_SPREAD_CONDITION:g}): some coefficients are barely "
                f"determined; `mobilecost calibrate --suggest N SPEC...` chooses better-spread ones")
        notes.append("warning: " + poor)
    if t.layers is not None:
        notes += _layer_notes(t)
    render(Report(f"Target {target}: {t.method} fitted to {source}", [
        Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
        Column("resolution", "Res"), Column("batch", "Batch"),
        Column("latency_ms", "Measured ms", milliseconds), Column("fitted_latency_ms", "Fitted ms", milliseconds),
        Column("error", "Error", _signed_pct)], rows, notes), format)
    if poor and format not in (Format.csv, Format.json):  # those print their notes on stderr
        err_console.print(f"warning: {poor}", highlight=False, markup=False, soft_wrap=True)
    err_console.print(f"wrote target {target} to {path}", highlight=False, markup=False)


MAX_LAYER_CONFIGS = 5_000  # configurations --layer-specs × --alpha × --res may name


def _layer_spec_configs(layer_specs: Optional[str], alpha: str, res: str, batch: int) -> list:
    """The configurations of --layer-specs over --alpha × --res (checked before any timing)."""
    if layer_specs is None:
        return []
    from ..engine.axes import specs_grid
    from ..lang.identity import Network
    from ..lang.load import load_spec
    from ..latency import model as lt

    specs = [load_spec(x) for x in _split(layer_specs, "--layer-specs")]
    alphas, resolutions = specs_grid(
        specs, alpha, res, MAX_LAYER_CONFIGS,
        lambda total: MobilecostError(f"--layer-specs × --alpha × --res is {total:,} "
                                      f"configurations; at most {MAX_LAYER_CONFIGS:,}"))
    from ..lang.spec import checked_configs

    configs = []
    for s in specs:
        for a, r in checked_configs(s, [(a, r) for a in alphas for r in resolutions]):
            configs.append(lt.Config(s.name, a, r, batch, Network.of(s)))
    return configs


def _time_layers(t, extra_configs: list, args, dtype: str):
    """Time the distinct layers of the target's measured configurations (at --batch) and of
    `extra_configs`, with a progress bar; the target with its layer table. Ctrl-C: exit 130,
    one line, no target written; what was timed is in the cache and a rerun resumes."""
    from dataclasses import replace

    from ..torch import require_torch

    require_torch()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..dtypes import lookup as lookup_dtype
    from ..latency import targets as tg
    from ..latency.layers import distinct_layers
    from ..torch.timing import (
        GridInterrupted,
        MeasurementCache,
        MeasureOptions,
        default_cache_dir,
        device_name,
        measure_layers,
    )

    short = lookup_dtype(dtype).short
    options = MeasureOptions.of(replace(args.options, dtype=short)).resolved()
    batch = options.batch
    configs = [p.config for p in t.points if p.config.batch == batch] + extra_configs
    if not any(p.config.batch == batch for p in t.points):
        raise MobilecostError(f"--layers: no measurement at batch {batch} to fit the overhead on "
                              f"(give --batch as measured)")
    layers = distinct_layers(configs)
    cache = MeasurementCache(args.grid.cache_dir or default_cache_dir())
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                        transient=True)
    rounds = args.rounds
    warnings: list[str] = []
    with progress:
        task = progress.add_task(f"timing {len(layers)} layer shapes", total=len(layers) * rounds)

        def step(done: int, total: int, row: dict) -> None:
            took = "error" if row["error"] else f"{1e3 * row['latency_ms']:.0f} µs"
            where = f" round {row['round']}/{rounds}" if rounds > 1 else ""
            progress.update(task, completed=done, description=(
                f"layer {row['op']}{where}: {took}" + (" (cached)" if row["cached"] else "")))

        try:
            rows = measure_layers(configs, options, cache, fresh=args.grid.fresh,
                                  on_progress=step, rounds=rounds, on_warning=warnings.append)
        except GridInterrupted as exc:
            progress.stop()
            raise fail(f"interrupted after {len(exc.rows)} of {exc.total} layer timings; no target "
                       f"written; the {len(exc.rows)} timed are kept in the cache {cache.folder}, "
                       f"run the same command again to resume", 130) from None
    for message in warnings[:3]:
        err_console.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)
    if len(warnings) > 3:
        err_console.print(f"warning: and {len(warnings) - 3} more of the {len(rows)} layer shapes "
                          f"(the layer table's timing.noisy_layers counts those that stayed noisy)",
                          highlight=False, markup=False, soft_wrap=True)
    timing = {"device": options.device, "device_name": device_name(options.device),
              "threads": options.threads, "min_time_s": options.min_run_time_s,
              "max_time_s": options.max_run_time_s, "rounds": rounds,
              "noisy_layers": sum(bool(r.get("noisy")) for r in rows),
              "failed_layers": sum(bool(r.get("error")) for r in rows)}
    return tg.with_layer_table(t, rows, layers, batch, dtype, timing)


def _layer_notes(t) -> list[str]:
    from ..latency.layers import FULL_OVERHEAD_POINTS

    table = t.layers
    timing = table.timing
    notes = [f"layer table: {len(table.entries)} layer shapes timed alone (batch {table.batch}, "
             f"{timing.get('threads')} thread(s), {timing.get('rounds')} round(s), "
             f"{timing.get('noisy_layers', 0)} noisy); a network = {table.describe_overhead()}, "
             f"fitted on {table.overhead_points} whole-network measurements"
             + (f" (the weight bytes, map bytes and per-layer terms need at least "
                f"{FULL_OVERHEAD_POINTS}: left at 0)"
                if table.overhead_points < FULL_OVERHEAD_POINTS else "")]
    errors = t.layer_loo_errors
    if errors:
        from ..latency.model import ErrorSummary

        e = ErrorSummary.of(errors)
        notes.append(f"layer-level leave-one-out (overhead refitted): {e.within:.0%} within "
                     f"±10%, median {e.median_abs:.1%}, worst {e.worst_abs:.1%}")
    return notes


@command("targets")
def targets_cmd(targets_dir: TargetsDirOpt = None, format: FormatOpt = Format.table) -> None:
    """List the calibrated targets, with how many points each was fitted on and its error.

    Example: mobilecost targets --format json
    """
    from ..latency import targets as tg

    directory = targets_dir or tg.default_dir()
    rows = []
    good, bad = tg.scan(directory)
    for message in bad:
        err_console.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)
    for t in good:
        c = t.model.coefficients
        rows.append({"target": t.name, "device": t.device, "points": len(t.points), "form": t.model.form,
                     "dtype": t.model.dtype, "fit_median_error": t.fit_median_error,
                     "fit_worst_error": t.fit_worst_error, "loo_within_10pct": t.loo_within,
                     "loo_median_error": t.loo_median_error, "loo_worst_error": t.loo_worst_error,
                     **c, "layer_shapes": len(t.layers.entries) if t.layers is not None else 0,
                     "calibrated_on": t.domain.describe() if t.domain else "",
                     "source": t.source, "created": t.created})
    columns = [Column("target", "Target", numeric=False), Column("device", "Device", numeric=False),
               Column("points", "Points"), Column("form", "Model", numeric=False),
               Column("dtype", "Dtype", numeric=False),
               Column("fit_median_error", "Fit median err", _pct), Column("fit_worst_error", "Fit worst err", _pct),
               Column("loo_within_10pct", "LOO ±10%", _pct), Column("loo_median_error", "LOO median", _pct),
               Column("loo_worst_error", "LOO worst", _pct)]
    columns += [Column(k, k, table=False) for k in ("ms_per_mac_dense", "ms_per_mac_depthwise",
                                                    "ms_per_byte", "ms_per_layer")]
    columns += [Column("layer_shapes", "Layer shapes", table=False),
                Column("calibrated_on", "Calibrated on", numeric=False, table=False),
                Column("source", "Source", numeric=False, table=False),
                Column("created", "Created", numeric=False, table=False)]
    notes = [] if rows else [f"no targets in {directory}; make one with 'mobilecost calibrate'"]
    layered = [t for t in good if t.layers is not None]
    if layered:
        notes.append(f"{', '.join(t.name for t in layered)} "
                     f"{'predicts' if len(layered) == 1 else 'predict'} layer-level (a layer table, "
                     f"`calibrate --layers`); the Fit and LOO columns are the whole-network "
                     f"model's, `mobilecost predict --validate --target NAME` shows both")
    render(Report(f"Targets in {directory}", columns, rows, notes), format)


def _split(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise MobilecostError(f"{what} is empty")
    return items


@command("predict")
def predict_cmd(
    spec: SpecArg = "mobilenet_v1",
    target: TargetOpt = ...,  # type: ignore[assignment]
    alpha: Annotated[str, typer.Option("--alpha", "-a", help="Width multipliers α, comma-separated.")] = "1",
    res: Annotated[Optional[str], typer.Option(
        "--res", "-r", help="Resolutions, comma-separated \\[default: the spec's base resolution].")] = None,
    batch: Annotated[int, typer.Option("--batch", "-b", min=1, help="Batch size.")] = 1,
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
        "--output-dir", help="With --validate: where the plot goes.",
        file_okay=False)] = Path("mobilecost-reports"),
    targets_dir: TargetsDirOpt = None,
    format: FormatOpt = Format.table,
) -> None:
    """Predict latencies on a calibrated target, or validate the target's predictions.

    Example: mobilecost predict mobilenet_v1 --target my-cpu --alpha 0.5,0.35 --res 160,96
    Example: mobilecost predict --validate --target my-cpu --calibrate-on 6
    Example: mobilecost predict --validate --target my-cpu --hold-out-spec mobilenet_v2
    """
    from ..lang.load import load_spec
    from ..latency import model as lt
    from ..latency import targets as tg

    if validate:
        check_output_dir(output_dir)
    t = tg.load(target, targets_dir)
    if validate:
        _validate(t, calibrate_on, calibrate_with, measurements, hold_out_spec, output_dir, format)
        return
    if any(x is not None for x in (calibrate_on, calibrate_with, measurements, hold_out_spec)):
        raise MobilecostError("--calibrate-on, --calibrate-with, --measurements and --hold-out-spec "
                              "go with --validate")
    from .common import parse_alpha

    alphas = [parse_alpha(a) for a in _split(alpha, "--alpha")]
    if res is None:
        resolutions = [load_spec(spec).resolution]
    else:
        try:
            resolutions = [int(r) for r in _split(res, "--res")]
        except ValueError:
            raise MobilecostError(f"--res must be comma-separated integers, got {res!r}") from None
    rows = []
    for a in alphas:
        for r in resolutions:
            config = lt.Config(spec, a, r, batch)
            predicted = t.predict_ms(config)
            measured = t.measured_ms(config)
            low, high = t.interval_ms(config)
            rows.append({"spec": config.spec, "alpha": a, "resolution": r, "batch": batch,
                         "macs": lt.layer_features(config).total_macs, "predicted_latency_ms": predicted,
                         "predicted_latency_low_ms": None if low != low else low,
                         "predicted_latency_high_ms": None if high != high else high,
                         "measured_latency_ms": measured,
                         "error": None if measured is None else predicted / measured - 1,
                         "extrapolated": ", ".join(t.extrapolation(config))})
            if t.layers is not None:
                lp = t.layers.predict(config)
                rows[-1] |= {"layers": lp.layers, "layers_timed": lp.from_table,
                             "layers_modelled": lp.modelled}
    outside = [r for r in rows if r["extrapolated"]]
    domain = t.domain
    notes = [f"target {t.name}: {t.method} fitted on {len(t.points)} points of "
             f"{domain.describe() if domain else 'nothing'}"]
    if t.layers is not None:
        modelled = sum(r["layers_modelled"] for r in rows)
        notes.append(f"layer-level: each network is {t.layers.describe_overhead()}; "
                     f"{len(t.layers.entries)} layer shapes timed"
                     + (f"; {modelled} layers of these networks not timed, priced by the per-layer "
                        f"model fitted on the table (column layers_modelled)" if modelled else
                        "; every layer of these networks timed"))
        measured_whole = {p.config.network for p in t.points}
        if domain is not None and lt.Config(spec, alphas[0], resolutions[0], batch).network not in measured_whole:
            notes.append(f"{rows[0]['spec']} was not measured whole: its interval is the "
                         f"leave-one-out of the networks that were "
                         f"({', '.join(sorted({n.name for n in measured_whole}))}), and another "
                         f"family's errors can run wider; measure a few of its configurations and "
                         f"`predict --validate --hold-out-spec {rows[0]['spec']}` says how much")
    loo = _pct(t.prediction_loo_median) or "n/a"
    if len(outside) < len(rows):
        q = t.interval_rel
        notes.append(f"leave-one-out median error {loo}: it applies to predictions inside that range"
                     + (f"; 90% low-high: the prediction × (1 ± {q:.1%}), the leave-one-out errors' "
                        f"90% rank" if q is not None and q != float("inf") else
                        "; too few points for a 90% interval"))
    if outside:
        if t.layers is not None:
            warning = (f"{len(outside)} of {len(rows)} predictions extrapolate beyond what target "
                       f"{t.name} timed (column Extrapolates: layers priced by the per-layer "
                       f"model, or another batch); the leave-one-out error does not apply to them")
        else:
            warning = (f"{len(outside)} of {len(rows)} predictions extrapolate beyond what target {t.name} "
                       f"was calibrated on (column Extrapolates: another spec or batch, or α or "
                       f"resolution more than {lt.EXTRAPOLATION_MARGIN - 1:.0%} outside its range); the "
                       f"leave-one-out error does not apply to them")
        notes.append(warning)
    render(Report(f"Predicted latency on {t.name}", [
        Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
        Column("resolution", "Res"), Column("batch", "Batch"), Column("macs", "Mult-Adds"),
        Column("predicted_latency_ms", "Predicted ms", milliseconds),
        Column("predicted_latency_low_ms", "90% low", milliseconds),
        Column("predicted_latency_high_ms", "90% high", milliseconds),
        Column("measured_latency_ms", "Measured ms", milliseconds),
        Column("error", "Error", _signed_pct),
        Column("extrapolated", "Extrapolates", numeric=False, table=bool(outside))]
        + ([Column("layers", "Layers", table=False), Column("layers_timed", "Timed", table=False),
            Column("layers_modelled", "Modelled", table=False)] if t.layers is not None else []),
        rows, notes), format)
    if outside and format not in (Format.csv, Format.json):  # those print their notes on stderr
        err_console.print(f"warning: {warning}", highlight=False, markup=False, soft_wrap=True)


def _validate(t, calibrate_on: Optional[int], calibrate_with: Optional[str], measurements: Optional[Path],
              hold_out_spec: Optional[str], out_dir: Path, format: Format) -> None:
    from ..lang.identity import network_of
    from ..latency import model as lt
    from ..latency import targets as tg

    if sum(x is not None for x in (calibrate_on, calibrate_with, measurements, hold_out_spec)) > 1:
        raise MobilecostError("give at most one of --calibrate-on, --calibrate-with, --measurements "
                              "and --hold-out-spec")
    points = list(t.points)
    if calibrate_on is not None:
        v = lt.held_out(points, lt.spread_subset(points, calibrate_on), t.model.form, t.model.dtype)
        stem = f"validate_{t.name}_heldout{calibrate_on}"
    elif calibrate_with is not None:
        wanted = [lt.parse_alpha_res(x) for x in _split(calibrate_with, "--calibrate-with")]
        by_config = {p.config: p for p in points}
        missing = [c.label for c in wanted if c not in by_config]
        if missing:
            raise MobilecostError(f"--calibrate-with: not among target {t.name}'s measured points: "
                                  f"{', '.join(missing)}")
        v = lt.held_out(points, [by_config[c] for c in wanted], t.model.form, t.model.dtype)
        stem = f"validate_{t.name}_with{len(wanted)}"
    elif hold_out_spec is not None:
        v = lt.held_out_spec(points, hold_out_spec, t.model.form, t.model.dtype)
        stem = f"validate_{t.name}_without_{network_of(hold_out_spec).name}"
    elif measurements is not None:
        data = tg.read_measurements(measurements)
        preds = tuple(lt.Prediction(p, lt.predict_ms(t.model, p.config), b, a)
                      for p, (b, a) in zip(data.points, lt.baselines(points, data.points)))
        v = lt.Validation("held-out (new measurements)", preds, points)
        stem = f"validate_{t.name}_{measurements.stem}"
    else:
        v = lt.leave_one_out(points, t.model.form, t.model.dtype)
        stem = f"validate_{t.name}_loo"
    if t.layers is not None:
        v = _with_layer_level(t, v, points)
    m, b, af = v.model, v.baseline, v.affine
    rows = [{"spec": p.point.config.spec, "alpha": p.point.config.alpha, "resolution": p.point.config.resolution,
             "batch": p.point.config.batch, "measured_latency_ms": p.point.latency_ms,
             "predicted_latency_ms": p.predicted_ms, "error": p.error,
             "baseline_latency_ms": p.baseline_ms, "baseline_error": p.baseline_error,
             "affine_latency_ms": p.affine_ms, "affine_error": p.affine_error,
             **({"layer_latency_ms": p.layer_ms, "layer_error": p.layer_error}
                if t.layers is not None else {})} for p in v.predictions]
    from ..reports.plots import plot_validation

    with writing(out_dir):
        files = plot_validation(v, out_dir / stem, f"target {t.name} ({t.model.form} model)")
    ratio = b.median_abs / m.median_abs if m.median_abs else float("inf")
    notes = []
    if measurements is not None:
        seen = {p.config for p in points}
        overlap = sum(p.point.config in seen for p in v.predictions)
        notes.append(f"{overlap} of these {m.n} configurations are among the {len(points)} the target was "
                     f"fitted on (measured again, not held out)")
    if hold_out_spec is not None:
        names = sorted({p.config.spec for p in v.calibration})
        notes.append(f"calibrated on the {len(v.calibration)} measurements of {', '.join(names)}")
    elif v.calibration and v.method == "held-out":
        notes.append("calibrated on " + ", ".join(p.config.label for p in v.calibration))
    notes += [f"{'whole-network ' if t.layers is not None else ''}model: {m.within:.0%} of {m.n} within ±10% of measured, median error {m.median_abs:.1%}, "
              f"worst {m.worst_abs:.1%}",
              f"Mult-Adds-proportional baseline (k·MACs, fitted on the same points): {b.within:.0%} within ±10%, "
              f"median error {b.median_abs:.1%}, worst {b.worst_abs:.1%}; "
              f"median error ratio baseline/model {ratio:.1f}×",
              f"affine baseline (c0 + k·MACs, fitted on the same points): {af.within:.0%} within ±10%, "
              f"median error {af.median_abs:.1%}, worst {af.worst_abs:.1%}",
              "plot: " + ", ".join(str(f) for f in files)]
    if t.layers is not None:
        ly = v.layer
        notes.insert(-1, f"layer-level (column Layer err: the {len(t.layers.entries)} timed layer "
                         f"shapes, overhead refitted on the same points): {ly.within:.0%} within "
                         f"±10%, median error {ly.median_abs:.1%}, worst {ly.worst_abs:.1%}")
    render(Report(f"Validation of target {t.name}: {v.method}", [
        Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
        Column("resolution", "Res"), Column("batch", "Batch"),
        Column("measured_latency_ms", "Measured ms", milliseconds), Column("predicted_latency_ms", "Predicted ms", milliseconds),
        Column("error", "Error", _signed_pct), Column("baseline_latency_ms", "k·MACs ms", milliseconds),
        Column("baseline_error", "k·MACs err", _signed_pct),
        Column("affine_latency_ms", "c0+k·MACs ms", milliseconds, table=False),
        Column("affine_error", "c0+k·MACs err", _signed_pct)]
        + ([Column("layer_latency_ms", "Layer ms", milliseconds, table=False),
            Column("layer_error", "Layer err", _signed_pct)] if t.layers is not None else []),
        rows, notes, drop_order=("baseline_latency_ms", "batch", "predicted_latency_ms",
                                 "measured_latency_ms")), format)


def _with_layer_level(t, v, points):
    """The validation with each prediction's layer-level value: the target's layer table with
    its overhead refitted on the validation's calibration points (without the point itself in
    a leave-one-out; as stored for new measurements)."""
    from dataclasses import replace

    table = t.layers
    if v.method == "leave-one-out" and all(p.config.batch == table.batch for p in points):
        from ..latency.layers import loo_errors

        # each network's layer sum once, the overhead refitted without each point
        errors = dict(zip((p.config for p in points), loo_errors(table, points)))
        ms = [(1 + errors[p.point.config]) * p.point.latency_ms for p in v.predictions]
    elif v.method == "leave-one-out":
        ms = [table.with_overhead([q for q in points if q is not p.point]).predict_ms(p.point.config)
              for p in v.predictions]
    else:
        fitted = table if v.calibration == tuple(points) else table.with_overhead(v.calibration)
        ms = [fitted.predict_ms(p.point.config) for p in v.predictions]
    return replace(v, predictions=tuple(replace(p, layer_ms=x) for p, x in zip(v.predictions, ms)))
