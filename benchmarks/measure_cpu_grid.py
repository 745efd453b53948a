"""Time MobileNet v1 on this machine's CPU over the 16-configuration grid, batch 1.

The network is built in plain torch from the spec's concrete layers (conv-BN-ReLU, depthwise
and pointwise pairs, global average pool, FC), in eval mode under `torch.inference_mode`, on a
fixed number of threads. Each configuration is timed with `torch.utils.benchmark.Timer`
(`blocked_autorange`, median of blocks) in several rounds; the configurations are visited in a
new random order each round so that a burst of load on a shared machine falls on different
configurations.

The machine may be shared with other work, which can only add time, never take it away; the
median over rounds moves with the others' load (by 10–25% between runs here). So, as `timeit`
advises, a row's `latency_ms` is the lowest of its round medians, the configuration's speed
when nothing else interferes; `latency_median_ms` is the median over rounds. `spread_pct` is
the (max − min) / min of the round medians: how much the load moved them.

Usage: python benchmarks/measure_cpu_grid.py [--rounds 20] [--min-run-time 0.3] [--threads 1]
           [--out reports/cpu/measured_cpu_grid.csv]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import random
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils import benchmark  # noqa: E402

from mobilecost.cost import cost  # noqa: E402
from mobilecost.report import write_atomic  # noqa: E402
from mobilecost.spec import build, load_spec, to_fraction  # noqa: E402

ALPHAS = ("1", "0.75", "0.5", "0.25")
RESOLUTIONS = (224, 192, 160, 128)


def mobilenet_v1(alpha: str, resolution: int) -> nn.Module:
    """A plain nn.Sequential MobileNet v1 with the spec's channel counts at (α, resolution)."""
    layers: list[nn.Module] = []
    for layer in build(load_spec("mobilenet_v1"), to_fraction(alpha), resolution):
        if layer.op in ("conv", "dw", "pw"):
            pad = layer.kernel // 2
            layers += [nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel, layer.stride,
                                 pad, groups=layer.groups, bias=False),
                       nn.BatchNorm2d(layer.out_channels), nn.ReLU(inplace=True)]
        elif layer.op == "avgpool":
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif layer.op == "fc":
            layers.append(nn.Linear(layer.in_channels * layer.in_size ** 2, layer.out_channels))
        else:
            raise SystemExit(f"unexpected layer op {layer.op}")
    model = nn.Sequential(*layers).eval()
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    expected = cost("mobilenet_v1", alpha, resolution).params
    if weights != expected:
        raise SystemExit(f"built network has {weights} weights, the engine counts {expected}")
    return model


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--min-run-time", type=float, default=0.3, help="seconds per configuration per round")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("reports/cpu/measured_cpu_grid.csv"))
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    configs = [(a, r) for a in ALPHAS for r in RESOLUTIONS]
    models = {c: mobilenet_v1(*c) for c in configs}
    inputs = {c: torch.randn(args.batch, 3, c[1], c[1]) for c in configs}
    rounds: dict[tuple[str, int], list[tuple[float, float]]] = {c: [] for c in configs}
    rng = random.Random(0)
    with torch.inference_mode():
        for c in configs:  # warm-up: allocator, oneDNN primitive caches
            for _ in range(3):
                models[c](inputs[c])
        for k in range(args.rounds):
            order = configs[:]
            rng.shuffle(order)
            for c in order:
                t = benchmark.Timer("m(x)", globals={"m": models[c], "x": inputs[c]},
                                    num_threads=args.threads)
                m = t.blocked_autorange(min_run_time=args.min_run_time)
                rounds[c].append((m.median * 1e3, m.iqr * 1e3))
            print(f"round {k + 1}/{args.rounds} done", file=sys.stderr)

    buf = io.StringIO()
    buf.write(f"# MobileNet v1, batch {args.batch}, {args.threads} thread(s), torch {torch.__version__}, "
              f"CPU: {cpu_name()} ({os.cpu_count()} cores, shared with other work); {args.rounds} rounds of "
              f"blocked_autorange ({args.min_run_time} s each, median of blocks); latency_ms = the lowest "
              f"round median, latency_median_ms = the median over rounds, latency_iqr_ms = the IQR within "
              f"that lowest round, spread_pct = (max - min) / min of the round medians\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["spec", "alpha", "resolution", "batch", "latency_ms", "latency_iqr_ms", "runs", "threads",
                "latency_median_ms", "spread_pct", "round_medians_ms"])
    for c in configs:
        meds = [r[0] for r in rounds[c]]
        best = min(rounds[c])
        w.writerow(["mobilenet_v1", c[0], c[1], args.batch, f"{best[0]:.4f}", f"{best[1]:.4f}", args.rounds,
                    args.threads, f"{statistics.median(meds):.4f}",
                    f"{(max(meds) - min(meds)) / min(meds) * 100:.1f}", " ".join(f"{x:.3f}" for x in meds)])
    write_atomic(args.out, buf.getvalue())
    sys.stdout.write(buf.getvalue())


if __name__ == "__main__":
    main()
