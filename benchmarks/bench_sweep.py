"""Configurations per second: the vectorised sweep, the one-configuration engine, and fvcore.

All three are measured in the same run on the same machine (the sweep and the one-configuration
engine in interleaved rounds, each figure their median with its IQR; fvcore once per
configuration, the median over them), and the counts are checked to agree: fvcore's FlopCountAnalysis (which counts one multiply-add as one flop) on a plain torch
MobileNet built from the same layers must give the engine's Mult-Adds exactly.

    python benchmarks/bench_sweep.py            # 1000 α × 1000 resolutions
    python benchmarks/bench_sweep.py --quick    # smaller samples, for a smoke run
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timer import Spread, interleaved, machine_line  # noqa: E402

from mobilecost.engine.cost import cost  # noqa: E402
from mobilecost.engine.grid import grid_cost  # noqa: E402
from mobilecost.engine.sweep import sweep
from mobilecost.lang.load import load_spec
from mobilecost.lang.spec import build  # noqa: E402


def torch_model(spec, alpha: Fraction, resolution: int):
    """A plain torch network with the spec's convolutions and FC layer (no batchnorm: fvcore
    counts batchnorm as flops, the paper and the engine do not)."""
    import torch.nn as nn

    mods: list[nn.Module] = []
    for x in build(spec, alpha, resolution):
        if x.op in ("conv", "dw", "pw"):
            mods.append(nn.Conv2d(x.in_channels, x.out_channels, x.kernel, x.stride, x.padding,
                                  groups=x.groups, bias=False))
            if x.act != "none":
                mods.append(nn.ReLU6() if x.act == "relu6" else nn.ReLU())
        elif x.op == "avgpool":
            mods.append(nn.AvgPool2d(x.kernel, x.stride))
        elif x.op == "maxpool":
            mods.append(nn.MaxPool2d(x.kernel, x.stride))
        elif x.op == "fc":
            mods += [nn.Flatten(), nn.Linear(x.in_size * x.in_size * x.in_channels, x.out_channels,
                                             bias=x.bias)]
        else:
            raise SystemExit(f"this benchmark builds sequential networks only, not {x.op!r}")
    return nn.Sequential(*mods).eval()


def fvcore_macs(spec, alpha: Fraction, resolution: int) -> int:
    import torch
    from fvcore.nn import FlopCountAnalysis

    model = torch_model(spec, alpha, resolution)
    x = torch.zeros(1, spec.in_channels.base, resolution, resolution)
    with torch.no_grad():
        fca = FlopCountAnalysis(model, x)
        fca.unsupported_ops_warnings(False)
        fca.uncalled_modules_warnings(False)
        ops = fca.by_operator()
    return sum(v for k, v in ops.items() if k in ("conv", "linear", "addmm", "matmul"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="mobilenet_v1")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 9)")
    args = ap.parse_args()
    spec = load_spec(args.spec)
    n = 200 if args.quick else 1000
    rounds = args.rounds or (3 if args.quick else 9)
    alphas = [Fraction(i, n) for i in range(1, n + 1)]
    resolutions = list(range(32, 32 + n))
    configs = len(alphas) * len(resolutions)
    print(machine_line())

    rng = random.Random(0)
    sample = [(rng.choice(alphas), rng.choice(resolutions)) for _ in range(100 if args.quick else 400)]
    sweep(spec, alphas[:2], resolutions[:2])  # warm-up: imports
    times, _ = interleaved({
        "grid": lambda: grid_cost(spec, alphas, resolutions),
        "frame": lambda: sweep(spec, alphas, resolutions),
        "scalar": lambda: [cost(spec, a, r).macs for a, r in sample],
    }, rounds)
    t_grid, t_frame, t_scalar = (Spread.of(times[k]) for k in ("grid", "frame", "scalar"))
    # configurations per second of the sweep over those of the scalar engine, round by round
    speedup = Spread.of([(configs / f) / (len(sample) / c)
                         for f, c in zip(times["frame"], times["scalar"])])

    import tracemalloc  # numpy reports its buffers to tracemalloc

    tracemalloc.start()
    frame = sweep(spec, alphas, resolutions)
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    del frame

    import torch  # noqa: F401  (imported before timing: fvcore's time is the count alone)

    torch.set_num_threads(1)
    fv_sample = [(Fraction(1), 224), (Fraction(3, 4), 192), (Fraction(1, 2), 160),
                 (Fraction(1, 4), 128)] + sample[: 2 if args.quick else 6]
    fvcore_macs(spec, Fraction(1, 4), 64)  # warm-up: the tracer's first call
    g = grid_cost(spec, [a for a, _ in fv_sample], sorted({r for _, r in fv_sample}))
    col = {r: j for j, r in enumerate(g.resolutions)}
    fv_times = []
    for i, (a, r) in enumerate(fv_sample):
        t = time.perf_counter()
        got = fvcore_macs(spec, a, r)
        fv_times.append(time.perf_counter() - t)
        want = int(g.macs[i, col[r]])
        if got != want:
            raise SystemExit(f"fvcore gives {got:,} at α {a}, {r}; the sweep {want:,}")
    t_fv = Spread.of(fv_times)  # one configuration each, over the configurations

    rate_grid = configs / t_grid.median
    rate_frame = configs / t_frame.median
    rate_scalar = len(sample) / t_scalar.median
    rate_fvcore = 1 / t_fv.median
    print(f"spec {spec.name}; grid {len(alphas)} α × {len(resolutions)} resolutions = {configs:,} "
          f"configurations; medians (IQR) of {rounds} interleaved rounds")
    print(f"vectorised grid (grid_cost):        {t_grid.text(1, 3, ' s')}  {rate_grid:14,.0f} configs/s")
    print(f"vectorised sweep (DataFrame):       {t_frame.text(1, 3, ' s')}  {rate_frame:14,.0f} configs/s")
    print(f"memory: peak {peak_bytes / 2**20:,.0f} MiB while sweeping, of which the result "
          f"DataFrame is {frame_bytes / 2**20:,.0f} MiB")
    print(f"one-configuration engine (cost):    {len(sample)} configs, {t_scalar.text(1, 3, ' s')}"
          f"  {rate_scalar:14,.0f} configs/s")
    print(f"fvcore FlopCountAnalysis (torch):   {len(fv_sample)} configs, {t_fv.text(1, 3, ' s')} each"
          f"  {rate_fvcore:14,.2f} configs/s  (Mult-Adds equal to the sweep's at all of them)")
    print(f"ratio sweep / one-configuration engine: {speedup.median:,.0f}× (IQR {speedup.q1:,.0f}–"
          f"{speedup.q3:,.0f})")
    print(f"ratio sweep / fvcore:                   {rate_frame / rate_fvcore:,.0f}× (medians)")
    print(machine_line())


if __name__ == "__main__":
    main()
