"""ONNX Runtime as a second timing backend: measure, sweep --measure and profile with
--runtime onnxruntime, the shared cache, and what is refused."""

import hashlib
import json
from dataclasses import asdict
from fractions import Fraction

import pytest
from cli_helpers import one_error_line, run
from timing_helpers import all_quiet  # noqa: E402

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from mobilecost.lang.identity import Network
from mobilecost.lang.load import load_spec
from mobilecost.latency.options import TimingOptions  # noqa: E402
from mobilecost.torch.cache import MeasurementCache
from mobilecost.torch.clock import MeasureOptions
from mobilecost.torch.timing import measure  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    """The shared test machine is loaded: take every timing as quiet, so that the cache
    serves what it holds (the noise guard has tests of its own)."""
    all_quiet(monkeypatch)


FAST = MeasureOptions(threads=1, min_run_time_s=0.01, max_run_time_s=0.05)
ORT = MeasureOptions(threads=1, min_run_time_s=0.01, max_run_time_s=0.05, runtime="onnxruntime")


def test_an_ort_row_says_what_ran_it():
    import onnxruntime

    row = measure("mobilenet_v1", "0.25", 32, ORT)
    assert row["error"] == "" and row["latency_ms"] > 0
    assert (row["runtime"], row["runtime_version"], row["graph_optimization"]) == (
        "onnxruntime", onnxruntime.__version__, "ORT_ENABLE_ALL")
    assert row["threads"] == 1
    torch_row = measure("mobilenet_v1", "0.25", 32, FAST)
    assert (torch_row["runtime"], torch_row["runtime_version"]) == ("torch", torch.__version__)


def test_the_runtime_is_part_of_the_cache_key_and_torch_keys_are_unchanged():
    spec = load_spec("mobilenet_v1")
    torch_key = MeasurementCache.key(spec, Fraction(1, 4), 32, FAST, "cpu A")
    ort_key = MeasurementCache.key(spec, Fraction(1, 4), 32, ORT, "cpu A")
    assert torch_key != ort_key
    # torch's key as it was before the runtime option (so existing caches stay valid)
    opts = asdict(FAST)
    del opts["runtime"]
    what = {"version": MeasurementCache.VERSION, "network": Network.of(spec).body,
            "alpha": "1/4", "resolution": 32, "options": opts, "time_share": False,
            "device_name": "cpu A", "torch_version": torch.__version__}
    assert torch_key == hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:32]


def test_measure_caches_each_runtime_apart(tmp_path):
    common = ["measure", "--alpha", "0.25", "--res", "32", "--threads", "1", "--min-time", "0.01",
              "--max-time", "0.05", "--cache-dir", tmp_path, "-f", "csv"]
    first = run(*common, "--runtime", "onnxruntime")
    assert first.exit_code == 0, first.output
    assert len(list(tmp_path.glob("*.json"))) == 1
    again = run(*common, "--runtime", "onnxruntime")
    assert again.exit_code == 0 and ",True," in again.stdout.splitlines()[1]  # cached
    header = again.stdout.splitlines()[0].split(",")
    row = dict(zip(header, again.stdout.splitlines()[1].split(",")))
    assert (row["runtime"], row["cached"]) == ("onnxruntime", "True")
    other = run(*common)  # torch: not served the ORT entry
    assert other.exit_code == 0, other.output
    row = dict(zip(header, other.stdout.splitlines()[1].split(",")))
    assert (row["runtime"], row["cached"]) == ("torch", "False")
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_sweep_measure_takes_the_runtime(tmp_path):
    result = run("sweep", "--alpha", "0.25", "--res", "32,64", "--measure", "--runtime",
                 "onnxruntime", "--threads", "1", "--min-time", "0.01", "--max-time", "0.05",
                 "--cache-dir", tmp_path, "-f", "csv")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    col = lines[0].split(",").index("runtime")
    assert [line.split(",")[col] for line in lines[1:]] == ["onnxruntime", "onnxruntime"]
    assert "ONNX Runtime" in " ".join(result.stderr.split())


def test_profile_with_ort_attributes_kernels_to_the_spec_layers():
    from mobilecost.torch.build import build_model
    from mobilecost.torch.runtimes.onnxruntime import profile_kernels

    model = build_model("mobilenet_v2", "0.35", 64)
    # 20 passes: the share is of kernel time, and one spike in a 3-pass profile moved it
    # from its usual 3% to 7% on a busy machine
    prof, unmapped = profile_kernels(model, 1, 1, passes=20, warmup=2)
    assert unmapped < 0.05  # all but ORT's layout reorders trace back to a layer
    # every convolution layer got kernel time; pooling and adds are 'other'
    for t in prof.layers:
        if t.layer.op in ("conv", "dw", "pw", "fc"):
            assert t.time_ms > 0, t.layer
    assert sum(t.time_ms for t in prof.layers) <= prof.forward_ms
    by_kind = prof.by_kind()
    # MobileNetV2 (Sandler et al., Table 2): 17 bottlenecks, each one depthwise; pointwise:
    # the first block's projection, 16 × (expansion + projection), the last 1×1 conv: 1 + 32 + 1
    assert by_kind["pointwise"]["layers"] == 34 and by_kind["depthwise"]["layers"] == 17


def test_profile_command_with_ort(tmp_path):
    result = run("profile", "--alpha", "0.25", "--res", "64", "--threads", "1", "--passes", "2",
                 "--runtime", "onnxruntime", "-f", "csv")
    assert result.exit_code == 0, result.output
    import csv

    kinds = [r["kind"] for r in csv.DictReader(result.stdout.splitlines())]
    assert kinds == ["conv", "depthwise", "pointwise", "fc", "other"]
    assert "ONNX Runtime's profiler" in " ".join(result.stderr.split())


# ----------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("extra, fragment", [
    (["--compile"], "--compile"), (["--channels-last"], "--channels-last"),
])
def test_torch_only_options_with_ort_are_one_line(extra, fragment):
    line = one_error_line(run("measure", "--runtime", "onnxruntime", *extra))
    assert fragment in line and "not with --runtime onnxruntime" in line


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_a_dtype_ort_has_no_file_for_is_one_line(dtype):
    line = one_error_line(run("measure", "--runtime", "onnxruntime", "--dtype", dtype))
    assert f"--dtype {dtype}" in line and "fp32 or int8" in line


def test_ort_without_onnxruntime_says_how_to_install(monkeypatch, tmp_path):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    for cmd in (["measure"], ["profile"], ["sweep", "--measure"]):
        line = one_error_line(run(*cmd, "--runtime", "onnxruntime", "--cache-dir", tmp_path)
                              if cmd[0] != "profile" else run(*cmd, "--runtime", "onnxruntime"))
        assert "pip install 'mobilecost[onnx]'" in line, cmd


def test_timing_options_refuse_an_unknown_runtime():
    from mobilecost.errors import ConfigError

    with pytest.raises(ConfigError, match="runtime must be one of torch, onnxruntime"):
        TimingOptions(runtime="tensorrt")


def test_plots_name_the_runtime_that_ran():
    from mobilecost.reports.timing_plots import _setting

    row = {"device_name": "cpu A", "device": "cpu", "dtype": "fp32", "batch": 1, "threads": 1,
           "memory_format": "contiguous", "torch_version": "2.13.0", "runtime": "onnxruntime",
           "runtime_version": "1.32.0", "graph_optimization": "ORT_ENABLE_ALL"}
    assert _setting(row).endswith("ONNX Runtime 1.32.0 (ORT_ENABLE_ALL)")
    assert _setting(dict(row, runtime="torch")).endswith("torch 2.13.0")


def test_sweep_runtime_needs_measure():
    line = one_error_line(run("sweep", "--runtime", "onnxruntime"))
    assert "--runtime needs --measure" in line
