"""What every command's output promises: answers in the data, one meaning per option, tables
that fit the terminal, no writes into the checkout by default, options checked before work."""

import csv
import io
import json

import pytest
import typer.main
from cli_helpers import one_error_line, run

import mobilecost
from mobilecost.cli import app

# Table 2 of the paper, by hand: full conv 3·3·3·32·112·112, 13 depthwise, 13 pointwise and the
# FC layer 1024·1000 add up to the network's Mult-Adds; weights likewise to its parameters.
V1_MACS = 10_838_016 + 17_385_984 + 539_492_352 + 1_024_000  # = 568,740,352
V1_PARAMS = 864 + 44_640 + 3_139_584 + 1_024_000  # = 4,209,088


# --------------------------------------------------------------------------- answers in the data

def test_cost_csv_ends_with_the_total_row():
    r = run("cost", "--format", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    total = rows[-1]
    assert total["layer"] == "total"
    assert int(total["macs"]) == V1_MACS == 568_740_352
    assert int(total["params"]) == V1_PARAMS == 4_209_088
    assert sum(int(x["macs"]) for x in rows[:-1]) == V1_MACS


def test_cost_json_carries_layers_and_total():
    r = run("cost", "--format", "json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert set(data) == {"layers", "total"}
    assert len(data["layers"]) == 29  # Table 1: 27 convolutions, the pool and the FC layer
    assert data["total"]["macs"] == V1_MACS and data["total"]["params"] == V1_PARAMS
    assert sum(x["macs"] for x in data["layers"]) == V1_MACS


def test_table1_csv_has_the_total_too():
    rows = list(csv.DictReader(io.StringIO(run("table1", "--format", "csv").stdout)))
    assert rows[-1]["layer"] == "total" and int(rows[-1]["macs"]) == V1_MACS


def _chosen(rows):
    return [x for x in rows if x["chosen"] in (True, "True")]


def test_pick_marks_the_chosen_configuration_in_json_and_csv():
    # of the paper's 16 (Table 7's Mult-Adds), within 300M: 1.0-160 (290.68M, 68.0% top-1),
    # 0.75-192 (239.27M, 67.2%) and smaller; 1.0-192 (418M) and 0.75-224 (325M) are over
    r = run("pick", "--max-macs", "300M", "--format", "json")
    assert r.exit_code == 0
    (best,) = _chosen(json.loads(r.stdout))
    assert (best["alpha"], best["resolution"], best["top1"]) == (1.0, 160, 68.0)
    rows = list(csv.DictReader(io.StringIO(run("pick", "--max-macs", "300M", "--format",
                                               "csv").stdout)))
    (best,) = _chosen(rows)
    assert (best["alpha"], best["resolution"]) == ("1.0", "160")


def test_pick_chosen_row_is_the_best_in_budget_even_off_the_frontier():
    grid = ["--alpha", "0.25..1:0.05", "--res", "128..224:16"]
    budgets = ["--max-macs", "300M", "--max-params", "2M"]
    r = run("pick", *grid, *budgets, "--format", "json")
    assert r.exit_code == 0
    (best,) = _chosen(json.loads(r.stdout))
    # the best by a second route: every row of the sweep, filtered here
    rows = list(csv.DictReader(io.StringIO(run("sweep", *grid, "--format", "csv").stdout)))
    fits = [x for x in rows if int(x["macs"]) <= 300_000_000 and int(x["params"]) <= 2_000_000
            and x["top1"]]
    top = max(float(x["top1"]) for x in fits)
    assert best["top1"] == pytest.approx(top) and best["params"] <= 2_000_000


# --------------------------------------------------------------------------- options

def _commands():
    return typer.main.get_command(app).commands


def test_version_and_short_help():
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"mobilecost {mobilecost.__version__}"
    assert run("-h").stdout == run("--help").stdout
    for name in _commands():
        short, long = run(name, "-h"), run(name, "--help")
        assert short.exit_code == 0 and short.stdout == long.stdout, name


def test_a_short_option_means_one_thing_and_o_is_always_an_output_file():
    meaning = {}
    for name, cmd in _commands().items():
        for p in cmd.params:
            longs = [o for o in p.opts if o.startswith("--")]
            for o in p.opts:
                if o.startswith("-") and not o.startswith("--"):
                    meaning.setdefault(o, set()).update(longs)
    assert all(len(v) == 1 for v in meaning.values()), meaning
    assert meaning["-o"] == {"--output"}
    # folders are always --...-dir; --output never takes a folder
    for name, cmd in _commands().items():
        for p in cmd.params:
            if "--out-dir" in p.opts:
                raise AssertionError(f"{name}: --out-dir (folders are --output-dir)")


# --------------------------------------------------------------------------- tables

TABLE_COMMANDS = [["table1"], ["table2"], ["table3"], ["cost"], ["cost", "mobilenet_v2"],
                  ["published"], ["sweep"], ["sweep", "--alpha", "0.35,1", "--res", "97"],
                  ["pick", "--max-macs", "300M"], ["accuracy"], ["accuracy", "--validate"]]


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("args", TABLE_COMMANDS, ids=lambda a: "-".join(a))
def test_tables_fit_the_terminal_and_cut_no_number(monkeypatch, args, width):
    from rich.cells import cell_len

    monkeypatch.setenv("COLUMNS", str(width))
    r = run(*args)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert "…" not in r.stdout
    assert all(cell_len(line) <= width for line in lines)
    # a cropped table loses its right border
    body = [line for line in lines if line.startswith(("│", "┃", "┏", "┡", "└", "├"))]
    assert body and all(line.rstrip()[-1] in "│┃┓┩┘┤" for line in body)


def test_narrow_table_says_which_columns_it_left_out(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = run("sweep").stdout
    assert "columns left out to fit 80 columns: Peak act. (M)" in out
    assert "568.74" in out and "Top-1" in out  # the answer stays


def test_a_pipe_gets_the_table_an_80_column_terminal_shows(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = run("cost", "mobilenet_v2").stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "300,774,272" in out  # the total, whole
    assert "left out" in out  # and a note naming the columns that did not fit


# --------------------------------------------------------------------------- writing files

def test_plot_writes_into_the_current_directory_not_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run("sweep", "--plot", "--format", "csv")
    assert r.exit_code == 0, r.output
    folder = tmp_path / "mobilecost-reports"
    assert (folder / "sweep_mobilenet_v1.csv").exists()
    assert (folder / "macs_heatmap_mobilenet_v1.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mobilecost-reports"]


def test_predict_validate_writes_into_the_current_directory(tmp_path, monkeypatch):
    # a synthetic device: 1 ms plus 1 ms per 100M Mult-Adds, on the paper's 16 configurations
    rows = list(csv.DictReader(io.StringIO(run("sweep", "--format", "csv").stdout)))
    data = tmp_path / "m.csv"
    data.write_text("spec,alpha,resolution,batch,latency_ms\n" + "".join(
        f"mobilenet_v1,{x['alpha']},{x['resolution']},1,{1 + int(x['macs']) / 1e8}\n"
        for x in rows))
    tdir = tmp_path / "targets"
    assert run("calibrate", data, "--target", "syn", "--targets-dir", tdir).exit_code == 0
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = run("predict", "--validate", "--target", "syn", "--targets-dir", tdir)
    assert r.exit_code == 0, r.output
    assert [p.name for p in work.iterdir()] == ["mobilecost-reports"]
    assert list((work / "mobilecost-reports").glob("validate_syn_loo.png"))


def test_sweep_output_file(tmp_path):
    out = tmp_path / "grid.csv"
    r = run("sweep", "-o", out)
    assert r.exit_code == 0 and r.stdout == ""
    assert out.read_text() == run("sweep", "--format", "csv").stdout
    out = tmp_path / "grid.json"
    assert run("sweep", "--output", out).exit_code == 0
    assert json.loads(out.read_text())[0]["macs"] == V1_MACS


@pytest.mark.parametrize("args, fragment", [
    (["--format", "parquet"], "give --output FILE.parquet"),
    (["-o", "{tmp}"], "is a directory"),
    (["-o", "{tmp}/no/such/x.csv"], "no such folder"),
    (["-o", "{tmp}/x.txt"], "cannot tell the format"),
])
def test_sweep_output_file_errors(tmp_path, args, fragment):
    args = [a.format(tmp=tmp_path) for a in args]
    assert fragment in one_error_line(run("sweep", *args))
    assert not (tmp_path / "no").exists()


# --------------------------------------------------------------------------- checks before work

@pytest.mark.parametrize("budget", ["1e400", "inf", "nan", "1e301", "-5M", "0"])
def test_budgets_are_finite_positive_numbers(budget):
    from mobilecost.engine.axes import parse_latency_ms, parse_quantity
    from mobilecost.errors import MobilecostError

    with pytest.raises(MobilecostError, match=r"^--max-macs "):
        parse_quantity(budget, "--max-macs")
    with pytest.raises(MobilecostError, match=r"^--max-latency "):
        parse_latency_ms(budget + "ms", "--max-latency")
    assert "--max-macs" in one_error_line(run("pick", "--max-macs", budget))


def test_large_finite_budgets_are_accepted():
    from mobilecost.engine.axes import parse_latency_ms, parse_quantity

    assert parse_quantity("1e300") == 10**300
    assert parse_latency_ms("1e300ms") == 1e300
    assert parse_latency_ms("1e297s") == 1e300
    r = run("pick", "--max-macs", "1e300", "--format", "json")
    (best,) = _chosen(json.loads(r.stdout))
    assert (best["alpha"], best["resolution"]) == (1.0, 224)  # 70.9%, the best of all 16


def test_latency_budget_is_checked_before_the_target_is_read(tmp_path):
    line = one_error_line(run("pick", "--max-latency", "1e400ms", "--target", "nope",
                              "--targets-dir", tmp_path))
    assert "--max-latency 1e400ms: too large" in line


@pytest.mark.parametrize("cmd", [["sweep", "--target", "nope"],
                                 ["pick", "--max-macs", "1G", "--target", "nope"]])
def test_a_failed_command_leaves_no_empty_folder(tmp_path, cmd):
    folder = tmp_path / "new" / "reports"
    line = one_error_line(run(*cmd, "--targets-dir", tmp_path / "t", "--output-dir", folder))
    assert "nope" in line
    assert not (tmp_path / "new").exists()


def test_output_dir_that_is_a_file_is_refused_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for cmd in (["sweep"], ["pick", "--max-macs", "300M"]):
        line = one_error_line(run(*cmd, "--output-dir", blocker))
        assert "not a directory" in line


@pytest.mark.parametrize("where, fragment", [("{tmp}", "is a directory"),
                                             ("{tmp}/no/such/x.csv", "no such folder")])
def test_measure_output_is_checked_before_timing(tmp_path, monkeypatch, where, fragment):
    pytest.importorskip("torch")
    from mobilecost.torch import timing

    def never(*a, **k):
        raise AssertionError("timed before the options were checked")

    monkeypatch.setattr(timing, "measure", never)
    line = one_error_line(run("measure", "--alpha", "0.25", "--res", "32", "--cache-dir",
                              tmp_path / "c", "-o", where.format(tmp=tmp_path)))
    assert fragment in line
    assert not (tmp_path / "no").exists()


def test_sweep_to_parquet(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "grid.parquet"
    r = run("sweep", "--alpha", "0.25..1:0.05", "--res", "128..224:16", "-o", out)
    assert r.exit_code == 0, r.output
    table = pq.read_table(out)
    rows = list(csv.DictReader(io.StringIO(run("sweep", "--alpha", "0.25..1:0.05", "--res",
                                               "128..224:16", "--format", "csv").stdout)))
    assert table.num_rows == len(rows) == 16 * 7
    assert table.column("macs").to_pylist() == [int(x["macs"]) for x in rows]
    assert table.column("macs").to_pylist()[-1] == V1_MACS  # α 1, 224 comes last


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    line = one_error_line(run("sweep", "-o", tmp_path / "grid.parquet"))
    assert "pip install 'mobilecost[parquet]'" in line
    assert not list(tmp_path.iterdir())
