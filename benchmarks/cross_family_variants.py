"""Variants of the cross-family question, on the measurements `cross_family.py --size full` took.

Measures nothing new: it reads the measurement cache `cross_family.py` filled (run that first,
with the same --cache-dir and timing options) and refits:

1. the layer-level overhead (layertable.OVERHEAD_TERMS) with subsets of its terms: s·Σ + c0
   alone; with the bytes moved as one term; with the weight bytes or the map bytes alone; with
   both; with both and the layer count (the library's model). Isolated layers run with their
   weights and input in cache; a network reads each weight once a pass from memory and streams
   its maps from layer to layer: which of these terms carry the layer table to other families;
2. the whole-network model calibrated on the 32 configurations of v1 + v2 plus 5 of
   MobileNetV3-Small (chosen by latency.suggest), predicting every other V3/MnasNet
   configuration: what a few measurements of a network with squeeze-and-excitation and
   hard-swish buy;
3. the layer-level model's 90% interval (from the leave-one-out errors of its calibration, as a
   target computes it) and how often it holds the other families' measurements.

Usage: python benchmarks/cross_family_variants.py [--cache-dir DIR] [--min-time 0.3]
           [--layer-min-time 0.05] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cross_family as cf  # noqa: E402
import numpy as np  # noqa: E402

from mobilecost.latency import layers as lyt  # noqa: E402
from mobilecost.latency import whole as lt  # noqa: E402
from mobilecost.latency.design import suggest
from mobilecost.latency.measurements import Point
from mobilecost.latency.solve import solve_relative
from mobilecost.latency.validation import INTERVAL_COVERAGE


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--layer-min-time", type=float, default=0.05)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from mobilecost.torch.cache import MeasurementCache, default_cache_dir
    from mobilecost.torch.clock import MeasureOptions
    from mobilecost.torch.layers import measure_layers

    size = cf.SIZES["full"]
    opts = MeasureOptions(threads=1, min_run_time_s=args.min_time, max_run_time_s=10.0)
    lopts = MeasureOptions(threads=1, min_run_time_s=args.layer_min_time,
                           max_run_time_s=max(args.layer_min_time * 10, args.min_time))
    cache = MeasurementCache(args.cache_dir or default_cache_dir())
    grid = [c for s in cf.CALIBRATION for c in cf.configs_of(s, size.cal_alphas, size.cal_res)]
    cal = suggest(grid, 32)
    within = {s: cf.configs_of(s, size.within_alphas, size.within_res) for s in cf.CALIBRATION}
    pred = {s: cf.configs_of(s, size.pred_alphas, size.pred_res) for s in cf.PREDICTED}
    pred |= {s: cf.configs_of(s, size.held_alphas, size.held_res) for s in cf.HELD_OUT}
    whole = list(dict.fromkeys(cal + [c for cs in within.values() for c in cs]
                               + [c for cs in pred.values() for c in cs]))
    rows = cf.measure(whole, opts, cache, args.rounds, "whole networks")
    layer_rows = measure_layers(whole, lopts, cache, rounds=args.rounds, on_warning=lambda m: None)
    shapes = lyt.distinct_layers(whole)
    table = lyt.LayerTable(tuple(lyt.entry_of(shapes[r["layer"]], r["latency_ms"], r["latency_iqr_ms"],
                                              1, "float32") for r in layer_rows if not r["error"]),
                           1, "float32", {})
    y = {c: rows[c]["latency_ms"] for c in whole}

    terms = {c: np.array(table.terms(c)) for c in whole}

    def report(name: str, predict, skip=()) -> None:
        groups = {"V3 and MnasNet-B1": [], "held out": []}
        for fam, cs in pred.items():
            e = np.array([predict(c) / y[c] - 1 for c in cs if c not in skip])
            groups["held out" if fam in cf.HELD_OUT else "V3 and MnasNet-B1"] += list(e)
            print(f"  {fam:32} n={len(e):2}  within ±10% {np.mean(np.abs(e) <= 0.1):4.0%}  median "
                  f"|error| {np.median(np.abs(e)):5.1%}  predicted/measured {np.median(e + 1):.3f}")
        for label, e in groups.items():
            e = np.array(e)
            print(f"  {'all ' + label:32} n={len(e):2}  within ±10% {np.mean(np.abs(e) <= 0.1):4.0%}  "
                  f"median |error| {np.median(np.abs(e)):5.1%}")

    print("1. layer-level overhead, fitted by relative least squares on the 32 of v1 + v2")
    names = dict(zip(lyt.OVERHEAD_TERMS, ("s·Σ", "w·weight bytes", "m·map bytes", "c·layers", "c0")))
    for cols in (("layer_sum", "one"), ("layer_sum", "bytes", "one"), ("layer_sum", "weight_bytes", "one"),
                 ("layer_sum", "map_bytes", "one"), ("layer_sum", "weight_bytes", "map_bytes", "one"),
                 lyt.OVERHEAD_TERMS):
        def x(c, cols=cols):
            t = dict(zip(lyt.OVERHEAD_TERMS, terms[c]))
            t["bytes"] = t["weight_bytes"] + t["map_bytes"]
            return np.array([t[k] for k in cols])
        coef = solve_relative(np.array([x(c) for c in cal]), np.array([y[c] for c in cal]))
        print(" " + " + ".join(names.get(k, "k·bytes") for k in cols)
              + ("   (the library's model)" if cols == lyt.OVERHEAD_TERMS else ""))
        report("", lambda c, coef=coef, x=x: float(coef @ x(c)))
    extra = suggest(pred["mobilenet_v3_small"], 5)
    print("2. whole-network model on the 32 of v1 + v2 and 5 of V3-Small "
          f"({', '.join(f'{lt.exact_text(c.alpha)}/{c.resolution}' for c in extra)}), predicting the rest")
    model = lt.fit([Point(c, y[c]) for c in cal + extra])
    report("v1+v2+V3-Small", lambda c: lt.predict_ms(model, c), skip=set(extra))

    from mobilecost.util import conformal_half_width

    points = [Point(c, y[c]) for c in cal]
    q = conformal_half_width(lyt.loo_errors(table, points), INTERVAL_COVERAGE)
    fitted = table.with_overhead(points)
    print(f"3. the layer-level 90% interval from the leave-one-out of the 32 of v1 + v2: ±{q:.1%}; "
          "share of measurements inside it")
    for label, fams in (("V3 and MnasNet-B1", cf.PREDICTED), ("held out", cf.HELD_OUT)):
        e = np.array([fitted.predict_ms(c) / y[c] - 1 for f in fams for c in pred[f]])
        print(f"  {label:32} n={len(e):2}  inside {np.mean(np.abs(e) <= q):4.0%}  "
              f"90th percentile |error| {np.quantile(np.abs(e), 0.9):5.1%}")


if __name__ == "__main__":
    main()
