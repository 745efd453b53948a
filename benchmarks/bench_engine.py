"""The grid engine against a plain numpy reference, network by network, side by side.

For each network with a layer list in benchmarks/reference.py (written apart from mobilecost:
its own layer lists, numpy only), the reference and the engine cost the same grid and are
checked equal cell for cell in every column; then, in interleaved rounds:

* reference:    the numpy reference (reference.py);
* engine:       `grid_cost`, the grid engine alone (exact int64 arrays);
* frame:        `mobilecost.sweep`, the full DataFrame (every column: α exact, ρ, shares,
                activations, accuracy);
* predictions:  the frame with `predicted_latency_ms` on a calibrated target (`sweep_frame`
                with `target=`: the `--target` of `mobilecost sweep`), a target calibrated
                on 8 configurations of the network whose latencies follow a known model;
* cost by name: `cost(NAME, α, r)` against `cost(spec, α, r)` on a spec already loaded.

Each figure is the median over the rounds with its IQR; each ratio is taken round by round.
Peak memory (tracemalloc, which numpy reports its buffers to) is measured once per network,
against the frame's own size. The targets: engine ≤ 1.5× the reference, frame ≤ 3×,
peak memory ≤ 2× the frame, predictions ≤ 1.5× the frame, cost by name ≤ 1.2× a loaded spec.

    python benchmarks/bench_engine.py             # 1000 α × 1000 resolutions, 15 rounds
    python benchmarks/bench_engine.py --quick     # 100 × 100, 3 rounds (a smoke run)

MobileNetV4-Conv-M's reference writes its universal and fused inverted bottlenecks as blocks
of the same conv, dw and pw layers (reference.uib, reference.fused).
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from reference import NETWORKS, reference  # noqa: E402
from timer import Spread, interleaved, machine_line, ratio  # noqa: E402

from mobilecost.engine.cost import cost  # noqa: E402
from mobilecost.engine.grid import grid_cost  # noqa: E402
from mobilecost.engine.sweep import sweep  # noqa: E402
from mobilecost.lang.load import builtin_names, load_spec  # noqa: E402
from mobilecost.latency import whole as lt  # noqa: E402
from mobilecost.latency.measurements import Config, Measurements, Point  # noqa: E402
from mobilecost.latency.targets import calibrate  # noqa: E402
from mobilecost.reports.sweep import sweep_frame  # noqa: E402

NETWORK_ORDER = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mnasnet_b1",
                 "mobilenetv4_conv_medium")
THETA = (1 / 25e6, 1 / 4e6, 1 / 12e6, 0.040)  # 25 GMAC/s dense, 4 depthwise, 12 GB/s, 40 µs
COLUMNS = ("macs", "params", "elementwise_ops", "activation_elems", "peak_activation_elems")
TARGETS = {"engine / reference": 1.5, "frame / reference": 3.0, "peak memory / frame": 2.0,
           "predictions / frame": 1.5, "cost by name / loaded spec": 1.2}


def synthetic_target(name: str):
    """A target calibrated on 8 configurations whose latencies follow THETA's sum model."""
    model = lt.Fit(THETA, "sum", "float32", ())
    configs = [Config(name, Fraction(a), r) for a in ("1", "0.75", "0.5", "0.35")
               for r in (224, 160)]
    points = tuple(Point(c, lt.predict_ms(model, c)) for c in configs)
    return calibrate("bench", Measurements(points, "float32", None))


def check_equal(name: str, alphas, resolutions) -> None:
    want = reference(name, alphas, resolutions)
    g = grid_cost(name, alphas, resolutions)
    for col in COLUMNS:
        if not np.array_equal(want[col], getattr(g, col)):
            raise SystemExit(f"{name}: the engine's {col} differs from the reference's")
    for kind, arr in g.kind_macs.items():
        if not np.array_equal(want[f"macs_{kind.value}"], arr):
            raise SystemExit(f"{name}: the engine's Mult-Adds of {kind.value} differ")


def peak_memory(fn) -> tuple[int, object]:
    tracemalloc.start()
    try:
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def bench(name: str, alphas, resolutions, rounds: int, has_reference: bool,
          quick: bool = False) -> dict[str, Spread]:
    spec = load_spec(name)
    target = synthetic_target(name)
    configs = len(alphas) * len(resolutions)
    sweep(spec, alphas[:2], resolutions[:2])  # first use: imports, accuracy tables
    sweep_frame(spec, alphas[:2], resolutions[:2], target=target)
    contenders = {
        "engine": lambda: grid_cost(spec, alphas, resolutions),
        "frame": lambda: sweep(spec, alphas, resolutions),
        "predictions": lambda: sweep_frame(spec, alphas, resolutions, target=target),
    }
    if has_reference:
        contenders = {"reference": lambda: reference(name, alphas, resolutions), **contenders}
    times, last = interleaved(contenders, rounds)
    out = {k: Spread.of(v) for k, v in times.items()}
    print(f"\n{name}: {len(alphas)} α × {len(resolutions)} resolutions = {configs:,} configurations")
    for k, v in out.items():
        print(f"  {k:<13} {v.text(1e3, 1, ' ms')}")
    if has_reference:
        out["engine / reference"] = ratio(times["engine"], times["reference"])
        out["frame / reference"] = ratio(times["frame"], times["reference"])
    out["predictions / frame"] = ratio(times["predictions"], times["frame"])

    frame = last["frame"]
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    del last, frame
    peak, df = peak_memory(lambda: sweep(spec, alphas, resolutions))
    del df
    ref_peak = peak_memory(lambda: reference(name, alphas, resolutions))[0] if has_reference else 0
    out["peak memory / frame"] = Spread.of([peak / frame_bytes])
    print(f"  memory: peak {peak / 2**20:,.1f} MiB while sweeping, the frame {frame_bytes / 2**20:,.1f}"
          f" MiB" + (f"; the reference's peak {ref_peak / 2**20:,.1f} MiB" if has_reference else ""))

    # cost() by name against a loaded spec, 20 calls a round at a few configurations
    sample = [(Fraction(3, 4), 192), (Fraction(1, 3), 161), (Fraction(1), 224), (Fraction(7, 20), 96)]
    calls = {
        "cost by name": lambda: [cost(name, a, r).macs for a, r in sample * 5],
        "loaded spec": lambda: [cost(spec, a, r).macs for a, r in sample * 5],
    }
    ct, cl = interleaved(calls, max(rounds, 5) * 2)
    if cl["cost by name"] != cl["loaded spec"]:
        raise SystemExit(f"{name}: cost by name differs from cost on the loaded spec")
    per_call = {k: Spread.of([t / len(sample * 5) for t in v]) for k, v in ct.items()}
    for k, v in per_call.items():
        print(f"  {k:<13} {v.text(1e3, 3, ' ms')} a call")
    out["cost by name / loaded spec"] = ratio(ct["cost by name"], ct["loaded spec"])
    for key, limit in TARGETS.items():
        if key in out:
            v = out[key]
            verdict = (" (at a million configurations)" if quick else
                       "" if v.median <= limit else "  MISSED")
            print(f"  ratio {key:<27} {v.median:6.2f}× (IQR {v.q1:.2f}–{v.q3:.2f})  "
                  f"target ≤ {limit}×{verdict}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 α × 100 resolutions, 3 rounds")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 15)")
    ap.add_argument("--spec", default=None, help="comma-separated networks (default: all)")
    args = ap.parse_args()
    n = 100 if args.quick else 1000
    rounds = args.rounds or (3 if args.quick else 15)
    alphas = [Fraction(250 + 1000 * i // n, 1000) for i in range(n)]  # 0.25 up, step 1/n
    resolutions = list(range(96, 96 + n))
    print(machine_line())
    print(f"grid: α {alphas[0]}..{alphas[-1]} ({n} values), resolutions {resolutions[0]}..{resolutions[-1]};"
          f" {rounds} interleaved rounds; medians (IQR)")
    names = args.spec.split(",") if args.spec else list(NETWORK_ORDER)
    builtins = set(builtin_names())
    for name in names:
        if name not in builtins:
            print(f"\n{name}: not a built-in spec here, skipped")
            continue
        has_reference = name in NETWORKS
        if has_reference:
            check_equal(name, alphas, resolutions)
            print(f"\n{name}: the engine equals the reference in every cell of every column")
        else:
            print(f"\n{name}: no numpy reference yet (one layer list in benchmarks/reference.py);"
                  f" timed without it")
        bench(name, alphas, resolutions, rounds, has_reference, args.quick)
    print("\n" + machine_line())


if __name__ == "__main__":
    main()
