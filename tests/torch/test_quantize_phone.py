"""int8 through the phone runtimes, optional extras: ExecuTorch's XNNPACK quantizer (`export
--quantize int8 --to pte`, `--runtime executorch --dtype int8`) and litert-torch's full-integer
PT2E quantizer (`--to tflite`, `--runtime litert`).

Each test runs where its runtime's extra is installed and is skipped, with the line that
installs it, elsewhere. The files are checked by means that do not go through mobilecost's own
loading code where that can be done: the sizes against the float file's, the hash again with
hashlib, the program's delegate read from it, the tensors' types from LiteRT's interpreter.
"""

import csv
import hashlib
import importlib.util
import tempfile

import numpy as np
import pytest
from cli_helpers import one_error_line, run

torch = pytest.importorskip("torch")

from mobilecost.latency.manifest import read_manifest  # noqa: E402
from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.quantize import (  # noqa: E402
    MIN_CENTRED_COSINE,
    Calibration,
    agreement,
    condition,
)

HAS = {"executorch": importlib.util.find_spec("executorch") is not None,
       "litert": all(importlib.util.find_spec(m) is not None
                     for m in ("litert_torch", "ai_edge_litert"))}
FORMAT = {"executorch": "pte", "litert": "tflite"}
QUANTIZER = {"executorch": "XNNPACKQuantizer", "litert": "PT2EQuantizer"}
LABEL = {"executorch": "ExecuTorch", "litert": "LiteRT"}
RES = 128


def _param(name):
    reason = f"{LABEL[name]} is an optional extra: pip install 'mobilecost[{name}]'"
    return pytest.param(name, marks=pytest.mark.skipif(not HAS[name], reason=reason))


RUNTIMES = [_param("executorch"), _param("litert")]


def _module(name):
    from mobilecost.torch import runtimes

    return runtimes.load(name)


@pytest.fixture(scope="module")
def files():
    """runtime -> (conditioned mobilenet_v1 α 0.25 at 128 px, its float file, its int8 file),
    made on first use."""
    made = {}

    def get(name):
        if name not in made:
            rt = _module(name)
            model = condition(build_model("mobilenet_v1", "0.25", RES))
            inputs = Calibration().inputs((3, RES, RES))
            made[name] = model, rt.to_file(model, 1), rt.quantize(model, 1, inputs)
        return made[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNTIMES)
def test_the_int8_file_of_v1_is_about_a_quarter_of_the_float_one(files, name):
    model, f, q = files(name)
    # folded weights and biases of mobilenet_v1 α 0.25: counted from the torch module here
    n = sum(p.numel() for p in model.parameters() if p.dim() > 1)
    assert len(f) > 4 * n  # the float file holds every weight as 4 bytes
    assert len(q) > n  # at least a byte a weight
    # a byte a weight plus per-channel scales, int32 biases and the graph: measured 0.290
    # (ExecuTorch) and 0.315 (LiteRT) of the float file here, 0.26 and 0.27 at α 1, 224 px
    assert 0.25 < len(q) / len(f) < 0.33


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNTIMES)
def test_the_int8_file_agrees_with_the_float_network_and_a_wrong_one_does_not(files, name):
    model, _, q = files(name)
    run_q = _module(name).runner(q, 1)
    good = agreement(model, run_q, 1)
    assert good.centred >= MIN_CENTRED_COSINE and good.passes
    flipped = agreement(model, lambda x: run_q(np.ascontiguousarray(x[:, :, ::-1, ::-1])), 1)
    assert not flipped.passes  # a file that sees another image fails the check


@pytest.mark.slow
@pytest.mark.skipif(not HAS["executorch"],
                    reason="ExecuTorch is an optional extra: pip install 'mobilecost[executorch]'")
def test_the_int8_program_is_one_xnnpack_delegate_with_float_input(files):
    from executorch.exir._serialize._program import deserialize_pte_binary
    from executorch.runtime import Runtime

    _, _, q = files("executorch")
    pte = deserialize_pte_binary(q)
    pte = getattr(pte, "program", pte)
    assert [d.id for plan in pte.execution_plan for d in plan.delegates] == ["XnnpackBackend"]
    x = torch.zeros(1, 3, RES, RES)
    out = Runtime.get().load_program(q).load_method("forward").execute([x])
    assert out[0].dtype == torch.float32 and tuple(out[0].shape) == (1, 1000)


@pytest.mark.slow
@pytest.mark.skipif(not HAS["litert"],
                    reason="LiteRT is an optional extra: pip install 'mobilecost[litert]'")
def test_the_tflite_file_is_full_integer_and_the_runner_scales_its_input_and_output(files):
    from ai_edge_litert.interpreter import Interpreter

    model, _, q = files("litert")
    interpreter = Interpreter(model_content=q)
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["dtype"] == np.int8 and outp["dtype"] == np.int8
    assert list(inp["shape"]) == [1, 3, RES, RES]
    weights = [t for t in interpreter.get_tensor_details()
               if len(t["shape"]) == 4 and t["dtype"] == np.int8
               and len(t["quantization_parameters"]["scales"]) > 1]
    assert len(weights) >= 14  # the 14 convolutions (13 pointwise + the first), per channel
    # by hand: quantize the input with the input's scale and zero point, dequantize the output
    x = np.random.default_rng(0).standard_normal((1, 3, RES, RES)).astype(np.float32)
    (s_in, z_in), (s_out, z_out) = inp["quantization"], outp["quantization"]
    interpreter.set_tensor(inp["index"], np.clip(np.round(x / s_in) + z_in, -128, 127)
                           .astype(np.int8))
    interpreter.invoke()
    want = (interpreter.get_tensor(outp["index"]).astype(np.float32) - z_out) * s_out
    assert np.array_equal(_module("litert").runner(q, 1)(x), want)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """runtime -> (folder, result) of `export --quantize int8 --to FMT`, with HOME and the
    temporary folder pointed at empty ones; made on first use."""
    made = {}

    def get(name):
        if name not in made:
            base = tmp_path_factory.mktemp(name)
            home, tmp = base / "home", base / "tmp"
            home.mkdir()
            tmp.mkdir()
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("HOME", str(home))
                mp.setenv("TMPDIR", str(tmp))
                mp.setattr(tempfile, "tempdir", str(tmp))
                result = run("export", "--alpha", "0.25", "--res", RES, "--quantize", "int8",
                             "--to", FORMAT[name], "--output-dir", base / "out", "-f", "csv")
            made[name] = base, result
        return made[name]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNTIMES)
def test_export_quantize_writes_the_file_its_row_and_nothing_else(exported, name):
    base, result = exported(name)
    assert result.exit_code == 0, result.output
    folder = base / "out"
    (row,) = read_manifest(folder / "manifest.csv")
    assert row.file == f"mobilenet_v1_0.25_{RES}_int8.{FORMAT[name]}" and row.dtype == "int8"
    assert QUANTIZER[name] in row.quantizer and row.calibration.startswith("synthetic")
    assert row.centred_cosine >= MIN_CENTRED_COSINE
    data = (folder / row.file).read_bytes()
    assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert "centred cosine" in " ".join(result.stderr.split())
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.csv", row.file])
    assert not list((base / "tmp").iterdir()) and not list((base / "home").rglob("*"))


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNTIMES)
def test_a_second_int8_export_keeps_the_file(exported, name):
    base, _ = exported(name)
    again = run("export", "--alpha", "0.25", "--res", RES, "--quantize", "int8", "--to",
                FORMAT[name], "--output-dir", base / "out", "-f", "csv")
    assert again.exit_code == 0 and ",kept" in again.stdout, again.output


@pytest.mark.parametrize("name", RUNTIMES)
def test_a_toolchain_that_cannot_quantize_is_one_line_naming_network_and_runtime(
        tmp_path, monkeypatch, name):
    """The quantizer fails inside the toolchain (torchao's prepare_pt2e, which both use):
    one line naming the network and the runtime, exit 2, nothing written."""
    from torchao.quantization.pt2e import quantize_pt2e

    def broken(*a, **k):
        raise NotImplementedError("no quantization pattern for aten.hardswish")

    monkeypatch.setattr(quantize_pt2e, "prepare_pt2e", broken)
    out = tmp_path / "o"
    line = one_error_line(run("export", "mobilenet_v3_small", "--alpha", "0.5", "--res", "64",
                              "--quantize", "int8", "--to", FORMAT[name], "--output-dir", out))
    label = {"executorch": "ExecuTorch", "litert": "litert-torch"}[name]  # what quantizes
    assert "mobilenet_v3_small α=0.5 64" in line
    assert f"{label} cannot quantize the network" in line and "hardswish" in line
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", RUNTIMES)
def test_measure_times_the_int8_file_and_caches_it_apart(tmp_path, monkeypatch, name):
    from timing_helpers import all_quiet

    all_quiet(monkeypatch)
    args = ("measure", "--alpha", "0.25", "--res", "64", "--runtime", name, "--threads", "1",
            "--min-time", "0.01", "--max-time", "0.1", "--cache-dir", tmp_path / "c", "-f", "csv")
    r = run(*args, "--dtype", "int8")
    assert r.exit_code == 0, r.output
    (row,) = list(csv.DictReader(r.stdout.splitlines()))
    assert (row["runtime"], row["dtype"], row["cached"]) == (name, "int8", "False")
    assert float(row["latency_ms"]) > 0
    assert QUANTIZER[name] in " ".join(r.stderr.split())
    fp32 = run(*args, "--dtype", "fp32")
    assert fp32.exit_code == 0, fp32.output
    (row,) = list(csv.DictReader(fp32.stdout.splitlines()))
    assert (row["dtype"], row["cached"]) == ("fp32", "False")  # not the int8 entry
    assert len(list((tmp_path / "c").glob("*.json"))) == 2
