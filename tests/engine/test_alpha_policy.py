"""One α policy for every entry point: text, ints and Fractions exact; floats as 12-digit decimals."""

import csv
import io
from decimal import Decimal
from fractions import Fraction as F

import numpy as np
import pytest
from cli_helpers import run

import mobilecost
from mobilecost.engine.sweep import frame_alphas
from mobilecost.errors import ConfigError
from mobilecost.lang.values import to_fraction


@pytest.mark.parametrize("value, expect", [
    ("0.29", F(29, 100)), ("1/3", F(1, 3)), (" 0.5 ", F(1, 2)), (3, F(3)), (np.int64(2), F(2)),
    (F(1, 3), F(1, 3)), (Decimal("0.35"), F(7, 20)),
    (0.7 - 0.2, F(1, 2)),            # 0.49999999999999994
    (0.1 + 0.2, F(3, 10)),           # 0.30000000000000004
    (np.float64(0.35), F(7, 20)), (np.float32(0.3), F(3, 10)),
    (1 / 3, F(333333333333, 10**12)),  # a float holds no more than its 12 digits
    (1e-7, F(1, 10**7)),
])
def test_to_fraction_policy(value, expect):
    assert to_fraction(value) == expect


@pytest.mark.parametrize("value", ["nan", float("nan"), float("inf"), "x", None, True, ""])
def test_to_fraction_refuses_non_numbers(value):
    with pytest.raises(ConfigError, match="alpha must be a number"):
        to_fraction(value)


def test_float_one_ulp_off_half_costs_as_half():
    # MACs(α, ρ=1) = 28,224,000·α + 539,492,352·α² + 1,024,000·α (`mobilecost formula`, exact
    # for α a multiple of 1/32): at α = 1/2, 14,112,000 + 134,873,088 + 512,000.
    expect = 14_112_000 + 134_873_088 + 512_000
    assert expect == 149_497_088
    c = mobilecost.cost("mobilenet_v1", 0.7 - 0.2, 224)
    assert c.macs == expect
    assert c.alpha == F(1, 2)
    assert mobilecost.cost("mobilenet_v1", "0.5", 224).macs == expect


def test_numpy_arange_sweep_equals_the_grid_option():
    api = mobilecost.sweep("mobilenet_v1", np.arange(0.25, 1.0001, 0.05), [224])
    result = run("sweep", "--alpha", "0.25..1:0.05", "--res", "224", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(api) == 16
    assert api["alpha_exact"].tolist() == [str(F(5 + k, 20)) for k in range(16)]
    for (_, a), r in zip(api.iterrows(), rows):
        assert a["macs"] == int(r["macs"]) and a["params"] == int(r["params"])
        assert (a["accuracy_source"] or "") == r["accuracy_source"]
        assert f"{a['top1']:.1f}" == f"{float(r['top1']):.1f}"
    # The released checkpoints at 224 px (TF-slim): every one of them published, none estimated.
    published = api[api["accuracy_source"] == "published"]
    assert dict(zip(published["alpha_exact"], published["top1"])) == {
        "1/4": 49.8, "1/2": 63.3, "3/4": 68.4, "1": 70.9}


def test_sweep_frame_keeps_alpha_exactly():
    # Two widths with the same float (0.3333333333333333): a float -> Fraction lookup cannot
    # tell them apart; the exact column can.
    a, b = F(1, 3), F(3333333333333333, 10**16)
    assert float(a) == float(b) and a != b
    df = mobilecost.sweep("mobilenet_v1", [a, b, "3/4"], [224, 160])
    assert df["alpha_exact"].tolist() == ["1/3"] * 2 + ["3333333333333333/10000000000000000"] * 2 \
        + ["3/4"] * 2
    assert frame_alphas(df) == [a, a, b, b, F(3, 4), F(3, 4)]
    # Each row is costed at its own exact α.
    assert df["macs"].iloc[0] == mobilecost.cost("mobilenet_v1", a, 224).macs
    assert df["macs"].iloc[2] == mobilecost.cost("mobilenet_v1", b, 224).macs


def test_alpha_exact_is_categorical_and_cheap():
    alphas = [F(k, 1000) for k in range(1, 1001)]
    df = mobilecost.sweep("mobilenet_v1", alphas, range(32, 1032))
    col = df["alpha_exact"]
    assert len(df) == 1_000_000 and col.dtype == "category"
    assert len(col.cat.categories) == 1000
    # int32 codes and 1,000 short strings: about 4 bytes a row, not a Python string per row.
    assert col.memory_usage(deep=True) < 4.2 * len(df) + 200_000
    assert frame_alphas(df.iloc[[0, 999_999]]) == [F(1, 1000), F(1)]


def test_measured_rows_with_float_alpha_find_published_accuracy():
    from mobilecost.reports.timing_plots import with_accuracy

    # A measured row whose α arrived as a float one ulp below 0.5: the released 0.5-224
    # checkpoint's 63.3% top-1 (TF-slim), not an estimate.
    rows = with_accuracy([{"alpha": 0.7 - 0.2, "resolution": 224, "macs": 149_497_088}],
                         "mobilenet_v1")
    assert (rows[0]["top1"], rows[0]["accuracy_source"]) == (63.3, "published")


def test_a_sweep_csv_keeps_alpha_exact_for_calibrate(tmp_path):
    """The sweep's CSV carries alpha_exact ('1/3'); read back as measurements it is 1/3, not the
    float's 12-digit decimal 333333333333/10**12."""
    from fractions import Fraction

    from cli_helpers import run

    from mobilecost.latency.measurements import read_measurements

    r = run("sweep", "--alpha", "1/3,0.5", "--res", "224", "--format", "csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    header = lines[0].split(",")
    assert [row.split(",")[header.index("alpha_exact")] for row in lines[1:]] == ["1/3", "1/2"]
    measured = "\n".join([lines[0] + ",batch,latency_ms"] + [row + ",1,5.0" for row in lines[1:]])
    path = tmp_path / "m.csv"
    path.write_text(measured + "\n")
    assert {p.config.alpha for p in read_measurements(path).points} == {Fraction(1, 3), Fraction(1, 2)}
