"""The cost engine against the paper's printed tables and hand computations."""

import math
from fractions import Fraction

import pytest
from by_hand import v1_conv_channels, v1_macs, v1_params, v2_macs

from mobilecost import Counting, LayerKind, cost, parse
from mobilecost.engine.cost import conv_macs, conv_params
from mobilecost.reports import paper
from mobilecost.reports.tables import table2, table3


def test_equations_by_hand():
    # eq. (2): D_K·D_K·M·N·D_F·D_F for MobileNet's first layer, 3·3·3·32 at a 112×112 output
    assert conv_macs(3, 3, 32, 112) == 3 * 3 * 3 * 32 * 112 * 112  # 10,838,016
    # eq. (4): D_K·D_K·M·D_F·D_F for a depthwise layer (groups = M)
    assert conv_macs(3, 512, 512, 14, groups=512) == 3 * 3 * 512 * 14 * 14  # 903,168
    assert conv_params(3, 512, 512, groups=512) == 3 * 3 * 512  # 4,608


def test_eq3_reduction_ratio():
    """Separable / full = 1/N + 1/D_K² (equation 3), exactly."""
    full = cost(parse("input 14 512*\nconv 3 512\n")).macs
    sep = cost(parse("input 14 512*\ndw 3\npw 512\n")).macs
    assert Fraction(sep, full) == Fraction(1, 512) + Fraction(1, 9)


# Table 3, worked by hand:
#   full:      3·3·512·512·14·14                  = 462,422,016   params 2,359,296
#   separable: 3·3·512·196 + 512·512·196           =  52,283,392   params 4,608 + 262,144
#   α = 0.75:  384 channels: 3·3·384·196 + 384²·196 =  29,578,752   params 3,456 + 147,456
#   ρ = 0.714: D_F = round(0.714·14) = 10:          =  15,091,200   params unchanged
TABLE3_HAND = [(3 * 3 * 512 * 512 * 14 * 14, 3 * 3 * 512 * 512),
               (3 * 3 * 512 * 196 + 512 * 512 * 196, 3 * 3 * 512 + 512 * 512),
               (3 * 3 * 384 * 196 + 384 * 384 * 196, 3 * 3 * 384 + 384 * 384),
               (3 * 3 * 384 * 100 + 384 * 384 * 100, 3 * 3 * 384 + 384 * 384)]


# Table 3 as printed (../shared/reference/mobilenet_v1.md): million Mult-Adds, million parameters
TABLE3_PRINTED = [(462, 2.36), (52.3, 0.27), (29.6, 0.15), (15.1, 0.15)]


def test_table3_exact_and_as_printed():
    rows = table3().rows
    assert [(r["macs"], r["params"]) for r in rows] == TABLE3_HAND
    assert [(p.macs_m, p.params_m) for p in paper.TABLE3] == TABLE3_PRINTED  # the shipped copy
    for r, (macs_m, params_m) in zip(rows, TABLE3_PRINTED):
        # the printed figures carry 3 significant digits
        assert float(f"{r['macs'] / 1e6:.3g}") == macs_m
        assert round(r["params"] / 1e6, 2) == params_m


@pytest.mark.parametrize("alpha,res,macs_m,params_m", [
    (1, 224, 569, 4.2), (0.75, 224, 325, 2.6), (0.5, 224, 149, 1.3), (0.25, 224, 41, 0.5),  # Table 6
    (1, 192, 418, 4.2), (1, 128, 186, 4.2),  # Table 7
])
def test_tables_6_and_7_round_to_printed(alpha, res, macs_m, params_m):
    c = cost("mobilenet_v1", alpha, res)
    assert round(c.macs / 1e6) == macs_m
    assert round(c.params / 1e6, 1) == params_m


@pytest.mark.parametrize("alpha,res,printed", [(1, 160, 290), (0.5, 160, 76)])
def test_printed_values_that_are_truncated(alpha, res, printed):
    """Table 7's 290 and Table 9's 76 are the exact counts truncated, not rounded."""
    c = cost("mobilenet_v1", alpha, res)
    assert round(c.macs / 1e6) == printed + 1
    assert math.floor(c.macs / 1e6) == printed


def test_resolution_scales_all_but_fc_by_rho_squared():
    """At 160 every map is exactly 160/224 of its size at 224, so MACs = ρ²(total - FC) + FC."""
    at224, at160 = cost("mobilenet_v1", 1, 224), cost("mobilenet_v1", 1, 160)
    fc = 1024 * 1000
    assert Fraction(at160.macs - fc) == Fraction(160, 224) ** 2 * (at224.macs - fc)
    assert at224.macs == v1_macs(1, 224)  # Table 1 row by row: 568,740,352
    assert at160.macs == v1_macs(1, 160)  # 290,675,200


def test_conv_mobilenet_table4():
    c = cost("conv_mobilenet")
    assert round(c.params / 1e6, 1) == 29.3
    # printed 4866: the engine's total is 4,867.29M; without the FC layer it is 4,866.27M
    assert round(c.macs / 1e6) == 4867
    fc = [lc for lc in c.layers if lc.kind is LayerKind.FC][0]
    assert round((c.macs - fc.macs) / 1e6) == 4866


def test_shallow_mobilenet_table5():
    c = cost("shallow_mobilenet")
    assert (round(c.macs / 1e6), round(c.params / 1e6, 1)) == (307, 2.9)
    # the difference is exactly the five 14×14×512 separable layers
    five = 5 * (9 * 512 * 196 + 512 * 512 * 196)
    assert cost("mobilenet_v1").macs - c.macs == five


def test_mobilenet_v2():
    c = cost("mobilenet_v2")
    assert round(c.macs / 1e6) == 301  # printed "300M" (Sandler et al. Table 4)
    assert c.macs == v2_macs()  # Sandler et al. Table 2, block by block: 300,774,272
    # torchvision's mobilenet_v2 counts 3,504,872 parameters: weights + FC bias + batchnorm γ, β
    assert cost("mobilenet_v2", counting=Counting(biases=True, batchnorm=True)).params == 3_504_872
    assert math.floor(c.params / 1e5) / 10 == 3.4  # printed 3.4M is 3.47M truncated


# Table 2 as printed (../shared/reference/mobilenet_v1.md): % of Mult-Adds, % of parameters
TABLE2_PRINTED = {LayerKind.POINTWISE: (94.86, 74.59), LayerKind.DEPTHWISE: (3.06, 1.06),
                  LayerKind.CONV: (1.19, 0.02), LayerKind.FC: (0.18, 24.33)}


def test_table2_shares():
    assert paper.TABLE2 == TABLE2_PRINTED  # the copy shipped for `mobilecost table2`
    c = cost("mobilenet_v1")
    kinds = c.by_kind()
    for kind, (pm, pp) in TABLE2_PRINTED.items():
        assert round(100 * kinds[kind].params_share, 2) == pp
        if kind is not LayerKind.CONV:
            assert round(100 * kinds[kind].macs_share, 2) == pm
    # the full 3×3 conv's printed 1.19% is a transposition of 1.91%: the printed column sums to
    # 99.29% only (100.01% with 1.91), and the hand computation is 10,838,016 / 568,740,352
    conv = round(100 * kinds[LayerKind.CONV].macs_share, 2)
    assert conv == 1.91
    assert round(sum(pm for pm, _ in TABLE2_PRINTED.values()) - 1.19 + conv, 2) == 100.01


def test_table2_report_has_paper_columns():
    rows = {r["kind"]: r for r in table2("mobilenet_v1").rows}
    assert rows["pointwise"]["paper_macs_share"] == pytest.approx(0.9486)
    assert "paper_macs_share" not in table2("mobilenet_v1", 0.5).rows[0]


def test_counting_switches():
    weights = v1_params()  # Table 1's weights: 4,209,088
    c = cost("mobilenet_v1", counting=Counting(biases=True))
    assert c.params == weights + 1000
    bn = cost("mobilenet_v1", counting=Counting(batchnorm=True))
    # γ and β for every conv's output channels (Table 1): 2·(32 + Σ dw + Σ pw channels)
    assert bn.params == weights + 2 * sum(v1_conv_channels())


def test_layer_traffic_and_intensity():
    c = cost(parse("input 14 512*\ndw 3\npw 512\n"))
    dw, pw = c.layers
    assert (dw.input_elems, dw.output_elems, dw.weight_elems) == (14 * 14 * 512, 14 * 14 * 512, 4608)
    assert dw.intensity == pytest.approx(903_168 / (2 * 100_352 + 4608))
    assert pw.intensity > 10 * dw.intensity  # pointwise reuses each element far more


def test_fc_on_unpooled_map_flattens():
    c = cost(parse("input 4 8*\nfc 10!\n"))
    assert c.macs == 4 * 4 * 8 * 10
