"""The network built from the spec against a hand-written torch MobileNet v1, same settings.

Both are timed in one run, alternating round by round so that a noisy machine hits both alike,
with torch.utils.benchmark under inference_mode. Prints each median and the ratio
built / hand-written: at most about 1 means the spec-built model costs nothing extra.

    python benchmarks/bench_torch_build.py --alpha 1 --res 224 --threads 1 --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils import benchmark  # noqa: E402

from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.clock import device_name


def conv_bn_relu(cin: int, cout: int, stride: int, groups: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def hand_written_mobilenet_v1(alpha: float = 1.0, classes: int = 1000) -> nn.Sequential:
    """MobileNet v1 as one usually writes it by hand (Table 1), channels int(α·c)."""
    c = lambda n: int(n * alpha)  # noqa: E731
    # (output channels, stride of the depthwise layer) for the 13 separable blocks
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 \
        + [(1024, 2), (1024, 1)]
    layers = [conv_bn_relu(3, c(32), 2)]
    cin = c(32)
    for cout, stride in blocks:
        layers += [conv_bn_relu(cin, cin, stride, groups=cin), conv_bn_relu(cin, c(cout), 1, kernel=1)]
        cin = c(cout)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, classes)]
    return nn.Sequential(*layers).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--res", type=int, default=224)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-run-time", type=float, default=1.0)
    args = ap.parse_args()

    torch.manual_seed(0)
    built = build_model("mobilenet_v1", str(args.alpha), args.res)
    hand = hand_written_mobilenet_v1(args.alpha)
    n_built = sum(p.numel() for p in built.parameters())
    n_hand = sum(p.numel() for p in hand.parameters())
    if n_built != n_hand:
        sys.exit(f"not the same network: {n_built:,} vs {n_hand:,} parameters")
    x = torch.randn(args.batch, 3, args.res, args.res)
    models = {"built": built, "hand-written": hand}
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():
            m(x)
        for _ in range(args.rounds):
            for name, m in models.items():
                t = benchmark.Timer("m(x)", globals={"m": m, "x": x}, num_threads=args.threads)
                times[name].append(t.blocked_autorange(min_run_time=args.min_run_time).median * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"MobileNet v1 alpha {args.alpha:g}, resolution {args.res}, batch {args.batch}, "
          f"{args.threads} threads, fp32, cpu ({device_name('cpu')}), torch {torch.__version__}")
    print(f"parameters: {n_built:,} both")
    for k, v in times.items():
        print(f"{k:>13}: median {med[k]:8.3f} ms  (per-round medians: "
              + ", ".join(f"{t:.2f}" for t in v) + ")")
    print(f"ratio built / hand-written: {med['built'] / med['hand-written']:.3f}")


if __name__ == "__main__":
    main()
