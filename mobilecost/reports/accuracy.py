"""The report of `accuracy`: published ImageNet accuracy with its sources, the fitted law, and
the estimate's leave-one-out check."""

from __future__ import annotations

from typing import Any

from ..errors import MobilecostError
from ..util import format_number, millions
from .report import Column, Report
from .sweep import _pct1

# --------------------------------------------------------------------------- accuracy

def accuracy_report(validate: bool = False, spec: str = "mobilenet_v1") -> Report:
    """Published accuracy with its sources; with `validate`, the estimate's leave-one-out
    errors on `spec`'s released checkpoints."""
    from ..engine import accuracy as acc
    from ..engine.estimate import COVERAGE, ESTIMATE_METHOD, estimate_leave_one_out, estimator

    if not validate:
        rows = [{"spec": p.spec, "alpha": p.alpha, "resolution": p.resolution, "top1": p.top1,
                 "top5": p.top5, "kind": p.kind, "source": p.source} for p in acc.published()]
        cols = [Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
                Column("resolution", "Resolution"), Column("top1", "Top-1 %", _pct1),
                Column("top5", "Top-5 %", _pct1), Column("kind", "Kind", numeric=False),
                Column("source", "Source", numeric=False)]
        notes = [f"estimate: {ESTIMATE_METHOD}, so it equals every released figure and "
                 "never exceeds a published point with >= α and >= resolution."]
        for name in acc.ESTIMATED_SPECS:
            notes += [f"{name}: law fitted by least squares to {m.points} checkpoints: {m.describe()}"
                      for m in (acc.model(name, "top1"), acc.model(name, "top5")) if m]
        boxes = []
        for name in acc.ESTIMATED_SPECS:
            e = estimator(name, "top1")
            if e is not None:
                (a0, a1), (r0, r1) = e.alpha_range, e.resolution_range
                boxes.append(f"{name} {format_number(a0)} ≤ α ≤ {format_number(a1)}, "
                             f"{r0} ≤ resolution ≤ {r1}")
        notes.append("estimates are given only inside the box each spec's checkpoints span ("
                     + "; ".join(boxes) + "), fitted per spec and never carried to another, "
                     "and are always marked 'estimated'.")
        return Report("Published ImageNet accuracy", cols, rows, notes, drop_order=("kind",))
    if spec not in acc.ESTIMATED_SPECS:
        raise MobilecostError(f"no accuracy estimate for {spec}; estimated: "
                              f"{', '.join(acc.ESTIMATED_SPECS)}")
    rows, notes = [], []
    per_metric = {m: estimate_leave_one_out(spec, m) for m in acc.METRICS}
    for i, p in enumerate(per_metric["top1"]):
        q = per_metric["top5"][i]
        rows.append({"alpha": p.alpha, "resolution": p.resolution, "macs": p.macs,
                     "top1": p.published, "top1_loo": p.predicted, "top1_error": p.error,
                     "top5": q.published, "top5_loo": q.predicted, "top5_error": q.error})
    for m, pts in per_metric.items():
        worst = max(pts, key=lambda p: abs(p.error))
        half = estimator(spec, m).half_width
        law = acc.leave_one_out(spec, m)
        loglin = acc.leave_one_out(spec, m, width_term=False)
        notes.append(f"{m}: leave-one-out RMSE {acc.rmse(pts):.2f} points, largest error "
                     f"{worst.error:+.2f} at α {format_number(worst.alpha)}, {worst.resolution}; "
                     f"{COVERAGE:.0%} interval ±{half:.2f} (holds "
                     f"{sum(abs(p.error) <= half for p in pts)} of {len(pts)}); the fitted law "
                     f"alone: RMSE {acc.rmse(law):.2f} (without (ln α)²: {acc.rmse(loglin):.2f})")
    notes.append(f"estimate: {ESTIMATE_METHOD}; each prediction comes from the estimate rebuilt "
                 "without that point (at the grid's edge it extends the nearest point by the law's "
                 "slope).")

    def signed(x: Any) -> str:
        return "" if x is None else f"{x:+.2f}"

    cols = [Column("alpha", "α", format_number), Column("resolution", "Resolution"),
            Column("macs", "Mult-Adds (M)", millions),
            Column("top1", "Top-1 %", _pct1), Column("top1_loo", "Top-1 LOO", lambda x: f"{x:.2f}"),
            Column("top1_error", "Error", signed),
            Column("top5", "Top-5 %", _pct1), Column("top5_loo", "Top-5 LOO", lambda x: f"{x:.2f}"),
            Column("top5_error", "Error", signed)]
    return Report(f"Leave-one-out validation of the accuracy estimate ({spec})", cols, rows,
                  notes, drop_order=("macs",))
