"""Peak memory of a sweep against the engine's estimate, at several grid shapes, side by side.

Each grid runs in a fresh subprocess, which reports its peak resident memory
(resource.getrusage, ru_maxrss) after a 1×1 sweep (imports, first use) and after the grid: the
difference is the grid's own memory. Two costs are fitted by least squares and printed beside
the constants engine/limits.py uses for its refusals:
  * per configuration (the DataFrame's columns and the engine's [α, resolution] arrays);
  * per α and layer (the grid engine walks the spec once per α and keeps a record per layer).
  * per resolution and layer (feature-map sizes: [layer, resolution] arrays), which matters
    for a long spec: a 20,003-layer one is generated for it.
The command line adds the output's own cost per row; it is measured the same way for
`mobilecost sweep --format table` and `--format csv` (the slope between two grid sizes).

    python benchmarks/bench_sweep_memory.py            # library and command line
    python benchmarks/bench_sweep_memory.py --quick    # library only, smaller grids
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mobilecost.engine.limits import (
    BYTES_PER_ALPHA_LAYER,
    BYTES_PER_CONFIG,
    BYTES_PER_RES_LAYER,
    CLI_BYTES_PER_ROW,
    grid_memory,
)
from mobilecost.lang.load import load_spec
from mobilecost.lang.spec import expanded_layers  # noqa: E402

CHILD = r"""
import resource, sys
from fractions import Fraction
from mobilecost.engine.sweep import sweep
spec, na, nr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
alphas = [Fraction(k, na) for k in range(1, na + 1)]
res = list(range(96, 96 + nr))
sweep(spec, [1], [224])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
df = sweep(spec, alphas, res, max_configs=10**9)
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

CLI = r"""
import resource, runpy, sys
sys.argv = ["mobilecost"] + sys.argv[1:]
try:
    runpy.run_module("mobilecost", run_name="__main__")
except SystemExit:
    pass
sys.stderr.write(f"\nmaxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\n")
"""


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def library_bytes(spec: str, na: int, nr: int) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, spec, str(na), str(nr)], check=True,
                         capture_output=True, text=True, env=env()).stdout.split()
    base, peak = int(out[0]), int(out[1])
    return (peak - base) * 1024  # ru_maxrss is in KiB on Linux


def cli_bytes(na: int, nr: int, fmt: str) -> int:
    args = ["sweep", "--alpha", f"1/{na}..1:1/{na}", "--res", f"96..{95 + nr}:1", "--format", fmt,
            "--max-configs", str(10**9)]
    r = subprocess.run([sys.executable, "-c", CLI, *args], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=env())
    return int(r.stderr.rsplit("maxrss", 1)[1]) * 1024


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    k = 4 if args.quick else 1
    long_spec = Path(tempfile.mkdtemp()) / "long.spec"
    long_spec.write_text("\n".join(["name long", "input 224 3!", "conv 3 32 s2"]
                                   + ["dw 3", "pw 64"] * 10_000 + ["avgpool global", "fc 1000!"]))
    shapes = [("mobilenet_v1", 1000 // k, 1000), ("mobilenet_v1", 2000 // k, 1000),
              ("mobilenet_v1", 200 // k, 5000), ("mobilenet_v1", 20000 // k, 1),
              ("mobilenet_v1", 60000 // k, 1), ("mobilenet_v2", 20000 // k, 1),
              (str(long_spec), 1, 100 // k), (str(long_spec), 1, 400 // k)]
    rows = []
    print(f"{'spec':<13} {'α':>6} {'res':>5} {'configs':>10} {'α·layers':>10} {'res·layers':>10} "
          f"{'measured MiB':>12} {'estimate MiB':>12} {'ratio':>6}")
    for spec, na, nr in shapes:
        layers = expanded_layers(load_spec(spec).body)
        got = library_bytes(spec, na, nr)
        est = grid_memory(na, nr, layers)
        rows.append((na * nr, na * layers, nr * layers, got))
        print(f"{Path(spec).stem:<13} {na:>6,} {nr:>5,} {na * nr:>10,} {na * layers:>10,} {nr * layers:>10,} "
              f"{got / 2**20:>12.1f} {est / 2**20:>12.1f} {est / got:>6.2f}")
    a = np.array([r[:3] for r in rows], dtype=float)
    b = np.array([r[3] for r in rows], dtype=float)
    (per_config, per_alpha_layer, per_res_layer), *_ = np.linalg.lstsq(a, b, rcond=None)
    print(f"fit: {per_config:.0f} bytes per configuration, {per_alpha_layer:.0f} per α·layer, "
          f"{per_res_layer:.0f} per resolution·layer (engine/limits.py uses {BYTES_PER_CONFIG}, "
          f"{BYTES_PER_ALPHA_LAYER} and {BYTES_PER_RES_LAYER})")
    if args.quick:
        return
    for fmt in ("table", "csv"):
        small, large = cli_bytes(1000, 1000, fmt), cli_bytes(2000, 1000, fmt)
        slope = (large - small) / 1_000_000
        est = BYTES_PER_CONFIG + CLI_BYTES_PER_ROW[fmt]
        print(f"command line --format {fmt}: {small / 2**20:,.0f} MiB at 1,000,000 configurations, "
              f"{large / 2**20:,.0f} MiB at 2,000,000: {slope:.0f} bytes per row; estimate "
              f"{BYTES_PER_CONFIG} + {CLI_BYTES_PER_ROW[fmt]} (output) = {est}, ratio "
              f"{est / slope:.2f}")


if __name__ == "__main__":
    main()
