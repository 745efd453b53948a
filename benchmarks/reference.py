"""A plain numpy reference for the grid engine: the same numbers, written apart from it.

Nothing here comes from mobilecost: each network is a Python list of its layers, written from
its paper and the README's counting conventions, and this file computes every column of the
grid engine (Mult-Adds, Mult-Adds by kind, parameters (weights), elementwise ops, activations
and the peak of one layer's input + output) for an α × resolution grid with numpy, exactly:

* channels: each α as an integer numerator over one common denominator D, so that int(α·c)
  is (n·c) // D and the nearest-multiple-of-8 rule is integer arithmetic on arrays over α;
* map sides: one int array over the resolutions, ⌈h / s⌉ a stride (SAME padding);
* sums: each layer adds its per-α factor to its stage (the map size it writes), and each
  stage is one outer product with the stage's area at the end;
* the peak: the layers that keep their map size give (in + out)(α) × area, so a stage takes
  the per-α maximum of those first (one outer product); a layer that changes the map size
  (a stride, a pool, squeeze-and-excitation's scale) is its own [α, resolution] product.

Adding a network is one layer list in NETWORKS, written with conv, dw, pw, se, pool and fc,
and block(...) for any residual block (its channels given as Expand(t) of the block's input
where they are; ir is one such block), e.g. MobileNetV4's universal inverted bottleneck with
an extra depthwise at its start: block(dw(3), pw(Expand(4)), dw(5, 2), pw(80, act=False)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

# --------------------------------------------------------------------------- channel counts

@dataclass(frozen=True)
class Fixed:
    """A channel count that does not scale with α (the classifier's 1000)."""
    n: int


@dataclass(frozen=True)
class AtLeast:
    """A channel count that scales with α but never below n (MobileNetV2's 1280)."""
    n: int


@dataclass(frozen=True)
class Expand:
    """t times the channels entering the enclosing block, rounded by the network's rule (an
    inverted residual's expansion)."""
    t: Fraction


# --------------------------------------------------------------------------- layers

def conv(k, c, s=1, act=True):
    return ("conv", k, c, s, act)


def dw(k, s=1, act=True):
    return ("dw", k, s, act)


def pw(c, act=True):
    return ("pw", c, act)


def se(ratio):
    """Squeeze-and-excitation: pool, 1×1 with bias to make_divisible(c / ratio, 8), 1×1 back,
    gate, channel-wise scale."""
    return ("se", ratio)


def block(*layers):
    """The layers, then an add of the block's input where the block keeps the map and, at
    that α, the channels."""
    return ("block", layers)


def ir(c, s=1, t=6, k=3, se_ratio=0):
    """Inverted residual: 1×1 expansion to t·in (none when t = 1), depthwise k×k, optional
    squeeze-and-excitation, linear 1×1 to c, as one block."""
    t = Fraction(t)
    return block(*([pw(Expand(t))] if t != 1 else []), dw(k, s),
                 *([se(se_ratio)] if se_ratio else []), pw(c, act=False))


def uib(c, s=1, a=0, k=3, t=4):
    """MobileNetV4's universal inverted bottleneck: an optional a×a depthwise at the start
    (batchnorm, no activation; it takes the stride when there is no k×k), the 1×1 expansion to
    t·in, an optional k×k depthwise (the stride), the linear 1×1 to c."""
    return block(*([dw(a, 1 if k else s, act=False)] if a else []), pw(Expand(Fraction(t))),
                 *([dw(k, s)] if k else []), pw(c, act=False))


def fused(c, s=1, t=4):
    """MobileNetV4's fused inverted bottleneck: a full 3×3 convolution to t·in with the
    stride, the linear 1×1 to c."""
    return block(conv(3, Expand(Fraction(t)), s), pw(c, act=False))


def pool():
    return ("pool",)


def fc(c, act=False):
    return ("fc", c, act)


V1 = [conv(3, 32, 2), dw(3), pw(64), dw(3, 2), pw(128), dw(3), pw(128), dw(3, 2), pw(256),
      dw(3), pw(256), dw(3, 2), pw(512)] + [dw(3), pw(512)] * 5 + [
      dw(3, 2), pw(1024), dw(3), pw(1024), pool(), fc(Fixed(1000))]

V2 = [conv(3, 32, 2), ir(16, t=1), ir(24, 2), ir(24), ir(32, 2), ir(32), ir(32),
      ir(64, 2), ir(64), ir(64), ir(64), ir(96), ir(96), ir(96), ir(160, 2), ir(160), ir(160),
      ir(320), pw(AtLeast(1280)), pool(), fc(Fixed(1000))]

V3_LARGE = [conv(3, 16, 2), ir(16, t=1), ir(24, 2, t=4), ir(24, t=3),
            ir(40, 2, t=3, k=5, se_ratio=4), ir(40, t=3, k=5, se_ratio=4),
            ir(40, t=3, k=5, se_ratio=4), ir(80, 2), ir(80, t=Fraction(5, 2)),
            ir(80, t=Fraction(23, 10)), ir(80, t=Fraction(23, 10)), ir(112, se_ratio=4),
            ir(112, se_ratio=4), ir(160, 2, k=5, se_ratio=4), ir(160, k=5, se_ratio=4),
            ir(160, k=5, se_ratio=4),
            pw(960), pool(), fc(AtLeast(1280), act=True), fc(Fixed(1000))]

MNASNET_B1 = [conv(3, 32, 2), dw(3), pw(16, act=False),
              ir(24, 2, t=3), ir(24, t=3), ir(24, t=3),
              ir(40, 2, t=3, k=5), ir(40, t=3, k=5), ir(40, t=3, k=5),
              ir(80, 2, k=5), ir(80, k=5), ir(80, k=5), ir(96), ir(96),
              ir(192, 2, k=5), ir(192, k=5), ir(192, k=5), ir(192, k=5), ir(320),
              pw(Fixed(1280)), pool(), fc(Fixed(1000))]

# MobileNetV4-Conv-M (Qin et al. 2024, appendix table; tensorflow/models' mobilenet.py
# _mnv4_conv_medium_block_specs): the stem keeps 32 channels below α = 1, the 1280 head and
# the classifier do not scale.
MNV4_CONV_M = [conv(3, AtLeast(32), 2), fused(48, 2),
               uib(80, 2, a=3, k=5), uib(80, a=3, t=2),
               uib(160, 2, a=3, k=5, t=6), uib(160, a=3), uib(160, a=3), uib(160, a=3, k=5),
               uib(160, a=3), uib(160, a=3, k=0), uib(160, k=0, t=2), uib(160, a=3, k=0),
               uib(256, 2, a=5, k=5, t=6), uib(256, a=5, k=5), uib(256, a=3, k=5),
               uib(256, a=3, k=5), uib(256, k=0), uib(256, a=3, k=0), uib(256, a=3, k=5, t=2),
               uib(256, a=5, k=5), uib(256, k=0), uib(256, k=0), uib(256, a=5, k=0, t=2),
               pw(960), pool(), pw(Fixed(1280)), fc(Fixed(1000))]

#: name -> (rounding, layers): "int" is int(α·c), at least 1; "multiple" the nearest
#: multiple of 8, never more than 10% down. Every network takes a 3-channel image.
NETWORKS = {
    "mobilenet_v1": ("int", V1),
    "mobilenet_v2": ("multiple", V2),
    "mobilenet_v3_large": ("multiple", V3_LARGE),
    "mnasnet_b1": ("multiple", MNASNET_B1),
    "mobilenetv4_conv_medium": ("multiple", MNV4_CONV_M),
}

KINDS = ("conv", "depthwise", "pointwise", "fc")


# --------------------------------------------------------------------------- the computation

def _nearest_multiple(num, den, d=8):
    """The multiple of d nearest num / den (halves up), at least d, at most 10% below it."""
    out = np.maximum((2 * num + d * den) // (2 * den) // d * d, d)
    return out + d * (10 * den * out < 9 * num)


class Grid:
    """One network over α × resolutions (square), accumulated layer by layer."""

    def __init__(self, rounding: str, alphas, resolutions) -> None:
        fr = [Fraction(a) for a in alphas]
        self.den = math.lcm(*(a.denominator for a in fr))
        self.num = np.array([a.numerator * (self.den // a.denominator) for a in fr], np.int64)
        self.rounding = rounding
        self.side = np.asarray(resolutions, np.int64)
        self.stage = 0  # the map the last layer wrote: an index into self.areas
        self.areas = [self.side * self.side, np.ones_like(self.side)]  # the image; 1×1 maps
        self.sums = {}  # (quantity, stage) -> [α]
        self.params = np.zeros(len(fr), np.int64)
        self.same_map = {}  # stage -> [α] max of in + out over the layers that keep the map
        self.changing = []  # [(factor [α], stage), ...] of each layer that changes the map
        self.c = np.full(len(fr), 3, np.int64)  # the image's channels
        self.block_in = []  # channels entering each enclosing block
        self.add("act", 3 * np.ones_like(self.num), 0)

    def scale(self, c):
        if isinstance(c, Fixed):
            return np.full_like(self.num, c.n)
        if isinstance(c, Expand):  # t · the block's input, by the network's rounding
            v, d = self.block_in[-1] * c.t.numerator, c.t.denominator
            if self.rounding == "multiple":
                return _nearest_multiple(v, d)
            q, r = v // d, v % d  # round(v / d), halves to even
            return q + ((2 * r > d) | ((2 * r == d) & (q % 2 == 1)))
        num = np.maximum(self.num, self.den) if isinstance(c, AtLeast) else self.num
        n = c.n if isinstance(c, AtLeast) else c
        if self.rounding == "int":
            return np.maximum(n * num // self.den, 1)
        return _nearest_multiple(n * num, self.den)

    def add(self, quantity, f, stage):
        key = (quantity, stage)
        self.sums[key] = self.sums[key] + f if key in self.sums else f

    def new_stage(self, stride):
        if stride == 1:
            return self.stage
        self.side = -(-self.side // stride)
        self.areas.append(self.side * self.side)
        return len(self.areas) - 1

    def live(self, terms):
        """A layer's input + output elements: [(factor, stage), ...]."""
        stages = {s for _, s in terms}
        if len(stages) == 1:
            (s,) = stages
            f = sum(f for f, _ in terms)
            self.same_map[s] = np.maximum(self.same_map[s], f) if s in self.same_map else f
        else:
            self.changing.append(terms)

    def conv(self, kind, k, stride, out, act, depthwise=False):
        cin, s_in = self.c, self.stage
        s_out = self.new_stage(stride)
        self.weights(kind, k * k * (1 if depthwise else cin) * out, s_out, cin, s_in, out, s_out, act)

    def weights(self, kind, w, s_macs, cin, s_in, out, s_out, act):
        """A layer of w weights: w Mult-Adds per element of stage s_macs, `out` channels
        written on stage s_out (activated or not) from `cin` read on s_in."""
        self.add(kind, w, s_macs)
        self.params += w
        if act:
            self.add("elem", out, s_out)
        self.add("act", out, s_out)
        self.live([(cin, s_in), (out, s_out)])
        self.c, self.stage = out, s_out

    def pool(self):
        """A global average pool: to a 1×1 map (stage 1)."""
        s_in = self.stage
        self.add("act", self.c, 1)
        self.live([(self.c, s_in), (self.c, 1)])
        self.stage = 1

    def se(self, ratio):
        """Pool, 1×1 with bias to make_divisible(c / r), ReLU, 1×1 with bias back, gate, scale."""
        c, s_map = self.c, self.stage
        self.pool()
        self.conv("pointwise", 1, 1, _nearest_multiple(c, ratio), True)
        self.conv("pointwise", 1, 1, c, True)
        s_gate = self.stage
        self.add("elem", c, s_map)  # the scale: one multiply per element of the map
        self.add("act", c, s_map)
        self.live([(c, s_gate), (2 * c, s_map)])  # reads the gate and the map, writes the map
        self.c, self.stage = c, s_map

    def block(self, layers):
        cin, s_in = self.c, self.stage
        self.block_in.append(cin)
        self.run(layers)
        self.block_in.pop()
        if self.stage == s_in:  # an add where the block keeps its channels: masked per α
            keep = (cin == self.c) * self.c
            self.add("elem", keep, s_in)
            self.add("act", keep, s_in)
            self.live([(3 * keep, s_in)])  # reads two maps, writes one

    def fc(self, c, act):
        cin, s_in = self.c, self.stage
        out = self.scale(c)
        s_out = 1
        if s_in != 1:
            raise ValueError("the reference's fc layers follow a global pool")
        # M·N Mult-Adds times the input's area, 1 after a global pool
        self.weights("fc", cin * out, s_in, cin, s_in, out, s_out, act)

    def run(self, layers):
        for layer in layers:
            op, args = layer[0], layer[1:]
            if op == "conv":
                k, c, s, act = args
                self.conv("conv" if k > 1 else "pointwise", k, s, self.scale(c), act)
            elif op == "dw":
                k, s, act = args
                self.conv("depthwise", k, s, self.c, act, depthwise=True)
            elif op == "pw":
                c, act = args
                self.conv("pointwise", 1, 1, self.scale(c), act)
            elif op == "block":
                self.block(*args)
            elif op == "se":
                self.se(*args)
            elif op == "pool":
                self.pool()
            elif op == "fc":
                self.fc(*args)
            else:
                raise ValueError(f"unknown layer {op!r}")
        return self

    def outer(self, quantity):
        out = np.zeros((len(self.num), len(self.areas[0])), np.int64)
        for (q, s), f in self.sums.items():
            if q == quantity:
                out += np.multiply.outer(f, self.areas[s])
        return out

    def result(self) -> dict[str, np.ndarray]:
        kinds = {k: self.outer(k) for k in KINDS}
        macs = sum(kinds.values())
        peak = np.zeros_like(macs)
        for s, f in self.same_map.items():
            np.maximum(peak, np.multiply.outer(f, self.areas[s]), out=peak)
        for terms in self.changing:
            live = sum(np.multiply.outer(f, self.areas[s]) for f, s in terms)
            np.maximum(peak, live, out=peak)
        return {"macs": macs, "params": np.repeat(self.params[:, None], macs.shape[1], axis=1),
                **{f"macs_{k}": v for k, v in kinds.items()},
                "elementwise_ops": self.outer("elem"), "activation_elems": self.outer("act"),
                "peak_activation_elems": peak}


def reference(name: str, alphas, resolutions) -> dict[str, np.ndarray]:
    """Every column of the grid engine for network `name` (a key of NETWORKS), [α, res]."""
    rounding, layers = NETWORKS[name]
    return Grid(rounding, alphas, resolutions).run(layers).result()
