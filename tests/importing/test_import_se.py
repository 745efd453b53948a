"""Import of MobileNetV3's constructs: squeeze-and-excitation, hard-swish and hard-sigmoid (as
torch modules, torch functions, ONNX operators, and Keras's decomposition x·relu6(x + 3)/6),
the classifier layer with an activation; and the SE blocks the spec cannot express.

The round trip of the four built-in MobileNetV3s is in tests/test_import.py (IMPORTABLE); here a
V3-style network written in plain torch (not built by mobilecost) imports to the Mult-Adds
that hand arithmetic, torch's FlopCounterMode and fvcore give.
"""

from __future__ import annotations

import pytest
import torch
from cli_helpers import one_error_line, run
from onnx_helpers import export_onnx
from torch import nn
from torch.nn import functional as F

from mobilecost.engine.cost import Counting, layer_cost
from mobilecost.importing.blocks import se_ratios
from mobilecost.importing.recognise import ModelImportError
from mobilecost.importing.write import import_graph, parse_rounding
from mobilecost.lang.load import load_spec
from mobilecost.reports.importing import read_source
from mobilecost.torch.build import build_model
from mobilecost.torch.fx import graph_of_module


def _import(model, res, rounding="int", allow_unknown=False):
    return import_graph(graph_of_module(model.eval(), "test", "test", res),
                        parse_rounding(rounding), allow_unknown)


def _facts(layers):
    return [(l.op, l.kernel, l.stride, l.in_size, l.in_channels, l.out_size, l.out_channels,
             l.groups, l.act, l.bias, l.pad, l.skip_from, layer_cost(l).macs, layer_cost(l).params)
            for l in layers]


# --------------------------------------------------------------------------- the built-ins' text

def test_mobilenet_v3_large_imports_with_its_se_blocks_written_in_the_ir():
    """Table 1 of the MobileNetV3 paper: SE on the 5×5 stage of 40, and on 112 and 160; the
    expansions (exp / in) 1, 4, 3, 3, 3, 3, 6, 2.5, 2.3, 2.3, 6, 6, 6, 6, 6; ReLU in the first
    six blocks, hard-swish after; head 960, 1280 (hard-swish), 1000."""
    imp = _import(build_model("mobilenet_v3_large"), 224, "multiple 8")
    assert imp.text.splitlines() == [
        "name test", "input 224 3!", "rounding multiple 8", "activation hswish",
        "conv 3 16 s2",
        "ir 16 t=1 act=relu",                          # exp 16
        "ir 24 s2 t=4 act=relu",                       # exp 64
        "ir 24 t=3 act=relu",                          # exp 72
        "ir 40 s2 t=3 k=5 act=relu se=4",              # exp 72, SE
        "repeat 2 {", "  ir 40 t=3 k=5 act=relu se=4", "}",  # exp 120, SE
        "ir 80 s2",                                    # exp 240 = 6 × 40
        "ir 80 t=2.5",                                 # exp 200
        "repeat 2 {", "  ir 80 t=2.3", "}",            # exp 184
        "repeat 2 {", "  ir 112 se=4", "}",            # exp 480, 672, SE
        "ir 160 s2 k=5 se=4",                          # exp 672, SE
        "repeat 2 {", "  ir 160 k=5 se=4", "}",        # exp 960, SE
        "pw 960", "avgpool global", "fc 1280 act=hswish", "fc 1000!"]
    # torchvision's mobilenet_v3_large: 5,483,032 parameters (with batchnorm and biases)
    from mobilecost.engine.cost import Counting

    assert sum(layer_cost(l, Counting(biases=True, batchnorm=True)).params
               for l in imp.layers) == 5_483_032


def test_mobilenet_v3_small_imports_with_fractional_expansions_and_its_first_se():
    """Table 2: exp 16, 72, 88, 96, 240, 240, 120, 144, 288, 576, 576 on inputs 16, 16, 24,
    24, 40, 40, 40, 48, 48, 96, 96: expansions 1, 4.5, 11/3, 4, 6, 6, 3, 3, 6, 6, 6."""
    imp = _import(build_model("mobilenet_v3_small"), 224, "multiple 8")
    irs = [l.strip() for l in imp.text.splitlines() if l.strip().startswith("ir")]
    assert irs == ["ir 16 s2 t=1 act=relu se=4", "ir 24 s2 t=4.5 act=relu",
                   "ir 24 t=11/3 act=relu", "ir 40 s2 t=4 k=5 se=4", "ir 40 k=5 se=4",
                   "ir 48 t=3 k=5 se=4", "ir 96 s2 k=5 se=4", "ir 96 k=5 se=4"]
    assert "fc 1024 act=hswish" in imp.text


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobilenet_v3_small",
                                  "mobilenet_v3_small_minimalistic", "mobilenet_v3_small_1280"])
def test_v3_imported_at_alpha_1_costs_the_same_over_a_grid_at_and_above_1(name):
    """Imported from the α = 1 network, the spec is the built-in at every α ≥ 1 and resolution
    (below 1 the head `fc 1280+` reads back as `fc 1280`: one configuration cannot show the
    floor; see docs/import.md)."""
    imp = _import(build_model(name), 224, "multiple 8")
    for alpha in ("1", "1.25", "1.5"):
        for res in (96, 160, 224):
            assert _facts(imp.spec.build(alpha, res)) == _facts(load_spec(name).build(alpha, res))


# --------------------------------------------------------------------------- a V3 network by hand

class HandSE(nn.Module):
    """torchvision's SqueezeExcitation, written out: pool, fc1, ReLU, fc2, hard-sigmoid, scale."""

    def __init__(self, c, squeeze, gate=None):
        super().__init__()
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.gate = gate or nn.Hardsigmoid()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return self.gate(self.fc2(self.relu(self.fc1(s)))) * x


def cba(cin, cout, k=1, s=1, groups=1, act=nn.Hardswish):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act())


class HandBlock(nn.Module):
    """torchvision's InvertedResidual for MobileNetV3, written out."""

    def __init__(self, cin, hidden, cout, k, s, se, act=nn.Hardswish, squeeze=None):
        super().__init__()
        self.use_res = s == 1 and cin == cout
        layers = [cba(cin, hidden, act=act)] if hidden != cin else []
        layers.append(cba(hidden, hidden, k, s, groups=hidden, act=act))
        if se:
            layers.append(HandSE(hidden, squeeze or (hidden // 4 + 7) // 8 * 8))
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return y + x if self.use_res else y


class HandV3(nn.Module):
    """A small MobileNetV3-style network: a hard-swish stem, a ReLU block without expansion
    but with SE (stride 2), a 5×5 block with SE and expansion 72/24 = 3, a residual one with
    SE, the hard-swish 1×1, pool, a hard-swish hidden layer with bias and the classifier."""

    def __init__(self):
        super().__init__()
        self.stem = cba(3, 16, 3, 2)
        self.b1 = HandBlock(16, 16, 24, 3, 2, se=True, act=nn.ReLU)   # SE 16 -> 8
        self.b2 = HandBlock(24, 72, 40, 5, 2, se=True)                 # SE 72 -> 24
        self.b3 = HandBlock(40, 120, 40, 5, 1, se=True)                # SE 120 -> 32
        self.last = cba(40, 240)
        self.head = nn.Sequential(nn.Linear(240, 128), nn.Hardswish(), nn.Dropout(0.2),
                                  nn.Linear(128, 10))

    def forward(self, x):
        x = self.last(self.b3(self.b2(self.b1(self.stem(x)))))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# by hand at 64×64: 32×32 after the stem, 16×16 after b1, 8×8 after b2 and b3
HAND_V3_MACS = [
    3 * 3 * 3 * 16 * 32 * 32,        # stem                 442,368
    3 * 3 * 16 * 16 * 16,            # b1 depthwise s2       36,864
    0, 16 * 8, 8 * 16, 0,            # b1 SE: pool, 16->8, 8->16, scale
    16 * 24 * 16 * 16,               # b1 project            98,304
    24 * 72 * 16 * 16,               # b2 expand            442,368
    5 * 5 * 72 * 8 * 8,              # b2 depthwise s2      115,200
    0, 72 * 24, 24 * 72, 0,          # b2 SE (make_divisible(72/4, 8) = 24)
    72 * 40 * 8 * 8,                 # b2 project           184,320
    40 * 120 * 8 * 8,                # b3 expand            307,200
    5 * 5 * 120 * 8 * 8,             # b3 depthwise         192,000
    0, 120 * 32, 32 * 120, 0,        # b3 SE (make_divisible(120/4, 8) = 32)
    120 * 40 * 8 * 8,                # b3 project           307,200
    0,                               # the residual add
    40 * 240 * 8 * 8,                # last 1×1             614,400
    0,                               # pool
    240 * 128, 128 * 10]             # hidden layer, classifier


def test_hand_written_v3_network_imports_to_the_counts_of_two_counters():
    from fvcore.nn import FlopCountAnalysis
    from torch.utils.flop_counter import FlopCounterMode

    model = HandV3().eval()
    imp = _import(model, 64, "multiple 8")
    assert imp.text.splitlines()[3:] == [
        "activation hswish", "conv 3 16 s2", "ir 24 s2 t=1 act=relu se=4",
        "ir 40 s2 t=3 k=5 se=4", "ir 40 t=3 k=5 se=4",
        "pw 240", "avgpool global", "fc 128 act=hswish", "fc 10!"]
    assert [layer_cost(l).macs for l in imp.layers] == HAND_V3_MACS
    assert imp.total_macs == sum(HAND_V3_MACS) == 2_783_616
    x = torch.zeros(1, 3, 64, 64)
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert counter.get_total_flops() // 2 == imp.total_macs
    fv = FlopCountAnalysis(model, x)
    fv.unsupported_ops_warnings(False)
    fv.uncalled_modules_warnings(False)
    by_op = fv.by_operator()
    assert by_op["conv"] + by_op["linear"] == imp.total_macs
    weights = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert sum(layer_cost(l).params for l in imp.layers) == weights


@pytest.mark.parametrize("dynamo", [False, True])
def test_hand_written_v3_network_from_onnx_gives_the_same_spec(tmp_path, dynamo):
    pytest.importorskip("onnx")
    if dynamo:
        pytest.importorskip("onnxscript")
    model = HandV3().eval()
    via_module = _import(model, 64, "multiple 8")
    via_onnx = read_source(str(export_onnx(model, tmp_path / "v3.onnx", 64, dynamo)), None,
                           parse_rounding("multiple 8"))
    assert _facts(via_onnx.layers) == _facts(via_module.layers)
    assert via_onnx.text.splitlines()[1:] == via_module.text.splitlines()[1:]


# --------------------------------------------------------------------------- decompositions

class Decomposed(nn.Module):
    """Hard-swish and hard-sigmoid as Keras writes them, in plain arithmetic, and SiLU as
    x·sigmoid(x): x·relu6(x + 3)/6 after the stem, relu6(x + 3)·(1/6) as the SE gate."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.fc1 = nn.Conv2d(32, 8, 1)
        self.fc2 = nn.Conv2d(8, 32, 1)
        self.pw = nn.Conv2d(32, 16, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)

    def forward(self, x):
        x = self.bn(self.stem(x))
        x = x * F.relu6(x + 3) / 6
        s = F.relu6(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))) + 3) * (1 / 6)
        x = self.bn2(self.pw(x * s))
        return x * torch.sigmoid(x)


DECOMPOSED_TEXT = ["activation hswish", "conv 3 32 s2", "se 4", "pw 16 act=silu"]


def test_decomposed_activations_import_as_hswish_hsigmoid_and_silu():
    imp = _import(Decomposed(), 32)
    assert imp.text.splitlines()[3:] == DECOMPOSED_TEXT
    assert imp.unknown == []


def test_decomposed_activations_from_onnx(tmp_path):
    """The same arithmetic through torch.onnx.export: Add, Clip (or Relu6's form), Mul, Div."""
    pytest.importorskip("onnx")
    imp = read_source(str(export_onnx(Decomposed(), tmp_path / "d.onnx", 32)))
    assert imp.text.splitlines()[3:] == DECOMPOSED_TEXT


def test_keras_style_onnx_graph_by_hand(tmp_path):
    """An ONNX graph written node by node as tf2onnx writes Keras's MobileNetV3 activations:
    Add(x, 3), Clip(0, 6), Mul(x, ·), Mul(·, 1/6) for hard-swish."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w"),
             numpy_helper.from_array(np.zeros(8, np.float32), "b"),
             numpy_helper.from_array(np.array(3.0, np.float32), "three"),
             numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
             numpy_helper.from_array(np.array(6.0, np.float32), "six"),
             numpy_helper.from_array(np.array(1 / 6, np.float32), "sixth")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "three"], ["a"], name="hard_swish/add"),
             helper.make_node("Clip", ["a", "zero", "six"], ["r"], name="hard_swish/relu6"),
             helper.make_node("Mul", ["c", "r"], ["m"], name="hard_swish/mul"),
             helper.make_node("Mul", ["m", "sixth"], ["y"], name="hard_swish/mul_1")]
    f = tmp_path / "keras.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits)), str(f))
    imp = read_source(str(f))
    assert imp.text.splitlines()[3:] == ["activation hswish", "conv 3 8"]


# --------------------------------------------------------------------------- SE that the spec lacks

def test_se_ratios_by_hand():
    # make_divisible(64 / R, 8): R = 3 → 24, 4 → 16, 5 → 16 (12.8), 6 → 16 (10.67 rounds to 8,
    # more than 10% down, so 16), 7 → 16 (9.14: 8 is 12.5% down), 8 → 8
    assert se_ratios(64, 16) == (4, 5, 6, 7)
    assert se_ratios(96, 20) == ()  # 20 is no multiple of 8
    assert se_ratios(16, 8)[:3] == (2, 3, 4) and se_ratios(16, 8)[-1] == 16


class OddSE(nn.Module):
    """A stem, then squeeze-and-excitation squeezing 96 channels to 20 (no ratio R gives
    make_divisible(96/R, 8) = 20), or with a gate the spec lacks."""

    def __init__(self, squeeze=20, gate=None):
        super().__init__()
        self.stem = nn.Conv2d(3, 96, 3, 2, 1, bias=False)
        self.se = HandSE(96, squeeze, gate)
        self.pw = nn.Conv2d(96, 16, 1, bias=False)

    def forward(self, x):
        return self.pw(self.se(self.stem(x)))


def test_se_whose_squeeze_width_fits_no_ratio_is_written_with_its_width():
    # no ratio gives 20 (se_ratios(96, 20) == ()), so the width is written: `se 5 w=20`, 5 the
    # nearest ratio (96 / 20 = 4.8), w= the squeeze width the block has
    model = OddSE()
    imp = _import(model, 32)
    assert imp.text.splitlines()[4:] == ["conv 3 96 s2 bn=no", "se 5 w=20", "pw 16 bn=no"]
    assert not imp.unknown
    assert imp.total_macs == 3 * 3 * 3 * 96 * 16 * 16 + 96 * 20 * 2 + 96 * 16 * 16 * 16
    every = sum(layer_cost(l, Counting(True, True)).params for l in imp.layers)
    assert every == sum(p.numel() for p in model.parameters()) \
        == 3 * 3 * 3 * 96 + 96 * 20 + 20 + 20 * 96 + 96 + 96 * 16


def test_se_with_a_gate_that_is_not_hsigmoid_or_sigmoid_names_the_gate():
    with pytest.raises(ModelImportError) as e:
        _import(OddSE(squeeze=24, gate=nn.Tanh()), 32)
    msg = str(e.value)
    assert "se.gate (Tanh)" in msg and "gates with hsigmoid or sigmoid only" in msg
    # the same block with a hard-sigmoid gate is `se 4` (make_divisible(96/4, 8) = 24)
    assert _import(OddSE(squeeze=24), 32).text.splitlines()[4:] == [
        "conv 3 96 s2 bn=no", "se 4", "pw 16 bn=no"]


def test_cli_import_of_an_se_without_a_ratio_writes_its_width(tmp_path):
    src = tmp_path / "odd.py"
    import inspect

    src.write_text("import torch\nfrom torch import nn\nfrom torch.nn import functional as F\n\n"
                   + inspect.getsource(HandSE) + "\n\n" + inspect.getsource(OddSE)
                   + "\n\ndef make():\n    return OddSE()\n")
    r = run("import", f"{src}:make", "--res", "32")
    assert r.exit_code == 0, r.output
    assert "se 5 w=20" in r.stdout.splitlines()
    assert not [l for l in r.stdout.splitlines() if l.startswith("#")]


def test_validate_a_v3_spec_without_its_se_blocks_against_the_network(tmp_path):
    """The issue's case: a MobileNetV3-Large spec that leaves out squeeze-and-excitation is
    refused against the real network, at the first SE block (layer 14: the stem, the 16-block's
    dw, pw and add, the 24-blocks' 3 + 4 layers, then the 40-block's expand and depthwise on a
    28×28 map; the network pools there, the spec projects 72 → 40)."""
    src = tmp_path / "net.py"
    src.write_text("from mobilecost.torch.build import build_model\n\n"
                   "def large():\n    return build_model('mobilenet_v3_large')\n")
    spec = tmp_path / "no_se.spec"
    spec.write_text(load_spec("mobilenet_v3_large").format().replace(" se=4", ""))
    assert "se=" not in spec.read_text()
    line = one_error_line(run("crosscheck", spec, "--against", f"{src}:large"), code=1)
    assert line.startswith("error: first disagreement at layer 14: spec pw 28×28×72 → "
                           f"28×28×40 ({72 * 40 * 28 * 28:,} Mult-Adds")
    assert "network avgpool 28×28×72 → 1×1×72" in line
    ok = run("crosscheck", "mobilenet_v3_large", "--against", f"{src}:large", "--format", "csv")
    assert ok.exit_code == 0, ok.output


class Clamped(nn.Module):
    """Hard-swish as x·clamp(x + 3, 0, 6)/6 (torch.clamp and Tensor.clamp), and a block whose
    squeeze-and-excitation gates with a sigmoid (MnasNet's gate): `ir ... gate=sigmoid`."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.block = HandBlock(16, 64, 24, 3, 2, se=True, act=nn.SiLU)
        self.block.block[2].gate = nn.Sigmoid()  # SE 64 -> make_divisible(64/4, 8) = 16
        self.head = nn.Conv2d(24, 32, 1, bias=False)

    def forward(self, x):
        x = self.bn(self.stem(x))
        x = x * torch.clamp(x + 3, 0, 6) / 6
        y = self.head(self.block(x))
        return y * (y + 3).clamp(min=0, max=6) / 6


def test_clamp_hswish_and_a_sigmoid_gated_se_in_an_ir():
    imp = _import(Clamped(), 32)
    assert imp.text.splitlines()[3:] == [
        "activation hswish", "conv 3 16 s2", "ir 24 s2 t=4 act=silu se=4 gate=sigmoid",
        "pw 32 bn=no"]
    assert imp.unknown == []


def test_onnx_hardsigmoid_with_onnx_default_slope_is_not_mobilenets(tmp_path):
    """ONNX's HardSigmoid defaults to max(0, min(1, 0.2·x + 0.5)), not relu6(x + 3)/6
    (slope 1/6): without alpha = 1/6 it stays an unknown operation."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def model(path, **attrs):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        w = numpy_helper.from_array(np.zeros((4, 3, 3, 3), np.float32), "w")
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                 helper.make_node("HardSigmoid", ["c"], ["y"], name="gate", **attrs)]
        onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w])), str(path))
        return str(path)

    assert read_source(model(tmp_path / "v3.onnx", alpha=1 / 6)).text.splitlines()[3:] == [
        "activation hsigmoid", "conv 3 4 bn=no"]
    with pytest.raises(ModelImportError, match=r"gate \(HardSigmoid\)"):
        read_source(model(tmp_path / "tf.onnx"))


class SEVariants(nn.Module):
    """Squeeze-and-excitation on 32 channels in two forms the spec's se does not build: 1×1
    convolutions without bias, and a batchnorm inside."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.fc1 = nn.Conv2d(32, 8, 1, bias=kind != "no_bias")
        self.bn = nn.BatchNorm2d(8)
        self.fc2 = nn.Conv2d(8, 32, 1, bias=kind != "no_bias")

    def forward(self, x):
        x = self.stem(x)
        s = self.fc1(F.adaptive_avg_pool2d(x, 1))
        if self.kind == "bn":
            s = self.bn(s)
        return x * F.hardsigmoid(self.fc2(F.relu(s)))


@pytest.mark.parametrize("kind,says", [
    ("no_bias", "whose 1×1 convolutions have no bias"),
    ("bn", "not squeeze-and-excitation as the spec's se builds it")])
def test_se_variants_the_spec_does_not_build_are_unknown(kind, says):
    with pytest.raises(ModelImportError) as e:
        _import(SEVariants(kind), 32)
    assert "1 operation(s)" in str(e.value) and says in str(e.value)
    imp = _import(SEVariants(kind), 32, allow_unknown=True)
    assert imp.unknown_macs == 32 * 8 + 8 * 32
