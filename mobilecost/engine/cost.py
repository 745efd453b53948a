"""The analytic cost engine: Mult-Adds and parameters per layer, as exact integers.

Counting conventions (stated here once; the README repeats them):

* **Mult-Adds** (`macs`) are multiply-accumulates, as in the paper. One FLOP count is
  2 × Mult-Adds (torch's FlopCounterMode reports FLOPs; fvcore reports Mult-Adds).
* Only convolutions, fully connected layers and attention's two matrix products have
  Mult-Adds. Pooling, residual adds, batchnorm, activations, softmax, layer scale and the
  layers that only move channels (tap, take, concat, shuffle) are not Mult-Adds and count 0,
  as in the paper's tables.
* Attention (`attn`) is its projections (1×1 convolutions, and depthwise ones where the key
  and value are downsampled) and softmax(QKᵀ/√d)·V, counted as FlopCounterMode counts
  scaled_dot_product_attention and matmuls: Q·Kᵀ H·d·L_q·L_kv and the weighted sum of V the
  same, for H query heads of dimension d, L_q query positions and L_kv key/value positions,
  whatever the number of key/value heads. The softmax is H·L_q·L_kv elementwise ops.
* A convolution with kernel K, input channels M, output channels N, groups g, producing a
  D_F×D_F output map costs K·K·(M/g)·N·D_F·D_F. That single formula is the paper's
  equation (2) for a full convolution (g = 1), (4) for a depthwise one (g = M = N) and the
  1×1 term of (5) for a pointwise one; with α and ρ already applied to M, N and D_F by the spec
  builder it is equations (6) and (7). A fully connected layer costs M·N.
* **Parameters** (`params`) count convolution and FC weights. Two switches add the rest:
  `biases` (every bias: the FC layer's N, and the c/r-and-c of each squeeze-and-excitation's
  two 1×1 convolutions; and layer scale's γ, one per channel, the other parameter outside the
  weights and batchnorm) and `batchnorm` (γ and β per channel of each batchnormed
  convolution; running statistics are buffers, not parameters, in torch); `bn_stats` adds the
  running mean and variance as Keras's count_params() does (non-trainable weights there).
  The named sets of these are the `CONVENTIONS` (paper, tf-slim, torchvision, keras): each
  output says which is in force. The paper's 4.2M for
  MobileNet 1.0 holds for every setting; Table 2's parameter shares are reproduced best by
  the default (weights only) — see `mobilecost table2`.
* Squeeze-and-excitation (`se R`, `ir ... se=R`) is a global average pool, a 1×1
  convolution with bias to s = make_divisible(c/R, 8) channels (MobileNetV3's and MnasNet's
  rule), its activation, a 1×1 convolution with bias back to c, the gate and a channel-wise
  scale. Its two convolutions are Mult-Adds like any convolution on a 1×1 map: c·s + s·c,
  whatever the resolution; their c·s + s·c weights are parameters, their s + c biases too
  when biases are counted.
* **Elementwise ops** (`elementwise_ops`) are a quantity of their own, never added to
  Mult-Adds: one op per output element of each activation (relu, relu6, hswish, hsigmoid,
  sigmoid, silu; `none` counts 0), one per element of a residual add and of
  squeeze-and-excitation's scale (c·H² for a c×H×H map; its gate counts c, its inner
  activation s). Every activation counts
  one, whatever its arithmetic inside (hard-swish is x·ReLU6(x + 3)/6, sigmoid an exponential
  and a division): each reads and writes every element once and runs fused or bound by memory
  on the targets of these networks, so the elements touched are the comparable figure, while
  the arithmetic inside differs by library and instruction set. Batchnorm folds into the
  convolution at inference and counts nothing; pooling is a reduction, in neither count.
* Memory traffic per layer is counted in elements (multiply by the dtype's bytes): the input
  activations read, the output activations written, and the weights read.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

from ..dtypes import lookup as lookup_dtype
from ..lang.load import load_spec
from ..lang.ops import OPS, conv_macs, conv_params, fc_macs
from ..lang.spec import Layer, LayerKind, Spec, build
from ..lang.values import Resolution, norm_resolution, to_fraction


@dataclass(frozen=True, slots=True)
class Counting:
    """Which parameters count. The default counts conv and FC weights only."""

    biases: bool = False  # every bias: the FC's, squeeze-and-excitation's; layer scale's γ
    batchnorm: bool = False  # batchnorm's γ and β
    bn_stats: bool = False  # batchnorm's running mean and variance (Keras counts them)

    @property
    def says(self) -> str:
        """What counts, in words."""
        parts = ["conv and FC weights"]
        if self.biases:
            parts.append("biases")
        if self.batchnorm or self.bn_stats:
            parts.append("batchnorm " + ", ".join(
                ["γ, β"] * self.batchnorm + ["moving mean and variance"] * self.bn_stats))
        return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


@dataclass(frozen=True, slots=True)
class Convention:
    """A published way of counting parameters: which parameters, and how many classes."""

    name: str
    counting: Counting
    classes: int | None  # None: the spec's own (1000 for every built-in)
    source: str

    def describe(self, classes: int | None = None) -> str:
        """One line for an output: the convention, what it counts and the classes."""
        n = classes if classes is not None else self.classes
        cls = f"{n} classes" if n is not None else "the spec's classes"
        return f"parameters by the {self.name} convention ({self.source}): {self.counting.says}; {cls}"


#: The conventions of the published parameter counts. The paper's tables and TF-slim's count
#: weights (TF-slim's checkpoints have 1,001 classes, a background class first); torchvision's
#: sum(p.numel()) adds biases and batchnorm's γ and β; Keras's count_params() adds batchnorm's
#: moving mean and variance too (MobileNet 4,253,864, MobileNetV2 3,538,984 in its tables).
CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("paper", Counting(), None, "the paper's tables"),
    Convention("tf-slim", Counting(), 1001, "TF-slim's checkpoints"),
    Convention("torchvision", Counting(True, True), None, "torchvision's sum(p.numel())"),
    Convention("keras", Counting(True, True, True), None, "Keras's count_params()"),
)}


def convention_line(counting: Counting, classes: int | None = None) -> str:
    """The line an output gives about its parameter count: the convention's name where the
    counting is one (the classes as given), else what counts."""
    same = [c for c in CONVENTIONS.values() if c.counting == counting]
    for c in ([c for c in same if c.classes == classes and classes is not None]
              + [c for c in same if c.classes is None]):
        return c.describe(classes)
    cls = f"; {classes} classes" if classes is not None else ""
    return f"parameters: {counting.says}{cls}"


# --------------------------------------------------------------------------- pure formulas
# conv_macs, conv_params and fc_macs live with the op table (lang.ops), whose cost rules
# use them; they are re-exported here.


@dataclass(frozen=True, slots=True)
class LayerCost:
    """Cost of one concrete layer."""

    layer: Layer
    macs: int
    weight_params: int
    bias_params: int
    bn_params: int
    params: int  # what counts under the Counting in force
    input_elems: int
    output_elems: int
    elementwise_ops: int = 0  # activation, residual add, channel-wise scale: not Mult-Adds

    @property
    def kind(self) -> LayerKind:
        return self.layer.kind

    @property
    def weight_elems(self) -> int:
        """Weights read at inference (batchnorm folded into the convolution)."""
        return self.weight_params + self.bias_params

    @property
    def elems_moved(self) -> int:
        return self.input_elems + self.output_elems + self.weight_elems

    def map_bytes(self, batch: int, width: int) -> int:
        """Bytes of the maps in and out for every image of a batch, `width` bytes an element."""
        return (self.input_elems + self.output_elems) * batch * width

    def weight_bytes(self, width: int) -> int:
        """Bytes of the weights and biases, read once a pass whatever the batch."""
        return self.weight_elems * width

    def bytes_moved(self, batch: int, width: int) -> int:
        """Bytes moved at a batch, `width` bytes an element: the maps in and out for every
        image, the weights once."""
        return self.map_bytes(batch, width) + self.weight_bytes(width)

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: Mult-Adds per element moved."""
        return self.macs / self.elems_moved if self.elems_moved else 0.0

    @property
    def scale_channels(self) -> int:
        """Output channels of the layer's weight tensor (a quantized file stores a scale and a
        zero point for each); 0 for a layer without weights."""
        return self.layer.out_channels if self.weight_params else 0

    @property
    def bias_channels(self) -> int:
        """Biases at inference: the layer's own, and one a channel where batchnorm folds into
        the convolution (γ and β are two a channel)."""
        return self.bias_params + self.bn_params // 2

    def stored_weight_bytes(self, dtype: str) -> int:
        """Bytes a file stores of the layer's weights and biases at `dtype` (batchnorm folded;
        int8 with its per-channel scales and zero points: `dtypes.DType.stored_weight_bytes`)."""
        return lookup_dtype(dtype).stored_weight_bytes(self.weight_params, self.scale_channels,
                                                       self.bias_channels)

    def activation_bytes(self, dtype: str) -> int:
        """Bytes of the maps the layer reads and writes at `dtype`, one image."""
        return (self.input_elems + self.output_elems) * lookup_dtype(dtype).bytes

    def intensity_at(self, dtype: str) -> float:
        """Mult-Adds per byte moved at `dtype`: the maps read and written, the weights read."""
        moved = self.activation_bytes(dtype) + self.stored_weight_bytes(dtype)
        return self.macs / moved if moved else 0.0


def layer_cost(layer: Layer, counting: Counting = Counting()) -> LayerCost:
    """The cost of one layer, by its op's cost rules (`lang.ops`)."""
    rule = OPS[layer.op]
    weights, bias, bn = rule.weights(layer), rule.bias_params(layer), rule.bn_params(layer)
    params = (weights + (bias if counting.biases else 0) + (bn if counting.batchnorm else 0)
              + (bn if counting.bn_stats else 0))  # the statistics: as many as γ and β
    return LayerCost(layer, rule.macs(layer), weights, bias, bn, params, rule.input_elems(layer),
                     rule.output_elems(layer), rule.elementwise_ops(layer))


# --------------------------------------------------------------------------- network totals

@dataclass(frozen=True, slots=True)
class KindTotals:
    kind: LayerKind
    layers: int
    macs: int
    params: int
    macs_share: float
    params_share: float


@dataclass(frozen=True)
class NetworkCost:
    """Cost of a spec built at one (α, resolution)."""

    spec: str
    alpha: Fraction
    resolution: Resolution  # an int (square), or (height, width)
    layers: tuple[LayerCost, ...]
    counting: Counting = Counting()

    @cached_property
    def macs(self) -> int:
        return sum(c.macs for c in self.layers)

    @cached_property
    def params(self) -> int:
        return sum(c.params for c in self.layers)

    @cached_property
    def elementwise_ops(self) -> int:
        """Activations, residual adds and channel-wise scales: one op per element each."""
        return sum(c.elementwise_ops for c in self.layers)

    @property
    def flops(self) -> int:
        """FLOPs = 2 × Mult-Adds."""
        return 2 * self.macs

    @cached_property
    def activation_elems(self) -> int:
        """Sum of every layer's output activations (the input image included)."""
        first = self.layers[0].input_elems if self.layers else 0
        return first + sum(c.output_elems for c in self.layers)

    @cached_property
    def peak_activation_elems(self) -> int:
        """Largest input + output pair of any one layer (what must be live at once)."""
        return max((c.input_elems + c.output_elems for c in self.layers), default=0)

    def weight_bytes(self, dtype: str) -> int:
        """Bytes the network's weights take in a file at `dtype` (`LayerCost.stored_weight_bytes`)."""
        return sum(c.stored_weight_bytes(dtype) for c in self.layers)

    def activation_bytes(self, dtype: str) -> int:
        """Bytes of every layer's maps read and written at `dtype`, one image."""
        return sum(c.activation_bytes(dtype) for c in self.layers)

    def by_kind(self) -> dict[LayerKind, KindTotals]:
        """Totals and shares per layer kind, in LayerKind order, kinds present only."""
        out: dict[LayerKind, KindTotals] = {}
        total_m, total_p = self.macs or 1, self.params or 1
        for kind in LayerKind:
            rows = [c for c in self.layers if c.kind is kind]
            if rows:
                m, p = sum(c.macs for c in rows), sum(c.params for c in rows)
                out[kind] = KindTotals(kind, len(rows), m, p, m / total_m, p / total_p)
        return out


def cost(spec: Spec | str, alpha: float | Fraction | str = 1,
         resolution: "Resolution | str | None" = None,
         counting: Counting = Counting()) -> NetworkCost:
    """Cost a spec (a Spec, a built-in name or a path) at width α and input resolution (an int
    for a square input, (height, width) or "320x240" for any other; default the spec's base).

    α follows `spec.to_fraction`: a string, int or Fraction is exact; a float is read as its
    nearest 12-significant-digit decimal, so `cost(spec, 0.7 - 0.2)` is `cost(spec, "0.5")`.
    """
    s = load_spec(spec)
    a = to_fraction(alpha)
    layers = build(s, a, resolution)
    res = s.size if resolution is None else norm_resolution(resolution)
    return NetworkCost(s.name, a, res, tuple(layer_cost(layer, counting) for layer in layers), counting)


__all__ = ["CONVENTIONS", "Convention", "convention_line", "Counting", "KindTotals", "LayerCost", "NetworkCost", "conv_macs", "conv_params", "cost",
           "fc_macs", "layer_cost"]
