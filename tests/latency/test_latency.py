"""The latency model's arithmetic, fit and validation, on data made from known coefficients."""

from fractions import Fraction
from itertools import combinations, product

import numpy as np
import pytest
from by_hand import v1_macs

from mobilecost.engine.axes import parse_latency_ms
from mobilecost.errors import MobilecostError
from mobilecost.latency import whole as lt
from mobilecost.latency.design import spread_subset
from mobilecost.latency.features import network_features
from mobilecost.latency.measurements import Config, Point
from mobilecost.latency.solve import nnls
from mobilecost.latency.validation import (
    ErrorSummary,
    baselines,
    fit_affine_baseline,
    fit_macs_baseline,
    held_out,
    leave_one_out,
)

GRID = [Config("mobilenet_v1", Fraction(a), r, b)
        for a, r, b in product(("1", "0.75", "0.5", "0.25"), (224, 192, 160, 128), (1,))]
# 25 GMAC/s dense, 4 GMAC/s depthwise, 12 GB/s, 40 µs per layer (in ms per unit)
THETA = (1 / 25e6, 1 / 4e6, 1 / 12e6, 0.040)


def synthetic(configs, theta=THETA, form="sum"):
    model = lt.Fit(theta, form, "float32", ())
    return [Point(c, lt.predict_ms(model, c)) for c in configs]


def test_first_layer_features_by_hand():
    # mobilenet_v1 1.0/224, first layer: 3×3×3×32 conv, stride 2: 224²·3 in, 112²·32 out, 864 weights
    f = network_features(Config("mobilenet_v1", Fraction(1), 224, 1))
    assert f.macs[0] == 3 * 3 * 3 * 32 * 112 * 112
    assert f.bytes[0] == (224 * 224 * 3 + 112 * 112 * 32 + 864) * 4
    assert f.layers == 29  # 27 convolutions, the pool and the FC
    assert f.total_macs == v1_macs()  # Table 1, row by row
    # batch 2 doubles Mult-Adds and activations, not the weights; float16 halves the bytes
    f2 = network_features(Config("mobilenet_v1", Fraction(1), 224, 2), "float16")
    assert f2.macs[0] == 2 * 3 * 3 * 3 * 32 * 112 * 112
    assert f2.bytes[0] == ((224 * 224 * 3 + 112 * 112 * 32) * 2 + 864) * 2


def test_prediction_is_the_equation():
    # one configuration worked out term by term from the per-layer features
    c = Config("mobilenet_v1", Fraction(1, 2), 160, 1)
    f = network_features(c)
    dense = sum(m for m, g in zip(f.macs, f.group) if g == 0)
    dw = sum(m for m, g in zip(f.macs, f.group) if g == 1)
    expected = dense * THETA[0] + dw * THETA[1] + f.bytes.sum() * THETA[2] + 29 * THETA[3]
    assert lt.predict_ms(lt.Fit(THETA, "sum", "float32", ()), c) == pytest.approx(expected, rel=1e-12)


def test_nnls_matches_exhaustive_search():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.normal(size=(8, 4))
        b = rng.normal(size=8)
        best, best_r = None, np.inf
        for k in range(5):  # every subset of free variables, unconstrained lstsq on it
            for cols in combinations(range(4), k):
                x = np.zeros(4)
                if cols:
                    x[list(cols)] = np.linalg.lstsq(a[:, cols], b, rcond=None)[0]
                if np.all(x >= 0) and (r := np.linalg.norm(a @ x - b)) < best_r:
                    best, best_r = x, r
        x = nnls(a, b)
        assert np.all(x >= 0)
        assert np.linalg.norm(a @ x - b) == pytest.approx(best_r, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(x, best, atol=1e-9)


def test_fit_recovers_known_coefficients():
    model = lt.fit(synthetic(GRID))
    np.testing.assert_allclose(model.theta, THETA, rtol=1e-6)
    assert model.determined == (True, True, True, True)


def test_fit_on_six_points_recovers_and_predicts_the_rest():
    pts = synthetic(GRID)
    cal = spread_subset(pts, 6)
    model = lt.fit(cal)
    np.testing.assert_allclose(model.theta, THETA, rtol=1e-6)
    for p in pts:
        assert lt.predict_ms(model, p.config) == pytest.approx(p.latency_ms, rel=1e-6)


def test_fit_keeps_coefficients_non_negative():
    # latency that falls with depthwise work would need a negative rate: it is clamped to 0
    theta = (1 / 25e6, 0.0, 1 / 12e6, 0.040)
    pts = synthetic(GRID, theta)
    pts = [Point(p.config, p.latency_ms - 0.2 * network_features(p.config).macs[1] / 4e6) for p in pts]
    model = lt.fit(pts)
    assert min(model.theta) >= 0
    assert model.theta[1] == 0


def test_max_form_recovers_its_own_data():
    pts = synthetic(GRID, form="max")
    model = lt.fit(pts, "max")
    for p in pts:
        assert lt.predict_ms(model, p.config) == pytest.approx(p.latency_ms, rel=1e-6)


def test_relative_error_weighting():
    # two points, one coefficient in effect: a network with only a per-layer cost. The relative
    # least-squares answer for t = L·c with targets t1, t2 is c = Σ(L/t) / Σ(L/t)².
    pts = [Point(GRID[0], 10.0), Point(GRID[1], 20.0)]
    k = fit_macs_baseline(pts)
    r = [network_features(p.config).total_macs / p.latency_ms for p in pts]
    assert k == pytest.approx((r[0] + r[1]) / (r[0] ** 2 + r[1] ** 2))
    # exactly proportional data: the baseline recovers k
    k0 = 2e-8
    exact = [Point(c, k0 * network_features(c).total_macs) for c in GRID[:5]]
    assert fit_macs_baseline(exact) == pytest.approx(k0)


def test_too_few_points_says_how_many():
    with pytest.raises(MobilecostError, match="at least 5 measured configurations"):
        lt.fit(synthetic(GRID[:4]))


def test_leave_one_out_exact_and_perturbed():
    pts = synthetic(GRID[:8])
    v = leave_one_out(pts)
    assert v.model.n == 8 and v.model.within == 1.0 and v.model.worst_abs < 1e-6
    # one point 30% slow: its own left-out prediction (fitted on exact data) is off by 1/1.3 − 1
    bad = list(pts)
    bad[3] = Point(pts[3].config, pts[3].latency_ms * 1.3)
    v = leave_one_out(bad)
    assert v.predictions[3].error == pytest.approx(1 / 1.3 - 1, rel=1e-5)
    assert v.model.within < 1.0
    assert [p.point for p in v.predictions] == bad


def test_error_summary():
    s = ErrorSummary.of([0.05, -0.1, 0.2, -0.01])
    assert (s.n, s.within, s.median_abs, s.worst_abs) == (4, 0.75, pytest.approx(0.075), 0.2)


def test_spread_subset_spans_the_grid():
    pts = synthetic(GRID)
    cal = spread_subset(pts, 6)
    labels = [p.config.label for p in cal]
    assert labels[:2] == ["mobilenet_v1 1/224", "mobilenet_v1 0.25/128"]
    assert {"mobilenet_v1 1/128", "mobilenet_v1 0.25/224"} <= set(labels)
    assert len(set(labels)) == 6
    v = held_out(pts, cal)
    assert v.model.n == 10 and not {p.point.config for p in v.predictions} & {p.config for p in cal}


def test_undetermined_kind_refuses_to_predict():
    # conv_mobilenet has no depthwise layers: a target fitted on it cannot price them
    cfgs = [Config("conv_mobilenet", Fraction(a), r) for a in ("1", "0.5", "0.25") for r in (224, 160)]
    model = lt.fit(synthetic(cfgs))
    assert model.determined[1] is False
    with pytest.raises(MobilecostError, match="without depthwise layers"):
        lt.predict_ms(model, GRID[0])


@pytest.mark.parametrize("text,ms", [("5ms", 5.0), ("5", 5.0), ("0.5 s", 500.0), ("800us", 0.8), ("2.5µs", 0.0025)])
def test_parse_latency(text, ms):
    assert parse_latency_ms(text) == pytest.approx(ms)


@pytest.mark.parametrize("text", ["fast", "5 min", "0ms", "-1ms", ""])
def test_parse_latency_rejects(text):
    with pytest.raises(MobilecostError):
        parse_latency_ms(text)


def test_the_affine_baseline_recovers_an_affine_device():
    """Latencies made exactly as 2 ms + 3e-8 ms per Mult-Add give back c0 = 2 and k = 3e-8, and
    predict a held-out configuration exactly; the k·MACs baseline cannot (it has no overhead)."""
    from fractions import Fraction as F

    configs = [Config("mobilenet_v1", F(a), r, 1)
               for a, r in [(1, 224), (F(1, 4), 128), (F(1, 2), 160), (F(3, 4), 192), (1, 128)]]
    pts = [Point(c, 2.0 + 3e-8 * network_features(c).total_macs) for c in configs]
    c0, k = fit_affine_baseline(pts)
    assert c0 == pytest.approx(2.0, rel=1e-9) and k == pytest.approx(3e-8, rel=1e-9)
    test = Config("mobilenet_v1", F(1, 2), 224, 1)
    (prop, affine), = baselines(pts, [Point(test, 1.0)])
    assert affine == pytest.approx(2.0 + 3e-8 * 149_497_088, rel=1e-9)  # 1/2-224: 149,497,088 MACs (Table 6)
    assert abs(prop / affine - 1) > 0.05
