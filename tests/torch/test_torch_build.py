"""The torch builder: shapes, structure and parameter counts against independent figures."""

import pytest

torch = pytest.importorskip("torch")
from by_hand import v1_conv_channels, v1_params  # noqa: E402
from torch import nn  # noqa: E402

from mobilecost.lang.load import builtin_names
from mobilecost.torch.build import Add, build_model  # noqa: E402


def test_total_parameters_match_public_implementations():
    # Keras MobileNet (alpha 1.0): 4,231,976 trainable parameters (BN γ, β and FC bias included);
    # torchvision mobilenet_v2: 3,504,872 parameters.
    assert sum(p.numel() for p in build_model("mobilenet_v1").parameters()) == 4_231_976
    # which Table 1 gives too: weights, the FC's 1000 biases, γ and β per conv output channel
    assert v1_params() + 1000 + 2 * sum(v1_conv_channels()) == 4_231_976
    assert sum(p.numel() for p in build_model("mobilenet_v2").parameters()) == 3_504_872


@pytest.mark.parametrize("spec", builtin_names())
@pytest.mark.parametrize("alpha,res", [(1, 64), ("0.35", 40), ("1.3", 33)])
def test_every_layer_output_has_the_spec_shape(spec, alpha, res):
    model = build_model(spec, alpha, res)
    seen = {}

    def hook(mod, args, out):
        seen[mod.spec_layer.index] = tuple(out.shape)

    for m in model.layers:
        m.register_forward_hook(hook)
    with torch.inference_mode():
        y = model(model.example_input(2))
    assert len(seen) == len(model.spec_layers)
    for layer in model.spec_layers:
        if layer.op == "fc":
            assert seen[layer.index] == (2, layer.out_channels)
        else:
            assert seen[layer.index] == (2, layer.out_channels, layer.out_size, layer.out_size)
    assert y.shape == (2, model.spec_layers[-1].out_channels)  # the classes: 1000 or 1001


def test_conv_bn_activation_as_written():
    model = build_model("mobilenet_v2", 1, 64)
    by_index = {m.spec_layer.index: m for m in model.layers}
    first = by_index[0]
    assert [type(m) for m in first] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU6]
    assert first[0].stride == (2, 2) and first[0].padding == (1, 1) and first[0].bias is None
    # the projection of each inverted residual is linear: conv and batchnorm, no activation
    projections = [m for m in model.layers if m.spec_layer.op == "pw" and m.spec_layer.act == "none"]
    assert len(projections) == 17
    assert all([type(x) for x in m] == [nn.Conv2d, nn.BatchNorm2d] for m in projections)
    dws = [m for m in model.layers if m.spec_layer.op == "dw"]
    assert all(m[0].groups == m[0].in_channels == m[0].out_channels for m in dws)


def test_mobilenet_v2_residual_adds():
    # Sandler et al. Table 2: bottleneck groups with n = 1, 2, 3, 4, 3, 3, 1 repeats; only the
    # repeats after a group's first block have stride 1 and equal channels: 1+2+3+2+2 = 10 adds.
    model = build_model("mobilenet_v2", 1, 64)
    adds = [m for m in model.layers if isinstance(m, Add)]
    assert len(adds) == 10
    assert not any(isinstance(m, Add) for m in build_model("mobilenet_v1", 1, 64).layers)


def test_residual_add_adds_the_block_input():
    model = build_model("mobilenet_v2", "0.5", 32)
    add = next(m for m in model.layers if isinstance(m, Add))
    start, end = add.spec_layer.skip_from, add.spec_layer.index
    x = model.example_input(1)
    outs = {}
    add.register_forward_hook(lambda mod, args, out: outs.setdefault("add", out))
    with torch.inference_mode():
        h = x
        for m in model.layers[:start]:
            h = m(h)
        block_in = h
        for m in model.layers[start:end]:
            h = m(h)
        expected = h + block_in
        model(x)
    torch.testing.assert_close(outs["add"], expected)


def test_model_is_in_eval_mode_and_knows_its_config():
    model = build_model("shallow_mobilenet", "0.75", 96)
    assert not model.training
    assert model.resolution == 96 and str(model.alpha) == "3/4"
    # int(0.75·32) = 24 channels after the first conv, 96 / 2 = 48 pixels; int(0.75·1024) = 768
    # into the FC layer
    first, last = model.spec_layers[0], model.spec_layers[-1]
    assert (first.out_channels, first.out_size) == (24, 48)
    assert (last.op, last.in_channels, last.out_channels) == ("fc", 768, 1000)


ACT_MODULES = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish,
               "hsigmoid": nn.Hardsigmoid, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}


def _torch_elementwise(model) -> int:
    """Elements out of every activation module and residual add, counted by forward hooks."""
    seen = []

    def hook(mod, args, out):
        seen.append(out.numel())

    for m in model.modules():
        if isinstance(m, (Add, *ACT_MODULES.values())):
            m.register_forward_hook(hook)
    with torch.inference_mode():
        model(model.example_input(1))
    return sum(seen)


def test_each_activation_builds_its_nn_module_and_elementwise_ops_match_torch():
    from mobilecost.engine.cost import cost
    from mobilecost.lang.parse import parse

    text = ("name acts\ninput 32 3!\nactivation hswish\nconv 3 16 s2\nir 16 t=1 act=relu\n"
            "ir 24 s2 t=4 k=5 act=silu\nir 24 t=3 act=hsigmoid\npw 48 act=sigmoid\n"
            "dw 3 act=relu6\npw 48 act=none\navgpool global\nfc 10!\n")
    spec = parse(text)
    model = build_model(spec)
    for layer, mod in zip(model.spec_layers, model.layers):
        acts = [m for m in mod.modules() if isinstance(m, tuple(ACT_MODULES.values()))]
        if layer.act == "none":
            assert acts == [], layer
        else:
            assert [type(m) for m in acts] == [ACT_MODULES[layer.act]], layer
    assert _torch_elementwise(model) == cost(spec).elementwise_ops
    assert _torch_elementwise(build_model("mobilenet_v2", "0.5", 64)) == cost(
        "mobilenet_v2", "0.5", 64).elementwise_ops
