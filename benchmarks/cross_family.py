"""Latency across families: calibrate on MobileNet v1 and v2, predict V3 and MnasNet.

Measures with mobilecost itself (torch, batch 1, fp32, one thread unless told, several rounds,
through the measurement cache: an interrupted run resumes where it stopped):

* calibration: at most 32 configurations of mobilenet_v1 and mobilenet_v2, chosen by
  `latency.suggest` (D-optimal) from both specs over the size's α × resolution grid;
* prediction: configurations of mobilenet_v3_large, mobilenet_v3_small and mnasnet_b1
  (20 each at --size full: α 1, 0.75, 0.5, 0.35 × resolution 224, 192, 160, 128, 96), and of
  three held-out families, mnasnet_a1 and the two minimalistic V3s (12 each: α 1, 0.75, 0.5 ×
  224, 160, 128, 96), added after the layer-level overhead's terms were chosen on the first
  three: a check on networks the model was not shaped on;
* the layer table: every distinct layer shape of all of those, each timed alone
  (`torch.timing.measure_layers`), for the layer-level model.

Four predictors fitted on the same calibration points, predicting every configuration of the
other families: the whole-network model (`latency.fit`), the layer-level model (the layer
table, its overhead's terms, layertable.OVERHEAD_TERMS, fitted on the calibration points),
k·MACs and c0 + k·MACs. Then the within-family check: within each calibration family's own
grid (v1's and v2's 16 paper configurations at --size full), calibrate on 6 drawn at random,
predict the other 10, repeated (--repeats, seeded), and on the 6 that latency.suggest picks.
Writes OUT/cross_family.csv (every prediction), cross_family.md (the tables, the
measurements' IQR, how long each part took) and cross_family.png (predicted against
measured, one colour per family, both models).

Usage: python benchmarks/cross_family.py [--size smoke|tiny|small|full] [--out reports/cpu]
           [--threads 1] [--rounds N] [--min-time S] [--max-time S] [--layer-min-time S]
           [--cache-dir DIR]
       python benchmarks/cross_family.py --replot [--out reports/cpu]   # the plot from the CSV
           [--repeats 20]

--size smoke (what the test runs) and tiny measure a few configurations at small resolutions
(to check that the script works: their figures mean nothing); full is the measurement of record, for a quiet machine. The md file
states the wall time of each part and the estimate for --size full (see `estimate`).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mobilecost.latency import layers as lyt  # noqa: E402
from mobilecost.latency import whole as lt  # noqa: E402
from mobilecost.latency.design import suggest
from mobilecost.latency.features import network_features
from mobilecost.latency.measurements import Config, Point
from mobilecost.latency.validation import ErrorSummary, fit_affine_baseline, fit_macs_baseline

CALIBRATION = ("mobilenet_v1", "mobilenet_v2")
PREDICTED = ("mobilenet_v3_large", "mobilenet_v3_small", "mnasnet_b1")
# Families measured only after the layer-level overhead's terms were chosen (on PREDICTED's
# measurements): a check of the model on networks it was not shaped on.
HELD_OUT = ("mnasnet_a1", "mobilenet_v3_large_minimalistic", "mobilenet_v3_small_minimalistic")
MODELS = ("whole-network", "layer-level", "k·MACs", "c0+k·MACs")


@dataclass(frozen=True)
class Size:
    """How much a run measures."""

    cal_alphas: tuple[str, ...]      # the calibration grid (suggest chooses from it)
    cal_res: tuple[int, ...]
    cal_n: int                       # calibration configurations, at most 32
    pred_alphas: tuple[str, ...]     # each predicted family's grid
    pred_res: tuple[int, ...]
    within_alphas: tuple[str, ...]   # each calibration family's own grid for the within check
    within_res: tuple[int, ...]
    within_cal: int                  # calibrate on this many, predict the rest
    held_alphas: tuple[str, ...]     # each HELD_OUT family's grid
    held_res: tuple[int, ...]
    rounds: int
    min_time: float
    max_time: float


SIZES = {
    "smoke": Size(("1", "0.5", "0.25"), (48, 32), 6, ("0.5",), (32,), ("1", "0.5", "0.25"), (48, 32), 5,
                  ("0.5",), (32,), 1, 0.005, 0.02),
    "tiny": Size(("1", "0.5", "0.25"), (96, 64), 8, ("1", "0.5"), (64,), ("1", "0.75", "0.5", "0.25"),
                 (96, 64), 6, ("1",), (64,), 1, 0.05, 0.3),
    "small": Size(("1", "0.75", "0.5", "0.25"), (160, 128, 96), 16, ("1", "0.75", "0.5"), (160, 128, 96),
                  ("1", "0.75", "0.5", "0.25"), (160, 128, 96), 6, ("1", "0.5"), (160, 96), 2, 0.2, 2.0),
    "full": Size(("1", "0.75", "0.5", "0.35", "0.25"), (224, 192, 160, 128, 96), 32,
                 ("1", "0.75", "0.5", "0.35"), (224, 192, 160, 128, 96), ("1", "0.75", "0.5", "0.25"),
                 (224, 192, 160, 128), 6, ("1", "0.75", "0.5"), (224, 160, 128, 96), 3, 1.0, 10.0),
}


def configs_of(spec: str, alphas, resolutions) -> list[Config]:
    return [Config(spec, Fraction(a), r) for a in alphas for r in resolutions]


def measure(configs: list[Config], options, cache, rounds: int, what: str) -> dict[Config, dict]:
    """Whole-network timings of `configs`, through the cache, every spec in each round
    (`measure_configs`: a machine that drifts over the run weighs on every family alike)."""
    from mobilecost.torch.timing import measure_configs

    t0 = time.perf_counter()
    rows = measure_configs([(c.network.spec(), c.alpha, c.resolution) for c in configs], options, cache,
                           rounds=rounds, on_warning=lambda m: None)
    out: dict[Config, dict] = {}
    for c, row in zip(configs, rows):
        if row["error"]:
            raise SystemExit(f"{c.label}: {row['error']}")
        out[c] = row
    print(f"  {what}: {len(configs)} configurations of {len({c.spec for c in configs})} specs, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return out


def errors_summary(errors: list[float]) -> ErrorSummary:
    return ErrorSummary.of(errors)


def predictors(train: list[Point], table: lyt.LayerTable):
    """The four predictors fitted on `train`: config -> ms, in MODELS order."""
    model = lt.fit(train)
    layer = table.with_overhead(train)
    k = fit_macs_baseline(train)
    c0, k1 = fit_affine_baseline(train)

    def macs(c):
        return network_features(c).total_macs

    return (lambda c: lt.predict_ms(model, c), layer.predict_ms, lambda c: k * macs(c),
            lambda c: c0 + k1 * macs(c))


def estimate(elapsed_s: float, measurements: int, min_time: float, full_measurements: int,
             full_min_time: float) -> float:
    """Seconds a run of `full_measurements` takes at `full_min_time` per measurement, from this
    run: each measurement costs its timed runs (at least min_time; more while the IQR is wide)
    plus a fixed part (building, warm-up), the part measured here beyond min_time."""
    fixed = max(0.0, elapsed_s / max(1, measurements) - min_time)
    return full_measurements * (full_min_time * 1.2 + fixed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--out", type=Path, default=Path("reports/cpu"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--min-time", type=float)
    ap.add_argument("--max-time", type=float)
    ap.add_argument("--layer-min-time", type=float,
                    help="least seconds per layer timing (default --min-time): a layer runs in "
                         "microseconds, so a short window still holds thousands of calls")
    ap.add_argument("--cache-dir", type=Path)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    size = SIZES[args.size]
    rounds = args.rounds or size.rounds

    import os

    from mobilecost.torch.cache import MeasurementCache, default_cache_dir
    from mobilecost.torch.clock import MeasureOptions, machine_load
    from mobilecost.torch.layers import measure_layers

    options = MeasureOptions(threads=args.threads, min_run_time_s=args.min_time or size.min_time,
                             max_run_time_s=args.max_time or size.max_time)
    cache = MeasurementCache(args.cache_dir or default_cache_dir())
    start = time.perf_counter()
    load_before = machine_load()[0]
    print(f"cross_family --size {args.size}: {rounds} round(s), {options.min_run_time_s:g} s per "
          f"measurement at least, {args.threads} thread(s), cache {cache.folder}", flush=True)

    grid = [c for s in CALIBRATION for c in configs_of(s, size.cal_alphas, size.cal_res)]
    cal_configs = suggest(grid, min(size.cal_n, 32, len(grid)))
    within = {s: configs_of(s, size.within_alphas, size.within_res) for s in CALIBRATION}
    pred = {s: configs_of(s, size.pred_alphas, size.pred_res) for s in PREDICTED}
    pred |= {s: configs_of(s, size.held_alphas, size.held_res) for s in HELD_OUT}
    whole = list(dict.fromkeys(cal_configs + [c for cs in within.values() for c in cs]
                               + [c for cs in pred.values() for c in cs]))

    t0 = time.perf_counter()
    rows = measure(whole, options, cache, rounds, "whole networks")
    t_whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    layer_options = options if args.layer_min_time is None else MeasureOptions(
        threads=args.threads, min_run_time_s=args.layer_min_time,
        max_run_time_s=max(args.layer_min_time * 10, options.min_run_time_s))
    layer_rows = measure_layers(whole, layer_options, cache, rounds=rounds, on_warning=lambda m: None)
    t_layers = time.perf_counter() - t0
    print(f"  layers: {len(layer_rows)} distinct shapes, {t_layers:.0f} s", flush=True)
    shapes = lyt.distinct_layers(whole)
    entries = tuple(lyt.entry_of(shapes[r["layer"]], r["latency_ms"], r["latency_iqr_ms"], 1, "float32")
                    for r in layer_rows if not r["error"])
    table = lyt.LayerTable(entries, 1, "float32", {"threads": args.threads, "rounds": rounds})

    def point(c: Config) -> Point:
        return Point(c, rows[c]["latency_ms"])

    # cross-family: calibrate on v1 + v2, predict V3 and MnasNet
    train = [point(c) for c in cal_configs]
    fns = predictors(train, table)
    csv_rows, shares = [], {}
    for fam, cs in pred.items():
        errs = {m: [] for m in MODELS}
        for c in cs:
            p = point(c)
            values = [f(c) for f in fns]
            for m, v in zip(MODELS, values):
                errs[m].append(v / p.latency_ms - 1)
            csv_rows.append([fam, str(c.alpha), c.resolution, p.latency_ms, rows[c]["latency_iqr_ms"],
                             *values, table.predict(c).modelled])
        shares[fam] = {m: errors_summary(e) for m, e in errs.items()}
    everything = {}
    for label, group in (("V3 and MnasNet-B1", PREDICTED), ("the held-out families", HELD_OUT)):
        rs = [r for r in csv_rows if r[0] in group]
        everything[f"all {len(rs)} of {label}"] = {
            m: errors_summary([r[5 + i] / r[3] - 1 for r in rs]) for i, m in enumerate(MODELS)}

    # within-family: calibrate on `within_cal` of a family's own grid, predict the rest, repeated
    rng = random.Random(0)
    within_shares: dict[str, dict[str, list[float]]] = {}
    for fam, cs in within.items():
        pts = [point(c) for c in cs]
        within_shares[fam] = {m: [] for m in MODELS}
        for _ in range(args.repeats):
            cal = rng.sample(pts, size.within_cal)
            test = [p for p in pts if p not in cal]
            f = predictors(cal, table)
            for m, fn in zip(MODELS, f):
                within_shares[fam][m].append(errors_summary([fn(p.config) / p.latency_ms - 1 for p in test]).within)
    # the same with the six calibration points latency.suggest picks (calibrate --suggest 6)
    within_suggested: dict[str, dict[str, ErrorSummary]] = {}
    for fam, cs in within.items():
        picked = set(suggest(cs, size.within_cal))
        cal = [point(c) for c in cs if c in picked]
        test = [point(c) for c in cs if c not in picked]
        within_suggested[fam] = {m: errors_summary([fn(p.config) / p.latency_ms - 1 for p in test])
                                 for m, fn in zip(MODELS, predictors(cal, table))}

    elapsed = time.perf_counter() - start
    n_meas = (len(whole) + len(layer_rows)) * rounds
    full = SIZES["full"]
    full_whole = len(set(suggest([c for s in CALIBRATION for c in configs_of(s, full.cal_alphas, full.cal_res)], 32)
                         + [c for s in CALIBRATION for c in configs_of(s, full.within_alphas, full.within_res)]
                         + [c for s in PREDICTED for c in configs_of(s, full.pred_alphas, full.pred_res)]
                         + [c for s in HELD_OUT for c in configs_of(s, full.held_alphas, full.held_res)]))
    full_layers = len(lyt.distinct_layers(
        [c for s in CALIBRATION for c in configs_of(s, full.cal_alphas, full.cal_res)]
        + [c for s in PREDICTED for c in configs_of(s, full.pred_alphas, full.pred_res)]
        + [c for s in HELD_OUT for c in configs_of(s, full.held_alphas, full.held_res)]))
    est = estimate(elapsed, n_meas, options.min_run_time_s, (full_whole + full_layers) * full.rounds, full.min_time)

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "cross_family.csv", "w", encoding="utf-8") as fh:
        fh.write("family,alpha,resolution,measured_ms,iqr_ms,whole_network_ms,layer_level_ms,"
                 "k_macs_ms,affine_ms,untimed_layers\n")
        for r in csv_rows:
            fh.write(",".join(str(x) for x in r) + "\n")
    iqr = {s: statistics.median(rows[c]["latency_iqr_ms"] / rows[c]["latency_ms"]
                                for c in whole if c.spec == s) for s in CALIBRATION + PREDICTED + HELD_OUT}
    md = [f"# Latency across families (--size {args.size})", "",
          f"Measured with mobilecost on this machine's CPU: batch 1, fp32, {args.threads} thread(s), "
          f"{rounds} round(s) (lowest round median), at least {options.min_run_time_s:g} s of timed "
          f"runs per network measurement and {layer_options.min_run_time_s:g} s per layer. "
          f"1-minute load at the start {load_before or 0:.1f}, at the end "
          f"{machine_load()[0] or 0:.1f} on {os.cpu_count()} cores.", "",
          f"Calibrated on {len(train)} configurations of {', '.join(CALIBRATION)} (chosen by "
          f"latency.suggest from α {', '.join(size.cal_alphas)} × resolution "
          f"{', '.join(map(str, size.cal_res))}); the layer table times {len(entries)} distinct "
          f"layer shapes (every layer of every configuration here), overhead fitted on the same "
          f"calibration points (the layer-level overhead: layertable.OVERHEAD_TERMS, "
          f"{table.with_overhead(train).describe_overhead()}).", "",
          f"The held-out families ({', '.join(HELD_OUT)}) were measured only after the overhead's "
          f"terms were chosen on the others.", "",
          "## Calibrated on v1 + v2, predicting other families: share within ±10% (median |error|)", "",
          "| family | n | " + " | ".join(MODELS) + " |", "|---|---|" + "---|" * len(MODELS)]
    for fam, by in list(shares.items()) + list(everything.items()):
        n = next(iter(by.values())).n
        md.append(f"| {fam} | {n} | " + " | ".join(f"{by[m].within:.0%} ({by[m].median_abs:.1%})"
                                                  for m in MODELS) + " |")
    md += ["", f"## Within one family: calibrate on {size.within_cal}, predict the other "
               f"{len(next(iter(within.values()))) - size.within_cal}, {args.repeats} random draws", "",
           "share within ±10%: mean over draws (lowest draw)", "",
           "| family | " + " | ".join(MODELS) + " |", "|---|" + "---|" * len(MODELS)]
    for fam, by in within_shares.items():
        md.append(f"| {fam} | " + " | ".join(f"{statistics.mean(v):.0%} ({min(v):.0%})"
                                             for v in by.values()) + " |")
    md += ["", f"The {size.within_cal} that latency.suggest picks (`calibrate --suggest "
               f"{size.within_cal}`), predicting the rest: share within ±10% (median |error|)", "",
           "| family | " + " | ".join(MODELS) + " |", "|---|" + "---|" * len(MODELS)]
    for fam, by in within_suggested.items():
        md.append(f"| {fam} | " + " | ".join(f"{by[m].within:.0%} ({by[m].median_abs:.1%})"
                                             for m in MODELS) + " |")
    md += ["", "## Measurement noise: median IQR / median of each family's timings", "",
           "| family | IQR |", "|---|---|"] + [f"| {f} | {v:.1%} |" for f, v in iqr.items()]
    md += ["", "## Time", "",
           f"whole networks {t_whole:.0f} s ({len(whole)} configurations × {rounds} rounds), layers "
           f"{t_layers:.0f} s ({len(layer_rows)} shapes × {rounds} rounds), total {elapsed:.0f} s "
           f"(less what the cache held). --size full measures {full_whole} configurations and "
           f"{full_layers} layer shapes × {full.rounds} rounds at {full.min_time:g} s each: about "
           f"{est / 3600:.1f} h by this run's cost per measurement."]
    (args.out / "cross_family.md").write_text("\n".join(md) + "\n", encoding="utf-8")

    plot(csv_rows, args.out / "cross_family.png")
    print((args.out / "cross_family.md").read_text())


def plot(csv_rows: list[list], path: Path) -> None:
    """Predicted against measured, one colour per family, both models side by side (rows as
    cross_family.csv has them: family, α, resolution, measured, IQR, whole-network,
    layer-level, ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mobilecost.reports.plots import _log_ticks

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharex=True, sharey=True)
    colours = dict(zip(PREDICTED + HELD_OUT, ("tab:blue", "tab:orange", "tab:green", "tab:red",
                                               "tab:purple", "tab:brown")))
    lo = min(min(r[3], r[5], r[6]) for r in csv_rows) * 0.9
    hi = max(max(r[3], r[5], r[6]) for r in csv_rows) * 1.1
    for ax, col, title in ((axes[0], 5, "whole-network model"), (axes[1], 6, "layer-level model")):
        for fam in PREDICTED + HELD_OUT:
            xs = [r[3] for r in csv_rows if r[0] == fam]
            ys = [r[col] for r in csv_rows if r[0] == fam]
            ax.scatter(xs, ys, s=16, color=colours[fam], marker="o" if fam in PREDICTED else "^",
                       label=fam + ("" if fam in PREDICTED else " (held out)"))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
        ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.2,
                        label="±10%")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_ticks(ax.xaxis, lo, hi)
        _log_ticks(ax.yaxis, lo, hi)
        ax.set_title(f"{title}, calibrated on v1 + v2")
        ax.set_xlabel("measured ms")
    axes[0].set_ylabel("predicted ms")
    axes[1].legend(fontsize=8, loc="lower right")  # below the diagonal: empty there
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def replot(out: Path) -> None:
    """Redraw OUT/cross_family.png from OUT/cross_family.csv, measuring nothing."""
    import csv

    with open(out / "cross_family.csv", encoding="utf-8") as fh:
        rows = [[r[0], r[1], int(r[2])] + [float(x) for x in r[3:9]] + [int(r[9])]
                for r in list(csv.reader(fh))[1:]]
    plot(rows, out / "cross_family.png")


if __name__ == "__main__":
    if "--replot" in sys.argv:
        replot(Path(sys.argv[sys.argv.index("--out") + 1]) if "--out" in sys.argv else Path("reports/cpu"))
    else:
        main()
