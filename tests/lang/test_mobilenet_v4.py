"""MobileNetV4 (Qin et al., arXiv:2404.10518): the five built-in specs against timm's counts
and against a second counter written from timm's block strings.

TIMM below is timm's own count, a counter independent of this engine: timm 1.0.31 from PyPI
(`timm.create_model(name, pretrained=False)`, eval, batch 1) counted with torch 2.13.0+cpu's
FlopCounterMode (Mult-Adds = its FLOPs / 2; convolutions, addmm and the attention's bmm) and
the parameters split by kind (conv and linear weights; biases, only the classifier's 1000;
batchnorm γ and β; layer scale γ). timm's `_gen_mobilenet_v4`, `_efficientnet_blocks.py` and
`layers/attention2d.py` are byte for byte those of huggingface/pytorch-image-models at commit
aa4b5850c1543fa488abf260f18390eda46cf85d. The width variants are the ones timm registers:
mobilenetv4_conv_small_035 and _050, mobilenetv4_hybrid_medium_075, mobilenetv4_hybrid_large_075.

`reference` is a second counter written here from timm's arch strings (copied below) and
its builder's rules: out widths make_divisible(c·α, 8); a block's hidden width
make_divisible(in·e, 8) of its already-rounded input; the stem not scaled below α = 1
(fix_stem); the 960 conv scaled, the 1280 head not; attention's heads and dimension not
scaled. It counts at any α and resolution.
"""

from fractions import Fraction as F

import pytest

import mobilecost
from mobilecost.engine.cost import CONVENTIONS, Counting
from mobilecost.engine.grid import grid_cost
from mobilecost.lang.load import load_spec, with_classes
from mobilecost.lang.parse import parse
from mobilecost.lang.values import make_divisible

SPECS = ("mobilenetv4_conv_small", "mobilenetv4_conv_medium", "mobilenetv4_conv_large",
         "mobilenetv4_hybrid_medium", "mobilenetv4_hybrid_large")

# timm name, our spec, α, resolution: Mult-Adds, conv+linear weights, biases, batchnorm γ β,
# layer scale γ
TIMM = [
    ("mobilenetv4_conv_small", "1", 224, 186_005_568, 3_747_936, 1_000, 25_088, 0),
    ("mobilenetv4_conv_small_035", "0.35", 224, 47_723_040, 1_893_696, 1_000, 10_688, 0),
    ("mobilenetv4_conv_small_050", "0.5", 224, 64_741_408, 2_224_096, 1_000, 13_856, 0),
    ("mobilenetv4_conv_medium", "1", 224, 827_649_984, 9_646_608, 1_000, 67_904, 0),
    ("mobilenetv4_conv_medium", "1", 256, 1_080_244_224, 9_646_608, 1_000, 67_904, 0),
    ("mobilenetv4_conv_large", "1", 224, 2_171_341_312, 32_440_312, 1_000, 149_552, 0),
    ("mobilenetv4_conv_large", "1", 384, 6_376_220_672, 32_440_312, 1_000, 149_552, 0),
    ("mobilenetv4_hybrid_medium", "1", 224, 966_311_360, 10_991_632, 1_000, 75_840, 6_176),
    ("mobilenetv4_hybrid_medium", "1", 256, 1_271_183_360, 10_991_632, 1_000, 75_840, 6_176),
    ("mobilenetv4_hybrid_medium_075", "0.75", 224, 649_844_400, 7_250_048, 1_000, 57_840, 4_640),
    ("mobilenetv4_hybrid_large", "1", 224, 2_549_568_000, 37_586_936, 1_000, 164_400, 12_288),
    ("mobilenetv4_hybrid_large", "1", 384, 7_711_877_120, 37_586_936, 1_000, 164_400, 12_288),
    ("mobilenetv4_hybrid_large_075", "0.75", 224, 1_547_465_600, 22_620_688, 1_000, 124_080, 9_216),
    ("mobilenetv4_hybrid_large_075", "0.75", 256, 2_036_234_240, 22_620_688, 1_000, 124_080, 9_216),
]


def _spec(timm_name: str) -> str:
    return timm_name.removesuffix("_035").removesuffix("_050").removesuffix("_075")


@pytest.mark.parametrize("name,alpha,res,macs,weights,biases,bn,ls", TIMM,
                         ids=[f"{t[0]}-{t[2]}" for t in TIMM])
def test_every_convention_against_timm(name, alpha, res, macs, weights, biases, bn, ls):
    spec = _spec(name)
    count = lambda c: mobilecost.cost(spec, alpha, res, CONVENTIONS[c].counting).params  # noqa: E731
    assert mobilecost.cost(spec, alpha, res).macs == macs
    assert count("paper") == weights  # conv and FC weights
    assert count("torchvision") == weights + biases + bn + ls  # timm's sum(p.numel())
    assert count("keras") == weights + biases + 2 * bn + ls  # and the running statistics
    # tf-slim's: weights with a 1001-way classifier, one more row of 1280
    tf = mobilecost.cost(with_classes(load_spec(spec), 1001), alpha, res)
    assert tf.params == weights + 1280


def test_the_grid_engine_gives_timms_counts_too():
    for spec in SPECS:
        rows = [t for t in TIMM if _spec(t[0]) == spec]
        alphas = sorted({F(t[1]) for t in rows})
        sizes = sorted({t[2] for t in rows})
        g = grid_cost(spec, alphas, sizes)
        for name, alpha, res, macs, weights, *_ in rows:
            i, j = alphas.index(F(alpha)), sizes.index(res)
            assert (int(g.macs[i, j]), int(g.params[i, j])) == (macs, weights), (name, res)


# --------------------------------------------------------------------------- a second counter

STEM = {"conv_small": 32, "conv_medium": 32, "conv_large": 24, "hybrid_medium": 32,
        "hybrid_large": 24}
ARCH = {  # timm 1.0.31, _gen_mobilenet_v4
    "conv_small": [
        ["cn_r1_k3_s2_e1_c32", "cn_r1_k1_s1_e1_c32"],
        ["cn_r1_k3_s2_e1_c96", "cn_r1_k1_s1_e1_c64"],
        ["uir_r1_a5_k5_s2_e3_c96", "uir_r4_a0_k3_s1_e2_c96", "uir_r1_a3_k0_s1_e4_c96"],
        ["uir_r1_a3_k3_s2_e6_c128", "uir_r1_a5_k5_s1_e4_c128", "uir_r1_a0_k5_s1_e4_c128",
         "uir_r1_a0_k5_s1_e3_c128", "uir_r2_a0_k3_s1_e4_c128"],
        ["cn_r1_k1_s1_c960"]],
    "conv_medium": [
        ["er_r1_k3_s2_e4_c48"],
        ["uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"],
        ["uir_r1_a3_k5_s2_e6_c160", "uir_r2_a3_k3_s1_e4_c160", "uir_r1_a3_k5_s1_e4_c160",
         "uir_r1_a3_k3_s1_e4_c160", "uir_r1_a3_k0_s1_e4_c160", "uir_r1_a0_k0_s1_e2_c160",
         "uir_r1_a3_k0_s1_e4_c160"],
        ["uir_r1_a5_k5_s2_e6_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a3_k5_s1_e4_c256",
         "uir_r1_a0_k0_s1_e4_c256", "uir_r1_a3_k0_s1_e4_c256", "uir_r1_a3_k5_s1_e2_c256",
         "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a0_k0_s1_e4_c256", "uir_r1_a5_k0_s1_e2_c256"],
        ["cn_r1_k1_s1_c960"]],
    "conv_large": [
        ["er_r1_k3_s2_e4_c48"],
        ["uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"],
        ["uir_r1_a3_k5_s2_e4_c192", "uir_r3_a3_k3_s1_e4_c192", "uir_r1_a3_k5_s1_e4_c192",
         "uir_r5_a5_k3_s1_e4_c192", "uir_r1_a3_k0_s1_e4_c192"],
        ["uir_r4_a5_k5_s2_e4_c512", "uir_r1_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512",
         "uir_r2_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512", "uir_r1_a5_k5_s1_e4_c512",
         "uir_r3_a5_k0_s1_e4_c512"],
        ["cn_r1_k1_s1_c960"]],
    "hybrid_medium": [
        ["er_r1_k3_s2_e4_c48"],
        ["uir_r1_a3_k5_s2_e4_c80", "uir_r1_a3_k3_s1_e2_c80"],
        ["uir_r1_a3_k5_s2_e6_c160", "uir_r1_a0_k0_s1_e2_c160", "uir_r1_a3_k3_s1_e4_c160",
         "uir_r1_a3_k5_s1_e4_c160", "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k3_s1_e4_c160",
         "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k0_s1_e4_c160", "mqa_r1_k3_h4_s1_v2_d64_c160",
         "uir_r1_a3_k3_s1_e4_c160", "mqa_r1_k3_h4_s1_v2_d64_c160", "uir_r1_a3_k0_s1_e4_c160"],
        ["uir_r1_a5_k5_s2_e6_c256", "uir_r1_a5_k5_s1_e4_c256", "uir_r2_a3_k5_s1_e4_c256",
         "uir_r1_a0_k0_s1_e2_c256", "uir_r1_a3_k5_s1_e2_c256", "uir_r1_a0_k0_s1_e2_c256",
         "uir_r1_a0_k0_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256", "uir_r1_a3_k0_s1_e4_c256",
         "mqa_r1_k3_h4_s1_d64_c256", "uir_r1_a5_k5_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256",
         "uir_r1_a5_k0_s1_e4_c256", "mqa_r1_k3_h4_s1_d64_c256", "uir_r1_a5_k0_s1_e4_c256"],
        ["cn_r1_k1_s1_c960"]],
    "hybrid_large": [
        ["er_r1_k3_s2_e4_c48"],
        ["uir_r1_a3_k5_s2_e4_c96", "uir_r1_a3_k3_s1_e4_c96"],
        ["uir_r1_a3_k5_s2_e4_c192", "uir_r3_a3_k3_s1_e4_c192", "uir_r1_a3_k5_s1_e4_c192",
         "uir_r2_a5_k3_s1_e4_c192", "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a5_k3_s1_e4_c192",
         "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a5_k3_s1_e4_c192", "mqa_r1_k3_h8_s1_v2_d48_c192",
         "uir_r1_a5_k3_s1_e4_c192", "mqa_r1_k3_h8_s1_v2_d48_c192", "uir_r1_a3_k0_s1_e4_c192"],
        ["uir_r4_a5_k5_s2_e4_c512", "uir_r1_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512",
         "uir_r2_a5_k0_s1_e4_c512", "uir_r1_a5_k3_s1_e4_c512", "uir_r1_a5_k5_s1_e4_c512",
         "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512", "mqa_r1_k3_h8_s1_d64_c512",
         "uir_r1_a5_k0_s1_e4_c512", "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512",
         "mqa_r1_k3_h8_s1_d64_c512", "uir_r1_a5_k0_s1_e4_c512"],
        ["cn_r1_k1_s1_c960"]],
}


def _decode(block: str) -> tuple[str, dict[str, int]]:
    kind, *tokens = block.split("_")
    return kind, {t[0]: int(t[1:]) for t in tokens}


def reference(variant: str, alpha, res: int, scaled_stem: bool = False):
    """(Mult-Adds, weights, biases, batchnorm γ β, layer scale γ) of MobileNetV4 `variant`,
    from timm's block strings by timm's rules; `scaled_stem`: the stem scaled too, as
    TensorFlow's block_spec_decoder does."""
    a = F(alpha)
    rnd = lambda c: make_divisible(c * a, 8)  # noqa: E731  (timm's round_channels)
    ls = variant.startswith("hybrid")
    h = -(-res // 2)
    stem = rnd(STEM[variant]) if a >= 1 or scaled_stem else STEM[variant]
    macs, weights, bn, gammas = 27 * stem * h * h, 27 * stem, stem, 0
    c = stem

    def conv(cin, cout, k, side, groups=1):
        nonlocal macs, weights, bn
        macs += k * k * (cin // groups) * cout * side * side
        weights += k * k * (cin // groups) * cout
        bn += cout

    for stage in ARCH[variant]:
        for i, block in enumerate(b for s in stage for b in [s] * _decode(s)[1]["r"]):
            kind, t = _decode(block)
            s = t["s"] if i == 0 else 1  # only a stage's first block strides
            out = rnd(t["c"])
            if kind == "cn":
                h = -(-h // s)
                conv(c, out, t["k"], h)
            elif kind == "er":
                mid = make_divisible(c * t["e"], 8)
                h = -(-h // s)
                conv(c, mid, t["k"], h)
                conv(mid, out, 1, h)
            elif kind == "uir":
                mid = make_divisible(c * t["e"], 8)
                if t["a"]:
                    conv(c, c, t["a"], -(-h // (1 if t["k"] else s)), c)
                conv(c, mid, 1, h if t["a"] == 0 or t["k"] else -(-h // s))
                h = -(-h // s)
                if t["k"]:
                    conv(mid, mid, t["k"], h, mid)
                conv(mid, out, 1, h)
                gammas += out * ls
            else:  # mqa: pre-norm, query, key and value (downsampled), attention, output
                heads, d, kvs = t["h"], t["d"], t.get("v", 1)
                bn += c
                conv(c, heads * d, 1, h)
                bn -= heads * d  # no batchnorm after the projections
                hk = -(-h // kvs)
                for _ in ("key", "value"):
                    if kvs > 1:
                        conv(c, c, t["k"], hk, c)
                    conv(c, d, 1, hk)
                    bn -= d
                macs += 2 * heads * d * (h * h) * (hk * hk)  # Q·Kᵀ and the weighted sum of V
                conv(heads * d, out, 1, h)
                bn -= out
                gammas += out * ls
            c = out
    macs += c * 1280 + 1280 * 1000  # pooled: the 1×1 head and the classifier
    weights += c * 1280 + 1280 * 1000
    return macs, weights, 1000, 2 * (bn + 1280), gammas


@pytest.mark.parametrize("name,alpha,res,macs,weights,biases,bn,ls", TIMM,
                         ids=[f"{t[0]}-{t[2]}" for t in TIMM])
def test_the_second_counter_is_timms(name, alpha, res, macs, weights, biases, bn, ls):
    assert reference(_spec(name).removeprefix("mobilenetv4_"), alpha, res) == \
        (macs, weights, biases, bn, ls)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("alpha", ["0.25", "0.6", "0.75", "1", "1.3", "2"])
@pytest.mark.parametrize("res", [96, 161, 200, 320])
def test_the_engine_equals_the_second_counter_at_any_alpha_and_resolution(spec, alpha, res):
    macs, weights, biases, bn, ls = reference(spec.removeprefix("mobilenetv4_"), alpha, res)
    assert mobilecost.cost(spec, alpha, res).macs == macs
    assert mobilecost.cost(spec, alpha, res).params == weights
    assert mobilecost.cost(spec, alpha, res, Counting(True, True)).params == \
        weights + biases + bn + ls


# --------------------------------------------------------------------------- by hand

def test_a_mobile_mqa_block_by_hand():
    """Hybrid-M's stage-2 attention at 224: C = 160 on 14×14 (L_q = 196), 4 heads of 64, one
    key/value head, key and value downsampled ×2 to 7×7 (L_kv = 49)."""
    spec = load_spec("mobilenetv4_hybrid_medium")
    attn = [d.line for d in spec.body if getattr(d, "op", "") == "attn"]
    costs = mobilecost.cost(spec, 1, 224).layers
    layers = [c for c in costs if c.layer.line == attn[0]]  # the first `attn` statement
    assert [c.layer.op for c in layers] == ["norm", "pw", "tap", "dw", "pw", "tap", "dw", "pw",
                                            "concat", "sdpa", "pw", "layerscale", "add"]
    by_hand = (196 * 160 * 256      # query 1×1, 160 → 256: 8,028,160
               + 2 * 49 * 160 * 9   # key's and value's depthwise 3×3 s2: 70,560 each
               + 2 * 49 * 160 * 64  # key and value 1×1, 160 → 64: 501,760 each
               + 2 * 4 * 64 * 196 * 49  # Q·Kᵀ and the weighted sum: 2,458,624 each
               + 196 * 256 * 160)   # output 1×1, 256 → 160: 8,028,160
    assert sum(c.macs for c in layers) == by_hand == 22_118_208
    sdpa = next(c for c in layers if c.layer.op == "sdpa")
    assert sdpa.macs == 4_917_248 and sdpa.elementwise_ops == 4 * 196 * 49  # the softmax
    # stage 3 (7×7, no downsampling): 3,211,264 + 2·802,816 + 2·614,656 + 3,211,264
    stage3 = [c for c in costs if c.layer.line == attn[4]]
    assert sum(c.macs for c in stage3) == 9_257_472


def test_hidden_widths_come_from_the_rounded_input():
    """timm's hybrid_medium_075, block 2.0: its input make_divisible(80·0.75) = 64 (not 60),
    e6: 384; the fused block's input is the unscaled 32-wide stem: 128."""
    spec = load_spec("mobilenetv4_hybrid_medium")
    layers = spec.build("0.75", 224)
    assert layers[0].out_channels == 32 and layers[1].out_channels == 128
    line = next(d.line for d in spec.body if getattr(d, "op", "") == "uib" and d.expand == 6)
    block = [x for x in layers if x.line == line and x.op == "pw"]  # uib 160 s2 a=3 k=5 t=6
    assert (block[0].in_channels, block[0].out_channels) == (64, 384)


def test_tensorflow_scales_the_stem_below_alpha_1():
    """TensorFlow's block_spec_decoder rounds the stem's filters too; timm keeps 32 (24).
    With the stem written `32` instead of `32+`, the engine gives what timm gives with its
    stem scaled (timm patched to fix_stem=False: conv_small_035 35,078,688 Mult-Adds and
    1,902,616 parameters by sum(p.numel()); hybrid_medium_075 592,543,408 and 7,295,824;
    hybrid_large_075 unchanged, 24·0.75 rounds back to 24)."""
    for spec, alpha, macs, params in [("mobilenetv4_conv_small", "0.35", 35_078_688, 1_902_616),
                                      ("mobilenetv4_conv_small", "0.5", 52_097_056, 2_236_184),
                                      ("mobilenetv4_hybrid_medium", "0.75", 592_543_408, 7_295_824),
                                      ("mobilenetv4_hybrid_large", "0.75", 1_547_465_600,
                                       22_754_984)]:
        text = load_spec(spec).format()
        tf = parse(text.replace("conv 3 32+ s2", "conv 3 32 s2").replace("conv 3 24+ s2",
                                                                          "conv 3 24 s2"))
        c = mobilecost.cost(tf, alpha, 224, Counting(True, True))
        assert (c.macs, c.params) == (macs, params)
        m, w, b, bn, ls = reference(spec.removeprefix("mobilenetv4_"), alpha, 224, scaled_stem=True)
        assert (m, w + b + bn + ls) == (macs, params)


def test_published_accuracy_rows():
    from mobilecost.engine import accuracy

    rows = [p for p in accuracy.published() if p.spec.startswith("mobilenetv4")]
    paper = {p.spec: (p.resolution, p.top1) for p in rows if p.kind == "paper"}
    assert paper == {"mobilenetv4_conv_small": (224, 73.8), "mobilenetv4_conv_medium": (256, 79.9),
                     "mobilenetv4_hybrid_medium": (256, 80.7),
                     "mobilenetv4_conv_large": (384, 82.9),
                     "mobilenetv4_hybrid_large": (384, 83.4)}
    assert all("arXiv:2404.10518" in p.source for p in rows if p.kind == "paper")
    timm = [p for p in rows if p.kind == "checkpoint"]
    assert len(timm) == 11 and all(
        "aa4b5850c1543fa488abf260f18390eda46cf85d" in p.source for p in timm)
    # the checkpoint is shown where both are (timm's mobilenetv4_conv_small.e2400_r224_in1k)
    assert accuracy.lookup(load_spec("mobilenetv4_conv_small"))[F(1), 224].top1 == 73.756
