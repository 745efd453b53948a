"""The pick command's library side: budgets from the options, the Pareto pick over a sweep
(one spec or several), the report with the chosen configuration marked in the data, the
nothing-fits detail and the files. numpy and pandas load on use."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..engine.cost import Counting
from ..engine.sweep import frame_specs
from ..errors import MobilecostError
from .output import write_reports
from .report import Column, Report
from .sweep import (
    add_target_latency,
    extrapolation_note,
    frame_rows,
    sweep_columns,
    sweep_frame,
    sweep_notes,
)

if TYPE_CHECKING:
    import pandas as pd

    from ..engine.pareto import Budget, Pick
    from ..lang.spec import Spec


@dataclass(frozen=True)
class PickReport:
    """What `pick` answers: the report (frontier rows plus the chosen one, marked in the
    `chosen` column), the sweep it was picked from and the pick itself."""

    report: Report
    frame: "pd.DataFrame"
    pick: "Pick"

    @property
    def fits(self) -> bool:
        return self.pick.best is not None


def budgets_from_options(max_macs: str | None = None, max_params: str | None = None,
                         max_latency: str | None = None, safe: bool = False) -> list["Budget"]:
    """The budgets as written (`300M`, `2M`, `5ms`), each checked; latency first."""
    from ..engine.axes import parse_latency_ms, parse_quantity
    from ..engine.pareto import Budget

    budgets = []
    if safe and max_latency is None:
        raise MobilecostError("--safe goes with --max-latency")
    if max_latency is not None:
        # --safe: the upper end of the latency's 90% interval must fit (latency_high_ms)
        budgets.append(Budget("latency_high_ms" if safe else "latency_ms",
                              parse_latency_ms(max_latency, "--max-latency"),
                              f"--max-latency {max_latency}" + (" --safe" if safe else "")))
    for column, option, text in (("macs", "--max-macs", max_macs),
                                 ("params", "--max-params", max_params)):
        if text is not None:
            budgets.append(Budget(column, parse_quantity(text, option), f"{option} {text}"))
    return budgets


def pick_report(spec: "Spec | str | Sequence[Spec | str]", alphas: Sequence[Fraction],
                resolutions: Sequence[int], budgets: Sequence["Budget"], target=None,
                target_spec: str | None = None, max_configs: int | None = None,
                counting: Counting = Counting()) -> PickReport:
    """The Pareto-optimal configurations (top-1 against cost) and the most accurate one within
    every budget, marked `chosen` in the rows (added to them when it is not on the frontier).
    Several specs give one frontier across them (column `spec`), each configuration's accuracy
    from its own family's published points and estimate."""
    import pandas as pd

    from ..engine.axes import format_quantity
    from ..engine.pareto import pick
    from ..lang.load import load_spec
    from ..latency.precision import latency_note

    several = isinstance(spec, (list, tuple))
    specs = [load_spec(x) for x in (spec if several else [spec])]
    frames = []
    for s in specs:
        d = sweep_frame(s, alphas, resolutions, counting, max_configs=max_configs)
        if target is not None:
            d = add_target_latency(d, s if several else (target_spec or s.name), alphas,
                                   resolutions, target, measured=True)
        frames.append(d)
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    s = specs[0]
    result = pick(df, budgets, cost="latency_ms" if target is not None else None)
    front = result.frontier.assign(chosen=False)
    if result.best is not None:
        best = result.best.name  # the row's index in the sweep
        if best in front.index:
            front.loc[best, "chosen"] = True
        else:
            row = df.loc[[best]].assign(within_budget=True, chosen=True)
            front = pd.concat([front, row]).sort_values(result.cost, kind="stable")
    columns = [c for c in sweep_columns(df) if not c.key.startswith("macs_share_")
               and c.key not in ("activation_elems", "peak_activation_elems")]
    if len(specs) > 1:  # the family is part of the answer
        columns = [Column("spec", "Spec", numeric=False) if c.key == "spec" else c for c in columns]
    columns.append(Column("within_budget", "In budget", lambda x: "yes" if x else "no",
                          numeric=False))
    columns.append(Column("chosen", "Pick", lambda x: "◀ chosen" if x else "", numeric=False))
    what = {"macs": "Mult-Adds", "params": "parameters",
            "latency_ms": f"latency on {getattr(target, 'name', target)}"}.get(result.cost,
                                                                                result.cost)
    budget_text = ", ".join(str(b) for b in budgets) or "no budget"
    notes = []
    if result.best is not None:
        b = result.best
        lat = (f", {b['latency_ms']:.3f} ms ({b['latency_source']})" if target is not None else "")
        src = str(b["accuracy_source"])
        if src == "estimated":
            src += f", {b['top1_low']:.1f}-{b['top1_high']:.1f}"
        notes.append(f"most accurate within {budget_text}: "
                     + (f"{b['spec']} " if len(specs) > 1 else "") + f"α {b['alpha']:g}, resolution "
                     f"{int(b['resolution'])}: {b['top1']:.1f}% top-1 ({src}), "
                     f"{format_quantity(int(b['macs']))} Mult-Adds, "
                     f"{format_quantity(int(b['params']))} params" + lat
                     + "; the row with chosen = true in the data.")
        if any(b.column == "latency_high_ms" for b in budgets):
            q = target.interval_rel
            notes.append(f"--safe: a configuration fits when the upper end of its latency's 90% "
                         f"interval does (measured: the measurement; predicted: × (1 + "
                         f"{q if q is not None else float('nan'):.1%}), from the leave-one-out errors); "
                         f"predictions that extrapolate have no interval and never fit.")
        if result.best.name not in result.frontier.index:
            notes.append("the chosen configuration is not on the frontier against "
                         f"{what} (another budget binds); it is listed for completeness.")
    notes += sweep_notes(df)[1:]
    if target is not None:
        measured = int((df["latency_source"] == "measured").sum())
        loo = (f" (leave-one-out median error {target.prediction_loo_median:.1%})"
               if target.prediction_loo_median is not None else "")
        if measured == len(df):
            notes.append(f"latency on target {target.name}: measured for all {measured:,} "
                         f"configurations (the target's calibration points).")
        else:
            notes.append(f"latency on target {target.name}: measured for {measured:,} of "
                         f"{len(df):,} configurations (the target's calibration points), "
                         f"predicted by its {target.method} for the other "
                         f"{len(df) - measured:,}{loo}.")
        notes.append(latency_note(target))
        outside = int(((df["latency_extrapolated"] != "")
                       & (df["latency_source"] == "predicted")).sum())
        if outside:
            notes.append(extrapolation_note(target, outside, len(df)))
    title = s.name if len(specs) == 1 else ", ".join(x.name for x in specs)
    report = Report(f"{title}: Pareto-optimal configurations, top-1 against {what} "
                    f"({len(result.frontier)} of {len(df):,}; {budget_text})", columns,
                    frame_rows(front, columns), notes,
                    drop_order=("top5", "rho", "accuracy_source", "within_budget"))
    return PickReport(report, df, result)


def nothing_fits(p: PickReport) -> str:
    """Why no configuration meets the budgets: the cheapest the grid offers for each."""
    from ..engine.axes import format_quantity

    df, result = p.frame, p.pick
    budget_text = ", ".join(str(b) for b in result.budgets) or "no budget"
    label = {"macs": "Mult-Adds", "params": "parameters", "latency_ms": "ms"}
    detail = ", ".join(
        f"the lowest latency on the grid: {df[b.column].min():.3f} ms" if b.column == "latency_ms"
        else (f"the lowest upper end of a 90% interval on the grid: {df[b.column].min():.3f} ms"
              if df[b.column].notna().any() else "no latency on the grid has an interval (they "
              "all extrapolate, or the target has too few points)")
        if b.column == "latency_high_ms"
        else f"the fewest {label.get(b.column, b.column)} on the grid: "
             f"{format_quantity(df[b.column].min())}" for b in result.budgets)
    return (f"no configuration with known accuracy meets {budget_text} ({result.feasible:,} "
            f"within budget; {detail})")


def write_pick(p: PickReport, folder: Path, plot: bool = False) -> list[Path]:
    """The pick's CSV, JSON and Markdown (and the Pareto plot) in `folder`."""
    names = frame_specs(p.frame)
    name = names[0] if len(names) == 1 else "family"
    written = write_reports(p.report, folder, f"pick_{name}")
    if plot:
        from .plots import pareto_plot

        written += pareto_plot(p.frame, p.pick, folder / f"pareto_{name}")
    return written


__all__ = ["PickReport", "budgets_from_options", "nothing_fits", "pick_report", "write_pick"]
