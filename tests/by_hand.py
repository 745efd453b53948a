"""Figures worked out in the tests from the papers' architecture tables and equations, never
from the engine: each layer's Mult-Adds are K·K·(M/g)·N·D_F² (equations 2 and 4 of Howard et al.;
g = M for a depthwise layer), its weights K·K·(M/g)·N, a fully connected layer's M·N."""

from fractions import Fraction

# MobileNet v1, Table 1 (α = 1, 224×224), row by row: (kernel K, input channels M, output
# channels N, groups g, output side D_F). The second-to-last depthwise layer has stride 1
# (../shared/reference/mobilenet_v1.md: every public implementation; its output is 7×7).
V1_TABLE1 = [
    (3, 3, 32, 1, 112),          # Conv / s2, 224 -> 112
    (3, 32, 32, 32, 112),        # Conv dw / s1
    (1, 32, 64, 1, 112),
    (3, 64, 64, 64, 56),         # Conv dw / s2
    (1, 64, 128, 1, 56),
    (3, 128, 128, 128, 56),
    (1, 128, 128, 1, 56),
    (3, 128, 128, 128, 28),      # Conv dw / s2
    (1, 128, 256, 1, 28),
    (3, 256, 256, 256, 28),
    (1, 256, 256, 1, 28),
    (3, 256, 256, 256, 14),      # Conv dw / s2
    (1, 256, 512, 1, 14),
] + [(3, 512, 512, 512, 14), (1, 512, 512, 1, 14)] * 5 + [
    (3, 512, 512, 512, 7),       # Conv dw / s2
    (1, 512, 1024, 1, 7),
    (3, 1024, 1024, 1024, 7),    # Conv dw (stride 1, see above)
    (1, 1024, 1024, 1, 7),
]
V1_FC = (1024, 1000)  # after the 7×7 average pool; the 1000 classes do not scale with α


def v1_macs(alpha=1, resolution=224) -> int:
    """MobileNet v1's Mult-Adds where α·c is whole for every channel count and the resolution
    is a multiple of 32 (every map is then exactly resolution/224 of its size at 224)."""
    a, rho = Fraction(alpha), Fraction(resolution, 224)
    total = Fraction(0)
    for k, m, n, g, d in V1_TABLE1:
        m_, n_ = (Fraction(m) if m == 3 else a * m), a * n  # the 3 input channels are fixed
        g_ = 1 if g == 1 else m_
        total += k * k * (m_ / g_) * n_ * (rho * d) ** 2
    total += a * V1_FC[0] * V1_FC[1]
    assert total.denominator == 1, "outside the exact (α, resolution) lattice"
    return int(total)


def v1_params(alpha=1) -> int:
    """MobileNet v1's convolution and FC weights (no biases, no batchnorm)."""
    a = Fraction(alpha)
    total = Fraction(0)
    for k, m, n, g, _ in V1_TABLE1:
        m_, n_ = (Fraction(m) if m == 3 else a * m), a * n
        total += k * k * (m_ / (1 if g == 1 else m_)) * n_
    total += a * V1_FC[0] * V1_FC[1]
    assert total.denominator == 1
    return int(total)


def v1_conv_channels(alpha=1) -> list[int]:
    """Output channels of every convolution (batchnorm follows each: 2 parameters per channel)."""
    return [int(Fraction(alpha) * n) for _, _, n, _, _ in V1_TABLE1]


# MobileNetV2 (Sandler et al. 2018, Table 2), 224×224: conv 3×3 s2 to 32; bottlenecks
# (expansion t, output channels c, repeats n, stride s of the first); conv 1×1 to 1280; pool; FC.
V2_BOTTLENECKS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                  (6, 160, 3, 2), (6, 320, 1, 1)]


def v2_macs() -> int:
    """MobileNetV2 1.0-224: each bottleneck is a 1×1 expansion to t·M (none when t = 1, as in
    torchvision), a 3×3 depthwise with the block's stride, and a linear 1×1 projection."""
    side, cin = 112, 32
    total = 3 * 3 * 3 * 32 * side * side
    for t, c, n, s in V2_BOTTLENECKS:
        for i in range(n):
            out = side // (s if i == 0 else 1)
            hidden = cin * t
            if t != 1:
                total += cin * hidden * side * side
            total += 3 * 3 * hidden * out * out
            total += hidden * c * out * out
            side, cin = out, c
    total += 320 * 1280 * side * side + 1280 * 1000
    return total


# MobileNetV3 (Howard et al. 2019), Tables 1 and 2: each bneck row as (kernel, exp size, out,
# SE, stride) at α = 1 and 224×224. The expansion factor is exp / in (TF-slim's and Keras's
# form), so at another α the hidden width is in·(exp/in) rounded to a multiple of 8.
V3_LARGE = [(3, 16, 16, False, 1), (3, 64, 24, False, 2), (3, 72, 24, False, 1),
            (5, 72, 40, True, 2), (5, 120, 40, True, 1), (5, 120, 40, True, 1),
            (3, 240, 80, False, 2), (3, 200, 80, False, 1), (3, 184, 80, False, 1),
            (3, 184, 80, False, 1), (3, 480, 112, True, 1), (3, 672, 112, True, 1),
            (5, 672, 160, True, 2), (5, 960, 160, True, 1), (5, 960, 160, True, 1)]
V3_SMALL = [(3, 16, 16, True, 2), (3, 72, 24, False, 2), (3, 88, 24, False, 1),
            (5, 96, 40, True, 2), (5, 240, 40, True, 1), (5, 240, 40, True, 1),
            (5, 120, 48, True, 1), (5, 144, 48, True, 1), (5, 288, 96, True, 2),
            (5, 576, 96, True, 1), (5, 576, 96, True, 1)]


def make_divisible_by_hand(v, d=8) -> int:
    """TF-slim's _make_divisible: the nearest multiple of d (halves up), at least d, and
    not more than 10% below v."""
    v = Fraction(v)
    new = max(d, int(v + Fraction(d, 2)) // d * d)
    return new + d if new < Fraction(9, 10) * v else new


def v3_counts(rows, last_conv, head, classes, alpha=1, minimalistic=False):
    """(Mult-Adds, weights, biases, batchnorm γ+β) of a MobileNetV3 at 224×224, α ≤ 1: conv
    3×3 s2 to 16; per bneck a 1×1 expansion (none when exp = in), the depthwise K×K, SE on the
    expanded map (global pool, 1×1 with bias to make_divisible(exp/4), 1×1 with bias back),
    the linear projection; a 1×1 conv to `last_conv`; pool; a `head`-wide layer with bias and
    no batchnorm (never narrower than `head`); the classifier with bias. Minimalistic: 3×3
    kernels and no SE."""
    a, md = Fraction(alpha), make_divisible_by_hand
    side, cin, base = 112, md(16 * a), 16
    macs, w, bias, bn = 3 * 3 * 3 * cin * side * side, 27 * cin, 0, 2 * cin
    for k, exp, out, se, s in rows:
        if minimalistic:
            k, se = 3, False
        hidden, cout, o = md(cin * Fraction(exp, base)), md(out * a), side // s
        if hidden != cin:
            macs, w, bn = macs + cin * hidden * side * side, w + cin * hidden, bn + 2 * hidden
        macs, w, bn = macs + k * k * hidden * o * o, w + k * k * hidden, bn + 2 * hidden
        if se:
            sq = md(Fraction(hidden, 4))
            macs, w, bias = macs + 2 * hidden * sq, w + 2 * hidden * sq, bias + sq + hidden
        macs, w, bn = macs + hidden * cout * o * o, w + hidden * cout, bn + 2 * cout
        side, cin, base = o, cout, out
    lc = md(last_conv * a)
    macs, w, bn = macs + cin * lc * side * side, w + cin * lc, bn + 2 * lc
    macs += lc * head + head * classes
    w += lc * head + head * classes
    bias += head + classes
    return macs, w, bias, bn


# MnasNet-B1 as torchvision builds it: stacks (out, kernel, stride of the first, expansion,
# repeats) after conv 3×3 s2 to 32, a depthwise 3×3 and a linear 1×1 to 16.
MNASNET_STACKS = [(24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2),
                  (192, 5, 2, 6, 4), (320, 3, 1, 6, 1)]


def mnasnet_counts(alpha=1):
    """(Mult-Adds, weights, batchnorm γ+β, FC bias) of MnasNet-B1 at 224×224: every block is a
    1×1 expansion to in·t, the depthwise, a 1×1 projection, each batchnormed; then 1×1 to 1280
    (fixed), pool, FC to 1000."""
    a, md = Fraction(alpha), make_divisible_by_hand
    side, c = 112, md(32 * a)
    macs, w, bn = 27 * c * side * side, 27 * c, 2 * c
    macs, w, bn = macs + 9 * c * side * side, w + 9 * c, bn + 2 * c  # depthwise
    c16 = md(16 * a)
    macs, w, bn = macs + c * c16 * side * side, w + c * c16, bn + 2 * c16
    c = c16
    for out, k, s, t, n in MNASNET_STACKS:
        for i in range(n):
            o, cout, hidden = side // (s if i == 0 else 1), md(out * a), c * t
            macs += c * hidden * side * side + k * k * hidden * o * o + hidden * cout * o * o
            w += c * hidden + k * k * hidden + hidden * cout
            bn += 2 * (hidden + hidden + cout)
            side, c = o, cout
    macs, w, bn = macs + c * 1280 * side * side, w + c * 1280, bn + 2 * 1280
    return macs + 1280 * 1000, w + 1280 * 1000, bn, 1000
