"""Export a torch module to ONNX for the import tests (torch.onnx.export directly)."""

from __future__ import annotations

import warnings

import torch
from torch import nn


def export_onnx(model, path, resolution, dynamo=False, randomise_bn=True):
    """The model as an ONNX file. Batchnorm gets non-trivial statistics first, as a trained
    network has, so that the exporter folds it into a bias instead of dropping it as an
    identity."""
    if randomise_bn:
        g = torch.Generator().manual_seed(1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.data.copy_(torch.rand(m.num_features, generator=g))
    x = torch.zeros(1, model.in_channels if hasattr(model, "in_channels") else 3,
                    resolution, resolution)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=dynamo)
    return path
