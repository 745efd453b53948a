"""Properties over generated input (hypothesis): the parser never fails but with a
MobilecostError, the formatter round-trips, and the grid engine equals the scalar engine.

The spec generator below is written from the README's grammar table, not from the op table,
so that a grammar entry that drifts from the documentation fails here. The fast versions
run in the default suite; `-m slow` runs the same properties on many more examples.
"""

from fractions import Fraction
from fractions import Fraction as F

import pytest

hypothesis = pytest.importorskip("hypothesis")
from engines import assert_cell_equal  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mobilecost.engine.cost import Counting, cost  # noqa: E402
from mobilecost.engine.grid import grid_cost  # noqa: E402
from mobilecost.errors import ConfigError, MobilecostError  # noqa: E402
from mobilecost.lang.load import builtin_names, load_spec
from mobilecost.lang.parse import parse
from mobilecost.lang.spec import LayerDef, Repeat, Residual, Spec, format_spec
from mobilecost.lang.values import Channels, Rounding

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- any text

# Words of the language, near-misses and junk, so that generated lines often get far
# into the parser before they go wrong.
WORDS = ["conv", "dw", "pw", "ir", "avgpool", "maxpool", "fc", "name", "input", "rounding",
         "activation", "repeat", "residual", "{", "}", "global", "int", "multiple", "min=2",
         "3", "1", "0", "2", "32", "1000!", "16+", "-1", "1.5", "s2", "s0", "sx", "t=6", "t=0",
         "k=5", "k=4", "act=relu6", "act=gelu", "se", "se=4", "se=0", "t=2.5", "t=7/3", "t=1/0", "h=72", "h=0", "gate=sigmoid", "gate=relu", "bn=no", "bn=maybe", "pad=valid", "pad=full",
         "bias=no", "relu", "none", "x", "#", "=", "!", "+", "99999999999999999999",
         "uib", "fused", "attn", "mixdw", "ghost", "shuffle", "norm", "layerscale", "a=3", "a=0",
         "k=0", "ls=yes", "ls=maybe", "heads=4", "heads=0", "d=64", "kv=1", "kv=3", "kvs=2",
         "3,5,7", "3,,5", "ratio=2", "ratio=1", "dw=3", "g=4", "g=0", "pad=tf", "seact=silu",
         "act=mish", "squeeze=in"]
lines = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=6).map(" ".join)
texts = st.one_of(
    st.text(max_size=200),
    st.lists(lines, max_size=30).map("\n".join),
    # a built-in spec with one line replaced
    st.tuples(st.sampled_from(builtin_names()), st.integers(0, 200), lines).map(
        lambda t: "\n".join(_replace(load_spec(t[0]).format().splitlines(), t[1], t[2]))),
)


def _replace(ls: list[str], i: int, line: str) -> list[str]:
    ls[i % len(ls)] = line
    return ls


def _parse_gives_spec_or_error(text: str) -> None:
    try:
        spec = parse(text, "gen.spec")
    except MobilecostError as exc:
        assert str(exc).startswith("gen.spec"), str(exc)
        assert "\n" not in str(exc)
    else:
        assert isinstance(spec, Spec)


@FAST
@given(texts)
def test_any_text_parses_to_a_spec_or_a_mobilecost_error(text):
    _parse_gives_spec_or_error(text)


@pytest.mark.slow
@SLOW
@given(texts)
def test_any_text_parses_to_a_spec_or_a_mobilecost_error_many(text):
    _parse_gives_spec_or_error(text)


# --------------------------------------------------------------------------- generated specs

ACTS = st.sampled_from([None, "relu", "relu6", "hswish", "hsigmoid", "sigmoid", "silu", "gelu",
                        "none"])
channels = st.builds(Channels, st.integers(1, 96), st.sampled_from(["scale", "fixed", "atleast"]))
odd = st.sampled_from([1, 3, 5, 7])
GATES = st.sampled_from(["hsigmoid", "sigmoid"])
strides = st.integers(1, 3)
groups = st.sampled_from([1, 1, 2, 3, 4])
PADS = st.sampled_from(["same", "tf"])
SE_ACTS = st.sampled_from(["relu", "silu", "hswish", "gelu", "none"])
expansions = st.one_of(st.integers(1, 6), st.sampled_from([F(5, 2), F(7, 3), F(11, 3), F(9, 2),
                                                            F(1, 2)]))
STATEMENTS = ["conv", "dw", "pw", "ir", "se", "avgpool", "maxpool", "fc", "uib", "fused", "attn",
              "mixdw", "ghost", "shuffle", "norm", "layerscale"]


def kernels(pad: str, least: int = 1):
    """Kernel sizes a statement takes: odd under `same`, any under TensorFlow's `tf`; 0 (none)
    where `least` is 0."""
    sizes = [k for k in range(least, 8) if pad == "tf" or k % 2 or k == 0]
    return st.sampled_from(sizes)


@st.composite
def layer_defs(draw, final: bool = False) -> LayerDef:
    """One layer statement as the README's table allows it (with the defaults it implies)."""
    op = "fc" if final else draw(st.sampled_from(STATEMENTS))
    if op in ("conv", "dw"):
        pad = draw(st.sampled_from(["same", "valid", "tf"]))
        kernel = draw(odd if pad == "same" else st.integers(1, 4))
        return LayerDef(op, kernel=kernel, stride=draw(strides), act=draw(ACTS), bn=draw(st.booleans()),
                        pad=pad, channels=draw(channels) if op == "conv" else None,
                        groups=draw(groups) if op == "conv" else 1)
    if op == "pw":
        return LayerDef("pw", stride=draw(strides), channels=draw(channels), act=draw(ACTS),
                        bn=draw(st.booleans()), groups=draw(groups))
    if op == "ir":
        hidden = draw(st.one_of(st.none(), channels))
        pad = draw(PADS)
        return LayerDef("ir", kernel=draw(kernels(pad)), stride=draw(strides), channels=draw(channels),
                        expand=6 if hidden else draw(expansions), hidden=hidden, act=draw(ACTS),
                        se=draw(st.sampled_from([0, 0, 1, 4, 6])), gate=draw(GATES),
                        squeeze=draw(st.sampled_from(["exp", "in"])), se_act=draw(SE_ACTS), pad=pad)
    if op == "uib":
        pad = draw(PADS)
        start, kernel = draw(kernels(pad, 0)), draw(kernels(pad, 0))
        return LayerDef("uib", channels=draw(channels), start=start, kernel=kernel,
                        stride=draw(strides) if start or kernel else 1, expand=draw(expansions),
                        act=draw(ACTS), layer_scale=draw(st.booleans()), pad=pad)
    if op == "fused":
        pad = draw(PADS)
        return LayerDef("fused", channels=draw(channels), kernel=draw(kernels(pad)),
                        stride=draw(strides), expand=draw(expansions), act=draw(ACTS),
                        layer_scale=draw(st.booleans()), pad=pad)
    if op == "attn":
        pad, heads, kv_stride = draw(PADS), draw(st.integers(1, 4)), draw(strides)
        return LayerDef("attn", channels=draw(channels), heads=heads,
                        head_dim=draw(st.integers(1, 8)),
                        kv_heads=draw(st.sampled_from([k for k in (1, 2, 3, 4) if heads % k == 0])),
                        kv_stride=kv_stride, kernel=draw(kernels(pad)) if kv_stride > 1 else 3,
                        bn=draw(st.booleans()), layer_scale=draw(st.booleans()), pad=pad)
    if op == "mixdw":
        pad = draw(PADS)
        return LayerDef("mixdw", kernels=tuple(draw(st.lists(kernels(pad), min_size=1, max_size=4))),
                        stride=draw(strides), act=draw(ACTS), bn=draw(st.booleans()), pad=pad)
    if op == "ghost":
        pad = draw(PADS)
        return LayerDef("ghost", channels=draw(channels), ratio=draw(st.integers(2, 4)),
                        kernel=draw(kernels(pad)), cheap=draw(kernels(pad)), stride=draw(strides),
                        act=draw(ACTS), pad=pad)
    if op == "shuffle":
        return LayerDef("shuffle", groups=draw(groups))
    if op in ("norm", "layerscale"):
        return LayerDef(op)
    if op == "se":
        return LayerDef("se", se=draw(st.integers(1, 8)), act=draw(st.sampled_from(["relu", "silu"])),
                        gate=draw(GATES))
    if op in ("avgpool", "maxpool"):
        if draw(st.booleans()):
            return LayerDef(op, kernel=0, stride=1, pad="valid")
        kernel = draw(st.integers(1, 3))
        return LayerDef(op, kernel=kernel, stride=draw(st.integers(1, 3)), pad="valid")
    return LayerDef("fc", channels=draw(channels), bias=draw(st.booleans()))


def bodies(depth: int):
    node = layer_defs()
    if depth > 0:
        inner = bodies(depth - 1)
        node = st.one_of(node, node, node,
                         st.builds(Repeat, st.integers(1, 3), inner),
                         st.builds(Residual, inner))
    return st.lists(node, min_size=1, max_size=4).map(tuple)


rounding = st.one_of(st.builds(Rounding, st.just("int"), st.just(8), st.integers(1, 4)),
                     st.builds(Rounding, st.just("multiple"), st.integers(1, 8), st.just(1)))


BODY = bodies(2)
NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"


@st.composite
def specs(draw) -> Spec:
    body = draw(BODY)
    if draw(st.booleans()):
        body = body + (draw(layer_defs(final=True)),)
    return Spec(name=draw(st.text(NAME_CHARS, min_size=1, max_size=12)),
                resolution=draw(st.integers(1, 256)), in_channels=draw(channels), body=body,
                rounding=draw(rounding), activation=draw(st.sampled_from(["relu", "relu6", "hswish", "silu", "none"])))


def _round_trip(spec: Spec) -> None:
    text = format_spec(spec)
    again = parse(text, "again")
    assert again == spec, text
    assert format_spec(again) == text


@FEW
@given(specs())
def test_format_then_parse_gives_the_spec(spec):
    _round_trip(spec)


@pytest.mark.slow
@SLOW
@given(specs())
def test_format_then_parse_gives_the_spec_many(spec):
    _round_trip(spec)


# --------------------------------------------------------------------------- two engines

# Up to a dozen α, so that the grid engine's vectorised walk holds several at once and
# splits them where a build branches; thirds and sevenths, whose decimals never end.
alphas = st.lists(st.one_of(st.fractions(Fraction(1, 20), Fraction(2), max_denominator=100),
                            st.sampled_from([F(1, 3), F(2, 3), F(4, 3), F(5, 3), F(1, 7), F(9, 7)])),
                  min_size=1, max_size=12)
resolutions = st.lists(st.integers(1, 80), min_size=1, max_size=4)


def _engines_agree(spec: Spec, alist, rlist, counting: Counting) -> None:
    """grid_cost is cost() at every cell; a grid with a cell cost() refuses is refused."""
    cells = {}
    refused = None
    for a in alist:
        for r in rlist:
            try:
                cells[a, r] = cost(spec, a, r, counting)
            except ConfigError as exc:
                refused = exc
    try:
        g = grid_cost(spec, alist, rlist, counting)
    except ConfigError:
        assert refused is not None, "the grid engine refused a grid the scalar engine costs"
        return
    assert refused is None, f"the grid engine costed a cell the scalar engine refuses: {refused}"
    for i, a in enumerate(alist):
        for j, r in enumerate(rlist):
            assert_cell_equal(g, i, j, cells[a, r], (a, r))


countings = st.builds(Counting, st.booleans(), st.booleans())


@FEW
@given(specs(), alphas, resolutions, countings)
def test_grid_engine_equals_scalar_engine(spec, alist, rlist, counting):
    _engines_agree(spec, alist, rlist, counting)


@pytest.mark.slow
@SLOW
@given(specs(), alphas, resolutions, countings)
def test_grid_engine_equals_scalar_engine_many(spec, alist, rlist, counting):
    _engines_agree(spec, alist, rlist, counting)
