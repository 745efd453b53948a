"""Timing, the measurement cache, an interrupted grid, failure and bad input."""

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

from cli_helpers import one_error_line  # noqa: E402
from timing_helpers import all_quiet  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from mobilecost.cli import app  # noqa: E402
from mobilecost.errors import ConfigError  # noqa: E402
from mobilecost.lang.load import load_spec
from mobilecost.torch import timing  # noqa: E402
from mobilecost.torch.cache import MeasurementCache
from mobilecost.torch.clock import MeasureOptions, prepare
from mobilecost.torch.timing import ROW_COLUMNS, GridInterrupted, measure_grid

runner = CliRunner()
FAST = MeasureOptions(threads=1, min_run_time_s=0.01, max_run_time_s=0.05)
TINY = [("0.25", 32), ("0.25", 40), ("0.5", 32)]


@pytest.fixture(autouse=True)
def quiet(request, monkeypatch):
    """Real timings on a shared test machine are often noisy; the tests that count
    measurements take every timing as quiet (the noise tests below stub the timer instead)."""
    if "noise" not in request.node.name:
        all_quiet(monkeypatch)


def test_measure_row_has_every_column_and_a_latency(tmp_path):
    rows = measure_grid("mobilenet_v1", [("0.25", 32)], FAST, MeasurementCache(tmp_path))
    (row,) = rows
    assert tuple(row)[:len(ROW_COLUMNS)] == ROW_COLUMNS
    assert row["spec"] == "mobilenet_v1" and row["alpha"] == Fraction(1, 4)
    assert row["resolution"] == 32 and row["batch"] == 1 and row["threads"] == 1
    assert row["latency_ms"] > 0 and row["latency_iqr_ms"] >= 0 and row["runs"] >= 1
    assert row["torch_version"] == torch.__version__ and row["device"] == "cpu"
    assert (row["dtype"], row["memory_format"], row["error"]) == ("fp32", "contiguous", "")
    assert not row["cached"]


def test_interrupted_grid_resumes_from_the_cache(tmp_path, monkeypatch):
    cache = MeasurementCache(tmp_path)
    calls = []
    real = timing.measure

    def counting(*a, **k):
        calls.append(a[1:3])
        return real(*a, **k)

    monkeypatch.setattr(timing, "measure", counting)

    def stop_after_two(done, total, row):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(GridInterrupted) as exc:
        measure_grid("mobilenet_v1", TINY, FAST, cache, on_progress=stop_after_two)
    assert len(exc.value.rows) == 2 and exc.value.total == 3
    assert len(cache) == 2 and len(calls) == 2
    first = exc.value.rows

    rows = measure_grid("mobilenet_v1", TINY, FAST, cache)
    assert [r["cached"] for r in rows] == [True, True, False]
    assert len(calls) == 3  # only the third was measured
    assert [r["latency_ms"] for r in rows[:2]] == [r["latency_ms"] for r in first]
    assert rows[0]["alpha"] == Fraction(1, 4)

    again = measure_grid("mobilenet_v1", TINY[:1], FAST, cache, fresh=True)
    assert not again[0]["cached"] and len(calls) == 4


def test_cache_key_changes_with_everything_that_changes_a_measurement():
    spec = load_spec("mobilenet_v1")
    base = MeasurementCache.key(spec, Fraction(1, 4), 32, FAST, "cpu A")
    variants = [
        MeasurementCache.key(load_spec("shallow_mobilenet"), Fraction(1, 4), 32, FAST, "cpu A"),
        MeasurementCache.key(spec, Fraction(1, 2), 32, FAST, "cpu A"),
        MeasurementCache.key(spec, Fraction(1, 4), 40, FAST, "cpu A"),
        MeasurementCache.key(spec, Fraction(1, 4), 32, FAST, "cpu B"),
        MeasurementCache.key(spec, Fraction(1, 4), 32, FAST, "cpu A", time_share=True),
    ]
    for field, value in [("batch", 2), ("threads", 2), ("dtype", "bf16"), ("channels_last", True),
                         ("compile", True), ("min_run_time_s", 0.02)]:
        opts = replace(FAST, **{field: value})
        variants.append(MeasurementCache.key(spec, Fraction(1, 4), 32, opts, "cpu A"))
    assert len({base, *variants}) == len(variants) + 1
    assert MeasurementCache.key(spec, Fraction(1, 4), 32, FAST, "cpu A") == base


def test_torch_version_is_part_of_the_key(monkeypatch):
    spec = load_spec("mobilenet_v1")
    before = MeasurementCache.key(spec, Fraction(1), 32, FAST, "x")
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert MeasurementCache.key(spec, Fraction(1), 32, FAST, "x") != before


def test_out_of_memory_is_recorded_and_the_grid_goes_on(tmp_path, monkeypatch):
    real = prepare

    def oom_at_40(model, x, options):
        if model.resolution == 40:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, x, options)

    from mobilecost.torch.runtimes import eager

    monkeypatch.setattr(eager, "prepare_module", oom_at_40)
    cache = MeasurementCache(tmp_path)
    rows = measure_grid("mobilenet_v1", TINY, FAST, cache)
    assert [bool(r["error"]) for r in rows] == [False, True, False]
    assert rows[1]["error"].startswith("out of memory") and rows[1]["latency_ms"] is None
    assert rows[2]["latency_ms"] > 0
    assert len(cache) == 2  # the failed configuration is tried again next time


def test_bad_configuration_fails_before_anything_is_timed(tmp_path, monkeypatch):
    monkeypatch.setattr(timing, "measure", lambda *a, **k: pytest.fail("timed"))
    with pytest.raises(ConfigError, match="resolution"):
        measure_grid("mobilenet_v1", [("0.25", 32), ("0.25", 0)], FAST, MeasurementCache(tmp_path))


@pytest.mark.parametrize("kwargs,message", [
    ({"batch": 0}, "batch"), ({"device": "tpu"}, "device"), ({"dtype": "int8"}, "dtype"),
    ({"cuda_graphs": True}, "--cuda-graphs needs --device cuda"), ({"threads": 0}, "threads"),
])
def test_options_are_checked(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MeasureOptions(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("command", ["measure", "profile"])
def test_cuda_without_a_gpu_is_one_line_and_exit_2(command, tmp_path):
    r = runner.invoke(app, [command, "--device", "cuda", "--res", "32"],
                      env={"MOBILECOST_CACHE_DIR": str(tmp_path)})
    line = one_error_line(r)
    assert "--device cuda: no CUDA GPU" in line


def test_measure_command_lists_csv_and_cache(tmp_path):
    out = tmp_path / "lat.csv"
    args = ["measure", "mobilenet_v1", "--alpha", "0.25..0.5", "--res", "32", "--threads", "1",
            "--min-time", "0.01", "--max-time", "0.05", "--cache-dir", str(tmp_path / "cache"), "-o", str(out),
            "--format", "json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(row["alpha"], row["resolution"]) for row in rows] == [(0.25, 32), (0.5, 32)]
    header = out.read_text().splitlines()[0].split(",")
    assert header[:5] == ["spec", "alpha", "resolution", "batch", "latency_ms"]
    assert set(ROW_COLUMNS) <= set(header)
    r2 = runner.invoke(app, args)
    assert [row["cached"] for row in json.loads(r2.stdout)] == [True, True]
    assert [row["latency_ms"] for row in json.loads(r2.stdout)] == [row["latency_ms"] for row in rows]


@pytest.mark.parametrize("args,message", [
    (["--alpha", "1,,0.5"], "--alpha 1,,0.5: empty item"), (["--alpha", "0"], "alpha must be > 0"),
    (["--res", "224,abc"], "--res 224,abc: 'abc' is not a whole number"),
    (["--res", "224,0"], "resolution must be > 0"),
    (["shallow_mobilenet.spec"], "no such spec file"),
])
def test_measure_bad_input_is_one_line(args, message, tmp_path):
    r = runner.invoke(app, ["measure", *args, "--cache-dir", str(tmp_path)])
    assert message in one_error_line(r)


@pytest.mark.parametrize("command", [["crosscheck"], ["measure", "--res", "32"], ["profile"]])
def test_torch_commands_without_torch_say_how_to_install(command, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    r = runner.invoke(app, command)
    assert "install torch: pip install 'mobilecost[torch]'" in one_error_line(r)


def test_analytic_commands_work_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from mobilecost.torch import torch_available\n"
            "assert not torch_available()\n"
            "from mobilecost.cli import main\n"
            "sys.argv = ['mobilecost', 'cost', '--format', 'csv']\n"
            "main()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert str(3 * 3 * 3 * 32 * 112 * 112) in r.stdout  # the first layer's Mult-Adds


def test_importing_the_cli_does_not_import_torch():
    code = "import sys, mobilecost.cli, mobilecost.torch; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "False", r.stderr


@pytest.mark.slow
def test_ctrl_c_keeps_what_was_measured(tmp_path):
    """A real SIGINT to a running `measure`: exit 130, measured configurations cached, resume."""
    cache = tmp_path / "cache"
    args = [sys.executable, "-m", "mobilecost", "measure", "mobilenet_v1", "--alpha",
            "0.25,0.3,0.35,0.4,0.45,0.5", "--res", "32", "--threads", "1", "--min-time", "0.5",
            "--max-time", "0.5", "--cache-dir", str(cache), "--format", "json"]
    # SIGINT as a terminal delivers it: a shell that starts jobs in the background (no job
    # control) passes SIGINT on ignored, and Python keeps an ignored SIGINT ignored
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait for the first measurement to be cached (or the command to end, which fails below)
    while not list(cache.glob("*.json")) and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "run the same command again to resume" in err
    assert out == ""  # no half report
    kept = len(list(cache.glob("*.json")))
    assert 1 <= kept < 6
    assert not list(cache.glob(".*.tmp"))
    # a noisy entry is kept but not served (this is a real, unstubbed run: the machine decides)
    quiet = sum(not json.loads(p.read_text())["noisy"] for p in cache.glob("*.json"))
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert sum(r["cached"] for r in rows) == quiet and len(rows) == 6


def test_configurations_of_several_specs_are_timed_round_by_round(tmp_path, monkeypatch):
    # measure_configs visits every configuration of every spec in round 1 before round 2,
    # and shares measure_grid's cache keys: a spec's grid measured here is cached for it
    from mobilecost.torch.timing import measure_configs

    calls = []
    real = timing.measure

    def counting(*a, **k):
        calls.append((a[0].name, str(a[1]), a[2]))
        return real(*a, **k)

    monkeypatch.setattr(timing, "measure", counting)
    all_quiet(monkeypatch)
    cache = MeasurementCache(tmp_path)
    configs = [("mobilenet_v1", "0.25", 32), ("mobilenet_v2", "0.35", 32), ("mobilenet_v1", "0.5", 32)]
    rows = measure_configs(configs, FAST, cache, rounds=2)
    one_round = [("mobilenet_v1", "1/4", 32), ("mobilenet_v2", "7/20", 32), ("mobilenet_v1", "1/2", 32)]
    assert calls == one_round * 2
    assert [(r["spec"], r["alpha"], r["rounds"]) for r in rows] == [
        ("mobilenet_v1", Fraction(1, 4), 2), ("mobilenet_v2", Fraction(7, 20), 2),
        ("mobilenet_v1", Fraction(1, 2), 2)]
    again = measure_grid("mobilenet_v2", [("0.35", 32)], FAST, cache, rounds=2)
    assert again[0]["cached"] and len(calls) == 6
    with pytest.raises(ConfigError, match="rounds must be >= 1"):
        measure_configs(configs, FAST, cache, rounds=0)
