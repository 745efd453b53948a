"""int8 against fp32 under ONNX Runtime on this CPU: whole networks and the time by layer kind.

For each network (α 1, 224 px) one conditioned network (`mobilecost.torch.quantize.condition`)
gives both files: its float ONNX export and ONNX Runtime's static QDQ int8 file (what `export
--quantize int8` writes). Both run in InferenceSessions with the same options (one thread by
default, ORT_ENABLE_ALL); each round times `--runs` single calls of each, int8 and fp32 in an
order that alternates round by round, and takes each one's median; the figures are the medians
over the rounds with their IQR, and the ratio int8 / fp32 taken round by round. Then ONNX
Runtime's profiler gives each file's kernel time by layer kind (`profile --runtime
onnxruntime`), so the paper's claim that 1×1 convolutions hold 95% of the Mult-Adds (and
nearly as much of the time) can be read at int8 as at fp32.

    python benchmarks/int8_vs_fp32.py --rounds 7 --runs 20
    python benchmarks/int8_vs_fp32.py --specs mobilenet_v1 --rounds 3 --out int8.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from timer import Spread, machine_line, ratio  # noqa: E402

from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.quantize import Calibration, condition  # noqa: E402
from mobilecost.torch.runtimes import onnxruntime as ort_rt  # noqa: E402

SPECS = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
         "mnasnet_a1", "mobilenetv4_conv_small")
KINDS = ("conv", "depthwise", "pointwise", "fc", "other")


def median_call_ms(run, x: np.ndarray, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--specs", default=",".join(SPECS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20, help="timed calls per file per round")
    ap.add_argument("--passes", type=int, default=20, help="profiled runs per file")
    ap.add_argument("--out", type=Path, help="also write the tables (Markdown) here")
    args = ap.parse_args()

    lines = [f"# int8 / fp32 under ONNX Runtime {ort_rt.version()}, {args.threads} thread(s)",
             "", machine_line(), "",
             f"Medians over {args.rounds} interleaved rounds (IQR), each round the median of "
             f"{args.runs} calls; the ratio is taken round by round.", "",
             "| network | fp32 ms | int8 ms | int8 / fp32 |", "| --- | --- | --- | --- |"]
    kind_lines = ["", "Kernel time by layer kind (ONNX Runtime's profiler, mean of "
                  f"{args.passes} runs), share of time, and share of Mult-Adds:", "",
                  "| network | dtype | " + " | ".join(KINDS) + " | 1×1 MACs |",
                  "| --- | --- | " + " | ".join("---" for _ in KINDS) + " | --- |"]
    for spec in args.specs.split(","):
        model = condition(build_model(spec, "1", 224))
        x = model.example_input(1).numpy()
        files = {"fp32": ort_rt.to_file(model, 1),
                 "int8": ort_rt.quantize(model, 1, Calibration().inputs((3, 224, 224)))}
        runners = {k: ort_rt.runner(v, args.threads) for k, v in files.items()}
        for r in runners.values():  # warm-up
            for _ in range(5):
                r(x)
        times = {k: [] for k in files}
        for i in range(args.rounds):
            order = list(files) if i % 2 == 0 else list(files)[::-1]
            for k in order:
                times[k].append(median_call_ms(runners[k], x, args.runs))
        f, q = Spread.of(times["fp32"]), Spread.of(times["int8"])
        lines.append(f"| {spec} | {f.text(1, 2)} | {q.text(1, 2)} | "
                     f"{ratio(times['int8'], times['fp32']).text(1, 3)} |")
        print(lines[-1], flush=True)
        for dtype, data in files.items():
            prof, _ = ort_rt.profile_kernels(model, 1, args.threads, args.passes, 3, data)
            kinds = prof.by_kind()
            kind_lines.append(f"| {spec} | {dtype} | " + " | ".join(
                f"{kinds[k]['time_share']:.1%}" for k in KINDS)
                + f" | {kinds['pointwise']['macs_share']:.1%} |")
            print(kind_lines[-1], flush=True)
    text = "\n".join(lines + kind_lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
