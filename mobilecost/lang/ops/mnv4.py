"""MobileNetV4's blocks: the Universal Inverted Bottleneck, the fused one, and attention."""

from __future__ import annotations

from typing import Any, Callable

from ...errors import MobilecostError
from ..kinds import LayerKind
from ..opbase import (
    Builder,
    Grammar,
    LayerDef,
    Op,
    Option,
    positive,
    register,
)
from .basic import expanded_width
from .common import (
    ACT,
    BN,
    CHANNELS,
    EXPAND,
    LAYER_SCALE,
    PAD_SAME,
    STRIDE,
    _odd,
    kernel_or_none,
)

# The Universal Inverted Bottleneck, the fused one, and attention (Qin et al., MobileNetV4,
# arXiv:2404.10518; as timm's `_gen_mobilenet_v4` and tensorflow/models'
# official/vision/modeling/backbones/mobilenet.py build them).


def _project(b: Builder, d: LayerDef, out: Any, expand: Callable[[], None]) -> None:
    """An inverted bottleneck's end, shared by `uib` and `fused`: after `expand`, the linear
    1×1 projection to `out`, `ls=yes` a layer scale, and the residual add around all of it
    when the stride is 1 and the input has `out` channels."""

    def body() -> None:
        expand()
        b.emit("pw", 1, 1, out, act="none", bn=True, line=d.line)
        if d.layer_scale:
            b.emit("layerscale", 1, 1, out, line=d.line)

    if d.stride == 1 and b.channels == out:
        b.residual(body, d.line)
    else:
        body()


@register
class UniversalInvertedBottleneck(Op):
    """`uib CH [sS] [a=K] [k=K] [t=T] [act=ACT] [ls=yes] [pad=same|tf]`: MobileNetV4's
    Universal Inverted Bottleneck. An optional depthwise a×a convolution on the input
    (batchnorm, no activation), a 1×1 expansion to make_divisible(in·T, 8) under
    `rounding multiple 8` (round(in·T) under `rounding int`; always there, even at T = 1),
    an optional depthwise k×k convolution on the expanded map (batchnorm and the activation),
    the linear 1×1 projection to CH, `ls=yes` a layer scale, and a residual add when the stride
    is 1 and the input has CH channels. The stride is on the k×k convolution, or on the a×a one
    where there is no k×k (timm's UniversalInvertedResidual, TensorFlow's UIB with
    middle_dw_downsample). Its four cases: IB (a=0, k>0: MobileNetV2's block), ConvNext-like
    (a>0, k=0), ExtraDW (a>0, k>0) and FFN (a=0, k=0, which cannot stride). Not a layer."""

    name = "uib"
    grammar = Grammar((CHANNELS,), (
        STRIDE,
        Option("a", "start", 0, kernel_or_none("start kernel size")),
        Option("k", "kernel", 1, kernel_or_none("kernel size")),
        EXPAND, ACT, LAYER_SCALE, PAD_SAME,
    ), defaults=(("kernel", 3), ("expand", 4)))

    def check(self, d: LayerDef, written: frozenset[str]) -> tuple[str, str | None] | None:
        if d.stride > 1 and not (d.start or d.kernel):
            return "a uib with no depthwise convolution (a=0 k=0, FFN) cannot stride", "s"
        return _odd(d.pad, ("a", d.start), ("k", d.kernel))

    def build(self, b: Builder, d: LayerDef) -> None:
        out = b.ch(d.channels)
        act = d.act or b.spec.activation
        hidden = expanded_width(b.channels, d.expand, b.spec.rounding)

        def expand() -> None:
            if d.start:
                b.emit("dw", d.start, 1 if d.kernel else d.stride, b.channels, pad=d.pad,
                       groups=b.channels, act="none", bn=True, line=d.line)
            b.emit("pw", 1, 1, hidden, act=act, bn=True, line=d.line)
            if d.kernel:
                b.emit("dw", d.kernel, d.stride, hidden, pad=d.pad, groups=hidden, act=act,
                       bn=True, line=d.line)

        _project(b, d, out, expand)

    def max_layers(self, d: LayerDef) -> int:
        """Start depthwise, expansion, middle depthwise, projection, layer scale, add."""
        return 6


@register
class FusedInvertedBottleneck(Op):
    """`fused CH [sS] [t=T] [k=K] [act=ACT] [ls=yes] [pad=same|tf]`: the fused inverted
    bottleneck (MobileNetV4's FusedIB, EfficientNetV2's Fused-MBConv, timm's EdgeResidual): a
    full K×K convolution with the stride to the hidden width (as `uib`'s, from the input width
    times T; batchnorm and the activation), the linear 1×1 projection to CH, `ls=yes` a layer
    scale, and a residual add when the stride is 1 and the input has CH channels. Not a
    layer."""

    name = "fused"
    grammar = Grammar((CHANNELS,), (
        STRIDE, EXPAND, Option("k", "kernel", 1, positive("kernel size")), ACT, LAYER_SCALE,
        PAD_SAME,
    ), defaults=(("kernel", 3), ("expand", 4)))

    def build(self, b: Builder, d: LayerDef) -> None:
        out = b.ch(d.channels)
        act = d.act or b.spec.activation
        hidden = expanded_width(b.channels, d.expand, b.spec.rounding)

        def expand() -> None:
            b.emit("pw" if d.kernel == 1 else "conv", d.kernel, d.stride, hidden, pad=d.pad,
                   act=act, bn=True, line=d.line)

        _project(b, d, out, expand)

    def max_layers(self, d: LayerDef) -> int:
        return 4


@register
class Attention(Op):
    """`attn CH [heads=H] [d=D] [kv=N] [kvs=S] [k=K] [bn=yes|no] [ls=yes] [pad=same|tf]`:
    self-attention on the map, as MobileNetV4's blocks (timm's MobileAttention with
    MultiQueryAttention2d; TensorFlow's MultiHeadSelfAttentionBlock): batchnorm (`bn=no`: none),
    the query as a 1×1 convolution to H·D channels, the key and the value each as a 1×1
    convolution to N·D channels (N key/value heads: `kv=1` is Mobile MQA, multi-query, whose
    H query heads share one key and value; N = H, the default, plain multi-head attention),
    each after its own depthwise K×K convolution with stride S and batchnorm when S > 1 (the
    key/value downsampling), then softmax(Q·Kᵀ/√D)·V (the layer `sdpa`), the output as a 1×1
    convolution to CH, `ls=yes` a layer scale, and a residual add when the input has CH
    channels. No convolution here has a bias or an activation. H, D and N do not scale with α;
    CH does. Not a layer: it builds the layers named, a `tap` before each of the key and the
    value (they read the map the query reads) and a `concat` of the key and the value."""

    name = "attn"
    grammar = Grammar((CHANNELS,), (
        Option("heads", "heads", 8, positive("heads")),
        Option("d", "head_dim", 64, positive("head dimension")),
        Option("kv", "kv_heads", None, positive("key/value heads")),
        Option("kvs", "kv_stride", 1, positive("key/value stride")),
        Option("k", "kernel", 1, positive("kernel size")),
        BN, LAYER_SCALE, PAD_SAME,
    ), defaults=(("kernel", 3),))

    def default(self, field: str, d: LayerDef) -> Any:
        if field == "kv_heads":  # plain multi-head attention: a key and a value per head
            return d.heads
        return super().default(field, d)

    def check(self, d: LayerDef, written: frozenset[str]) -> tuple[str, str | None] | None:
        if d.heads % d.kv_heads:
            return f"kv={d.kv_heads} key/value heads must divide heads={d.heads}", "kv"
        if "k" in written and d.kv_stride == 1:
            return "k= is the key/value downsampling kernel: it needs kvs= above 1", "k"
        return _odd(d.pad, ("k", d.kernel if d.kv_stride > 1 else 0))

    def build(self, b: Builder, d: LayerDef) -> None:
        out, c = b.ch(d.channels), b.channels
        q, kv = d.heads * d.head_dim, d.kv_heads * d.head_dim

        def body() -> None:
            if d.bn:
                b.emit("norm", 1, 1, c, bn=True, line=d.line)
            reads = len(b.layers)  # this layer's input is the (normed) map
            b.emit("pw", 1, 1, q, line=d.line)  # the query
            query = len(b.layers)  # the key's tap: its input is the query
            joins = []  # each tap's index: the key's input is the query, the value's the key
            for _ in ("key", "value"):
                joins.append(len(b.layers))
                b.emit("tap", 1, 1, c, skip_from=reads, line=d.line)  # the normed map again
                reads = len(b.layers)
                if d.kv_stride > 1:
                    b.emit("dw", d.kernel, d.kv_stride, c, pad=d.pad, groups=c, bn=True,
                           line=d.line)
                b.emit("pw", 1, 1, kv, line=d.line)
            b.emit("concat", 1, 1, 2 * kv, skip_from=joins[1], line=d.line)  # key, value
            b.emit("sdpa", d.kv_heads, 1, q, groups=d.heads, skip_from=query, line=d.line)
            b.emit("pw", 1, 1, out, line=d.line)  # the output projection
            if d.layer_scale:
                b.emit("layerscale", 1, 1, out, line=d.line)

        if c == out:
            b.residual(body, d.line)
        else:
            body()

    def max_layers(self, d: LayerDef) -> int:
        """Norm, query, two taps, two downsampling convolutions, key, value, concat,
        attention, output, layer scale, add."""
        return 13


def _too_large(a_in: Any, a_out: Any) -> None:
    """Refuse a_in · a_out past 64 bits on a grid (numpy would wrap silently)."""
    if hasattr(a_in, "max") and getattr(a_in, "size", 1) and \
            int(a_in.max()) * int(a_out.max()) > (1 << 63) - 1:
        raise MobilecostError("attention's Q·Kᵀ would exceed 64-bit integers on this grid; "
                              "sweep smaller resolutions")


@register
class ScaledDotProductAttention(Op):
    """Attention's core, softmax(Q·Kᵀ/√d)·V, one layer: its input is the key and the value,
    concatenated (N·d channels each on the L_kv positions of their map, area a_in); the query
    (H·d channels, L_q positions) is the map saved at `skip_from`, and the output (H·d
    channels) has the query's shape. It carries the query heads H as its groups and the
    key/value heads N as its kernel (d = out / H). Mult-Adds, as FlopCounterMode counts
    scaled_dot_product_attention and the two matmuls: Q·Kᵀ, H·d·L_q·L_kv, and the weighted sum
    of V, the same: channel factor H·2d = H·in/N, spatial factor a_out·a_in. The softmax is
    H·L_q·L_kv elementwise ops (and the 1/√d scale none: it folds into the query projection).
    No weights. Elements read: the key and the value (the query is read too, H·d·L_q, which the
    product form cannot add)."""

    name, kind, table1 = "sdpa", LayerKind.ATTENTION, "Attention"
    side_from_skip = True

    def macs_channels(self, x: Any) -> Any:
        return x.groups * x.in_channels // x.kernel

    def macs_spatial(self, a_in: Any, a_out: Any) -> Any:
        _too_large(a_in, a_out)
        return a_in * a_out

    def weights_channels(self, x: Any) -> Any:
        return 0 * x.in_channels

    def elementwise_channels(self, x: Any) -> Any:
        return x.groups

    def elementwise_spatial(self, a_in: Any, a_out: Any) -> Any:
        _too_large(a_in, a_out)
        return a_in * a_out

    def describe(self, x: Any) -> str:
        return f"Attention / {x.groups} heads"

    def filter_shape(self, x: Any) -> str:
        d = x.out_channels // x.groups
        return f"{x.groups}×{d} Q, {x.kernel}×{d} K, V"
