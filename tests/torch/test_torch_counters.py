"""The engine against torch's FlopCounterMode, fvcore and sum(p.numel()), layer by layer."""

import pytest

pytest.importorskip("torch")
pytest.importorskip("fvcore")

from by_hand import v1_macs  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from mobilecost.cli import app  # noqa: E402
from mobilecost.engine.cost import Counting, cost  # noqa: E402
from mobilecost.lang.load import builtin_names
from mobilecost.torch import counters  # noqa: E402
from mobilecost.torch.counters import cross_check  # noqa: E402

runner = CliRunner()


@pytest.mark.parametrize("spec", builtin_names())
@pytest.mark.parametrize("alpha,res", [(1, 32), ("0.75", 48), ("0.35", 40)])
def test_every_layer_agrees_with_both_counters(spec, alpha, res):
    check = cross_check(spec, alpha, res)
    for c in check.layers:
        assert c.flop_counter_macs == c.engine_macs, c
        assert c.fvcore_macs == c.engine_macs, c
        assert c.torch_weight_params == c.engine_params, c
        assert c.torch_params == c.engine_params_all, c
    engine = cost(spec, alpha, res)
    assert check.flop_counter_total_flops == 2 * engine.macs
    assert sum(c.torch_params for c in check.layers) == cost(
        spec, alpha, res, Counting(biases=True, batchnorm=True)).params


def test_fvcore_extra_is_batchnorm_at_two_per_output_element():
    check = cross_check("mobilenet_v1", "0.5", 32)
    bn_elems = sum(2 * c.layer.out_size ** 2 * c.layer.out_channels
                   for c in cost("mobilenet_v1", "0.5", 32).layers if c.layer.bn)
    assert sum(c.fvcore_other.get("batch_norm", 0) for c in check.layers) == bn_elems
    assert check.fvcore_total == sum(c.engine_macs for c in check.layers) + bn_elems


def test_validate_command_reconciles_and_exits_0():
    r = runner.invoke(app, ["crosscheck", "mobilenet_v1", "--alpha", "0.25", "--res", "32",
                            "--format", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("group,layers,engine_macs,flop_counter_macs,fvcore_macs")
    total = dict(zip(lines[0].split(","), lines[-1].split(",")))
    assert total["group"] == "total"
    # 0.25 MobileNet at 32: Table 1 at α 1/4 with every map 1/7 of its size at 224
    assert int(total["engine_macs"]) == int(total["flop_counter_macs"]) == int(total["fvcore_macs"])
    assert int(total["engine_macs"]) == v1_macs("0.25", 32)
    assert total["agree"] == "yes"
    assert "all three agree" in " ".join(r.stderr.split())


def test_validate_exits_1_when_a_counter_disagrees(monkeypatch):
    real = counters.layer_cost

    def off_by_one(layer, counting=Counting()):
        c = real(layer, counting)
        return type(c)(c.layer, c.macs + (layer.index == 3), c.weight_params, c.bias_params,
                       c.bn_params, c.params, c.input_elems, c.output_elems)

    monkeypatch.setattr(counters, "layer_cost", off_by_one)
    r = runner.invoke(app, ["crosscheck", "mobilenet_v1", "--alpha", "0.25", "--res", "32",
                            "--per-layer"])
    assert r.exit_code == 1
    assert "disagree on 1 layer(s), first layer 4 (dw)" in r.stderr


SE_SPEC = ("name se_net\ninput 64 3!\nrounding multiple 8\nactivation hswish\nconv 3 16 s2\n"
           "ir 16 t=1 se=4 act=relu\nir 24 s2 t=4 k=5 se=4\nir 24 t=3 se=4 gate=sigmoid\n"
           "se 6 act=silu\npw 96\navgpool global\nfc 10!\n")


@pytest.mark.parametrize("alpha,res", [(1, 64), ("0.5", 40), ("1.3", 33)])
def test_se_layers_agree_with_both_counters(alpha, res):
    from mobilecost.lang.parse import parse

    spec = parse(SE_SPEC)
    check = cross_check(spec, alpha, res)
    ops = [c.op for c in check.layers]
    assert ops.count("scale") == 4
    for c in check.layers:
        assert c.flop_counter_macs == c.engine_macs, c
        assert c.fvcore_macs == c.engine_macs, c
        assert c.torch_weight_params == c.engine_params, c
        assert c.torch_params == c.engine_params_all, c  # the SE convolutions' biases included
    assert check.flop_counter_total_flops == 2 * cost(spec, alpha, res).macs
