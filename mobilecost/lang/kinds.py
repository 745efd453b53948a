"""What a concrete layer is (`LayerKind`, its facts in `KINDS`: Table 2's rows, the
profiler's time kinds, the latency model's compute groups) and what its activation costs per
element (`ACTIVATIONS`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import MobilecostError

# --------------------------------------------------------------------------- layer kinds

class LayerKind(str, Enum):
    """What a layer is, for cost breakdowns (Table 2's rows); its facts are in `KINDS`."""

    CONV = "conv"            # full (standard) convolution, kernel > 1
    DEPTHWISE = "depthwise"  # depthwise convolution
    POINTWISE = "pointwise"  # 1×1 convolution
    FC = "fc"                # fully connected
    POOL = "pool"            # average or max pooling
    ADD = "add"              # residual addition
    SCALE = "scale"          # channel-wise scale (squeeze-and-excitation's last step, layer scale)
    ATTENTION = "attention"  # attention's two matrix products, QKᵀ and the weighted sum of V
    NORM = "norm"            # batchnorm on its own (attention's pre-norm)
    LAYOUT = "layout"        # channels moved, not computed: re-read, slice, concatenate, shuffle

    @property
    def label(self) -> str:
        """Table 2's name of the kind."""
        return KINDS[self].label

    @property
    def short(self) -> str:
        """A short name for column headers ('DW' in '% DW MACs')."""
        return KINDS[self].short

    @property
    def latency_group(self) -> str:
        """The latency model's compute rate the kind runs at: dense, depthwise or other."""
        return KINDS[self].latency_group

    @property
    def time_kind(self) -> str:
        """The profiler's time kind the kind's time is counted under (one of TIME_KINDS)."""
        return KINDS[self].time_kind

    @property
    def has_macs(self) -> bool:
        """Whether layers of the kind do Mult-Adds (a `macs_share_<kind>` column of a sweep)."""
        return KINDS[self].has_macs


@dataclass(frozen=True, slots=True)
class KindInfo:
    label: str          # Table 2's row label, the profiler's kind label
    short: str          # column headers: "% {short} MACs"
    latency_group: str  # dense | depthwise | other: which compute rate the latency model uses
    time_kind: str      # the profiler's kind: the kind itself, or "other"
    has_macs: bool      # does Mult-Adds


#: The one table of layer kinds. Depthwise convolutions do ~9 Mult-Adds per element read and
#: run far slower per Mult-Add than the GEMM-like dense layers: their own latency group.
KINDS: dict[LayerKind, KindInfo] = {
    LayerKind.CONV: KindInfo("Conv (full)", "Conv", "dense", "conv", True),
    LayerKind.DEPTHWISE: KindInfo("Conv DW", "DW", "depthwise", "depthwise", True),
    LayerKind.POINTWISE: KindInfo("Conv 1×1", "1×1", "dense", "pointwise", True),
    LayerKind.FC: KindInfo("Fully Connected", "FC", "dense", "fc", True),
    LayerKind.POOL: KindInfo("Pool", "Pool", "other", "other", False),
    LayerKind.ADD: KindInfo("Add", "Add", "other", "other", False),
    LayerKind.SCALE: KindInfo("Scale (SE, layer scale)", "Scale", "other", "other", False),
    # attention's time counts as the profiler's "other": its time kinds are the paper's four
    LayerKind.ATTENTION: KindInfo("Attention (QKᵀ, AV)", "Attn", "dense", "other", True),
    LayerKind.NORM: KindInfo("Batchnorm", "BN", "other", "other", False),
    LayerKind.LAYOUT: KindInfo("Concat, slice, shuffle", "Layout", "other", "other", False),
}

#: The profiler's time kinds, in report order: each kind with Mult-Adds, then everything else.
TIME_KINDS: tuple[str, ...] = tuple(dict.fromkeys(
    [i.time_kind for i in KINDS.values() if i.time_kind != "other"] + ["other"]))
TIME_KIND_LABELS: dict[str, str] = {
    **{i.time_kind: i.label for i in KINDS.values() if i.time_kind != "other"},
    "other": "Other (pool, add, scale, glue)",
}
#: Kinds with Mult-Adds, in LayerKind order.
MAC_KINDS: tuple[LayerKind, ...] = tuple(k for k in LayerKind if KINDS[k].has_macs)


# --------------------------------------------------------------------------- activations

#: The activations a layer may end with, and the elementwise ops each costs per output element.
#: Every activation counts one: whatever its arithmetic (hard-swish is x·ReLU6(x + 3)/6, a few
#: operations; sigmoid an exponential and a division), it reads and writes each element once
#: and runs fused or memory-bound on the hardware these networks target, so the count of
#: elements it touches is the comparable figure; the arithmetic inside differs by library and
#: instruction set. `none` (a linear layer, MobileNetV2's projections) costs nothing. `gelu` is
#: the exact (erf) GELU, torch's and timm's default (MobileNetV4 Hybrid-L).
ACTIVATIONS: dict[str, int] = {
    "relu": 1, "relu6": 1, "hswish": 1, "hsigmoid": 1, "sigmoid": 1, "silu": 1, "gelu": 1,
    "none": 0,
}


def act_ops(act: str) -> int:
    """Elementwise ops per output element of activation `act` (a name of `ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[act]
    except KeyError:
        raise MobilecostError(f"unknown activation {act!r}; known: {', '.join(ACTIVATIONS)}") from None
