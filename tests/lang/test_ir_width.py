"""Inverted residuals with an explicit hidden width (h=) or a fractional expansion (t=2.5, 7/3)."""

from fractions import Fraction

import pytest
from cli_helpers import one_error_line, run

import mobilecost
from mobilecost.errors import SpecError
from mobilecost.lang.parse import parse


def _widths(text, alpha=1):
    return [(l.op, l.in_channels, l.out_channels) for l in parse(text).build(alpha)
            if l.op in ("pw", "dw")]


def test_explicit_hidden_width_as_mobilenet_v3_writes_it():
    # MobileNetV3-Large's fourth bneck (Table 1): 28²×40 input... here on 8×8: exp 120, out 40.
    text = "name t\ninput 8 40!\nrounding multiple 8\nir 40 h=120 k=5\n"
    assert _widths(text) == [("pw", 40, 120), ("dw", 120, 120), ("pw", 120, 40)]
    c = mobilecost.cost(parse(text))
    by_hand = 40 * 120 * 64 + 5 * 5 * 120 * 64 + 120 * 40 * 64
    assert c.macs == by_hand
    # exp 16 on a 16-channel input (V3-Large's first bneck): no expansion layer, as torchvision
    assert _widths("name t\ninput 8 16!\nir 16 h=16\n") == [("dw", 16, 16), ("pw", 16, 16)]


def test_hidden_width_scales_with_alpha_by_the_spec_rounding():
    # torchvision's adjust_channels(120, 0.75) = _make_divisible(90, 8) = 88; 40·0.75 = 30 -> 32
    text = "name t\ninput 8 40*\nrounding multiple 8\nir 40 h=120\n"
    assert _widths(text, "0.75") == [("pw", 32, 88), ("dw", 88, 88), ("pw", 88, 32)]
    # rounding int: int(0.75·120) = 90, int(0.75·40) = 30
    assert _widths(text.replace("multiple 8", "int"), "0.75") == [
        ("pw", 30, 90), ("dw", 90, 90), ("pw", 90, 30)]
    # a fixed hidden width does not scale
    assert _widths(text.replace("h=120", "h=120!"), "0.5")[0] == ("pw", 24, 120)


@pytest.mark.parametrize("t,inp,hidden", [
    ("2.5", 40, 100),        # 40·2.5 = 100
    ("7/3", 40, 93),         # 40·7/3 = 93.33 -> 93
    ("88/24", 24, 88),       # MobileNetV3-Small's 24 -> 88 as an expansion ratio
    ("4.5", 16, 72),         # and its 16 -> 72
    ("3.75", 20, 75),
])
def test_fractional_expansion_rounds_in_times_t(t, inp, hidden):
    text = f"name t\ninput 8 {inp}!\nir {inp} t={t} k=7\n"
    assert _widths(text)[0] == ("pw", inp, hidden)
    c = mobilecost.cost(parse(text))
    assert c.macs == inp * hidden * 64 + 7 * 7 * hidden * 64 + hidden * inp * 64


def test_fractional_expansion_reads_back_from_its_canonical_text():
    spec = parse("name t\ninput 8 40!\nir 40 t=2.50\nir 40 t=14/6\nir 40 t=6\nir 40 h=120 k=5\n")
    text = spec.format()
    assert "ir 40 t=2.5\n" in text and "ir 40 t=7/3\n" in text and "ir 40 h=120 k=5\n" in text
    assert "ir 40\n" in text  # t=6 is the default
    assert parse(text) == spec


@pytest.mark.parametrize("opt,col,what", [
    ("t=0", 7, "expansion must be a positive number"),
    ("t=-2", 7, "expansion must be a positive number"),
    ("t=1/0", 7, "expansion must be a positive number"),
    ("t=2.5.1", 7, "expansion must be a positive number"),
    ("t=0/3", 7, "expansion must be a positive number"),
    ("h=0", 7, "hidden width must be a positive integer"),
    ("h=x", 7, "hidden width must be a positive integer"),
    ("t=2 h=72", 11, "give the expansion t= or the hidden width h=, not both"),
])
def test_bad_expansion_or_hidden_width_is_one_error_line(tmp_path, opt, col, what):
    text = f"input 8 16!\nir 16 {opt}\n"
    with pytest.raises(SpecError):
        parse(text)
    path = tmp_path / "bad.spec"
    path.write_text(text)
    assert f"bad.spec:2:{col}: {what}" in one_error_line(run("cost", path))


def test_kernels_3_5_7_in_inverted_residuals():
    for k in (3, 5, 7):
        c = mobilecost.cost(parse(f"name t\ninput 8 16!\nir 16 t=2 k={k}\n"))
        assert c.layers[1].macs == k * k * 32 * 64
    assert Fraction("7/3") * 40 != 93  # the rounding is real


@pytest.mark.parametrize("t,inp,hidden", [
    ("7/3", 40, 96),   # 93.3 -> the nearest multiple of 8 (TF-slim's expand_input_by_factor)
    ("2.3", 64, 144),  # MobileNetV3-Large at 0.75: 80·0.75 -> 64 inputs, 64·2.3 = 147.2 -> 144
    ("4.5", 16, 72),
])
def test_expansion_under_rounding_multiple_is_make_divisible(t, inp, hidden):
    text = f"name t\ninput 8 {inp}!\nrounding multiple 8\nir {inp} t={t}\n"
    assert _widths(text)[0] == ("pw", inp, hidden)
