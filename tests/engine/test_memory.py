"""Bytes at a dtype: a layer's stored weight bytes by hand, and the grid's column
(`engine.memory`) against the per-configuration engine, configuration by configuration.
(The int8 count against the initializers of real ONNX Runtime files: tests/torch/test_quantize.py.)"""

from fractions import Fraction

import numpy as np
import pytest

from mobilecost import cost
from mobilecost.dtypes import lookup
from mobilecost.engine.memory import grid_weight_bytes
from mobilecost.engine.sweep import sweep


def test_first_layer_of_v1_by_hand():
    # conv 3×3×3×32: 864 weights, 32 output channels, 32 biases (batchnorm folded)
    first = cost("mobilenet_v1").layers[0]
    assert first.stored_weight_bytes("fp32") == (864 + 32) * 4
    assert first.stored_weight_bytes("fp16") == (864 + 32) * 2
    # int8: one byte a weight; a float32 scale and an int8 zero point per output channel;
    # an int32 bias with a float32 scale and an int32 zero point per channel
    assert first.stored_weight_bytes("int8") == 864 + 32 * (4 + 1) + 32 * (4 + 4 + 4)
    # the maps read and written: 224×224×3 in, 112×112×32 out
    assert first.activation_bytes("int8") == 224 * 224 * 3 + 112 * 112 * 32
    assert first.activation_bytes("fp32") == 4 * (224 * 224 * 3 + 112 * 112 * 32)


def test_fc_of_v1_keeps_its_bias_and_a_layer_without_weights_stores_nothing():
    layers = cost("mobilenet_v1").layers
    fc = layers[-1]
    assert fc.stored_weight_bytes("int8") == 1024 * 1000 + 1000 * 5 + 1000 * 12
    pool = layers[-2]
    assert pool.stored_weight_bytes("int8") == 0 and pool.stored_weight_bytes("fp32") == 0


@pytest.mark.parametrize("spec", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
                                  "mobilenet_v3_small", "mnasnet_a1",
                                  "mobilenetv4_hybrid_medium"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "int8"])
def test_the_grid_column_is_the_engine_per_configuration(spec, dtype):
    alphas = [Fraction(1, 4), Fraction(1, 3), Fraction(3, 4), Fraction(1)]
    res = [96, 160, 224]
    grid = grid_weight_bytes(spec, alphas, res, dtype)
    want = np.array([[cost(spec, a, r).weight_bytes(dtype) for r in res] for a in alphas])
    assert (grid == want).all()


def test_sweep_adds_bytes_only_when_asked():
    plain = sweep("mobilenet_v2", [0.5, 1], [160, 224])
    assert "weight_bytes" not in plain.columns
    df = sweep("mobilenet_v2", [0.5, 1], [160, 224], dtype="int8")
    assert df["weight_bytes"].tolist() == [cost("mobilenet_v2", a, r).weight_bytes("int8")
                                           for a in (0.5, 1) for r in (160, 224)]
    assert (df["peak_activation_bytes"] == df["peak_activation_elems"]).all()
    half = sweep("mobilenet_v2", [0.5, 1], [160, 224], dtype="fp16")
    assert (half["activation_bytes"] == 2 * half["activation_elems"]).all()


def test_int8_stores_about_a_quarter_of_fp32():
    # int8 weights are a quarter of fp32's; per-channel scales and int32 biases add a little
    for spec in ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large"):
        c = cost(spec)
        ratio = c.weight_bytes("int8") / c.weight_bytes("fp32")
        assert 0.25 < ratio < 0.30, (spec, ratio)
    assert lookup("int8").quantized and not lookup("fp16").quantized
