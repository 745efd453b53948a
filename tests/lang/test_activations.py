"""Activations per layer, per spec and in inverted residuals; elementwise ops as their own count."""

from fractions import Fraction

import pytest
from by_hand import V1_TABLE1, V2_BOTTLENECKS, v1_macs
from cli_helpers import one_error_line, run

import mobilecost
from mobilecost.engine.grid import grid_cost
from mobilecost.engine.sweep import sweep
from mobilecost.errors import SpecError
from mobilecost.lang.kinds import ACTIVATIONS
from mobilecost.lang.parse import parse

NEW = ("hswish", "hsigmoid", "sigmoid", "silu")


def test_every_activation_of_the_issue_is_in_the_language():
    # and GELU, MobileNetV4 Hybrid-L's
    assert set(ACTIVATIONS) == {"relu", "relu6", "hswish", "hsigmoid", "sigmoid", "silu", "gelu",
                                "none"}


@pytest.mark.parametrize("act", NEW)
def test_new_activations_parse_per_layer_per_spec_and_in_ir(act):
    spec = parse(f"name t\ninput 8 3!\nactivation {act}\nconv 3 16 s2\ndw 3 act=relu\npw 24 act={act}\n"
                 f"ir 24 act={act}\n")
    layers = spec.build()
    assert [l.act for l in layers] == [act, "relu", act,   # spec default, per layer, per layer
                                       act, act, "none",   # ir: expand, depthwise, linear project
                                       "none"]             # the residual add
    assert parse(spec.format()) == spec  # canonical text reads back


def test_v1_elementwise_ops_are_one_relu_per_conv_output_element():
    # Table 1: every convolution ends in ReLU; the pool and FC have none.
    by_hand = sum(n * d * d for _k, _m, n, _g, d in V1_TABLE1)
    assert by_hand == 5_042_688
    c = mobilecost.cost("mobilenet_v1")
    assert c.elementwise_ops == by_hand
    assert c.macs == v1_macs()  # Mult-Adds unchanged: elementwise ops are never mixed in


def v2_elementwise() -> int:
    """MobileNetV2 1.0-224 by hand: ReLU6 after the first conv, every expansion and depthwise
    and the last 1×1; the projections are linear; one add per element of each residual."""
    side, cin = 112, 32
    total = 32 * side * side  # conv 3×3 s2 + ReLU6
    for t, c, n, s in V2_BOTTLENECKS:
        for i in range(n):
            out = side // (s if i == 0 else 1)
            hidden = cin * t
            if t != 1:
                total += hidden * side * side  # expansion + ReLU6
            total += hidden * out * out  # depthwise + ReLU6
            if (s if i == 0 else 1) == 1 and cin == c:
                total += c * out * out  # residual add
            side, cin = out, c
    return total + 1280 * side * side  # last 1×1 + ReLU6


def test_v2_elementwise_ops_count_activations_and_residual_adds():
    assert mobilecost.cost("mobilenet_v2").elementwise_ops == v2_elementwise()


def test_each_activation_counts_one_op_per_element_and_none_zero():
    # 16×16 map, 8 channels after the conv: 2,048 elements.
    for act in ACTIVATIONS:
        c = mobilecost.cost(parse(f"input 16 3!\nconv 3 8 act={act}\n"))
        assert c.elementwise_ops == (0 if act == "none" else 8 * 16 * 16), act
        assert c.macs == 3 * 3 * 3 * 8 * 16 * 16


def test_grid_engine_counts_elementwise_ops_as_cost_does():
    text = ("input 64 3!\nactivation hswish\nconv 3 16 s2\nir 16 t=1 act=relu\n"
            "ir 24 s2 t=4 k=5 act=silu\nir 24 t=3\npw 96 act=sigmoid\navgpool global\nfc 10!\n")
    spec = parse(text)
    alphas, res = [Fraction(1), Fraction(1, 2), Fraction(7, 10)], [64, 47, 33]
    g = grid_cost(spec, alphas, res)
    for i, a in enumerate(alphas):
        for j, r in enumerate(res):
            assert int(g.elementwise_ops[i, j]) == mobilecost.cost(spec, a, r).elementwise_ops


def test_sweep_frame_and_cost_output_carry_elementwise_ops():
    df = sweep("mobilenet_v1", [1], [224])
    assert int(df.elementwise_ops[0]) == 5_042_688
    r = run("cost", "--format", "csv")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    total = dict(zip(lines[0].split(","), lines[-1].split(",")))
    assert int(total["elementwise_ops"]) == 5_042_688
    assert int(total["macs"]) == v1_macs()


@pytest.mark.parametrize("text,where", [
    ("input 8 3!\nconv 3 8 act=mish\n", ":2:10"),  # (gelu is one now: MobileNetV4 Hybrid-L's)
    ("input 8 3!\nactivation swish\nconv 3 8\n", ":2:12"),
    ("input 8 3!\nir 8 act=hardswish\n", ":2:6"),
])
def test_unknown_activation_is_one_error_line(tmp_path, text, where):
    with pytest.raises(SpecError):
        parse(text)
    path = tmp_path / "bad.spec"
    path.write_text(text)
    line = one_error_line(run("cost", path))
    assert f"bad.spec{where}" in line and "hswish" in line  # names the place and the choices
