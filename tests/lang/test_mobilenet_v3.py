"""The built-in MobileNetV3 specs against the published figures and hand arithmetic.

Published (../shared/reference/family.md): torchvision's weights tables (parameters counting
every tensor, `_ops` in billions of Mult-Adds, 1000 classes) and TF-slim's checkpoint table
(millions, weights only, 1001 classes, figures rounded or truncated to the printed digit)."""

import math

import pytest
from by_hand import V3_LARGE, V3_SMALL, v3_counts

import mobilecost
from mobilecost.engine.cost import Counting

ALL = Counting(biases=True, batchnorm=True)


def printed(x: float, digits: int) -> set:
    """What a table printing x to `digits` decimals may show: rounded, or truncated."""
    f = 10 ** digits
    return {round(x * f) / f, math.floor(x * f) / f}


@pytest.mark.parametrize("name,rows,last,head", [
    ("mobilenet_v3_large", V3_LARGE, 960, 1280), ("mobilenet_v3_small", V3_SMALL, 576, 1024),
    ("mobilenet_v3_small_1280", V3_SMALL, 576, 1280)])
@pytest.mark.parametrize("alpha", [1, "0.75", "0.5"])
def test_engine_equals_the_tables_by_hand(name, rows, last, head, alpha):
    classes = 1001 if name.endswith("1280") else 1000
    macs, w, bias, bn = v3_counts(rows, last, head, classes, alpha)
    assert mobilecost.cost(name, alpha).macs == macs
    assert mobilecost.cost(name, alpha).params == w
    assert mobilecost.cost(name, alpha, counting=ALL).params == w + bias + bn


@pytest.mark.parametrize("name,rows,last", [("mobilenet_v3_large_minimalistic", V3_LARGE, 960),
                                            ("mobilenet_v3_small_minimalistic", V3_SMALL, 576)])
def test_minimalistic_equals_the_tables_by_hand(name, rows, last):
    head = 1280 if "large" in name else 1024
    macs, w, bias, bn = v3_counts(rows, last, head, 1000, minimalistic=True)
    c = mobilecost.cost(name)
    assert (c.macs, c.params) == (macs, w)
    assert {l.layer.act for l in c.layers} <= {"relu", "none"}
    assert {l.layer.kernel for l in c.layers if l.layer.op == "dw"} == {3}
    assert not any(l.layer.op == "scale" for l in c.layers)


def test_large_reproduces_torchvision_and_tf_slim():
    # torchvision mobilenet_v3_large: 5,483,032 parameters, 0.217 G Mult-Adds
    macs, w, bias, bn = v3_counts(V3_LARGE, 960, 1280, 1000)
    assert w + bias + bn == 5_483_032
    assert mobilecost.cost("mobilenet_v3_large", counting=ALL).params == 5_483_032
    assert round(macs / 1e9, 3) == 0.217
    # TF-slim, depth multiplier 1: 217M, 5.4M (1001 classes: one more row of 1280 weights)
    assert round(macs / 1e6) == 217 and math.floor((w + 1280) / 1e5) / 10 == 5.4
    # TF-slim, 0.75: 155M, 4.0M
    macs, w, _, _ = v3_counts(V3_LARGE, 960, 1280, 1001, "0.75")
    assert round(macs / 1e6) == 155 and round(w / 1e6, 1) == 4.0
    assert mobilecost.cost("mobilenet_v3_large", "0.75").params + 1280 == w


def test_small_reproduces_torchvision_and_tf_slim_params_with_a_1280_head():
    # torchvision mobilenet_v3_small: 2,542,856 parameters, 0.057 G
    macs, w, bias, bn = v3_counts(V3_SMALL, 576, 1024, 1000)
    assert w + bias + bn == 2_542_856
    assert mobilecost.cost("mobilenet_v3_small", counting=ALL).params == 2_542_856
    assert round(macs / 1e9, 3) == 0.057
    # TF-slim: 2.9M at 1, 2.4M and 44M at 0.75. With the 1024 head: 2.53M and 2.03M, far off.
    assert round(w / 1e6, 2) == 2.53 and round(v3_counts(V3_SMALL, 576, 1024, 1001, "0.75")[1]
                                               / 1e6, 2) == 2.03
    # With a 1280 head and 1001 classes: 2,930,568 and 2,395,752 weights, 43.77M at 0.75.
    m1, w1, _, _ = v3_counts(V3_SMALL, 576, 1280, 1001)
    m75, w75, _, _ = v3_counts(V3_SMALL, 576, 1280, 1001, "0.75")
    assert 2.9 in printed(w1 / 1e6, 1) and 2.4 in printed(w75 / 1e6, 1) and 44 in printed(m75 / 1e6, 0)
    assert (mobilecost.cost("mobilenet_v3_small_1280").params,
            mobilecost.cost("mobilenet_v3_small_1280", "0.75").macs) == (w1, m75)
    # TF-slim's 66M at 1 fits neither head: 56.51M (1024) or 56.92M (1280)
    assert round(macs / 1e6, 2) == 56.51 and round(m1 / 1e6, 2) == 56.92


def test_minimalistic_against_tf_slim():
    # Large minimalistic: 209M, 3.9M (1001 classes)
    macs, w, _, _ = v3_counts(V3_LARGE, 960, 1280, 1001, minimalistic=True)
    assert round(macs / 1e6) == 209 and round(w / 1e6, 1) == 3.9
    # Small minimalistic: 2.0M parameters with the 1024 head (2.44M with 1280); 65M Mult-Adds
    # fits no variant (52.69M at most), as Small's 66M
    macs, w, _, _ = v3_counts(V3_SMALL, 576, 1024, 1001, minimalistic=True)
    assert round(w / 1e6, 1) == 2.0 and round(macs / 1e6, 2) == 52.29


def test_se_and_hard_swish_are_where_the_tables_put_them():
    c = mobilecost.cost("mobilenet_v3_large")
    scales = [l.layer for l in c.layers if l.layer.op == "scale"]
    assert len(scales) == sum(se for *_, se, _ in V3_LARGE) == 8
    assert [s.out_channels for s in scales] == [72, 120, 120, 480, 672, 672, 960, 960]
    assert c.layers[0].layer.act == "hswish"
