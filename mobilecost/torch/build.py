"""Build an `nn.Module` from a spec at any α and resolution.

Each spec layer becomes one module of `SpecNet.layers`, and that module's `spec_layer`
attribute is the `Layer` record it was built from. `MODULES` maps each layer op of the op
table (`lang.ops`) to the function that makes its module, registered with
`@register_module`: convolution → Conv2d, BatchNorm2d (when the layer has bn) and the
layer's activation (`ACTIVATION_MODULES`: ReLU, ReLU6, Hardswish, Hardsigmoid, Sigmoid, SiLU;
none for MobileNetV2's linear bottlenecks); pooling →
AvgPool2d / MaxPool2d; fc → Flatten + Linear; add → the residual add of the layer input
saved at `skip_from`; scale → squeeze-and-excitation's product of that saved map and the
gate (the pool, the two 1×1 convolutions with bias and the gate are layers of their own);
norm → BatchNorm2d; layerscale → a γ per channel; sdpa → attention's softmax(Q·Kᵀ/√d)·V
with explicit matmuls; tap, take, concat, shuffle → slicing, torch.cat and a reshape.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

import torch
from torch import nn

from ..errors import MobilecostError
from ..lang.load import load_spec
from ..lang.spec import Layer, Spec
from ..lang.values import Resolution, norm_resolution, sides, to_fraction

#: Layer op name -> the function (or class) that makes its module from a concrete Layer.
MODULES: dict[str, Callable[[Layer], nn.Module]] = {}


def register_module(*ops: str) -> Callable:
    """Decorator: register the module maker of layer ops `ops`; a second maker of an op is refused."""
    def deco(make: Callable[[Layer], nn.Module]) -> Callable[[Layer], nn.Module]:
        for op in ops:
            if op in MODULES:
                raise MobilecostError(f"a torch module for op {op!r} is already registered")
        for op in ops:
            MODULES[op] = make
        return make
    return deco


#: Each activation of the op table (`ops.ACTIVATIONS`) as its torch module; `none` has none.
ACTIVATION_MODULES: dict[str, Callable[[], nn.Module] | None] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hswish": lambda: nn.Hardswish(inplace=True),
    "hsigmoid": lambda: nn.Hardsigmoid(inplace=True),
    "sigmoid": nn.Sigmoid,
    "silu": lambda: nn.SiLU(inplace=True),
    "gelu": nn.GELU,
    "none": None,
}


def _activation(act: str) -> nn.Module | None:
    if act not in ACTIVATION_MODULES:
        raise MobilecostError(f"no torch module for activation {act!r}")
    make = ACTIVATION_MODULES[act]
    return None if make is None else make()


def tf_same_padding(layer: Layer) -> tuple[int, int, int, int]:
    """TensorFlow's SAME padding of a layer, (left, right, top, bottom): on each side
    max((⌈h/s⌉ - 1)·s + K - h, 0) in all, the odd one at the end (bottom, right), as timm's
    `pad_same` computes it for its `tf_` ports."""
    def split(h: int) -> tuple[int, int]:
        total = max((-(-h // layer.stride) - 1) * layer.stride + layer.kernel - h, 0)
        return total // 2, total - total // 2

    return (*split(layer.in_width), *split(layer.in_size))


@register_module("conv", "dw", "pw")
class ConvBNAct(nn.Sequential):
    """Convolution, batchnorm, activation: one spec layer (TensorFlow's SAME padding, `tf`,
    as a zero padding before the convolution)."""

    def __init__(self, layer: Layer) -> None:
        mods: list[nn.Module] = []
        if layer.pad == "tf":
            mods.append(nn.ZeroPad2d(tf_same_padding(layer)))
        mods.append(nn.Conv2d(
            layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding,
            groups=layer.groups, bias=layer.bias))
        if layer.bn:
            mods.append(nn.BatchNorm2d(layer.out_channels))
        act = _activation(layer.act)
        if act is not None:
            mods.append(act)
        super().__init__(*mods)
        self.spec_layer = layer


@register_module("fc")
class Classifier(nn.Sequential):
    """Flatten, then the fully connected layer, then its activation if it has one."""

    def __init__(self, layer: Layer) -> None:
        in_features = layer.in_size * layer.in_width * layer.in_channels
        mods: list[nn.Module] = [nn.Flatten(1),
                                 nn.Linear(in_features, layer.out_channels, bias=layer.bias)]
        act = _activation(layer.act)
        if act is not None:
            mods.append(act)
        super().__init__(*mods)
        self.spec_layer = layer


@register_module("add")
class Add(nn.Module):
    """The residual add: the block's output plus the input saved at `spec_layer.skip_from`."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.spec_layer = layer

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return x + skip


@register_module("scale")
class Scale(nn.Module):
    """Squeeze-and-excitation's channel-wise scale: the map saved at `spec_layer.skip_from`
    times the gate (N×C×1×1, broadcast over the map)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.spec_layer = layer

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return skip * x


@register_module("norm")
class Norm(nn.BatchNorm2d):
    """Batchnorm on its own (attention's pre-norm)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__(layer.out_channels)
        self.spec_layer = layer


@register_module("layerscale")
class LayerScale(nn.Module):
    """The map times γ, one per channel (initialised to 1e-5, as MobileNetV4's)."""

    def __init__(self, layer: Layer, init: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((layer.out_channels, 1, 1), init))
        self.spec_layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


@register_module("sdpa")
class Attention(nn.Module):
    """softmax(Q·Kᵀ/√d)·V: the key and the value are the input (concatenated on the
    channels), the query the map saved at `skip_from`; H = groups query heads share each of
    the N = kernel key/value heads. The two products are `torch.matmul`s, which
    FlopCounterMode and fvcore both count (CPU's fused scaled_dot_product_attention is
    counted as nothing by torch 2.13's FlopCounterMode when the heads are equal)."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.heads, self.kv_heads = layer.groups, layer.kernel
        self.dim = layer.out_channels // layer.groups
        self.spec_layer = layer

    def forward(self, x: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        b, _, h, w = query.shape
        n, per, d = self.kv_heads, self.heads // self.kv_heads, self.dim
        q = query.reshape(b, n, per, d, h * w).transpose(-1, -2)  # b, n, per, L_q, d
        k, v = x.reshape(b, 2, n, 1, d, -1).unbind(1)  # each b, n, 1, d, L_kv
        attn = torch.matmul(q * d ** -0.5, k).softmax(-1)  # b, n, per, L_q, L_kv
        out = torch.matmul(attn, v.transpose(-1, -2))  # b, n, per, L_q, d
        return out.transpose(-1, -2).reshape(b, n * per * d, h, w)


@register_module("tap")
class Tap(nn.Module):
    """The map saved at `skip_from` again: its last out_channels channels."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.channels = layer.out_channels
        self.spec_layer = layer

    def forward(self, x: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
        return saved[:, saved.shape[1] - self.channels:]


@register_module("take")
class Take(nn.Module):
    """The first out_channels channels of the map."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.channels = layer.out_channels
        self.spec_layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :self.channels]


@register_module("concat")
class Concat(nn.Module):
    """The map saved at `skip_from` and the current one, concatenated, cut to out_channels."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.channels = layer.out_channels
        self.spec_layer = layer

    def forward(self, x: torch.Tensor, saved: torch.Tensor) -> torch.Tensor:
        out = torch.cat([saved, x], 1)
        return out if out.shape[1] == self.channels else out[:, :self.channels]


@register_module("shuffle")
class Shuffle(nn.Module):
    """ShuffleNet's channel shuffle: G groups of the channels interleaved."""

    def __init__(self, layer: Layer) -> None:
        super().__init__()
        self.groups = layer.groups
        self.spec_layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


def _pool(kind: type[nn.Module]) -> Callable[[Layer], nn.Module]:
    def make(layer: Layer) -> nn.Module:
        """Pooling without padding (a global pool's kernel is the map, height × width)."""
        square = layer.pad != "global" or layer.in_size == layer.in_width
        mod = kind(layer.kernel if square else (layer.in_size, layer.in_width), layer.stride,
                   layer.padding)
        mod.spec_layer = layer
        return mod
    return make


register_module("avgpool")(_pool(nn.AvgPool2d))
register_module("maxpool")(_pool(nn.MaxPool2d))


def layer_module(layer: Layer) -> nn.Module:
    """The module for one concrete layer, by its op's registered maker."""
    make = MODULES.get(layer.op)
    if make is None:
        raise MobilecostError(f"no torch module is registered for op {layer.op!r}")
    return make(layer)


class SpecNet(nn.Module):
    """A network built from a spec: `layers[i]` is spec layer i."""

    def __init__(self, name: str, alpha: Fraction, resolution: Resolution,
                 layers: tuple[Layer, ...]) -> None:
        super().__init__()
        self.name, self.alpha, self.resolution = name, alpha, resolution
        self.sides = sides(resolution)  # (height, width) of the input
        self.spec_layers = layers
        self.in_channels = layers[0].in_channels
        self.layers = nn.ModuleList(layer_module(layer) for layer in layers)
        # which layer inputs a later layer reads (an add, a scale, a tap, a concat, attention),
        # the layer each reads (-1: none), and the last layer that reads each
        self._keep = frozenset(l.skip_from for l in layers if l.skip_from is not None)
        self._skip = tuple(-1 if l.skip_from is None else l.skip_from for l in layers)
        last = {s: i for i, s in enumerate(self._skip) if s >= 0}
        self._last = tuple(last.get(s) == i for i, s in enumerate(self._skip))
        self._ranges = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._ranges:
            return self._forward_ranges(x)
        if not self._keep:
            for m in self.layers:
                x = m(x)
            return x
        saved: dict[int, torch.Tensor] = {}
        for i, m in enumerate(self.layers):
            if i in self._keep:
                saved[i] = x
            skip = self._skip[i]
            x = m(x) if skip < 0 else m(x, saved.pop(skip) if self._last[i] else saved[skip])
        return x

    def _forward_ranges(self, x: torch.Tensor) -> torch.Tensor:
        """The forward pass with one profiler range per layer (see `profile`)."""
        from torch.profiler import record_function

        saved: dict[int, torch.Tensor] = {}
        with record_function("mobilecost.forward"):
            for i, m in enumerate(self.layers):
                if i in self._keep:
                    saved[i] = x
                skip = self._skip[i]
                with record_function(f"mobilecost.layer.{i}"):
                    x = m(x) if skip < 0 else m(x, saved.pop(skip) if self._last[i]
                                                else saved[skip])
        return x

    def example_input(self, batch: int = 1) -> torch.Tensor:
        return torch.randn(batch, self.in_channels, *self.sides)


def build_model(spec: Spec | str, alpha: float | Fraction | str = 1,
                resolution: "Resolution | str | None" = None, seed: int = 0) -> SpecNet:
    """The network of `spec` at width α and input resolution (an int, (height, width) or
    "320x240"; default the spec's base), in eval mode."""
    s = load_spec(spec)
    a = to_fraction(alpha)
    layers = s.build(a, resolution)
    res = s.size if resolution is None else norm_resolution(resolution)
    torch.manual_seed(seed)
    return SpecNet(s.name, a, res, layers).eval()


__all__ = ["ACTIVATION_MODULES", "MODULES", "Add", "Attention", "Classifier", "Concat", "ConvBNAct",
           "LayerScale", "Norm", "Scale", "Shuffle", "SpecNet", "Take", "Tap", "build_model",
           "layer_module", "register_module", "tf_same_padding"]
