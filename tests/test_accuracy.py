import math
from fractions import Fraction as F

import numpy as np
import pytest

from mobilecost import accuracy as acc
from mobilecost.cost import cost
from mobilecost.gridcost import sweep
from mobilecost.spec import load_spec, parse


def test_the_sixteen_released_checkpoints():
    rows = [p for p in acc.published() if p.spec == "mobilenet_v1" and p.kind == "checkpoint"]
    assert len(rows) == 16
    assert {(p.alpha, p.resolution) for p in rows} == {
        (F(a), r) for a in ("1", "0.75", "0.5", "0.25") for r in (224, 192, 160, 128)}
    by = {(p.alpha, p.resolution): (p.top1, p.top5) for p in rows}
    # ../shared/reference/mobilenet_v1.md, TF-slim table
    assert by[(F(1), 224)] == (70.9, 89.9)
    assert by[(F(1, 2), 160)] == (59.1, 81.9)
    assert by[(F(1, 4), 128)] == (41.5, 66.3)


def test_every_row_names_its_source():
    assert all(p.source.strip() for p in acc.published())
    paper = {(p.spec, p.alpha, p.resolution): p.top1 for p in acc.published() if p.kind == "paper"}
    assert paper[("mobilenet_v1", F(1), 224)] == 70.6  # Table 6
    assert paper[("mobilenet_v1", F(1), 128)] == 64.4  # Table 7
    assert paper[("conv_mobilenet", F(1), 224)] == 71.7  # Table 4


def _design_and_targets(metric):
    rows = [p for p in acc.published() if p.spec == "mobilenet_v1" and p.kind == "checkpoint"]
    a = np.array([float(p.alpha) for p in rows])
    m = np.array([float(cost("mobilenet_v1", p.alpha, p.resolution).macs) for p in rows])
    y = np.array([getattr(p, metric) for p in rows])
    return np.column_stack([np.ones(16), np.log(m), np.log(a) ** 2]), y


@pytest.mark.parametrize("metric", ["top1", "top5"])
def test_fit_is_least_squares(metric):
    # At the least-squares solution the residual is orthogonal to every column: Xᵀr = 0.
    x, y = _design_and_targets(metric)
    coef = np.array(acc.model("mobilenet_v1", metric).coef)
    r = y - x @ coef
    assert np.abs(x.T @ r).max() < 1e-8 * np.abs(x.T @ y).max()
    assert coef[1] > 0 and coef[2] < 0  # more compute helps; narrow networks drop extra


@pytest.mark.parametrize("width_term", [True, False])
@pytest.mark.parametrize("metric", ["top1", "top5"])
def test_leave_one_out_matches_the_hat_matrix_identity(metric, width_term):
    # For linear least squares the leave-one-out residual is r_i / (1 - h_ii), H = X (XᵀX)⁻¹ Xᵀ.
    x, y = _design_and_targets(metric)
    if not width_term:
        x = x[:, :2]  # the paper's plain log-linear law
    h = x @ np.linalg.inv(x.T @ x) @ x.T
    coef = np.linalg.inv(x.T @ x) @ x.T @ y
    expected = -(y - x @ coef) / (1 - np.diag(h))  # predicted - published
    got = np.array([p.error for p in acc.leave_one_out("mobilenet_v1", metric, width_term)])
    assert got == pytest.approx(expected, abs=1e-9)


def test_leave_one_out_error_is_reported_honestly():
    pts = acc.leave_one_out("mobilenet_v1", "top1")
    assert acc.rmse(pts) == pytest.approx(math.sqrt(sum(p.error ** 2 for p in pts) / 16))
    assert acc.rmse(pts) < 1.5  # the model is worth having: a plain mean is off by ~8 points


def test_grid_marks_published_and_estimated():
    df = sweep("mobilenet_v1", [F(1), F(9, 10), F(1, 5)], [224, 200, 100])
    src = {(a, r): (s, t) for a, r, s, t in zip(df.alpha, df.resolution, df.accuracy_source, df.top1)}
    assert src[(1.0, 224)] == ("published", 70.9)
    assert src[(0.9, 200)][0] == "estimated"
    assert src[(1.0, 200)][0] == "estimated"
    # outside the fitted box: nothing, not a guess
    assert all(isinstance(src[k][0], float) and math.isnan(src[k][1])
               for k in [(0.2, 224), (1.0, 100), (0.9, 100)])


def test_estimate_equals_the_equation():
    m = acc.model("mobilenet_v1", "top1")
    df = sweep("mobilenet_v1", [F(3, 5)], [176])
    macs = cost("mobilenet_v1", F(3, 5), 176).macs
    c0, c1, c2 = m.coef
    assert df.top1[0] == pytest.approx(c0 + c1 * math.log(macs) + c2 * math.log(0.6) ** 2, rel=1e-12)


def test_other_specs_get_published_points_only():
    df = sweep("mobilenet_v2", [F(1), F(3, 4)], [224, 192])
    got = {(a, r): t for a, r, t in zip(df.alpha, df.resolution, df.top1)}
    assert got[(1.0, 224)] == 72.0
    assert sum(not math.isnan(v) for v in got.values()) == 1


def test_a_spec_file_with_the_same_layers_is_recognised():
    text = load_spec("mobilenet_v1").format().replace("name mobilenet_v1", "name my_copy")
    assert acc.builtin_match(parse(text)) == "mobilenet_v1"
    changed = text.replace("fc 1000!", "fc 10!")
    df = sweep(parse(changed), [F(1)], [224])
    assert math.isnan(df.top1[0])
