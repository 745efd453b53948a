"""Export built networks to ONNX, one checked file per configuration, with a manifest.

The file of a configuration is made from the module the timing backend runs
(`build.build_model`, eval mode) with each convolution's batchnorm folded into its weights
and bias (`fold_batchnorm`), traced at a fixed input shape (batch × channels × resolution²,
no dynamic axes) by `torch.onnx.export(..., dynamo=True)`, torch's supported exporter (the
TorchScript one, `dynamo=False`, is deprecated since torch 2.9). It needs onnx and
onnxscript, and runs offline. The graph is optimised by the exporter (`optimize=True`) and
saved as one self-contained file (`external_data=False`): a MobileNet is a few MB, far below
protobuf's 2 GB limit.

The opset is stated: DEFAULT_OPSET is 18, the lowest the exporter emits without converting
versions (ONNX Runtime runs it from 1.14, and so do the converters to phone runtimes). The
exporter converts to another opset where it can and, where it cannot, silently keeps its
own; an export whose opset is not the one asked for is refused (`ExportError`).

Every file is checked before it is kept: it loads in ONNX Runtime (CPU) and its output on a
fixed random input differs from the torch module's (batchnorm not folded) by at most
TOLERANCE × max |torch output| in every element (`verify`).

`quantize="int8"` (`export --quantize int8`) writes each runtime's quantized file instead,
made by its own toolchain (the runtime table's `quantizer`: ONNX Runtime's static QDQ
quantizer, ExecuTorch's XNNPACK quantizer through PT2E, LiteRT's full-integer PT2E one) from
the conditioned network (`torch.quantize.condition`) and calibrated on the `Calibration`'s
inputs. Its float file is checked as above first; the quantized one is then checked against
the float network on other inputs (`torch.quantize.agreement`) and refused below the
threshold; its row records dtype, quantizer, calibration and the agreement.

Besides ONNX, two phone formats where their optional extra is installed (docs/runtimes.md):
`pte`, an ExecuTorch program with the XNNPACK delegate (`mobilecost.torch.executorch`), and
`tflite`, a LiteRT flatbuffer (`mobilecost.torch.litert`). Each is checked the same way in
its own runtime; their manifest rows have opset 0 (an ONNX opset does not apply).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ..dtypes import lookup as lookup_dtype
from ..errors import Interrupted
from ..lang.identity import Network
from ..lang.load import load_spec
from ..lang.spec import Spec, checked_configs
from ..lang.values import exact_text
from ..latency.manifest import (
    MANIFEST_NAME,
    ManifestRow,
    check_file,
    file_name,
    read_manifest,
    write_manifest,
)
from ..runtimes import FORMATS, of_format
from ..util import write_atomic
from . import runtimes
from .build import SpecNet, build_model
from .lowering import ExportError
from .quantize import Calibration, agreement, condition
from .runtimes.onnxruntime import DEFAULT_OPSET

# An exported file's output may differ from the torch module's by this share of the largest
# output magnitude (fp32 sums in another order; measured: 4e-8 of logits ~0.1, i.e. 3e-7).
TOLERANCE = 1e-5


def to_file(model: SpecNet, batch: int = 1, opset: int | None = None, fmt: str = "onnx") -> bytes:
    """The model file of `model` in format `fmt` (`export --to`), made by the runtime that runs
    it; `opset` for ONNX (default DEFAULT_OPSET)."""
    return runtimes.load(of_format(fmt).name).to_file(model, batch, opset)


def verify(data: bytes, model: SpecNet, batch: int = 1, seed: int = 0,
           fmt: str = "onnx") -> float:
    """Run the file `data` in its runtime (ONNX Runtime's CPU provider for onnx, ExecuTorch
    for pte, LiteRT for tflite) and the torch module on one random input; the largest
    absolute difference of their outputs. An ExportError if the file does not load, has not
    the fixed input shape, or differs by more than TOLERANCE × max |torch|."""
    rt = of_format(fmt)
    runtime = rt.label
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, model.in_channels, *model.sides, generator=gen)
    with torch.inference_mode():
        want = model.eval()(x).numpy()
    try:
        shape, got = runtimes.load(rt.name).run(data, x)
    except ExportError:
        raise
    except Exception as exc:  # the runtimes' errors have no common base type
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"{runtime} cannot run the exported file: {text}") from None
    if shape != list(x.shape):
        raise ExportError(f"the exported input shape is {shape}, not the fixed {list(x.shape)}")
    if got.shape != want.shape:
        raise ExportError(f"{runtime} gives an output of shape {got.shape}, torch {want.shape}")
    diff = float(np.max(np.abs(got - want)))
    bound = TOLERANCE * float(np.max(np.abs(want)))
    if not diff <= bound:
        raise ExportError(f"{runtime}'s output differs from torch's by {diff:.3g} "
                          f"(more than {TOLERANCE:g} × max |output| = {bound:.3g})")
    return diff


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What an export will do, worked out before anything is written."""

    folder: Path
    spec: Spec
    configs: list[tuple[Fraction, int]]
    batch: int
    opset: int
    fmt: str
    kept: dict[tuple[Fraction, int], ManifestRow]  # configurations whose file is there, hash matching
    others: list[ManifestRow]  # manifest rows of other configurations, carried over
    dtype: str = "fp32"        # a quantized dtype: the runtime's quantized files
    calibration: Calibration = Calibration()


def plan_export(spec: Spec | str, configs: Iterable[tuple[Any, int]], folder: Path,
                batch: int = 1, opset: int | None = None, fmt: str = "onnx",
                quantize: str | None = None,
                calibration: Calibration | None = None) -> ExportPlan:
    """Check everything an export of `configs` into `folder` needs, writing nothing: the
    configurations build, the runtime quantizes to `quantize` (if given) and the calibration
    source is there, the folder is a folder (or can be made), and its manifest (if any)
    reads and agrees with the files it lists (a hash that no longer matches is a
    ManifestError). A configuration whose file is there with its manifest hash is kept."""
    if fmt not in FORMATS:
        raise ExportError(f"--to must be one of {', '.join(FORMATS)}, got {fmt!r}")
    dtype = "fp32"
    if quantize is not None:
        dtype = lookup_dtype(quantize).short
        rt = of_format(fmt)
        if dtype not in rt.quantizes:
            can = ", ".join(rt.quantizes) or "nothing"
            raise ExportError(f"--quantize {quantize}: {rt.label} (--to {fmt}) quantizes to "
                              f"{can}")
    elif calibration is not None and calibration.source is not None:
        raise ExportError("--calibration: only with --quantize (a float file is not calibrated)")
    calibration = calibration or Calibration()
    calibration.check()
    if batch < 1:
        raise ExportError(f"--batch must be >= 1, got {batch}")
    if fmt == "onnx":
        opset = DEFAULT_OPSET if opset is None else opset
    else:
        opset = 0  # an ONNX opset does not apply to another runtime's file
    s = load_spec(spec)
    todo = checked_configs(s, configs)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"--output-dir {folder}: is a file, not a folder")
    rows = read_manifest(folder / MANIFEST_NAME) if (folder / MANIFEST_NAME).exists() else []
    for row in rows:  # every listed file must still be the one exported
        check_file(folder, row)
    network = Network.of(s).key
    wanted = {(network, a, r, batch, fmt, opset, dtype): (a, r) for a, r in todo}
    names = {file_name(s.name, a, r, batch, fmt, dtype) for a, r in todo}
    kept = {}
    others = []
    for row in rows:
        config = wanted.get(row.config)
        if config is not None and row.file == file_name(s.name, *config, batch, fmt, dtype) \
                and (folder / row.file).is_file() and row.calibration == _calibrated(
                    dtype, calibration):
            kept[config] = row
        elif row.file not in names:
            others.append(row)  # another configuration's file: carried over untouched
    return ExportPlan(folder, s, todo, batch, opset, fmt, kept, others, dtype, calibration)


def _calibrated(dtype: str, calibration: Calibration) -> str:
    """A manifest row's `calibration`: where the inputs came from (empty for a float file)."""
    return calibration.describe() if lookup_dtype(dtype).quantized else ""


def export_one(spec: Spec, alpha: Fraction, resolution: int, folder: Path, batch: int = 1,
               opset: int | None = None, fmt: str = "onnx", dtype: str = "fp32",
               calibration: Calibration | None = None) -> ManifestRow:
    """Export, check and write (atomically) one configuration's file; its manifest row."""
    import hashlib

    from ..engine.cost import cost

    model = build_model(spec, alpha, resolution)
    quantized = lookup_dtype(dtype).quantized
    if quantized:
        model = condition(model)
    data = to_file(model, batch, opset, fmt)
    diff = verify(data, model, batch, fmt=fmt)
    extra: dict[str, Any] = {}
    if quantized:
        calibration = calibration or Calibration()
        module = runtimes.load(of_format(fmt).name)
        inputs = calibration.inputs((model.in_channels, *model.sides))
        data = module.quantize(model, batch, inputs, dtype)
        agreed = agreement(model, module.runner(data, 1), batch)
        if not agreed.passes:
            raise ExportError(f"the {dtype} file does not agree with the float network: "
                              f"{agreed.describe()}")
        extra = {"dtype": dtype, "quantizer": of_format(fmt).quantizer,
                 "calibration": calibration.describe(), "top1_agreement": agreed.top1,
                 "cosine": agreed.cosine, "centred_cosine": agreed.centred}
    name = file_name(spec.name, alpha, resolution, batch, fmt, dtype)
    write_atomic(Path(folder) / name, data)
    c = cost(spec, alpha, resolution)
    return ManifestRow(spec=spec.name, network=Network.of(spec).key, alpha=alpha,
                       resolution=resolution, batch=batch, format=fmt, opset=opset, file=name,
                       macs=c.macs * batch, params=c.params,
                       sha256=hashlib.sha256(data).hexdigest(), max_abs_diff=diff,
                       torch_version=torch.__version__, **extra)


def run_export(plan: ExportPlan,
               on_progress: Callable[[int, int, ManifestRow, bool], None] | None = None
               ) -> list[tuple[ManifestRow, bool]]:
    """Carry out `plan`: each configuration's file exported, checked and written atomically,
    the manifest rewritten (atomically) after each, so that an interrupted export leaves
    complete files and a manifest that lists exactly them; running it again resumes. Returns
    (row, kept) per configuration, in order; `on_progress(done, total, row, kept)` after each."""
    rows = {r.file: r for r in plan.others}
    rows |= {r.file: r for r in plan.kept.values()}
    out: list[tuple[ManifestRow, bool]] = []
    total = len(plan.configs)
    written = 0
    try:
        for a, r in plan.configs:
            row = plan.kept.get((a, r))
            kept = row is not None
            if row is None:
                try:
                    row = export_one(plan.spec, a, r, plan.folder, plan.batch, plan.opset,
                                     plan.fmt, plan.dtype, plan.calibration)
                except ExportError as exc:
                    raise ExportError(f"{plan.spec.name} α={exact_text(a)} {r}: {exc}") from None
                rows[row.file] = row
                write_manifest(plan.folder, list(rows.values()))
                written += 1
            out.append((row, kept))
            if on_progress is not None:
                on_progress(len(out), total, row, kept)
    except KeyboardInterrupt:
        kept_n = len(out) - written
        if written:
            raise Interrupted(f"interrupted after {len(out)} of {total} configurations: "
                              f"{written} file(s) written now, {kept_n} kept, each complete and "
                              f"in {plan.folder / MANIFEST_NAME}; run the same command again to "
                              f"resume") from None
        raise Interrupted(f"interrupted before any file was written ({kept_n} of {total} were "
                          f"there already and kept); run the same command again to resume") from None
    if not (plan.folder / MANIFEST_NAME).exists():  # every file was kept: write the manifest anyway
        write_manifest(plan.folder, list(rows.values()))
    return out


__all__ = ["ExportPlan", "TOLERANCE", "export_one", "plan_export", "run_export", "to_file", "verify"]
