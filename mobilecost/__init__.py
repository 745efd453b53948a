"""mobilecost: exact cost, sweeps and latency of MobileNet-style networks.

    >>> import mobilecost
    >>> c = mobilecost.cost("mobilenet_v1", alpha=0.75, resolution=192)
    >>> c.macs, c.params
    (239273472, 2568144)
"""

from .engine.cost import Counting, KindTotals, LayerCost, NetworkCost, cost, layer_cost
from .engine.sweep import sweep
from .errors import ConfigError, MobilecostError, SpecError
from .lang.kinds import LayerKind
from .lang.load import builtin_names, load_spec
from .lang.parse import parse
from .lang.spec import Layer, Spec, build, format_spec

__version__ = "0.2.0"

__all__ = ["ConfigError", "Counting", "KindTotals", "Layer", "LayerCost", "LayerKind",
           "MobilecostError", "NetworkCost", "Spec", "SpecError", "build", "builtin_names",
           "cost", "format_spec", "layer_cost", "load_spec", "parse", "sweep"]
