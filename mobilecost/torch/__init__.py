"""The torch backend: build, count, time and profile any spec. The only code that imports torch.

This package's own `__init__` never imports torch, so the rest of mobilecost can ask
`torch_available()` without paying for the import; the submodules (`build`, `counters`,
`timing`, `profile`, ...) import it and are loaded only by the commands that need them.

build (a spec as an nn.Module) -> counters (FlopCounterMode, fvcore) -> clock (preparing and
timing one callable) -> profile (time per layer) -> runtimes/ (what runs a network: torch,
ONNX Runtime, ExecuTorch, LiteRT; the registry) -> cache (measurements kept on disk) ->
timing (configurations and grids, in rounds) -> layers (layer shapes timed alone) -> export
(model files with a manifest) -> fx (a module read into the importer's graph).
"""

from __future__ import annotations

import importlib.util

from ..errors import MobilecostError

INSTALL_HINT = "install torch: pip install 'mobilecost[torch]' (torch first, as docs/torch.md says)"


class TorchMissingError(MobilecostError):
    """torch (or fvcore, for the counter cross-check) is not installed."""


def torch_available() -> bool:
    """Whether torch can be imported, found without importing it."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def require_torch() -> None:
    """Import torch, or raise TorchMissingError that says how to install it."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TorchMissingError(f"this command needs PyTorch, which is not installed; "
                                f"{INSTALL_HINT}") from None


def require_fvcore() -> None:
    try:
        import fvcore.nn  # noqa: F401
    except ImportError:
        raise TorchMissingError("the cross-check needs fvcore, which is not installed; "
                                "install it: pip install 'mobilecost[torch]'") from None


__all__ = ["INSTALL_HINT", "TorchMissingError", "require_fvcore", "require_torch", "torch_available"]
