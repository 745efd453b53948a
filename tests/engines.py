"""The check that the grid engine and the one-configuration engine agree, shared by the tests."""


def assert_cell_equal(g, i, j, c, where):
    """Cell (i, j) of a GridCost equals the NetworkCost `c` in every total and every kind."""
    assert int(g.macs[i, j]) == c.macs, where
    assert int(g.params[i, j]) == c.params, where
    assert int(g.activation_elems[i, j]) == c.activation_elems, where
    assert int(g.peak_activation_elems[i, j]) == c.peak_activation_elems, where
    assert int(g.elementwise_ops[i, j]) == c.elementwise_ops, where
    kinds = c.by_kind()
    for k, arr in g.kind_macs.items():
        assert int(arr[i, j]) == (kinds[k].macs if k in kinds else 0), (where, k)
