"""Options the grid commands (sweep, pick) share, and their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..engine.limits import ALLOWED_BYTES_PER_CONFIG, MEMORY_LIMIT, WORK_ALLOWANCE
from ..reports.sweep import DEFAULT_ALPHAS, DEFAULT_RESOLUTIONS
from .common import check_output_dir, nonempty_path

# Where --plot writes when no --output-dir is given: a folder in the current directory,
# never the checkout's committed reports/.
DEFAULT_OUTPUT_DIR = Path("mobilecost-reports")

GridAlphaOpt = Annotated[str, typer.Option(
    "--alpha", "-a", help="Width multipliers: a list (0.25,0.5,1), a range a..b (step 0.25) "
                          "or a..b:step.")]
GridResOpt = Annotated[Optional[str], typer.Option(
    "--res", "-r", help="Resolutions in pixels: a list, a range a..b (step 32) or a..b:step, "
                        "and HEIGHTxWIDTH items (320x240) "
                        f"\\[default: {DEFAULT_RESOLUTIONS}]")]
AspectOpt = Annotated[Optional[str], typer.Option(
    "--aspect", help="Non-square inputs: each --res (or --rho) number is a height, and the "
                     "width is height × ASPECT (width / height: 4:3, 0.75, 1.5), rounded "
                     "\\[default: the spec's own, 1 for a square spec].")]
RhoOpt = Annotated[Optional[str], typer.Option(
    "--rho", help="Resolution multipliers of the spec's base resolution instead of --res "
                  "(a list or a range, step 0.25).")]
OutputDirOpt = Annotated[Optional[Path], typer.Option(
    "--output-dir", help="Write the report files (CSV, JSON, Markdown) into this folder "
                         f"\\[default with --plot: ./{DEFAULT_OUTPUT_DIR}/]",
    parser=nonempty_path("--output-dir"), metavar="<path>")]
PlotOpt = Annotated[bool, typer.Option(
    "--plot", help="Also write the plots (PNG and SVG) into --output-dir.")]
SpecsOpt = Annotated[Optional[str], typer.Option(
    "--spec", help="Several specs at once, instead of SPEC: a comma-separated list, or all (every "
                   "built-in); each configuration's accuracy from its own family.")]
MaxConfigsOpt = Annotated[int, typer.Option(
    "--max-configs", help="Refuse grids with more configurations than this, or needing more "
                          f"memory than this many swept and written as CSV "
                          f"({ALLOWED_BYTES_PER_CONFIG} bytes each, + {WORK_ALLOWANCE // 2**20} "
                          "MiB; the per-α work and the output format count); a grid needing "
                          f"more than {MEMORY_LIMIT // 2**30} GiB is refused whatever this says.")]


def grid_options(ctx: typer.Context, spec: str, specs: str | None, alpha: str, res: str | None,
                 rho: str | None, aspect: str | None, max_configs: int, per_row: str,
                 convention: str | None, biases: bool, bn: bool, classes: int | None):
    """(the spec or specs, α list, resolution list, Counting) from a grid command's options,
    the grid refused before any work if it is too large for memory (`per_row`: the output's
    format, whose bytes a row count)."""
    from ..reports.sweep import family_grid_from_options, grid_from_options
    from .common import counting_options

    one_spec_or_many(ctx, specs)
    if specs is not None:
        s, alphas, resolutions = family_grid_from_options(specs, alpha, res, rho, max_configs,
                                                          per_row, aspect)
    else:
        s, alphas, resolutions = grid_from_options(spec, alpha, res, rho, max_configs, per_row,
                                                   aspect)
    s, counting, _ = counting_options(s, convention, biases, bn, classes)
    return s, alphas, resolutions, counting


def load_target(target: str | None, targets_dir: Path | None, dtype: str | None = None,
                *why: str):
    """The calibrated target of --target (None without it); --targets-dir goes with it, and
    `dtype`, a precision asked of its latencies, must be the target's (`why`: where it was
    asked and the way out, as `latency.precision.check_dtype` takes them)."""
    from ..errors import MobilecostError

    if target is None:
        if targets_dir is not None:
            raise MobilecostError("--targets-dir goes with --target")
        return None
    from ..latency.precision import check_dtype
    from ..latency.targets import load

    t = load(target, targets_dir)
    check_dtype(t, dtype, *why)
    return t


def one_spec_or_many(ctx: typer.Context, specs: str | None) -> None:
    """Refuse SPEC and --spec together."""
    from ..errors import MobilecostError

    if specs is not None and ctx.get_parameter_source("spec").name not in ("DEFAULT", "DEFAULT_MAP"):
        raise MobilecostError("give the spec as an argument or --spec, not both")


def checked_output(output_dir: Path | None, plot: bool) -> Path | None:
    """The folder reports go to (checked, not made), if any. (grid_from_options has refused a
    grid too large for memory, from the options' arithmetic.)"""
    folder = output_dir if output_dir is not None else (DEFAULT_OUTPUT_DIR if plot else None)
    if folder is not None:
        check_output_dir(folder)
    return folder


__all__ = ["AspectOpt", "DEFAULT_ALPHAS", "DEFAULT_OUTPUT_DIR", "GridAlphaOpt", "GridResOpt",
           "MaxConfigsOpt", "OutputDirOpt", "PlotOpt", "RhoOpt", "SpecsOpt", "checked_output",
           "grid_options", "load_target", "one_spec_or_many"]
