"""What the whole-network model reads of a configuration: each layer's Mult-Adds, bytes
moved and compute group (`network_features`, from the cost engine)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ..dtypes import lookup as lookup_dtype
from ..engine.cost import cost
from ..lang.spec import LayerKind
from .measurements import Config

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


# Bytes per element by the dtype's full name (derived from the one dtype table).

# Which kinds share a compute rate: the kind table's latency group (lang.kinds.KINDS).
GROUPS: dict[LayerKind, str] = {k: k.latency_group for k in LayerKind}
COMPUTE_GROUPS: tuple[str, ...] = ("dense", "depthwise")


def group_index(kind: LayerKind) -> int:
    """Index into COMPUTE_GROUPS of a layer kind's compute rate, -1 for kinds without Mult-Adds."""
    g = GROUPS[kind]
    return COMPUTE_GROUPS.index(g) if g in COMPUTE_GROUPS else -1


@dataclass(frozen=True)
class NetworkFeatures:
    """Per-layer features of one configuration (numpy arrays, one entry per layer)."""

    config: Config
    group: "np.ndarray"   # index into COMPUTE_GROUPS, or -1 for layers without Mult-Adds
    macs: "np.ndarray"
    bytes: "np.ndarray"
    total_macs: int

    @property
    def layers(self) -> int:
        return len(self.macs)


@lru_cache(maxsize=512)
def network_features(config: Config, dtype: str = "float32") -> NetworkFeatures:
    """Mult-Adds, bytes moved and compute group of each layer of a configuration."""
    import numpy as np

    width = lookup_dtype(dtype).bytes
    net = cost(config.network.spec(), config.alpha, config.resolution)
    b = config.batch
    group = np.array([group_index(c.kind) for c in net.layers])
    macs = np.array([float(c.macs * b) for c in net.layers])
    moved = np.array([float(c.bytes_moved(b, width)) for c in net.layers])
    return NetworkFeatures(config, group, macs, moved, net.macs * b)
