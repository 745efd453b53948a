"""The sweep command: cost, shares, activations, accuracy (and latency) over an α × resolution grid.

numpy, pandas and matplotlib load on use; torch only with --measure.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MobilecostError
from ..reports.report import Format
from .common import (
    AnyFormatOpt,
    BiasesOpt,
    BnOpt,
    ClassesOpt,
    ConventionOpt,
    SpecArg,
    check_output_file,
    command,
    explicit_option,
    report_written,
    say,
    status,
    writing,
)
from .gridopts import (
    DEFAULT_ALPHAS,
    AspectOpt,
    GridAlphaOpt,
    GridResOpt,
    MaxConfigsOpt,
    OutputDirOpt,
    PlotOpt,
    RhoOpt,
    SpecsOpt,
    checked_output,
    grid_options,
    load_target,
)
from .latency import TargetsDirOpt
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
from .render import TABLE_MAX_ROWS, render

SUFFIX_FORMATS = {".csv": Format.csv, ".json": Format.json, ".md": Format.markdown,
                  ".parquet": Format.parquet}

OutputFileOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Write every row to this file instead of stdout, in --format or "
                           "else by its suffix (.csv, .json, .md, .parquet).", dir_okay=True)]
MeasureOpt = Annotated[bool, typer.Option(
    "--measure", help="Also time every configuration in torch and add latency_ms (cached on "
                      "disk: an interrupted sweep resumes; see the timing options).")]
SweepTargetOpt = Annotated[Optional[str], typer.Option(
    "--target", help="Add predicted_latency_ms from this calibrated target "
                     "(see `mobilecost targets`).")]


def output_format(fmt: Format, output: Path | None, explicit: bool) -> Format:
    """The format the data goes out in, checked against --output (before any work)."""
    if output is None:
        if fmt is Format.parquet:
            raise MobilecostError("--format parquet writes a file: give --output FILE.parquet")
        return fmt
    check_output_file(output)
    if explicit and fmt is not Format.table:
        chosen = fmt
    elif output.suffix.lower() in SUFFIX_FORMATS:
        chosen = SUFFIX_FORMATS[output.suffix.lower()]
    else:
        raise MobilecostError(f"--output {output}: cannot tell the format from the suffix; name it "
                              f".csv, .json, .md or .parquet, or give --format csv|json|markdown|parquet")
    if chosen is Format.parquet:
        from ..reports.output import require_pyarrow

        require_pyarrow()
    return chosen


@command("sweep")
def sweep_cmd(ctx: typer.Context, spec: SpecArg = "mobilenet_v1", alpha: GridAlphaOpt = DEFAULT_ALPHAS,
              res: GridResOpt = None, rho: RhoOpt = None, aspect: AspectOpt = None,
              specs: SpecsOpt = None, format: AnyFormatOpt = Format.table,
              output: OutputFileOpt = None, output_dir: OutputDirOpt = None, plot: PlotOpt = False,
              max_configs: MaxConfigsOpt = 5_000_000, convention: ConventionOpt = None,
              biases: BiasesOpt = False, bn: BnOpt = False, classes: ClassesOpt = None, target: SweepTargetOpt = None, targets_dir: TargetsDirOpt = None,
              measure: MeasureOpt = False, batch: BatchOpt = DEFAULT_BATCH,
              device: DeviceOpt = DEFAULT_DEVICE, dtype: DtypeOpt = DEFAULT_DTYPE,
              threads: ThreadsOpt = None, channels_last: ChannelsLastOpt = False,
              compile: CompileOpt = False, cuda_graphs: GraphsOpt = False,
              time_share: TimeShareOpt = False, min_time: MinTimeOpt = DEFAULT_MIN_TIME_S,
              max_time: MaxTimeOpt = DEFAULT_MAX_TIME_S, rounds: RoundsOpt = DEFAULT_ROUNDS,
              cache_dir: CacheDirOpt = None, fresh: FreshOpt = False,
              runtime: RuntimeOpt = DEFAULT_RUNTIME) -> None:
    """Cost, Mult-Adds shares, activations and accuracy over a grid of α × resolution.

    With no options: the paper's 16 configurations of MobileNet v1 (α 1, 0.75, 0.5, 0.25 × 224, 192, 160, 128 px). Accuracy is published where it exists, else estimated (and marked so).

    --output FILE writes every row to a file (.csv, .json, .md, or .parquet for big grids); --output-dir DIR writes the CSV, JSON and Markdown reports there, and --plot the plots (default folder ./mobilecost-reports).

    --dtype fp32|fp16|bf16|int8 adds bytes at that dtype: weights as a file stores them (int8: per-channel scales, int32 biases) and activations; with --measure it is also the precision timed.

    --target NAME adds each configuration's predicted latency on a calibrated target.

    --measure times every configuration in torch and adds the measured latency, with a progress bar and an on-disk cache: an interrupted sweep resumes. The timing options (--batch ... --fresh) are those of `mobilecost measure`; they go with --measure (--batch also with --target).

    Example: mobilecost sweep mobilenet_v1 --alpha 0.25..1 --res 128..224 --plot
    Example: mobilecost sweep --alpha 0.25..1:0.001 --res 96..320:1 -o grid.parquet
    Example: mobilecost sweep --alpha 0.25,0.5 --res 128,160 --measure --threads 2 --rounds 3
    Example: mobilecost sweep --spec mobilenet_v2,mobilenet_v3_large,mnasnet_b1 --res 224
    Example: mobilecost sweep --alpha 0.5,1 --res 320x240,480x360 (height x width)
    Example: mobilecost sweep --res 128..224 --aspect 4:3 (widths 171..299)
    Example: mobilecost sweep --alpha 0.5..1 --res 224 --dtype int8
    """
    from ..reports import sweep as sr

    timing = timing_of(batch=batch, device=device, dtype=dtype if measure else DEFAULT_DTYPE,
                       threads=threads,
                       channels_last=channels_last, compile=compile, cuda_graphs=cuda_graphs,
                       min_time=min_time, max_time=max_time, runtime=runtime, rounds=rounds,
                       time_share=time_share, cache_dir=cache_dir, fresh=fresh,
                       torch_needed=measure)
    bytes_dtype = dtype.value if explicit_option(ctx, "dtype") else None  # bytes at it
    stray = [o for o in timing.changed() if not (o == "--batch" and target is not None)
             and o != "--dtype"]
    if stray and not measure:
        raise MobilecostError(f"{', '.join(stray)} {'needs' if len(stray) == 1 else 'need'} --measure")
    if measure and specs is not None:
        raise MobilecostError("--measure times one spec at a time; give SPEC, not --spec")
    fmt = output_format(format, output, explicit_option(ctx, "format"))
    # --output-dir writes CSV, JSON and Markdown of every row: JSON, the largest, sets the peak.
    s, alphas, resolutions, counting = grid_options(
        ctx, spec, specs, alpha, res, rho, aspect, max_configs,
        "json" if output_dir is not None else fmt.value, convention, biases, bn, classes)
    folder = checked_output(output_dir, plot)
    # the precision timed (--measure) or asked for the bytes (--dtype) must be the target's
    why = (("--dtype",) if bytes_dtype else
           ("--measure times", "give --measure the target's precision with --dtype"))
    t = load_target(target, targets_dir, dtype.value if measure or bytes_dtype else None, *why)
    n = len(alphas) * len(resolutions) * (len(s) if isinstance(s, list) else 1)
    with status(f"sweeping {n:,} configurations", n > 200_000 or (t is not None and n > 2_000)), \
            progress(f"measuring {spec}", 0, show=measure) as step:
        run = sr.run_sweep(s, alphas, resolutions, counting, max_configs, target=t,
                           spec_name=None if isinstance(s, list) else spec, batch=batch,
                           timing=timing if measure else None, on_progress=step,
                           dtype=bytes_dtype)
    _emit(run, s, folder, plot, output, fmt, time_share, n > 200_000)


def _emit(run, s, folder: Path | None, plot: bool, output: Path | None, fmt: Format,
          time_share: bool, big: bool) -> None:
    """The sweep's data to stdout (or --output), its reports and plots into the folder."""
    from ..reports import sweep as sr
    from ..reports.output import frame_csv_chunks, write_frame, write_sweep

    df, rows, extra = run.df, run.rows, run.notes
    if folder is not None:
        with status("writing reports", big), writing(folder):
            written = write_sweep(df, folder, extra, plot)
            if plot and rows:
                from ..reports.timing_plots import measured_sweep_plots

                written += measured_sweep_plots(df, rows, folder, s.name, time_share)
        report_written(written)
    if output is not None:
        with status(f"writing {output}", big), writing(output):
            write_frame(df, output, fmt.value, extra)
        report_written([output])
    elif fmt is Format.csv:
        with status("writing", big):
            sys.stdout.flush()
            for block in frame_csv_chunks(df, sr.sweep_columns(df)):
                sys.stdout.buffer.write(block)
            sys.stdout.buffer.flush()
    else:
        limit = TABLE_MAX_ROWS if fmt is Format.table else None
        with status("formatting", big and fmt is not Format.table):
            render(sr.sweep_report(df, limit, extra), fmt)
    if output is not None or fmt is Format.csv:
        for note in sr.sweep_notes(df) + extra:
            say(f"note: {note}")
    for message in run.warnings:
        say(f"warning: {message}")


__all__ = ["sweep_cmd"]
