"""The roofline (accelerator) latency model: it recovers a device set by hand from whole-network
times alone, refuses calibration sets that cannot determine it, and its CLI errors are one line.

The synthetic device's times are computed here layer by layer from the cost engine's rows, by
the formula written out in `device_ms`, not by the model's own code."""

import json
import math

import pytest

from mobilecost.engine.cost import cost
from mobilecost.errors import MobilecostError
from mobilecost.latency import roofline, roofline_loo
from mobilecost.latency.measurements import Config, Point
from tests.cli_helpers import one_error_line, run

# A hand-set device: 2 TMAC/s dense, depthwise at 2% of it, 100 GB/s, 20 µs a layer,
# half the peak at 10,000 outputs, batchnorm and activations unfused; float32.
PEAK, DW_SHARE, BANDWIDTH, OVERHEAD_S, FILL_HALF, UNFUSED = 2e12, 0.02, 1e11, 20e-6, 1e4, 1


def device_ms(spec, alpha, res, batch=1, width=4):
    """Σ over layers of max(macs / (P · share · fill), bytes / B) + overhead, in ms."""
    total = 0.0
    for c in cost(spec, alpha, res).layers:
        kind = c.kind.latency_group
        work = batch * c.output_elems
        fill = work / (work + FILL_HALF)
        share = DW_SHARE if kind == "depthwise" else 1.0
        compute = c.macs * batch / (PEAK * share * fill) if c.macs else 0.0
        moved = c.bytes_moved(batch, width)
        if c.macs:  # batchnorm and the activation, each read and written once
            moved += UNFUSED * 2 * width * batch * (c.output_elems * c.layer.bn + c.elementwise_ops)
        total += max(compute, moved / BANDWIDTH) + OVERHEAD_S
    return 1e3 * total


CALIBRATION = [("mobilenet_v1", a, r) for a in ("1", "0.5", "0.25") for r in (224, 128)] + \
              [("mobilenet_v2", a, r) for a in ("1.4", "0.75", "0.35") for r in (224, 160)]


def points(configs):
    return [Point(Config(s, a, r), device_ms(s, a, r)) for s, a, r in configs]


def test_the_fit_recovers_a_hand_set_device():
    model = roofline.fit(points(CALIBRATION), "float32")
    v = model.values()
    assert v["peak"] == pytest.approx(PEAK, rel=1e-6)
    assert v["depthwise_efficiency"] == pytest.approx(DW_SHARE, rel=1e-6)
    assert v["bandwidth"] == pytest.approx(BANDWIDTH, rel=1e-6)
    assert v["overhead"] == pytest.approx(OVERHEAD_S, rel=1e-6)
    assert v["fill_half"] == FILL_HALF and v["unfused"] == UNFUSED
    assert model.implausible() == [] and model.unbounded() == []
    # and it carries to families it never saw, as the device does
    for spec, a, r in (("mobilenet_v3_large", "1", 224), ("mnasnet_b1", "0.5", 192),
                       ("mobilenetv4_conv_small", "1", 256)):
        assert model.predict_ms(Config(spec, a, r)) == pytest.approx(device_ms(spec, a, r), rel=1e-6)


def hand_share(spec, alpha, res, batch=1, width=4):
    """The share of the hand-set device's time in layers bound by compute (their fixed cost
    included), layer by layer from the cost engine's counts."""
    on = total = 0.0
    for c in cost(spec, alpha, res).layers:
        work = batch * c.output_elems
        share = DW_SHARE if c.kind.latency_group == "depthwise" else 1.0
        compute = c.macs * batch / (PEAK * share * work / (work + FILL_HALF)) if c.macs else 0.0
        moved = c.bytes_moved(batch, width)
        if c.macs:
            moved += UNFUSED * 2 * width * batch * (c.output_elems * c.layer.bn + c.elementwise_ops)
        t = max(compute, moved / BANDWIDTH) + OVERHEAD_S
        total += t
        on += t if c.macs and compute >= moved / BANDWIDTH else 0.0
    return on / total


def hand_set_fit(points=()):
    theta = (1e3 / PEAK, 1e3 / (PEAK * DW_SHARE), 1e3 / BANDWIDTH, 1e3 * OVERHEAD_S)
    return roofline.RooflineFit(theta, FILL_HALF, UNFUSED, "float32", tuple(points), (True,) * 4)


def test_the_compute_share_is_the_time_on_the_compute_roof():
    configs = [("mobilenet_v1", "1", 224), ("mobilenet_v3_large", "0.75", 192),
               ("conv_mobilenet", "1", 224), ("shallow_mobilenet", "0.5", 160)]
    got = hand_set_fit().compute_shares([Config(*c) for c in configs])
    assert got == pytest.approx([hand_share(*c) for c in configs], rel=1e-9)
    # v1's layers are mostly memory-bound on this device; the full-convolution MobileNet's
    # are mostly compute-bound
    assert got[0] < 0.5 < got[2]
    # a fit that carries no points has no range to be outside of
    assert hand_set_fit().share_range is None
    assert not hand_set_fit().off_calibrated_share(Config("conv_mobilenet", "1", 224))


def test_a_network_leaning_on_a_roof_the_points_did_not_is_marked(tmp_path):
    csv = write_csv(tmp_path / "m.csv", points(CALIBRATION))
    assert run("calibrate", csv, "--target", "acc", "--targets-dir", tmp_path / "t").exit_code == 0
    shares = [hand_share(*c) for c in CALIBRATION]
    lo, hi = min(shares) - roofline.SHARE_MARGIN, max(shares) + roofline.SHARE_MARGIN
    marked = 0
    for spec, a, r in (("mobilenet_v3_large", "1", 224), ("conv_mobilenet", "1", 224),
                       ("shallow_mobilenet", "1", 224), ("mobilenet_v1", "0.75", 192)):
        p = run("predict", spec, "-a", a, "-r", str(r), "--target", "acc",
                "--targets-dir", tmp_path / "t", "--format", "json")
        assert p.exit_code == 0, p.output
        why = json.loads(p.stdout)[0]["extrapolated"]
        outside = not lo <= hand_share(spec, a, r) <= hi
        assert ("compute share" in why) is outside, (spec, why)
        assert ("spec" in why) is (spec != "mobilenet_v1"), (spec, why)
        marked += outside
    assert marked == 2  # the full convolutions above the points' range, shallow below it
    text = run("predict", "conv_mobilenet", "--target", "acc", "--targets-dir", tmp_path / "t")
    assert "compute roof more than 5 percentage points outside" in " ".join(text.output.split())
    # sweep --target says the same of its column latency_extrapolated
    sw = run("sweep", "conv_mobilenet", "-a", "1", "-r", "224", "--target", "acc",
             "--targets-dir", tmp_path / "t", "-f", "csv")
    assert sw.exit_code == 0, sw.output
    assert "compute share" in sw.stdout.splitlines()[1]
    assert "or a compute share: its share of time on the compute roof" in sw.stderr


def test_the_whole_network_model_cannot_follow_the_same_device():
    # the sum of compute and memory at fixed rates misses what fill and the max do
    from mobilecost.latency.whole import fit

    w = fit(points(CALIBRATION), "sum", "float32")
    c = Config("mobilenetv4_conv_small", "1", 256)
    assert abs(w.predict_ms(c) / device_ms("mobilenetv4_conv_small", "1", 256) - 1) > 0.02


def test_an_out_of_range_parameter_is_flagged():
    fake = roofline.RooflineFit((1e-12, 1e-12, 1e-9, 5.0), 0.0, 0, "float32", (), (True,) * 4)
    bad = fake.implausible()  # 1 PMAC/s is in range; 1 TB/s too; 5 ms a layer is not
    assert bad == ["fixed cost per layer"]
    assert any("⚠ outside its plausible range" in n for n in fake.notes())


def test_a_fill_at_the_edge_of_its_grid_is_said():
    # W½ is chosen from {0, 10³, ..., 10⁶}; at 10⁶ the points would take a larger one, and the
    # peak it scales is then a fit, not the device's (as on a 2-core CPU's 96 points).
    theta = (1e-12, 1e-11, 1e-9, 0.0)
    edge = roofline.RooflineFit(theta, roofline.FILL_GRID[-1], 0, "float32", (), (True,) * 4)
    inside = roofline.RooflineFit(theta, roofline.FILL_GRID[-2], 0, "float32", (), (True,) * 4)
    said = "the largest value tried"
    assert any(said in n and "W½" in n for n in edge.notes())
    assert not any(said in n for n in inside.notes())


def test_one_network_at_one_size_cannot_determine_it():
    same = [Point(Config("mobilenet_v1", "1", 224, b), device_ms("mobilenet_v1", "1", 224, b))
            for b in range(1, 8)]
    with pytest.raises(MobilecostError, match="cannot determine the roofline model's peak compute"):
        roofline.fit(same, "float32")
    assert "peak compute" in roofline.undetermined(same, "float32")


def test_too_few_points_name_every_parameter():
    with pytest.raises(MobilecostError, match="at least 6 distinct") as e:
        roofline.fit(points(CALIBRATION[:5]), "float32")
    assert "fill half-saturation" in str(e.value)


def write_csv(path, pts, batch=1):
    path.write_text("spec,alpha,resolution,batch,latency_ms\n" + "".join(
        f"{p.config.spec},{p.config.alpha},{p.config.resolution},{p.config.batch},{p.latency_ms!r}\n"
        for p in pts))
    return path


def test_calibrate_chooses_the_roofline_on_such_a_device_and_says_why(tmp_path):
    csv = write_csv(tmp_path / "m.csv", points(CALIBRATION))
    r = run("calibrate", csv, "--target", "acc", "--targets-dir", tmp_path / "t", "--format", "json")
    assert r.exit_code == 0, r.output
    saved = json.loads((tmp_path / "t" / "acc.json").read_text())
    assert saved["chosen"]["model"] == "roofline"
    assert saved["chosen"]["why"].startswith("roofline model: leave-one-out median error")
    # it reads back and predicts another family as the device runs it
    p = run("predict", "mobilenet_v3_large", "--target", "acc", "--targets-dir", tmp_path / "t",
            "--format", "json")
    assert p.exit_code == 0, p.output
    got = json.loads(p.stdout)[0]["predicted_latency_ms"]
    assert got == pytest.approx(device_ms("mobilenet_v3_large", "1", 224), rel=1e-6)


def test_hold_out_spec_reports_both_models_and_both_baselines(tmp_path):
    extra = [("mnasnet_b1", a, r) for a in ("1", "0.5") for r in (224, 160)]
    csv = write_csv(tmp_path / "m.csv", points(CALIBRATION + extra))
    assert run("calibrate", csv, "--target", "acc", "--targets-dir", tmp_path / "t").exit_code == 0
    r = run("predict", "--validate", "--target", "acc", "--targets-dir", tmp_path / "t",
            "--hold-out-spec", "mnasnet_b1", "--output-dir", tmp_path / "plots", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 4
    for row in rows:
        assert {"error", "baseline_error", "affine_error", "roofline_error"} <= set(row)
        assert abs(row["roofline_error"]) < 1e-6  # the device is a roofline device
        assert abs(row["error"]) > 1e-3


def test_auto_falls_back_with_one_line_naming_what_it_could_not_fit(tmp_path):
    same = [Point(Config("mobilenet_v1", "1", 224, b), device_ms("mobilenet_v1", "1", 224, b))
            for b in range(1, 8)]
    csv = write_csv(tmp_path / "m.csv", same)
    r = run("calibrate", csv, "--target", "one", "--targets-dir", tmp_path / "t")
    assert r.exit_code == 0, r.output
    note = [line for line in r.stdout.replace("\n", " ").split("•") if "predicts with" in line]
    assert len(note) == 1 and "roofline model could not be fitted" in note[0]
    assert "peak compute" in note[0]
    saved = json.loads((tmp_path / "t" / "one.json").read_text())
    assert saved["chosen"]["model"] == "whole" and "roofline" not in saved


def test_model_roofline_refuses_what_it_cannot_determine(tmp_path):
    same = [Point(Config("mobilenet_v1", "1", 224, b), device_ms("mobilenet_v1", "1", 224, b))
            for b in range(1, 8)]
    csv = write_csv(tmp_path / "m.csv", same)
    line = one_error_line(run("calibrate", csv, "--target", "one", "--targets-dir", tmp_path / "t",
                              "--model", "roofline"))
    assert "cannot determine the roofline model's peak compute" in line
    assert not (tmp_path / "t" / "one.json").exists()


def test_model_roofline_refuses_too_few_points(tmp_path):
    csv = write_csv(tmp_path / "m.csv", points(CALIBRATION[:5]))
    line = one_error_line(run("calibrate", csv, "--target", "few", "--targets-dir", tmp_path / "t",
                              "--model", "roofline"))
    assert "needs at least 6 distinct measured configurations, got 5" in line


@pytest.mark.parametrize("option, value, choices", [("--model", "fastest", "auto, whole, roofline"),
                                                    ("--unfused", "maybe", "auto, yes, no")])
def test_an_unknown_choice_is_one_line(tmp_path, option, value, choices):
    csv = write_csv(tmp_path / "m.csv", points(CALIBRATION))
    line = one_error_line(run("calibrate", csv, "--target", "x", "--targets-dir", tmp_path / "t",
                              option, value))
    assert f"{option} must be one of {choices}, got '{value}'" in line


def test_a_corrupt_roofline_in_a_target_file_is_one_line(tmp_path):
    csv = write_csv(tmp_path / "m.csv", points(CALIBRATION))
    assert run("calibrate", csv, "--target", "acc", "--targets-dir", tmp_path / "t").exit_code == 0
    path = tmp_path / "t" / "acc.json"
    data = json.loads(path.read_text())
    data["roofline"]["theta"]["ms_per_byte"] = -1.0
    path.write_text(json.dumps(data))
    line = one_error_line(run("predict", "--target", "acc", "--targets-dir", tmp_path / "t"))
    assert "not a valid mobilecost target" in line and "roofline coefficients" in line


def test_the_parameters_have_units_and_ranges():
    for p in roofline.PARAMETERS:
        assert p.low <= p.high and math.isfinite(p.high)
    assert [p.unit for p in roofline.PARAMETERS][:4] == ["MAC/s", "", "B/s", "s"]


def test_suggest_for_the_roofline_says_when_it_is_determined_and_how_it_narrows():
    r = run("suggest", "mobilenet_v1", "mobilenet_v2", "-n", "9", "--model", "roofline",
            "--dtype", "fp16", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [row["order"] for row in rows] == list(range(1, 10))
    widths = [row["half_width_90"] for row in rows]
    # five parameters: four measurements cannot determine them, five can
    assert widths[:4] == [None] * 4 and widths[4] is not None
    # a measurement more never widens the interval (M only grows), and both families are used
    assert all(b <= a * (1 + 1e-9) for a, b in zip(widths[4:], widths[5:]))
    assert {row["spec"] for row in rows} == {"mobilenet_v1", "mobilenet_v2"}


@pytest.mark.parametrize("specs, warned", [
    (("mobilenet_v1", "mobilenet_v2"), True),            # only the 3-channel stem is dense k×k
    (("mobilenet_v3_large", "mnasnet_a1"), True),
    (("mobilenet_v1", "mobilenetv4_conv_small"), False),  # fused blocks: dense 3×3 on 16+ channels
    (("conv_mobilenet",), False),                        # every layer a full convolution
])
def test_suggest_says_when_no_network_has_dense_convolutions(specs, warned):
    from mobilecost.engine.cost import cost

    # the count by hand: any full convolution (groups of one, k > 1) over 8 or more channels
    dense = any(c.kind.value == "conv" and c.layer.groups == 1 and c.layer.kernel > 1
                and c.layer.in_channels >= 8 for s in specs for c in cost(s, 1, 224).layers)
    assert dense is not warned
    r = run("suggest", *specs, "-n", "6", "--model", "roofline", "--dtype", "fp16")
    assert r.exit_code == 0, r.output
    assert ("has a dense k×k convolution beyond its stem" in " ".join(r.output.split())) is warned


def test_the_interval_scales_with_the_noise():
    from mobilecost.latency.design_roofline import suggest_roofline

    grid = [Config(s, a, r) for s in ("mobilenet_v1", "mobilenet_v2")
            for a in ("1", "0.5", "0.25") for r in (224, 160, 128)]
    low = suggest_roofline(grid, 7, "float16", noise=0.01)
    high = suggest_roofline(grid, 7, "float16", noise=0.04)
    assert [s.config for s in low] == [s.config for s in high]
    assert high[-1].half_width == pytest.approx(4 * low[-1].half_width, rel=1e-12)


def test_suggest_refuses_an_unknown_model():
    line = one_error_line(run("suggest", "mobilenet_v1", "--model", "fastest"))
    assert "--model must be one of whole, roofline, got 'fastest'" in line


def test_a_declared_phi_is_kept_and_refits_keep_it(tmp_path):
    # the hand-set device runs unfused; declared "no", the fit must do without φ and says so
    pts = points(CALIBRATION)
    fused = roofline.fit(pts, "float32", unfused=0)
    assert fused.unfused == 0 and fused.declared
    assert roofline.fit(pts, "float32", unfused=1).values()["bandwidth"] == pytest.approx(BANDWIDTH, rel=1e-6)
    csv = write_csv(tmp_path / "m.csv", pts)
    r = run("calibrate", csv, "--target", "d", "--targets-dir", tmp_path / "t", "--model", "roofline",
            "--unfused", "no")
    assert r.exit_code == 0, r.output
    assert "unfused φ: 0, declared (--unfused)" in r.stdout.replace("\n", " ")
    saved = json.loads((tmp_path / "t" / "d.json").read_text())
    assert saved["roofline"]["unfused"] == 0 and saved["roofline"]["unfused_declared"] is True


def test_sweep_and_pick_quote_the_roofline_targets_own_error(tmp_path):
    csv = write_csv(tmp_path / "m.csv", points(CALIBRATION))
    assert run("calibrate", csv, "--target", "acc", "--targets-dir", tmp_path / "t").exit_code == 0
    r = run("pick", "--max-latency", "3ms", "--target", "acc", "--targets-dir", tmp_path / "t")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    # the device is a roofline device: its leave-one-out error is 0.0%, the whole-network
    # model's is not, and pick quotes the model that predicts
    assert "predicted by its roofline model" in text
    assert "(leave-one-out median error 0.0%)" in text


def test_a_large_set_leaves_out_an_even_spread_of_its_points():
    assert roofline_loo.held_out(9) == list(range(9))
    assert roofline_loo.held_out(roofline_loo.LOO_MAX) == list(range(roofline_loo.LOO_MAX))
    big = roofline_loo.held_out(500)
    assert len(big) == roofline_loo.LOO_MAX and big[0] == 0 and big[-1] == 499
    gaps = {b - a for a, b in zip(big, big[1:])}
    assert gaps <= {8, 9}  # 499 / 59 = 8.46: evenly spread, none skipped twice over


def test_the_leave_one_out_reports_its_progress_refit_by_refit():
    from mobilecost.latency.measurements import Measurements
    from mobilecost.latency.targets import calibrate

    pts = points(CALIBRATION)
    steps = []
    errors = roofline_loo.loo_errors(pts, "float32", on_progress=lambda *a: steps.append(a))
    assert [s[:2] for s in steps] == [(k, len(pts)) for k in range(1, len(pts) + 1)]
    assert len(errors) == len(pts)
    # calibrate passes it on where auto compares the models, and not where it is told which
    seen = []
    calibrate("acc", Measurements(tuple(pts), "float32", None), on_progress=lambda *a: seen.append(a))
    assert seen == steps
    seen.clear()
    calibrate("acc", Measurements(tuple(pts), "float32", None), model_choice="roofline",
              on_progress=lambda *a: seen.append(a))
    assert seen == []


def test_features_with_and_without_the_default_dtype_are_one_cache_entry():
    # lru_cache keys f(c) and f(c, "float32") apart: a 500-point calibration then held two
    # entries a point, overflowed the cache and recomputed every point in every refit.
    from mobilecost.latency import features

    features.clear_caches()
    c = Config("mobilenet_v1", "0.5", 160)
    assert features.network_features(c) is features.network_features(c, "float32")
