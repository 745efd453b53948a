"""Latency model against a Mult-Adds-proportional baseline, on measured CPU latencies.

Calibrate on at most 6 of the 16 measured MobileNet v1 configurations (α 1, 0.75, 0.5, 0.25 ×
resolution 224, 192, 160, 128, batch 1), predict the other 10, and print side by side, for the
model and for latency = k·Mult-Adds (k fitted on the same points): the share within ±10% of
measured, the median and the worst relative error, and the ratio of their errors. Then the
same by leave-one-out over all 16; and, for each repeat measurement of the grid, how far the
two measurements differ, the model fitted on one predicting the other (measurement noise
added to model error), and the held-out test within the repeat alone.

Usage: python benchmarks/bench_latency_model.py [reports/cpu/sweep_mobilenet_v1.csv]
           [--repeat reports/cpu/sweep_mobilenet_v1_repeat.csv ...] [--calibrate-on 6]
           [--form max] [--plots reports/cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mobilecost.latency import measurements as tg
from mobilecost.latency import whole as lt  # noqa: E402
from mobilecost.latency.design import (
    POOR_SPREAD_CONDITION,
    spread_condition,
    spread_subset,
    suggest,
)
from mobilecost.latency.measurements import Point
from mobilecost.latency.validation import (
    WITHIN,
    Prediction,
    Validation,
    baselines,
    held_out,
    leave_one_out,
)
from mobilecost.reports.plots import plot_validation  # noqa: E402


def show(title: str, v: Validation) -> None:
    m, b, a = v.model, v.baseline, v.affine
    print(f"\n{title}")
    print(f"  {'':26} {'model':>8} {'k·MACs':>8} {'c0+k·MACs':>10} {'k·MACs/model':>13} {'affine/model':>13}")
    print(f"  {'within ±10% of measured':26} {m.within:>8.0%} {b.within:>8.0%} {a.within:>10.0%}")
    print(f"  {'median |error|':26} {m.median_abs:>8.1%} {b.median_abs:>8.1%} {a.median_abs:>10.1%} "
          f"{b.median_abs / m.median_abs:>12.1f}× {a.median_abs / m.median_abs:>12.1f}×")
    print(f"  {'worst |error|':26} {m.worst_abs:>8.1%} {b.worst_abs:>8.1%} {a.worst_abs:>10.1%} "
          f"{b.worst_abs / m.worst_abs:>12.1f}× {a.worst_abs / m.worst_abs:>12.1f}×")


def every_subset(points: list[Point], n: int, form: str) -> None:
    """The held-out test for every n-point calibration set, not just the spread one."""
    from itertools import combinations

    shares, base_shares, affine_shares, medians = [], [], [], []
    for cal in combinations(points, n):
        v = held_out(points, list(cal), form)
        shares.append(v.model.within)
        base_shares.append(v.baseline.within)
        affine_shares.append(v.affine.within)
        medians.append(v.model.median_abs)
    at_least = sum(s >= 0.9 for s in shares) / len(shares)
    conds = [spread_condition([p.config for p in cal]) for cal in combinations(points, n)]
    poor = [s for s, c in zip(shares, conds) if c > POOR_SPREAD_CONDITION]
    fine = [s for s, c in zip(shares, conds) if c <= POOR_SPREAD_CONDITION]
    print(f"\nEvery {n}-point calibration set ({len(shares)} of them), predicting the other {len(points) - n}:")
    print(f"  share within ±10%: median {statistics.median(shares):.0%}, mean {statistics.mean(shares):.0%} "
          f"(k·MACs: mean {statistics.mean(base_shares):.0%}, c0 + k·MACs: mean "
          f"{statistics.mean(affine_shares):.0%}); at least 90% for {at_least:.0%} of the sets; "
          f"median |error| over sets: {statistics.median(medians):.1%}")
    if poor:
        print(f"  poorly spread (spread_condition above {POOR_SPREAD_CONDITION:g}): {len(poor)} sets, "
              f"mean {statistics.mean(poor):.0%} within ±10%, {sum(s < 0.9 for s in poor) / len(poor):.0%} "
              f"below 90%; the other {len(fine)}: mean {statistics.mean(fine):.0%}, "
              f"{sum(s < 0.9 for s in fine) / len(fine):.0%} below 90%")
    chosen = suggest([p.config for p in points], n)
    by_config = {p.config: p for p in points}
    v = held_out(points, [by_config[c] for c in chosen], form)
    print(f"  suggested by lt.suggest ({', '.join(c.label.split(' ', 1)[1] for c in chosen)}): "
          f"{v.model.within:.0%} within ±10%, median {v.model.median_abs:.1%}, worst {v.model.worst_abs:.1%}; "
          f"spread_condition {spread_condition(chosen):.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("measurements", type=Path, nargs="?", default=Path("reports/cpu/sweep_mobilenet_v1.csv"))
    ap.add_argument("--repeat", type=Path, action="append",
                    help="another measurement of the same grid (repeatable) "
                         "[default: reports/cpu/sweep_mobilenet_v1_repeat.csv]")
    ap.add_argument("--calibrate-on", type=int, default=6)
    ap.add_argument("--form", default="sum", choices=lt.FORMS)
    ap.add_argument("--plots", type=Path, default=Path("reports/cpu"))
    args = ap.parse_args()

    data = tg.read_measurements(args.measurements)
    points = list(data.points)
    cal = spread_subset(points, args.calibrate_on)
    print(f"{args.measurements}: {len(points)} measured configurations, {args.form} model")
    print("calibrated on: " + ", ".join(p.config.label.split(" ", 1)[1] for p in cal))

    held = held_out(points, cal, args.form)
    show(f"Held out: fit on {len(cal)}, predict the other {held.model.n}", held)
    print(f"\n  {'config':12} {'measured':>9} {'model':>9} {'error':>8} {'k·MACs':>9} {'error':>8}")
    for p in held.predictions:
        print(f"  {p.point.config.label.split(' ', 1)[1]:12} {p.point.latency_ms:9.3f} {p.predicted_ms:9.3f} "
              f"{p.error:+8.1%} {p.baseline_ms:9.3f} {p.baseline_error:+8.1%}")
    fitted = lt.fit(cal, args.form)
    c = fitted.coefficients
    print(f"\n  coefficients: dense {1e-6 / c['ms_per_mac_dense']:.1f} GMAC/s, depthwise "
          + (f"{1e-6 / c['ms_per_mac_depthwise']:.1f} GMAC/s" if c["ms_per_mac_depthwise"] else "0 (unused)")
          + ", memory " + (f"{1e-6 / c['ms_per_byte']:.1f} GB/s" if c["ms_per_byte"] else "0 (unused)")
          + f", {1e3 * c['ms_per_layer']:.1f} µs per layer")

    loo = leave_one_out(points, args.form)
    show(f"Leave-one-out over all {len(points)}", loo)

    files = plot_validation(held, args.plots / f"latency_heldout{len(cal)}",
                            f"MobileNet v1 on this CPU: fit on {len(cal)}, predict {held.model.n}")
    files += plot_validation(loo, args.plots / "latency_loo", "MobileNet v1 on this CPU")

    repeats = args.repeat or [Path("reports/cpu/sweep_mobilenet_v1_repeat.csv")]
    for path in (r for r in repeats if r.is_file()):
        other = tg.read_measurements(path)
        model = lt.fit(cal, args.form)
        cal_configs = {p.config for p in cal}
        test = [p for p in other.points if p.config not in cal_configs]
        preds = tuple(Prediction(p, lt.predict_ms(model, p.config), b, a)
                      for p, (b, a) in zip(test, baselines(cal, test)))
        show(f"Across measurements: fit on {len(cal)} of {args.measurements.name}, predict the other "
             f"{len(preds)} as measured in {path.name}", Validation("held-out", preds, tuple(cal)))
        again = {p.config: p.latency_ms for p in other.points}
        diffs = sorted(abs(again[p.config] / p.latency_ms - 1) for p in points if p.config in again)
        share = sum(d <= WITHIN for d in diffs) / len(diffs)
        print(f"  the measurements themselves ({path.name} against {args.measurements.name}): median difference "
              f"{statistics.median(diffs):.1%}, worst {diffs[-1]:.1%}, {share:.0%} within ±10% of each other")
        alone = held_out(list(other.points), spread_subset(list(other.points), args.calibrate_on), args.form)
        show(f"Within {path.name} alone: fit on {args.calibrate_on}, predict the other {alone.model.n}", alone)
    every_subset(points, args.calibrate_on, args.form)
    print("\nplots: " + ", ".join(str(f) for f in files))


if __name__ == "__main__":
    main()
