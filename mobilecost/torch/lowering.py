"""What every exporter here shares: batchnorm folded into the convolutions, the exporters' and
runtimes' own chatter kept off the command's output, and the error an export raises.

`export` (ONNX), `executorch` (.pte) and `litert` (.tflite) build on this module.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import sys
import warnings

from torch import nn

from ..errors import MobilecostError
from .build import SpecNet


class ExportError(MobilecostError):
    """An export that cannot be made or does not check out."""


def fold_batchnorm(model: SpecNet) -> SpecNet:
    """A copy of `model` with every convolution's batchnorm folded into the convolution (in eval
    mode a batchnorm is an affine map per channel: w' = w·γ/σ, b' = (b − μ)·γ/σ + β, σ the
    square root of the running variance + ε), the batchnorm replaced by Identity."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for mod in folded.layers:
        if isinstance(mod, nn.Sequential) and len(mod) > 1 and isinstance(mod[0], nn.Conv2d) \
                and isinstance(mod[1], nn.BatchNorm2d):
            mod[0] = fuse_conv_bn_eval(mod[0], mod[1])
            mod[1] = nn.Identity()
    return folded


@contextlib.contextmanager
def _quiet():
    """The exporter reports its steps on stdout and through logging; keep them off the
    command's output (its errors still raise)."""
    out = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def native_quiet(fds: tuple[int, ...] = (2,)):
    """The phone runtimes' native code (ExecuTorch, LiteRT, torchao) logs to file descriptors
    1 and 2 on import, conversion and when a thread pool starts (cpuinfo probing, optional
    kernels not built for this Python, converter steps); keep that off the command's output.
    Python exceptions still raise."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(fd) for fd in fds]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(null, fd)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, old in zip(fds, saved):
            os.dup2(old, fd)
            os.close(old)
        os.close(null)


__all__ = ["ExportError", "fold_batchnorm", "native_quiet"]
