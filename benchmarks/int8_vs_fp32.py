"""int8 against fp32 under a runtime on this CPU (ONNX Runtime by default; ExecuTorch or LiteRT
with --runtime, where installed): whole networks, file sizes, and the time by layer kind.

For each network (α 1, 224 px) one conditioned network (`mobilecost.torch.quantize.condition`)
gives both files: its float ONNX export and ONNX Runtime's static QDQ int8 file (what `export
--quantize int8` writes). Both run in InferenceSessions with the same options (one thread by
default, ORT_ENABLE_ALL); each round times `--runs` single calls of each, int8 and fp32 in an
order that alternates round by round, and takes each one's median; the figures are the medians
over the rounds with their IQR, and the ratio int8 / fp32 taken round by round. Then ONNX
Runtime's profiler gives each file's kernel time by layer kind (`profile --runtime
onnxruntime`), so the paper's claim that 1×1 convolutions hold 95% of the Mult-Adds (and
nearly as much of the time) can be read at int8 as at fp32.

With `--runtime executorch|litert` the two files are that runtime's (`.pte` lowered to
XNNPACK; `.tflite`, the int8 one full-integer), each loaded as `measure` loads it (the runtime
module's `prepare`: LiteRT's int8 file is fed its quantized input, as `benchmark_model` does)
and timed the same way; their Python APIs time no layer, so the table by kind is ONNX Runtime's
alone. Each network's row also gives both files' sizes and the int8 file's agreement with the
float network (`torch.quantize.agreement`: top-1 and centred cosine over the check's 64
inputs), as `export --quantize int8` checks it.

    python benchmarks/int8_vs_fp32.py --rounds 7 --runs 20
    python benchmarks/int8_vs_fp32.py --specs mobilenet_v1 --rounds 3 --out int8.md
    python benchmarks/int8_vs_fp32.py --runtime executorch --specs mobilenet_v1,mobilenet_v2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from timer import Spread, machine_line, ratio  # noqa: E402

from mobilecost.runtimes import RUNTIMES  # noqa: E402
from mobilecost.torch import runtimes  # noqa: E402
from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.quantize import Calibration, agreement, condition  # noqa: E402

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
    ap.add_argument("--runtime", default="onnxruntime",
                    choices=("onnxruntime", "executorch", "litert"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--runs", type=int, default=20, help="timed calls per file per round")
    ap.add_argument("--passes", type=int, default=20, help="profiled runs per file")
    ap.add_argument("--out", type=Path, help="also write the tables (Markdown) here")
    args = ap.parse_args()
    rt = runtimes.load(args.runtime)
    label = RUNTIMES[args.runtime].label
    options = SimpleNamespace(threads=args.threads, batch=1)

    lines = [f"# int8 / fp32 under {label} {rt.version()}, {args.threads} thread(s)",
             "", machine_line(), "",
             f"Medians over {args.rounds} interleaved rounds (IQR), each round the median of "
             f"{args.runs} calls; the ratio is taken round by round.", "",
             "| network | fp32 ms | int8 ms | int8 / fp32 | fp32 bytes | int8 bytes | int8 / fp32 "
             "bytes | top-1 agreement | centred cosine |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    kind_lines = ["", "Kernel time by layer kind (ONNX Runtime's profiler, mean of "
                  f"{args.passes} runs), share of time, and share of Mult-Adds:", "",
                  "| network | dtype | " + " | ".join(KINDS) + " | 1×1 MACs |",
                  "| --- | --- | " + " | ".join("---" for _ in KINDS) + " | --- |"]
    for spec in args.specs.split(","):
        model = condition(build_model(spec, "1", 224))
        files = {"fp32": rt.to_file(model, 1),
                 "int8": rt.quantize(model, 1, Calibration().inputs((3, 224, 224)))}
        agreed = agreement(model, rt.runner(files["int8"], 1), 1)
        prepared = {k: rt.prepare(model, options, v) for k, v in files.items()}
        runners = {k: p.fn for k, p in prepared.items()}
        for k, r in runners.items():  # warm-up
            for _ in range(5):
                r(prepared[k].x)
        times = {k: [] for k in files}
        for i in range(args.rounds):
            order = list(files) if i % 2 == 0 else list(files)[::-1]
            for k in order:
                times[k].append(median_call_ms(runners[k], prepared[k].x, args.runs))
        f, q = Spread.of(times["fp32"]), Spread.of(times["int8"])
        nf, nq = len(files["fp32"]), len(files["int8"])
        lines.append(f"| {spec} | {f.text(1, 2)} | {q.text(1, 2)} | "
                     f"{ratio(times['int8'], times['fp32']).text(1, 3)} | {nf:,} | {nq:,} | "
                     f"{nq / nf:.3f} | {agreed.top1:.0%} | {agreed.centred:.3f} |")
        print(lines[-1], flush=True)
        if args.runtime != "onnxruntime":
            continue
        for dtype, data in files.items():
            prof, _ = rt.profile_kernels(model, 1, args.threads, args.passes, 3, data)
            kinds = prof.by_kind()
            kind_lines.append(f"| {spec} | {dtype} | " + " | ".join(
                f"{kinds[k]['time_share']:.1%}" for k in KINDS)
                + f" | {kinds['pointwise']['macs_share']:.1%} |")
            print(kind_lines[-1], flush=True)
    text = "\n".join(lines + (kind_lines if args.runtime == "onnxruntime" else [])) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
