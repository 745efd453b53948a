"""mobilecost export: checked ONNX files, one per configuration, and the manifest.

The files are checked here by means that do not rely on the exporter: the Mult-Adds and
weights are counted again from the ONNX graph itself (every Conv: output elements × input
channels per group × k²; Gemm: in × out), the output is compared with the torch module's
under ONNX Runtime, and hashes are taken again with hashlib.
"""

import csv
import hashlib
import os
import shutil
from fractions import Fraction

import pytest
from cli_helpers import one_error_line, run

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from mobilecost.latency.manifest import ManifestError, file_name, read_manifest  # noqa: E402


def _rows(folder):
    with open(folder / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """mobilenet_v1 at α 0.25 and 1/3, resolution 64, exported once for the module."""
    folder = tmp_path_factory.mktemp("export") / "onnx"
    result = run("export", "mobilenet_v1", "--alpha", "0.25,1/3", "--res", "64",
                 "--output-dir", folder, "-f", "csv")
    assert result.exit_code == 0, result.output
    return folder, result


def _graph_counts(path):
    """Mult-Adds and weights of the convolutions and the fully connected layer, counted from
    the ONNX graph (shapes inferred by onnx)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    init = {t.name: list(t.dims) for t in g.initializer}
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(g.value_info) + list(g.output)}
    macs = weights = 0
    for node in g.node:
        if node.op_type == "Conv":
            w = init[node.input[1]]  # (out, in/groups, k, k)
            out = shapes[node.output[0]]
            macs += out[1] * out[2] * out[3] * w[1] * w[2] * w[3]
            weights += w[0] * w[1] * w[2] * w[3]
        elif node.op_type == "Gemm":
            w = init[node.input[1]]
            macs += w[0] * w[1]
            weights += w[0] * w[1]
    return macs, weights


def test_manifest_lists_each_file_with_its_hash_and_exact_alpha(exported):
    folder, _ = exported
    rows = _rows(folder)
    assert [r["alpha"] for r in rows] == ["0.25", "1/3"]  # 1/3 exactly, not 0.333…
    assert [r["file"] for r in rows] == ["mobilenet_v1_0.25_64.onnx", "mobilenet_v1_1-3_64.onnx"]
    for r in rows:
        data = (folder / r["file"]).read_bytes()
        assert r["sha256"] == hashlib.sha256(data).hexdigest()
        assert (r["resolution"], r["batch"], r["opset"], r["format"]) == ("64", "1", "18", "onnx")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.csv"] + [r["file"] for r in rows])  # no temporary file left behind


def test_manifest_costs_equal_the_graphs_own_count(exported):
    folder, _ = exported
    for r in _rows(folder):
        macs, weights = _graph_counts(folder / r["file"])
        assert int(r["macs"]) == macs
        assert int(r["params"]) == weights


def test_each_file_has_a_fixed_shape_opset_18_and_no_batchnorm(exported):
    folder, _ = exported
    model = onnx.load(str(folder / "mobilenet_v1_0.25_64.onnx"))
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 64]
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops


def test_each_file_runs_in_onnxruntime_as_the_torch_module_does(exported):
    from mobilecost.torch.build import build_model

    folder, _ = exported
    for alpha, name in (("0.25", "mobilenet_v1_0.25_64.onnx"), ("1/3", "mobilenet_v1_1-3_64.onnx")):
        model = build_model("mobilenet_v1", alpha, 64)
        x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
        with torch.inference_mode():
            want = model(x).numpy()
        s = ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])
        got = s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]
        assert got.shape == (1, 1000)
        assert abs(got - want).max() <= 1e-5 * abs(want).max()


def test_folding_batchnorm_keeps_the_output(exported):
    """Batchnorm with running statistics away from (0, 1) folds into the convolution."""
    from mobilecost.torch.build import build_model
    from mobilecost.torch.lowering import fold_batchnorm

    model = build_model("mobilenet_v2", "0.35", 48)
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.data.uniform_(0.5, 1.5, generator=g)
            m.bias.data.uniform_(-0.2, 0.2, generator=g)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # a copy was folded
    x = torch.randn(2, 3, 48, 48, generator=g)
    with torch.inference_mode():
        a, b = model(x), folded(x)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * a.abs().max().item())


def test_a_file_that_gives_other_output_is_refused():
    from mobilecost.torch.build import build_model
    from mobilecost.torch.export import verify
    from mobilecost.torch.lowering import ExportError
    from mobilecost.torch.runtimes.onnxruntime import to_file as to_onnx

    data = to_onnx(build_model("mobilenet_v1", "0.25", 32, seed=1))
    with pytest.raises(ExportError, match="differs from torch's"):
        verify(data, build_model("mobilenet_v1", "0.25", 32, seed=2))


def test_a_second_run_keeps_matching_files_and_exports_the_rest(exported, tmp_path):
    folder = tmp_path / "onnx"
    shutil.copytree(exported[0], folder)
    kept = folder / "mobilenet_v1_0.25_64.onnx"
    os.utime(kept, (1_000_000, 1_000_000))
    result = run("export", "mobilenet_v1", "--alpha", "0.25", "--res", "64,32",
                 "--output-dir", folder, "-f", "csv")
    assert result.exit_code == 0, result.output
    status = {r["file"]: r["status"] for r in csv.DictReader(result.stdout.splitlines())}
    assert status == {"mobilenet_v1_0.25_64.onnx": "kept", "mobilenet_v1_0.25_32.onnx": "exported"}
    assert kept.stat().st_mtime == 1_000_000  # not written again
    # the manifest now lists all three files, the α = 1/3 one carried over
    assert sorted(r["file"] for r in _rows(folder)) == [
        "mobilenet_v1_0.25_32.onnx", "mobilenet_v1_0.25_64.onnx", "mobilenet_v1_1-3_64.onnx"]


@pytest.mark.slow
def test_an_interrupted_export_leaves_complete_files_listed_in_the_manifest(tmp_path, monkeypatch):
    from mobilecost.torch import export as ex

    calls = []
    real = ex.verify

    def failing(data, model, batch=1, seed=0, fmt="onnx"):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(data, model, batch, seed, fmt)

    monkeypatch.setattr(ex, "verify", failing)
    folder = tmp_path / "onnx"
    result = run("export", "--alpha", "0.25", "--res", "32,64", "--output-dir", folder)
    line = one_error_line(result, 130)
    assert "run the same command again" in line
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.csv", "mobilenet_v1_0.25_32.onnx"]
    assert [r["file"] for r in _rows(folder)] == ["mobilenet_v1_0.25_32.onnx"]


# ----------------------------------------------------------------------------- bad input

def test_a_manifest_edited_so_a_hash_no_longer_matches_is_one_line(exported, tmp_path):
    folder = tmp_path / "onnx"
    shutil.copytree(exported[0], folder)
    text = (folder / "manifest.csv").read_text()
    sha = _rows(folder)[0]["sha256"]
    edited = text.replace(sha, "0" * 64)
    (folder / "manifest.csv").write_text(edited)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    line = one_error_line(run("export", "--alpha", "0.25", "--res", "64", "--output-dir", folder))
    assert "mobilenet_v1_0.25_64.onnx" in line and "does not match" in line
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written


def test_an_output_dir_that_is_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "x"
    blocker.write_text("x")
    assert "not a directory" in one_error_line(run("export", "--output-dir", blocker))
    assert "is not a directory" in one_error_line(run("export", "--output-dir", blocker / "sub"))


def test_an_unwritable_output_dir_is_one_line(tmp_path, monkeypatch):
    # (as root every folder is writable, so the permission check is shown a read-only one)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    line = one_error_line(run("export", "--output-dir", tmp_path / "onnx"))
    assert "not writable" in line
    assert not (tmp_path / "onnx").exists()


@pytest.mark.parametrize("opset", ["7", pytest.param("13", marks=pytest.mark.slow),
                                   pytest.param("99", marks=pytest.mark.slow)])
def test_an_opset_the_exporter_cannot_give_is_one_line(tmp_path, opset):
    # torch 2.13's exporter silently keeps opset 18 when asked for 7, 13 or 99
    folder = tmp_path / "onnx"
    line = one_error_line(run("export", "--alpha", "0.25", "--res", "32", "--opset", opset,
                              "--output-dir", folder))
    assert f"--opset {opset}" in line and "gave opset 18" in line
    assert not folder.exists()  # nothing written


def test_export_without_onnxruntime_says_how_to_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    line = one_error_line(run("export", "--output-dir", tmp_path / "onnx"))
    assert "onnxruntime" in line and "pip install 'mobilecost[onnx]'" in line


def test_export_needs_an_output_dir_and_a_bounded_grid(tmp_path):
    assert "--output-dir" in one_error_line(run("export"))
    line = one_error_line(run("export", "--alpha", "0.25..1:0.01", "--res", "96..224:1",
                              "--output-dir", tmp_path / "x"))
    assert "--max-configs" in line and "9,804" in line  # 76 α × 129 resolutions = 9,804
    assert not (tmp_path / "x").exists()


def test_the_cli_default_opset_is_the_libraries():
    from mobilecost.cli.export import DEFAULT_OPSET
    from mobilecost.torch.runtimes.onnxruntime import DEFAULT_OPSET as LIB

    assert DEFAULT_OPSET == LIB == 18


# ----------------------------------------------------------------------------- the manifest

def test_file_names_follow_tfs_published_models():
    assert file_name("mobilenet_v1", Fraction(3, 4), 224, 1, "onnx") == "mobilenet_v1_0.75_224.onnx"
    assert file_name("mobilenet_v1", Fraction(1), 128, 1, "onnx") == "mobilenet_v1_1_128.onnx"
    assert file_name("x", Fraction(1, 3), 96, 4, "onnx") == "x_1-3_96_b4.onnx"


@pytest.mark.parametrize("edit, fragment", [
    (lambda t: t.replace(",1,onnx,", ",0,onnx,", 1), "batch must be a whole number >= 1"),
    (lambda t: t.replace("mobilenet_v1_0.25_64.onnx", "../x.onnx", 1), "file name in the manifest's folder"),
    (lambda t: t.replace(",0.25,", ",abc,", 1), "alpha 'abc' is not a number"),
    (lambda t: t.replace("sha256", "hash", 1), "no column sha256"),
])
def test_a_bad_manifest_row_names_its_line(exported, tmp_path, edit, fragment):
    path = tmp_path / "manifest.csv"
    path.write_text(edit((exported[0] / "manifest.csv").read_text()))
    with pytest.raises(ManifestError, match=fragment.replace("(", r"\(").replace(".", r"\.")) as e:
        read_manifest(path)
    if "column" not in fragment:
        assert f"{path}:2:" in str(e.value)
