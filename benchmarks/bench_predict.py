"""Predicted latencies per second: the sweep alone, the sweep plus the vectorised prediction
of every configuration, and the one-configuration-at-a-time path on a sample.

All three run in the same process on the same machine: the sweep alone and the sweep plus
each form's prediction in interleaved rounds (each figure their median with its IQR, each
ratio taken round by round), the one-at-a-time path in rounds of its own. The model is a `sum` and a `max` fit
with known coefficients (25 GMAC/s dense, 4 GMAC/s depthwise, 12 GB/s, 40 µs per layer); the
vectorised predictions of the sample are checked against the one-at-a-time ones.

    python benchmarks/bench_predict.py            # 1000 α × 1000 resolutions
    python benchmarks/bench_predict.py --quick    # 100 × 100, for a smoke run
"""

from __future__ import annotations

import argparse
import random
import sys
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timer import Spread, interleaved, machine_line, ratio  # noqa: E402

from mobilecost.engine.sweep import sweep
from mobilecost.latency import whole as lt  # noqa: E402
from mobilecost.latency.features import clear_caches  # noqa: E402
from mobilecost.latency.measurements import Config  # noqa: E402

THETA = (1 / 25e6, 1 / 4e6, 1 / 12e6, 0.040)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a 100 × 100 grid and a 200-configuration sample")
    ap.add_argument("--spec", default="mobilenet_v1")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 9)")
    args = ap.parse_args()
    n, sample_n = (100, 200) if args.quick else (1000, 2000)
    rounds = args.rounds or (3 if args.quick else 9)
    alphas = [Fraction(250 + 750 * i // (n - 1), 1000) for i in range(n)]
    resolutions = list(range(96, 96 + 2 * n, 2))
    configs = n * n
    print(machine_line())
    print(f"{args.spec}: {n} α × {n} resolutions = {configs:,} configurations; medians (IQR) of "
          f"{rounds} interleaved rounds")

    models = {form: lt.Fit(THETA, form, "float32", ()) for form in lt.FORMS}
    contenders = {"sweep": lambda: sweep(args.spec, alphas, resolutions)}
    for form, model in models.items():
        def both(model=model):
            df = sweep(args.spec, alphas, resolutions)
            return df, lt.predict_grid(model, args.spec, alphas, resolutions)

        contenders[form] = both
    sweep(args.spec, alphas[:2], resolutions[:2])  # first use: imports
    times, last = interleaved(contenders, rounds)
    t_sweep = Spread.of(times["sweep"])
    rng = random.Random(0)
    sample = [(rng.choice(alphas), rng.choice(resolutions)) for _ in range(sample_n)]
    for form, model in models.items():
        grid = last[form][1]

        def one_at_a_time(model=model):
            clear_caches()
            return [lt.predict_ms(model, Config(args.spec, a, r)) for a, r in sample]

        one_times, one_last = interleaved({"one": one_at_a_time}, 3 if args.quick else 5)
        one = one_last["one"]
        t_both, t_one = Spread.of(times[form]), Spread.of(one_times["one"])
        index = {a: i for i, a in enumerate(alphas)}, {r: j for j, r in enumerate(resolutions)}
        worst = max(abs(grid[index[0][a], index[1][r]] / p - 1) for (a, r), p in zip(sample, one))
        per_one = t_one.median / sample_n
        rel = ratio(times[form], times["sweep"])
        print(f"\n{form} form")
        print(f"  sweep alone                 {t_sweep.text(1, 3, ' s')}  {configs / t_sweep.median:12,.0f} configs/s")
        print(f"  sweep + vectorised predict  {t_both.text(1, 3, ' s')}  {configs / t_both.median:12,.0f} configs/s")
        print(f"  one at a time ({sample_n:,} sample) {t_one.text(1, 3, ' s')}  {1 / per_one:12,.0f} configs/s "
              f"(all {configs:,}: ~{per_one * configs:,.0f} s)")
        print(f"  ratio (sweep + predict) / sweep        {rel.median:8.2f}× (IQR {rel.q1:.2f}–{rel.q3:.2f})")
        per_vector = max(t_both.median - t_sweep.median, 1e-9) / configs  # the prediction's share
        print(f"  ratio one-at-a-time / vectorised prediction, per configuration {per_one / per_vector:,.0f}× (medians)")
        print(f"  largest relative difference on the sample: {worst:.1e} (equal to rounding)")
        if worst > 1e-12:
            raise SystemExit(f"the vectorised prediction differs from the one-at-a-time one by {worst:.1e}")
    print("\n" + machine_line())


if __name__ == "__main__":
    main()
