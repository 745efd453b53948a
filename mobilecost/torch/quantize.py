"""What a quantized file is made from and checked against: the network's weights, its
calibration inputs, and its agreement with the float network.

mobilecost builds untrained networks. With torch's default initialisation every batchnorm
has running mean 0 and variance 1, the activations of a deep MobileNet shrink layer by layer,
and the logits are the classifier's bias alone: the same for every input (their spread over
inputs measured at 5e-7 of their size, one argmax for all), so any file, however wrong, agrees
with the float network and no quantizer can be checked. `condition` gives the network the
statistics a trained one has: each batchnorm's running mean and variance are those of its
input over CONDITION_N synthetic images (one pass in train mode, a cumulative average), so
that every layer passes on a map of unit scale, the folded convolutions have biases as a
trained network's do, and the logits depend on the input (MobileNet v1: 11 different top-1
classes over 64 inputs). The float file and the quantized one of an export are made from the
same conditioned network.

Calibration inputs (`calibration_inputs`): by default synthetic images from a seed, each a
random low-resolution field upsampled to the input's size with a per-channel offset and scale
and a little noise, so that images differ in content as real ones do; else a `.npy` array
(N × C × H × W, float32, as the network takes it) or a folder of images (PNG or JPEG) of the
input's size, scaled to [0, 1] and normalised with ImageNet's mean and standard deviation.
Agreement (`agreement`) is measured on other inputs of the same kind: the share of inputs
whose top-1 class is the same, the mean cosine similarity of the logits, and the same cosine
of the logits less the float network's mean logit over those inputs (`centred`). An untrained
network's logits share a large common part (two different inputs' logits have cosine 0.90 on
MobileNet v1), so the plain cosine cannot tell a right file from a wrong one; the centred
cosine can (another input's logits: 0.02 to 0.23 over the family; int8 files: 0.59 to 0.96),
and a file passes on it (docs/deploy.md, "int8": what was measured, and why this threshold).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..errors import MobilecostError
from .build import SpecNet

# How many inputs calibrate a quantizer and check its file, and the seeds of the synthetic
# ones (the check's inputs are never the calibration's).
CALIBRATION_N = 32
CHECK_N = 64
CONDITION_N = 16
CALIBRATION_SEED = 100
CHECK_SEED = 7
CONDITION_SEED = 3
# A quantized file passes when, against the float network on the check's inputs, the mean
# centred cosine of the logits is at least this (docs/deploy.md, "int8": what was measured,
# and why this).
MIN_CENTRED_COSINE = 0.40
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def condition(model: SpecNet, n: int = CONDITION_N, seed: int = CONDITION_SEED) -> SpecNet:
    """A copy of `model`, in eval mode, whose batchnorms' running statistics are those of their
    inputs over `n` synthetic images from `seed` (see the module's docstring)."""
    out = copy.deepcopy(model)
    for m in out.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: the statistics of all n images
    x = torch.from_numpy(synthetic(n, (out.in_channels, *out.sides), seed))
    with torch.no_grad():
        out.train()(x)
    return out.eval()


def synthetic(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """n float32 images of `shape` (C, H, W) from `seed`: random low-resolution fields (2 to
    28 px square) upsampled bilinearly, a per-channel offset N(0, 0.5) and scale U(0.5, 1.5),
    and noise N(0, 0.1)."""
    import torch.nn.functional as F

    rng = np.random.default_rng(seed)
    c, h, w = shape
    out = np.empty((n, c, h, w), dtype=np.float32)
    for i in range(n):
        r = int(rng.choice([2, 4, 7, 14, 28]))
        low = torch.from_numpy(rng.standard_normal((1, c, r, r), dtype=np.float32))
        up = F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
        up /= up.std() + 1e-6
        off = rng.normal(0, 0.5, (c, 1, 1)).astype(np.float32)
        scale = rng.uniform(0.5, 1.5, (c, 1, 1)).astype(np.float32)
        out[i] = off + scale * up + 0.1 * rng.standard_normal((c, h, w), dtype=np.float32)
    return out


@dataclass(frozen=True)
class Calibration:
    """Where calibration inputs come from: None (synthetic, from `seed`), a `.npy` file or a
    folder of images."""

    source: Path | None = None
    n: int = CALIBRATION_N
    seed: int = CALIBRATION_SEED

    def describe(self) -> str:
        if self.source is None:
            return f"synthetic, {self.n} images, seed {self.seed}"
        return str(self.source)

    def check(self) -> None:
        """Refuse a source that is not there or is no `.npy` or folder (before any work)."""
        if self.source is None:
            return
        p = self.source
        if p.is_dir():
            if not _images(p):
                raise MobilecostError(f"--calibration {p}: no images (PNG or JPEG) in the folder")
        elif not p.is_file():
            raise MobilecostError(f"--calibration {p}: no such file or folder")
        elif p.suffix.lower() != ".npy":
            raise MobilecostError(f"--calibration {p}: give a .npy array or a folder of images")

    def inputs(self, shape: tuple[int, ...]) -> np.ndarray:
        """The calibration inputs, N × C × H × W for an input of `shape` (C, H, W); one line
        naming the file where they do not fit."""
        if self.source is None:
            return synthetic(self.n, shape, self.seed)
        if self.source.is_dir():
            return _read_images(self.source, shape)
        try:
            arr = np.load(self.source, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise MobilecostError(f"--calibration {self.source}: not a .npy array ({exc})") from None
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or tuple(arr.shape[1:]) != tuple(shape):
            raise MobilecostError(f"--calibration {self.source}: inputs of shape "
                                  f"{'×'.join(map(str, arr.shape))}, the network takes "
                                  f"N×{'×'.join(map(str, shape))}")
        if not np.isfinite(arr).all():
            raise MobilecostError(f"--calibration {self.source}: holds NaN or infinite values")
        return arr.astype(np.float32)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_images(folder: Path, shape: tuple[int, ...]) -> np.ndarray:
    from PIL import Image

    c, h, w = shape
    out = []
    for p in _images(folder):
        try:
            with Image.open(p) as im:
                im = im.convert("RGB" if c == 3 else "L")
                if im.size != (w, h):
                    raise MobilecostError(f"--calibration {p}: {im.size[0]}×{im.size[1]} px, the "
                                          f"network takes {w}×{h} (width × height)")
                a = np.asarray(im, dtype=np.float32) / 255.0
        except OSError as exc:
            raise MobilecostError(f"--calibration {p}: not an image ({exc})") from None
        a = a[..., None] if a.ndim == 2 else a
        if c == 3:
            a = (a - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
        out.append(a.transpose(2, 0, 1))
    return np.stack(out).astype(np.float32)


@dataclass(frozen=True)
class Agreement:
    top1: float     # share of inputs whose top-1 class is the float network's
    cosine: float   # mean cosine similarity of the logits
    centred: float  # the same, of the logits less the float network's mean logit
    n: int

    @property
    def passes(self) -> bool:
        return self.centred >= MIN_CENTRED_COSINE

    def describe(self) -> str:
        return (f"top-1 agreement {self.top1:.0%}, cosine {self.cosine:.3f}, centred cosine "
                f"{self.centred:.3f} over {self.n} inputs (at least {MIN_CENTRED_COSINE:g} to "
                f"pass)")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def agreement(model: SpecNet, run: Callable[[np.ndarray], np.ndarray], batch: int,
              n: int = CHECK_N, seed: int = CHECK_SEED) -> Agreement:
    """The quantized file (`run`: an input batch to its logits) against the float network on
    `n` synthetic inputs (a multiple of `batch`) other than the calibration's."""
    xs = synthetic(max(1, n // batch) * batch, (model.in_channels, *model.sides), seed)
    want, got = [], []
    with torch.inference_mode():
        for i in range(0, len(xs), batch):
            x = xs[i:i + batch]
            want.append(model(torch.from_numpy(x)).numpy().reshape(len(x), -1))
            got.append(np.asarray(run(x), dtype=np.float64).reshape(len(x), -1))
    w, g = np.concatenate(want).astype(np.float64), np.concatenate(got)
    if w.shape != g.shape:
        raise MobilecostError(f"the quantized file gives outputs of shape {g.shape[1:]}, the "
                              f"network {w.shape[1:]}")
    mean = w.mean(0)
    return Agreement(float((w.argmax(1) == g.argmax(1)).mean()), float(_cosines(w, g).mean()),
                     float(_cosines(w - mean, g - mean).mean()), len(xs))


def pt2e(model: SpecNet, batch: int, inputs: np.ndarray, quantizer, **convert) -> nn.Module:
    """`model` quantized by torch's PT2E flow with a runtime's `quantizer` (ExecuTorch's
    XNNPACKQuantizer, litert-torch's PT2EQuantizer): batchnorm folded, captured by
    `torch.export` at input shape (batch, C, H, W), `prepare_pt2e`, the observers fed `inputs`
    (N × C × H × W float32) `batch` at a time, then `convert_pt2e(**convert)`. The result is a
    graph module with quantize and dequantize nodes, for the runtime's own lowering."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from .lowering import fold_batchnorm

    if len(inputs) < batch:
        raise MobilecostError(f"{len(inputs)} calibration inputs, fewer than the batch of {batch}")
    folded = fold_batchnorm(model)
    captured = torch.export.export(folded, (folded.example_input(batch),)).module()
    prepared = prepare_pt2e(captured, quantizer)
    with torch.no_grad():
        for i in range(0, len(inputs) // batch * batch, batch):
            prepared(torch.from_numpy(np.ascontiguousarray(inputs[i:i + batch], np.float32)))
    return move_exported_model_to_eval(convert_pt2e(prepared, **convert))


__all__ = ["Agreement", "CALIBRATION_N", "CHECK_N", "Calibration", "MIN_CENTRED_COSINE",
           "agreement", "condition", "pt2e", "synthetic"]
