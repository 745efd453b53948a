"""What real model code writes, rebuilt in small torch modules (no model zoo needed): timm's
fused batchnorm-activation (`F.batch_norm` inside a BatchNorm2d subclass), a functional
classifier (`F.linear`), `nn.Flatten`, a head convolution with its own bias, TensorFlow SAME
padding computed at run time (timm's and geffnet's `Conv2dSame`), geffnet's in-place
hard-swish and its activation modules that call TorchScript, MixNet's split convolutions and
TinyNet's squeeze-and-excitation (from the block input, SiLU inside).
`test_import_zoo_blocks.py` has the blocks (attention, layer scale, a ghost module), what
--allow-unknown keeps, and the bounds.

Every count is worked out by hand here and checked against torch's FlopCounterMode and
`sum(p.numel())`."""

from __future__ import annotations

import math

import pytest
import torch
from onnx_helpers import export_onnx
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from mobilecost.engine.cost import Counting, layer_cost
from mobilecost.importing.write import import_graph
from mobilecost.torch.fx import graph_of_module


def _import(model, res, allow_unknown=False):
    return import_graph(graph_of_module(model.eval(), "test", "test", res),
                        allow_unknown=allow_unknown)


def _torch_counts(model, res):
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model.eval()(torch.zeros(1, 3, res, res))
    return fc.get_total_flops() // 2, sum(p.numel() for p in model.parameters())


def _counts(imp):
    return imp.total_macs, sum(layer_cost(ly, Counting(True, True)).params for ly in imp.layers)


def _body(imp):
    return imp.text.splitlines()[4:]


# --------------------------------------------------------------------------- timm's layers

class BatchNormAct2d(nn.BatchNorm2d):
    """timm.layers.BatchNormAct2d as it is written: batchnorm by F.batch_norm, then the
    activation, in one module."""

    def __init__(self, c, act=True):
        super().__init__(c)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum, self.eps)
        return self.act(x)


class Classifier(nn.Module):
    """A linear layer written with F.linear, as some heads are."""

    def __init__(self, cin, cout):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.randn(cout))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class TimmStyle(nn.Module):
    """Stem, a separable pair, then MobileNetV3's head: global pool, a 1×1 convolution with
    its own bias and no batchnorm, hard-swish, nn.Flatten, the classifier."""

    def __init__(self):
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
        self.bn1 = BatchNormAct2d(16)
        self.conv_dw = nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False)
        self.bn2 = BatchNormAct2d(16)
        self.conv_pw = nn.Conv2d(16, 24, 1, bias=False)
        self.bn3 = BatchNormAct2d(24, act=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(24, 64, 1, bias=True)
        self.act = nn.Hardswish()
        self.flatten = nn.Flatten(1)
        self.classifier = Classifier(64, 10)

    def forward(self, x):
        x = self.bn3(self.conv_pw(self.bn2(self.conv_dw(self.bn1(self.conv_stem(x))))))
        x = self.act(self.conv_head(self.pool(x)))
        return self.classifier(self.flatten(x))


# at 32×32: 16×16 after the stem
TIMM_MACS = 3 * 3 * 3 * 16 * 16 * 16 + 3 * 3 * 16 * 16 * 16 + 16 * 24 * 16 * 16 + 24 * 64 + 64 * 10
TIMM_PARAMS = (3 * 3 * 3 * 16 + 2 * 16 + 3 * 3 * 16 + 2 * 16 + 16 * 24 + 2 * 24  # weights, γ β
               + 24 * 64 + 64 + 64 * 10 + 10)  # the head's weights and bias, the classifier's


def test_fused_batchnorm_activation_functional_linear_and_head_bias_import_exactly():
    model = TimmStyle()
    imp = _import(model, 32)
    # the depthwise and linear pointwise, batchnormed, are an inverted residual without
    # expansion (t=1)
    assert _body(imp) == ["conv 3 16 s2", "ir 24 t=1", "avgpool global",
                          "pw 64 act=hswish bn=no bias=yes", "fc 10!"]
    assert _counts(imp) == (TIMM_MACS, TIMM_PARAMS) == _torch_counts(model, 32)
    assert TIMM_MACS == 110_592 + 36_864 + 98_304 + 1_536 + 640


def test_head_bias_read_from_onnx_by_its_parameter_name(tmp_path):
    pytest.importorskip("onnx")
    from mobilecost.importing.onnx import load_graph

    model = TimmStyle().eval()
    for dynamo in (False, True):
        path = export_onnx(model, tmp_path / f"timm{int(dynamo)}.onnx", 32, dynamo=dynamo)
        imp = import_graph(load_graph(path))
        # the folded batchnorm reads as bn=yes, the head's own bias as bias=yes
        assert "pw 64 act=hswish bn=no bias=yes" in _body(imp)
        assert _counts(imp) == (TIMM_MACS, TIMM_PARAMS)


def test_an_untrained_network_from_the_dynamo_exporter_keeps_its_dropped_biases(tmp_path):
    # untrained: batchnorm the identity and every bias zero, which the Dynamo exporter's
    # optimizer drops (folded batchnorm's bias, the head's and the classifier's); its metadata
    # says so, and the counts are the network's
    pytest.importorskip("onnx")
    from mobilecost.importing.onnx import load_graph

    model = TimmStyle().eval()
    with torch.no_grad():
        model.conv_head.bias.zero_()
        model.classifier.bias.zero_()
    path = export_onnx(model, tmp_path / "untrained.onnx", 32, dynamo=True, randomise_bn=False)
    imp = import_graph(load_graph(path))
    assert _body(imp) == ["conv 3 16 s2", "ir 24 t=1", "avgpool global",
                          "pw 64 act=hswish bn=no bias=yes", "fc 10!"]
    assert _counts(imp) == (TIMM_MACS, TIMM_PARAMS)


# --------------------------------------------------------------------------- TF SAME padding

def pad_same(x, k, s):
    """timm's pad_same: TensorFlow's SAME padding from the input size, at run time."""
    ih, iw = x.size()[-2:]
    ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
    pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
    if ph > 0 or pw > 0:  # control flow on sizes: fx cannot trace into this
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
    return x


class Conv2dSame(nn.Conv2d):
    def forward(self, x):
        x = pad_same(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class TfSame(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Conv2dSame(3, 8, 3, 2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = Conv2dSame(8, 8, 5, 2, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)

    def forward(self, x):
        return F.relu(self.bn2(self.dw(F.relu(self.bn1(self.stem(x))))))


def test_run_time_tf_same_padding_reads_as_pad_tf():
    # 33 → 17 (3×3 s2: 2 rows in all, 1 and 1) → 9 (5×5 s2: 4 rows, 2 and 2); at 32 → 16 →
    # 8 the same kernels pad 0/1 and 1/2: uneven, TensorFlow's SAME
    model = TfSame()
    imp = _import(model, 32)
    assert _body(imp) == ["conv 3 8 s2 pad=tf", "dw 5 s2 pad=tf"]
    macs = 3 * 3 * 3 * 8 * 16 * 16 + 5 * 5 * 8 * 8 * 8
    assert _counts(imp) == (macs, 3 * 3 * 3 * 8 + 16 + 5 * 5 * 8 + 16) == _torch_counts(model, 32)
    built = [(ly.op, ly.pad, ly.out_size) for ly in imp.layers]
    assert built == [("conv", "tf", 16), ("dw", "tf", 8)]


def test_constant_zero_pad_before_a_convolution_becomes_its_padding_in_onnx(tmp_path):
    pytest.importorskip("onnx")
    from mobilecost.importing.onnx import load_graph

    class Padded(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, 2, bias=False)

        def forward(self, x):  # what the TorchScript exporter writes of a fixed-size SAME pad
            return F.relu(self.conv(F.pad(x, [0, 1, 0, 1])))

    path = export_onnx(Padded(), tmp_path / "pad.onnx", 32)
    imp = import_graph(load_graph(path))
    assert _body(imp) == ["conv 3 8 s2 bn=no pad=tf"]
    assert imp.total_macs == 3 * 3 * 3 * 8 * 16 * 16


# --------------------------------------------------------------------------- MixNet's MixConv

class MixedConv2d(nn.ModuleDict):
    """timm's MixedConv2d as it is written: the channels split (timm's _split_channels: c // n
    each, the first the remainder too), a Conv2d on each part, the outputs concatenated."""

    def __init__(self, cin, cout, kernels, stride=1, depthwise=False):
        super().__init__()
        n = len(kernels)
        ins = [cin // n] * n
        ins[0] += cin - sum(ins)
        outs = [cout // n] * n
        outs[0] += cout - sum(outs)
        for i, (k, ci, co) in enumerate(zip(kernels, ins, outs)):
            self.add_module(str(i), nn.Conv2d(ci, co, k, stride, k // 2,
                                              groups=ci if depthwise else 1, bias=False))
        self.splits = ins

    def forward(self, x):
        parts = x.split(self.splits, 1)
        return torch.cat([c(parts[i]) for i, c in enumerate(self.values())], 1)


class Mix(nn.Module):
    """A stem, then a MixNet block's layers: a grouped 1×1 expansion as two 1×1 parts, a
    mixed depthwise 3×3/5×5/7×7 on 50 channels (18, 16, 16) with stride 2, a 1×1 projection."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn0 = nn.BatchNorm2d(16)
        self.conv_pw = MixedConv2d(16, 50, [1, 1])
        self.bn1 = nn.BatchNorm2d(50)
        self.conv_dw = MixedConv2d(50, 50, [3, 5, 7], stride=2, depthwise=True)
        self.bn2 = nn.BatchNorm2d(50)
        self.conv_pwl = nn.Conv2d(50, 24, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(24)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        x = F.relu(self.bn1(self.conv_pw(x)))
        x = F.relu(self.bn2(self.conv_dw(x)))
        return self.bn3(self.conv_pwl(x))


# at 16×16: the grouped 1×1 is 8 → 25 twice; the depthwise groups on an 8×8 output
MIX_MACS = (3 * 3 * 3 * 16 + 2 * 8 * 25) * 16 * 16 + (9 * 18 + 25 * 16 + 49 * 16 + 50 * 24) * 8 * 8
MIX_PARAMS = (3 * 3 * 3 * 16 + 32 + 2 * 8 * 25 + 100 + 9 * 18 + 25 * 16 + 49 * 16 + 100
              + 50 * 24 + 48)


def test_mixnet_split_convolutions_read_as_mixdw_and_a_grouped_pw():
    model = Mix()
    imp = _import(model, 16)
    assert _body(imp) == ["conv 3 16", "pw 50 g=2", "mixdw 3,5,7 s2", "pw 24 act=none"]
    assert _counts(imp) == (MIX_MACS, MIX_PARAMS) == _torch_counts(model, 16)


@pytest.mark.parametrize("dynamo", [False, True])
def test_mixnet_split_convolutions_read_the_same_from_onnx(tmp_path, dynamo):
    pytest.importorskip("onnx")
    from mobilecost.importing.onnx import load_graph

    path = export_onnx(Mix().eval(), tmp_path / "mix.onnx", 16, dynamo=dynamo)
    imp = import_graph(load_graph(path))
    assert _body(imp) == ["conv 3 16", "pw 50 g=2", "mixdw 3,5,7 s2", "pw 24 act=none"]
    assert _counts(imp) == (MIX_MACS, MIX_PARAMS)


# --------------------------------------------------------------------------- geffnet's activations

@torch.jit.script
def hard_swish_jit_fwd(x):
    return x * (x + 3).clamp(min=0, max=6).div(6.)


class HardSwishAutoFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return hard_swish_jit_fwd(x)


class HardSwishMe(nn.Module):
    """geffnet's memory-efficient hard-swish: fx cannot trace into it."""

    def forward(self, x):
        return HardSwishAutoFn.apply(x)


class GeffnetStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = HardSwishMe()
        self.conv2 = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        return x.mul_(F.relu6(x + 3.).div_(6.))  # geffnet's in-place hard_swish


def test_in_place_hard_swish_and_a_library_activation_module_are_hswish():
    model = GeffnetStyle()
    imp = _import(model, 16)
    assert _body(imp) == ["repeat 2 {", "  conv 3 8", "}"]
    assert imp.text.splitlines()[3] == "activation hswish"
    macs = 3 * 3 * 3 * 8 * 16 * 16 + 3 * 3 * 8 * 8 * 16 * 16
    assert _counts(imp) == (macs, 3 * 3 * 3 * 8 + 16 + 3 * 3 * 8 * 8 + 16) == _torch_counts(model, 16)


# --------------------------------------------------------------------------- TinyNet's SE

class SqueezeFromInput(nn.Module):
    """An inverted residual whose squeeze-and-excitation squeezes from the block's input
    width (EfficientNet's, TinyNet's: int(in · 0.25)) with SiLU inside and a sigmoid gate."""

    def __init__(self, cin=16, hidden=96):
        super().__init__()
        self.conv_pw = nn.Conv2d(cin, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv_dw = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv_reduce = nn.Conv2d(hidden, cin // 4, 1)
        self.conv_expand = nn.Conv2d(cin // 4, hidden, 1)
        self.conv_pwl = nn.Conv2d(hidden, cin, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cin)

    def forward(self, x):
        y = F.silu(self.bn2(self.conv_dw(F.silu(self.bn1(self.conv_pw(x))))))
        s = y.mean((2, 3), keepdim=True)
        s = self.conv_expand(F.silu(self.conv_reduce(s)))
        y = y * s.sigmoid()
        return x + self.bn3(self.conv_pwl(y))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.block = SqueezeFromInput()

    def forward(self, x):
        return self.block(F.silu(self.bn(self.stem(x))))


def test_squeeze_from_the_block_input_with_silu_inside_folds_into_ir():
    model = Tiny()
    imp = _import(model, 8)
    assert _body(imp) == ["conv 3 16", "ir 16 se=4 gate=sigmoid squeeze=in seact=silu"]
    assert imp.text.splitlines()[3] == "activation silu"
    macs = (3 * 3 * 3 * 16 + 16 * 96 + 3 * 3 * 96 + 96 * 16) * 8 * 8 + 96 * 4 + 4 * 96
    params = (3 * 3 * 3 * 16 + 32 + 16 * 96 + 192 + 3 * 3 * 96 + 192 + 96 * 4 + 4 + 4 * 96 + 96
              + 96 * 16 + 32)
    assert _counts(imp) == (macs, params) == _torch_counts(model, 8)
