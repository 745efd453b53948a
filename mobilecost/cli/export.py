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
from ..reports.report import Column, Format, Report
from ..util import millions
from .common import (
    FormatOpt,
    SpecArg,
    check_output_dir,
    command,
    err_console,
    fail,
    render,
    writing,
)
from .gridopts import DEFAULT_ALPHAS, GridAlphaOpt, GridResOpt, MaxConfigsOpt, RhoOpt
from .measuring import DEFAULT_BATCH, BatchOpt

# --max-configs default: an export writes a file of a few MB per configuration
DEFAULT_MAX_EXPORTS = 1_000
DEFAULT_OPSET = 18  # mobilecost.torch.export.DEFAULT_OPSET (checked by a test; no torch import here)


class ModelFormat(str, Enum):
    onnx = "onnx"
    pte = "pte"
    tflite = "tflite"


# The runtime that checks each format's files (mobilecost.torch.export.RUNTIME_OF, checked by
# a test; no torch import here), and its name in reports.
RUNTIME_OF = {"onnx": "onnxruntime", "pte": "executorch", "tflite": "litert"}
RUNTIME_LABEL = {"onnx": "ONNX Runtime (CPU)", "pte": "ExecuTorch (XNNPACK)",
                 "tflite": "LiteRT (XNNPACK)"}
FORMAT_LABEL = {"onnx": "ONNX", "pte": "ExecuTorch .pte, XNNPACK-delegated",
                "tflite": "LiteRT .tflite"}


def export_report(results, folder: Path) -> Report:
    from ..lang.values import exact_text

    fmts = sorted({r.format for r, _ in results}) or ["onnx"]
    check = " / ".join(RUNTIME_LABEL.get(f, f) for f in fmts)
    rows = [{"file": r.file, "alpha": exact_text(r.alpha), "resolution": r.resolution,
             "batch": r.batch, "macs": r.macs, "params": r.params, "opset": r.opset,
             "sha256": r.sha256, "max_abs_diff": r.max_abs_diff,
             "status": "kept" if kept else "exported"} for r, kept in results]
    columns = [Column("file", "File", numeric=False),
               Column("alpha", "α", numeric=False),
               Column("resolution", "Res"),
               Column("batch", "Batch", table=False),
               Column("macs", "Mult-Adds (M)", millions),
               Column("params", "Params (M)", millions),
               Column("opset", "Opset", table=False),
               Column("sha256", "sha256", lambda v: v[:12], numeric=False),
               Column("max_abs_diff", "Max |file−torch|", lambda v: f"{v:.1e}"),
               Column("status", "Status", numeric=False)]
    n_new = sum(1 for _, kept in results if not kept)
    notes = [f"{n_new} exported, {len(results) - n_new} kept (file there, hash as in the "
             f"manifest); manifest: {folder / MANIFEST_NAME}",
             f"Each file: batchnorm folded, fixed input shape, loaded in {check} and its "
             "output checked against the torch module's (within 1e-5 × max |output|)."]
    opsets = sorted({r.opset for r, _ in results if r.format == "onnx"})
    kinds = [f"ONNX opset {', '.join(map(str, opsets))}" if f == "onnx" and opsets
             else FORMAT_LABEL.get(f, f) for f in fmts]
    title = f"export to {folder} ({'; '.join(kinds)})"
    return Report(title, columns, rows, notes, drop_order=("sha256", "max_abs_diff", "params"))


@command("export")
def export_cmd(spec: SpecArg = "mobilenet_v1", alpha: GridAlphaOpt = DEFAULT_ALPHAS,
               res: GridResOpt = None, rho: RhoOpt = None,
               format_: Annotated[ModelFormat, typer.Option(
                   "--to", help="Model file format: onnx; pte (ExecuTorch, XNNPACK delegate; "
                                "needs mobilecost\\[executorch]); tflite (LiteRT; needs "
                                "mobilecost\\[litert]).")] = ModelFormat.onnx,
               output_dir: Annotated[Optional[Path], typer.Option(
                   "--output-dir", help="Folder for the model files and manifest.csv (made if "
                                        "missing; an export there already is resumed).")] = None,
               batch: BatchOpt = DEFAULT_BATCH,
               opset: Annotated[Optional[int], typer.Option(
                   "--opset", min=1, help=f"ONNX opset of the files (--to onnx only; "
                                          f"default {DEFAULT_OPSET}); one the exporter cannot "
                                          f"give is refused.")] = None,
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
    """
    from ..reports import sweep as sr
    from ..torch import require_onnx, require_runtime, require_torch

    if output_dir is None:
        raise MobilecostError("export writes files: give --output-dir DIR")
    s, alphas, resolutions = sr.grid_from_options(spec, alpha, res, rho)
    odd = [r for r in resolutions if isinstance(r, tuple)]
    if odd:
        raise MobilecostError(f"--res {odd[0][0]}x{odd[0][1]}: export takes square inputs (the "
                              f"manifest and device logs name one side); cost, validate and "
                              f"measure take HEIGHTxWIDTH")
    n = len(alphas) * len(resolutions)
    if n > max_configs:
        raise MobilecostError(f"the grid has {n:,} configurations, more than --max-configs "
                              f"{max_configs:,} (each is a model file)")
    fmt = format_.value
    if opset is not None and fmt != "onnx":
        raise MobilecostError(f"--opset: only with --to onnx (a {fmt} file has no ONNX opset)")
    check_output_dir(output_dir)
    require_torch()
    if fmt == "onnx":
        require_onnx()
    else:
        require_runtime(RUNTIME_OF[fmt], f"--to {fmt}")
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..torch.export import plan_export, run_export

    configs = [(a, r) for a in alphas for r in resolutions]
    plan = plan_export(s, configs, output_dir, batch,
                       DEFAULT_OPSET if opset is None else opset, fmt)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                        transient=True, disable=not err_console.is_terminal)

    def step(done: int, total: int, row, kept: bool) -> None:
        progress.update(task, completed=done, description=(
            f"{row.file}: {'kept' if kept else 'exported'}"))

    with progress, writing(output_dir):
        task = progress.add_task(f"exporting {s.name}", total=len(configs))
        try:
            results = run_export(plan, step)
        except KeyboardInterrupt:
            progress.stop()
            raise fail("interrupted; the files written so far are complete and in the "
                       "manifest: run the same command again to resume", 130) from None
    render(export_report(results, output_dir), format)
    err_console.print(f"wrote {output_dir / MANIFEST_NAME}", highlight=False, markup=False)


__all__ = ["export_cmd"]
