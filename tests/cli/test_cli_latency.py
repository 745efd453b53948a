"""calibrate, targets and predict, run in-process as a user would run them."""

import json
from fractions import Fraction
from itertools import product

import pytest
from cli_helpers import one_error_line, run

from mobilecost.latency import targets as tg
from mobilecost.latency import whole as lt
from mobilecost.latency.measurements import Config, read_measurements

THETA = (1 / 25e6, 1 / 4e6, 1 / 12e6, 0.040)
HEADER = "spec,alpha,resolution,batch,latency_ms,latency_iqr_ms,runs,device,dtype\n"


def grid_rows(alphas=("1", "0.75", "0.5", "0.25"), resolutions=(224, 192, 160, 128)):
    model = lt.Fit(THETA, "sum", "float32", ())
    return [f"mobilenet_v1,{a},{r},1,{lt.predict_ms(model, Config('mobilenet_v1', Fraction(a), r)):.6f},"
            f"0.1,10,cpu,float32\n" for a, r in product(alphas, resolutions)]


@pytest.fixture
def tdir(tmp_path):
    return tmp_path / "targets"


def write(tmp_path, text, name="m.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def no_target_written(tdir):
    return not tdir.exists() or not any(tdir.iterdir())


def test_calibrate_list_predict_validate(tmp_path, tdir):
    csv_path = write(tmp_path, "# measured somewhere\n" + HEADER + "".join(grid_rows()))
    r = run("calibrate", csv_path, "--target", "phone", "--targets-dir", tdir, "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 16 and all(abs(x["error"]) < 1e-6 for x in rows)
    assert "wrote target phone" in r.stderr
    stored = json.loads((tdir / "phone.json").read_text())
    assert stored["fit"]["points"] == 16 and stored["device"] == "cpu"
    assert stored["model"]["coefficients"]["ms_per_layer"] == pytest.approx(0.040, rel=1e-6)

    r = run("targets", "--targets-dir", tdir, "--format", "json")
    assert r.exit_code == 0, r.output
    (t,) = json.loads(r.stdout)
    assert (t["target"], t["points"], t["loo_within_10pct"]) == ("phone", 16, 1.0)

    r = run("predict", "mobilenet_v1", "--target", "phone", "--alpha", "0.5,0.35", "--res", "160,96",
            "--targets-dir", tdir, "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert [(x["alpha"], x["resolution"]) for x in rows] == [(0.5, 160), (0.5, 96), (0.35, 160), (0.35, 96)]
    truth = lt.Fit(THETA, "sum", "float32", ())
    for x in rows:
        want = lt.predict_ms(truth, Config("mobilenet_v1", Fraction(str(x["alpha"])), x["resolution"]))
        assert x["predicted_latency_ms"] == pytest.approx(want, rel=1e-5)
    assert rows[0]["measured_latency_ms"] is not None and rows[1]["measured_latency_ms"] is None

    r = run("predict", "--validate", "--target", "phone", "--calibrate-on", "6", "--targets-dir", tdir,
            "--output-dir", tmp_path / "plots", "--format", "csv")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 1 + 10
    assert "100% of 10 within ±10%" in r.stderr
    assert (tmp_path / "plots" / "validate_phone_heldout6.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "validate_phone_heldout6.svg").is_file()

    r = run("predict", "--validate", "--target", "phone", "--targets-dir", tdir,
            "--output-dir", tmp_path / "plots", "--format", "csv")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 1 + 16
    assert "100% of 16 within ±10%" in r.stderr


def test_targets_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILECOST_TARGETS_DIR", str(tmp_path / "env"))
    assert tg.default_dir() == tmp_path / "env"
    csv_path = write(tmp_path, HEADER + "".join(grid_rows()))
    assert run("calibrate", csv_path, "--target", "x").exit_code == 0
    assert (tmp_path / "env" / "x.json").is_file()


def test_store_load_round_trip(tmp_path, tdir):
    data = read_measurements(write(tmp_path, HEADER + "".join(grid_rows(("1", "0.5", "0.25"), (224, 128)))))
    t = tg.calibrate("board", data, source="m.csv")
    tg.save(t, tdir)
    back = tg.load("board", tdir)
    assert back.model == t.model and back.device == "cpu" and back.source == "m.csv"
    assert (back.fit_median_error, back.loo_within) == (t.fit_median_error, t.loo_within)
    assert tg.names(tdir) == ["board"]
    # the interface for sweep/pick: the 6 exact points determine the 4 coefficients, so the
    # stored target predicts what the coefficients the data was made from (THETA) give
    truth = lt.Fit(THETA, "sum", "float32", ())
    want = lt.predict_ms(truth, Config("mobilenet_v1", Fraction(3, 4), 192, 2))
    assert tg.load("board", tdir).predict_ms(Config("mobilenet_v1", 0.75, 192, 2)) == pytest.approx(want, rel=1e-5)
    assert back.latency(Config("mobilenet_v1", "0.5", 128))[1] == "measured"
    assert back.latency(Config("mobilenet_v1", "0.5", 160))[1] == "predicted"


BAD = {
    "missing column": ("spec,alpha,resolution,latency_ms\nmobilenet_v1,1,224,20\n", "missing column(s) batch"),
    "non-numeric latency": (None, "latency_ms must be a number, got 'fast'"),
    "zero latency": (None, "latency_ms must be a positive number, got '0'"),
    "negative latency": (None, "latency_ms must be a positive number, got '-3'"),
    "unknown spec": (None, "unknown spec"),
    "disagreeing duplicate": (None, "also on line 2 with a different latency_ms"),
    "too few points": (HEADER + "".join(grid_rows(("1",), (224, 192, 160, 128))),
                       "needs at least 5 measured configurations"),
    "two devices": (None, "several devices"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_measurements(tmp_path, tdir, case):
    text, message = BAD[case]
    rows = grid_rows()
    if text is None:
        if case == "non-numeric latency":
            rows[3] = "mobilenet_v1,1,128,1,fast,0.1,10,cpu,float32\n"
        elif case == "zero latency":
            rows[3] = "mobilenet_v1,1,128,1,0,0.1,10,cpu,float32\n"
        elif case == "negative latency":
            rows[3] = "mobilenet_v1,1,128,1,-3,0.1,10,cpu,float32\n"
        elif case == "unknown spec":
            rows[3] = "mobilenet_v9,1,128,1,3,0.1,10,cpu,float32\n"
        elif case == "disagreeing duplicate":
            rows.append(rows[0].replace(",0.1,", ",0.2,").replace(rows[0].split(",")[4], "99"))
        elif case == "two devices":
            rows[3] = rows[3].replace(",cpu,", ",cuda,")
        text = HEADER + "".join(rows)
    r = run("calibrate", write(tmp_path, text), "--target", "t", "--targets-dir", tdir)
    line = one_error_line(r)
    assert message in line
    if case in ("non-numeric latency", "zero latency", "negative latency", "unknown spec"):
        assert "m.csv:5:" in line  # header on line 1, the bad row is the fourth
    assert no_target_written(tdir)


def test_bad_measurements_keep_an_existing_target(tmp_path, tdir):
    good = write(tmp_path, HEADER + "".join(grid_rows()), "good.csv")
    assert run("calibrate", good, "--target", "t", "--targets-dir", tdir).exit_code == 0
    before = (tdir / "t.json").read_text()
    bad = write(tmp_path, HEADER + "mobilenet_v1,1,224,1,x,,,cpu,float32\n", "bad.csv")
    one_error_line(run("calibrate", bad, "--target", "t", "--targets-dir", tdir))
    assert (tdir / "t.json").read_text() == before
    assert [p.name for p in tdir.iterdir()] == ["t.json"]


def test_agreeing_duplicate_is_one_point(tmp_path, tdir):
    rows = grid_rows()
    r = run("calibrate", write(tmp_path, HEADER + "".join(rows + rows[:2])), "--target", "t",
            "--targets-dir", tdir, "--format", "csv")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 1 + 16


def test_missing_file_and_bad_name(tmp_path, tdir):
    assert "no such measurements file" in one_error_line(
        run("calibrate", tmp_path / "nope.csv", "--target", "t", "--targets-dir", tdir))
    csv_path = write(tmp_path, HEADER + "".join(grid_rows()))
    assert "invalid target name" in one_error_line(
        run("calibrate", csv_path, "--target", "../evil", "--targets-dir", tdir))
    assert no_target_written(tdir)


def test_unknown_target_lists_known_ones(tmp_path, tdir):
    line = one_error_line(run("predict", "--target", "ghost", "--targets-dir", tdir))
    assert "unknown target 'ghost'" in line and "none yet" in line
    csv_path = write(tmp_path, HEADER + "".join(grid_rows()))
    for name in ("pixel7", "jetson"):
        assert run("calibrate", csv_path, "--target", name, "--targets-dir", tdir).exit_code == 0
    line = one_error_line(run("predict", "--validate", "--target", "ghost", "--targets-dir", tdir))
    assert "known: jetson, pixel7" in line


def test_corrupt_target_file(tmp_path, tdir):
    tdir.mkdir()
    (tdir / "broken.json").write_text("{not json")
    assert "not a valid mobilecost target" in one_error_line(
        run("predict", "--target", "broken", "--targets-dir", tdir))


def test_validate_option_errors(tmp_path, tdir):
    csv_path = write(tmp_path, HEADER + "".join(grid_rows()))
    assert run("calibrate", csv_path, "--target", "t", "--targets-dir", tdir).exit_code == 0
    out = tmp_path / "plots"
    assert "cannot calibrate on 16 of 16" in one_error_line(
        run("predict", "--validate", "--target", "t", "--calibrate-on", "16", "--targets-dir", tdir, "--output-dir", out))
    assert "needs at least 5 calibration points" in one_error_line(
        run("predict", "--validate", "--target", "t", "--calibrate-on", "3", "--targets-dir", tdir, "--output-dir", out))
    assert "not among target t's measured points" in one_error_line(
        run("predict", "--validate", "--target", "t", "--calibrate-with", "1/224,0.3/100",
            "--targets-dir", tdir, "--output-dir", out))
    assert "go with --validate" in one_error_line(
        run("predict", "--target", "t", "--calibrate-on", "6", "--targets-dir", tdir))


@pytest.mark.parametrize("command", ["calibrate", "targets", "predict"])
def test_help_has_an_example(command):
    r = run(command, "--help")
    assert r.exit_code == 0, r.output
    assert "Example: mobilecost " + command in r.stdout
