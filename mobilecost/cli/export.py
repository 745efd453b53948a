"""The export command: one checked model file per configuration of a grid, and a manifest.

torch and the format's converter and runtime (onnx and onnxruntime; executorch; litert-torch
and ai-edge-litert) load inside the command, after checking they are installed.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MobilecostError
from ..latency.manifest import MANIFEST_NAME
from ..reports.export import DEFAULT_MAX_EXPORTS
from ..reports.report import Format
from ..runtimes import FORMATS, QUANTIZES
from .common import FormatOpt, SpecArg, check_output_dir, command, nonempty_path, say, writing
from .gridopts import DEFAULT_ALPHAS, GridAlphaOpt, GridResOpt, MaxConfigsOpt, RhoOpt
from .measuring import DEFAULT_BATCH, BatchOpt
from .progress import progress
from .render import render

DEFAULT_OPSET = 18  # mobilecost.torch.runtimes.onnxruntime.DEFAULT_OPSET (a test checks; no torch here)

# The file formats `--to` takes: the runtime table's (mobilecost.runtimes.FORMATS).
ModelFormat = Enum("ModelFormat", {f: f for f in FORMATS}, type=str)  # type: ignore[misc]
# The dtypes `--quantize` takes: those some runtime quantizes to (mobilecost.runtimes).
Quantized = Enum("Quantized", {d: d for d in QUANTIZES}, type=str)  # type: ignore[misc]
TO_HELP = "Model file format: " + "; ".join(
    f"{f} ({r.check}" + (f", needs mobilecost\\[{r.extra}]" if r.extra != "onnx" else "") + ")"
    for f, r in FORMATS.items()) + "."


@command("export")
def export_cmd(spec: SpecArg = "mobilenet_v1", alpha: GridAlphaOpt = DEFAULT_ALPHAS,
               res: GridResOpt = None, rho: RhoOpt = None,
               format_: Annotated[ModelFormat, typer.Option(
                   "--to", help=TO_HELP)] = ModelFormat.onnx,
               output_dir: Annotated[Optional[Path], typer.Option(
                   "--output-dir", help="Folder for the model files and manifest.csv (made if "
                                        "missing; an export there already is resumed).",
                   parser=nonempty_path("--output-dir"), metavar="<path>")] = None,
               batch: BatchOpt = DEFAULT_BATCH,
               opset: Annotated[Optional[int], typer.Option(
                   "--opset", min=1, help=f"ONNX opset of the files (--to onnx only; "
                                          f"default {DEFAULT_OPSET}); one the exporter cannot "
                                          f"give is refused.")] = None,
               quantize: Annotated[Optional[Quantized], typer.Option(
                   "--quantize", help="Write the runtime's quantized file instead (its own "
                                      "quantizer, per-channel int8 weights), checked against "
                                      "the float network.")] = None,
               calibration: Annotated[Optional[Path], typer.Option(
                   "--calibration", help="With --quantize: a .npy of inputs (N×C×H×W) or a "
                                         "folder of images of the input's size (default: "
                                         "synthetic images from a seed).",
                   parser=nonempty_path("--calibration"), metavar="<path>")] = None,
               max_configs: MaxConfigsOpt = DEFAULT_MAX_EXPORTS,
               format: FormatOpt = Format.table) -> None:
    """Export every configuration of the grid to a model file, checked, with a manifest.

    One file per α × resolution, built from the same module `measure` times (batchnorm
    folded, eval mode, fixed input shape), each loaded in its runtime (ONNX Runtime,
    ExecuTorch or LiteRT) and its output checked against torch's; manifest.csv lists spec,
    α exactly, resolution, batch, format, file, Mult-Adds, params, opset and sha256, for
    `calibrate --manifest` to match device logs. Files are written atomically; run again to
    resume (files whose hash matches the manifest are kept).

    Example: mobilecost export mobilenet_v1 --alpha 0.25..1 --res 128..224 --output-dir onnx/
    Example: mobilecost export --alpha 0.5 --res 160 --to pte --output-dir pte/
    Example: mobilecost export --alpha 1 --res 224 --quantize int8 --output-dir int8/
    """
    from ..reports.export import export_grid

    if output_dir is None:
        raise MobilecostError("export writes files: give --output-dir DIR")
    check_output_dir(output_dir)
    with progress(f"exporting {spec}", 0) as step, writing(output_dir):
        report = export_grid(spec, alpha, res, rho, format_.value, output_dir, batch, opset,
                             max_configs, step, quantize.value if quantize else None,
                             calibration)
    render(report, format)
    say(f"wrote {output_dir / MANIFEST_NAME}")


__all__ = ["export_cmd"]
