"""The vectorised grid prediction against the one-configuration prediction, and its factors."""

import zlib
from fractions import Fraction

import numpy as np
import pytest

from mobilecost.errors import MobilecostError
from mobilecost.lang.load import builtin_names, load_spec
from mobilecost.latency import whole as lt
from mobilecost.latency.measurements import Config
from mobilecost.latency.structure import structure_terms

THETA = (1 / 25e6, 1 / 4e6, 1 / 12e6, 0.040)


@pytest.mark.parametrize("form", lt.FORMS)
@pytest.mark.parametrize("name", builtin_names())
def test_grid_prediction_equals_one_at_a_time(name, form):
    rng = np.random.default_rng(zlib.crc32(f"{name} {form}".encode()))
    model = lt.Fit(THETA, form, "float16", ())
    for _ in range(2):
        alphas = [Fraction(int(x), 100) for x in rng.integers(10, 140, size=6)]
        resolutions = [int(x) for x in rng.integers(64, 300, size=4)]
        batch = int(rng.integers(1, 5))
        grid = lt.predict_grid(model, name, alphas, resolutions, batch)
        scalar = np.array([[lt.predict_ms(model, Config(name, a, r, batch)) for r in resolutions]
                           for a in alphas])
        np.testing.assert_allclose(grid, scalar, rtol=1e-12)


def test_max_form_in_chunks_equals_one_block(monkeypatch):
    model = lt.Fit(THETA, "max", "float32", ())
    alphas = [Fraction(k, 20) for k in range(5, 21)]
    whole = lt.predict_grid(model, "mobilenet_v2", alphas, [96, 160, 224])
    monkeypatch.setattr(lt, "_GRID_CHUNK_ELEMS", 1)  # one α per block
    np.testing.assert_array_equal(lt.predict_grid(model, "mobilenet_v2", alphas, [96, 160, 224]), whole)


def test_factors_by_hand():
    # mobilenet_v1's first layer, 3×3 conv 3 -> 32·α channels, stride 2: Mult-Adds
    # 27·int(32α)·(r/2)²; at α 1/2, r 160: 27·16·80² = 2,764,800 = (27·16·112²) · (80² / 112²)
    (st,) = structure_terms(load_spec("mobilenet_v1"), [Fraction(1), Fraction(1, 2)], [160, 224])
    macs = st.quantity("macs")
    assert macs[1, 0, 0] == pytest.approx(27 * 16 * 80 * 80, rel=1e-15)
    assert st.per_alpha["macs"][1, 0] == 27 * 16 * 112 * 112  # at the largest resolution
    assert st.per_res["macs"][0, 0] == pytest.approx(80 * 80 / (112 * 112), rel=1e-15)
    # the FC reads 1024·α features whatever the resolution (after the global pool)
    assert st.per_alpha["weight_params"][1, -1] == 512 * 1000 and st.per_res["weight_params"][-1, 0] == 1


def test_grid_refuses_an_undetermined_group():
    model = lt.Fit(THETA, "sum", "float32", (), (True, False, True, True))
    with pytest.raises(MobilecostError, match="without depthwise layers"):
        lt.predict_grid(model, "mobilenet_v1", [1], [224])
    assert lt.predict_grid(model, "conv_mobilenet", [1], [224]).shape == (1, 1)


def test_the_size_walk_equals_building_every_resolution():
    """gridfeatures takes its sides from the grid engine's size walk: the builder, run at each
    resolution on its own, gives the same sides."""
    from mobilecost.engine.walk import layer_sides
    from mobilecost.lang.load import load_spec
    from mobilecost.lang.spec import build

    for name in ("mobilenet_v1", "mobilenet_v2"):
        spec = load_spec(name)
        resolutions = [96, 131, 224, 225]
        layers = build(spec, Fraction(7, 20), max(resolutions))
        ins, outs = layer_sides(spec, Fraction(7, 20), layers, np.array(resolutions))
        for j, r in enumerate(resolutions):
            built = build(spec, Fraction(7, 20), r)
            assert ins[:, j].tolist() == [x.in_size for x in built]
            assert outs[:, j].tolist() == [x.out_size for x in built]
