"""ExecuTorch: a configuration as a `.pte` program, XNNPACK-delegated, and run on the host.

The program is made from the module `measure` times (`build.build_model`, eval mode) with
batchnorm folded (`export.fold_batchnorm`), captured at a fixed input shape by
`torch.export.export`, lowered with `to_edge_transform_and_lower` and the XNNPACK
partitioner, and serialised by `to_executorch()`: ExecuTorch's recipe for a CPU model on a
phone. A program in which XNNPACK took no node (everything left to the portable kernels) is
refused: it would not be the program a phone runs.

`quantize` makes the int8 program (`export --quantize int8 --to pte`, `--dtype int8`) by
ExecuTorch's recipe for a quantized CPU model: torch's PT2E flow (`torch.quantize.pt2e`) with
ExecuTorch's `XNNPACKQuantizer` and `get_symmetric_quantization_config(is_per_channel=True)`
(int8 weights per output channel, symmetric; int8 activations per tensor from histogram
observers over the calibration inputs), then the same lowering to XNNPACK. The program takes
and gives float32 tensors: the quantization of the input and dequantization of the logits
are nodes of the program, run by XNNPACK with the rest.

On the host the program runs through ExecuTorch's Python runtime (`executorch.runtime`,
the same C++ runtime and XNNPACK kernels, built for x86-64); its thread pool is set to the
asked number of threads. ExecuTorch is an optional extra (`pip install
'mobilecost[executorch]'`); without it, `export --to pte` and `--runtime executorch` say so
in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ...errors import MobilecostError
from ..build import SpecNet
from ..lowering import ExportError, _quiet, fold_batchnorm, native_quiet
from . import Prepared, file_for

BACKEND = "XnnpackBackend"


def _runtime():
    with native_quiet(), _quiet():
        from executorch.runtime import Runtime

        return Runtime.get()


def version() -> str:
    import executorch.version

    return str(executorch.version.__version__)


def to_file(model: SpecNet, batch: int = 1, opset: int | None = None) -> bytes:
    """The `.pte` program (bytes) of `model`, batchnorm folded, XNNPACK-delegated, at input
    shape (batch, channels, resolution, resolution); an ExportError if a step fails or
    XNNPACK takes no node."""
    folded = fold_batchnorm(model)
    return _lower(lambda: torch.export.export(folded, (folded.example_input(batch),)), "export")


def _lower(capture: Callable[[], Any], what: str) -> bytes:
    """The program `capture()` exports, lowered to XNNPACK and serialised; an ExportError saying `what`
    failed (the exporter and the lowering raise many types), or if XNNPACK took no node."""
    try:
        with native_quiet(), _quiet(), torch.inference_mode(False):
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

            program = capture()
            lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            et = lowered.to_executorch()
    except Exception as exc:  # torch.export and the lowering raise many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"ExecuTorch cannot {what} the network: {first}") from None
    delegates = [d.id for plan in et.executorch_program.execution_plan for d in plan.delegates]
    if BACKEND not in delegates:
        raise ExportError("ExecuTorch's XNNPACK partitioner took no node of the network; "
                          "the program would run on portable kernels only")
    return bytes(et.buffer)


def quantize(model: SpecNet, batch: int, inputs: np.ndarray, dtype: str = "int8") -> bytes:
    """The int8 `.pte` program of `model` (see the module's docstring), calibrated on `inputs`
    (N × C × H × W float32) `batch` at a time, at input shape (batch, C, H, W). Nothing is
    written to disk. An ExportError if the quantizer or the lowering fails."""
    if dtype != "int8":
        raise ExportError(f"ExecuTorch's XNNPACK quantizer makes int8 programs, not {dtype}")
    if len(inputs) < batch:
        raise ExportError(f"{len(inputs)} calibration inputs, fewer than the batch of {batch}")

    def capture():
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )

        from ..quantize import pt2e

        quantizer = XNNPACKQuantizer().set_global(
            get_symmetric_quantization_config(is_per_channel=True))
        quantized = pt2e(model, batch, inputs, quantizer)
        return torch.export.export(quantized, (model.example_input(batch),))

    return _lower(capture, "quantize")


def runner(data: bytes, threads: int | None = 1):
    """The program as a function of an input batch (N × C × H × W float32, N its batch) to
    its logits (float32)."""
    r = load(data, threads)
    return lambda x: np.asarray(r(torch.from_numpy(np.ascontiguousarray(x, np.float32)))[0])


def set_threads(threads: int | None) -> None:
    """Size ExecuTorch's thread pool (XNNPACK's workers): `threads`, else torch's count. Only
    before a program is loaded: a loaded XNNPACK delegate keeps the pool it was given, and
    replacing that pool under it crashes or hangs the next run (seen here about one run in
    eight), so the pool is replaced only when its size changes."""
    from executorch.extension.pybindings.portable_lib import (
        _threadpool_get_thread_count,
        _unsafe_reset_threadpool,
    )

    n = int(threads or torch.get_num_threads())
    with native_quiet(), _quiet():  # its log lines go to fd 2 and to Python's sys.stderr
        if _threadpool_get_thread_count() != n:
            _unsafe_reset_threadpool(n)


@dataclass
class PteRunner:
    """A loaded program's `forward`: `runner(x)` runs one pass and gives its outputs. The
    program is held with its method: it holds the bytes the method runs from."""

    program: Any
    method: Any

    def __call__(self, x: torch.Tensor) -> Any:
        return self.method.execute([x])


def load(data: bytes, threads: int | None = None) -> PteRunner:
    """The `.pte` program `data` loaded in ExecuTorch's runtime, ready to run on `threads`
    threads."""
    runtime = _runtime()
    set_threads(threads)
    try:
        with native_quiet(), _quiet():
            from executorch.runtime import Verification

            program = runtime.load_program(data, verification=Verification.Minimal)
            method = program.load_method("forward")
    except Exception as exc:  # the runtime's errors have no common base type
        raise MobilecostError(f"ExecuTorch cannot load the program: "
                              f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]}"
                              ) from None
    if method is None:
        raise MobilecostError("ExecuTorch cannot load the program: it has no forward method")
    return PteRunner(program, method)


def input_shape(runner: PteRunner) -> list[int]:
    """The program's fixed input shape, from its method metadata."""
    meta = runner.method.metadata
    return list(meta.input_tensor_meta(0).sizes())


def run(data: bytes, x: torch.Tensor) -> tuple[list[int], np.ndarray]:
    """Run the program once on `x`: (its input shape, its first output)."""
    runner = load(data, 1)
    shape = input_shape(runner)
    if shape != list(x.shape):
        return shape, np.empty(0)
    out = runner(x)
    return shape, np.asarray(out[0])


def prepare(model: SpecNet, options: Any, data: bytes | None = None) -> Prepared:
    """`model` ready to time under ExecuTorch on `options.threads` threads. `data`: the `.pte`
    program, if already made."""
    if data is None:
        data = file_for(model, options)
    return Prepared(load(data, options.threads), model.example_input(options.batch), data)


__all__ = ["PteRunner", "input_shape", "load", "prepare", "quantize", "run", "runner",
           "set_threads", "to_file", "version"]
