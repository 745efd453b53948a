"""The torch backend: build, count, time and profile any spec. The only code that imports torch.

This package's own `__init__` never imports torch, so the rest of mobilecost can ask
`torch_available()` without paying for the import; the submodules (`build`, `counters`,
`timing`, `profile`, `plots`) import it and are loaded only by the commands that need them.
"""

from __future__ import annotations

import importlib.util

from ..errors import MobilecostError

INSTALL_HINT = "install torch: pip install torch"


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


ONNX_HINT = "pip install 'mobilecost[onnx]'"


def require_onnx() -> None:
    """onnx, onnxscript and onnxruntime (export, ONNX Runtime timing), found without importing
    them, or one TorchMissingError saying how to install them."""
    missing = _missing(("onnx", "onnxscript", "onnxruntime"))
    if missing:
        raise TorchMissingError(f"this needs {', '.join(missing)}, which "
                                f"{'is' if len(missing) == 1 else 'are'} not installed; "
                                f"install {'it' if len(missing) == 1 else 'them'}: {ONNX_HINT}")


# The phone runtimes, optional extras: the modules each needs (export and timing alike, as
# timing converts the network first) and how to install them.
RUNTIME_MODULES = {"executorch": ("executorch",), "litert": ("litert_torch", "ai_edge_litert")}
RUNTIME_HINTS = {"executorch": "pip install 'mobilecost[executorch]'",
                 "litert": "pip install 'mobilecost[litert]'"}
RUNTIME_PACKAGES = {"executorch": "executorch", "litert_torch": "litert-torch",
                    "ai_edge_litert": "ai-edge-litert"}


def _missing(modules: tuple[str, ...]) -> list[str]:
    out = []
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                out.append(m)
        except (ImportError, ValueError):
            out.append(m)
    return out


def require_runtime(runtime: str, asked: str) -> None:
    """What `runtime` (onnxruntime, executorch, litert) needs, found without importing it, or
    one TorchMissingError naming `asked` (the option given) and how to install it."""
    if runtime == "onnxruntime":
        require_onnx()
        return
    missing = [RUNTIME_PACKAGES[m] for m in _missing(RUNTIME_MODULES[runtime])]
    if missing:
        raise TorchMissingError(f"{asked} needs {', '.join(missing)}, which "
                                f"{'is' if len(missing) == 1 else 'are'} not installed; "
                                f"install {'it' if len(missing) == 1 else 'them'}: "
                                f"{RUNTIME_HINTS[runtime]}")


def require_fvcore() -> None:
    try:
        import fvcore.nn  # noqa: F401
    except ImportError:
        raise TorchMissingError("the cross-check needs fvcore, which is not installed; "
                                "install it: pip install fvcore") from None


__all__ = ["INSTALL_HINT", "ONNX_HINT", "RUNTIME_HINTS", "RUNTIME_MODULES", "TorchMissingError",
           "require_fvcore", "require_onnx", "require_runtime", "require_torch",
           "torch_available"]
