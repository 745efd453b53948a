"""Write benchmarks/data/timm_infer_latency.csv from timm's published inference benchmarks.

timm (huggingface/pytorch-image-models) publishes `results/benchmark-infer-*.csv`: the
throughput of every network it has, per GPU or CPU, runtime (eager or torch.compile), memory
layout and precision. This keeps the rows of networks mobilecost builds in (MAP: timm's name to
spec and α), at the resolutions timm timed them, and checks each against timm's own MAC count
(`infer_gmacs`, from its profiler, which adds batchnorm and elementwise work to the Mult-Adds):
a row is kept when timm's figure is at least mobilecost's exact Mult-Adds less 0.005 G (two
printed decimals) and at most 0.01 G + 5% above them. A row that fails says so on stderr.

FILES maps each device key to its file. The first six are those the accelerator model was
designed on (benchmarks/accelerators.py keeps rtx5090-amp apart as its first held-out device);
the `-compiled`, `-nhwc` and bf16 keys were added after the model's form was fixed, as a
second held-out set: the newest file for each card, runtime, layout and precision not already
used; the `-pt240`, `-pt210` and `-pt113` keys (older torch versions of files already used)
after the second set had been reported, as a third, to check what was learnt from the second.

Usage: python benchmarks/timm_rows.py TIMM_CHECKOUT > benchmarks/data/timm_infer_latency.csv
TIMM_CHECKOUT is a git clone (or bare mirror) of pytorch-image-models; the files are read at
its HEAD, whose commit goes in the header.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mobilecost.engine.cost import cost  # noqa: E402

FILES = {
    "rtx3090-amp": "amp-nchw-pt240-cu124-rtx3090",
    "rtx4090-amp": "amp-nchw-pt291-cu128-4090",
    "rtx5090-amp": "amp-nchw-pt291-cu130-5090",
    "pro6000maxq-amp": "amp-nchw-pt291-cu130-pro6000maxq",
    "i7-12700h-fp32": "fp32-nchw-pt240-cpu-i7_12700h-dynamo",
    "i9-10940x-fp32": "fp32-nchw-pt240-cpu-i9_10940x-dynamo",
    "rtx3090-amp-nhwc": "amp-nhwc-pt240-cu124-rtx3090",
    "rtx4090-amp-nhwc": "amp-nhwc-pt240-cu124-rtx4090",
    "rtx4090-amp-compiled": "amp-nchw-pt291-cu128-4090-dynamo",
    "rtx5090-amp-compiled": "amp-nchw-pt291-cu130-5090-dynamo",
    "pro6000maxq-amp-compiled": "amp-nchw-pt291-cu130-pro6000maxq-dynamo",
    "pro6000maxq-ampbf16-compiled": "amp_bf16-nchw-pt291-cu130-pro6000maxq-dynamo",
    "pro6000maxq-bf16-compiled": "bf16-nchw-pt291-cu130-pro6000maxq-dynamo",
    "rtx4090-amp-pt240": "amp-nchw-pt240-cu124-rtx4090",
    "rtx4090-amp-compiled-pt240": "amp-nchw-pt240-cu124-rtx4090-dynamo",
    "rtx3090-amp-pt210": "amp-nchw-pt210-cu121-rtx3090",
    "rtx3090-amp-nhwc-pt210": "amp-nhwc-pt210-cu121-rtx3090",
    "rtx3090-amp-pt113": "amp-nchw-pt113-cu117-rtx3090",
    "rtx3090-amp-nhwc-pt113": "amp-nhwc-pt113-cu117-rtx3090",
}

MAP = {
    "mobilenetv1_100": ("mobilenet_v1", "1"), "mobilenetv1_125": ("mobilenet_v1", "1.25"),
    "mobilenetv2_035": ("mobilenet_v2", "0.35"), "mobilenetv2_050": ("mobilenet_v2", "0.5"),
    "mobilenetv2_075": ("mobilenet_v2", "0.75"), "mobilenetv2_100": ("mobilenet_v2", "1"),
    "mobilenetv2_140": ("mobilenet_v2", "1.4"),
    "mobilenetv3_large_075": ("mobilenet_v3_large", "0.75"),
    "mobilenetv3_large_100": ("mobilenet_v3_large", "1"),
    "mobilenetv3_small_050": ("mobilenet_v3_small", "0.5"),
    "mobilenetv3_small_075": ("mobilenet_v3_small", "0.75"),
    "mobilenetv3_small_100": ("mobilenet_v3_small", "1"),
    "tf_mobilenetv3_large_minimal_100": ("mobilenet_v3_large_minimalistic", "1"),
    "tf_mobilenetv3_small_minimal_100": ("mobilenet_v3_small_minimalistic", "1"),
    "mnasnet_050": ("mnasnet_b1", "0.5"), "mnasnet_075": ("mnasnet_b1", "0.75"),
    "mnasnet_100": ("mnasnet_b1", "1"), "mnasnet_140": ("mnasnet_b1", "1.4"),
    "semnasnet_050": ("mnasnet_a1", "0.5"), "semnasnet_075": ("mnasnet_a1", "0.75"),
    "semnasnet_100": ("mnasnet_a1", "1"), "semnasnet_140": ("mnasnet_a1", "1.4"),
    "mobilenetv4_conv_small": ("mobilenetv4_conv_small", "1"),
    "mobilenetv4_conv_small_035": ("mobilenetv4_conv_small", "0.35"),
    "mobilenetv4_conv_small_050": ("mobilenetv4_conv_small", "0.5"),
    "mobilenetv4_conv_medium": ("mobilenetv4_conv_medium", "1"),
    "mobilenetv4_conv_large": ("mobilenetv4_conv_large", "1"),
    "mobilenetv4_hybrid_medium": ("mobilenetv4_hybrid_medium", "1"),
    "mobilenetv4_hybrid_medium_075": ("mobilenetv4_hybrid_medium", "0.75"),
    "mobilenetv4_hybrid_large": ("mobilenetv4_hybrid_large", "1"),
    "mobilenetv4_hybrid_large_075": ("mobilenetv4_hybrid_large", "0.75"),
}

COLUMNS = ("device", "timm_model", "spec", "alpha", "resolution", "batch", "latency_ms",
           "samples_per_sec", "timm_gmacs", "file")


def agrees(timm_gmacs: float, exact_gmacs: float) -> bool:
    return -0.005 <= timm_gmacs - exact_gmacs <= 0.01 + 0.05 * timm_gmacs


def rows(checkout: Path) -> tuple[str, list[dict]]:
    git = ["git", "-C", str(checkout)]
    commit = subprocess.check_output([*git, "rev-parse", "HEAD"], text=True,
                                     stderr=subprocess.DEVNULL).strip()
    exact: dict[tuple[str, int], float] = {}
    out = []
    for device, name in FILES.items():
        path = f"results/benchmark-infer-{name}.csv"
        text = subprocess.check_output([*git, "show", f"{commit}:{path}"], text=True,
                                       stderr=subprocess.DEVNULL)
        for r in csv.DictReader(io.StringIO(text)):
            if r["model"] not in MAP:
                continue
            spec, alpha = MAP[r["model"]]
            res = int(r["infer_img_size"])
            if (r["model"], res) not in exact:
                exact[r["model"], res] = cost(spec, alpha, res).macs / 1e9
            if not agrees(float(r["infer_gmacs"]), exact[r["model"], res]):
                print(f"left out: {device} {r['model']} {res}: timm {r['infer_gmacs']} G, "
                      f"mobilecost {exact[r['model'], res]:.3f} G", file=sys.stderr)
                continue
            out.append(dict(device=device, timm_model=r["model"], spec=spec, alpha=alpha,
                            resolution=res, batch=int(float(r["infer_batch_size"])),
                            latency_ms=r["infer_step_time"],
                            samples_per_sec=r["infer_samples_per_sec"],
                            timm_gmacs=r["infer_gmacs"], file=Path(path).name))
    return commit, out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("Usage: ")[1].split("\n")[0], file=sys.stderr)
        return 2
    try:
        commit, out = rows(Path(args[0]))
    except subprocess.CalledProcessError as exc:
        print(f"error: {args[0]}: not a checkout of timm with its results/ files "
              f"({' '.join(exc.cmd[3:])} failed)", file=sys.stderr)
        return 2
    header = (ROOT / "benchmarks" / "data" / "timm_infer_latency.csv").read_text(encoding="utf-8")
    header = "".join(line + "\n" for line in header.splitlines() if line.startswith("#"))
    if commit not in header:
        print(f"the data file's header names another timm commit than {commit}: update it",
              file=sys.stderr)
        return 2
    sys.stdout.write(header)
    w = csv.DictWriter(sys.stdout, COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(out)
    print(f"{len(out)} rows from {commit[:8]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
