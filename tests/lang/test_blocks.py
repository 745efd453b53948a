"""The statements of MobileNetV4 and of the other mobile networks, each in a small network:
counted by hand (the arithmetic written out), by torch's FlopCounterMode on the module the
spec builds, and against a module written here the way the reference implementations write
it (timm's UniversalInvertedResidual, MultiQueryAttention2d, MixedConv2d, GhostModule,
channel_shuffle, Conv2dSame), with the same weights: the same output."""

from fractions import Fraction as F

import pytest

import mobilecost
from mobilecost.engine.cost import Counting
from mobilecost.engine.grid import grid_cost
from mobilecost.errors import ConfigError, MobilecostError, SpecError
from mobilecost.lang.parse import parse

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as Fn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from mobilecost.torch.build import build_model, tf_same_padding  # noqa: E402


def net(body: str, res: int = 16, channels: str = "8!", rounding: str = "multiple 8") -> str:
    return f"name t\ninput {res} {channels}\nrounding {rounding}\nactivation relu\n{body}\n"


def flop_counter_macs(model) -> int:
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(model.example_input(1))
    return counter.get_total_flops() // 2


def ops(text: str, alpha=1, res=None) -> list[tuple[str, int, int]]:
    return [(x.op, x.out_size, x.out_channels) for x in parse(text).build(alpha, res)]


# --------------------------------------------------------------------------- uib and fused

@pytest.mark.parametrize("case,statement,layers,macs", [
    # 8 channels on 16×16, t=4: hidden 32; start depthwise a×a (no activation), expand,
    # middle depthwise k×k (the stride), project; the add when the shape stays
    ("IB", "uib 8 k=3", ["pw", "dw", "pw", "add"],
     8 * 32 * 256 + 9 * 32 * 256 + 32 * 8 * 256),
    ("ConvNext-like", "uib 8 a=5 k=0", ["dw", "pw", "pw", "add"],
     25 * 8 * 256 + 8 * 32 * 256 + 32 * 8 * 256),
    ("ExtraDW", "uib 16 s2 a=3 k=5", ["dw", "pw", "dw", "pw"],
     9 * 8 * 256 + 8 * 32 * 256 + 25 * 32 * 64 + 32 * 16 * 64),
    ("ConvNext-like, stride on the start", "uib 16 s2 a=3 k=0", ["dw", "pw", "pw"],
     9 * 8 * 64 + 8 * 32 * 64 + 32 * 16 * 64),
    ("FFN", "uib 8 k=0 t=2", ["pw", "pw", "add"], 8 * 16 * 256 + 16 * 8 * 256),
])
def test_uib_cases_by_hand_and_by_flop_counter(case, statement, layers, macs):
    spec = parse(net(statement))
    assert [x.op for x in spec.build()] == layers, case
    assert mobilecost.cost(spec).macs == macs
    assert flop_counter_macs(build_model(spec)) == macs


def test_uib_activations_batchnorm_and_layer_scale():
    spec = parse(net("uib 8 a=3 k=3 act=relu6 ls=yes"))
    layers = spec.build()
    assert [(x.op, x.act, x.bn) for x in layers] == [
        ("dw", "none", True), ("pw", "relu6", True), ("dw", "relu6", True),
        ("pw", "none", True), ("layerscale", "none", False), ("add", "none", False)]
    # γ: 8 per-channel parameters, counted with the biases (timm's sum(p.numel()))
    weights = 9 * 8 + 8 * 32 + 9 * 32 + 32 * 8
    bn = 2 * (8 + 32 + 32 + 8)
    assert mobilecost.cost(spec).params == weights
    assert mobilecost.cost(spec, counting=Counting(biases=True)).params == weights + 8
    full = mobilecost.cost(spec, counting=Counting(True, True)).params
    assert full == weights + bn + 8 == sum(p.numel() for p in build_model(spec).parameters())
    # elementwise: relu6 on 32·256 twice, the layer scale's and the add's 8·256
    assert mobilecost.cost(spec).elementwise_ops == 2 * 32 * 256 + 2 * 8 * 256


def test_uib_hidden_width_and_its_refusals():
    # 40 in, t=3 under multiple 8: make_divisible(120) = 120; t=7/3: 93.3 → 96
    assert ops(net("uib 40 t=7/3", 8, "40!"))[0] == ("pw", 8, 96)
    assert ops(net("uib 40 t=7/3", 8, "40!", "int"))[0] == ("pw", 8, 93)
    with pytest.raises(SpecError, match=r"a uib with no depthwise convolution .* cannot stride"):
        parse(net("uib 16 s2 k=0"))
    with pytest.raises(SpecError, match=r":5:8: SAME padding needs an odd kernel size"):
        parse(net("uib 16 a=4"))
    assert ops(net("uib 16 s2 a=4 pad=tf"))[0] == ("dw", 16, 8)  # TF's SAME takes any


def test_uib_against_timms_universal_inverted_residual():
    """An ExtraDW block with timm's structure, weights copied: the same output."""
    model = build_model(parse(net("uib 8 a=3 k=5")))
    m = model.layers
    ref = nn.Sequential(m[0], m[1], m[2], m[3])  # dw_start, pw_exp, dw_mid, pw_proj
    x = model.example_input(2)
    with torch.inference_mode():
        assert torch.equal(model(x), ref(x) + x)


def test_fused_by_hand():
    spec = parse(net("fused 16 s2", channels="8!"))  # 3×3 s2 to 32, 1×1 to 16 on 8×8
    assert [x.op for x in spec.build()] == ["conv", "pw"]
    macs = 9 * 8 * 32 * 64 + 32 * 16 * 64
    assert mobilecost.cost(spec).macs == macs == flop_counter_macs(build_model(spec))
    assert [x.op for x in parse(net("fused 8 t=2 ls=yes")).build()] == ["conv", "pw", "layerscale",
                                                                         "add"]


# --------------------------------------------------------------------------- attention

class TimmMQA(nn.Module):
    """timm's MultiQueryAttention2d (layers/attention2d.py) in its explicit form: query 1×1
    to heads·d, key and value each a depthwise k×k stride-s convolution with batchnorm then a
    1×1 to d, softmax(q·kᵀ·d^-½)·v, output 1×1; no bias anywhere."""

    def __init__(self, dim, out, heads, d, kv_stride):
        super().__init__()
        self.heads, self.d = heads, d
        self.query = nn.Conv2d(dim, heads * d, 1, bias=False)
        down = lambda: nn.Sequential(  # noqa: E731
            nn.Conv2d(dim, dim, 3, kv_stride, 1, groups=dim, bias=False), nn.BatchNorm2d(dim))
        self.key = nn.Sequential(*([down()] if kv_stride > 1 else []),
                                 nn.Conv2d(dim, d, 1, bias=False))
        self.value = nn.Sequential(*([down()] if kv_stride > 1 else []),
                                   nn.Conv2d(dim, d, 1, bias=False))
        self.output = nn.Conv2d(heads * d, out, 1, bias=False)

    def forward(self, x):
        b, _, h, w = x.shape
        q = self.query(x).reshape(b, self.heads, self.d, h * w).transpose(-1, -2)
        k = self.key(x).reshape(b, 1, self.d, -1)
        v = self.value(x).reshape(b, 1, self.d, -1).transpose(-1, -2)
        attn = (q * self.d ** -0.5 @ k).softmax(-1)
        o = (attn @ v).transpose(-1, -2).reshape(b, self.heads * self.d, h, w)
        return self.output(o)


def test_mobile_mqa_by_hand_by_flop_counter_and_against_timms_block():
    text = net("attn 16 heads=4 d=8 kv=1 kvs=2 k=3 ls=yes", 14, "16!")
    spec = parse(text)
    model = build_model(spec)
    # C = 16 on 14×14 (L_q = 196); key and value downsampled to 7×7 (L_kv = 49)
    q, kv_down, kv_proj = 196 * 16 * 32, 49 * 16 * 9, 49 * 16 * 8
    products = 2 * 4 * 8 * 196 * 49  # Q·Kᵀ and the weighted sum, H·d·L_q·L_kv each
    out = 196 * 32 * 16
    by_hand = q + 2 * kv_down + 2 * kv_proj + products + out
    c = mobilecost.cost(spec)
    assert c.macs == by_hand == flop_counter_macs(model) == 842_016
    sdpa = next(x for x in c.layers if x.layer.op == "sdpa")
    assert (sdpa.macs, sdpa.weight_params, sdpa.elementwise_ops) == (products, 0, 4 * 196 * 49)
    assert sdpa.layer.in_size == 7 and sdpa.layer.out_size == 14  # reads K, V; writes Q's shape
    # parameters: query, the two depthwise and two 1×1, output; batchnorm: the pre-norm and
    # the two downsampling ones; the layer scale's 16 γ
    weights = 16 * 32 + 2 * 9 * 16 + 2 * 16 * 8 + 32 * 16
    assert c.params == weights
    assert mobilecost.cost(spec, counting=Counting(True, True)).params == \
        weights + 2 * 3 * 16 + 16 == sum(p.numel() for p in model.parameters())
    # the same network as timm's block: pre-norm, attention, layer scale, residual
    m = model.layers
    for mod in (m[0], m[3][1], m[6][1]):  # batchnorm statistics that do something
        mod.running_mean.uniform_(-1, 1)
        mod.running_var.uniform_(0.5, 2)
    with torch.no_grad():
        m[11].gamma.uniform_(0.5, 1.5)
    ref = TimmMQA(16, 16, 4, 8, 2).eval()
    ref.query.load_state_dict(m[1][0].state_dict())
    for part, dw, pw in ((ref.key, 3, 4), (ref.value, 6, 7)):
        part[0][0].load_state_dict(m[dw][0].state_dict())
        part[0][1].load_state_dict(m[dw][1].state_dict())
        part[1].load_state_dict(m[pw][0].state_dict())
    ref.output.load_state_dict(m[10][0].state_dict())
    x = model.example_input(2)
    with torch.inference_mode():
        want = x + m[11].gamma * ref(m[0](x))
        assert torch.allclose(model(x), want, atol=1e-6)


def test_multi_head_attention_equals_torchs_scaled_dot_product_attention():
    """kv=heads (the default): a key and a value per head; kv=2: grouped, 2 query heads a
    key/value head. The sdpa layer's output is F.scaled_dot_product_attention's."""
    for kv in (4, 2, 1):
        spec = parse(net(f"attn 16 heads=4 d=8 kv={kv} bn=no", 6, "16!"))
        layers = spec.build()
        assert [x.op for x in layers] == ["pw", "tap", "pw", "tap", "pw", "concat", "sdpa", "pw",
                                          "add"]
        model = build_model(spec)
        att = model.layers[6]
        q = torch.randn(2, 32, 6, 6)
        k, v = torch.randn(2, 8 * kv, 6, 6), torch.randn(2, 8 * kv, 6, 6)
        heads = lambda t, n: t.reshape(2, n, 8, 36).transpose(-1, -2)  # noqa: E731
        kk = heads(k, kv).repeat_interleave(4 // kv, 1)
        vv = heads(v, kv).repeat_interleave(4 // kv, 1)
        want = Fn.scaled_dot_product_attention(heads(q, 4), kk, vv)
        got = att(torch.cat([k, v], 1), q)
        assert torch.allclose(got, want.transpose(-1, -2).reshape(2, 32, 6, 6), atol=1e-6)
        # Mult-Adds: query 16·32, key and value 16·8·kv each, output 32·16, all on 36
        # positions, and the two products 2·4·8·36·36 whatever kv
        assert mobilecost.cost(spec).macs == 36 * (16 * 32 + 2 * 16 * 8 * kv + 32 * 16) + \
            2 * 4 * 8 * 36 * 36 == flop_counter_macs(model)


def test_attention_refusals_and_text():
    with pytest.raises(SpecError, match="kv=3 key/value heads must divide heads=4"):
        parse(net("attn 16 heads=4 kv=3"))
    with pytest.raises(SpecError, match="k= is the key/value downsampling kernel"):
        parse(net("attn 16 k=5"))
    spec = parse(net("attn 16 heads=8 d=64 kv=8 kvs=1 bn=yes ls=no pad=same"))
    assert str(spec.body[0]) == "attn 16"  # every option at its default
    assert str(parse(net("attn 16 heads=4 kv=1 kvs=2")).body[0]) == "attn 16 heads=4 kv=1 kvs=2"
    # not square, and sides that do not halve: the key/value map is ⌈7/2⌉×⌈5/2⌉ = 4×3
    spec = parse("name t\ninput 7x5 16!\nattn 16 heads=2 d=4 kv=1 kvs=2\n")
    sdpa = next(x for x in spec.build() if x.op == "sdpa")
    assert (sdpa.in_size, sdpa.in_width, sdpa.out_size, sdpa.out_width) == (4, 3, 7, 5)
    assert mobilecost.cost(spec).layers[sdpa.index].macs == 2 * 2 * 4 * 35 * 12
    assert flop_counter_macs(build_model(spec)) == mobilecost.cost(spec).macs


# --------------------------------------------------------------------------- parallel paths

class MixedConv(nn.Module):
    """timm's MixedConv2d, depthwise: torch.split into _split_channels groups, a convolution
    per group, torch.cat."""

    def __init__(self, convs, splits):
        super().__init__()
        self.convs, self.splits = nn.ModuleList(convs), splits

    def forward(self, x):
        return torch.cat([c(p) for c, p in zip(self.convs, torch.split(x, self.splits, 1))], 1)


def test_mixdw_splits_as_timm_and_computes_what_mixedconv_does():
    spec = parse(net("mixdw 3,5,7 s2", 16, "32!"))
    layers = spec.build()
    dws = [x for x in layers if x.op == "dw"]
    # _split_channels(32, 3): [10, 10, 10], the first the remainder too: [12, 10, 10]
    assert [(x.kernel, x.out_channels, x.out_size) for x in dws] == [(3, 12, 8), (5, 10, 8),
                                                                       (7, 10, 8)]
    assert layers[-1].out_channels == 32 and layers[-1].out_size == 8
    macs = (9 * 12 + 25 * 10 + 49 * 10) * 64
    model = build_model(spec)
    assert mobilecost.cost(spec).macs == macs == flop_counter_macs(model)
    ref = MixedConv([m for m in model.layers if m.spec_layer.op == "dw"], [12, 10, 10])
    x = model.example_input(2)
    with torch.inference_mode():
        assert torch.equal(model(x), ref(x))
    with pytest.raises(ConfigError, match="mixdw splits 2 channels into 3 groups"):
        parse(net("mixdw 3,5,7", 8, "2!")).build()
    with pytest.raises(SpecError, match="SAME padding needs an odd kernel size"):
        parse(net("mixdw 3,4"))
    assert str(parse(net("mixdw 3,5,7,9 s2 act=silu")).body[0]) == "mixdw 3,5,7,9 s2 act=silu"


class GhostModule(nn.Module):
    """timm's GhostModule (ghostnet.py): primary 1×1 to ⌈out/ratio⌉, a depthwise 3×3 making
    ratio - 1 maps of each, concatenated and cut to out."""

    def __init__(self, primary, cheap, out):
        super().__init__()
        self.primary, self.cheap, self.out = primary, cheap, out

    def forward(self, x):
        x1 = self.primary(x)
        return torch.cat([x1, self.cheap(x1)], 1)[:, :self.out]


@pytest.mark.parametrize("statement,init,new,out", [
    ("ghost 16", 8, 8, 16), ("ghost 15 ratio=3", 5, 10, 15),
    ("ghost 14 ratio=4 act=none", 4, 12, 14)])
def test_ghost_module_by_hand_and_against_timms(statement, init, new, out):
    spec = parse(net(statement, 8, "8!", "int"))
    assert [(x.op, x.out_channels, x.groups) for x in spec.build()] == [
        ("pw", init, 1), ("dw", new, init), ("concat", out, 1)]
    macs = 8 * init * 64 + 9 * new * 64  # the 1×1, then 3×3 on each of the init maps
    model = build_model(spec)
    assert mobilecost.cost(spec).macs == macs == flop_counter_macs(model)
    ref = GhostModule(model.layers[0], model.layers[1], out)
    x = model.example_input(2)
    with torch.inference_mode():
        assert torch.equal(model(x), ref(x))


def channel_shuffle(x, groups):
    """timm's / torchvision's channel_shuffle."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


def test_shufflenet_group_convolution_and_shuffle():
    spec = parse(net("pw 24 g=4\nshuffle 4\ndw 3\npw 24 g=4 act=none", 8, "16!", "int"))
    layers = spec.build()
    assert [(x.op, x.groups) for x in layers] == [("pw", 4), ("shuffle", 4), ("dw", 24), ("pw", 4)]
    # grouped 1×1: (16/4)·24 then (24/4)·24 per position; the shuffle moves, computes nothing
    macs = (4 * 24 + 9 * 24 + 6 * 24) * 64
    model = build_model(spec)
    c = mobilecost.cost(spec)
    assert c.macs == macs == flop_counter_macs(model)
    assert c.params == 4 * 24 + 9 * 24 + 6 * 24
    x = torch.randn(2, 24, 8, 8)
    with torch.inference_mode():
        assert torch.equal(model.layers[1](x), channel_shuffle(x, 4))
    assert layers[0].filter_shape == "1×1×4×24 g=4"
    with pytest.raises(ConfigError, match=r"'pw \.\.\. g=4' needs input and output channels "
                                          r"divisible by 4, got 16 and 6 at alpha 0.25"):
        spec.build("0.25")  # the first: 16 (fixed) → int(24 · 0.25) = 6
    with pytest.raises(ConfigError, match="shuffle 5 needs channels divisible by 5"):
        parse(net("shuffle 5", 8, "16!")).build()


# --------------------------------------------------------------------------- the rest

def test_tf_same_padding_as_timms_tf_ports():
    """TensorFlow's SAME: pad (⌈h/s⌉ - 1)·s + k - h in all, the odd one after (bottom, right).
    224, k3 s2: 1 → (0, 1); 225: 2 → (1, 1); k5 s2 on 224: 3 → (1, 2); k4 s1 on 7: 3 → (1, 2)."""
    for statement, res, pads in [("conv 3 8 s2 pad=tf", 224, (0, 1, 0, 1)),
                                 ("conv 3 8 s2 pad=tf", 225, (1, 1, 1, 1)),
                                 ("dw 5 s2 pad=tf", 224, (1, 2, 1, 2)),
                                 ("dw 4 pad=tf", 7, (1, 2, 1, 2))]:
        spec = parse(net(statement, res, "8!"))
        layer = spec.build()[0]
        assert tf_same_padding(layer) == pads and layer.out_size == -(-res // layer.stride)
        model = build_model(spec)
        conv = model.layers[0][1]
        x = model.example_input(1)
        want = Fn.conv2d(Fn.pad(x, pads), conv.weight, None, conv.stride, 0, 1, conv.groups)
        with torch.inference_mode():
            assert torch.allclose(conv(model.layers[0][0](x)), want)
    # same output side as symmetric SAME, so the same cost
    a, b = parse(net("conv 3 8 s2 pad=tf", 225)), parse(net("conv 3 8 s2", 225))
    assert mobilecost.cost(a).macs == mobilecost.cost(b).macs
    with pytest.raises(SpecError, match="pad must be same, valid or tf"):
        parse(net("conv 3 8 pad=full"))


def test_se_with_any_activation_inside_squeezing_from_the_block_input():
    """EfficientNet's and MixNet's SE: squeeze to int(in/R) of the block's input, SiLU inside."""
    spec = parse(net("ir 24 t=6 se=4 squeeze=in seact=silu gate=sigmoid", 8, "24!"))
    layers = spec.build()
    assert [(x.op, x.out_channels, x.act) for x in layers[2:6]] == [
        ("avgpool", 144, "none"), ("pw", 6, "silu"), ("pw", 144, "sigmoid"), ("scale", 144, "none")]
    model = build_model(spec)
    assert isinstance(model.layers[3][-1], nn.SiLU)
    assert "seact=silu" in spec.format() and parse(spec.format()) == spec


def test_gelu_norm_and_layerscale_statements():
    spec = parse(net("conv 3 8 act=gelu\nnorm\nlayerscale", 4, "8!"))
    model = build_model(spec)
    assert isinstance(model.layers[0][-1], nn.GELU)
    assert isinstance(model.layers[1], nn.BatchNorm2d)
    c = mobilecost.cost(spec, counting=Counting(True, True))
    # conv 3·3·8·8 weights, its batchnorm 16, the norm's 16, the layer scale's 8
    assert c.params == 576 + 16 + 16 + 8 == sum(p.numel() for p in model.parameters())
    # gelu on 8·16, nothing for the norm, one multiply a element for the layer scale
    assert mobilecost.cost(spec).elementwise_ops == 8 * 16 + 8 * 16


EVERYTHING = net("""conv 3 16+ s2 pad=tf
fused 24 s2
uib 24 a=3 k=5 ls=yes
uib 32 s2 a=5 k=0 t=2
uib 32 k=0 t=2 ls=yes
attn 32 heads=4 d=16 kv=1 kvs=2 ls=yes
attn 32 heads=2 d=8
mixdw 3,5,7 s2
ghost 48 act=none
pw 48 g=4
shuffle 4
ir 48 t=3 se=4 squeeze=in seact=silu gate=sigmoid pad=tf
norm
layerscale
dw 4 s2 pad=tf act=gelu
avgpool global
fc 10!""", 32, "3!")


@pytest.mark.parametrize("alpha,res", [(1, 32), ("0.75", 17),
                                       pytest.param("0.5", 33, marks=pytest.mark.slow),
                                       pytest.param("1.3", 47, marks=pytest.mark.slow)])
def test_every_new_statement_against_both_counters(alpha, res):
    pytest.importorskip("fvcore")
    from mobilecost.torch.counters import cross_check

    check = cross_check(parse(EVERYTHING), alpha, res)
    for c in check.layers:
        assert c.flop_counter_macs == c.engine_macs == c.fvcore_macs, c
        assert (c.torch_weight_params, c.torch_params) == (c.engine_params, c.engine_params_all), c


def test_every_new_statement_in_the_grid_engine():
    from engines import assert_cell_equal

    spec = parse(EVERYTHING)
    alphas, sizes = [F(1), F(1, 2), F(13, 10), F(3, 4)], [32, 33, 47, 64, 17, (40, 24)]
    for counting in (Counting(), Counting(True, True), Counting(True, True, True)):
        g = grid_cost(spec, alphas, sizes, counting)
        for i, a in enumerate(alphas):
            for j, r in enumerate(sizes):
                assert_cell_equal(g, i, j, mobilecost.cost(spec, a, r, counting), (a, r))
    assert parse(spec.format()) == spec


def test_attention_products_past_64_bits_are_refused_on_a_grid():
    spec = parse("name t\ninput 8 8!\nattn 8 heads=1 d=8\n")
    with pytest.raises(MobilecostError, match="exceed 64-bit integers"):
        grid_cost(spec, [1], [200_000])
    assert mobilecost.cost(spec, 1, 200_000).macs > 2 ** 63  # the one-configuration engine: any
