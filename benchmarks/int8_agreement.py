"""How far an int8 file's logits are from the float network's, beside how far a wrong file's
and a 1% input perturbation's are: the measurements behind the quantized file's check
(`mobilecost.torch.quantize.MIN_CENTRED_COSINE`, docs/deploy.md "int8").

For each network and α (224 px) the conditioned network (`quantize.condition`) is quantized by
ONNX Runtime's static QDQ quantizer on the default calibration inputs (what `export --quantize
int8` does), and compared with the float network on the check's 64 inputs (`agreement`):
  * int8: the quantized file;
  * wrong: a "file" that returns the float network's logits of another input (the next one):
    what a file that ignores its input, or mixes up images, would score;
  * noise: the float network on its input plus 1% Gaussian noise (of the input's scale): how
    fragile the untrained network's logits are at all.
Printed: top-1 agreement, cosine and centred cosine of each. `--runtime executorch|litert`
quantizes with that runtime's toolchain instead (where its extra is installed); `--specs` and
`--alphas` choose the networks.

    python benchmarks/int8_agreement.py
    python benchmarks/int8_agreement.py --runtime litert --specs mobilenet_v1 --alphas 1
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mobilecost.torch import runtimes  # noqa: E402
from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.quantize import (  # noqa: E402
    CHECK_N,
    CHECK_SEED,
    Calibration,
    agreement,
    condition,
    synthetic,
)

SPECS = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
         "mnasnet_a1", "mobilenetv4_conv_small", "mobilenetv4_hybrid_medium")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime", default="onnxruntime",
                    choices=("onnxruntime", "executorch", "litert"))
    ap.add_argument("--specs", default=",".join(SPECS))
    ap.add_argument("--alphas", default="1,0.5")
    args = ap.parse_args()
    rt = runtimes.load(args.runtime)
    torch.set_num_threads(1)
    xs = synthetic(CHECK_N, (3, 224, 224), CHECK_SEED)
    index = {x.tobytes(): i for i, x in enumerate(xs)}
    print("| network | α | int8 top-1 | int8 cos | int8 centred | wrong top-1 | wrong centred "
          "| noise top-1 | noise centred |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for spec in args.specs.split(","):
        for alpha in args.alphas.split(","):
            model = condition(build_model(spec, alpha, 224))
            q = rt.quantize(model, 1, Calibration().inputs((3, 224, 224)))
            a = agreement(model, rt.runner(q, 1), 1)

            def other(x):
                j = (index[x[0].tobytes()] + 1) % len(xs)
                with torch.inference_mode():
                    return model(torch.from_numpy(xs[j:j + 1])).numpy()

            gen = torch.Generator().manual_seed(0)

            def noisy(x):
                t = torch.from_numpy(x)
                t = t + 0.01 * t.std() * torch.randn(t.shape, generator=gen)
                with torch.inference_mode():
                    return model(t).numpy()

            w, n = agreement(model, other, 1), agreement(model, noisy, 1)
            print(f"| {spec} | {alpha} | {a.top1:.0%} | {a.cosine:.3f} | {a.centred:.3f} | "
                  f"{w.top1:.0%} | {w.centred:.3f} | {n.top1:.0%} | {n.centred:.3f} |",
                  flush=True)


if __name__ == "__main__":
    main()
