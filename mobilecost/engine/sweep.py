"""The sweep (`mobilecost.sweep`): the grid engine's arrays as a DataFrame, one row per
configuration (α-major), with the exact α, the shares of Mult-Adds by kind, activations and
the published or estimated accuracy."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, Iterable, Sequence

from ..lang.load import classes_of, load_spec
from ..lang.spec import Spec
from ..lang.values import resolution_text, sides
from .cost import Counting, convention_line
from .grid import grid_cost
from .limits import DEFAULT_MAX_CONFIGS

if TYPE_CHECKING:
    import pandas as pd


def _alpha_exact(alphas: Sequence[Fraction], n_r: int) -> "pd.Categorical":
    """α of every row as exact text ("3/4", "1/3", "1"), categorical: one string per α."""
    import numpy as np
    import pandas as pd

    codes: dict[Fraction, int] = {}
    for a in alphas:
        codes.setdefault(a, len(codes))
    per_alpha = np.fromiter((codes[a] for a in alphas), dtype=np.int32, count=len(alphas))
    return pd.Categorical.from_codes(np.repeat(per_alpha, n_r), [str(a) for a in codes])


def frame_alphas(df: "pd.DataFrame") -> list[Fraction]:
    """α of every row of a sweep frame as the exact Fraction, read from `alpha_exact`."""
    import numpy as np

    col = df["alpha_exact"]
    if hasattr(col, "cat"):
        exact = [Fraction(t) for t in col.cat.categories]
        return [exact[i] for i in np.asarray(col.cat.codes).tolist()]
    return [Fraction(str(t)) for t in col.tolist()]


def frame_specs(df: "pd.DataFrame") -> list[str]:
    """The specs of a sweep frame (one, or several after `--spec`), in the order their rows come."""
    import pandas as pd

    return [str(x) for x in pd.unique(df["spec"])]


def sweep(spec: Spec | str = "mobilenet_v1", alphas: Iterable | None = None,
          resolutions: Iterable[int] | None = None, counting: Counting = Counting(),
          max_configs: int = DEFAULT_MAX_CONFIGS, dtype: str | None = None) -> "pd.DataFrame":
    """One row per (α, resolution): cost, Mult-Adds shares per kind, activations, accuracy.

    Defaults are the paper's 16 configurations: α 1, 0.75, 0.5, 0.25 × 224, 192, 160, 128.
    Each α is read by `spec.to_fraction` (strings, ints, Fractions exact; a float as its nearest
    12-significant-digit decimal), so np.arange(0.25, 1.0001, 0.05) gives the rows of the grid
    option 0.25..1:0.05, published accuracy included.
    Rows run α-major in the order given. Columns: spec, alpha (a float, for plotting and
    arithmetic), alpha_exact (α exactly, as text such as "3/4" or "1/3"; categorical; read it
    back with `frame_alphas`), resolution (the input's side; where the grid or the spec has a
    non-square input, text such as "320x240", height first, and then also height and width
    as numbers), rho (the resolution, or height, over the spec's base), rho_w (the width over the
    base width, with non-square inputs only), macs, params, macs_share_<kind>, elementwise_ops (activations,
    residual adds and channel-wise scales, one op per element: not Mult-Adds), activation_elems (every layer's
    output plus the input image), peak_activation_elems (the largest input + output of one
    layer), with `dtype` also weight_bytes (what a file stores of the weights at that dtype:
    `engine.memory`), activation_bytes and peak_activation_bytes (the two counts of elements at
    the dtype's width), top1, top1_low, top1_high, top5, top5_low, top5_high (ImageNet %, empty where
    unknown, and for every non-square input; low/high: the estimate's interval, see
    engine.accuracy and engine.estimate) and accuracy_source
    (published | estimated | empty).
    """
    import numpy as np
    import pandas as pd

    from .accuracy import SOURCES
    from .estimate import ACCURACY_COLUMNS, accuracy_grid

    s = load_spec(spec)
    alist = [Fraction(1), Fraction(3, 4), Fraction(1, 2), Fraction(1, 4)] if alphas is None else list(alphas)
    rlist = [224, 192, 160, 128] if resolutions is None else list(resolutions)
    g = grid_cost(s, alist, rlist, counting, max_configs)
    n_a, n_r = g.macs.shape
    alpha_col = np.repeat(np.array([float(a) for a in g.alphas]), n_r)
    heights = np.array([sides(r)[0] for r in g.resolutions], dtype=np.int64)
    widths = np.array([sides(r)[1] for r in g.resolutions], dtype=np.int64)
    height_col = np.tile(heights, n_a)
    cols: dict[str, object] = {
        "spec": pd.Categorical.from_codes(np.zeros(n_a * n_r, dtype=np.int8), [s.name]),
        "alpha": alpha_col,
        "alpha_exact": _alpha_exact(g.alphas, n_r),
        "resolution": height_col,
    }
    base_h, base_w = sides(s.size)
    if (heights != widths).any() or base_h != base_w:
        # "320x240" (224 where square), each side as a number, and ρ per side.
        cols["resolution"] = pd.Categorical.from_codes(
            np.tile(np.arange(n_r, dtype=np.int32), n_a),
            [resolution_text(r) for r in g.resolutions])
        cols["height"] = height_col
        cols["width"] = np.tile(widths, n_a)
        cols["rho"] = height_col / base_h
        cols["rho_w"] = cols["width"] / base_w
    else:
        cols["rho"] = height_col / s.resolution
    cols.update({
        "macs": g.macs.reshape(-1),
        "params": g.params.reshape(-1),
    })
    total = g.macs.reshape(-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, arr in g.kind_macs.items():
            cols[f"macs_share_{k.value}"] = arr.reshape(-1) / total
    cols["elementwise_ops"] = g.elementwise_ops.reshape(-1)
    cols["activation_elems"] = g.activation_elems.reshape(-1)
    cols["peak_activation_elems"] = g.peak_activation_elems.reshape(-1)
    if dtype is not None:
        from ..dtypes import lookup as lookup_dtype
        from .memory import grid_weight_bytes

        width = lookup_dtype(dtype).bytes
        cols["weight_bytes"] = grid_weight_bytes(s, g.alphas, g.resolutions, dtype).reshape(-1)
        cols["activation_bytes"] = g.activation_elems.reshape(-1) * width
        cols["peak_activation_bytes"] = g.peak_activation_elems.reshape(-1) * width
    # Published and estimated accuracy are for square inputs: none for any other.
    square = [j for j, r in enumerate(g.resolutions) if not isinstance(r, tuple)]
    if len(square) == n_r:
        accuracy, source = accuracy_grid(s, g.alphas, g.resolutions)
    else:
        accuracy = {k: np.full((n_a, n_r), np.nan) for k in ACCURACY_COLUMNS}
        source = np.full((n_a, n_r), -1, dtype=np.int8)
    if square and len(square) < n_r:
        acc_sq, src_sq = accuracy_grid(s, g.alphas, [g.resolutions[j] for j in square])
        for k, v in acc_sq.items():
            accuracy[k][:, square] = v
        source[:, square] = src_sq
    cols.update((k, v.reshape(-1)) for k, v in accuracy.items())
    cols["accuracy_source"] = pd.Categorical.from_codes(source.reshape(-1), list(SOURCES))
    df = pd.DataFrame(cols, copy=False)
    df.attrs["params_convention"] = convention_line(counting, classes_of(s))
    if dtype is not None:
        df.attrs["bytes_dtype"] = dtype
    return df
