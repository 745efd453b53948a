"""mobilecost's ONNX Runtime timing against a plain `InferenceSession.run` loop, same file.

mobilecost's side is `measure` with `--runtime onnxruntime` (mobilecost.torch.timing.measure:
the exported file in a session of mobilecost.torch.ort, timed by torch.utils.benchmark's
adaptive_autorange, median). The plain side loads the same bytes in an InferenceSession with
default options but the same thread count, runs it `--warmup` times, then times `--runs`
single calls with time.perf_counter and takes the median. The two alternate round by round
(each first in every other round) so that a noisy machine hits both alike; each side is the
median of its round medians with their IQR, and the ratio is taken round by round and given
as its median and IQR (never the best round: one lucky round once made it 1.213 where seven
rounds gave 1.005). Prints both, the ratio mobilecost / plain (at most 1.05 means mobilecost's
timing adds nothing a user would not see in their own loop) and the machine's load.

    python benchmarks/bench_ort.py --alpha 1 --res 224 --threads 1 --rounds 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from timer import Spread, machine_line  # noqa: E402

from mobilecost.latency.options import TimingOptions  # noqa: E402
from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.clock import MeasureOptions, device_name, time_callable  # noqa: E402
from mobilecost.torch.runtimes.onnxruntime import GRAPH_OPTIMIZATION, prepare  # noqa: E402
from mobilecost.torch.runtimes.onnxruntime import to_file as to_onnx  # noqa: E402


def plain_loop(data: bytes, x: np.ndarray, threads: int, warmup: int, runs: int) -> float:
    """Median ms of `runs` single InferenceSession.run calls, default session options but
    the thread count."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    s = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: x}
    for _ in range(warmup):
        s.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(None, feed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="mobilenet_v1")
    ap.add_argument("--alpha", default="1")
    ap.add_argument("--res", type=int, default=224)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="a small network, short rounds (CI)")
    args = ap.parse_args()
    if args.quick:
        args.alpha, args.res, args.rounds, args.runs, args.warmup = "0.25", 96, 2, 30, 5
    model = build_model(args.spec, args.alpha, args.res)
    data = to_onnx(model)
    options = MeasureOptions.of(TimingOptions(threads=args.threads, runtime="onnxruntime",
                                              min_run_time_s=0.2 if args.quick else 1.0,
                                              max_run_time_s=0.5 if args.quick else 3.0))
    prepared = prepare(model, options, data)
    fn, x = prepared.fn, prepared.x
    ours, plain = [], []
    print(machine_line())
    for i in range(args.rounds):  # alternating, each side first in every other round
        sides = [lambda: ours.append(time_callable(fn, x, options).median * 1e3),
                 lambda: plain.append(plain_loop(data, x, args.threads, args.warmup, args.runs))]
        for side in sides if i % 2 == 0 else sides[::-1]:
            side()
    a, b = Spread.of(ours), Spread.of(plain)
    r = Spread.of([o / p for o, p in zip(ours, plain)])
    print(f"{args.spec} α={args.alpha} {args.res}, {device_name('cpu')}, ONNX Runtime "
          f"{ort.__version__} ({GRAPH_OPTIMIZATION} in mobilecost; the plain loop's default, also ORT_ENABLE_ALL), "
          f"{args.threads} thread(s), {args.rounds} rounds; medians (IQR) over the rounds")
    print(f"mobilecost ORT timing (adaptive_autorange median): {a.text(1, 3, ' ms')}  rounds "
          + " ".join(f"{v:.3f}" for v in ours))
    print(f"plain InferenceSession.run loop (median of {args.runs}): {b.text(1, 3, ' ms')}  rounds "
          + " ".join(f"{v:.3f}" for v in plain))
    print(f"ratio mobilecost / plain: {r.median:.3f} (IQR {r.q1:.3f}–{r.q3:.3f}, round by round; "
          f"target at most 1.05)")
    print(machine_line())


if __name__ == "__main__":
    main()
