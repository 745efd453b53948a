"""Import a spec from a PyTorch module or an ONNX file, and validate a spec against one.

The round trip: every built-in spec, built in torch at several α and resolutions, imports
(from the module and from the ONNX file torch.onnx.export makes of it) to a spec that, at
α = 1, builds the same layers as the original at that α: shapes, Mult-Adds and parameters,
layer for layer. A network written by hand here imports to the Mult-Adds that torch's
FlopCounterMode counts and that are worked out by hand below.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mobilecost.engine.cost import Counting, layer_cost
from mobilecost.importing.recognise import ModelImportError
from mobilecost.importing.write import import_graph, parse_rounding
from mobilecost.lang.load import builtin_names, load_spec
from mobilecost.lang.values import Rounding
from mobilecost.reports.importing import read_source

# Every built-in: MobileNet v1 and its variants, v2, the four MobileNetV3s (squeeze-and-excitation,
# hard-swish, the hard-swish classifier layer), MnasNet-B1 and MobileNetV4's convolutional
# models (their uib and fused blocks read back as explicit layers). Not MobileNetV4's hybrids:
# import has no recogniser for attention, layer scale or a batchnorm of its own.
IMPORTABLE = [n for n in builtin_names() if not n.startswith("mobilenetv4_hybrid")]
from cli_helpers import one_error_line, run
from onnx_helpers import export_onnx

from mobilecost.torch.build import build_model
from mobilecost.torch.fx import graph_of_module

HERE = Path(__file__).resolve().parent


def _facts(layers):
    """What must agree layer for layer: the shapes, the op, and the costs."""
    out = []
    for l in layers:
        c = layer_cost(l)
        out.append((l.op, l.kind, l.kernel, l.stride, l.in_size, l.in_channels, l.out_size,
                    l.out_channels, l.groups, l.act, l.pad, l.skip_from, c.macs, c.params))
    return out


def _import_module(model, resolution, rounding=Rounding(), allow_unknown=False):
    return import_graph(graph_of_module(model, "test", "test", resolution), rounding,
                        allow_unknown)


CONFIGS = [("1", 224), ("0.75", 160), ("0.5", 128), ("0.35", 97)]


# --------------------------------------------------------------------------- round trip

@pytest.mark.parametrize("name", IMPORTABLE)
@pytest.mark.parametrize("alpha,res", CONFIGS)
def test_module_round_trip(name, alpha, res):
    model = build_model(name, alpha, res)
    imp = _import_module(model, res)
    original = load_spec(name).build(alpha, res)
    assert _facts(imp.layers) == _facts(original)
    assert [l.bn for l in imp.layers] == [l.bn for l in original]
    assert imp.spec.resolution == res and str(imp.spec.in_channels) == "3!"
    assert imp.unknown == []


def test_mobilenet_v1_imports_to_its_own_canonical_text():
    """At α = 1 the import is the built-in spec itself, repeat block and all (name aside)."""
    imp = _import_module(build_model("mobilenet_v1"), 224)
    want = load_spec("mobilenet_v1").format().replace("name mobilenet_v1", "name test")
    assert imp.text == want


def test_mobilenet_v2_inverted_residuals_are_written_as_ir():
    imp = _import_module(build_model("mobilenet_v2", "0.5", 128), 128, parse_rounding("multiple 8"))
    lines = [l.strip() for l in imp.text.splitlines()]
    assert lines[:6] == ["name test", "input 128 3!", "rounding multiple 8", "activation relu6",
                         "conv 3 16 s2", "ir 8 t=1"]
    # 17 blocks (1 + 2 + 3 + 4 + 3 + 3 + 1, Table 2 of the MobileNetV2 paper), one depthwise
    # layer each, every one of them written inside an `ir`
    assert sum(l.op == "dw" for l in imp.layers) == 17
    assert not any(l.startswith(("dw", "residual")) for l in lines) and "fc 1000!" in lines


def test_inverted_residual_that_differs_is_written_as_explicit_layers():
    """An expand/depthwise/project block whose projection has an activation is not an `ir`."""
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
            self.body = nn.Sequential(
                nn.Conv2d(16, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6(),
                nn.Conv2d(64, 64, 3, 1, 1, groups=64, bias=False), nn.BatchNorm2d(64), nn.ReLU6(),
                nn.Conv2d(64, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())

        def forward(self, x):
            x = self.stem(x)
            return x + self.body(x)

    imp = _import_module(Block(), 32)
    assert imp.text.splitlines()[4:] == [
        "conv 3 16 s2 act=none bn=no", "residual {", "  pw 64", "  dw 3", "  pw 16", "}"]


@pytest.mark.parametrize("name", IMPORTABLE)
def test_onnx_round_trip(name, tmp_path):
    pytest.importorskip("onnx")
    alpha, res = "0.5", 96
    model = build_model(name, alpha, res)
    path = export_onnx(model, tmp_path / f"{name}.onnx", res)
    imp = read_source(str(path))
    original = load_spec(name).build(alpha, res)
    assert _facts(imp.layers) == _facts(original)
    if name == "mobilenet_v2":  # batchnorm folded into a bias reads as bn=yes: ir again
        assert imp.text.count("ir ") >= 10 and "residual" not in imp.text


@pytest.mark.slow
@pytest.mark.parametrize("name", IMPORTABLE)
@pytest.mark.parametrize("alpha,res,dynamo", [("1", 224, True), ("0.75", 160, False)])
def test_onnx_round_trip_more_configurations(name, alpha, res, dynamo, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    model = build_model(name, alpha, res)
    path = export_onnx(model, tmp_path / f"{name}.onnx", res, dynamo=dynamo)
    assert _facts(read_source(str(path)).layers) == _facts(load_spec(name).build(alpha, res))


# --------------------------------------------------------------------------- a network by hand

class Hand(nn.Module):
    """Not built by mobilecost: a stem, a separable pair, a residual 3×3, a max pool, a VALID
    5×5 with a bias, a mean over the map and a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.pw = nn.Conv2d(16, 32, 1, bias=False)
        self.block = nn.Sequential(nn.Conv2d(32, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32),
                                   nn.ReLU6())
        self.pool = nn.MaxPool2d(2)
        self.conv5 = nn.Conv2d(32, 24, 5)
        self.head = nn.Linear(24, 10)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu6(self.bn(self.dw(x)))
        x = self.pw(x)
        x = x + self.block(x)
        x = self.pool(x)
        x = torch.relu(self.conv5(x))
        x = x.mean((2, 3))
        return self.head(x)


# by hand, at 64×64: 32×32 after the stem, 16×16 after the pool, 12×12 after the VALID 5×5
HAND_MACS = [3 * 3 * 3 * 16 * 32 * 32,    # stem           442,368
             3 * 3 * 16 * 32 * 32,        # depthwise      147,456
             16 * 32 * 32 * 32,           # pointwise      524,288
             3 * 3 * 32 * 32 * 32 * 32,   # residual 3×3 9,437,184
             0, 0,                        # the add, the max pool
             5 * 5 * 32 * 24 * 12 * 12,   # VALID 5×5    2,764,800
             0,                           # the mean
             24 * 10]                     # classifier        240


def test_hand_written_network_imports_to_the_counts_of_flop_counter_mode():
    from torch.utils.flop_counter import FlopCounterMode

    model = Hand().eval()
    imp = _import_module(model, 64)
    assert imp.text.splitlines()[3:] == [
        "activation relu", "conv 3 16 s2", "dw 3 act=relu6", "pw 32 act=none bn=no",
        "residual {", "  conv 3 32 act=relu6", "}", "maxpool 2",
        "conv 5 24 bn=no pad=valid bias=yes", "avgpool global", "fc 10!"]
    assert [layer_cost(l).macs for l in imp.layers] == HAND_MACS
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 64, 64))
    assert imp.total_macs == sum(HAND_MACS) == counter.get_total_flops() // 2 == 13_316_336
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert sum(layer_cost(l).params for l in imp.layers) == weights
    # the 5×5's own bias (no batchnorm after it) counts where biases do: torch's own count
    every = sum(layer_cost(l, Counting(True, True)).params for l in imp.layers)
    assert every == sum(p.numel() for p in model.parameters())


def test_hand_written_network_from_onnx_gives_the_same_spec(tmp_path):
    pytest.importorskip("onnx")
    model = Hand().eval()
    via_module = _import_module(model, 64)
    via_onnx = read_source(str(export_onnx(model, tmp_path / "hand.onnx", 64)))
    assert _facts(via_onnx.layers) == _facts(via_module.layers)


# --------------------------------------------------------------------------- unknown operations

class Gated(nn.Module):
    """A grouped convolution (4 groups) and a sigmoid: neither is in the spec language."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.grouped = nn.Conv2d(16, 16, 3, 1, 1, groups=4, bias=False)
        self.gate = nn.Sigmoid()
        self.pw = nn.Conv2d(16, 8, 1, bias=False)

    def forward(self, x):
        return self.pw(self.gate(self.grouped(self.stem(x))))


def test_unknown_operations_are_refused_by_name(tmp_path):
    with pytest.raises(ModelImportError) as e:
        _import_module(Gated(), 32)
    msg = str(e.value)
    assert "2 operation(s)" in msg and "grouped (Conv2d)" in msg and "gate (Sigmoid)" in msg
    assert "4 groups on 16 → 16 channels" in msg and "--allow-unknown" in msg


def test_allow_unknown_writes_comments_and_their_share_of_mult_adds():
    imp = _import_module(Gated(), 32, allow_unknown=True)
    stem = 3 * 3 * 3 * 16 * 16 * 16        # 110,592
    grouped = 3 * 3 * (16 // 4) * 16 * 16 * 16  # 147,456
    pw = 16 * 8 * 16 * 16                 # 32,768
    assert imp.unknown_macs == grouped
    assert imp.total_macs == stem + grouped + pw == 290_816
    assert imp.text.splitlines()[4:] == [
        "conv 3 16 s2 bn=no",
        "# unknown: grouped (Conv2d): 16×16×16 -> 16×16×16, 147,456 Mult-Adds",
        "# unknown: gate (Sigmoid): 16×16×16 -> 16×16×16, 0 Mult-Adds", "pw 8 bn=no"]


# --------------------------------------------------------------------------- the CLI

def test_cli_import_writes_the_spec_and_refuses_to_overwrite(tmp_path):
    pytest.importorskip("onnx")
    onnx_file = export_onnx(build_model("shallow_mobilenet", "0.25", 64), tmp_path / "s.onnx", 64)
    out = tmp_path / "s.spec"
    r = run("import", onnx_file, "-o", out)
    assert r.exit_code == 0, r.output
    assert load_spec(str(out)).build(1, 64) and "wrote" in r.stderr
    assert "Mult-Adds" in r.stderr
    before = out.read_text()
    line = one_error_line(run("import", onnx_file, "-o", out))
    assert "exists" in line and "--force" in line
    assert out.read_text() == before
    assert run("import", onnx_file, "-o", out, "--force").exit_code == 0


def test_cli_validate_against_a_network(tmp_path):
    pytest.importorskip("onnx")
    onnx_file = export_onnx(build_model("mobilenet_v1", "0.5", 128), tmp_path / "v1.onnx", 128)
    ok = run("crosscheck", "mobilenet_v1", "--alpha", "0.5", "--res", "128", "--against", onnx_file,
             "--format", "csv")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.count(",yes") == 29  # 29 layers, every one agreeing
    bad = run("crosscheck", "mobilenet_v1", "--alpha", "0.75", "--res", "128", "--against",
              onnx_file)
    line = one_error_line(bad, code=1)
    # layer 1 at α = 0.75 has int(0.75·32) = 24 filters, the network 16
    assert line == ("error: first disagreement at layer 1: spec conv 128×128×3 → 64×64×24 "
                    f"({3 * 3 * 3 * 24 * 64 * 64:,} Mult-Adds, {3 * 3 * 3 * 24} params), network "
                    f"conv 128×128×3 → 64×64×16 ({3 * 3 * 3 * 16 * 64 * 64:,} Mult-Adds, "
                    f"{3 * 3 * 3 * 16} params)")


def test_cli_validate_against_a_module_with_a_gate_the_spec_lacks(tmp_path):
    """A spec without the network's extra operation (as a MobileNetV3 spec without its SE
    blocks) does not pass."""
    src = tmp_path / "gated.py"
    import inspect

    src.write_text("import torch\nfrom torch import nn\n\n" + inspect.getsource(Gated)
                   + "\n\ndef make():\n    return Gated()\n")
    spec = tmp_path / "plain.spec"
    spec.write_text("input 32 3!\nconv 3 16 s2 act=none bn=no\npw 8 act=none bn=no\n")
    r = run("crosscheck", spec, "--against", f"{src}:make")
    line = one_error_line(r, code=1)
    assert "layer 2" in line and "grouped (Conv2d)" in line


# --------------------------------------------------------------------------- bad input

BAD_PY = '''
import torch
from torch import nn

def not_a_module():
    return [1, 2, 3]

class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x

def branchy():
    return Branchy()

def no_conv():
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
'''


@pytest.fixture()
def bad_py(tmp_path):
    p = tmp_path / "bad_models.py"
    p.write_text(BAD_PY)
    return p


def test_callable_that_does_not_return_a_module(bad_py):
    line = one_error_line(run("import", f"{bad_py}:not_a_module"))
    assert "not_a_module() returned 'list', not a torch.nn.Module" in line


def test_module_that_does_not_trace_says_where(bad_py):
    line = one_error_line(run("import", f"{bad_py}:branchy"))
    assert "torch.fx cannot trace" in line and f"{bad_py}:14 in forward" in line


def test_model_with_no_convolution(bad_py, tmp_path):
    line = one_error_line(run("import", f"{bad_py}:no_conv"))
    assert "no convolution" in line


def test_missing_callable_and_bad_source(bad_py):
    assert "has no attribute 'nope'" in one_error_line(run("import", f"{bad_py}:nope"))
    assert "MODULE:CALLABLE" in one_error_line(run("import", "just_a_word"))


def _tiny_onnx(path, dims, conv=True):
    """A one-layer ONNX model made with onnx.helper: a 3×3 convolution 3 → 4 (or a Relu)."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    if conv:
        w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
        node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv0", pads=[1, 1, 1, 1])
        graph = helper.make_graph([node], "g", [x], [y], [w])
    else:
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(path))
    return path


def test_onnx_dynamic_size_needs_res(tmp_path):
    f = _tiny_onnx(tmp_path / "dyn.onnx", [1, 3, "height", "width"])
    line = one_error_line(run("import", f))
    assert "dynamic size (1×3×height×width)" in line and "--res" in line
    r = run("import", f, "--res", "16")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[1:] == ["input 16 3!", "rounding int", "activation none",
                                         "conv 3 4 bn=no"]


def test_onnx_truncated_file(tmp_path):
    f = _tiny_onnx(tmp_path / "whole.onnx", [1, 3, 8, 8])
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(f.read_bytes()[:60])
    line = one_error_line(run("import", cut))
    assert "cut.onnx" in line and "truncated" in line


def test_onnx_without_convolution(tmp_path):
    f = _tiny_onnx(tmp_path / "relu.onnx", [1, 3, 8, 8], conv=False)
    assert "no convolution" in one_error_line(run("import", f))


def test_rounding_that_would_change_a_channel_count(tmp_path):
    f = _tiny_onnx(tmp_path / "c.onnx", [1, 3, 8, 8])
    line = one_error_line(run("import", f, "--rounding", "multiple 8"))
    assert "4 channels" in line and "writes as 8" in line
    assert "--rounding must be" in one_error_line(run("import", f, "--rounding", "floor"))


def test_no_partial_spec_on_failure(bad_py, tmp_path):
    out = tmp_path / "never.spec"
    one_error_line(run("import", f"{bad_py}:branchy", "-o", out))
    assert not out.exists()


def test_onnx_import_does_not_load_torch(tmp_path):
    """Reading an ONNX file needs the onnx package only."""
    import subprocess
    import sys

    f = _tiny_onnx(tmp_path / "t.onnx", [1, 3, 8, 8])
    code = ("import sys; from mobilecost.reports.importing import read_source; "
            f"imp = read_source({str(f)!r}); "
            "print(imp.total_macs, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=HERE.parents[1], check=True).stdout.split()
    assert out == [str(3 * 3 * 3 * 4 * 8 * 8), "False"]


# --------------------------------------------------------------------------- a model-zoo layout

def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ZooConvBNReLU(nn.Sequential):
    def __init__(self, inp, out, k=3, s=1, groups=1):
        super().__init__(nn.Conv2d(inp, out, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(out), nn.ReLU6(inplace=True))


class ZooInvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [ZooConvBNReLU(inp, hidden, k=1)] if expand_ratio != 1 else []
        layers += [ZooConvBNReLU(hidden, hidden, s=stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class ZooMobileNetV2(nn.Module):
    """MobileNetV2 laid out as torchvision writes it (its code's structure, written here:
    torchvision is not a dependency): module names features.N.conv.M, a Python-level
    residual switch, functional pooling and flatten, dropout before the classifier."""

    def __init__(self, width_mult=1.0):
        super().__init__()
        settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                    [6, 160, 3, 2], [6, 320, 1, 1]]
        inp = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        features = [ZooConvBNReLU(3, inp, s=2)]
        for t, c, n, s in settings:
            out = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(ZooInvertedResidual(inp, out, s if i == 0 else 1, t))
                inp = out
        features.append(ZooConvBNReLU(inp, last, k=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, 1000))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def test_model_zoo_mobilenet_v2_imports_to_its_published_size():
    """300M Mult-Adds (MobileNetV2's Table 4 prints 300M, truncated) and torchvision's
    3,504,872 parameters (weights, FC bias and batchnorm: sum of numel)."""
    model = ZooMobileNetV2().eval()
    imp = _import_module(model, 224, parse_rounding("multiple 8"))
    assert imp.total_macs == 300_774_272
    assert sum(p.numel() for p in model.parameters()) == 3_504_872
    assert sum(layer_cost(l, Counting(biases=True, batchnorm=True)).params
               for l in imp.layers) == 3_504_872
    assert _facts(imp.layers) == _facts(load_spec("mobilenet_v2").build(1, 224))
    # the paper's Table 2 (t, c, n, s), one repeat per run of equal blocks; the last 1×1 is
    # `pw 1280`, not the built-in spec's `1280+`: one configuration cannot tell them apart
    assert imp.text.splitlines() == [
        "name test", "input 224 3!", "rounding multiple 8", "activation relu6",
        "conv 3 32 s2",
        "ir 16 t=1",                                                   # 1, 16, 1, 1
        "ir 24 s2", "ir 24",                                           # 6, 24, 2, 2
        "ir 32 s2", "repeat 2 {", "  ir 32", "}",                      # 6, 32, 3, 2
        "ir 64 s2", "repeat 3 {", "  ir 64", "}",                      # 6, 64, 4, 2
        "repeat 3 {", "  ir 96", "}",                                  # 6, 96, 3, 1
        "ir 160 s2", "repeat 2 {", "  ir 160", "}",                    # 6, 160, 3, 2
        "ir 320",                                                      # 6, 320, 1, 1
        "pw 1280", "avgpool global", "fc 1000!"]


def test_model_zoo_mobilenet_v2_at_half_width():
    """The module at width 0.5 is imported as a network of its own at α = 1, whose cost is
    the module's: torchvision keeps the last 1×1 at 1280 below width 1 (`1280+`), and the
    import writes it at 1280; FlopCounterMode counts the same Mult-Adds."""
    from torch.utils.flop_counter import FlopCounterMode

    model = ZooMobileNetV2(0.5).eval()
    imp = _import_module(model, 160, parse_rounding("multiple 8"))
    assert _facts(imp.layers) == _facts(load_spec("mobilenet_v2").build("0.5", 160))
    assert "pw 1280" in imp.text.splitlines()
    # the head at 160 px: a 5×5 map, 160 → 1280 channels, then 1280 → 1000
    assert [layer_cost(l).macs for l in imp.layers[-3:]] == [160 * 1280 * 5 * 5, 0, 1280 * 1000]
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 160, 160))
    assert imp.total_macs == counter.get_total_flops() // 2 == 50_184_000
    assert _facts(imp.spec.build(1, 160)) == _facts(imp.layers)


class Excite(nn.Module):
    """A squeeze-excitation gate (pool, 1×1 down, ReLU, 1×1 up, sigmoid, multiply) squeezing
    16 channels to 4: the spec's `se R` squeezes to make_divisible(16/R, 8), at least 8, so
    no ratio expresses it (tests/test_import_se.py has the blocks that are `se R`)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.down = nn.Conv2d(16, 4, 1)
        self.up = nn.Conv2d(4, 16, 1)
        self.pw = nn.Conv2d(16, 8, 1, bias=False)

    def forward(self, x):
        x = self.stem(x)
        s = torch.sigmoid(self.up(F.relu(self.down(F.adaptive_avg_pool2d(x, 1)))))
        return self.pw(x * s)


def test_an_se_no_ratio_expresses_is_written_with_its_squeeze_width():
    imp = _import_module(Excite(), 32)
    # 16 → 4: make_divisible(16/R, 8) is at least 8, so the width is written, R = 16 / 4
    assert imp.text.splitlines()[4:] == ["conv 3 16 s2 bn=no", "se 4 gate=sigmoid w=4",
                                         "pw 8 bn=no"]
    # the gate's two 1×1 convolutions on the 1×1 map: 16·4 + 4·16 Mult-Adds
    assert imp.total_macs == 3 * 3 * 3 * 16 * 16 * 16 + 16 * 4 + 4 * 16 + 16 * 8 * 16 * 16
    assert [l.op for l in imp.layers] == ["conv", "avgpool", "pw", "pw", "scale", "pw"]


def test_package_module_callable_source(tmp_path, monkeypatch):
    """`package.module:callable` is imported by name, from sys.path."""
    pkg = tmp_path / "zoo_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        "from mobilecost.torch.build import build_model\n\n"
        "def shallow():\n    return build_model('shallow_mobilenet', '0.25', 64)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = run("import", "zoo_pkg.nets:shallow", "--res", "64")
    assert r.exit_code == 0, r.output
    spec = load_spec(str(_write(tmp_path / "s.spec", r.stdout)))
    assert _facts(spec.build(1, 64)) == _facts(load_spec("shallow_mobilenet").build("0.25", 64))
    line = one_error_line(run("import", "zoo_pkg.missing:shallow"))
    assert "importing zoo_pkg.missing failed: ModuleNotFoundError" in line


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["mobilenet_v1", "conv_mobilenet", "shallow_mobilenet"])
def test_spec_imported_at_alpha_1_costs_the_same_over_a_grid(name):
    """Imported from the α = 1 network, the spec is the original over a whole grid of α and
    resolutions. (MobileNetV2's differs below α = 1 by design: its `pw 1280+` reads back as
    `pw 1280`, which one configuration cannot tell apart.)"""
    imp = _import_module(build_model(name), 224)
    for alpha in ("0.25", "0.5", "0.75", "1", "1.3"):
        for res in (96, 128, 160, 224):
            assert _facts(imp.spec.build(alpha, res)) == _facts(load_spec(name).build(alpha, res))


def test_mnasnet_a1_imports_with_its_squeeze_from_the_input():
    """MnasNet-A1's SE squeezes to int(in / 4) of the block's input, which no ratio of
    MobileNetV3's rule gives (72 → 6 is below the multiple of 8): the import writes
    `squeeze=in`, and builds the built-in's layers."""
    imp = _import_module(build_model("mnasnet_a1"), 224, parse_rounding("multiple 8"))
    se_lines = [l.strip() for l in imp.text.splitlines() if "se=" in l]
    assert se_lines and all(l.endswith("se=4 gate=sigmoid squeeze=in") for l in se_lines)
    assert _facts(imp.layers) == _facts(load_spec("mnasnet_a1").build())
    # MobileNetV3 keeps MobileNetV3's rule
    v3 = _import_module(build_model("mobilenet_v3_large"), 224, parse_rounding("multiple 8"))
    assert "squeeze=in" not in v3.text and "se=4" in v3.text
