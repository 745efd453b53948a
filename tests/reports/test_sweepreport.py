"""The grid commands' library side, called without the CLI."""

from fractions import Fraction as F

import pytest

from mobilecost.engine.pareto import Budget
from mobilecost.errors import MobilecostError
from mobilecost.reports.accuracy import accuracy_report
from mobilecost.reports.formula import formula_text
from mobilecost.reports.output import write_frame
from mobilecost.reports.pick import budgets_from_options, nothing_fits, pick_report
from mobilecost.reports.report import to_csv, to_json
from mobilecost.reports.sweep import grid_from_options, sweep_frame, sweep_report

PAPER_ALPHAS = [F(1), F(3, 4), F(1, 2), F(1, 4)]
PAPER_RES = [224, 192, 160, 128]


def test_grid_from_options_reads_the_grammar():
    spec, alphas, res = grid_from_options("mobilenet_v1", "0.5..1", None, "0.5,1")
    assert spec.name == "mobilenet_v1"
    assert alphas == [F(1, 2), F(3, 4), F(1)] and res == [112, 224]
    with pytest.raises(MobilecostError, match="not both"):
        grid_from_options("mobilenet_v1", "1", "224", "1")


def test_sweep_report_rows_and_notes():
    df = sweep_frame("mobilenet_v1", PAPER_ALPHAS, PAPER_RES)
    report = sweep_report(df, limit=4)
    assert len(report.rows) == 4 and report.notes[0].startswith("showing the first 4 of 16")
    # 3·3·3·32·112·112 + 13 depthwise + 13 pointwise + 1024·1000 (Table 2), by hand
    assert report.rows[0]["macs"] == 10_838_016 + 17_385_984 + 539_492_352 + 1_024_000


def test_pick_report_marks_the_best_row_and_explains_nothing_fitting():
    budgets = budgets_from_options(max_macs="300M")
    assert budgets == [Budget("macs", 300_000_000, "--max-macs 300M")]
    p = pick_report("mobilenet_v1", PAPER_ALPHAS, PAPER_RES, budgets)
    chosen = [r for r in p.report.rows if r["chosen"]]
    # Table 7 of the paper: 1.0 MobileNet-160 is 290M Mult-Adds, 68.0% (the best under 300M)
    assert [(r["alpha"], r["resolution"]) for r in chosen] == [(1.0, 160)]
    assert '"chosen": true' in to_json(p.report) and ",True\n" in to_csv(p.report)
    p = pick_report("mobilenet_v1", PAPER_ALPHAS, PAPER_RES, budgets_from_options(max_macs="1M"))
    assert not p.fits
    # the cheapest of the 16 is 0.25-128: 13,570,048 Mult-Adds (Table 7 prints 14)
    assert "the fewest Mult-Adds on the grid: 13.57M" in nothing_fits(p)


def test_budgets_one_rule():
    with pytest.raises(MobilecostError, match="^--max-params inf: "):
        budgets_from_options(max_params="inf")
    with pytest.raises(MobilecostError, match="^--max-latency 1e400ms: too large"):
        budgets_from_options(max_latency="1e400ms")


def test_formula_text_and_accuracy_reports():
    text = formula_text("mobilenet_v1")
    assert "MACs(α, ρ) = ρ²·(28,224,000·α + 539,492,352·α²) + 1,024,000·α" in text
    assert len(accuracy_report().rows) >= 16
    loo = accuracy_report(validate=True)
    assert len(loo.rows) == 16 and "leave-one-out RMSE" in loo.notes[0]


def test_write_frame_csv_and_parquet_agree(tmp_path):
    pa = pytest.importorskip("pyarrow.parquet")
    df = sweep_frame("mobilenet_v1", [F(i, 20) for i in range(5, 21)], range(128, 225, 8))
    write_frame(df, tmp_path / "g.csv", "csv")
    write_frame(df, tmp_path / "g.parquet", "parquet")
    table = pa.read_table(tmp_path / "g.parquet")
    assert table.num_rows == len(df) == 16 * 13
    assert table.column("macs").to_pylist() == df["macs"].tolist()
    header = (tmp_path / "g.csv").read_text().splitlines()[0].split(",")
    assert table.column_names == header


def _awkward_frame():
    import numpy as np
    import pandas as pd

    n = 9
    return pd.DataFrame({
        "spec": pd.Categorical(["a,b", 'q"x', "plain"] * 3),
        "whole": np.array([1.0, 2.0, 0.0, -3.0, 1e9, 1e15, 1e16, 123456.0, 5.0]),
        "tiny": np.array([1e-5, 1.23e-7, 5e-324, 1e-4, 0.3, np.nan, -0.5, 2.5e-4, 7e-10]),
        "big": np.array([283226929937.0113, 1e300, 9.99e8, 1e9 + 0.5, np.inf, -np.inf,
                         0.1 + 0.2, 1 / 3, 2 / 3]),
        "count": np.arange(n, dtype=np.int64) * 10**15,
        "flag": np.array([True, False] * 4 + [True]),
        "note": [None, "x, y", 'say "hi"', "line\nbreak", 1.5, "", "ok", None, 7],
        "source": pd.Categorical(["published", None, "estimated"] * 3),
    })


@pytest.mark.parametrize("arrow", [True, False])
def test_fast_csv_is_the_csv_modules_byte_for_byte(monkeypatch, arrow):
    import sys

    from mobilecost.reports.output import frame_csv
    from mobilecost.reports.report import Column, Report
    from mobilecost.reports.sweep import frame_rows

    if arrow:
        pytest.importorskip("pyarrow")
    else:
        monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    df = _awkward_frame()
    cols = [Column(k, k) for k in df.columns]
    assert frame_csv(df, cols) == to_csv(Report("t", cols, frame_rows(df, cols)))


def test_csv_in_blocks_is_the_csv_whole():
    """Blocks of 7 rows (the last one short) join to exactly the text frame_csv makes whole."""
    from fractions import Fraction

    from mobilecost.reports.output import frame_csv, frame_csv_chunks
    from mobilecost.reports.sweep import sweep_columns

    df = sweep_frame("mobilenet_v2", [Fraction(k, 8) for k in range(2, 11)], [96, 131, 224])
    blocks = list(frame_csv_chunks(df, sweep_columns(df), chunk_rows=7))
    assert len(blocks) == 1 + 4  # header, then 27 rows as 7 + 7 + 7 + 6
    assert b"".join(blocks).decode("utf-8") == frame_csv(df, sweep_columns(df))
