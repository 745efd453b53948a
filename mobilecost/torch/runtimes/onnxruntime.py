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
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...engine.cost import layer_cost
from ...errors import MobilecostError
from ..build import SpecNet
from ..profile import LayerTime, Profile

GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"


def ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


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


def prepare_ort(model: SpecNet, batch: int, threads: int | None,
                data: bytes | None = None) -> tuple[Callable[[np.ndarray], Any], np.ndarray]:
    """(callable, input) for timing `model` under ONNX Runtime, as `timing.prepare` gives for
    torch. `data`: the exported file, if already made."""
    from ..export import to_onnx

    if data is None:
        data = to_onnx(model, batch)
    s = session(data, threads)
    x = model.example_input(batch).numpy()
    return OrtRunner(s, s.get_inputs()[0].name), x


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


def profile_ort(model: SpecNet, batch: int, threads: int | None, passes: int = 10,
                warmup: int = 3, data: bytes | None = None) -> tuple[Profile, float]:
    """Per-layer time from ONNX Runtime's profiler over `passes` runs (after `warmup`), in ms
    per pass; also the share of kernel time that maps to no layer. `data`: the exported
    file, if already made."""
    from ..export import to_onnx

    if data is None:
        data = to_onnx(model, batch)
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


__all__ = ["GRAPH_OPTIMIZATION", "OrtRunner", "ort_version", "prepare_ort", "profile_ort",
           "session"]
