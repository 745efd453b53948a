"""The layer-level latency mode: distinct layer shapes, the layer table's prediction (Σ of the
layers' times, the per-layer model for those it lacks, the fitted overhead), its storage, and
`calibrate --layers` (timed through the cache, resumable after Ctrl-C). The timer is stubbed:
nothing here depends on how fast the machine is."""

import json
from dataclasses import replace
from fractions import Fraction

import pytest
from cli_helpers import one_error_line, run

from mobilecost.engine.cost import cost
from mobilecost.errors import MobilecostError
from mobilecost.lang.load import load_spec
from mobilecost.latency import layers as lyt
from mobilecost.latency import measurements as lt
from mobilecost.latency import targets as tg
from mobilecost.latency.measurements import Measurements


def config(spec, alpha, res, batch=1):
    return lt.Config(spec, Fraction(alpha), res, batch)


# ----------------------------------------------------------------------------- distinct shapes

def test_mobilenet_v1_has_21_distinct_layer_shapes():
    # Table 1: conv, 13 (dw, pw) pairs, avgpool, fc = 29 layers; the five (dw 3, pw 512) pairs
    # at 14×14×512 are one shape, so 4 × 2 = 8 repeat: 29 - 8 = 21 distinct shapes.
    layers = load_spec("mobilenet_v1").build(1, 224)
    assert len(layers) == 29
    assert len(lyt.distinct_layers([config("mobilenet_v1", 1, 224)])) == 21


def test_a_shape_is_what_a_layer_computes_not_where_it_stands():
    layers = load_spec("mobilenet_v1").build(1, 224)
    # layers 13 and 15: the first two depthwise layers of the repeated 14×14×512 blocks
    assert layers[13].index != layers[15].index
    assert lyt.layer_shape(layers[13]) == lyt.layer_shape(layers[15])
    assert lyt.layer_shape(layers[13]) != lyt.layer_shape(layers[14])
    assert "index=" not in lyt.layer_shape(layers[13]) and "line=" not in lyt.layer_shape(layers[13])
    # a second configuration shares the shapes it has in common and adds only its own
    both = lyt.distinct_layers([config("mobilenet_v1", 1, 224), config("mobilenet_v1", 1, 224)])
    assert len(both) == 21


def test_shape_features_are_the_cost_engines():
    # pw 512 -> 512 at 14×14, batch 2, float32: 512·512·196 Mult-Adds; bytes: (2·512·196 elements
    # in and out) · 2 images + 512·512 weights, 4 bytes each; elementwise: one ReLU per output
    layer = load_spec("mobilenet_v1").build(1, 224)[14]
    assert (layer.op, layer.in_channels, layer.out_channels, layer.in_size) == ("pw", 512, 512, 14)
    macs, moved, elementwise, one = lyt.shape_features(layer, 2, "float32")
    assert macs == 512 * 512 * 196 * 2
    assert moved == ((512 * 196 + 512 * 196) * 2 + 512 * 512) * 4
    assert elementwise == 512 * 196 * 2
    assert one == 1


# ----------------------------------------------------------------------------- the table

def table_of(configs, ms_of, batch=1, scale=1.0, overhead=0.0):
    """A layer table timing every distinct layer of `configs` at ms_of(layer)."""
    layers = lyt.distinct_layers(configs)
    entries = tuple(lyt.entry_of(l, ms_of(l), 0.0, batch, "float32") for l in layers.values())
    return lyt.LayerTable(entries, batch, "float32", {}, (scale, 0.0, 0.0, 0.0, overhead))


def test_prediction_is_scale_times_the_sum_plus_the_overhead():
    c = config("mobilenet_v1", "0.25", 128)
    table = table_of([c], lambda layer: 0.01, scale=2.0, overhead=1.0)
    p = table.predict(c)
    # 29 layers of 0.01 ms: 2 · 0.29 + 1 = 1.58 ms, every layer from the table
    assert (p.layers, p.from_table, p.modelled) == (29, 29, 0)
    assert p.sum_ms == pytest.approx(0.29)
    assert p.total_ms == pytest.approx(1.58)


def test_untimed_layers_are_priced_by_the_per_layer_model_never_dropped():
    # every timed layer takes 2 µs + 1 ns per Mult-Add, exactly: the per-layer model recovers
    # that and prices the layers of a configuration the table never saw
    timed = [config("mobilenet_v1", a, r) for a in ("1", "0.75", "0.5", "0.25") for r in (224, 160)]
    table = table_of(timed, lambda layer: 0.002 + 1e-6 * lyt.shape_features(layer, 1)[0])
    new = config("mobilenet_v1", "0.6", 144)
    p = table.predict(new)
    assert p.modelled > 0 and p.from_table + p.modelled == p.layers == 29
    want = sum(0.002 + 1e-6 * c.macs for c in cost("mobilenet_v1", Fraction("0.6"), 144).layers)
    assert p.total_ms == pytest.approx(want, rel=1e-6)


def test_the_overhead_is_fitted_on_whole_network_measurements():
    # networks of 29 (v1) and of len(build) (v2) layers of 0.1 ms each, measured at
    # 1.5 · Σ + 0.3 ms: the fit finds s = 1.5 and c0 = 0.3
    configs = [config("mobilenet_v1", a, 160) for a in ("1", "0.5")] + \
              [config("mobilenet_v2", a, 160) for a in ("1", "0.5")]
    table = table_of(configs, lambda layer: 0.1)
    n = {c: len(c.network.spec().build(c.alpha, c.resolution)) for c in configs}
    assert n[configs[0]] == 29 and n[configs[2]] != 29
    points = [lt.Point(c, 1.5 * 0.1 * n[c] + 0.3) for c in configs]
    fitted = table.with_overhead(points)
    assert (fitted.scale, fitted.overhead_ms, fitted.overhead_points) == (
        pytest.approx(1.5), pytest.approx(0.3, abs=1e-9), 4)
    assert all(abs(e) < 1e-9 for e in lyt.loo_errors(fitted, points))
    with pytest.raises(MobilecostError, match="at least 2 are needed, got 1"):
        table.with_overhead(points[:1])


def test_with_ten_points_every_overhead_term_is_fitted():
    # twelve networks measured at 0.8·Σ + 0.15 ms/MB of weights + 0.08 ms/MB of maps + 5 µs a
    # layer + 0.2 ms: the fit finds each coefficient (the terms' values are checked against
    # the torch-built networks in test_the_overhead_terms_are_the_built_networks_bytes)
    configs = [config("mobilenet_v1", a, r) for a in ("1", "0.5", "0.25") for r in (224, 128)] + \
              [config("mobilenet_v2", a, r) for a in ("1", "0.5", "0.35") for r in (192, 96)]
    table = table_of(configs, lambda layer: 0.002 + 2e-7 * lyt.shape_features(layer, 1)[0])
    want = (0.8, 0.15e-6, 0.08e-6, 0.005, 0.2)
    points = [lt.Point(c, sum(a * b for a, b in zip(want, table.terms(c)))) for c in configs]
    assert len(points) >= lyt.FULL_OVERHEAD_POINTS
    fitted = table.with_overhead(points)
    assert fitted.overhead == pytest.approx(want, rel=1e-6)
    assert "0.800 × Σ layer times + 0.150 ms/MB of weights + 0.080 ms/MB of maps + 5.0 µs a " \
           "layer + 0.200 ms" == fitted.describe_overhead()
    assert lyt.loo_errors(fitted, points) == pytest.approx([0.0] * len(points), abs=1e-6)
    huge = replace(fitted, overhead=(1e308, 0.0, 0.0, 0.0, 1e308))
    assert huge.describe_overhead() == "1e+308 × Σ layer times + 1e+308 ms"
    # one point fewer than FULL_OVERHEAD_POINTS: s and c0 only
    few = table.with_overhead(points[:lyt.FULL_OVERHEAD_POINTS - 1])
    assert few.overhead[1:4] == (0.0, 0.0, 0.0) and few.scale > 0


def test_the_overhead_terms_are_the_built_networks_bytes():
    # a second count, from the torch-built networks: weight bytes are the conv and linear
    # weights and biases, 4 bytes each (batchnorm's four vectors a channel are not counted);
    # map bytes are every layer module's inputs and output
    torch = pytest.importorskip("torch")
    from mobilecost.torch.build import SpecNet

    for c in (config("mobilenet_v1", "0.5", 160), config("mobilenet_v2", "0.35", 96),
              config("mobilenet_v3_small", "0.75", 128)):
        layers = lyt.config_layers(c)
        net = SpecNet(c.spec, c.alpha, c.resolution, layers).eval()
        weights = 0
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                weights += m.weight.numel() + (0 if m.bias is None else m.bias.numel())
        maps = []
        hooks = [m.register_forward_hook(lambda mod, args, out: maps.append(
            sum(a.numel() for a in args) + out.numel())) for m in net.layers]
        with torch.inference_mode():
            net(net.example_input(1))
        for h in hooks:
            h.remove()
        table = table_of([c], lambda layer: 0.01)
        assert table.terms(c) == pytest.approx((0.01 * len(layers), 4 * weights, 4 * sum(maps),
                                                len(layers), 1.0))


def test_a_target_with_a_layer_table_round_trips_and_predicts_layer_level(tmp_path):
    configs = [config("mobilenet_v1", a, r) for a in ("1", "0.5", "0.25") for r in (160, 128)]
    table = table_of(configs, lambda layer: 0.05)
    points = [lt.Point(c, 0.05 * 29 * 1.2 + 0.4 + 0.1 * i) for i, c in enumerate(configs)]
    t = tg.calibrate("lay", Measurements(tuple(points), "float32", None))
    t = replace(t, layers=table.with_overhead(points))
    back = tg.Target.from_json(t.to_json(), "lay.json")
    assert back.layers is not None and len(back.layers.entries) == len(table.entries)
    c = config("mobilenet_v1", "0.5", 160)
    s, c0 = t.layers.scale, t.layers.overhead_ms
    assert back.predict_ms(c) == pytest.approx(s * 0.05 * 29 + c0)  # 29 layers of 0.05 ms
    assert back.method == "layer-level" and back.extrapolation(c) == []
    assert back.extrapolation(config("mobilenet_v2", "1", 160)) == ["untimed layers"]
    bad = json.loads(t.to_json())
    bad["layer_table"]["layers"][0]["ms"] = -1
    with pytest.raises(MobilecostError, match="lay.json: not a valid mobilecost target .*ms must be"):
        tg.Target.from_json(json.dumps(bad), "lay.json")
    # a target written before the bytes and layer terms (overhead: scale and ms) still reads,
    # as s·Σ + c0; a negative term is refused
    old = json.loads(t.to_json())
    old["layer_table"]["overhead"] = {"scale": 1.5, "ms": 0.25, "fitted_on_points": 6}
    back = tg.Target.from_json(json.dumps(old), "old.json")
    assert back.layers.overhead == (1.5, 0.0, 0.0, 0.0, 0.25)
    assert back.predict_ms(c) == pytest.approx(1.5 * 0.05 * 29 + 0.25)
    old["layer_table"]["overhead"] = {"terms": dict(zip(lyt.OVERHEAD_TERMS, (1, -1e-7, 0, 0, 0))),
                                      "fitted_on_points": 12}
    with pytest.raises(MobilecostError, match="old.json: not a valid mobilecost target .*overhead"):
        tg.Target.from_json(json.dumps(old), "old.json")
    del old["layer_table"]["overhead"]["terms"]["map_bytes"]
    with pytest.raises(MobilecostError, match="layer_table.overhead.terms lacks map_bytes"):
        tg.Target.from_json(json.dumps(old), "old.json")


# ----------------------------------------------------------------------------- timing, the CLI

torch = pytest.importorskip("torch")
from timing_helpers import FakeMeasurement  # noqa: E402

from mobilecost.torch import layers as layer_timing  # noqa: E402
from mobilecost.torch.cache import MeasurementCache
from mobilecost.torch.clock import MeasureOptions, device_name
from mobilecost.torch.layers import layer_cache_key, measure_layers

HEADER = "spec,alpha,resolution,batch,latency_ms\n"
LAYER_MS = 0.1


@pytest.fixture
def timer(monkeypatch):
    """Every layer takes LAYER_MS; `timer.stop_after` calls end in Ctrl-C."""

    class Timer:
        calls = 0
        stop_after = None

    def fake(fn, x, options, label="forward"):
        if Timer.stop_after is not None and Timer.calls >= Timer.stop_after:
            raise KeyboardInterrupt
        Timer.calls += 1
        fn(x)  # the layer's module runs on its input: the shapes fit
        return FakeMeasurement(LAYER_MS / 1e3, 0.0)

    monkeypatch.setattr(layer_timing, "time_callable", fake)
    monkeypatch.setattr(layer_timing, "machine_load", lambda: (0.5, 4))
    return Timer


def measurements_csv(tmp_path):
    """v1 and v2 at three widths: latency 1.3 · Σ (layers × LAYER_MS) + 0.2 ms, exactly."""
    lines = []
    for spec in ("mobilenet_v1", "mobilenet_v2"):
        for a in ("1", "0.75", "0.5"):
            n = len(load_spec(spec).build(Fraction(a), 96))
            lines.append(f"{spec},{a},96,1,{1.3 * LAYER_MS * n + 0.2!r}\n")
    p = tmp_path / "m.csv"
    p.write_text(HEADER + "".join(lines))
    return p


def test_measure_layers_times_each_shape_once_and_resumes(tmp_path, timer):
    cache = MeasurementCache(tmp_path / "cache")
    configs = [config("mobilenet_v3_small", "0.5", 64), config("mobilenet_v3_small", "0.5", 64)]
    n = len(lyt.distinct_layers(configs))
    opts = MeasureOptions(threads=1, min_run_time_s=0.01, max_run_time_s=0.05)
    timer.stop_after = 5
    with pytest.raises(layer_timing.GridInterrupted) as exc:
        measure_layers(configs, opts, cache)
    assert len(exc.value.rows) == 5 and exc.value.total == n
    timer.stop_after = None
    rows = measure_layers(configs, opts, cache)
    assert timer.calls == n  # the 5 timed before Ctrl-C came from the cache
    assert sum(r["cached"] for r in rows) == 5 and len(rows) == n
    assert all(r["latency_ms"] == pytest.approx(LAYER_MS) and not r["error"] for r in rows)
    assert [r["layer"] for r in rows] == list(lyt.distinct_layers(configs))


def test_layers_are_timed_with_torch_only(tmp_path):
    opts = MeasureOptions(runtime="onnxruntime")
    with pytest.raises(MobilecostError, match="layers are timed one by one with torch"):
        measure_layers([config("mobilenet_v1", 1, 64)], opts)


def test_calibrate_layers_interrupted_resumes_and_loses_nothing(tmp_path, timer):
    csv = measurements_csv(tmp_path)
    tdir, cache = tmp_path / "targets", tmp_path / "cache"
    args = ("calibrate", csv, "--target", "lay", "--targets-dir", tdir, "--layers", "-t", "1",
            "--min-time", "0.01", "--max-time", "0.05", "--cache-dir", cache,
            "--layer-specs", "mnasnet_b1", "-a", "0.5", "-r", "96")
    configs = [config(s, a, 96) for s in ("mobilenet_v1", "mobilenet_v2") for a in ("1", "0.75", "0.5")]
    n = len(lyt.distinct_layers(configs + [config("mnasnet_b1", "0.5", 96)]))
    timer.stop_after = 7
    line = one_error_line(run(*args), 130)
    assert f"interrupted after 7 of {n} layer timings; no target written" in line
    assert not tdir.exists() or not any(tdir.iterdir())
    timer.stop_after = None
    r = run(*args, "--format", "json")
    assert r.exit_code == 0, r.output
    assert timer.calls == n  # 7 before the interruption, n - 7 after: none timed twice
    t = tg.load("lay", tdir)
    assert len(t.layers.entries) == n
    assert (t.layers.scale, t.layers.overhead_ms) == (pytest.approx(1.3), pytest.approx(0.2, abs=1e-9))
    # a network never measured whole, every layer timed: 1.3 · its layers × 0.1 ms + 0.2
    m = len(load_spec("mnasnet_b1").build(Fraction("0.5"), 96))
    assert t.predict_ms(config("mnasnet_b1", "0.5", 96)) == pytest.approx(1.3 * LAYER_MS * m + 0.2)
    p = run("predict", "mnasnet_b1", "--target", "lay", "--targets-dir", tdir, "-a", "0.5,1",
            "-r", "96", "--format", "json")
    rows = json.loads(p.stdout)
    assert [r["layers_modelled"] > 0 for r in rows] == [False, True]
    said = " ".join(run("predict", "mnasnet_b1", "--target", "lay", "--targets-dir", tdir, "-a", "0.5",
                        "-r", "96").output.split())
    assert "mnasnet_b1 was not measured whole: its interval is the leave-one-out of the networks " \
           "that were (mobilenet_v1, mobilenet_v2)" in said
    said = " ".join(run("predict", "mobilenet_v1", "--target", "lay", "--targets-dir", tdir, "-a", "0.5",
                        "-r", "96").output.split())
    assert "not measured whole" not in said
    assert rows[0]["extrapolated"] == "" and rows[1]["extrapolated"] == "untimed layers"
    v = run("predict", "--validate", "--target", "lay", "--targets-dir", tdir,
            "--output-dir", tmp_path / "plots", "--format", "json")  # leave-one-out
    assert v.exit_code == 0, v.output
    errors = [r["layer_error"] for r in json.loads(v.stdout)]
    assert len(errors) == 6 and all(abs(e) < 1e-6 for e in errors)
    # the six whole-network points fit s and c0 only, and the output says why
    again = run(*args)
    assert again.exit_code == 0 and timer.calls == n
    said = " ".join(again.output.split())
    assert "a network = 1.300 × Σ layer times + 0.200 ms, fitted on 6 whole-network measurements " \
           "(the weight bytes, map bytes and per-layer terms need at least 10: left at 0)" in said


@pytest.mark.parametrize("extra, message", [
    (("--layer-specs", "mnasnet_b1"), "--layer-specs goes with --layers"),
    (("--layers", "--layer-specs", "mobilenet_v9"), "mobilenet_v9: unknown spec"),
    (("--layers", "--layer-specs", "mnasnet_b1", "-a", "0.1..1:0.0001", "-r", "96..224:1"),
     "at most 5,000"),
])
def test_calibrate_layers_bad_options_are_one_line_before_any_timing(tmp_path, timer, extra, message):
    tdir = tmp_path / "targets"
    r = run("calibrate", measurements_csv(tmp_path), "--target", "lay", "--targets-dir", tdir,
            "--cache-dir", tmp_path / "cache", *extra)
    assert message in one_error_line(r)
    assert timer.calls == 0 and not tdir.exists()


def test_measurements_mixing_specs_name_the_unknown_one_and_its_row(tmp_path):
    text = (HEADER + "mobilenet_v1,1,224,1,20\nmobilenet_v2,1,224,1,15\n"
            "mobilenet_v3_small,1,224,1,5\nmobilenet_v9,1,224,1,9\nmnasnet_b1,1,224,1,12\n")
    p = tmp_path / "mixed.csv"
    p.write_text(text)
    line = one_error_line(run("calibrate", p, "--target", "t", "--targets-dir", tmp_path / "t"))
    assert line.startswith(f"error: {p}:5: mobilenet_v9: unknown spec")
    assert not (tmp_path / "t").exists()


def test_a_bad_layer_cache_entry_is_reported_and_timed_again(tmp_path, timer):
    cache = MeasurementCache(tmp_path / "cache")
    c = config("mobilenet_v1", "0.25", 32)
    opts = MeasureOptions(threads=1, min_run_time_s=0.01, max_run_time_s=0.05)
    first = measure_layers([c], opts, cache)
    key = layer_cache_key(first[0]["layer"], opts.resolved(), device_name("cpu"))
    assert cache.get(key)["latency_ms"] == pytest.approx(LAYER_MS)
    cache.path(key).write_text('{"layer": "x", "latency_ms": "fast"}')
    calls, warnings = timer.calls, []
    rows = measure_layers([c], opts, cache, on_warning=warnings.append)
    assert timer.calls == calls + 1 and not rows[0]["cached"] and all(r["cached"] for r in rows[1:])
    assert len(warnings) == 1 and "measuring again" in warnings[0]


def test_a_layer_grid_and_the_held_out_validations_use_the_table(tmp_path):
    configs = [config("mobilenet_v1", a, r) for a in ("1", "0.5", "0.25") for r in (160, 128)] + \
              [config("mobilenet_v2", a, r) for a in ("1", "0.5") for r in (160, 128)]
    table = table_of(configs, lambda layer: 0.002 + 2e-7 * lyt.shape_features(layer, 1)[0])
    # whole networks measured at 1.25 · Σ + 0.5 ms
    points = [lt.Point(c, 1.25 * table.layer_ms(c)[0] + 0.5) for c in configs]
    t = tg.calibrate("grid", Measurements(tuple(points), "float32", None))
    t = replace(t, layers=table.with_overhead(points))
    g = t.grid("mobilenet_v1", ["1", "0.5", "0.75"], [160, 128])
    want = [t.predict_ms(config("mobilenet_v1", a, r)) for a in ("1", "0.5", "0.75") for r in (160, 128)]
    assert g.predicted_ms.ravel().tolist() == pytest.approx(want)
    assert g.measured_ms[0, 0] == pytest.approx(points[0].latency_ms)
    assert list(g.extrapolated[:, 0]) == ["", "", "untimed layers"]  # α 0.75 was never timed
    tdir = tmp_path / "targets"
    tg.save(t, tdir)
    listed = " ".join(run("targets", "--targets-dir", tdir).output.split())
    assert "grid (layer-level) predicts otherwise than the whole-network model; the Fit and " \
           "LOO columns are the whole-network model's" in listed
    for extra in (("--calibrate-on", "6"), ("--hold-out-spec", "mobilenet_v2")):
        r = run("predict", "--validate", "--target", "grid", "--targets-dir", tdir, *extra,
                "--output-dir", tmp_path / "plots", "--format", "json")
        assert r.exit_code == 0, r.output
        errors = [row["layer_error"] for row in json.loads(r.stdout)]
        assert errors and all(abs(e) < 1e-6 for e in errors)  # s and c0 refitted exactly
    assert lyt.loo_errors(t.layers, points) == pytest.approx([0.0] * len(points), abs=1e-9)
    s = run("sweep", "--spec", "mobilenet_v1", "--target", "grid", "--targets-dir", tdir, "--alpha",
            "1,0.75", "--res", "160", "--output-dir", tmp_path / "sweep", "--format", "json")
    assert s.exit_code == 0, s.output
    stderr = " ".join(s.stderr.split())
    assert "target grid (layer-level fitted on 10 measured points" in stderr
    assert "1 of 2 predicted latencies extrapolate beyond what target grid timed" in stderr


def test_a_layer_target_refuses_a_grid_too_large_to_price_one_by_one():
    c = config("mobilenet_v1", "0.25", 128)
    table = table_of([c], lambda layer: 0.01)
    points = [lt.Point(config("mobilenet_v1", a, 128), 1.0 + i) for i, a in enumerate(("1", "0.75", "0.5", "0.25", "0.35"))]
    t = replace(tg.calibrate("big", Measurements(tuple(points), "float32", None)), layers=table)
    alphas = [Fraction(i, 1000) for i in range(1, 201)]  # 200 α × 101 resolutions = 20,200
    with pytest.raises(MobilecostError, match="at most 20,000 per grid, got 20,200"):
        t.grid("mobilenet_v1", alphas, list(range(100, 201)))
