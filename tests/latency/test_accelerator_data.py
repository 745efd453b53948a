"""benchmarks/data/timm_infer_latency.csv and coral_edgetpu_latency.csv: every row names a
built-in network; timm's own columns agree with each other (a batch's time is batch / its
throughput); timm's profiler count (a second counter) agrees with mobilecost's Mult-Adds
within the margin the file's header states; and the accelerator benchmark runs on them."""

import csv
import sys
from fractions import Fraction
from pathlib import Path

import pytest

import mobilecost
from mobilecost.lang.load import builtin_names

ROOT = Path(__file__).resolve().parents[2]
TIMM = ROOT / "benchmarks" / "data" / "timm_infer_latency.csv"
CORAL = ROOT / "benchmarks" / "data" / "coral_edgetpu_latency.csv"


def rows(path):
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def test_timm_rows_are_built_in_networks_on_nineteen_devices():
    rs = rows(TIMM)
    assert {r["spec"] for r in rs} <= set(builtin_names())
    eager = {"rtx3090-amp", "rtx4090-amp", "rtx5090-amp", "pro6000maxq-amp"}
    later = {"rtx3090-amp-nhwc", "rtx4090-amp-nhwc", "rtx4090-amp-compiled",
             "rtx5090-amp-compiled", "pro6000maxq-amp-compiled", "pro6000maxq-ampbf16-compiled",
             "pro6000maxq-bf16-compiled"}
    last = {"rtx4090-amp-pt240", "rtx4090-amp-compiled-pt240", "rtx3090-amp-pt210",
            "rtx3090-amp-nhwc-pt210", "rtx3090-amp-pt113", "rtx3090-amp-nhwc-pt113"}
    assert {r["device"] for r in rs} == eager | later | last | {"i7-12700h-fp32", "i9-10940x-fp32"}
    # each device is one file of timm's, named in the header
    header = TIMM.read_text(encoding="utf-8").split("\ndevice,")[0]
    for d in {r["device"] for r in rs}:
        files = {r["file"] for r in rs if r["device"] == d}
        assert len(files) == 1 and next(iter(files))[len("benchmark-infer-"):-4] in header
    keys = [(r["device"], r["spec"], Fraction(r["alpha"]), int(r["resolution"])) for r in rs]
    assert len(set(keys)) == len(keys)
    # every device has v2 (and v1) points to calibrate on and other families to predict
    for d in {r["device"] for r in rs}:
        specs = {r["spec"] for r in rs if r["device"] == d}
        assert "mobilenet_v2" in specs and len(specs) > 4
        # timm's files from torch 1.13 and 2.1 predate its MobileNet v1
        assert ("mobilenet_v1" in specs) is not d.endswith(("-pt113", "-pt210")), d


def test_a_batch_takes_batch_over_throughput():
    # the throughput counts the time between steps too: never less than the step, at most 0.8%
    for r in rows(TIMM):
        ms = 1000 * int(r["batch"]) / float(r["samples_per_sec"])
        assert 0 <= ms / float(r["latency_ms"]) - 1 < 8e-3, r


def test_timm_counts_agree_with_the_exact_mult_adds():
    # timm's profiler adds batchnorm and elementwise work and prints 2 decimals of GMACs
    worst = 0.0
    for r in rows(TIMM):
        exact = mobilecost.cost(r["spec"], r["alpha"], int(r["resolution"])).macs / 1e9
        timm = float(r["timm_gmacs"])
        assert -0.005 <= timm - exact <= 0.01 + 0.05 * timm, r
        if timm >= 1:
            worst = max(worst, timm / exact - 1)
    assert worst < 0.02  # the large networks within 2%: the extra work is small beside them


def test_coral_rows_are_v1_and_v2_at_224():
    rs = rows(CORAL)
    assert {(r["spec"], r["alpha"], r["resolution"]) for r in rs} == {
        ("mobilenet_v1", "1", "224"), ("mobilenet_v2", "1", "224")}
    assert all(float(r["latency_ms"]) > 0 and r["batch"] == "1" for r in rs)


@pytest.mark.slow
def test_the_accelerator_benchmark_runs(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("accelerators", ROOT / "benchmarks" / "accelerators.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path), "--plot", str(tmp_path / "a.png")]) == 0
    text = (tmp_path / "accelerators.md").read_text()
    assert "rtx5090-amp (held out)" in text and "coral-usb: 2 v1/v2 points" in text
    assert "rtx5090-amp-compiled (held out later)" in text
    assert "rtx4090-amp-compiled-pt240 (held out last)" in text
    assert "| compute share outside (marked) |" in text
    assert (tmp_path / "a.png").stat().st_size > 10_000
    with open(tmp_path / "accelerators.csv", encoding="utf-8") as fh:
        preds = list(csv.DictReader(fh))
    assert not any(p["spec"] in ("mobilenet_v1", "mobilenet_v2") for p in preds)
    assert {p["compute_share_outside"] for p in preds} == {"True", "False"}
