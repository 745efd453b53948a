"""The committed example reports are what the tool makes: rerun reports/commands.txt and compare."""

import csv
import math
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mobilecost.cli import app

REPORTS = Path(__file__).resolve().parents[2] / "reports"


def _commands():
    lines = (REPORTS / "commands.txt").read_text().splitlines()
    return [shlex.split(l) for l in lines if l.strip() and not l.startswith("#")]


def _cells_equal(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    # integers are compared exactly above; floats (shares, estimates) may differ in the last bit
    # between BLAS builds
    return "." in a and "." in b and math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize("args", _commands(), ids=lambda a: a[0])
def test_committed_csvs_are_regenerated(tmp_path, args):
    i = args.index("--output-dir")
    args = args[: i + 1] + [str(tmp_path)] + args[i + 2:]
    args = [a for a in args if a != "--plot"]  # the CSVs are compared; plots are looked at
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    made = sorted(tmp_path.glob("*.csv"))
    assert made
    for path in made:
        committed = list(csv.reader((REPORTS / path.name).open()))
        fresh = list(csv.reader(path.open()))
        assert fresh[0] == committed[0], path.name
        assert len(fresh) == len(committed), path.name
        for row_a, row_b in zip(fresh, committed):
            assert len(row_a) == len(row_b)
            assert all(_cells_equal(x, y) for x, y in zip(row_a, row_b)), (path.name, row_a, row_b)


def test_committed_plots_exist():
    for stem in ("accuracy_macs", "accuracy_params", "macs_heatmap", "pareto"):
        for ext in ("png", "svg"):
            assert (REPORTS / f"{stem}_mobilenet_v1.{ext}").stat().st_size > 1000
