"""Targets: α stored exactly, a network known by its spec text, files validated on load,
predictions that extrapolate say so."""

import json
from fractions import Fraction
from importlib import resources
from itertools import product

import pytest
from cli_helpers import one_error_line, run

from mobilecost.latency import targets as tg
from mobilecost.latency import whole as lt
from mobilecost.latency.measurements import Config, Point

THETA = (1 / 25e6, 1 / 4e6, 1 / 12e6, 0.040)
HEADER = "spec,alpha,resolution,batch,latency_ms\n"
TRUTH = lt.Fit(THETA, "sum", "float32", ())


def rows(spec="mobilenet_v1", alphas=("1", "3/4", "1/2", "1/3"), resolutions=(224, 192, 160, 128)):
    return "".join(f"{spec},{a},{r},1,{lt.predict_ms(TRUTH, Config('mobilenet_v1', Fraction(a), r))!r}\n"
                   for a, r in product(alphas, resolutions))


@pytest.fixture
def tdir(tmp_path):
    return tmp_path / "targets"


def calibrate(tmp_path, tdir, text, name="t"):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(HEADER + text)
    r = run("calibrate", csv_path, "--target", name, "--targets-dir", tdir, "--format", "json")
    assert r.exit_code == 0, r.output
    return tg.load(name, tdir)


# ----------------------------------------------------------------------------- exact α

def test_exact_text_reads_back_exactly():
    for a in (Fraction(1, 3), Fraction(3, 4), Fraction(1), Fraction(7, 40), Fraction(2, 3), Fraction(123, 1000)):
        assert tg.to_fraction(tg.exact_text(a)) == a
    assert [tg.exact_text(a) for a in (Fraction(1, 3), Fraction(3, 4), Fraction(2), Fraction(7, 40))] == \
        ["1/3", "0.75", "2", "0.175"]


def test_a_third_is_stored_exactly_and_finds_its_own_points(tmp_path, tdir):
    t = calibrate(tmp_path, tdir, rows())
    stored = json.loads((tdir / "t.json").read_text())
    assert {p["alpha"] for p in stored["points"]} == {"1", "0.75", "0.5", "1/3"}
    third = Config("mobilenet_v1", Fraction(1, 3), 160)
    assert t.measured_ms(third) == lt.predict_ms(TRUTH, third)  # the CSV's value, read back exactly
    r = run("predict", "--target", "t", "--targets-dir", tdir, "--alpha", "1/3", "--res", "160",
            "--format", "json")
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)
    assert row["measured_latency_ms"] == lt.predict_ms(TRUTH, third)


def test_a_format_1_target_still_loads(tmp_path, tdir):
    calibrate(tmp_path, tdir, rows(alphas=("1", "0.75", "0.5", "0.25")))
    d = json.loads((tdir / "t.json").read_text())
    d["format"] = "mobilecost-target/1"
    for key in ("networks", "calibrated_on"):
        del d[key]
    for p in d["points"]:
        del p["network"]
    (tdir / "old.json").write_text(json.dumps(d))
    old = tg.load("old", tdir)
    assert old.points == tg.load("t", tdir).points


def test_a_format_1_third_is_read_as_a_third(tmp_path, tdir):
    calibrate(tmp_path, tdir, rows())
    d = json.loads((tdir / "t.json").read_text())
    d["format"] = "mobilecost-target/1"
    for p in d["points"]:
        del p["network"]
        p["alpha"] = {"1/3": "0.333333"}.get(p["alpha"], p["alpha"])  # what format 1 wrote
    (tdir / "old.json").write_text(json.dumps(d))
    old = tg.load("old", tdir)
    assert {p.config.alpha for p in old.points} == {Fraction(1), Fraction(3, 4), Fraction(1, 2), Fraction(1, 3)}
    assert old.measured_ms(Config("mobilenet_v1", Fraction(1, 3), 160)) is not None


# ----------------------------------------------------------------------------- identity

def copy_of_v1(folder, name_line="name my_v1_copy"):
    text = (resources.files("mobilecost.lang") / "specs" / "mobilenet_v1.spec").read_text()
    text = text.replace("name mobilenet_v1", name_line)
    path = folder / "my_v1_copy.spec"
    path.write_text(text)
    return path


def test_a_renamed_copy_of_a_spec_is_the_same_network(tmp_path, tdir, monkeypatch):
    calibrate(tmp_path, tdir, rows(alphas=("1", "0.75", "0.5", "0.25")))
    copy = copy_of_v1(tmp_path)
    # the built-in and the copy: the same measured points, the same picks
    for spec in ("mobilenet_v1", str(copy)):
        r = run("pick", spec, "--max-latency", "20ms", "--target", "t", "--targets-dir", tdir,
                "--format", "json")
        assert r.exit_code == 0, r.output
        front = json.loads(r.stdout)
        assert front and {x["latency_source"] for x in front} == {"measured"}
        assert "measured for all 16 configurations" in " ".join(r.stderr.split())
    # another layer is another network: nothing measured, and the output says it extrapolates
    other = tmp_path / "other.spec"
    other.write_text(copy.read_text().replace("fc 1000!", "fc 10!"))
    r = run("sweep", other, "--target", "t", "--targets-dir", tdir, "--format", "json")
    assert r.exit_code == 0, r.output
    swept = json.loads(r.stdout)
    assert len(swept) == 16 and {x["latency_extrapolated"] for x in swept} == {"spec"}
    assert "16 of 16 predicted latencies extrapolate" in " ".join(r.stderr.split())


def test_a_target_from_a_relative_spec_predicts_from_anywhere(tmp_path, tdir, monkeypatch):
    here = tmp_path / "project"
    here.mkdir()
    copy_of_v1(here, "name mine")
    (here / "m.csv").write_text(HEADER + rows(spec="my_v1_copy.spec", alphas=("1", "0.75", "0.5", "0.25")))
    monkeypatch.chdir(here)
    r = run("calibrate", "m.csv", "--target", "mine", "--targets-dir", tdir)
    assert r.exit_code == 0, r.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    t = tg.load("mine", tdir)
    assert {p.config.spec for p in t.points} == {"mine"}
    r = run("predict", "--validate", "--target", "mine", "--targets-dir", tdir, "--output-dir", elsewhere / "plots",
            "--format", "json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 16
    # the stored network is mobilenet_v1's: predicting the built-in uses the same points
    assert t.measured_ms(Config("mobilenet_v1", Fraction(1, 2), 160)) is not None


# ----------------------------------------------------------------------------- bad files

def test_targets_lists_the_good_ones_and_warns_of_each_bad_one(tmp_path, tdir):
    calibrate(tmp_path, tdir, rows(alphas=("1", "0.75", "0.5", "0.25")))
    good = json.loads((tdir / "t.json").read_text())
    bad = {"list": "[]", "text": "not json", "nan": json.dumps(good).replace('"ms_per_layer": 0.04', '"ms_per_layer": NaN'),
           "negative": json.dumps(good).replace('"ms_per_layer": 0.04', '"ms_per_layer": -1'),
           "nopoints": json.dumps({**good, "points": []}),
           "badlat": json.dumps({**good, "points": [{**good["points"][0], "latency_ms": "fast"}]})}
    assert '"ms_per_layer": 0.04' in json.dumps(good)  # the replacements above hit
    for name, text in bad.items():
        (tdir / f"{name}.json").write_text(text)
    r = run("targets", "--targets-dir", tdir, "--format", "json")
    assert r.exit_code == 0, r.output
    (listed,) = json.loads(r.stdout)
    assert listed["target"] == "t"
    assert listed["calibrated_on"] == "mobilenet_v1; batch 1; α 0.25–1; resolution 128–224"
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == len(bad) and "Traceback" not in r.output
    for name in bad:
        line = one_error_line(run("predict", "--target", name, "--targets-dir", tdir))
        assert f"{name}.json: not a valid mobilecost target" in line


def test_calibrate_refuses_an_absurd_latency(tmp_path, tdir):
    csv_path = tmp_path / "m.csv"
    text = rows(alphas=("1", "0.75", "0.5", "0.25"))
    csv_path.write_text(HEADER + text.replace(text.splitlines()[0].split(",")[-1], "1e-300", 1))
    line = one_error_line(run("calibrate", csv_path, "--target", "t", "--targets-dir", tdir))
    assert "m.csv:2: latency_ms must be between" in line
    # the library's fit refuses it too, rather than a LinAlgError
    pts = [Point(Config("mobilenet_v1", Fraction(1, k), 224), 1e-300 if k == 1 else 5.0) for k in range(1, 7)]
    with pytest.raises(tg.MobilecostError, match="latency_ms must be between"):
        lt.fit(pts)


# ----------------------------------------------------------------------------- extrapolation

def test_predict_marks_what_it_extrapolates(tmp_path, tdir):
    calibrate(tmp_path, tdir, rows(alphas=("1", "0.75", "0.5", "0.25")))
    r = run("predict", "--target", "t", "--targets-dir", tdir, "--alpha", "0.5,1.5", "--res", "160,512",
            "--format", "json")
    assert r.exit_code == 0, r.output
    got = {(x["alpha"], x["resolution"]): x["extrapolated"] for x in json.loads(r.stdout)}
    # calibrated on α 0.25..1 and 128..224: 1.5 > 1.1·1 and 512 > 1.1·224
    assert got == {(0.5, 160): "", (0.5, 512): "resolution", (1.5, 160): "α", (1.5, 512): "α, resolution"}
    assert "note: 3 of 4 predictions extrapolate" in " ".join(r.stderr.split())
    r = run("predict", "--target", "t", "--targets-dir", tdir, "--batch", "8", "--format", "json")
    assert [x["extrapolated"] for x in json.loads(r.stdout)] == ["batch"]
    assert "leave-one-out median error" not in r.stderr  # quoted only where it applies
    r = run("predict", "--target", "t", "--targets-dir", tdir, "--alpha", "0.6", "--res", "200")
    assert r.exit_code == 0 and "warning" not in r.stderr and "leave-one-out median error" in r.stdout


def test_a_failed_validation_leaves_no_plot_folder(tmp_path, tdir):
    calibrate(tmp_path, tdir, rows(alphas=("1", "0.75", "0.5", "0.25")))
    plots = tmp_path / "plots" / "deep"
    line = one_error_line(run("predict", "--validate", "--target", "t", "--targets-dir", tdir,
                              "--calibrate-on", "16", "--output-dir", plots))
    assert "cannot calibrate on 16 of 16" in line
    assert not (tmp_path / "plots").exists()


def test_predict_table_warns_on_stderr(tmp_path, tdir):
    calibrate(tmp_path, tdir, rows(alphas=("1", "0.75", "0.5", "0.25")))
    r = run("predict", "--target", "t", "--targets-dir", tdir, "--alpha", "2")
    assert r.exit_code == 0, r.output
    assert "warning: 1 of 1 predictions extrapolate" in " ".join(r.stderr.split())
    assert "Extrapolates" in r.stdout
