"""The runtime table: every runtime that runs a built network, declared once.

A runtime is one row here and one module under `mobilecost/torch/runtimes/` (the only code
that runs it; see that package's docstring for what the module provides). The row says, with
no torch needed to read it, what the commands and reports need: the name `--runtime` takes,
the label reports print, the model file it runs (what `export --to` takes; none for torch,
which runs the module itself), what timing rows record of how it runs the graph, whether it
times each layer (`profile`, `--time-share`), and the packages it needs beyond torch with the
extra that installs them.

Adding a runtime: a row here, its module in mobilecost/torch/runtimes/, and its tests
(README, "Adding a runtime").
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from .errors import MobilecostError


@dataclass(frozen=True, slots=True)
class Runtime:
    name: str                      # what --runtime takes
    label: str                     # how reports name it
    module: str                    # its module: mobilecost.torch.runtimes.<module>
    file_format: str | None = None  # the model file it runs (export --to); None: the module
    graph_optimization: str = ""   # how it runs the graph, as timing rows record it
    profiled: bool = False         # times each layer (profile, --time-share)
    requires: tuple[tuple[str, str], ...] = ()  # (import name, pip package) beyond torch
    extra: str | None = None       # the mobilecost extra that installs them
    check: str = ""                # how export's check names it: 'ONNX Runtime (CPU)'
    file_label: str = ""           # how export's title names its files
    provider: str = ""             # what runs the kernels, where the runtime has a choice
    quantizes: tuple[str, ...] = ()  # the quantized dtypes its file can be (`--quantize`)
    quantizer: str = ""            # how its quantized file is made, for notes and the cache key

    def describe(self, version: str, graph_optimization: str) -> str:
        """'ONNX Runtime 1.22.0 (CPU execution provider, ORT_ENABLE_ALL)', as notes say it."""
        how = ", ".join(x for x in (self.provider, graph_optimization) if x)
        return f"{self.label} {version}" + (f" ({how})" if how else "")

    @property
    def install_hint(self) -> str:
        return f"pip install 'mobilecost[{self.extra}]'" if self.extra else ""

    def missing(self) -> list[str]:
        """The pip packages it needs that are not installed, found without importing them."""
        out = []
        for module, package in self.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(package)
        return out


_ONNX = (("onnx", "onnx"), ("onnxscript", "onnxscript"), ("onnxruntime", "onnxruntime"))

#: name -> runtime, in the order the options list them.
RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    Runtime("torch", "torch", "eager", profiled=True),
    Runtime("onnxruntime", "ONNX Runtime", "onnxruntime", "onnx", "ORT_ENABLE_ALL",
            profiled=True, requires=_ONNX, extra="onnx", check="ONNX Runtime (CPU)",
            file_label="ONNX", provider="CPU execution provider", quantizes=("int8",),
            quantizer="onnxruntime.quantization.quantize_static: QDQ, int8 per-channel weights, "
                      "uint8 activations, MinMax calibration"),
    Runtime("executorch", "ExecuTorch", "executorch", "pte", "XNNPACK delegate",
            requires=(("executorch", "executorch"),), extra="executorch",
            check="ExecuTorch (XNNPACK)", file_label="ExecuTorch .pte, XNNPACK-delegated",
            quantizes=("int8",),
            quantizer="PT2E with ExecuTorch's XNNPACKQuantizer: symmetric int8, per-channel "
                      "weights, per-tensor activations (histogram observers), float input "
                      "and output"),
    Runtime("litert", "LiteRT", "litert", "tflite", "XNNPACK delegate",
            requires=(("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert")),
            extra="litert", check="LiteRT (XNNPACK)", file_label="LiteRT .tflite",
            quantizes=("int8",),
            quantizer="PT2E with litert-torch's PT2EQuantizer: full-integer int8, per-channel "
                      "weights, per-tensor activations (histogram observers), int8 input and "
                      "output"),
)}

#: The model file formats (`export --to`) -> the runtime that runs and checks them.
FORMATS: dict[str, Runtime] = {r.file_format: r for r in RUNTIMES.values() if r.file_format}

#: The dtypes some runtime quantizes its file to (`export --quantize`), in the dtype table's order.
QUANTIZES: tuple[str, ...] = tuple(sorted({d for r in RUNTIMES.values() for d in r.quantizes}))

#: The runtimes that time each layer.
PROFILED: tuple[str, ...] = tuple(r.name for r in RUNTIMES.values() if r.profiled)


def runtime(name: str) -> Runtime:
    """The runtime of a name; a MobilecostError listing the known ones."""
    try:
        return RUNTIMES[name]
    except KeyError:
        raise MobilecostError(f"runtime must be one of {', '.join(RUNTIMES)}, got {name!r}") from None


def of_format(fmt: str) -> Runtime:
    """The runtime of a model file format; a MobilecostError listing the known ones."""
    try:
        return FORMATS[fmt]
    except KeyError:
        raise MobilecostError(f"--to must be one of {', '.join(FORMATS)}, got {fmt!r}") from None


__all__ = ["QUANTIZES", "FORMATS", "PROFILED", "RUNTIMES", "Runtime", "of_format", "runtime"]
