"""Noisy timings, bad cache entries, timing options checked before any work, a network's
cache identity. The timer is stubbed: nothing here depends on how fast the machine is."""

import json
from fractions import Fraction
from importlib import resources

import pytest

torch = pytest.importorskip("torch")

from cli_helpers import one_error_line, run  # noqa: E402
from timing_helpers import FakeMeasurement  # noqa: E402

from mobilecost.errors import ConfigError  # noqa: E402
from mobilecost.lang.load import load_spec
from mobilecost.latency.options import DEFAULTS, GridTiming, TimingOptions, changed  # noqa: E402
from mobilecost.torch import timing
from mobilecost.torch.cache import MeasurementCache
from mobilecost.torch.clock import MeasureOptions
from mobilecost.torch.timing import measure_grid  # noqa: E402

FAST = MeasureOptions(threads=1, min_run_time_s=0.01, max_run_time_s=0.05)


@pytest.fixture
def timer(monkeypatch):
    """A stub timer: each call takes the next (median s, IQR s) from `timer.queue`; the
    machine's load is `timer.load` on 4 cores."""

    class Timer:
        queue: list = []
        load = 0.5
        calls = 0

    def fake(fn, x, options, label="forward"):
        Timer.calls += 1
        median, iqr = Timer.queue.pop(0)
        return FakeMeasurement(median, iqr)

    monkeypatch.setattr(timing, "time_callable", fake)
    monkeypatch.setattr(timing, "machine_load", lambda: (Timer.load, 4))
    return Timer


# ----------------------------------------------------------------------------- noise

def test_noise_rule():
    # IQR above 10% of the median, or the 1-minute load above the cores
    assert timing.noise({"latency_ms": 10.0, "latency_iqr_ms": 1.0, "load": 4.0, "cores": 4}) == ""
    assert timing.noise({"latency_ms": 10.0, "latency_iqr_ms": 1.01, "load": 0, "cores": 4}) == \
        "IQR 10% of the median"
    assert timing.noise({"latency_ms": 26.0, "latency_iqr_ms": 51.0, "load": None, "cores": 4}) == \
        "IQR 196% of the median"
    assert timing.noise({"latency_ms": 10.0, "latency_iqr_ms": 0.1, "load": 4.5, "cores": 4}) == \
        "load 4.5 on 4 cores"


def test_a_noisy_timing_is_taken_again_and_the_quieter_kept(tmp_path, timer):
    timer.queue = [(0.010, 0.005), (0.011, 0.0005)]  # 50% IQR, then 4.5%
    warnings = []
    (row,) = measure_grid("mobilenet_v1", [("0.25", 32)], FAST, MeasurementCache(tmp_path),
                          on_warning=warnings.append)
    assert timer.calls == 2 and warnings == []
    assert row["latency_ms"] == pytest.approx(11.0) and row["noisy"] is False
    assert (row["load"], row["cores"]) == (0.5, 4)


def test_a_timing_that_stays_noisy_is_flagged_warned_and_not_served_from_the_cache(tmp_path, timer):
    cache = MeasurementCache(tmp_path)
    timer.queue = [(0.026, 0.051), (0.027, 0.040)]
    warnings = []
    (row,) = measure_grid("mobilenet_v1", [("0.25", 128)], FAST, cache, on_warning=warnings.append)
    assert row["noisy"] is True and row["latency_ms"] == pytest.approx(27.0)  # the quieter of two
    assert len(warnings) == 1 and "noisy timing (IQR 148% of the median) after 2 attempts" in warnings[0]
    assert len(cache) == 1  # kept, with its flag, so that the next run knows to measure again
    # the next run measures it again (quiet now) and says why
    timer.queue = [(0.012, 0.0001)]
    warnings.clear()
    (row,) = measure_grid("mobilenet_v1", [("0.25", 128)], FAST, cache, on_warning=warnings.append)
    assert timer.calls == 3 and not row["cached"] and row["noisy"] is False
    assert len(warnings) == 1 and "was noisy (IQR 148% of the median); measuring again" in warnings[0]
    # and the quiet one is served
    (row,) = measure_grid("mobilenet_v1", [("0.25", 128)], FAST, cache)
    assert row["cached"] and timer.calls == 3 and row["latency_ms"] == pytest.approx(12.0)


def test_a_timing_under_load_is_noisy(tmp_path, timer):
    timer.load = 9.0  # 9 runnable processes on 4 cores
    timer.queue = [(0.010, 0.0001), (0.010, 0.0001)]
    (row,) = measure_grid("mobilenet_v1", [("0.25", 32)], FAST, MeasurementCache(tmp_path))
    assert row["noisy"] is True and row["load"] == 9.0 and timer.calls == 2


def test_measure_flags_noisy_rows_and_warns(tmp_path, timer):
    timer.queue = [(0.010, 0.0001), (0.020, 0.010), (0.020, 0.010)]
    r = run("measure", "--alpha", "0.25,0.5", "--res", "32", "--cache-dir", tmp_path / "c", "--format", "json")
    assert r.exit_code == 0, r.output
    assert [x["noisy"] for x in json.loads(r.stdout)] == [False, True]
    stderr = " ".join(r.stderr.split())
    assert "warning: mobilenet_v1 α=0.5 32: noisy timing" in stderr
    assert "1 of 2 timings are noisy" in stderr


# ----------------------------------------------------------------------------- cache entries

@pytest.mark.parametrize("entry", [
    "[]", "not json", '{"alpha": "1/4"}', '{"alpha": "1/4", "latency_ms": "fast"}',
    '{"alpha": "1/4", "latency_ms": null}', '{"alpha": "1/4", "latency_ms": -3}',
    '{"alpha": "1/4", "latency_ms": NaN}', '{"alpha": "1/4", "latency_ms": true}',
    '{"latency_ms": 3.0}', '{"alpha": "x", "latency_ms": 3.0}',
    '{"alpha": "1/4", "latency_ms": 3.0, "latency_iqr_ms": "wide"}',
])
def test_a_bad_cache_entry_is_reported_and_measured_again(tmp_path, timer, entry):
    cache = MeasurementCache(tmp_path)
    key = MeasurementCache.key(load_spec("mobilenet_v1"), Fraction(1, 4), 32, FAST.resolved(),
                               timing.device_name("cpu"))
    cache.path(key).parent.mkdir(parents=True, exist_ok=True)
    cache.path(key).write_text(entry)
    timer.queue = [(0.010, 0.0001)]
    warnings = []
    (row,) = measure_grid("mobilenet_v1", [("0.25", 32)], FAST, cache, on_warning=warnings.append)
    assert not row["cached"] and row["latency_ms"] == pytest.approx(10.0) and timer.calls == 1
    assert len(warnings) == 1 and "measuring again" in warnings[0]
    assert cache.get(key)["latency_ms"] == pytest.approx(10.0)  # replaced by the good one


def test_a_renamed_copy_finds_the_same_cache_entries(tmp_path, timer):
    text = (resources.files("mobilecost.lang") / "specs" / "mobilenet_v1.spec").read_text()
    copy = tmp_path / "copy.spec"
    copy.write_text(text.replace("name mobilenet_v1", "name my_copy"))
    cache = MeasurementCache(tmp_path / "c")
    timer.queue = [(0.010, 0.0001)]
    measure_grid("mobilenet_v1", [("0.25", 32)], FAST, cache)
    (row,) = measure_grid(str(copy), [("0.25", 32)], FAST, cache)
    assert row["cached"] and row["spec"] == "my_copy" and timer.calls == 1
    edited = tmp_path / "edited.spec"
    edited.write_text(text.replace("fc 1000!", "fc 10!"))
    timer.queue = [(0.010, 0.0001)]
    (row,) = measure_grid(str(edited), [("0.25", 32)], FAST, cache)
    assert not row["cached"] and timer.calls == 2


# ----------------------------------------------------------------------------- options

def test_timing_options_defaults_are_one_set():
    assert MeasureOptions() == MeasureOptions.of(DEFAULTS)
    assert changed(DEFAULTS) == []
    assert changed(TimingOptions(min_run_time_s=0.5), GridTiming(rounds=3)) == ["--min-time", "--rounds"]
    with pytest.raises(ConfigError, match="--min-time"):
        TimingOptions(min_run_time_s=5, max_run_time_s=0.01)


@pytest.mark.parametrize("command", [["measure"], ["sweep", "--alpha", "1", "--res", "32", "--measure"]])
def test_min_time_above_max_time_is_refused_before_timing(command, tmp_path, timer):
    r = run(*command, "--min-time", "5", "--max-time", "0.01", "--cache-dir", tmp_path)
    assert "--min-time (5 s) must be > 0 and not above --max-time (0.01 s)" in one_error_line(r)
    assert timer.calls == 0


def test_measure_output_is_checked_before_timing(tmp_path, timer):
    missing = tmp_path / "nonexistent" / "dir" / "x.csv"
    line = one_error_line(run("measure", "--res", "32", "--cache-dir", tmp_path / "c", "-o", missing))
    assert "no such folder" in line
    assert not (tmp_path / "nonexistent").exists()
    line = one_error_line(run("measure", "--res", "32", "--cache-dir", tmp_path / "c", "-o", tmp_path))
    assert "is a directory" in line
    assert timer.calls == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_failed_measure_leaves_no_plot_folder(tmp_path, timer):
    plots = tmp_path / "plots" / "deep"
    r = run("measure", "--res", "32", "--device", "cuda", "--cache-dir", tmp_path / "c", "--plot-dir", plots)
    assert "no CUDA GPU" in one_error_line(r)
    assert not (tmp_path / "plots").exists() and timer.calls == 0


def test_dtype_names_come_from_one_table():
    from mobilecost import dtypes
    from mobilecost.cli.measuring import Dtype

    assert [d.value for d in Dtype] == ["fp32", "fp16", "bf16", "int8"]  # int8: a runtime's file
    from mobilecost.torch.clock import DTYPES

    assert DTYPES == {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    for name in ("fp16", "float16", "torch.float16", "half"):
        assert dtypes.lookup(name).bytes == 2


def test_measure_csv_keeps_alpha_exact_for_calibrate(tmp_path, timer):
    out = tmp_path / "lat.csv"
    timer.queue = [(0.001 * k, 0.0) for k in range(1, 7)]
    r = run("measure", "--alpha", "1/3,2/3,1", "--res", "32,64", "--cache-dir", tmp_path / "c", "-o", out)
    assert r.exit_code == 0, r.output
    from mobilecost.latency.measurements import read_measurements

    alphas = {p.config.alpha for p in read_measurements(out).points}
    assert alphas == {Fraction(1, 3), Fraction(2, 3), Fraction(1)}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_failed_sweep_measure_or_pick_leaves_no_output_folder(tmp_path, timer):
    out = tmp_path / "out" / "deep"
    r = run("sweep", "--alpha", "1", "--res", "32", "--measure", "--device", "cuda", "--output-dir", out)
    assert "no CUDA GPU" in one_error_line(r)
    r = run("pick", "--max-latency", "5ms", "--target", "nope", "--targets-dir", tmp_path / "t", "--output-dir", out)
    assert "unknown target 'nope'" in one_error_line(r)
    assert not (tmp_path / "out").exists() and timer.calls == 0


def test_sweep_measure_carries_the_noisy_flag_and_the_load(tmp_path, timer):
    timer.load = 3.0
    timer.queue = [(0.010, 0.0001), (0.020, 0.010), (0.020, 0.010)]
    r = run("sweep", "--alpha", "0.25,0.5", "--res", "32", "--measure", "--cache-dir", tmp_path / "c",
            "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(x["noisy"], x["load"], x["cores"]) for x in rows] == [(False, 3.0, 4), (True, 3.0, 4)]
    assert "1 of 2 timings are noisy" in " ".join(r.stderr.split())
