"""Cross-check the engine against two independent counters on a built network.

* torch's `FlopCounterMode` reports FLOPs = 2 × Mult-Adds for `aten.convolution` and the
  matrix products of linear layers (`aten.addmm`, `aten.mm`) and of attention (`aten.bmm`,
  what `torch.matmul` runs); it counts nothing else here.
* fvcore's `FlopCountAnalysis` reports Mult-Adds ("one fused multiply-add as one flop") per
  module and operator. Besides `conv`, `linear` and `matmul` it counts `batch_norm` (one per element
  in eval mode) and adaptive pooling, and names what it could not count (`unsupported_ops`).
* Parameters: the engine's weights-only count must equal the `numel()` of every Conv2d and
  Linear weight, and the engine's count with FC bias and batchnorm γ, β must equal
  `sum(p.numel() for p in model.parameters())`.

Counts are taken per spec layer: module `layers.i` of `SpecNet` is spec layer i.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import nn

from ..engine.cost import Counting, layer_cost
from ..lang.spec import LayerKind, Spec
from ..lang.values import Resolution
from .build import SpecNet, build_model

# fvcore's names for the operators that are Mult-Adds: convolutions, linear layers, and the
# matrix products of attention (`sdpa`: Q·Kᵀ and the weighted sum, torch.matmul)
MAC_OPS_FVCORE = ("conv", "linear", "matmul", "bmm")


@dataclass(frozen=True, slots=True)
class LayerCount:
    """One spec layer counted four ways."""

    index: int
    kind: LayerKind
    op: str
    engine_macs: int
    flop_counter_macs: int  # FlopCounterMode FLOPs / 2
    fvcore_macs: int  # fvcore conv + linear
    fvcore_other: dict[str, int]  # what else fvcore counted in this layer, by operator
    engine_params: int  # weights only (the engine's default)
    engine_params_all: int  # weights + FC bias + batchnorm γ, β
    torch_weight_params: int  # numel of Conv2d/Linear weights
    torch_params: int  # numel of every parameter

    @property
    def macs_agree(self) -> bool:
        return self.engine_macs == self.flop_counter_macs == self.fvcore_macs

    @property
    def params_agree(self) -> bool:
        return (self.engine_params == self.torch_weight_params
                and self.engine_params_all == self.torch_params)


@dataclass(frozen=True)
class CrossCheck:
    """Every layer of one configuration counted by the engine, FlopCounterMode and fvcore."""

    spec: str
    alpha: Fraction
    resolution: "Resolution"
    layers: tuple[LayerCount, ...]
    flop_counter_total_flops: int
    fvcore_total: int
    fvcore_unsupported: dict[str, int]

    @property
    def macs_agree(self) -> bool:
        return all(c.macs_agree for c in self.layers)

    @property
    def params_agree(self) -> bool:
        return all(c.params_agree for c in self.layers)


def flop_counter_macs(model: SpecNet, x: torch.Tensor) -> tuple[dict[int, int], int]:
    """Mult-Adds per spec layer by FlopCounterMode (its FLOPs halved), and its total FLOPs."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    prefix = f"{type(model).__name__}.layers."
    out: dict[int, int] = {}
    for name, ops in counter.get_flop_counts().items():
        tail = name[len(prefix):] if name.startswith(prefix) else ""
        if tail.isdigit():
            flops = sum(ops.values())
            if flops % 2:
                raise ValueError(f"FlopCounterMode gave an odd FLOP count {flops} for {name}")
            out[int(tail)] = flops // 2
    return out, int(counter.get_total_flops())


def fvcore_counts(model: SpecNet, x: torch.Tensor) -> tuple[dict[int, Counter], int, dict[str, int]]:
    """fvcore's count per spec layer and operator, its total and its unsupported operators."""
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    analysis = FlopCountAnalysis(model, x)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    per_module = analysis.by_module_and_operator()
    out: dict[int, Counter] = {}
    for name, ops in per_module.items():
        parts = name.split(".")
        if len(parts) == 2 and parts[0] == "layers" and parts[1].isdigit():
            out[int(parts[1])] = Counter(ops)
    return out, int(analysis.total()), dict(analysis.unsupported_ops())


def _torch_params(module: nn.Module) -> tuple[int, int]:
    weights = sum(m.weight.numel() for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    return weights, sum(p.numel() for p in module.parameters())


def cross_check(spec: Spec | str, alpha: float | Fraction | str = 1,
                resolution: int | None = None) -> CrossCheck:
    """Build the network at (α, resolution) and count every layer four ways (batch 1)."""
    model = build_model(spec, alpha, resolution)
    x = model.example_input(1)
    fc, fc_total = flop_counter_macs(model, x)
    fv, fv_total, unsupported = fvcore_counts(model, x)
    rows = []
    for layer, mod in zip(model.spec_layers, model.layers):
        weights_only = layer_cost(layer)
        everything = layer_cost(layer, Counting(biases=True, batchnorm=True))
        ops = fv.get(layer.index, Counter())
        tw, tp = _torch_params(mod)
        rows.append(LayerCount(
            index=layer.index, kind=layer.kind, op=layer.op, engine_macs=weights_only.macs,
            flop_counter_macs=fc.get(layer.index, 0),
            fvcore_macs=int(sum(ops.get(k, 0) for k in MAC_OPS_FVCORE)),
            fvcore_other={k: int(v) for k, v in ops.items() if k not in MAC_OPS_FVCORE and v},
            engine_params=weights_only.params, engine_params_all=everything.params,
            torch_weight_params=tw, torch_params=tp))
    return CrossCheck(model.name, model.alpha, model.resolution, tuple(rows), fc_total,
                      fv_total, unsupported)
__all__ = ["cross_check", "CrossCheck", "flop_counter_macs", "fvcore_counts", "LayerCount"]
