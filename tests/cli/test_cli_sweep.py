import csv
import io
import json

import pytest
from by_hand import v1_macs
from cli_helpers import one_error_line as one_line_error
from cli_helpers import run


def test_default_sweep_is_the_papers_sixteen():
    r = run("sweep", "--format", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 16
    assert (rows[0]["alpha"], rows[0]["resolution"], rows[0]["macs"]) == ("1.0", "224", str(v1_macs()))
    assert rows[-1]["alpha"] == "0.25" and rows[-1]["resolution"] == "128"
    assert {row["accuracy_source"] for row in rows} == {"published"}


def test_fast_csv_equals_the_report_formatter():
    from fractions import Fraction as F

    import mobilecost
    from mobilecost.reports.output import frame_csv
    from mobilecost.reports.report import to_csv
    from mobilecost.reports.sweep import sweep_report

    for spec, alphas, res in [("mobilenet_v1", [F(i, 20) for i in range(1, 25)], range(96, 260, 7)),
                              ("mobilenet_v2", [F(1), F(1, 3)], [224, 97])]:
        df = mobilecost.sweep(spec, alphas, res)  # published, estimated and empty accuracies
        report = sweep_report(df)
        assert frame_csv(df, report.columns) == to_csv(report)


def test_ranges_and_rho():
    r = run("sweep", "--alpha", "0.5..1", "--rho", "0.5,1", "--format", "json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert [(d["alpha"], d["resolution"]) for d in data] == [
        (0.5, 112), (0.5, 224), (0.75, 112), (0.75, 224), (1.0, 112), (1.0, 224)]
    assert data[-1]["macs"] == v1_macs()  # Table 1: 568,740,352


def test_table_and_markdown():
    r = run("sweep", "--alpha", "1", "--res", "224")
    assert r.exit_code == 0 and "568.74" in r.stdout and "published" in r.stdout
    r = run("sweep", "--alpha", "0.6", "--res", "200", "--format", "markdown")
    assert r.exit_code == 0 and "| estimated |" in r.stdout


def test_output_writes_the_files(tmp_path):
    r = run("sweep", "--output-dir", str(tmp_path), "--format", "csv")
    assert r.exit_code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["sweep_mobilenet_v1.csv", "sweep_mobilenet_v1.json", "sweep_mobilenet_v1.md"]
    assert (tmp_path / "sweep_mobilenet_v1.csv").read_text() == r.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--alpha", "1..0.25"], "runs downwards"),
    (["--alpha", "0"], "must be > 0"),
    (["--res", "abc"], "'abc' is not a whole number"),
    (["--alpha", "0.25..1:0"], "step must be > 0"),
    (["--res", "128..224:0"], "step must be > 0"),
    (["--alpha", "0.001..1:0.001", "--res", "1..10000:1"], "10,000,000 configurations"),
    (["--res", "224", "--rho", "1"], "not both"),
    (["no_such_spec"], "unknown spec"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    line = one_line_error(run("sweep", *args))
    assert fragment in line


def test_grid_limit_is_configurable():
    line = one_line_error(run("sweep", "--alpha", "0.25..1:0.01", "--res", "128..224:1",
                              "--max-configs", "100"))
    assert "7,372 configurations" in line and "--max-configs" in line


def test_resolution_too_small(tmp_path):
    spec = tmp_path / "tiny.spec"
    spec.write_text("name tiny\ninput 32 3!\nconv 3 8 s2\navgpool 4\nfc 10!\n")
    line = one_line_error(run("sweep", str(spec), "--res", "4,32"))
    assert "too small" in line and "resolution 4" in line


def test_unusable_output_directory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line_error(run("sweep", "--output-dir", str(blocker / "sub")))
    assert "output directory" in line
    line = one_line_error(run("sweep", "--output-dir", str(blocker)))
    assert str(blocker) in line


def test_failed_write_leaves_no_partial_file(tmp_path):
    (tmp_path / "sweep_mobilenet_v1.json").mkdir()  # a folder where a file must go
    line = one_line_error(run("sweep", "--output-dir", str(tmp_path)))
    assert "sweep_mobilenet_v1.json" in line
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    csv_text = (tmp_path / "sweep_mobilenet_v1.csv").read_text()
    assert len(csv_text.splitlines()) == 17  # written before, complete


def test_pick():
    r = run("pick", "--max-macs", "300M")
    assert r.exit_code == 0
    assert "most accurate within --max-macs 300M: α 1, resolution 160: 68.0% top-1" in r.stdout
    r = run("pick", "--max-params", "2M", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.exit_code == 0 and rows and "within_budget" in rows[0]
    assert "α 0.5, resolution 224" in r.stderr


def test_pick_nothing_fits_exits_1():
    line = one_line_error(run("pick", "--max-macs", "1M", "--format", "csv"), code=1)
    assert "no configuration" in line and "13.57M" in line


@pytest.mark.parametrize("args", [["--max-macs", "300X"], ["--max-params", "-2M"],
                                  ["--max-macs", "0"]])
def test_pick_bad_budget(args):
    line = one_line_error(run("pick", *args))
    assert args[0] in line


def test_pick_spec_without_accuracy():
    line = one_line_error(run("pick", "mobilenet_v2", "--alpha", "1.2", "--max-macs", "1G"))  # outside v2's box
    assert "no accuracy" in line


def test_formula():
    r = run("formula")
    assert r.exit_code == 0
    assert "MACs(α, ρ) = ρ²·(28,224,000·α + 539,492,352·α²) + 1,024,000·α" in r.stdout
    assert "multiple of 1/32" in r.stdout and "rounding bites" in r.stdout


def test_accuracy_commands():
    r = run("accuracy", "--format", "csv")
    assert r.exit_code == 0 and "tensorflow/models" in r.stdout and "Table 7" in r.stdout
    r = run("accuracy", "--validate")
    assert r.exit_code == 0 and "leave-one-out RMSE" in r.stdout


def test_plots_are_written(tmp_path):
    r = run("pick", "--max-macs", "300M", "--plot", "--output-dir", str(tmp_path))
    assert r.exit_code == 0
    png = tmp_path / "pareto_mobilenet_v1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "pareto_mobilenet_v1.svg").read_text().lstrip().startswith("<?xml")


def test_every_command_has_an_example():
    for cmd in ("sweep", "formula", "accuracy", "pick"):
        r = run(cmd, "--help")
        assert r.exit_code == 0 and "Example: mobilecost" in r.stdout


def test_sweep_several_specs_is_their_sweeps_one_after_the_other():
    import csv
    import io

    names = ["mobilenet_v2", "mobilenet_v3_large", "mnasnet_b1"]
    together = run("sweep", "--spec", ",".join(names), "--alpha", "0.75,1", "--res", "160,224",
                   "--format", "csv")
    assert together.exit_code == 0, together.output
    alone = []
    for n in names:
        r = run("sweep", n, "--alpha", "0.75,1", "--res", "160,224", "--format", "csv")
        alone += list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(csv.DictReader(io.StringIO(together.stdout))) == alone
    assert [row["spec"] for row in alone] == [n for n in names for _ in range(4)]


def test_sweep_several_specs_bad_input():
    assert "not both" in one_line_error(run("sweep", "mobilenet_v1", "--spec", "mobilenet_v2"))
    assert "one spec at a time" in one_line_error(run("sweep", "--spec", "mobilenet_v1,mobilenet_v2",
                                                      "--measure"))
    assert "give --res with --spec" in one_line_error(run("sweep", "--spec", "all", "--rho", "1"))
