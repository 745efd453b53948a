"""What real model code writes, rebuilt in small torch modules (no model zoo needed), part two:
MobileNetV4-Hybrid's Mobile MQA attention block and layer scale, a ghost module (refused by
name, in one line), what --allow-unknown keeps (all measured Mult-Adds, a residual around an
unknown as one comment), a head convolution beside a spec's fc, and the bounds checked before
any tracing or reading. Counts by hand, checked against FlopCounterMode and `sum(p.numel())`."""

from __future__ import annotations

import pytest
import torch
from onnx_helpers import export_onnx
from test_import_zoo import SqueezeFromInput, TimmStyle, _body, _counts, _import, _torch_counts
from torch import nn
from torch.nn import functional as F

from mobilecost.importing import graph as graph_mod
from mobilecost.importing.recognise import ModelImportError
from mobilecost.importing.write import import_graph
from mobilecost.reports.importing import import_summary
from mobilecost.torch import fx as fx_mod
from mobilecost.torch.fx import graph_of_module

# --------------------------------------------------------------------------- --allow-unknown

class OddSqueezeBlock(SqueezeFromInput):
    """The same block squeezing 96 channels to 20 (which `se 5 w=20` writes), gated by tanh,
    which the spec's se has not."""

    def __init__(self):
        super().__init__()
        self.conv_reduce = nn.Conv2d(96, 20, 1)
        self.conv_expand = nn.Conv2d(20, 96, 1)

    def forward(self, x):
        y = F.silu(self.bn2(self.conv_dw(F.silu(self.bn1(self.conv_pw(x))))))
        s = y.mean((2, 3), keepdim=True)
        y = y * torch.tanh(self.conv_expand(F.silu(self.conv_reduce(s))))
        return x + self.bn3(self.conv_pwl(y))


def test_allow_unknown_keeps_a_residual_around_an_unknown_se_with_its_mult_adds():
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(), OddSqueezeBlock())
    with pytest.raises(ModelImportError, match=r"in a residual block, .*gated by 2.tanh \(tanh in OddSqueezeBlock\); "
                                               r"the spec's se gates with hsigmoid or sigmoid"):
        _import(model, 8)
    imp = _import(model, 8, allow_unknown=True)
    assert len(imp.unknown) == 1  # the residual block, all its operations, one comment
    u = imp.unknown[0]
    block = (16 * 96 + 3 * 3 * 96 + 96 * 16) * 8 * 8 + 96 * 20 + 20 * 96
    assert u.macs == block
    assert "2.conv_pw (Conv2d)" in u.text()
    assert imp.total_macs == 3 * 3 * 3 * 16 * 8 * 8 + block == _torch_counts(model, 8)[0]


class Ghost(nn.Module):
    """GhostNet's ghost module: a primary 1×1 convolution, a cheap depthwise one on its
    output, the two concatenated."""

    def __init__(self, cin=16, cout=32):
        super().__init__()
        self.primary = nn.Sequential(nn.Conv2d(cin, cout // 2, 1, bias=False),
                                     nn.BatchNorm2d(cout // 2), nn.ReLU())
        self.cheap = nn.Sequential(nn.Conv2d(cout // 2, cout // 2, 3, 1, 1, groups=cout // 2,
                                             bias=False), nn.BatchNorm2d(cout // 2), nn.ReLU())

    def forward(self, x):
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], 1)


def test_a_ghost_module_is_refused_by_name_with_or_without_allow_unknown():
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), Ghost(), nn.Conv2d(32, 8, 1))
    with pytest.raises(ModelImportError) as e:
        _import(model, 8)
    # the primary 1×1 is a pw of its own; the cheap depthwise and the concatenation are not
    assert "1.cheap.0 (Conv2d)" in str(e.value) and "1.cat (cat in Ghost)" in str(e.value)
    assert "paths concatenated along the channels (as GhostNet's ghost module" in str(e.value)
    assert "\n" not in str(e.value)
    # the concatenation doubles the channels: the statements after it would read the wrong
    # input, so --allow-unknown refuses too, in one line, saying where
    with pytest.raises(ModelImportError, match="at 2 the network maps 8×8×32 to 8×8×8 but the "
                                               "spec maps 8×8×16 to 8×8×8 .an unknown"):
        _import(model, 8, allow_unknown=True)


# --------------------------------------------------------------------------- bounds

def test_a_module_over_the_layer_limit_is_refused_before_tracing(monkeypatch):
    monkeypatch.setattr(graph_mod, "MAX_LAYERS", 10)
    monkeypatch.setattr(fx_mod, "_trace", lambda *a: pytest.fail("traced"))
    model = nn.Sequential(*[nn.Conv2d(3, 3, 1) for _ in range(11)])
    with pytest.raises(ModelImportError, match="11 convolutions and linear layers; a spec "
                                               "builds at most 10 layers"):
        graph_of_module(model, "many", "many", 8)


def test_an_onnx_graph_over_the_layer_limit_is_refused_before_reading(tmp_path, monkeypatch):
    onnx = pytest.importorskip("onnx")
    path = export_onnx(nn.Sequential(*[nn.Conv2d(3, 3, 1) for _ in range(11)]),
                       tmp_path / "many.onnx", 8)
    from mobilecost.importing.onnx import load_graph

    monkeypatch.setattr(graph_mod, "MAX_LAYERS", 10)
    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", lambda *a, **k: pytest.fail("read"))
    with pytest.raises(ModelImportError, match="11 convolutions and linear layers"):
        load_graph(path)
    monkeypatch.setattr(graph_mod, "MAX_OPERATIONS", 5)
    monkeypatch.setattr(graph_mod, "MAX_LAYERS", 100)
    with pytest.raises(ModelImportError, match="the network has 11 operations; mobilecost "
                                               "reads at most 5"):
        load_graph(path)


def test_an_import_summary_lists_ten_unknown_operations_and_a_count():
    class Gates(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, 1, 1)

        def forward(self, x):
            x = self.conv(x)
            for _ in range(12):
                x = torch.tanh(x)
            return x

    imp = _import(Gates(), 8, allow_unknown=True)
    lines = import_summary(imp)
    assert len(imp.unknown) == 12
    assert len(lines) == 2 + 10 + 1 and lines[-1].startswith("  ... and 2 more")


class MobileMQA(nn.Module):
    """MobileNetV4's Mobile MQA as timm writes it: 4 query heads of dimension 8 from a 1×1
    convolution, one key and one value head shared by all, each from a stride-2 depthwise 3×3
    then a 1×1 to 8 channels, softmax(Q·Kᵀ·scale)·V, and a 1×1 output projection; the matrix
    products by torch.matmul, or by F.scaled_dot_product_attention."""

    def __init__(self, c=16, heads=4, d=8, fused=False):
        super().__init__()
        self.heads, self.d, self.fused = heads, d, fused
        self.query = nn.Conv2d(c, heads * d, 1, bias=False)
        self.key_down = nn.Conv2d(c, c, 3, 2, 1, groups=c, bias=False)
        self.key = nn.Conv2d(c, d, 1, bias=False)
        self.value_down = nn.Conv2d(c, c, 3, 2, 1, groups=c, bias=False)
        self.value = nn.Conv2d(c, d, 1, bias=False)
        self.output = nn.Conv2d(heads * d, c, 1, bias=False)

    def forward(self, x):
        b, _, h, w = x.shape
        q = self.query(x).reshape(b, self.heads, self.d, h * w).transpose(-1, -2)
        k = self.key(self.key_down(x)).reshape(b, 1, self.d, -1).transpose(-1, -2)
        v = self.value(self.value_down(x)).reshape(b, 1, self.d, -1).transpose(-1, -2)
        if self.fused:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            o = (q * self.d ** -0.5) @ k.transpose(-1, -2)
            o = o.softmax(dim=-1) @ v
        o = o.transpose(-1, -2).reshape(b, self.heads * self.d, h, w)
        return x + self.output(o)


@pytest.mark.parametrize("fused", [False, True])
def test_mobile_mqa_is_refused_by_name_and_kept_with_its_measured_mult_adds(fused):
    # on 8×8: Q 16·32·64, K and V each 3·3·16·16 + 16·8·16 (a 4×4 map), QKᵀ and ·V each
    # heads·d·L_q·L_kv = 4·8·64·16, the projection 32·16·64, the stem 3·3·3·16·64
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), MobileMQA(fused=fused)).eval()
    attention = 16 * 32 * 64 + 2 * (3 * 3 * 16 * 16 + 16 * 8 * 16) + 2 * 4 * 8 * 64 * 16 \
        + 32 * 16 * 64
    with pytest.raises(ModelImportError, match=r"1.query \(Conv2d\), 1.reshape \(reshape in "
                                               r"MobileMQA\).*: attention \(matrix products"):
        _import(model, 8)
    imp = _import(model, 8, allow_unknown=True)
    assert imp.total_macs == 3 * 3 * 3 * 16 * 64 + attention == _torch_counts(model, 8)[0]
    assert imp.total_macs == 27_648 + 32_768 + 8_704 + 65_536 + 32_768 == 167_424


def test_a_head_convolution_on_the_pooled_map_agrees_with_a_spec_fc():
    from mobilecost.importing.compare import compare
    from mobilecost.lang.parse import parse

    # torchvision writes MobileNetV3's 1280-wide head as a Linear, timm as a 1×1 Conv2d with a
    # bias after the pool: the same 24·64 products and weights
    spec = parse("name h\ninput 32 3!\nrounding int\nactivation relu\nconv 3 16 s2\n"
                 "ir 24 t=1\navgpool global\nfc 64 act=hswish\nfc 10!\n")
    cmp = compare(spec.build(1, 32), _import(TimmStyle(), 32))
    assert cmp.agree, cmp.first
    assert [r["spec"].split()[0] for r in cmp.rows[-2:]] == ["fc", "fc"]
    assert [r["network"].split()[0] for r in cmp.rows[-2:]] == ["pw", "fc"]


class LayerScale2d(nn.Module):
    """timm's LayerScale2d: x · γ, one learned γ per channel."""

    def __init__(self, c):
        super().__init__()
        self.gamma = nn.Parameter(1e-5 * torch.ones(c))

    def forward(self, x):
        return x * self.gamma.view(1, -1, 1, 1)


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.conv = nn.Conv2d(16, 16, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.layer_scale = LayerScale2d(16)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        return x + self.layer_scale(F.relu(self.bn2(self.conv(x))))


def _import_by(route, model, tmp_path, res):
    """The import of `model` at `res` px by fx, or from its ONNX file (TorchScript or Dynamo)."""
    if route == "fx":
        return _import(model, res)
    pytest.importorskip("onnx")
    from mobilecost.importing.onnx import load_graph

    return import_graph(load_graph(export_onnx(model, tmp_path / f"{route}.onnx", res,
                                               dynamo=route == "dynamo")))


@pytest.mark.parametrize("route", ["fx", "onnx", "dynamo"])
def test_layer_scale_reads_as_layerscale(tmp_path, route):
    model = Scaled().eval()
    imp = _import_by(route, model, tmp_path, 8)
    assert _body(imp) == ["conv 3 16", "residual {", "  conv 3 16", "  layerscale", "}"]
    # γ's 16 values count where biases do, as torch counts every parameter
    params = 3 * 3 * 3 * 16 + 32 + 3 * 3 * 16 * 16 + 32 + 16
    assert _counts(imp) == ((3 * 3 * 3 * 16 + 3 * 3 * 16 * 16) * 64, params) \
        == _torch_counts(model, 8)


class MobileAttention(nn.Module):
    """timm's MobileAttention block: batchnorm, Mobile MQA whose key and value are each
    downsampled by a stride-2 depthwise 3×3 with batchnorm, the output projection, layer
    scale, the input added back."""

    def __init__(self, c=16, heads=4, d=8):
        super().__init__()
        self.norm = nn.BatchNorm2d(c)
        self.attn = MobileMQA(c, heads, d, fused=True)
        self.attn.key_down = nn.Sequential(self.attn.key_down, nn.BatchNorm2d(c))
        self.attn.value_down = nn.Sequential(self.attn.value_down, nn.BatchNorm2d(c))
        self.layer_scale = LayerScale2d(c)

    def forward(self, x):
        return x + self.layer_scale(self.attn.output(self._attend(self.norm(x))))

    def _attend(self, x):
        a = self.attn
        b, _, h, w = x.shape
        q = a.query(x).reshape(b, a.heads, a.d, h * w).transpose(-1, -2)
        k = a.key(a.key_down(x)).reshape(b, 1, a.d, -1).transpose(-1, -2)
        v = a.value(a.value_down(x)).reshape(b, 1, a.d, -1).transpose(-1, -2)
        o = F.scaled_dot_product_attention(q, k, v)
        return o.transpose(-1, -2).reshape(b, a.heads * a.d, h, w)


@pytest.mark.parametrize("route", ["fx", "onnx", "dynamo"])
def test_mobilenetv4_attention_block_reads_as_attn(tmp_path, route):
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          MobileAttention()).eval()
    imp = _import_by(route, model, tmp_path, 8)
    assert _body(imp) == ["conv 3 16", "attn 16 heads=4 d=8 kv=1 kvs=2 ls=yes"]
    # Mult-Adds as in the Mobile MQA test above; parameters: the stem and its batchnorm, the
    # block's batchnorm, the query, the two downsampling depthwise convolutions and their
    # batchnorm, the key and value, the output, layer scale's γ
    params = (3 * 3 * 3 * 16 + 32 + 32 + 16 * 32 + 2 * (3 * 3 * 16 + 32 + 16 * 8)
              + 32 * 16 + 16)
    assert _counts(imp) == (167_424, params) == _torch_counts(model, 8)
