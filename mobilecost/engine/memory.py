"""Bytes at a dtype over a grid: what a file stores of every configuration's weights.

A layer's stored bytes (`LayerCost.stored_weight_bytes`) are the dtype's rule
(`dtypes.DType.stored_weight_bytes`) applied to three counts: its weights, the output channels
of its weight tensor (a quantized file's per-channel scales) and its biases (its own and those
batchnorm folds into its convolution). All three are sums of the grid engine's per-layer
factors (`grid._structures`): weights as channel × spatial factors (a matrix product over the
resolutions), the two channel counts per α alone; the rule is linear in them, so it applies to
the sums. Exact integers, as every other column of a sweep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from ..dtypes import lookup as lookup_dtype
from ..lang.load import load_spec
from ..lang.spec import Spec
from ..lang.values import norm_resolution, sides, to_fraction
from .grid import _maps, _structures

if TYPE_CHECKING:
    import numpy as np


def grid_weight_bytes(spec: Spec | str, alphas: Iterable, resolutions: Iterable,
                      dtype: str) -> "np.ndarray":
    """[α, resolution] int64: bytes a file stores of each configuration's weights and biases
    at `dtype`, as `NetworkCost.weight_bytes` gives them one configuration at a time. The grid
    is the one `grid_cost` checked (its bounds are not checked again here)."""
    import numpy as np

    d = lookup_dtype(dtype)
    s = load_spec(spec)
    alist = tuple(to_fraction(a) for a in alphas)
    rlist = tuple(norm_resolution(r) for r in resolutions)
    res_h = np.array([sides(r)[0] for r in rlist], dtype=np.int64)
    res_w = np.array([sides(r)[1] for r in rlist], dtype=np.int64)
    out = np.empty((len(alist), len(rlist)), dtype=np.int64)
    for st in _structures(s, alist, (int(res_h.max()), int(res_w.max()))):
        _, (_, spatial_w, _, _) = _maps(s, alist, st, res_h, res_w)
        weights = st.weights_f @ spatial_w                                  # [α, R]
        scales = np.where(st.weights_f > 0, st.out_c, 0).sum(axis=1)       # [α]
        biases = st.bias_f.sum(axis=1) + (st.bn_f // 2).sum(axis=1)        # [α]: γ, β a channel
        out[st.rows] = d.stored_weight_bytes(weights, scales[:, None], biases[:, None])
    return out


__all__ = ["grid_weight_bytes"]
