"""MnasNet-A1 and squeeze=in: the squeeze width from the block's input (TensorFlow's reference).

The second counter here follows TensorFlow's reference code (tensorflow/tpu,
models/official/mnasnet: mnasnet_models.mnasnet_a1 and mnasnet_model.MnasBlock) line by line:
the block strings decoded by hand, round_filters on the block widths, the expansion in·e,
squeeze-and-excitation to max(1, int(input_filters · 0.25)) with biases, a 1×1 head to 1280
and a 1000-way classifier with bias. The paper (arXiv:1807.11626, Table 1): 312M Mult-Adds,
3.9M parameters.
"""

from fractions import Fraction as F

import pytest

import mobilecost
from mobilecost.errors import SpecError
from mobilecost.lang.load import load_spec
from mobilecost.lang.parse import parse
from mobilecost.lang.spec import format_spec

BLOCKS = [  # repeats, kernel, stride, expansion, in, out, se ratio
    (1, 3, 1, 1, 32, 16, None), (2, 3, 2, 6, 16, 24, None), (3, 5, 2, 3, 24, 40, 0.25),
    (4, 3, 2, 6, 40, 80, None), (2, 3, 1, 6, 80, 112, 0.25), (3, 5, 2, 6, 112, 160, 0.25),
    (1, 3, 1, 6, 160, 320, None)]


def round_filters(c, multiplier):
    filters = c * multiplier
    new = max(8, int(filters + 4) // 8 * 8)
    return new + 8 if new < 0.9 * filters else new


def tf_reference(multiplier=1, res=224):
    """(Mult-Adds, weights, biases, batchnorm channels) of MnasNet-A1 as TF builds it."""
    side = -(-res // 2)
    stem = round_filters(32, multiplier)
    macs, weights, biases, bn = 27 * stem * side * side, 27 * stem, 0, stem
    for repeats, k, stride, e, i, o, se in BLOCKS:
        i, o = round_filters(i, multiplier), round_filters(o, multiplier)
        for r in range(repeats):
            s = stride if r == 0 else 1
            cin = i if r == 0 else o
            hidden = cin * e
            if e != 1:
                macs += cin * hidden * side * side
                weights += cin * hidden
                bn += hidden
            side = -(-side // s)
            macs += k * k * hidden * side * side
            weights += k * k * hidden
            bn += hidden
            if se:
                sq = max(1, int(cin * se))
                macs += 2 * hidden * sq
                weights += 2 * hidden * sq
                biases += sq + hidden
            macs += hidden * o * side * side
            weights += hidden * o
            bn += o
    macs += o * 1280 * side * side + 1280 * 1000
    weights += o * 1280 + 1280 * 1000
    return macs, weights, biases + 1000, bn + 1280


@pytest.mark.parametrize("alpha", [F(1), F(1, 2), F(3, 4), F(7, 5)])
@pytest.mark.parametrize("res", [224, 192, 128])
def test_mnasnet_a1_against_tensorflows_reference(alpha, res):
    macs, weights, biases, bn = tf_reference(alpha, res)
    c = mobilecost.cost("mnasnet_a1", alpha, res)
    assert (c.macs, c.params) == (macs, weights)
    full = mobilecost.cost("mnasnet_a1", alpha, res, mobilecost.Counting(True, True))
    assert full.params == weights + biases + 2 * bn


def test_mnasnet_a1_against_the_paper():
    c = mobilecost.cost("mnasnet_a1", 1, 224, mobilecost.Counting(True, True))
    assert c.macs == 311_579_072 and round(c.macs / 1e6) == 312  # the paper's 312M
    assert round(c.params / 1e6, 1) == 3.9  # the paper's 3.9M (3,887,038)


def test_squeeze_from_the_input():
    # 40 in, t=3: hidden 120. squeeze=in: int(40 / 4) = 10; the default: make_divisible(30, 8) = 32
    base = "name t\ninput 28 40!\nir 40 t=3 se=4 gate=sigmoid{}\n"
    widths = lambda text: [x.out_channels for x in parse(text).build() if x.kernel == 1]  # noqa: E731
    assert widths(base.format(" squeeze=in"))[1] == 10
    assert widths(base.format(""))[1] == 32
    s = parse(base.format(" squeeze=in"))
    assert "squeeze=in" in format_spec(s) and parse(format_spec(s)) == s
    with pytest.raises(SpecError, match="squeeze must be one of exp, in"):
        parse(base.format(" squeeze=out"))
    # a block input of 3 with ratio 4 squeezes to max(1, 0) = 1
    assert widths("name t\ninput 8 3!\nir 3 t=2 se=4 squeeze=in\n")[1] == 1


def test_mnasnet_a1_is_in_the_spec_list():
    assert "mnasnet_a1" in mobilecost.builtin_names()
    assert load_spec("mnasnet_a1").name == "mnasnet_a1"
