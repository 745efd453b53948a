"""Which configurations to measure on a new accelerator so that the roofline model
(`latency.roofline`) is determined, and how its prediction interval narrows with each.

The roofline is not linear in its parameters, so the design is local: at a prior device
(`PRIOR`, or the user's) each configuration's log-latency has a sensitivity to each
parameter's log, J_ij = ∂ ln T_i / ∂ ln θ_j (peak, depthwise share, bandwidth, per-layer
cost, W½; by central differences). Measurements with a relative noise σ determine the
parameters to a covariance σ² (JᵀJ)⁻¹ (Gauss–Newton), and a prediction x to a relative
standard error σ·√(j_xᵀ (JᵀJ)⁻¹ j_x). The configurations are chosen greedily, each the one
that most increases det JᵀJ (D-optimal), and after each the report gives the widest 90%
half-width, 1.645 σ √(max_x j_xᵀ (JᵀJ)⁻¹ j_x), over every candidate: infinite until the
chosen ones determine all five parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..errors import MobilecostError
from .features import layers_of
from .measurements import Config

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: A prior accelerator (a phone GPU or NPU at batch 1, fp16): 1 TMAC/s, depthwise at 10% of
#: it, 30 GB/s, 10 µs a layer, half the peak at 10⁴ outputs, fused batchnorm.
PRIOR = {"peak": 1e12, "depthwise_efficiency": 0.1, "bandwidth": 3e10, "overhead": 1e-5,
         "fill_half": 1e4}
NOISE = 0.03   # relative noise of one measurement (a phone's run to run spread)
#: A dense k×k convolution counts as one the device must be seen running when each output
#: sums over at least this many input channels (a 3-channel stem does not: it is memory-bound).
DENSE_MIN_INPUTS = 8
Z90 = 1.6449   # two-sided 90%
KEYS = ("peak", "depthwise_efficiency", "bandwidth", "overhead", "fill_half")


@dataclass(frozen=True)
class Step:
    config: Config
    half_width: float  # widest 90% relative half-width over the candidates after this step


def _times(L, p: dict) -> "np.ndarray":
    import numpy as np

    u = L.work / (L.work + p["fill_half"])
    share = np.where(L.group == 1, p["depthwise_efficiency"], 1.0)
    compute = np.where(L.macs > 0, L.macs / (p["peak"] * share * np.maximum(u, 1e-300)), 0.0)
    t = np.maximum(compute, L.bytes / p["bandwidth"]) + p["overhead"]
    return np.bincount(L.config, t, minlength=L.n)


def sensitivities(configs: Sequence[Config], dtype: str, prior: dict | None = None) -> "np.ndarray":
    """J [configs × 5]: ∂ ln T / ∂ ln θ at the prior, by central differences (step 1%)."""
    import numpy as np

    p = dict(PRIOR if prior is None else prior)
    L = layers_of(list(configs), dtype)
    cols = []
    for k in KEYS:
        up, down = dict(p), dict(p)
        up[k], down[k] = p[k] * 1.01, p[k] / 1.01
        cols.append((np.log(_times(L, up)) - np.log(_times(L, down))) / (2 * math.log(1.01)))
    return np.stack(cols, axis=1)


def widest(j: "np.ndarray", info: "np.ndarray", noise: float) -> float:
    """1.645 σ √(max_x j_xᵀ M⁻¹ j_x): infinite where M does not determine every parameter."""
    import numpy as np

    sv = np.linalg.svd(info, compute_uv=False)
    if sv[-1] <= 1e-10 * sv[0]:
        return math.inf
    var = np.einsum("ij,jk,ik->i", j, np.linalg.inv(info), j)
    return float(Z90 * noise * math.sqrt(max(float(var.max()), 0.0)))


def suggest_roofline(configs: Sequence[Config], n: int, dtype: str = "float16",
                     prior: dict | None = None, noise: float = NOISE) -> list[Step]:
    """The n of `configs` to measure, D-optimal on the roofline's sensitivities at `prior`,
    each with the widest 90% interval of every candidate's prediction once it is measured."""
    import numpy as np

    configs = list(dict.fromkeys(configs))
    if n > len(configs):
        raise MobilecostError(f"cannot suggest {n} configurations from a grid of {len(configs)}")
    j = sensitivities(configs, dtype, prior)
    if not np.all(np.isfinite(j)):
        raise MobilecostError("the roofline's sensitivities are not finite on this grid")
    ridge = 1e-9 * np.eye(j.shape[1])
    info = ridge.copy()
    chosen: list[int] = []
    steps = []
    for _ in range(n):
        gain = 1 + np.einsum("ij,jk,ik->i", j, np.linalg.inv(info), j)
        gain[chosen] = -np.inf
        k = int(np.argmax(gain))
        chosen.append(k)
        info = info + np.outer(j[k], j[k])
        steps.append(Step(configs[k], widest(j, info - ridge, noise)))
    return steps


def has_dense_convolutions(config: Config) -> bool:
    """Whether a configuration has a dense k×k convolution (groups of one, kernel above 1)
    over at least DENSE_MIN_INPUTS input channels: what a roofline fitted without one cannot
    price (MobileNet v1 and v2 have none but their stem; docs/latency.md)."""
    from ..engine.cost import cost
    from ..lang.kinds import LayerKind

    net = cost(config.network.spec(), config.alpha, config.resolution)
    return any(c.kind is LayerKind.CONV and c.layer.groups == 1 and c.layer.kernel > 1
               and c.layer.in_channels >= DENSE_MIN_INPUTS for c in net.layers)


__all__ = ["DENSE_MIN_INPUTS", "KEYS", "NOISE", "PRIOR", "Step", "has_dense_convolutions",
           "sensitivities", "suggest_roofline", "widest"]
