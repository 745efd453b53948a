"""The phone runtimes, optional extras: ExecuTorch (`--to pte`, `--runtime executorch`) and
LiteRT (`--to tflite`, `--runtime litert`).

Without their extra, each command that needs one says so in one line (tested everywhere, the
extra hidden from the import system). With it (`pip install 'mobilecost[executorch]'` /
`'mobilecost[litert]'`), the files are checked by means that do not go through mobilecost's
own loading code: the runtime's Python API is called directly here, the output compared with
the torch module's, the hash taken again with hashlib, the delegate read from the program.
"""

import csv
import hashlib
import importlib.util
import json

import pytest
from cli_helpers import one_error_line, run

torch = pytest.importorskip("torch")

from mobilecost.latency.manifest import ManifestError, read_manifest  # noqa: E402
from mobilecost.latency.options import TimingOptions  # noqa: E402

HAS_EXECUTORCH = importlib.util.find_spec("executorch") is not None
HAS_LITERT = all(importlib.util.find_spec(m) is not None for m in ("litert_torch", "ai_edge_litert"))


def _hide(monkeypatch, *modules):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in modules else real(name, *a))


def _rows(folder):
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------- without the extras

def test_export_to_pte_without_executorch_says_how_to_install(tmp_path, monkeypatch):
    _hide(monkeypatch, "executorch")
    folder = tmp_path / "pte"
    line = one_error_line(run("export", "--to", "pte", "--output-dir", folder))
    assert "--to pte needs executorch, which is not installed" in line
    assert "pip install 'mobilecost[executorch]'" in line
    assert not folder.exists()  # nothing written


def test_export_to_tflite_without_litert_names_both_packages(tmp_path, monkeypatch):
    _hide(monkeypatch, "litert_torch", "ai_edge_litert")
    folder = tmp_path / "tflite"
    line = one_error_line(run("export", "--to", "tflite", "--output-dir", folder))
    assert "--to tflite needs litert-torch, ai-edge-litert, which are not installed" in line
    assert "pip install 'mobilecost[litert]'" in line
    assert not folder.exists()


@pytest.mark.parametrize("runtime, hidden, extra", [
    ("executorch", ("executorch",), "executorch"),
    ("litert", ("ai_edge_litert",), "litert"),
])
def test_timing_without_the_runtime_says_how_to_install(tmp_path, monkeypatch, runtime, hidden,
                                                        extra):
    _hide(monkeypatch, *hidden)
    for cmd in (["measure", "--cache-dir", tmp_path], ["sweep", "--measure", "--cache-dir", tmp_path],
                ["profile"]):
        line = one_error_line(run(*cmd, "--runtime", runtime))
        assert f"--runtime {runtime} needs" in line, cmd
        assert f"pip install 'mobilecost[{extra}]'" in line, cmd
    assert not any(tmp_path.iterdir())  # nothing measured, nothing cached


def test_an_opset_with_a_phone_format_is_one_line(tmp_path):
    folder = tmp_path / "pte"
    line = one_error_line(run("export", "--to", "pte", "--opset", "17", "--output-dir", folder))
    assert "--opset: only with --to onnx" in line
    assert not folder.exists()


@pytest.mark.parametrize("runtime", ["executorch", "litert"])
def test_time_shares_with_a_phone_runtime_are_one_line(tmp_path, runtime):
    line = one_error_line(run("measure", "--runtime", runtime, "--time-share",
                              "--cache-dir", tmp_path))
    assert f"--time-share: not with --runtime {runtime}" in line


@pytest.mark.parametrize("runtime", ["executorch", "litert"])
def test_profile_refuses_a_phone_runtime(runtime):
    from mobilecost.errors import ConfigError
    from mobilecost.torch.clock import MeasureOptions
    from mobilecost.torch.timing import profile_config

    with pytest.raises(ConfigError, match=f"profile: not with --runtime {runtime}"):
        profile_config("mobilenet_v1", "0.25", 32, MeasureOptions(runtime=runtime))


@pytest.mark.parametrize("runtime", ["executorch", "litert"])
def test_torch_only_options_with_a_phone_runtime_are_refused(runtime):
    from mobilecost.errors import ConfigError

    with pytest.raises(ConfigError, match=f"--channels-last: not with --runtime {runtime}"):
        TimingOptions(runtime=runtime, channels_last=True)


def test_every_runtime_is_one_row_and_one_module():
    from mobilecost.cli.export import ModelFormat
    from mobilecost.runtimes import FORMATS, PROFILED, RUNTIMES
    from mobilecost.torch import runtimes

    assert [f.value for f in ModelFormat] == list(FORMATS) == ["onnx", "pte", "tflite"]
    assert [r.name for r in FORMATS.values()] == ["onnxruntime", "executorch", "litert"]
    assert PROFILED == ("torch", "onnxruntime")
    for r in RUNTIMES.values():  # what each module must provide, by its row
        module = runtimes.load(r.name)
        needs = ["version", "prepare"] + (["to_file", "run"] if r.file_format else []) \
            + (["quantize", "runner"] if r.quantizes else []) \
            + (["profile", "profile_notes"] if r.profiled else [])
        assert all(callable(getattr(module, n, None)) for n in needs), (r.name, needs)


# ----------------------------------------------------------------------------- the manifest

def _manifest(tmp_path, fmt, opset):
    name = f"m_0.25_32.{fmt}"
    (tmp_path / name).write_bytes(b"x")
    path = tmp_path / "manifest.csv"
    path.write_text("spec,network,alpha,resolution,batch,format,opset,file,macs,params,sha256,"
                    "max_abs_diff,torch_version\n"
                    f"m,abc,0.25,32,1,{fmt},{opset},{name},10,20,{hashlib.sha256(b'x').hexdigest()},"
                    "0,2.13.0\n")
    return path


@pytest.mark.parametrize("fmt", ["pte", "tflite"])
def test_a_phone_format_row_reads_with_opset_0(tmp_path, fmt):
    (row,) = read_manifest(_manifest(tmp_path, fmt, 0))
    assert (row.format, row.opset) == (fmt, 0)


def test_an_onnx_row_with_opset_0_is_still_refused(tmp_path):
    with pytest.raises(ManifestError, match="opset must be a whole number >= 1"):
        read_manifest(_manifest(tmp_path, "onnx", 0))


# ----------------------------------------------------------------------------- ExecuTorch

needs_executorch = pytest.mark.skipif(
    not HAS_EXECUTORCH, reason="ExecuTorch is an optional extra: pip install 'mobilecost[executorch]'")


def _run_pte(path, x):
    """The program run by ExecuTorch's runtime API directly; (outputs, delegate ids)."""
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.runtime import Runtime

    data = path.read_bytes()
    program = Runtime.get().load_program(data)
    out = program.load_method("forward").execute([x])
    pte = deserialize_pte_binary(data)
    pte = getattr(pte, "program", pte)
    delegates = [d.id for plan in pte.execution_plan for d in plan.delegates]
    return out, delegates


@pytest.fixture(scope="module")
def pte_folder(tmp_path_factory):
    if not HAS_EXECUTORCH:
        pytest.skip("ExecuTorch is an optional extra: pip install 'mobilecost[executorch]'")
    folder = tmp_path_factory.mktemp("export") / "pte"
    result = run("export", "mobilenet_v1", "--alpha", "0.25,1/3", "--res", "64", "--to", "pte",
                 "--output-dir", folder, "-f", "csv")
    assert result.exit_code == 0, result.output
    return folder


@needs_executorch
@pytest.mark.slow
def test_pte_files_run_in_executorch_as_the_torch_module_does(pte_folder):
    from mobilecost.torch.build import build_model

    rows = _rows(pte_folder)
    assert [r["file"] for r in rows] == ["mobilenet_v1_0.25_64.pte", "mobilenet_v1_1-3_64.pte"]
    for r, alpha in zip(rows, ("0.25", "1/3")):
        assert (r["format"], r["opset"], r["resolution"], r["batch"]) == ("pte", "0", "64", "1")
        assert r["sha256"] == hashlib.sha256((pte_folder / r["file"]).read_bytes()).hexdigest()
        model = build_model("mobilenet_v1", alpha, 64)
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
        with torch.inference_mode():
            want = model(x)
        out, delegates = _run_pte(pte_folder / r["file"], x)
        assert delegates == ["XnnpackBackend"]  # the whole network: one XNNPACK delegate
        assert out[0].shape == (1, 1000)
        assert (out[0] - want).abs().max().item() <= 1e-5 * want.abs().max().item()
    assert sorted(p.name for p in pte_folder.iterdir()) == sorted(
        ["manifest.csv"] + [r["file"] for r in rows])  # no temporary file left behind


@needs_executorch
@pytest.mark.slow
def test_a_pte_program_that_gives_other_output_is_refused():
    from mobilecost.torch.build import build_model
    from mobilecost.torch.export import ExportError, verify
    from mobilecost.torch.runtimes.executorch import to_file as to_pte

    data = to_pte(build_model("mobilenet_v1", "0.25", 32, seed=1))
    with pytest.raises(ExportError, match="ExecuTorch's output differs from torch's"):
        verify(data, build_model("mobilenet_v1", "0.25", 32, seed=2), fmt="pte")


@needs_executorch
@pytest.mark.slow
def test_measure_with_executorch_says_what_ran_it_and_is_cached_apart(tmp_path):
    import executorch.version

    args = ("measure", "--alpha", "0.25", "--res", "32", "--threads", "1", "--min-time", "0.05",
            "--max-time", "0.2", "--cache-dir", tmp_path, "-f", "csv")
    result = run(*args, "--runtime", "executorch")
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(result.stdout.splitlines()))
    assert row["runtime"] == "executorch"
    assert row["runtime_version"] == executorch.version.__version__
    assert row["graph_optimization"] == "XNNPACK delegate"
    assert float(row["latency_ms"]) > 0 and row["threads"] == "1"
    (entry,) = tmp_path.glob("*.json")  # kept in the cache, under its own key
    assert json.loads(entry.read_text())["runtime"] == "executorch"
    torch_row = list(csv.DictReader(run(*args).stdout.splitlines()))[0]
    assert torch_row["runtime"] == "torch" and torch_row["cached"] == "False"
    assert len(list(tmp_path.glob("*.json"))) == 2


# ----------------------------------------------------------------------------- LiteRT

needs_litert = pytest.mark.skipif(
    not HAS_LITERT, reason="LiteRT is an optional extra: pip install 'mobilecost[litert]'")


@needs_litert
@pytest.mark.slow
def test_tflite_files_run_in_litert_as_the_torch_module_does(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from mobilecost.torch.build import build_model

    folder = tmp_path / "tflite"
    result = run("export", "mobilenet_v1", "--alpha", "0.25", "--res", "64", "--to", "tflite",
                 "--output-dir", folder, "-f", "csv")
    assert result.exit_code == 0, result.output
    (r,) = _rows(folder)
    assert (r["file"], r["format"], r["opset"]) == ("mobilenet_v1_0.25_64.tflite", "tflite", "0")
    data = (folder / r["file"]).read_bytes()
    assert r["sha256"] == hashlib.sha256(data).hexdigest()
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert list(inp["shape"]) == [1, 3, 64, 64]  # fixed shape, NCHW as the torch module
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        want = build_model("mobilenet_v1", "0.25", 64)(x).numpy()
    interpreter.set_tensor(inp["index"], x.numpy())
    interpreter.invoke()
    got = interpreter.get_tensor(outp["index"])
    assert got.shape == (1, 1000)
    assert abs(got - want).max() <= 1e-5 * abs(want).max()


@needs_litert
@pytest.mark.slow
def test_a_tflite_file_that_gives_other_output_is_refused():
    from mobilecost.torch.build import build_model
    from mobilecost.torch.export import ExportError, verify
    from mobilecost.torch.runtimes.litert import to_file as to_tflite

    data = to_tflite(build_model("mobilenet_v1", "0.25", 32, seed=1))
    with pytest.raises(ExportError, match="LiteRT's output differs from torch's"):
        verify(data, build_model("mobilenet_v1", "0.25", 32, seed=2), fmt="tflite")


@needs_litert
@pytest.mark.slow
def test_measure_with_litert_says_what_ran_it(tmp_path):
    from importlib.metadata import version

    result = run("measure", "--alpha", "0.25", "--res", "32", "--threads", "1", "--min-time",
                 "0.05", "--max-time", "0.2", "--cache-dir", tmp_path, "-f", "csv",
                 "--runtime", "litert")
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(result.stdout.splitlines()))
    assert row["runtime"] == "litert"
    assert row["runtime_version"].startswith(version("ai-edge-litert"))
    assert float(row["latency_ms"]) > 0


# ----------------------------------------------------------------------------- reports

@pytest.mark.parametrize("runtime, version, name", [
    ("executorch", "1.5.1+cpu", "ExecuTorch 1.5.1+cpu"),
    ("litert", "2.3.0 (litert-torch 0.10.0)", "LiteRT 2.3.0 (litert-torch 0.10.0)"),
])
def test_reports_name_the_phone_runtime_that_ran(runtime, version, name):
    from mobilecost.reports.timing_notes import setting_note
    from mobilecost.reports.timing_plots import _setting

    row = {"runtime": runtime, "runtime_version": version, "graph_optimization": "XNNPACK delegate",
           "device_name": "CPU A", "device": "cpu", "threads": 1, "dtype": "fp32", "batch": 1,
           "torch_version": "2.13.0+cpu", "memory_format": "contiguous", "compile": False,
           "cuda_graphs": False}
    for text in (setting_note(row), _setting(row)):
        assert f"{name} (XNNPACK delegate)" in text
        assert "torch 2.13.0" not in text  # torch did not run it


def test_calibrate_reads_benchmark_model_logs_through_a_tflite_manifest(tmp_path):
    """The manifest of `export --to tflite` (format tflite, opset 0) matches TFLite's
    benchmark_model logs by file name, as an ONNX manifest does."""
    from fractions import Fraction
    from pathlib import Path

    from mobilecost.lang.identity import Network
    from mobilecost.lang.load import load_spec
    from mobilecost.latency.manifest import ManifestRow, write_manifest

    logs = Path(__file__).resolve().parents[1] / "data" / "devicelogs" / "tflite"
    net = Network.of(load_spec("mobilenet_v1")).key
    rows = [ManifestRow("mobilenet_v1", net, Fraction(a), r, 1, "tflite", 0,
                        f"mobilenet_v1_{a}_{r}.tflite", 0, 0, hashlib.sha256(b"m").hexdigest(),
                        0.0, "2.13.0")
            for a, r in [("1", 224), ("1", 160), ("0.75", 192), ("0.5", 224), ("0.5", 128),
                         ("0.25", 224)]]
    write_manifest(tmp_path, rows)
    result = run("calibrate", logs, "--manifest", tmp_path / "manifest.csv", "--target", "phone",
                 "--targets-dir", tmp_path / "t", "-f", "csv")
    assert result.exit_code == 0, result.output
    # mobilenet_v1_1.0_224.log: "median=31250" (µs) on its timed runs' line
    assert "mobilenet_v1,1.0,224,1,31.25," in result.stdout


def test_help_names_each_extra():
    # rich reads "[onnx]" as markup and drops it unless escaped
    for cmd, extras in (("export", ["executorch", "litert"]), ("measure", ["onnx", "executorch", "litert"])):
        text = "".join(run(cmd, "--help").stdout.replace("│", " ").split())
        for extra in extras:
            assert f"mobilecost[{extra}]" in text, (cmd, extra)
