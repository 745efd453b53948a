"""The runtimes that run a built network: one module each, a row of the runtime table
(`mobilecost.runtimes`) naming it.

Every runtime module provides
  * `version() -> str`: the version of what runs the network;
  * `prepare(model, options, data=None) -> Prepared`: the network ready to time one forward
    pass under the measurement options (`torch.clock.MeasureOptions`), `data` the model file
    where one is already made;
and, as its row says,
  * a runtime with a file format: `to_file(model, batch, opset=None) -> bytes` (the file
    `export` writes, batchnorm folded, fixed input shape) and `run(data, x) -> (input shape,
    output)` (export's check);
  * a runtime that quantizes (its row's `quantizes`): `quantize(model, batch, inputs, dtype)
    -> bytes` (the file of `model` quantized by the runtime's own toolchain, calibrated on
    `inputs`, N × C × H × W float32; nothing left on disk) and `runner(data, threads) ->
    callable` (an input batch to the file's float logits: the quantized file's check);
  * a profiled runtime: `profile(model, options, passes, warmup, prepared=None) -> Profile`
    (time per layer, `torch.profile`).

`load(name)` gives a runtime's module; `require(name, asked)` checks, without importing them,
that the packages it needs are installed. The registry imports a module only when it is
asked for: a command that does not run ONNX Runtime never loads it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

from ...runtimes import runtime
from .. import TorchMissingError


@dataclass(frozen=True, slots=True)
class Prepared:
    """A network ready to time: `fn(x)` runs one forward pass; `data` is the model file it
    runs (None where the runtime runs the torch module itself)."""

    fn: Callable[[Any], Any]
    x: Any
    data: bytes | None = None


def load(name: str) -> ModuleType:
    """The module of runtime `name` (a MobilecostError for an unknown name)."""
    return importlib.import_module(f"{__name__}.{runtime(name).module}")


def require(name: str, asked: str) -> None:
    """What runtime `name` needs, found without importing it, or one TorchMissingError naming
    `asked` (the option given) and how to install it."""
    r = runtime(name)
    missing = r.missing()
    if missing:
        one = len(missing) == 1
        raise TorchMissingError(f"{asked} needs {', '.join(missing)}, which "
                                f"{'is' if one else 'are'} not installed; install "
                                f"{'it' if one else 'them'}: {r.install_hint}")


def file_for(model: Any, options: Any) -> bytes:
    """The file that timing and profiling run for `options` (runtime, batch, dtype): the
    float export, or at a quantized dtype the runtime's quantized file of the conditioned
    network on the default synthetic calibration inputs (`torch.quantize`), the file `export
    --quantize` writes by default."""
    from ...dtypes import lookup

    module = load(options.runtime)
    if not lookup(options.dtype).quantized:
        return module.to_file(model, options.batch)
    from ..quantize import Calibration, condition

    inputs = Calibration().inputs((model.in_channels, *model.sides))
    return module.quantize(condition(model), options.batch, inputs, options.dtype)


def quantization(options: Any) -> dict[str, Any] | None:
    """How a quantized file is made, for the timing cache's key (None at a float dtype): the
    runtime's quantizer, the conditioning and the calibration."""
    from ...dtypes import lookup

    if not lookup(options.dtype).quantized:
        return None
    from ..quantize import CONDITION_N, CONDITION_SEED, Calibration

    return {"quantizer": runtime(options.runtime).quantizer,
            "condition": f"batchnorm statistics, {CONDITION_N} images, seed {CONDITION_SEED}",
            "calibration": Calibration().describe()}


def fields(options: Any) -> dict[str, Any]:
    """What runs the network, as a timing row records it: the runtime, its version and how it
    runs the graph (ONNX Runtime's optimisation level, a phone runtime's delegate)."""
    r = runtime(options.runtime)
    return {"runtime": r.name, "runtime_version": load(r.name).version(),
            "graph_optimization": r.graph_optimization}


__all__ = ["Prepared", "fields", "file_for", "load", "quantization", "require"]
