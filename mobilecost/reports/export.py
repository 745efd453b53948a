"""The report of `export`, and the export of a grid as one library call: every configuration's
model file made by the runtime that runs it, checked there, and listed in a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import MobilecostError
from ..lang.values import exact_text
from ..latency.manifest import MANIFEST_NAME
from ..runtimes import of_format
from ..util import millions
from .report import Column, Report

# --max-configs default: an export writes a file of a few MB per configuration
DEFAULT_MAX_EXPORTS = 1_000


def export_grid(spec: str, alpha: str, res: str | None, rho: str | None, fmt: str,
                folder: Path, batch: int = 1, opset: int | None = None,
                max_configs: int = DEFAULT_MAX_EXPORTS,
                on_progress: Callable[[int, int, str], None] | None = None,
                quantize: str | None = None, calibration: Path | None = None) -> Report:
    """Export every configuration of the grid to `folder` (resumable: files whose hash matches
    the manifest are kept) and report what was done; `quantize` ('int8') writes the runtime's
    quantized files, calibrated on `calibration` (a `.npy` or a folder of images; synthetic
    inputs if None). Everything is checked before the first file: the grid (square inputs, at
    most `max_configs`), the format, its opset and quantizer, the calibration source, the
    packages the runtime needs, and the folder's manifest."""
    from .sweep import grid_from_options

    rt = of_format(fmt)
    s, alphas, resolutions = grid_from_options(spec, alpha, res, rho)
    odd = [r for r in resolutions if isinstance(r, tuple)]
    if odd:
        raise MobilecostError(f"--res {odd[0][0]}x{odd[0][1]}: export takes square inputs (the "
                              f"manifest and device logs name one side); cost, validate and "
                              f"measure take HEIGHTxWIDTH")
    n = len(alphas) * len(resolutions)
    if n > max_configs:
        raise MobilecostError(f"the grid has {n:,} configurations, more than --max-configs "
                              f"{max_configs:,} (each is a model file)")
    if opset is not None and fmt != "onnx":
        raise MobilecostError(f"--opset: only with --to onnx (a {fmt} file has no ONNX opset)")
    from ..torch import require_torch

    require_torch()
    from ..torch.export import plan_export, run_export
    from ..torch.quantize import Calibration
    from ..torch.runtimes import require

    require(rt.name, f"--to {fmt}")
    plan = plan_export(s, [(a, r) for a in alphas for r in resolutions], folder, batch, opset,
                       fmt, quantize, Calibration(calibration) if calibration else None)

    def step(done: int, total: int, row: Any, kept: bool) -> None:
        if on_progress is not None:
            on_progress(done, total, f"{row.file}: {'kept' if kept else 'exported'}")

    return export_report(run_export(plan, step), folder)


def export_report(results, folder: Path) -> Report:
    fmts = sorted({r.format for r, _ in results}) or ["onnx"]
    check = " / ".join(of_format(f).check for f in fmts)
    rows = [{"file": r.file, "alpha": exact_text(r.alpha), "resolution": r.resolution,
             "batch": r.batch, "macs": r.macs, "params": r.params, "opset": r.opset,
             "sha256": r.sha256, "max_abs_diff": r.max_abs_diff, "dtype": r.dtype,
             "top1_agreement": r.top1_agreement, "centred_cosine": r.centred_cosine,
             "status": "kept" if kept else "exported"} for r, kept in results]
    quantized = [r for r, _ in results if r.quantizer]
    columns = [Column("file", "File", numeric=False),
               Column("alpha", "α", numeric=False),
               Column("resolution", "Res"),
               Column("batch", "Batch", table=False),
               Column("macs", "Mult-Adds (M)", millions),
               Column("params", "Params (M)", millions),
               Column("opset", "Opset", table=False),
               Column("sha256", "sha256", lambda v: v[:12], numeric=False),
               Column("max_abs_diff", "Max |file−torch|", lambda v: f"{v:.1e}",
                      table=not quantized),
               Column("dtype", "dtype", numeric=False, table=False),
               Column("top1_agreement", "Top-1 agree", _share, table=bool(quantized)),
               Column("centred_cosine", "Cosine (c.)", _cosine, table=bool(quantized)),
               Column("status", "Status", numeric=False)]
    n_new = sum(1 for _, kept in results if not kept)
    notes = [f"{n_new} exported, {len(results) - n_new} kept (file there, hash as in the "
             f"manifest); manifest: {folder / MANIFEST_NAME}",
             f"Each file: batchnorm folded, fixed input shape, loaded in {check} and its "
             "output checked against the torch module's (within 1e-5 × max |output|)."]
    if quantized:
        from ..torch.quantize import MIN_CENTRED_COSINE

        notes[1] = (f"Each file: quantized by {quantized[0].quantizer}, calibrated on "
                    f"{quantized[0].calibration}; its float file checked first as a float "
                    f"export is, then the quantized one against the float network on "
                    f"{of_format(quantized[0].format).check}: top-1 agreement and the "
                    f"centred cosine of the logits (at least {MIN_CENTRED_COSINE:g} to pass; "
                    f"docs/deploy.md, 'int8').")
    opsets = sorted({r.opset for r, _ in results if r.format == "onnx"})
    kinds = [f"ONNX opset {', '.join(map(str, opsets))}" if f == "onnx" and opsets
             else of_format(f).file_label for f in fmts]
    dtypes = sorted({r.dtype for r, _ in results if r.dtype != "fp32"})
    title = f"export to {folder} ({'; '.join(kinds)}{''.join(', ' + d for d in dtypes)})"
    return Report(title, columns, rows, notes, drop_order=("sha256", "max_abs_diff", "params", "macs"))


def _share(v: float | None) -> str:
    return "" if v is None else f"{v:.0%}"


def _cosine(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


__all__ = ["DEFAULT_MAX_EXPORTS", "export_grid", "export_report"]
