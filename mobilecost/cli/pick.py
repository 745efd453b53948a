"""The pick command: the Pareto frontier and the most accurate configuration in budget."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import MobilecostError
from ..reports.report import Format
from .common import (
    ClassesOpt,
    ConventionOpt,
    FormatOpt,
    SpecArg,
    command,
    fail,
    report_written,
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
from .latency import LatencyDtypeOpt, TargetsDirOpt
from .render import render

MaxMacsOpt = Annotated[Optional[str], typer.Option(
    "--max-macs", help="Mult-Adds budget, e.g. 300M (a finite positive number; suffixes k, M, G).")]
MaxParamsOpt = Annotated[Optional[str], typer.Option(
    "--max-params", help="Parameter budget, e.g. 2M (a finite positive number; suffixes k, M, G).")]
MaxLatencyOpt = Annotated[Optional[str], typer.Option(
    "--max-latency", help="Latency budget on --target, e.g. 5ms, 0.5s or 800us.")]
SafeOpt = Annotated[bool, typer.Option(
    "--safe", help="With --max-latency: the upper end of each latency's 90% interval must fit "
                   "(predictions that extrapolate never do).")]
PickTargetOpt = Annotated[Optional[str], typer.Option(
    "--target", help="A calibrated target (see `mobilecost targets`): pick by its latency, the "
                     "measured one where it has one for a configuration, else the predicted.")]


@command("pick")
def pick_cmd(ctx: typer.Context, spec: SpecArg = "mobilenet_v1", alpha: GridAlphaOpt = DEFAULT_ALPHAS,
             res: GridResOpt = None, rho: RhoOpt = None, aspect: AspectOpt = None,
             max_macs: MaxMacsOpt = None,
             max_params: MaxParamsOpt = None, max_latency: MaxLatencyOpt = None,
             safe: SafeOpt = False, specs: SpecsOpt = None, target: PickTargetOpt = None,
             targets_dir: TargetsDirOpt = None, dtype: LatencyDtypeOpt = None,
             format: FormatOpt = Format.table, output_dir: OutputDirOpt = None,
             plot: PlotOpt = False, max_configs: MaxConfigsOpt = 5_000_000,
             convention: ConventionOpt = None, classes: ClassesOpt = None) -> None:
    """The Pareto-optimal configurations (top-1 against cost) and the most accurate one in budget.

    Budgets are finite positive numbers: suffixes k, M and G; --max-latency takes ms, s or us
    and needs --target. With --target the frontier is top-1 against latency on that target:
    the target's own measurement where it has one for a configuration, else its prediction
    (column Latency says which). The configuration picked is marked in the data (column
    `chosen`). Exit code 1 when no configuration meets the budget.

    Example: mobilecost pick mobilenet_v1 --alpha 0.25..1:0.05 --res 128..224:16 --max-macs 300M
    Example: mobilecost pick --alpha 0.25..1:0.05 --res 128..224:16 --max-latency 5ms --target my-cpu
    Example: mobilecost pick --max-latency 5ms --safe --target my-cpu
    Example: mobilecost pick --max-latency 10ms --target pixel3-int8 --dtype int8
    Example: mobilecost pick --spec mobilenet_v1,mobilenet_v2 --alpha 0.35..1:0.05 --max-macs 200M
    """
    from ..reports.pick import budgets_from_options, nothing_fits, pick_report, write_pick

    if dtype is not None and target is None:
        raise MobilecostError("--dtype goes with --target (the precision of its latencies)")
    if max_latency is not None and target is None:
        raise MobilecostError("--max-latency needs --target NAME (a calibrated target; "
                              "see `mobilecost targets`)")
    s, alphas, resolutions, counting = grid_options(
        ctx, spec, specs, alpha, res, rho, aspect, max_configs,
        "json" if output_dir is not None else "table", convention, False, False, classes)
    budgets = budgets_from_options(max_macs, max_params, max_latency, safe)
    folder = checked_output(output_dir, plot)
    t = load_target(target, targets_dir, None if dtype is None else dtype.value)
    n = len(alphas) * len(resolutions) * (len(s) if isinstance(s, list) else 1)
    with status(f"picking from {n:,} configurations", n > 200_000 or (t is not None and n > 2_000)):
        p = pick_report(s, alphas, resolutions, budgets, t, target_spec=spec, counting=counting,
                        max_configs=max_configs)
    if folder is not None:
        with writing(folder):
            report_written(write_pick(p, folder, plot))
    if not p.fits:
        raise fail(nothing_fits(p), 1)
    render(p.report, format)
