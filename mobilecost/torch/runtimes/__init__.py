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


def fields(options: Any) -> dict[str, Any]:
    """What runs the network, as a timing row records it: the runtime, its version and how it
    runs the graph (ONNX Runtime's optimisation level, a phone runtime's delegate)."""
    r = runtime(options.runtime)
    return {"runtime": r.name, "runtime_version": load(r.name).version(),
            "graph_optimization": r.graph_optimization}


__all__ = ["Prepared", "fields", "load", "require"]
