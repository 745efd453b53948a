import random
from fractions import Fraction as F

import numpy as np
import pytest
from by_hand import v1_macs
from engines import assert_cell_equal

import mobilecost
from mobilecost.engine.cost import Counting, cost
from mobilecost.engine.grid import grid_cost
from mobilecost.engine.sweep import sweep
from mobilecost.errors import MobilecostError
from mobilecost.lang.parse import parse


def _check_against_cost(spec, alphas, resolutions, counting=Counting()):
    g = grid_cost(spec, alphas, resolutions, counting)
    for i, a in enumerate(alphas):
        for j, r in enumerate(resolutions):
            assert_cell_equal(g, i, j, cost(spec, a, r, counting), (a, r))


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "conv_mobilenet",
                                  "shallow_mobilenet", "mobilenet_v3_large", "mobilenet_v3_small",
                                  "mobilenet_v3_small_minimalistic"])
def test_random_configurations_equal_the_scalar_engine(name):
    rng = random.Random(1704)
    alphas = sorted({F(rng.randint(1, 2000), 1000) for _ in range(12)})
    resolutions = sorted({rng.randint(32, 400) for _ in range(12)})
    _check_against_cost(name, alphas, resolutions)


def test_counting_switches_are_honoured():
    _check_against_cost("mobilenet_v1", [F(1), F(37, 100)], [224, 97], Counting(True, True))
    _check_against_cost("mobilenet_v2", [F(1), F(37, 100)], [224, 97], Counting(True, True))


def test_fc_on_a_map_larger_than_one_pixel():
    # No global pool: the FC layer sees a 4×4 (or larger) map, so its cost depends on resolution.
    spec = parse("name flat\ninput 32 3!\nconv 3 8 s2\nmaxpool 2\nfc 10!\n")
    _check_against_cost(spec, [F(1), F(1, 2), F(3, 8)], [32, 33, 40, 64])
    g = grid_cost(spec, [F(1)], [32])
    # by hand: conv 3·3·3·8·16·16 = 55,296; maxpool 2 -> 8×8×8; fc 8·8·8·10 = 5,120
    assert int(g.macs[0, 0]) == 55_296 + 5_120


def test_valid_padding_and_fixed_pools():
    spec = parse("name v\ninput 64 3!\nconv 5 16 s2 pad=valid\navgpool 3 s2\npw 32\n"
                 "residual {\n  dw 3\n  pw 32\n}\navgpool global\nfc 5!\n")
    _check_against_cost(spec, [F(1), F(3, 4), F(1, 5)], [20, 21, 64, 101])


def test_published_figures_of_mobilenet_v1():
    df = sweep()
    assert len(df) == 16
    got = {(a, r): m for a, r, m in zip(df.alpha, df.resolution, df.macs)}
    # The paper's Tables 6 and 7 (million Mult-Adds, printed rounded or truncated).
    for (a, r), printed in {(1.0, 224): 569, (0.75, 224): 325, (0.5, 224): 149, (0.25, 224): 41,
                            (1.0, 192): 418, (1.0, 160): 290, (1.0, 128): 186}.items():
        assert abs(got[(a, r)] / 1e6 - printed) < 1, (a, r)
    assert list(df.alpha[:4]) == [1.0] * 4 and list(df.resolution[:4]) == [224, 192, 160, 128]
    assert set(df.accuracy_source) == {"published"}


def test_columns_and_shares():
    df = mobilecost.sweep("mobilenet_v1", [F(1)], [224])
    assert list(df.columns) == [
        "spec", "alpha", "alpha_exact", "resolution", "rho", "macs", "params", "macs_share_conv",
        "macs_share_depthwise", "macs_share_pointwise", "macs_share_fc", "elementwise_ops", "activation_elems",
        "peak_activation_elems", "top1", "top1_low", "top1_high", "top5", "top5_low",
        "top5_high", "accuracy_source"]
    row = df.iloc[0]
    # Table 2 as corrected: the first conv is 10,838,016 of 568,740,352 Mult-Adds (Table 1).
    total = v1_macs()
    assert row.macs_share_conv == pytest.approx(3 * 3 * 3 * 32 * 112 * 112 / total, rel=1e-12)
    assert row.macs_share_fc == pytest.approx(1024 * 1000 / total, rel=1e-12)
    assert row.top1 == 70.9 and row.top5 == 89.9
    assert row.top1_low == row.top1_high == 70.9  # published: no interval


def test_rho_is_resolution_over_base():
    df = sweep("mobilenet_v1", [1], [160])
    assert df.rho[0] == pytest.approx(160 / 224)


def test_large_grid_is_exact_on_random_points():
    alphas = [F(i, 1000) for i in range(1, 1001)]
    resolutions = list(range(32, 1032))
    g = grid_cost("mobilenet_v1", alphas, resolutions)
    assert g.macs.shape == (1000, 1000)
    rng = random.Random(7)
    for _ in range(25):
        i, j = rng.randrange(1000), rng.randrange(1000)
        c = cost("mobilenet_v1", alphas[i], resolutions[j])
        assert (int(g.macs[i, j]), int(g.params[i, j])) == (c.macs, c.params)
        assert int(g.peak_activation_elems[i, j]) == c.peak_activation_elems


def test_too_small_resolution_is_an_error_not_a_dropped_row():
    spec = parse("name small\ninput 32 3!\nconv 3 8 s2\navgpool 4\nfc 10!\n")
    with pytest.raises(MobilecostError, match="too small"):
        grid_cost(spec, [1], [32, 6, 4])


def test_grid_limit_names_the_size():
    with pytest.raises(MobilecostError, match="2,000,000 configurations"):
        grid_cost("mobilenet_v1", [F(i, 1000) for i in range(1, 1001)], range(1, 2001),
                  max_configs=1_000_000)


def test_structure_changing_with_alpha():
    # MobileNetV2 at small α: 'ir 16 t=1' after a 32-channel conv gains a residual add when
    # both round to 8 channels, so the layer list differs between α values.
    low = cost("mobilenet_v2", F(1, 10), 224)
    high = cost("mobilenet_v2", F(1), 224)
    assert len(low.layers) != len(high.layers)
    _check_against_cost("mobilenet_v2", [F(1, 10), F(1)], [224, 100])


def test_dataframe_dtypes_are_exact_integers():
    df = sweep("mobilenet_v1", [F(1, 3)], [129])
    assert df.macs.dtype == np.int64 and df.params.dtype == np.int64
    assert df.macs[0] == cost("mobilenet_v1", F(1, 3), 129).macs
