"""Profiling per layer kind, and the plots of measured rows."""

import csv
import io
from fractions import Fraction

import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from mobilecost.cli import app  # noqa: E402
from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.clock import MeasureOptions, prepare
from mobilecost.torch.profile import TIME_KINDS, profile_model, time_shares  # noqa: E402

runner = CliRunner()
ONE = MeasureOptions(threads=1)


def test_profile_times_every_layer_and_shares_sum_to_one():
    model = build_model("mobilenet_v1", "0.25", 64)
    _, x = prepare(model, model.example_input(1), ONE.resolved())
    p = profile_model(model, x, ONE, passes=2, warmup=1)
    assert len(p.layers) == len(model.spec_layers) == 29
    assert all(t.time_ms > 0 for t in p.layers)
    assert p.forward_ms >= sum(t.time_ms for t in p.layers) * 0.999
    kinds = p.by_kind()
    assert tuple(kinds) == TIME_KINDS
    assert sum(d["time_share"] for d in kinds.values()) == pytest.approx(1.0)
    # MobileNet v1 has 1 full conv, 13 depthwise, 13 pointwise, 1 FC, 1 pool (Table 1)
    assert [kinds[k]["layers"] for k in TIME_KINDS] == [1, 13, 13, 1, 1]
    assert not model._ranges  # the ranges are off again after profiling


def test_macs_shares_at_224_are_table_2s():
    # Table 2 of the paper (α = 1, 224): 1×1 94.86%, depthwise 3.06%, FC 0.18%, full conv 1.91%
    # (printed 1.19%, a typo: 10,838,016 / 568,740,352).
    model = build_model("mobilenet_v1", 1, 224)
    _, x = prepare(model, model.example_input(1), ONE.resolved())
    row = time_shares(profile_model(model, x, ONE, passes=1, warmup=1))
    assert round(100 * row["macs_share_pointwise"], 2) == 94.86
    assert round(100 * row["macs_share_depthwise"], 2) == 3.06
    assert round(100 * row["macs_share_fc"], 2) == 0.18
    assert round(100 * row["macs_share_conv"], 2) == 1.91
    assert row["macs_share_other"] == 0


def test_profile_command_per_kind_and_per_layer():
    r = runner.invoke(app, ["profile", "mobilenet_v2", "--alpha", "0.35", "--res", "64",
                            "--threads", "1", "--passes", "1", "--format", "csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert list(rows[0]) == ["group", "kind", "layers", "time_ms", "time_share", "macs",
                             "macs_share", "time_to_macs"]
    assert [row["kind"] for row in rows] == list(TIME_KINDS)
    # MobileNetV2, 17 bottlenecks: 17 depthwise; 1×1: 16 expansions (the first has t = 1),
    # 17 projections and the last 1280; other: the pool and 10 residual adds
    assert [int(row["layers"]) for row in rows] == [1, 17, 34, 1, 11]
    assert sum(float(row["time_share"]) for row in rows) == pytest.approx(1.0)
    r = runner.invoke(app, ["profile", "mobilenet_v1", "--alpha", "0.25", "--res", "32",
                            "--threads", "1", "--passes", "1", "--per-layer", "--format", "csv"])
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 1 + 29 + 1  # header, layers, time outside layers


def _rows():
    rows = []
    for a, res, lat in [("1", 224, 30.0), ("0.5", 224, 10.0), ("1", 128, 11.0), ("0.5", 128, 4.0)]:
        row = {"spec": "mobilenet_v1", "alpha": Fraction(a), "resolution": res, "batch": 1,
               "latency_ms": lat, "latency_iqr_ms": 0.5, "macs": int(lat * 1e7), "error": "",
               "device": "cpu", "device_name": "Test CPU", "dtype": "fp32", "threads": 1,
               "memory_format": "contiguous", "torch_version": "2.x"}
        for k, (t, m) in zip(TIME_KINDS, [(0.02, 0.02), (0.5, 0.03), (0.46, 0.948),
                                          (0.01, 0.002), (0.01, 0.0)]):
            row[f"time_share_{k}"], row[f"macs_share_{k}"] = t, m
        rows.append(row)
    rows.append(dict(rows[0], alpha=Fraction(1, 4), latency_ms=None, error="out of memory"))
    return rows


def test_plots_are_written_as_png_and_svg(tmp_path):
    from mobilecost.reports.timing_plots import latency_vs_macs, time_share_bars

    paths = latency_vs_macs(_rows(), tmp_path / "lat") + time_share_bars(_rows(), tmp_path / "share")
    assert sorted(p.name for p in paths) == ["lat.png", "lat.svg", "share.png", "share.svg"]
    for p in paths:
        head = p.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" if p.suffix == ".png" else b"<svg" in p.read_bytes()[:600]
    assert not list(tmp_path.glob(".*.tmp"))


def test_accuracy_joins_published_then_estimated_then_nothing(tmp_path):
    from mobilecost.reports.timing_plots import latency_vs_accuracy, with_accuracy

    rows = _rows()[:4] + [dict(_rows()[0], alpha=Fraction(7, 10), resolution=200, macs=400_000_000)]
    rated = with_accuracy(rows, "mobilenet_v1")
    # TF-slim MobileNet_v1_1.0_224 and _0.5_128 checkpoints: 70.9% and 56.3% top-1
    assert (rated[0]["top1"], rated[0]["accuracy_source"]) == (70.9, "published")
    assert (rated[3]["top1"], rated[3]["accuracy_source"]) == (56.3, "published")
    # 0.7-200 lies between TF-slim's 0.5-192 (61.7%) and 0.75-224 (68.4%)
    assert rated[4]["accuracy_source"] == "estimated" and 61.7 < rated[4]["top1"] < 68.4
    # Table 4 prints Conv MobileNet at 1.0-224 only (71.7%); no model is fitted to it
    conv = with_accuracy([rows[0], dict(rows[0], resolution=192)], "conv_mobilenet")
    assert [(r["top1"], r["accuracy_source"]) for r in conv] == [(71.7, "published"), (None, "")]
    paths = latency_vs_accuracy(rated, tmp_path / "acc")
    assert [p.suffix for p in paths] == [".png", ".svg"]


def test_profile_report_without_the_cli():
    from mobilecost.reports.measure import profile_report
    from mobilecost.torch.timing import profile_config

    model, prof = profile_config("mobilenet_v1", "0.25", 32, ONE, passes=1, warmup=1)
    report = profile_report(model, prof, ONE)
    # MobileNet v1 (Table 1): 1 full conv, 13 depthwise, 13 pointwise, 1 FC, 1 pool
    assert [(r["kind"], r["layers"]) for r in report.rows] == list(zip(TIME_KINDS, [1, 13, 13, 1, 1]))
    assert sum(r["time_share"] for r in report.rows) == pytest.approx(1.0)
    per_layer = profile_report(model, prof, ONE, per_layer=True)
    assert len(per_layer.rows) == 29 + 1  # every layer, and the time outside them
