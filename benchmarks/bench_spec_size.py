"""Parsing and costing are linear in a spec's size: two sizes side by side, the ratio printed.

Two kinds of spec, each at N and 4·N layers written out line by line (no repeats):
  * flat:  MobileNet-style (dw 3, pw 64) pairs at one map size;
  * valid: 'dw 3 pad=valid' layers, every one on a map of its own size (the case where a
    per-group mask in the grid engine once made it quadratic in the number of layers).
For each: parse (spec.parse), cost (cost.cost at the base resolution) and sweep (engine.sweep.sweep,
2 α × 2 resolutions). Linear work gives a time ratio near 4 between the two sizes; a quadratic
step gives near 16. A spec near the layer limit (100,000 layers) parses and costs in seconds.

    python benchmarks/bench_spec_size.py            # 25,000 and 100,000 layers
    python benchmarks/bench_spec_size.py --quick    # 5,000 and 20,000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timer import Spread, interleaved, machine_line  # noqa: E402

from mobilecost.engine.cost import cost  # noqa: E402
from mobilecost.engine.sweep import sweep
from mobilecost.lang.parse import parse
from mobilecost.lang.spec import MAX_LAYERS  # noqa: E402


def flat(n: int) -> str:
    pairs = (n - 3) // 2
    lines = ["name flat", "input 224 3!", "conv 3 32 s2"]
    lines += ["dw 3   # depthwise", "pw 64  # pointwise"] * pairs
    lines += ["avgpool global", "fc 1000!"]
    return "\n".join(lines) + "\n"


def valid(n: int) -> str:
    k = n - 3
    lines = ["name valid", f"input {2 * k + 16} 3!", "conv 3 8"]
    lines += ["dw 3 pad=valid"] * k + ["avgpool global", "fc 10!"]
    return "\n".join(lines) + "\n"


def measure(text: str, rounds: int) -> dict[str, float]:
    """Median seconds of parse, cost and sweep over `rounds` interleaved rounds."""
    spec = parse(text, "bench.spec")
    r = spec.resolution
    times, last = interleaved({
        "parse": lambda: parse(text, "bench.spec"),
        "cost": lambda: cost(spec),
        "sweep": lambda: sweep(spec, ["1", "0.5"], [r, r - 2]),
    }, rounds)
    c, df = last["cost"], last["sweep"]
    assert int(df["macs"].iloc[0]) == c.macs  # the two engines agree on the base point
    return {"layers": len(c.layers), "bytes": len(text),
            **{k: Spread.of(v).median for k, v in times.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5,000 and 20,000 layers")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    args = ap.parse_args()
    print(machine_line())
    small = 5_000 if args.quick else 25_000
    large = 4 * small
    assert large <= MAX_LAYERS
    print(f"{'spec':<6} {'layers':>8} {'MB':>6} {'parse s':>8} {'cost s':>8} {'sweep s':>8}  (medians)")
    for name, make in (("flat", flat), ("valid", valid)):
        a, b = measure(make(small), args.rounds), measure(make(large), args.rounds)
        for m in (a, b):
            print(f"{name:<6} {m['layers']:>8,} {m['bytes'] / 1e6:>6.2f} {m['parse']:>8.3f} "
                  f"{m['cost']:>8.3f} {m['sweep']:>8.3f}")
        ratio = {k: b[k] / a[k] for k in ("parse", "cost", "sweep")}
        print(f"{name:<6} ratio {b['layers'] / a['layers']:.1f}× the layers: "
              + ", ".join(f"{k} {v:.1f}×" for k, v in ratio.items())
              + "  (linear: about 4×, quadratic: about 16×)")


if __name__ == "__main__":
    main()
