from fractions import Fraction as F

import pytest

from mobilecost.engine.axes import (
    format_quantity,
    parse_alphas,
    parse_quantity,
    parse_resolutions,
    parse_rhos,
)
from mobilecost.errors import MobilecostError


def test_alpha_range_default_step_is_a_quarter():
    assert parse_alphas("0.25..1") == [F(1, 4), F(1, 2), F(3, 4), F(1)]


def test_alpha_range_with_step_is_exact():
    values = parse_alphas("0.1..0.3:0.1")
    assert values == [F(1, 10), F(2, 10), F(3, 10)]  # 0.1 + 0.1 + 0.1 lands on 0.3 exactly


def test_range_stops_at_last_value_not_above_end():
    assert parse_resolutions("128..200") == [128, 160, 192]
    assert parse_resolutions("100..130:10") == [100, 110, 120, 130]


def test_lists_keep_order_and_drop_repeats():
    assert parse_alphas("1,0.5,1,0.25..0.5") == [F(1), F(1, 2), F(1, 4)]
    assert parse_resolutions("224,192,160,128") == [224, 192, 160, 128]


def test_rho_range():
    assert parse_rhos("0.5..1") == [F(1, 2), F(3, 4), F(1)]


@pytest.mark.parametrize("text, fragment", [
    ("1..0.25", "runs downwards"),
    ("0", "must be > 0"),
    ("0..1", "must be > 0"),
    ("abc", "not a number"),
    ("0.25..1:0", "step must be > 0"),
    ("0.25..1:-0.25", "step must be > 0"),
    ("0.5,,1", "empty item"),
    ("", "empty value"),
    ("1e-9..1:1e-9", "per axis"),
])
def test_bad_alphas(text, fragment):
    with pytest.raises(MobilecostError, match=fragment) as info:
        parse_alphas(text)
    assert "--alpha" in str(info.value)


@pytest.mark.parametrize("text, fragment", [
    ("abc", "not a whole number"),
    ("224.5", "not a whole number"),
    ("-32", "must be > 0"),
    ("224..128", "runs downwards"),
    ("128..224:0", "step must be > 0"),
])
def test_bad_resolutions(text, fragment):
    with pytest.raises(MobilecostError, match=fragment):
        parse_resolutions(text)


@pytest.mark.parametrize("text, value", [
    ("300M", 300_000_000), ("2M", 2_000_000), ("1.5k", 1500), ("4G", 4_000_000_000),
    ("1000", 1000), ("0.5M", 500_000), ("2m", 2_000_000),
])
def test_quantities(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["300X", "M", "", "-5M", "0", "1.5"])
def test_bad_quantities(text):
    with pytest.raises(MobilecostError):
        parse_quantity(text, "--max-macs")


def test_format_quantity():
    assert format_quantity(300_000_000) == "300M"
    assert format_quantity(1500) == "1.5k"
    assert format_quantity(12) == "12"
