"""Non-square inputs: the language, both cost engines, the closed form, the grid options, torch.

Independent numbers: MobileNet v1's maps at 224x160 are 112x80, 56x40, 28x20, 14x10 and 7x5, each
exactly 5/7 of the 224x224 map's area, so every convolution costs 5/7 of its square count and
the classifier (after the global pool) the same; the square count is the paper's, by hand
(tests/test_formula.py: 28,224,000 + 539,492,352 + 1,024,000 = 568,740,352).
"""

from fractions import Fraction as F

import numpy as np
import pytest
from cli_helpers import one_error_line, run

from mobilecost.engine.axes import grid_from_text, parse_aspect
from mobilecost.engine.closedform import closed_form
from mobilecost.engine.cost import cost
from mobilecost.engine.grid import grid_cost
from mobilecost.engine.sweep import sweep
from mobilecost.errors import ConfigError, MobilecostError, SpecError
from mobilecost.lang.load import builtin_names, load_spec
from mobilecost.lang.parse import parse
from mobilecost.lang.spec import format_spec
from mobilecost.lang.values import norm_resolution, resolution_text

V1_SQUARE = 568_740_352


def v1_by_hand(h: int, w: int) -> int:
    """MobileNet v1's Mult-Adds at α = 1 on an h×w input, from Table 1 written out: SAME
    padding leaves ceil(side / stride) on each side."""
    h, w = -(-h // 2), -(-w // 2)
    macs, c = 3 * 3 * 3 * 32 * h * w, 32
    for stride, out in ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
                        (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)):
        h, w = -(-h // stride), -(-w // stride)
        macs += 9 * c * h * w + c * out * h * w
        c = out
    return macs + 1024 * 1000
V1_FC = 1024 * 1000
V1_224x160 = (V1_SQUARE - V1_FC) * 5 // 7 + V1_FC  # = 406,535,680


def test_v1_at_224x160_by_hand():
    assert (V1_SQUARE - V1_FC) * 5 % 7 == 0 and V1_224x160 == 406_535_680
    assert v1_by_hand(224, 224) == V1_SQUARE and v1_by_hand(224, 160) == V1_224x160
    for h, w in ((320, 240), (193, 131), (97, 250), (1, 999)):
        assert cost("mobilenet_v1", 1, (h, w)).macs == v1_by_hand(h, w)
    c = cost("mobilenet_v1", 1, (224, 160))
    assert c.macs == V1_224x160
    assert c.params == cost("mobilenet_v1").params  # weights do not depend on the input size
    first = c.layers[0]
    assert (first.layer.out_size, first.layer.out_width) == (112, 80)
    assert first.macs == 3 * 3 * 3 * 32 * 112 * 80
    pool = [x.layer for x in c.layers if x.layer.op == "avgpool"][0]
    assert (pool.in_size, pool.in_width) == (7, 5) and pool.filter_shape == "Pool 7×5"


def test_text_and_pairs_are_one_resolution():
    assert norm_resolution("320x240") == (320, 240)
    assert norm_resolution("320×240") == (320, 240)
    assert norm_resolution((224, 224)) == 224 == norm_resolution("224")
    assert resolution_text((320, 240)) == "320x240" and resolution_text(224) == "224"
    assert cost("mobilenet_v2", 1, "224x224").macs == cost("mobilenet_v2", 1, 224).macs
    for bad in ("320x", "x240", "0x5", "320x240x3", "abc", (1, 2, 3), True, 2.5):
        with pytest.raises(ConfigError):
            norm_resolution(bad)


@pytest.mark.parametrize("name", builtin_names())
def test_each_side_by_its_own_rule(name):
    # The size rules act on each side alone and every cost rule is symmetric in the two, so
    # transposing the input transposes every map and keeps every count. Using the height
    # twice (or the width) breaks this whenever the sides differ.
    for h, w in ((224, 160), (193, 131), (97, 250)):
        a, b = cost(name, F(3, 4), (h, w)), cost(name, F(3, 4), (w, h))
        assert a.macs == b.macs and a.params == b.params
        assert a.elementwise_ops == b.elementwise_ops
        assert [(x.layer.out_size, x.layer.out_width) for x in a.layers] == \
            [(x.layer.out_width, x.layer.out_size) for x in b.layers]
        # ...and a side's ceil(h/s) chain matches the square network of that side
        sq = cost(name, F(3, 4), h)
        assert [x.layer.out_size for x in a.layers] == [x.layer.out_size for x in sq.layers]


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mnasnet_b1"])
def test_grid_engine_equals_the_scalar_engine(name):
    sizes = [224, (224, 160), (193, 131), (97, 250), (320, 240)]
    alphas = [F(1, 2), F(3, 4), 1]
    g = grid_cost(name, alphas, sizes)
    assert g.resolutions == (224, (224, 160), (193, 131), (97, 250), (320, 240))
    for i, a in enumerate(alphas):
        for j, r in enumerate(sizes):
            c = cost(name, a, r)
            assert g.macs[i, j] == c.macs and g.params[i, j] == c.params
            assert g.elementwise_ops[i, j] == c.elementwise_ops
            assert g.activation_elems[i, j] == c.activation_elems
            assert g.peak_activation_elems[i, j] == c.peak_activation_elems


def test_a_non_square_spec():
    text = format_spec(load_spec("mobilenet_v1")).replace("input 224 3!", "input 224x160 3!")
    s = parse(text)
    assert (s.resolution, s.width, s.size) == (224, 160, (224, 160))
    assert "input 224x160 3!" in format_spec(s) and parse(format_spec(s)) == s
    assert cost(s).macs == V1_224x160
    assert s.resolution_for(F(1, 2)) == (112, 80)
    # The closed form: ρ scales both sides, so the spatial factor (an area) goes as ρ².
    f = closed_form(s)
    assert f.macs(1, 1) == V1_224x160
    # exact where both sides are multiples of the resolution step (32): 448x320 at ρ = 2
    assert f.resolution_step == 32
    assert f.macs(F(1, 2), 2) == cost(s, F(1, 2), (448, 320)).macs
    # --res N on a non-square spec is a height, the width at the spec's aspect; --rho per side
    _, res = grid_from_text(s, "1", "112,224", None)
    assert res == [(112, 80), (224, 160)]
    _, res = grid_from_text(s, "1", None, "0.5,1")
    assert res == [(112, 80), (224, 160)]


def test_input_channels_need_their_mark():
    with pytest.raises(SpecError, match=r"input channels need a mark: 240! .* 'input 320x240 3!'"):
        parse("input 320 240\nconv 3 32 s2\n")
    scaled = parse("input 14 512*\ndw 3\npw 512\n")
    assert scaled.in_channels.mode == "scale" and "input 14 512*" in format_spec(scaled)
    for bad, what in (("320x", "both sides"), ("x240", "both sides"), ("0x5", "positive"),
                      ("320x0", "positive")):
        with pytest.raises(SpecError, match=what):
            parse(f"input {bad} 3!\nconv 3 32 s2\n")


def test_aspect():
    assert parse_aspect("4:3") == F(4, 3) and parse_aspect("0.75") == F(3, 4)
    v1 = load_spec("mobilenet_v1")
    _, res = grid_from_text(v1, "1", "128..224", None, aspect="4:3")
    # widths round(h·4/3): 170.67, 213.33, 256, 298.67
    assert res == [(128, 171), (160, 213), (192, 256), (224, 299)]
    for bad, msg in (("0", "must be > 0"), ("4:0", "must be > 0"), ("x", "not a number")):
        with pytest.raises(MobilecostError, match=msg):
            parse_aspect(bad)


def test_sweep_frame_of_a_mixed_grid():
    df = sweep("mobilenet_v1", [1], [224, (320, 240)])
    assert list(df["resolution"].astype(str)) == ["224", "320x240"]
    assert list(df["height"]) == [224, 320] and list(df["width"]) == [224, 240]
    assert list(df["rho_w"]) == [1, 240 / 224]
    assert df["top1"].iloc[0] == pytest.approx(70.9)  # published, 1.0-224
    assert np.isnan(df["top1"].iloc[1])  # no accuracy for a non-square input
    assert df["macs"].iloc[1] == v1_by_hand(320, 240)
    # a square grid keeps its columns as before
    assert "width" not in sweep("mobilenet_v1", [1], [224]).columns


@pytest.mark.parametrize("args, message", [
    (("cost", "--res", "320x"), "--res '320x': expected a whole number of pixels or HEIGHTxWIDTH"),
    (("cost", "--res", "x240"), "--res 'x240': expected"),
    (("cost", "--res", "0x5"), "--res 0x5: each side must be a positive integer"),
    (("sweep", "--res", "320x"), "--res 320x: '320x' needs both sides"),
    (("sweep", "--res", "x240"), "--res x240: 'x240' needs both sides"),
    (("sweep", "--res", "128..224x160"), "a range runs over one number"),
    (("sweep", "--aspect", "0"), "--aspect 0: the aspect (width / height) must be > 0"),
    (("sweep", "--aspect", "0.001"), "--aspect 0.001 makes a width of 0.224 px at height 224"),
    (("sweep", "--res", "320x240", "--aspect", "4:3"), "already has its width"),
])
def test_bad_sizes_are_one_line(args, message):
    assert message in one_error_line(run(*args))


def test_cli_cost_and_sweep():
    r = run("cost", "--res", "320x240", "--format", "csv")
    assert r.exit_code == 0
    rows = r.stdout.splitlines()
    assert rows[1].startswith("1,conv,conv,320×240×3,160×120×32,16588800,")  # 3·3·3·32·160·120
    r = run("sweep", "--alpha", "1", "--res", "128..224", "--aspect", "4:3", "--format", "csv")
    assert r.exit_code == 0
    assert [line.split(",")[2] for line in r.stdout.splitlines()[1:]] == \
        ["128x171", "160x213", "192x256", "224x299"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mnasnet_b1"])
def test_torch_counts_agree_on_non_square_inputs(name):
    # FlopCounterMode and fvcore count the module torch actually runs on a 193x131 input, so
    # SAME padding's per-side ceil and the global pool's h×w window are checked against torch.
    pytest.importorskip("torch")
    pytest.importorskip("fvcore")
    from mobilecost.torch.counters import cross_check

    check = cross_check(name, F(3, 4), (193, 131))
    assert check.macs_agree and check.params_agree
    assert sum(x.engine_macs for x in check.layers) == cost(name, F(3, 4), (193, 131)).macs


def test_a_side_that_vanishes_is_one_line(tmp_path):
    # A 3×3 max pool without padding needs a side of 3: the width of 64x4 is 2 after the conv.
    f = tmp_path / "net.spec"
    f.write_text("name net\ninput 64 3!\nconv 3 8 s2\nmaxpool 3 s2\nfc 10!\n")
    line = one_error_line(run("cost", str(f), "--res", "64x4"))
    assert "maxpool 3×3 s2 on a 32×2 feature map leaves nothing at resolution 64x4" in line
    line = one_error_line(run("sweep", str(f), "--res", "64x4,64"))
    assert "leaves nothing" in line and "the largest 64x4" in line


def test_export_refuses_non_square_in_one_line(tmp_path):
    line = one_error_line(run("export", "--res", "160x120", "--alpha", "0.5",
                              "--output-dir", tmp_path / "out"))
    assert "--res 160x120: export takes square inputs" in line
    assert not (tmp_path / "out").exists()


def test_plots_of_a_mixed_grid(tmp_path):
    r = run("sweep", "--res", "224x160,224,320x240,160", "--alpha", "0.25..1", "--plot",
            "--output-dir", tmp_path)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "macs_heatmap_mobilenet_v1.png").stat().st_size > 0


@pytest.mark.parametrize("aspect", ["1e400", "1:20000", "20000"])
def test_an_absurd_aspect_is_one_short_line(aspect):
    line = one_error_line(run("sweep", "--aspect", aspect))
    assert line == f"error: --aspect {aspect}: the aspect (width / height) must be between 1/10,000 and 10,000"
