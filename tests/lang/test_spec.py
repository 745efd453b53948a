"""The spec language: parsing, round trips, scaling rules and errors."""

from fractions import Fraction

import pytest

from mobilecost import ConfigError, SpecError, builtin_names, load_spec, parse
from mobilecost.lang.spec import LayerKind
from mobilecost.lang.values import Channels, Rounding

NET = """\
# a small network with every construct
name tiny
input 32 3!
rounding multiple 8
activation relu6
conv 3 16 s2 bn=no
repeat 2 {
  dw 3
  pw 16 act=none
}
residual {
  pw 32
  dw 5 pad=same
  pw 16
}
ir 24 s2 t=4 k=5
ir 24
maxpool 3 s2
avgpool global
fc 10! bias=no
"""


def test_builtins_present():
    assert builtin_names() == ["conv_mobilenet", "mnasnet_a1", "mnasnet_b1", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
                               "mobilenet_v3_large_minimalistic", "mobilenet_v3_small",
                               "mobilenet_v3_small_1280", "mobilenet_v3_small_minimalistic",
                               "mobilenetv4_conv_large", "mobilenetv4_conv_medium",
                               "mobilenetv4_conv_small", "mobilenetv4_hybrid_large",
                               "mobilenetv4_hybrid_medium", "shallow_mobilenet"]


@pytest.mark.parametrize("name", builtin_names())
def test_format_then_parse_gives_the_same_spec(name):
    spec = load_spec(name)
    again = parse(spec.format(), source="again")
    assert again == spec
    assert again.format() == spec.format()


def test_round_trip_every_construct():
    spec = parse(NET, "net.spec")
    assert parse(spec.format()) == spec
    assert spec.name == "tiny" and spec.activation == "relu6"
    assert spec.rounding == Rounding("multiple", divisor=8)


def test_mobilenet_v1_matches_table1():
    layers = load_spec("mobilenet_v1").build()
    convs = [l for l in layers if l.op in ("conv", "dw", "pw", "fc")]
    assert len(convs) == 28  # "28 layers counting depthwise and pointwise separately"
    # Table 1's Input Size column, row by row
    expected = ["224×224×3", "112×112×32", "112×112×32", "112×112×64", "56×56×64", "56×56×128",
                "56×56×128", "56×56×128", "28×28×128", "28×28×256", "28×28×256", "28×28×256",
                "14×14×256"] + ["14×14×512"] * 11 + ["7×7×512", "7×7×1024", "7×7×1024"]
    assert [l.input_shape for l in convs[:-1]] == expected
    assert convs[-1].op == "fc" and convs[-1].in_channels == 1024 and convs[-1].out_channels == 1000
    assert [l.filter_shape for l in convs[:3]] == ["3×3×3×32", "3×3×32 dw", "1×1×32×64"]


def test_build_every_construct_shapes():
    layers = parse(NET).build()
    ops = [l.op for l in layers]
    # ir 24 s2 t=4: pw expand, dw, pw project, no add (stride 2); ir 24: expand, dw, project, add
    assert ops == ["conv", "dw", "pw", "dw", "pw", "pw", "dw", "pw", "add",
                   "pw", "dw", "pw", "pw", "dw", "pw", "add", "maxpool", "avgpool", "fc"]
    add = layers[8]
    assert add.skip_from == 5 and layers[5].in_channels == 16
    assert layers[9].out_channels == 16 * 4 and layers[10].kernel == 5 and layers[10].out_size == 8
    assert layers[11].act == "none"  # linear bottleneck
    assert layers[0].bn is False and layers[0].out_size == 16
    assert layers[16].out_size == (8 - 3) // 2 + 1  # maxpool 3 s2, no padding
    assert layers[-1].kind is LayerKind.FC and layers[-1].bias is False and layers[-1].out_channels == 10


def test_same_padding_is_ceil():
    layers = parse("input 225 3!\nconv 3 8 s2\ndw 3 s2\n").build()
    assert [l.out_size for l in layers] == [113, 57]  # ceil(225/2), ceil(113/2)


@pytest.mark.parametrize("alpha,base,expect", [
    (Fraction(1, 4), 32, 8), (Fraction(3, 4), 1000, 750), (Fraction(29, 100), 100, 29),
    (Fraction(1, 10), 5, 1),  # floor would give 0; at least one channel
])
def test_int_rounding(alpha, base, expect):
    assert Rounding("int").apply(Channels(base), alpha) == expect


@pytest.mark.parametrize("alpha,base,expect", [
    # torchvision's _make_divisible(v, 8): max(8, int(v + 4) // 8 * 8), plus 8 if below 0.9·v
    (Fraction(35, 100), 32, 16),  # v = 11.2: 15 // 8 * 8 = 8, below 10.08, so 16
    (Fraction(3, 4), 24, 24),     # v = 18: 22 // 8 * 8 = 16, below 16.2, so 24
    (Fraction(1, 2), 1280, 640),  # v = 640, already a multiple
    (Fraction(3, 4), 96, 72),     # v = 72, already a multiple
    (Fraction(1, 4), 16, 8),      # v = 4: never below the divisor
])
def test_multiple_rounding(alpha, base, expect):
    assert Rounding("multiple", divisor=8).apply(Channels(base), alpha) == expect


def test_fixed_and_atleast_channels():
    r = Rounding("multiple", divisor=8)
    assert r.apply(Channels(1000, "fixed"), Fraction(1, 4)) == 1000
    assert r.apply(Channels(1280, "atleast"), Fraction(1, 2)) == 1280
    assert r.apply(Channels(1280, "atleast"), Fraction(7, 5)) == 1792  # 1280 * 1.4


def test_alpha_is_exact_decimal():
    # 0.29 * 100 in binary floating point is 28.999999999999996; the engine takes 0.29 as 29/100
    spec = parse("input 8 3!\npw 100\n")
    assert spec.build(0.29)[0].out_channels == 29


def error_of(text, source="net.spec"):
    with pytest.raises(SpecError) as exc:
        parse(text, source)
    return str(exc.value)


def test_error_names_file_line_column_token():
    msg = error_of("input 224 3!\nconv 3 32 s2\nconvv 3 64\n")
    assert msg.startswith("net.spec:3:1: unknown layer kind") and "'convv'" in msg


def test_error_bad_channel_count():
    assert error_of("input 224 3!\npw 0\n").startswith("net.spec:2:4: channel count must be a positive")
    assert "'-5'" in error_of("input 224 3!\npw -5\n")
    assert "'1.5'" in error_of("input 224 3!\npw 1.5\n")


def test_error_bad_option_and_stride():
    assert error_of("input 8 3!\ndw 3 s0\n").startswith("net.spec:2:6: stride must be a positive")
    assert "options: act=, bias=, bn=, pad=, sN" in error_of("input 8 3!\ndw 3 colour=red\n")


def test_error_blocks():
    assert "never closed" in error_of("input 8 3!\nrepeat 2 {\n  dw 3\n")
    assert error_of("input 8 3!\n}\n").startswith("net.spec:2:1: '}' closes no block")
    assert "missing 'input" in error_of("pw 8\n")
    assert "no layers" in error_of("input 8 3!\n")
    assert "odd kernel" in error_of("input 8 3!\nconv 2 8\n")


def test_config_errors():
    spec = load_spec("mobilenet_v1")
    with pytest.raises(ConfigError, match="alpha must be > 0"):
        spec.build(0)
    with pytest.raises(ConfigError, match="alpha must be > 0"):
        spec.build(-0.5)
    with pytest.raises(ConfigError, match="resolution must be a positive integer"):
        spec.build(1, 0)
    small = parse("input 224 3!\nconv 3 32 s2\navgpool 7\n", "pool.spec")
    small.build(1, 224)
    with pytest.raises(ConfigError, match=r"pool.spec:3: avgpool 7×7 s7 on a 4×4 feature map leaves nothing"):
        small.build(1, 8)


def test_residual_shape_mismatch():
    spec = parse("input 8 3!\nresidual {\n  pw 16\n}\n", "r.spec")
    with pytest.raises(ConfigError, match="r.spec:2: residual block maps 8×8×3 to 8×8×16"):
        spec.build()


def test_missing_and_unknown_specs(tmp_path):
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(str(tmp_path / "absent.spec"))
    with pytest.raises(SpecError, match="unknown spec; built-in specs are conv_mobilenet, mnasnet_a1, mnasnet_b1, mobilenet_v1"):
        load_spec("mobilenet_v3")
    f = tmp_path / "mine.spec"
    f.write_text(NET)
    assert load_spec(str(f)).name == "tiny"


def test_rho_to_resolution():
    spec = load_spec("mobilenet_v1")
    assert [spec.resolution_for(r) for r in (1, 0.857, 0.714, 0.571)] == [224, 192, 160, 128]
    with pytest.raises(ConfigError):
        spec.resolution_for(0)
