"""int8 through ONNX Runtime: the conditioned network, calibration inputs, the quantized file
and its check, `export --quantize`, and timing at int8.

The engine's int8 weight bytes are checked against what nobody here wrote: the initializers of
ONNX Runtime's quantized file, counted with onnx.numpy_helper. The file holds exactly the
engine's count plus, per quantized activation tensor, a float32 scale and a uint8 zero point,
plus the int64 shape of the flatten before the classifier."""

import numpy as np
import pytest
from cli_helpers import one_error_line, run

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from mobilecost import cost  # noqa: E402
from mobilecost.latency.manifest import read_manifest  # noqa: E402
from mobilecost.torch.build import build_model  # noqa: E402
from mobilecost.torch.quantize import (  # noqa: E402
    MIN_CENTRED_COSINE,
    Calibration,
    agreement,
    condition,
    synthetic,
)
from mobilecost.torch.runtimes import onnxruntime as ort_rt  # noqa: E402


@pytest.fixture(scope="module")
def v1_small():
    """mobilenet_v1 α 0.25 at 96 px: conditioned, its float and int8 files."""
    model = condition(build_model("mobilenet_v1", "0.25", 96))
    inputs = Calibration(n=8).inputs((3, 96, 96))
    return model, ort_rt.to_file(model, 1), ort_rt.quantize(model, 1, inputs)


def _initializer_bytes(data):
    by = {}
    for t in onnx.load_from_string(data).graph.initializer:
        arr = onnx.numpy_helper.to_array(t)
        by[arr.dtype] = by.get(arr.dtype, 0) + arr.nbytes
        by.setdefault("n_" + str(arr.dtype), 0)
        by["n_" + str(arr.dtype)] += 1
    return by


def test_untrained_logits_are_constant_and_conditioned_ones_are_not():
    model = build_model("mobilenet_v1", "0.25", 96).eval()
    x = torch.from_numpy(synthetic(16, (3, 96, 96), 1))
    with torch.inference_mode():
        raw = model(x).numpy()
        cond = condition(model)(x).numpy()
    assert len(set(raw.argmax(1))) == 1  # the classifier's bias alone: no check possible
    assert len(set(cond.argmax(1))) > 1
    assert cond.std(0).mean() > 0.1 * np.abs(cond).mean()


@pytest.mark.parametrize("spec, alpha", [("mobilenet_v1", "0.25"), ("mobilenet_v3_small", "0.5"),
                                         ("mobilenetv4_conv_small", "0.5")])
def test_int8_weight_bytes_are_the_files_initializers(spec, alpha):
    model = condition(build_model(spec, alpha, 96))
    q = ort_rt.quantize(model, 1, Calibration(n=2).inputs((3, 96, 96)))
    by = _initializer_bytes(q)
    quantized = by[np.dtype("int8")] + by[np.dtype("int32")] + by[np.dtype("float32")]
    # per activation tensor a uint8 zero point (not summed above) and a float32 scale
    assert by[np.dtype("uint8")] == by["n_uint8"]  # one zero point each: per-tensor
    activation_scales = by["n_uint8"] * 4
    assert quantized - activation_scales == cost(spec, alpha, 96).weight_bytes("int8")


def test_the_float_file_holds_the_fp32_bytes(v1_small):
    _, f, _ = v1_small
    by = _initializer_bytes(f)
    assert by[np.dtype("float32")] == cost("mobilenet_v1", "0.25", 96).weight_bytes("fp32")


def test_the_int8_file_agrees_with_the_float_network_and_a_wrong_one_does_not(v1_small):
    model, f, q = v1_small
    good = agreement(model, ort_rt.runner(q), 1, n=32)
    assert good.passes and good.centred > MIN_CENTRED_COSINE
    same = agreement(model, ort_rt.runner(f), 1, n=32)  # the float file: all but equal
    assert same.top1 == 1.0 and same.centred > 0.9999

    run_q = ort_rt.runner(q)
    shuffled = agreement(model, lambda x: run_q(np.ascontiguousarray(x[:, :, ::-1, ::-1])), 1, n=32)
    assert not shuffled.passes  # a file that sees another image


def test_calibration_sources_refused_in_one_line(tmp_path):
    from mobilecost.errors import MobilecostError

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MobilecostError, match="no images"):
        Calibration(empty).check()
    with pytest.raises(MobilecostError, match="no such file"):
        Calibration(tmp_path / "missing.npy").check()
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((4, 3, 64, 64), np.float32))
    with pytest.raises(MobilecostError, match=r"4×3×64×64.*N×3×96×96"):
        Calibration(wrong).inputs((3, 96, 96))
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (64, 48)).save(folder / "a.png")
    with pytest.raises(MobilecostError, match=r"a.png: 64×48 px.*96×96"):
        Calibration(folder).inputs((3, 96, 96))


def test_images_and_npy_calibrate(tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    x = Calibration(folder).inputs((3, 96, 96))
    assert x.shape == (3, 3, 96, 96) and x.dtype == np.float32
    arr = tmp_path / "x.npy"
    np.save(arr, x)
    assert (Calibration(arr).inputs((3, 96, 96)) == x).all()


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8") / "out"
    result = run("export", "--alpha", "0.25", "--res", "96", "--quantize", "int8",
                 "--output-dir", folder, "-f", "csv")
    assert result.exit_code == 0, result.output
    return folder, result


def test_export_quantize_writes_the_file_and_its_manifest_row(int8_export):
    folder, result = int8_export
    (row,) = read_manifest(folder / "manifest.csv")
    assert row.file == "mobilenet_v1_0.25_96_int8.onnx" and row.dtype == "int8"
    assert "quantize_static" in row.quantizer and row.calibration.startswith("synthetic")
    assert row.centred_cosine >= MIN_CENTRED_COSINE and 0 <= row.top1_agreement <= 1
    data = (folder / row.file).read_bytes()
    assert _initializer_bytes(data)[np.dtype("int8")] > 0
    assert "centred cosine" in " ".join(result.stderr.split())


def test_a_second_export_keeps_the_int8_file_and_float_files_sit_beside(int8_export):
    folder, _ = int8_export
    again = run("export", "--alpha", "0.25", "--res", "96", "--quantize", "int8",
                "--output-dir", folder, "-f", "csv")
    assert again.exit_code == 0 and ",kept" in again.stdout
    fp32 = run("export", "--alpha", "0.25", "--res", "96", "--output-dir", folder, "-f", "csv")
    assert fp32.exit_code == 0, fp32.output
    files = sorted(r.file for r in read_manifest(folder / "manifest.csv"))
    assert files == ["mobilenet_v1_0.25_96.onnx", "mobilenet_v1_0.25_96_int8.onnx"]


def test_calibration_without_quantize_and_bad_sources_are_one_line(tmp_path):
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((2, 3, 96, 96), np.float32))
    line = one_error_line(run("export", "--alpha", "0.25", "--res", "96", "--calibration", npy,
                              "--output-dir", tmp_path / "o"))
    assert "--calibration" in line and "--quantize" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_error_line(run("export", "--alpha", "0.25", "--res", "96", "--quantize", "int8",
                              "--calibration", empty, "--output-dir", tmp_path / "o"))
    assert "no images" in line
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 3, 64, 64), np.float32))
    line = one_error_line(run("export", "--alpha", "0.25", "--res", "96", "--quantize", "int8",
                              "--calibration", wrong, "--output-dir", tmp_path / "o"))
    assert "wrong.npy" in line and "3×96×96" in line
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_a_failing_quantizer_leaves_nothing_behind(tmp_path, monkeypatch):
    from mobilecost.torch.lowering import ExportError

    def broken(*a, **k):
        raise ExportError("ONNX Runtime cannot quantize the network: boom")

    monkeypatch.setattr(ort_rt, "quantize", broken)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    out = tmp_path / "o"
    line = one_error_line(run("export", "--alpha", "0.25", "--res", "96", "--quantize", "int8",
                              "--output-dir", out))
    assert "cannot quantize" in line and "boom" in line
    assert not out.exists() and not list(tmp.iterdir())


def test_quantizing_leaves_no_files_in_tmp_or_home(tmp_path, monkeypatch):
    import tempfile

    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    model = condition(build_model("mobilenet_v1", "0.25", 64))
    ort_rt.quantize(model, 1, Calibration(n=2).inputs((3, 64, 64)))
    assert not list(tmp.iterdir()) and not list(home.rglob("*"))


def test_measure_times_the_int8_file(tmp_path, monkeypatch):
    from timing_helpers import all_quiet

    all_quiet(monkeypatch)
    r = run("measure", "--alpha", "0.25", "--res", "64", "--runtime", "onnxruntime", "--dtype",
            "int8", "--threads", "1", "--min-time", "0.01", "--max-time", "0.1", "--cache-dir",
            tmp_path / "c", "-f", "csv")
    assert r.exit_code == 0, r.output
    assert ",int8," in r.stdout and "int8 file" in " ".join(r.stderr.split())
    again = run("measure", "--alpha", "0.25", "--res", "64", "--runtime", "onnxruntime",
                "--dtype", "fp32", "--threads", "1", "--min-time", "0.01", "--max-time", "0.1",
                "--cache-dir", tmp_path / "c", "-f", "csv")
    assert again.exit_code == 0 and ",True," not in again.stdout.splitlines()[1]  # not int8's


@pytest.mark.slow
def test_the_int8_file_of_v1_is_about_a_quarter_of_the_float_one():
    model = condition(build_model("mobilenet_v1", "1", 224))
    f = ort_rt.to_file(model, 1)
    q = ort_rt.quantize(model, 1, Calibration(n=4).inputs((3, 224, 224)))
    # the weights alone: int8 = 4,412,136 B, fp32 = 16,884,128 B (engine); the files add the
    # graph (a few kB) and, for int8, the quantize/dequantize nodes
    assert 0.25 < len(q) / len(f) < 0.28
