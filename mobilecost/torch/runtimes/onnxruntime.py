"""ONNX Runtime as a second timing backend: the exported file of a configuration, run by ONNX
Runtime's CPU execution provider.

The file is the one `export` writes (`export.to_onnx`: the module `measure` times, batchnorm
folded, fixed input shape, opset 18), made in memory. The session runs with the asked number
of intra-op threads (one inter-op thread, sequential execution) and graph optimisation level
ORT_ENABLE_ALL, which is recorded in each row (`graph_optimization`). It is timed by the same
loop as torch (`timing.time_callable`: torch.utils.benchmark's adaptive_autorange over
`session.run`), so both runtimes' latencies are the same statistic.

`profile_ort` attributes time to spec layers from ONNX Runtime's own profiler: each kernel
event of the optimised graph is traced back, by its node or output name (ORT names a fused
or re-laid-out node after the original output, `conv2d_3_nchwc`), to the exported node, whose
`pkg.torch.onnx.name_scopes` metadata names the module `layers.i` it came from. Kernels that
belong to no layer (ORT's layout reorders between NCHW and its blocked NCHWc) are `other`.
"""

from __future__ import annotations

import ast
import json
import os
import tempfile

# onnxruntime's telemetry writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ and $TMPDIR/.ses
# when it is imported, unless this is set first (after the import, nothing stops it): a command
# of mobilecost leaves no files it did not say it writes.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...engine.cost import layer_cost
from ...errors import MobilecostError
from ...runtimes import RUNTIMES
from ..build import SpecNet
from ..lowering import ExportError, _quiet, fold_batchnorm
from ..profile import LayerTime, Profile
from . import Prepared, file_for

GRAPH_OPTIMIZATION = RUNTIMES["onnxruntime"].graph_optimization
DEFAULT_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def version() -> str:
    import onnxruntime as ort

    return ort.__version__


def to_file(model: SpecNet, batch: int = 1, opset: int | None = None) -> bytes:
    """The ONNX file (bytes) of `model` with batchnorm folded, at input shape
    (batch, channels, resolution, resolution); an ExportError if the exporter fails or does
    not give `opset`."""
    opset = DEFAULT_OPSET if opset is None else opset
    folded = fold_batchnorm(model)
    x = folded.example_input(batch)
    try:
        with _quiet(), torch.inference_mode(False):
            program = torch.onnx.export(
                folded, (x,), None, dynamo=True, opset_version=opset, external_data=False,
                optimize=True, verbose=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])
    except Exception as exc:  # the exporter raises many types; each is the user's refusal
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"torch.onnx.export refused opset {opset}: {first}") from None
    proto = program.model_proto
    got = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if got != opset:
        import onnx

        raise ExportError(f"--opset {opset}: torch.onnx.export (torch {torch.__version__}) "
                          f"cannot convert this network to opset {opset} (it gave opset {got}); "
                          f"it gives opsets 17 to {onnx.defs.onnx_opset_version()} here")
    return proto.SerializeToString()


def run(data: bytes, x: torch.Tensor) -> tuple[list[Any], np.ndarray]:
    """Run the file once on `x` (export's check): (its input shape, its output)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    shape = list(session.get_inputs()[0].shape)
    if shape != list(x.shape):
        return shape, np.empty(0)
    return shape, session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def quantize(model: SpecNet, batch: int, inputs: np.ndarray, dtype: str = "int8") -> bytes:
    """The file of `model` quantized by ONNX Runtime's static quantization (QDQ, int8
    per-channel weights, uint8 activations, MinMax ranges over `inputs`, N × C × H × W, taken
    `batch` at a time). Everything the quantizer writes (the float file, its shape-inferred copy,
    the augmented calibration model) goes into a private folder, removed when done."""
    if dtype != "int8":
        raise ExportError(f"ONNX Runtime's quantizer makes int8 files, not {dtype}")
    data = to_file(model, batch)
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            n = len(inputs) // batch * batch
            self.batches = iter(inputs[i:i + batch] for i in range(0, n, batch))

        def get_next(self) -> dict | None:
            x = next(self.batches, None)
            return None if x is None else {INPUT_NAME: np.ascontiguousarray(x, np.float32)}

    if len(inputs) < batch:
        raise ExportError(f"{len(inputs)} calibration inputs, fewer than the batch of {batch}")
    saved = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="mobilecost-quantize-") as tmp:
        src, dst = os.path.join(tmp, "float.onnx"), os.path.join(tmp, "int8.onnx")
        with open(src, "wb") as fh:
            fh.write(data)
        tempfile.tempdir = tmp  # the quantizer's own temporary folders, inside ours
        try:
            with _quiet():
                quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ,
                                per_channel=True, weight_type=QuantType.QInt8,
                                activation_type=QuantType.QUInt8,
                                calibrate_method=CalibrationMethod.MinMax)
        except Exception as exc:  # the quantizer raises many types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ExportError(f"ONNX Runtime cannot quantize the network: {first}") from None
        finally:
            tempfile.tempdir = saved
        with open(dst, "rb") as fh:
            return fh.read()


def runner(data: bytes, threads: int | None = 1):
    """The file as a function of an input batch (N × C × H × W float32) to its first output."""
    s = session(data, threads)
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]


def session(data: bytes, threads: int | None, profile_prefix: str | None = None):
    """An InferenceSession of the ONNX file `data` on the CPU execution provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or 0
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors have no common base type
        raise MobilecostError(f"ONNX Runtime cannot load the exported network: "
                              f"{str(exc).strip().splitlines()[0][:200]}") from None


@dataclass
class OrtRunner:
    """A session and its input: `runner(x)` runs one forward pass."""

    session: Any
    input_name: str

    def __call__(self, x: np.ndarray) -> Any:
        return self.session.run(None, {self.input_name: x})


def prepare(model: SpecNet, options: Any, data: bytes | None = None) -> Prepared:
    """`model` ready to time under ONNX Runtime on `options.threads` threads, its file quantized
    where `options.dtype` is (on synthetic calibration inputs). `data`: the file, if already
    made."""
    if data is None:
        data = file_for(model, options)
    s = session(data, options.threads)
    x = model.example_input(options.batch).numpy()
    return Prepared(OrtRunner(s, s.get_inputs()[0].name), x, data)


# --------------------------------------------------------------------------- profile

def _layer_of_names(data: bytes) -> dict[str, int]:
    """Node and output names of the exported graph -> the spec layer index they came from."""
    import onnx

    out: dict[str, int] = {}
    for node in onnx.load_from_string(data).graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = meta.get("pkg.torch.onnx.name_scopes")
        if not scopes:
            continue
        try:
            names = ast.literal_eval(scopes)
        except (ValueError, SyntaxError):
            continue
        layer = next((int(n.split(".")[1]) for n in names
                      if n.startswith("layers.") and n.split(".")[1].isdigit()), None)
        if layer is None:
            continue
        out[node.name] = layer
        for o in node.output:
            out[o] = layer
    return out


def _event_layer(name: str, layers: dict[str, int]) -> int | None:
    """The layer of one profiler kernel event (`<node>_kernel_time`), if it has one."""
    base = name[:-len("_kernel_time")] if name.endswith("_kernel_time") else name
    for candidate in (base, base.removesuffix("_nchwc"), base.split("_token_")[0]):
        if candidate in layers:
            return layers[candidate]
    return None


def profile(model: SpecNet, options: Any, passes: int = 10, warmup: int = 3,
            prepared: Prepared | None = None) -> Profile:
    """Per-layer time from ONNX Runtime's profiler (see `profile_kernels`)."""
    data = prepared.data if prepared is not None else file_for(model, options)
    return profile_kernels(model, options.batch, options.threads, passes, warmup, data)[0]


def profile_notes(opts: Any, prof: Profile, total_ms: float) -> list[str]:
    """What a profile's report says of how it was taken."""
    from ..clock import device_name

    file = ("exported file" if opts.dtype == "fp32"
            else f"{opts.dtype} file (QDQ, run as QLinearConv kernels)")
    return [f"{device_name('cpu')} (cpu), ONNX Runtime {version()} (CPU execution provider, "
            f"{GRAPH_OPTIMIZATION}) on the {file}, {opts.threads} threads, {opts.dtype}, batch "
            f"{opts.batch}; kernel time per run from ONNX Runtime's profiler, mean of "
            f"{prof.passes} profiled runs (sum of kinds {total_ms:.3f} ms).",
            "Each kernel of the optimised graph is traced back to the spec layer it came from "
            "(fused Conv+activation kernels count for their layer). Other: pooling, residual "
            "adds, ONNX Runtime's layout reorders, the input's quantization and the output's "
            "dequantization, and time in the run outside any kernel "
            f"({prof.outside_ms:.3f} ms)."]


def profile_kernels(model: SpecNet, batch: int, threads: int | None, passes: int = 10,
                    warmup: int = 3, data: bytes | None = None) -> tuple[Profile, float]:
    """Per-layer time from ONNX Runtime's profiler over `passes` runs (after `warmup`), in ms
    per pass; also the share of kernel time that maps to no layer. `data`: the exported
    file, if already made."""
    if data is None:
        data = to_file(model, batch)
    layers = _layer_of_names(data)
    with tempfile.TemporaryDirectory(prefix="mobilecost-ort-") as tmp:
        s = session(data, threads, profile_prefix=os.path.join(tmp, "profile"))
        feed = {s.get_inputs()[0].name: model.example_input(batch).numpy()}
        for _ in range(warmup + passes):
            s.run(None, feed)
        with open(s.end_profiling(), encoding="utf-8") as fh:
            events = json.load(fh)
    # the last `passes` runs, and the kernels that ran inside them
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    timed_runs = runs[-passes:]
    if len(timed_runs) < passes:
        raise MobilecostError(f"ONNX Runtime's profile has {len(runs)} runs, not "
                              f"{warmup + passes}")
    spans = [(e["ts"], e["ts"] + e["dur"]) for e in timed_runs]
    timed = [e for e in events if e.get("cat") == "Node"
             and e.get("name", "").endswith("_kernel_time")
             and any(a <= e["ts"] <= b for a, b in spans)]
    per_layer = [0.0] * len(model.spec_layers)
    unmapped = 0.0
    for e in timed:
        i = _event_layer(e["name"], layers)
        if i is None:
            unmapped += e["dur"]
        else:
            per_layer[i] += e["dur"]
    kernel_total = sum(e["dur"] for e in timed) or 1.0
    forward_us = sum(e["dur"] for e in timed_runs)
    lt = tuple(LayerTime(layer, per_layer[i] / passes / 1e3, layer_cost(layer).macs)
               for i, layer in enumerate(model.spec_layers))
    return Profile(lt, forward_us / passes / 1e3, passes, "cpu"), unmapped / kernel_total


__all__ = ["DEFAULT_OPSET", "GRAPH_OPTIMIZATION", "INPUT_NAME", "OUTPUT_NAME", "OrtRunner",
           "prepare", "profile", "profile_kernels", "profile_notes", "quantize",
           "runner", "run", "session", "to_file", "version"]
