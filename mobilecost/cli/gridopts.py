"""Options the grid commands (sweep, pick) share, and their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..sweepreport import DEFAULT_ALPHAS, DEFAULT_RESOLUTIONS
from .common import check_output_dir

# Where --plot writes when no --output-dir is given: a folder in the current directory,
# never the checkout's committed reports/.
DEFAULT_OUTPUT_DIR = Path("mobilecost-reports")

GridAlphaOpt = Annotated[str, typer.Option(
    "--alpha", "-a", help="Width multipliers: a list (0.25,0.5,1), a range a..b (step 0.25) "
                          "or a..b:step.")]
GridResOpt = Annotated[Optional[str], typer.Option(
    "--res", "-r", help="Resolutions in pixels: a list, a range a..b (step 32) or a..b:step "
                        f"\\[default: {DEFAULT_RESOLUTIONS}]")]
RhoOpt = Annotated[Optional[str], typer.Option(
    "--rho", help="Resolution multipliers of the spec's base resolution instead of --res "
                  "(a list or a range, step 0.25).")]
OutputDirOpt = Annotated[Optional[Path], typer.Option(
    "--output-dir", help="Write the report files (CSV, JSON, Markdown) into this folder "
                         f"\\[default with --plot: ./{DEFAULT_OUTPUT_DIR}/]")]
PlotOpt = Annotated[bool, typer.Option(
    "--plot", help="Also write the plots (PNG and SVG) into --output-dir.")]
MaxConfigsOpt = Annotated[int, typer.Option(
    "--max-configs", help="Refuse grids with more configurations than this (memory).")]


def checked_output(n_alphas: int, n_res: int, max_configs: int, output_dir: Path | None,
                   plot: bool) -> Path | None:
    """Refuse a grid too large for memory; the folder reports go to (checked, not made), if any."""
    from ..gridcost import grid_size_error

    err = grid_size_error(n_alphas, n_res, max_configs)
    if err:
        raise err
    folder = output_dir if output_dir is not None else (DEFAULT_OUTPUT_DIR if plot else None)
    if folder is not None:
        check_output_dir(folder)
    return folder


__all__ = ["DEFAULT_ALPHAS", "DEFAULT_OUTPUT_DIR", "GridAlphaOpt", "GridResOpt", "MaxConfigsOpt",
           "OutputDirOpt", "PlotOpt", "RhoOpt", "checked_output"]
