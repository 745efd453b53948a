"""LiteRT (formerly TensorFlow Lite): a configuration as a `.tflite` flatbuffer, run on the host.

The file is made from the module `measure` times (`build.build_model`, eval mode) with
batchnorm folded (`export.fold_batchnorm`) by litert-torch (`litert_torch.convert`, the
converter once called ai-edge-torch), which captures it with `torch.export` at a fixed input
shape and lowers it to LiteRT's builtin operators; the input stays NCHW, as the torch
module's. On the host it runs in ai-edge-litert's `Interpreter` (the LiteRT runtime, with its
default XNNPACK delegate for float CPU kernels, as `benchmark_model` on a phone) with the
asked number of threads. LiteRT is an optional extra (`pip install 'mobilecost[litert]'`);
without it, `export --to tflite` and `--runtime litert` say so in one line.

`quantize` makes the full-integer int8 file (`export --quantize int8 --to tflite`, `--dtype
int8`) by litert-torch's PT2E recipe: torch's PT2E flow (`torch.quantize.pt2e`) with
litert-torch's `PT2EQuantizer` and `get_symmetric_quantization_config(is_per_channel=True)`
(int8 weights per output channel, symmetric; int8 activations per tensor from histogram
observers over the calibration inputs), converted by `litert_torch.convert(...,
quant_config=QuantConfig(pt2e_quantizer=...))`, which folds the quantize and dequantize nodes
into LiteRT's integer kernels. The converter makes the file's input and output int8 too (a
full-integer model, as phones run it): `runner` quantizes a float input with the input
tensor's scale and zero point and dequantizes the logits with the output's; timing feeds the
interpreter the quantized input, as TFLite's `benchmark_model` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...errors import MobilecostError
from ..build import SpecNet
from ..lowering import ExportError, _quiet, fold_batchnorm, native_quiet
from . import Prepared, file_for


def version() -> str:
    """ai-edge-litert's version (the runtime), with litert-torch's (the converter)."""
    from importlib.metadata import version as dist_version

    return f"{dist_version('ai-edge-litert')} (litert-torch {dist_version('litert-torch')})"


def to_file(model: SpecNet, batch: int = 1, opset: int | None = None) -> bytes:
    """The `.tflite` file (bytes) of `model`, batchnorm folded, at input shape
    (batch, channels, resolution, resolution); an ExportError if the converter fails."""
    folded = fold_batchnorm(model)
    x = folded.example_input(batch)
    try:
        with native_quiet((1, 2)), _quiet(), torch.inference_mode(False):
            import litert_torch

            converted = litert_torch.convert(folded, (x,))
            content = converted.model_content
            data = content() if callable(content) else content
    except Exception as exc:  # the converter raises many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"litert-torch cannot convert the network: {first}") from None
    return bytes(data)


def quantize(model: SpecNet, batch: int, inputs: np.ndarray, dtype: str = "int8") -> bytes:
    """The full-integer int8 `.tflite` file of `model` (see the module's docstring), calibrated
    on `inputs` (N × C × H × W float32) `batch` at a time, at input shape (batch, C, H, W).
    An ExportError if the quantizer or the converter fails."""
    if dtype != "int8":
        raise ExportError(f"litert-torch's PT2E quantizer makes int8 files, not {dtype}")
    if len(inputs) < batch:
        raise ExportError(f"{len(inputs)} calibration inputs, fewer than the batch of {batch}")
    try:
        with native_quiet((1, 2)), _quiet(), torch.inference_mode(False):
            import litert_torch
            from litert_torch.quantize.pt2e_quantizer import (
                PT2EQuantizer,
                get_symmetric_quantization_config,
            )
            from litert_torch.quantize.quant_config import QuantConfig

            from ..quantize import pt2e

            quantizer = PT2EQuantizer().set_global(
                get_symmetric_quantization_config(is_per_channel=True))
            quantized = pt2e(model, batch, inputs, quantizer, fold_quantize=False)
            converted = litert_torch.convert(quantized, (model.example_input(batch),),
                                             quant_config=QuantConfig(pt2e_quantizer=quantizer))
            content = converted.model_content
            data = content() if callable(content) else content
    except Exception as exc:  # the quantizer and the converter raise many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"litert-torch cannot quantize the network: {first}") from None
    return bytes(data)


def _quantized(details: dict) -> tuple[float, int] | None:
    """(scale, zero point) of an int8 tensor, None for a float one."""
    if np.dtype(details["dtype"]) != np.int8:
        return None
    scale, zero = details["quantization"]
    return float(scale), int(zero)


def feed(runner: "TfliteRunner", x: np.ndarray) -> np.ndarray:
    """`x` (float32) as the file's input takes it: itself, or quantized to int8 with the input
    tensor's scale and zero point."""
    q = _quantized(runner.interpreter.get_input_details()[0])
    if q is None:
        return np.ascontiguousarray(x, np.float32)
    scale, zero = q
    return np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)


def runner(data: bytes, threads: int | None = 1):
    """The file as a function of an input batch (N × C × H × W float32, N its batch) to its
    logits as float32 (an int8 output dequantized)."""
    r = load(data, threads)
    q = _quantized(r.interpreter.get_output_details()[0])

    def run(x: np.ndarray) -> np.ndarray:
        out = r(feed(r, x))
        return out.astype(np.float32) if q is None else (out.astype(np.float32) - q[1]) * q[0]

    return run


@dataclass
class TfliteRunner:
    """An interpreter with its tensors allocated: `runner(x)` runs one pass."""

    interpreter: Any
    input_index: int
    output_index: int

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index)


def load(data: bytes, threads: int | None = None) -> TfliteRunner:
    """The `.tflite` file `data` in LiteRT's interpreter, `threads` threads (else torch's
    count), tensors allocated."""
    try:
        with native_quiet((1, 2)), _quiet():
            from ai_edge_litert.interpreter import Interpreter

            interpreter = Interpreter(model_content=bytes(data),
                                      num_threads=int(threads or torch.get_num_threads()))
            interpreter.allocate_tensors()
    except Exception as exc:  # the interpreter raises ValueError and RuntimeError
        raise MobilecostError(f"LiteRT cannot load the file: "
                              f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]}"
                              ) from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise MobilecostError(f"LiteRT: the file has {len(inputs)} inputs and {len(outputs)} "
                              f"outputs, not one of each")
    return TfliteRunner(interpreter, inputs[0]["index"], outputs[0]["index"])


def input_shape(runner: TfliteRunner) -> list[int]:
    details = runner.interpreter.get_input_details()[0]
    return [int(n) for n in details["shape"]]


def run(data: bytes, x: torch.Tensor) -> tuple[list[int], np.ndarray]:
    """Run the file once on `x`: (its input shape, its output)."""
    runner = load(data, 1)
    shape = input_shape(runner)
    if shape != list(x.shape):
        return shape, np.empty(0)
    return shape, np.array(runner(feed(runner, x.numpy())))


def prepare(model: SpecNet, options: Any, data: bytes | None = None) -> Prepared:
    """`model` ready to time under LiteRT on `options.threads` threads. `data`: the `.tflite`
    file, if already made."""
    if data is None:
        data = file_for(model, options)
    r = load(data, options.threads)
    return Prepared(r, feed(r, model.example_input(options.batch).numpy()), data)


__all__ = ["TfliteRunner", "feed", "input_shape", "load", "prepare", "quantize", "run", "runner",
           "to_file", "version"]
