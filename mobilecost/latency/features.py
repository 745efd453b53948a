"""What the latency models read of a configuration, from the cost engine: each layer's
Mult-Adds, bytes moved and compute group (`network_features`, the whole-network model's), and
the layers of several configurations as flat arrays (`layers_of`, the roofline model's)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Sequence

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


def network_features(config: Config, dtype: str = "float32") -> NetworkFeatures:
    """Mult-Adds, bytes moved and compute group of each layer of a configuration."""
    return _network_features(config, dtype)  # one cache key, with or without the default


#: Configurations whose features are kept: a calibration set's leave-one-out reads each of its
#: points once per refit, so the cache must hold the whole set or it misses every time.
FEATURE_CACHE = 8192


@lru_cache(maxsize=FEATURE_CACHE)
def _network_features(config: Config, dtype: str) -> NetworkFeatures:
    import numpy as np

    width = lookup_dtype(dtype).bytes
    net = cost(config.network.spec(), config.alpha, config.resolution)
    b = config.batch
    group = np.array([group_index(c.kind) for c in net.layers])
    macs = np.array([float(c.macs * b) for c in net.layers])
    moved = np.array([float(c.bytes_moved(b, width)) for c in net.layers])
    return NetworkFeatures(config, group, macs, moved, net.macs * b)


@dataclass(frozen=True)
class Layers:
    """Per-layer features of several configurations, flat (`config` says whose layer)."""

    config: "np.ndarray"   # index of the configuration each layer belongs to
    group: "np.ndarray"    # COMPUTE_GROUPS index, -1 without Mult-Adds
    macs: "np.ndarray"
    bytes: "np.ndarray"
    unfused: "np.ndarray"  # bytes batchnorm and activations move as kernels of their own
    work: "np.ndarray"     # batch × output elements
    n: int


@lru_cache(maxsize=FEATURE_CACHE)
def _layer_arrays(config: Config, dtype: str) -> tuple:
    import numpy as np

    width = lookup_dtype(dtype).bytes
    b = config.batch
    net = cost(config.network.spec(), config.alpha, config.resolution)
    group = np.array([group_index(c.kind) for c in net.layers])
    macs = np.array([float(c.macs * b) for c in net.layers])
    moved = np.array([float(c.bytes_moved(b, width)) for c in net.layers])
    unfused = np.array([float(2 * width * b * (c.output_elems * c.layer.bn + c.elementwise_ops))
                        if c.macs else 0.0 for c in net.layers])
    work = np.array([float(b * c.output_elems) for c in net.layers])
    return group, macs, moved, unfused, work


def layers_of(configs: Sequence[Config], dtype: str) -> Layers:
    """The layers of `configs` as flat arrays (the roofline model's features)."""
    import numpy as np

    parts = [_layer_arrays(c, dtype) for c in configs]
    which = np.concatenate([np.full(len(p[0]), i) for i, p in enumerate(parts)])
    return Layers(which, *(np.concatenate([p[k] for p in parts]) for k in range(5)), len(configs))


def clear_caches() -> None:
    """Forget every configuration's features (a benchmark's cold start)."""
    _network_features.cache_clear()
    _layer_arrays.cache_clear()
