"""sweep --target, pick --max-latency, and (with torch) sweep --measure and --rounds, in-process."""

import csv
import io
import subprocess
import sys
from fractions import Fraction
from itertools import product

import pytest
from cli_helpers import one_error_line, run

from mobilecost.engine.axes import parse_alphas, parse_resolutions
from mobilecost.engine.cost import cost
from mobilecost.engine.sweep import sweep
from mobilecost.latency import targets as tg
from mobilecost.latency.measurements import Config

CALIBRATION = list(product(("1", "0.75", "0.5", "0.25"), (224, 192, 160, 128)))


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def synthetic_latency_ms(alpha, resolution, i):
    """Not of the model's form (a ±10% wobble), so the fit differs from the points."""
    return 0.3 + cost("mobilenet_v1", Fraction(alpha), resolution).macs / 5e7 * (1 + 0.1 * (-1) ** i)


@pytest.fixture
def tdir(tmp_path):
    """A targets folder holding `syn`, calibrated from a synthetic CSV."""
    lines = ["spec,alpha,resolution,batch,latency_ms,device,dtype"]
    lines += [f"mobilenet_v1,{a},{r},1,{synthetic_latency_ms(a, r, i)!r},cpu,float32"
              for i, (a, r) in enumerate(CALIBRATION)]
    data = tmp_path / "synthetic.csv"
    data.write_text("\n".join(lines) + "\n")
    folder = tmp_path / "targets"
    result = run("calibrate", data, "--target", "syn", "--targets-dir", folder)
    assert result.exit_code == 0, result.output
    return folder


# ----------------------------------------------------------------------------- sweep --target

def test_sweep_target_column_is_the_targets_prediction(tdir):
    result = run("sweep", "--alpha", "0.25..1:0.05", "--res", "128..224:16", "--target", "syn",
                 "--targets-dir", tdir, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    alphas, resolutions = parse_alphas("0.25..1:0.05"), parse_resolutions("128..224:16")
    assert len(rows) == len(alphas) * len(resolutions) == 16 * 7
    configs = [Config("mobilenet_v1", a, r, 1) for a in alphas for r in resolutions]
    target = tg.load("syn", tdir)
    expected = [target.predict_ms(c) for c in configs]
    assert [(Fraction(r["alpha"]), int(r["resolution"])) for r in rows] == [(c.alpha, c.resolution) for c in configs]
    # the sweep predicts the grid vectorised, summing in another order: equal to rounding
    assert [float(r["predicted_latency_ms"]) for r in rows] == pytest.approx(expected, rel=1e-12, abs=0)
    assert "predicted_latency_ms: target syn" in result.stderr


def test_sweep_target_with_batch(tdir):
    result = run("sweep", "--alpha", "0.5", "--res", "160", "--target", "syn", "--targets-dir",
                 tdir, "--batch", "4", "--format", "csv")
    assert result.exit_code == 0, result.output
    (row,) = csv_rows(result.stdout)
    expected = tg.load("syn", tdir).predict_ms(Config("mobilenet_v1", "0.5", 160, 4))
    assert float(row["predicted_latency_ms"]) == pytest.approx(expected, rel=1e-12, abs=0)


def test_sweep_without_measure_does_not_import_torch(tdir):
    code = ("import sys; from mobilecost.cli import main; "
            f"sys.argv=['mobilecost','sweep','--target','syn','--targets-dir',{str(tdir)!r}];\n"
            "try: main()\nexcept SystemExit as e: print('EXIT', e.code)\n"
            "print('LOADED', [m for m in ('torch',) if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "EXIT 0" in out and "LOADED []" in out


@pytest.mark.parametrize("args, message", [
    (["--rounds", "2"], "--rounds needs --measure"),
    (["--threads", "2", "--fresh"], "--threads, --fresh need --measure"),
    (["--batch", "2"], "--batch needs --measure"),
    (["--targets-dir", "x"], "--targets-dir goes with --target"),
])
def test_sweep_timing_options_without_measure(args, message):
    assert message in one_error_line(run("sweep", *args))


def test_sweep_unknown_target_lists_the_known_ones(tdir):
    line = one_error_line(run("sweep", "--target", "nope", "--targets-dir", tdir))
    assert "unknown target 'nope'" in line and "known: syn" in line


# ----------------------------------------------------------------------------- pick --max-latency

def test_pick_max_latency_picks_the_most_accurate_in_budget(tdir):
    target = tg.load("syn", tdir)
    measured = {(Fraction(a), r): synthetic_latency_ms(a, r, i) for i, (a, r) in enumerate(CALIBRATION)}
    budget_ms = measured[(Fraction("0.75"), 160)]  # a measured point exactly on the budget
    alphas, resolutions = parse_alphas("0.25..1:0.05"), parse_resolutions("128..224:16")
    df = sweep("mobilenet_v1", alphas, resolutions)
    best = None
    for a, r, top1 in zip(df["alpha"], df["resolution"], df["top1"]):
        key = (Fraction(str(a)), int(r))
        ms = measured.get(key)
        if ms is None:
            ms = target.predict_ms(Config("mobilenet_v1", key[0], key[1]))
        if ms <= budget_ms and top1 == top1 and (best is None or top1 > best[0]):
            best = (top1, key, ms)
    assert best is not None

    result = run("pick", "--alpha", "0.25..1:0.05", "--res", "128..224:16", "--max-latency",
                 f"{budget_ms!r}ms", "--target", "syn", "--targets-dir", tdir)
    assert result.exit_code == 0, result.output
    _, (a, r), ms = best
    assert (f"most accurate within --max-latency {budget_ms!r}ms: α {float(a):g}, resolution {r}: "
            f"{best[0]:.1f}% top-1") in result.stdout
    source = "measured" if (a, r) in measured else "predicted"
    assert f"{ms:.3f} ms ({source})" in result.stdout
    assert "measured for 16 of 112 configurations" in result.stdout

    rows = csv_rows(run("pick", "--alpha", "0.25..1:0.05", "--res", "128..224:16",
                        "--max-latency", f"{budget_ms!r}ms", "--target", "syn",
                        "--targets-dir", tdir, "--format", "csv").stdout)
    assert rows
    sources = set()
    for row in rows:
        key = (Fraction(row["alpha"]), int(row["resolution"]))
        latency = float(row["latency_ms"])
        sources.add(row["latency_source"])
        if key in measured:
            assert row["latency_source"] == "measured" and latency == measured[key]
        else:
            assert row["latency_source"] == "predicted"
            assert latency == float(row["predicted_latency_ms"])
        assert (row["within_budget"] == "True") == (latency <= budget_ms)
    assert sources == {"measured", "predicted"}
    lat = [float(r["latency_ms"]) for r in rows]
    top1 = [float(r["top1"]) for r in rows]
    assert lat == sorted(lat) and top1 == sorted(top1)  # a frontier of top-1 against latency


def test_pick_no_configuration_in_latency_budget(tdir):
    line = one_error_line(run("pick", "--max-latency", "0.01ms", "--target", "syn",
                              "--targets-dir", tdir), code=1)
    assert "no configuration with known accuracy meets --max-latency 0.01ms" in line
    assert "the lowest latency on the grid" in line


@pytest.mark.parametrize("args, message", [
    (["--max-latency", "5ms"], "--max-latency needs --target"),
    (["--max-latency", "abc", "--target", "syn"], "--max-latency abc: expected a finite positive number"),
    (["--max-latency", "0ms", "--target", "syn"], "--max-latency 0ms: must be > 0"),
    (["--max-latency", "5ms", "--target", "nope"], "unknown target 'nope'"),
])
def test_pick_bad_latency_input(tdir, args, message):
    line = one_error_line(run("pick", *args, "--targets-dir", tdir) if "--target" in args
                          else run("pick", *args))
    assert message in line
    if "nope" in args:
        assert "known: syn" in line


@pytest.mark.parametrize("args", [
    ("sweep", "--res", "224,320x240", "--target", "syn"),
    ("pick", "--res", "224,320x240", "--target", "syn", "--max-latency", "5ms"),
])
def test_latency_on_a_non_square_input_is_refused(tdir, args):
    line = one_error_line(run(*args, "--targets-dir", tdir))
    assert "320x240: latency targets are calibrated and predicted on square inputs only" in line
    line = one_error_line(run("predict", "--res", "320x240", "--target", "syn", "--targets-dir", tdir))
    assert "--res must be comma-separated integers, got '320x240'" in line


def test_calibrating_on_a_non_square_measurement_is_refused(tmp_path):
    data = tmp_path / "m.csv"
    data.write_text("spec,alpha,resolution,batch,latency_ms\n"
                    "mobilenet_v1,1,224,1,10\nmobilenet_v1,1,320x240,1,12\n")
    line = one_error_line(run("calibrate", data, "--target", "x", "--targets-dir", tmp_path / "t"))
    assert "m.csv:3: resolution must be an integer, got '320x240'" in line
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").iterdir())
