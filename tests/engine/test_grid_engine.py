"""The grid engine's vectorised channel walk: every α of a grid walked at once, exactly the
per-α walk's channels (and so `cost()`'s), for every built-in, for α such as 1/3, where the
α of a grid build different layers, and for an op whose build cannot run on arrays."""

from fractions import Fraction as F

import numpy as np
import pytest
from engines import assert_cell_equal

from mobilecost.engine import walk as gridmod
from mobilecost.engine.cost import Counting, cost
from mobilecost.engine.grid import grid_cost
from mobilecost.lang.kinds import LayerKind
from mobilecost.lang.load import builtin_names, load_spec
from mobilecost.lang.opbase import FIELDS, OPS, STATEMENTS, Grammar, Op, register
from mobilecost.lang.parse import parse
from mobilecost.lang.values import make_divisible, make_divisible_ratio, round_ratio

ALPHAS = [F(k, 100) for k in range(10, 151, 3)] + [F(1, 3), F(2, 3), F(4, 3), F(7, 3), F(1, 7)]


def _by_alpha(walked):
    """{α index: (static layers, channel records)} of a walk's cohorts, as plain ints."""
    out = {}
    for rows, records in walked:
        for k, i in enumerate(rows.tolist()):
            static = tuple(r[gridmod._STATIC] for r in records)
            chans = tuple(tuple(int(np.asarray(r[f]).reshape(-1)[k] if np.ndim(r[f]) else r[f])
                                for f in gridmod._CHANNEL_FIELDS) for r in records)
            out[i] = (static, chans)
    return out


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_takes_the_vectorised_walk_and_it_equals_the_per_alpha_walk(name):
    spec = load_spec(name)
    vector = gridmod._vector_walk(spec, ALPHAS, (224, 224))
    assert vector is not None, f"{name} fell back to the per-α walk"
    assert len(vector) <= 4  # cohorts: one per structure, split only where a branch differs
    assert _by_alpha(vector) == _by_alpha(gridmod._scalar_walk(spec, ALPHAS, (224, 224)))


def test_alphas_that_build_different_layers_split_into_cohorts():
    # MobileNetV2's 'ir 16 t=1' after 'conv 3 32': a residual add only where the rounding
    # gives both sides the same width, which depends on α.
    spec = load_spec("mobilenet_v2")
    walked = gridmod._vector_walk(spec, ALPHAS, (224, 224))
    assert len({tuple(r[gridmod._STATIC] for r in recs) for _, recs in walked}) >= 2
    g = grid_cost(spec, ALPHAS, [96, 161, 224])
    for i, a in enumerate(ALPHAS):
        for j, r in enumerate((96, 161, 224)):
            assert_cell_equal(g, i, j, cost(spec, a, r), (a, r))


@pytest.mark.parametrize("name", ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mnasnet_a1"])
def test_a_third_is_exact(name):
    alphas = [F(1, 3), F(2, 3), F(1), F(4, 3)]
    g = grid_cost(name, alphas, [97, 224], Counting(True, True, True))
    for i, a in enumerate(alphas):
        for j, r in enumerate((97, 224)):
            assert_cell_equal(g, i, j, cost(name, a, r, Counting(True, True, True)), (a, r))


def test_channel_rules_in_integers_equal_the_fraction_rules():
    rng = np.random.default_rng(7)
    num = rng.integers(0, 10**6, 2000)
    den = rng.integers(1, 10**4, 2000)
    for d in (1, 2, 3, 8, 16):
        got = make_divisible_ratio(num, den, d)
        assert got.tolist() == [make_divisible(F(int(a), int(b)), d) for a, b in zip(num, den)]
    assert round_ratio(num, den).tolist() == [round(F(int(a), int(b))) for a, b in zip(num, den)]


def test_one_op_not_declared_vectorised_makes_its_specs_walk_per_alpha(monkeypatch):
    spec = load_spec("mobilenet_v2")
    monkeypatch.setattr(type(OPS["ir"]), "vector_channels", False)
    assert gridmod._vector_walk(spec, ALPHAS, (224, 224)) is None
    g = grid_cost(spec, ALPHAS[:6], [128, 224])
    for i, a in enumerate(ALPHAS[:6]):
        for j, r in enumerate((128, 224)):
            assert_cell_equal(g, i, j, cost(spec, a, r), (a, r))


class _Half(Op):
    """A toy op whose build works on one int only (Fraction of the channel count): `half`,
    a 1×1 convolution to ceil(c / 2) channels."""

    name, kind, table1 = "half", LayerKind.POINTWISE, "Half"
    grammar = Grammar((), ())

    def build(self, b, d):
        import math

        b.emit("pw", 1, 1, math.ceil(F(b.channels, 2)), act="relu", line=d.line)


@pytest.fixture
def half():
    register(_Half)
    yield
    del OPS["half"], STATEMENTS["half"]
    assert "half" not in FIELDS


def test_an_op_whose_build_fails_on_arrays_is_walked_per_alpha_exactly(half):
    spec = parse("name h\ninput 64 3!\nconv 3 30 s2\nhalf\nhalf\nfc 10!\n")
    assert gridmod._vector_walk(spec, ALPHAS, (64, 64)) is None
    g = grid_cost(spec, ALPHAS, [31, 64])
    for i, a in enumerate(ALPHAS):
        for j, r in enumerate((31, 64)):
            assert_cell_equal(g, i, j, cost(spec, a, r), (a, r))


def test_a_refused_alpha_gives_the_builders_own_error():
    # At α 1/4 the conv has 1 channel and the block's hidden width is round(1 · 1/2) = 0: the
    # vectorised walk hands over to the per-α walk, whose builder names the layer, as cost does.
    from mobilecost.errors import ConfigError

    spec = parse("name z\ninput 32 3!\nrounding int\nconv 3 4\nir 4 t=1/2\n", "z.spec")
    assert cost(spec, 1, 32).macs > 0
    with pytest.raises(ConfigError) as scalar:
        cost(spec, F(1, 4), 32)
    with pytest.raises(ConfigError) as grid:
        grid_cost(spec, [F(1), F(1, 4)], [32])
    assert str(grid.value) == str(scalar.value) and "z.spec:5" in str(grid.value)


def test_builtin_specs_are_parsed_once():
    assert load_spec("mobilenet_v2") is load_spec("mobilenet_v2")
    assert cost("mobilenet_v2", F(3, 4), 192).macs == cost(load_spec("mobilenet_v2"), F(3, 4), 192).macs


def test_a_build_that_updates_a_count_in_place_leaves_the_walk_alone():
    # mixdw's build writes `splits = [c // n] * n; splits[0] += ...; remaining -= ci`: with
    # ints those rebind; on the vectorised walk's arrays they must too, or the shared array
    # (and the builder's own channel count) changes under it. By hand, 6 channels at 8×8 split
    # 3 + 3: dw 1×1 on 3 channels 3·64 = 192, dw 3×3 on 3 channels 9·3·64 = 1,728.
    from fractions import Fraction

    from mobilecost.engine.cost import cost
    from mobilecost.engine.grid import grid_cost
    from mobilecost.lang.parse import parse

    spec = parse("input 8 6*\nmixdw 1,3 bn=no\n")
    alphas = [Fraction(1, 3), Fraction(1), Fraction(7, 4)]
    g = grid_cost(spec, alphas, [8, 11])
    assert int(g.macs[1, 0]) == 192 + 1_728
    for i, a in enumerate(alphas):
        for j, r in enumerate((8, 11)):
            assert int(g.macs[i, j]) == cost(spec, a, r).macs
