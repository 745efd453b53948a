"""Squeeze-and-excitation: its own statement and inside inverted residuals, by hand."""

from fractions import Fraction

import pytest
from cli_helpers import one_error_line, run

import mobilecost
from mobilecost.engine.closedform import closed_form
from mobilecost.engine.cost import Counting
from mobilecost.engine.grid import grid_cost
from mobilecost.errors import MobilecostError, SpecError
from mobilecost.lang.parse import parse
from mobilecost.lang.values import make_divisible

SE_NET = "name se_net\ninput 16 3!\nconv 3 64\nse 4\navgpool global\nfc 10!\n"


def test_se_statement_costs_two_biased_1x1_convolutions_by_hand():
    c = mobilecost.cost(parse(SE_NET))
    assert [l.layer.op for l in c.layers] == ["conv", "avgpool", "pw", "pw", "scale", "avgpool", "fc"]
    squeeze = 16  # 64 / 4 = 16, already a multiple of 8
    conv = 3 * 3 * 3 * 64 * 16 * 16
    se = 64 * squeeze + squeeze * 64  # two 1×1 convolutions on the pooled 1×1×64 map
    assert c.macs == conv + se + 64 * 10
    assert c.params == 3 * 3 * 3 * 64 + 2 * 64 * squeeze + 64 * 10  # weights only
    assert mobilecost.cost(parse(SE_NET), counting=Counting(biases=True)).params == (
        c.params + squeeze + 64 + 10)  # the SE's biases and the FC's
    # conv ReLU on 64·16², SE ReLU on 16, hard-sigmoid gate on 64, scale on 64·16²
    assert c.elementwise_ops == 64 * 256 + squeeze + 64 + 64 * 256
    scale = c.layers[4]
    assert (scale.layer.out_size, scale.layer.out_channels) == (16, 64)
    assert scale.input_elems == 64 + 64 * 256  # the gate and the map


def test_se_mult_adds_do_not_depend_on_the_resolution():
    small = mobilecost.cost(parse(SE_NET), resolution=8).layers
    big = mobilecost.cost(parse(SE_NET), resolution=64).layers
    assert [x.macs for x in small[2:4]] == [x.macs for x in big[2:4]] == [64 * 16, 16 * 64]


@pytest.mark.parametrize("c,squeeze", [
    # MobileNetV3-Large's squeeze widths as torchvision builds them (fc1 of each
    # SqueezeExcitation: 72 -> 24, 120 -> 32, 480 -> 120, 672 -> 168, 960 -> 240) and TF-slim
    # (_make_divisible(c / 4, 8)); 40/4 = 10 rounds to 8, more than 10% down, so 16.
    (72, 24), (120, 32), (480, 120), (672, 168), (960, 240), (40, 16), (96, 24), (576, 144),
])
def test_squeeze_width_is_make_divisible_of_c_over_r(c, squeeze):
    assert make_divisible(Fraction(c, 4)) == squeeze
    spec = parse(f"name t\ninput 8 {c}!\nse 4\n")
    assert mobilecost.cost(spec).layers[1].layer.out_channels == squeeze


def test_se_in_an_inverted_residual_sits_after_the_depthwise_and_scales_with_alpha():
    text = "name t\ninput 32 16!\nrounding multiple 8\nir 16 t=3 k=5 se=4 act=hswish gate=sigmoid\n"
    layers = parse(text).build()
    assert [(l.op, l.out_channels, l.act) for l in layers] == [
        ("pw", 48, "hswish"), ("dw", 48, "hswish"), ("avgpool", 48, "none"),
        ("pw", 16, "relu"), ("pw", 48, "sigmoid"), ("scale", 48, "none"),
        ("pw", 16, "none"), ("add", 16, "none")]
    assert layers[-1].skip_from == 0 and layers[5].skip_from == 2
    assert layers[4].bias and not layers[4].bn and layers[1].bn and not layers[1].bias
    # α = 0.5: the ir's input stays 16 (fixed), its output 8; hidden 48, squeeze still 16
    half = parse(text.replace("ir 16", "ir 32")).build("0.5")
    assert [l.out_channels for l in half[:7]] == [48, 48, 48, 16, 48, 48, 16]


def test_grid_engine_equals_cost_with_se():
    text = ("name t\ninput 64 3!\nrounding multiple 8\nactivation hswish\nconv 3 16 s2\n"
            "ir 24 s2 t=4 k=5 se=4\nir 24 t=3 se=4\nse 6 gate=sigmoid\npw 96\n"
            "avgpool global\nfc 10!\n")
    spec = parse(text)
    alphas, res = [Fraction(1), Fraction(1, 2), Fraction(3, 4), Fraction(13, 10)], [64, 57, 31, 8]
    for counting in (Counting(), Counting(True, True)):
        g = grid_cost(spec, alphas, res, counting)
        for i, a in enumerate(alphas):
            for j, r in enumerate(res):
                c = mobilecost.cost(spec, a, r, counting)
                assert (int(g.macs[i, j]), int(g.params[i, j]), int(g.elementwise_ops[i, j]),
                        int(g.activation_elems[i, j]), int(g.peak_activation_elems[i, j])) == (
                    c.macs, c.params, c.elementwise_ops, c.activation_elems,
                    c.peak_activation_elems), (a, r)


def test_closed_form_refuses_se_and_says_why():
    with pytest.raises(MobilecostError, match="make_divisible.*no closed form"):
        closed_form(parse(SE_NET))


@pytest.mark.parametrize("text,where,what", [
    ("input 8 3!\nse 0\n", ":2:4", "SE ratio must be a positive integer"),
    ("input 8 3!\nse -4\n", ":2:4", "SE ratio must be a positive integer"),
    ("input 8 3!\nse\n", ":2:3", "'se' needs an SE ratio"),
    ("input 8 3!\nir 8 se=0\n", ":2:6", "SE ratio must be a positive integer"),
    ("input 8 3!\nir 8 se=0.25\n", ":2:6", "SE ratio must be a positive integer"),
    ("input 8 3!\nir 8 se=4 gate=relu\n", ":2:11", "gate must be one of hsigmoid, sigmoid"),
    ("input 8 3!\nse 4 act=mish\n", ":2:6", "act must be one of"),
    ("input 8 3!\nse 4 s2\n", ":2:6", "unexpected argument to 'se'"),
])
def test_bad_se_is_one_error_line(tmp_path, text, where, what):
    with pytest.raises(SpecError):
        parse(text)
    path = tmp_path / "bad.spec"
    path.write_text(text)
    line = one_error_line(run("cost", path))
    assert f"bad.spec{where}: {what}" in line


def test_formula_of_an_se_spec_is_one_error_line(tmp_path):
    path = tmp_path / "se.spec"
    path.write_text(SE_NET)
    line = one_error_line(run("formula", path))
    assert "no closed form" in line and "se.spec:4" in line
