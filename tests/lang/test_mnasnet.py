"""The built-in MnasNet-B1 against torchvision's weights tables and hand arithmetic."""

import pytest
from by_hand import mnasnet_counts

import mobilecost
from mobilecost.engine.cost import Counting


@pytest.mark.parametrize("alpha,params,gmacs", [
    # torchvision mnasnet0_5, 0_75, 1_0, 1_3: num_params (every tensor) and _ops (G Mult-Adds)
    ("0.5", 2_218_512, 0.104), ("0.75", 3_170_208, 0.215), ("1", 4_383_312, 0.314),
    ("1.3", 6_282_256, 0.526)])
def test_mnasnet_reproduces_torchvision(alpha, params, gmacs):
    macs, w, bn, bias = mnasnet_counts(alpha)
    assert w + bn + bias == params  # the hand arithmetic against the published count
    assert round(macs / 1e9, 3) == gmacs
    c = mobilecost.cost("mnasnet_b1", alpha)
    assert (c.macs, c.params) == (macs, w)
    assert mobilecost.cost("mnasnet_b1", alpha, counting=Counting(True, True)).params == params


def test_mnasnet_head_does_not_scale_and_the_first_block_is_linear():
    c = mobilecost.cost("mnasnet_b1", "0.5")
    pws = [l.layer for l in c.layers if l.layer.op == "pw"]
    assert pws[0].out_channels == 8 and pws[0].act == "none"  # 16·0.5, linear
    assert pws[-1].out_channels == 1280 and pws[-1].act == "relu"  # not 640
