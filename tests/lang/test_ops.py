"""The op table: every op declared once with what its role needs; one class adds an op."""

from fractions import Fraction as F

import pytest

import mobilecost.engine.grid as gridcost
from mobilecost.engine.cost import Counting, cost, layer_cost
from mobilecost.engine.grid import grid_cost
from mobilecost.errors import MobilecostError, SpecError
from mobilecost.lang.kinds import KINDS, MAC_KINDS, TIME_KIND_LABELS, TIME_KINDS, LayerKind
from mobilecost.lang.opbase import (
    FIELDS,
    OPS,
    STATEMENTS,
    Grammar,
    Op,
    Option,
    layer_ops,
    positive,
    register,
    statement_ops,
)
from mobilecost.lang.parse import parse
from mobilecost.lang.spec import LayerDef, Spec
from mobilecost.lang.values import Channels


def test_every_op_has_what_its_role_needs():
    # The statements of the README's grammar table, and the layers the builder makes.
    assert statement_ops() == ("conv", "dw", "pw", "ir", "se", "avgpool", "maxpool", "fc", "uib",
                               "fused", "attn", "mixdw", "ghost", "shuffle", "norm", "layerscale")
    assert set(layer_ops()) == {"conv", "dw", "pw", "avgpool", "maxpool", "fc", "add", "scale",
                                "sdpa", "shuffle", "norm", "layerscale", "tap", "take", "concat"}
    for name, op in OPS.items():
        assert op.name == name
        assert op.grammar is not None or op.kind is not None, name
        if op.kind is not None:  # a concrete layer: a kind, cost rules and a Table 1 name
            assert op.kind in KINDS and op.table1, name
            overrides = {m for m in ("macs_channels", "weights_channels", "input_channels")
                         if getattr(type(op), m) is not getattr(Op, m)}
            # a layer kind with Mult-Adds has its own Mult-Adds and weights rules
            if op.kind.has_macs:
                assert {"macs_channels", "weights_channels"} <= overrides, name
        if op.grammar is not None:  # a statement builds layers
            assert type(op).build is not Op.build, name


def test_every_layer_op_has_a_torch_module():
    pytest.importorskip("torch")
    from mobilecost.torch.build import MODULES

    assert set(MODULES) == set(layer_ops())


def test_a_second_op_of_a_name_is_refused():
    class Conv2(Op):
        name, kind = "conv", LayerKind.CONV

    before = dict(OPS)
    with pytest.raises(MobilecostError, match="op 'conv' is already registered"):
        register(Conv2)
    assert OPS == before


def test_a_second_torch_module_of_an_op_is_refused():
    pytest.importorskip("torch")
    from mobilecost.torch.build import MODULES, register_module

    before = dict(MODULES)
    with pytest.raises(MobilecostError, match="already registered"):
        register_module("dw")(lambda layer: None)
    assert MODULES == before


def test_cost_rules_against_the_papers_equations():
    layers = parse("input 14 512!\ndw 3\npw 512\navgpool global\nfc 1000!\n").build()
    dw, pw, pool, fc = (layer_cost(x, Counting(True, True)) for x in layers)
    # eq. (4): 3·3·512·14·14 = 903,168; eq. (5)'s 1×1 term 512·512·14·14 = 51,380,224
    assert (dw.macs, dw.weight_params, dw.bn_params) == (903_168, 4_608, 1_024)
    assert (pw.macs, pw.weight_params) == (51_380_224, 262_144)
    # the pool reads 14·14·512 = 100,352 elements and writes 512
    assert (pool.macs, pool.input_elems, pool.output_elems) == (0, 100_352, 512)
    assert (fc.macs, fc.bias_params) == (512_000, 1_000)


def test_kind_table():
    assert LayerKind.DEPTHWISE.label == "Conv DW" and LayerKind.POINTWISE.short == "1×1"
    assert TIME_KINDS == ("conv", "depthwise", "pointwise", "fc", "other")
    assert LayerKind.ATTENTION.time_kind == "other" and LayerKind.ATTENTION.has_macs
    assert TIME_KIND_LABELS["fc"] == "Fully Connected"
    assert MAC_KINDS == (LayerKind.CONV, LayerKind.DEPTHWISE, LayerKind.POINTWISE, LayerKind.FC,
                         LayerKind.ATTENTION)
    groups = {k: k.latency_group for k in LayerKind}
    assert groups[LayerKind.DEPTHWISE] == "depthwise" and groups[LayerKind.FC] == "dense"
    assert LayerKind.POOL.time_kind == LayerKind.ADD.time_kind == "other"


def test_the_readers_of_the_kind_table():
    from mobilecost.latency.features import GROUPS

    assert GROUPS == {k: KINDS[k].latency_group for k in LayerKind}
    pytest.importorskip("torch")
    from mobilecost.torch import profile

    assert profile.TIME_KINDS == TIME_KINDS and profile.TIME_KIND_LABELS == TIME_KIND_LABELS


def test_a_global_pool_is_recorded_on_the_layer():
    layers = parse("input 20 3!\nconv 3 8 s2\nmaxpool 2\navgpool global\n").build()
    assert [x.pad for x in layers] == ["same", "valid", "global"]
    assert layers[2].kernel == 5 and layers[2].out_size == 1


def test_grid_engine_builds_nothing_to_check_itself(monkeypatch):
    # Before the op table, the grid engine built the spec once per structure and again at the
    # smallest and largest resolution to check its own size rules, and found a global pool by
    # its line number (all 0 in a spec made in Python: then it built every resolution).
    import mobilecost.engine.walk as walk
    import mobilecost.lang.spec as spec_module

    calls = []
    real = spec_module.build
    for module in (gridcost, walk, spec_module):  # wherever the name is bound
        if hasattr(module, "build"):
            monkeypatch.setattr(module, "build", lambda *a, **k: calls.append(a) or real(*a, **k))
    spec = Spec("py", 32, Channels(3, "fixed"), (
        LayerDef("conv", kernel=3, stride=2, channels=Channels(16)),
        LayerDef("avgpool", kernel=2, stride=2, pad="valid"),
        LayerDef("avgpool", kernel=0, stride=1, pad="valid"),
        LayerDef("fc", channels=Channels(10, "fixed"))))
    g = grid_cost(spec, [F(1), F(1, 2)], [32, 64, 100])
    assert calls == []
    # by hand at α = 1, 64 px: conv 3·3·3·16·32² = 442,368; fc 16·10 = 160 (global pool: 1×1)
    assert int(g.macs[0, 1]) == 442_368 + 160
    for i, a in enumerate((F(1), F(1, 2))):
        for j, r in enumerate((32, 64, 100)):
            assert int(g.macs[i, j]) == cost(spec, a, r).macs


def test_a_refused_resolution_still_names_the_layer():
    spec = parse("name n\ninput 32 3!\nconv 3 8 s2\nresidual {\n  dw 3 s2\n}\n", "n.spec")
    assert cost(spec, 1, 1).macs == 3 * 3 * 3 * 8 + 3 * 3 * 8  # 1×1 maps: the block keeps its shape
    with pytest.raises(MobilecostError, match=r"n.spec:4: residual block maps 16×16×8 to 8×8×8"):
        grid_cost(spec, [1], [1, 32])


class _Upsample(Op):
    """A toy op for the tests below: nearest-neighbour upsampling by a factor, `up [f=N]`
    (an option of its own, declared here and nowhere else; the layer carries the factor as
    its stride)."""

    name, kind, table1 = "up", LayerKind.POOL, "Upsample"
    grammar = Grammar((), (Option("f", "factor", 2, positive("factor")),))

    def build(self, b, d):
        b.emit("up", 1, d.factor, b.channels, pad="valid", line=d.line)

    def out_size(self, h, kernel, stride, pad):
        return stride * h


@pytest.fixture
def upsample():
    register(_Upsample)
    yield
    del OPS["up"], STATEMENTS["up"], FIELDS["factor"]


def test_one_class_adds_an_op_to_the_language_and_both_engines(upsample):
    spec = parse("name u\ninput 8 3!\nconv 3 4 s2\nup\npw 6\n")
    assert "\nup\n" in spec.format() and parse(spec.format()) == spec
    layers = spec.build(1, 8)
    assert [(x.op, x.out_size) for x in layers] == [("conv", 4), ("up", 8), ("pw", 8)]
    assert layers[1].describe == "Upsample / s2"  # the factor, carried as the stride
    # by hand: conv 3·3·3·4·4·4 = 1,728; pw 4·6·8·8 = 1,536
    assert cost(spec, 1, 8).macs == 1_728 + 1_536
    g = grid_cost(spec, [F(1), F(1, 2)], [8, 9, 30])
    for i, a in enumerate((F(1), F(1, 2))):
        for j, r in enumerate((8, 9, 30)):
            c = cost(spec, a, r)
            assert (int(g.macs[i, j]), int(g.peak_activation_elems[i, j])) == \
                (c.macs, c.peak_activation_elems)


def test_an_option_declared_with_its_op_needs_no_other_edit(upsample):
    spec = parse("name u\ninput 8 3!\nup f=3\nup\n")
    assert [str(d) for d in spec.body] == ["up f=3", "up"]  # the default is not written
    assert parse(spec.format()) == spec
    assert spec.body[0].factor == 3 and spec.body[1].factor == 2
    assert [x.out_size for x in spec.build(1, 8)] == [24, 48]
    with pytest.raises(SpecError, match=r"<spec>:3:4: factor must be a positive integer \(got 'f=0'\)"):
        parse("name u\ninput 8 3!\nup f=0\n")
    with pytest.raises(SpecError, match=r"unexpected argument to 'pw' \(options: act=, bias=, bn=, g=, sN\)"):
        parse("name u\ninput 8 3!\npw 8 f=3\n")
