from fractions import Fraction as F

import pytest

from mobilecost.engine.closedform import closed_form
from mobilecost.engine.cost import Counting, cost
from mobilecost.errors import MobilecostError
from mobilecost.lang.parse import parse

# MobileNet v1 at α = 1, 224 (Table 1), by hand:
#  a (α¹ρ² terms): the first conv 3·3·3·32·112² = 10,838,016 plus the depthwise layers,
#     9·(32·112² + 64·56² + 128·56² + 128·28² + 256·28² + 256·14² + 5·512·14² + 512·7² + 1024·7²)
#     = 9·1,931,776 = 17,385,984; a = 28,224,000.
A = 3 * 3 * 3 * 32 * 112**2 + 9 * (32 * 112**2 + 64 * 56**2 + 128 * 56**2 + 128 * 28**2
                                   + 256 * 28**2 + 256 * 14**2 + 5 * 512 * 14**2 + 512 * 7**2
                                   + 1024 * 7**2)
#  b (α²ρ²): the pointwise layers M·N·D².
B = (32 * 64 * 112**2 + 64 * 128 * 56**2 + 128 * 128 * 56**2 + 128 * 256 * 28**2
     + 256 * 256 * 28**2 + 256 * 512 * 14**2 + 5 * 512 * 512 * 14**2 + 512 * 1024 * 7**2
     + 1024 * 1024 * 7**2)
#  c (α¹, no ρ): the classifier after the global pool, 1024·1000.
C = 1024 * 1000


def test_mobilenet_v1_coefficients_by_hand():
    assert A == 28_224_000
    f = closed_form("mobilenet_v1")
    assert {(t.alpha_power, t.rho_power) for t in f.macs.terms} == {(1, 2), (2, 2), (1, 0)}
    assert f.macs.coefficient(1, 2) == A
    assert f.macs.coefficient(2, 2) == B
    assert f.macs.coefficient(1, 0) == C
    assert A + B + C == 568_740_352  # the paper's 569M
    assert f.macs.format("MACs") == "MACs(α, ρ) = ρ²·(28,224,000·α + 539,492,352·α²) + 1,024,000·α"


def test_mobilenet_v1_parameters_by_hand():
    f = closed_form("mobilenet_v1")
    # α¹: first conv 3·3·3·32, depthwise 9·(32+64+128+128+256+256+5·512+512+1024), FC 1024·1000
    linear = 864 + 9 * 4960 + 1024 * 1000
    assert f.params.coefficient(1, 0) == linear == 1_069_504
    # α²: the pointwise layers' M·N
    quadratic = (32 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256 * 512
                 + 5 * 512 * 512 + 512 * 1024 + 1024 * 1024)
    assert f.params.coefficient(2, 0) == quadratic
    assert linear + quadratic == 4_209_088  # the paper's 4.2M


@pytest.mark.parametrize("a", [F(1), F(3, 4), F(1, 2), F(1, 4), F(5, 32), F(11, 16)])
@pytest.mark.parametrize("res", [224, 192, 160, 128, 96, 320])
def test_exact_where_rounding_does_not_bite(a, res):
    f = closed_form("mobilenet_v1")
    assert f.exact_at(a, res)
    c = cost("mobilenet_v1", a, res)
    rho = F(res, 224)
    assert f.macs(a, rho) == c.macs
    assert f.params(a, rho) == c.params


def test_where_rounding_bites():
    f = closed_form("mobilenet_v1")
    assert f.alpha_step == F(1, 32) and f.resolution_step == 32
    assert not f.exact_at(F(3, 10), 224) and not f.exact_at(F(1), 200)
    # int(0.3·32) = 9, not 9.6: the engine and the polynomial differ
    assert f.macs(F(3, 10), 1) != cost("mobilenet_v1", F(3, 10), 224).macs


def test_counting_switches():
    f = closed_form("mobilenet_v1", Counting(biases=True, batchnorm=True))
    c = cost("mobilenet_v1", F(1, 2), 160, Counting(True, True))
    assert f.params(F(1, 2), F(160, 224)) == c.params


def test_other_specs_exact_at_base():
    for name in ("mobilenet_v2", "conv_mobilenet", "shallow_mobilenet"):
        f = closed_form(name)
        assert f.macs(1, 1) == cost(name).macs
        assert f.params(1, 1) == cost(name).params


def test_fc_on_a_spatial_map_has_rho():
    f = closed_form(parse("name flat\ninput 32 3!\nconv 3 8 s2\nfc 10!\n"))
    # conv 3·3·3·8·16²·α·ρ² and fc (16²·8α)·10·ρ²
    assert f.macs.coefficient(1, 2) == 3 * 3 * 3 * 8 * 256 + 256 * 8 * 10
    assert f.params.coefficient(1, 2) == 256 * 8 * 10


def test_no_closed_form_for_valid_pooling():
    with pytest.raises(MobilecostError, match="no closed form"):
        closed_form(parse("name v\ninput 64 3!\nconv 3 8\nmaxpool 3 s2\nfc 10!\n"))
