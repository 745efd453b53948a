"""The grid engine: every (α, resolution) of a grid at once, exactly equal to `cost()`.

Channel counts depend only on α and feature-map sizes only on the resolution, so each layer's
Mult-Adds factor as f_l(α) · g_l(resolution), and the op table (`lang.ops`) states every
cost rule in that form: for a convolution f = K·K·(M/g)·N (the spec built at α, rounding
applied exactly) and g = D_F², the output side squared; for a fully connected layer f = M·N and
g = the input side squared (1 after a global pool). The engine walks the spec's channels once
per α, applies the op table's size rules to all resolutions at once with integer numpy (the
rules are plain arithmetic), and combines the two with int64 products summed over layers, in
chunks of α so that memory stays bounded.
Parameters, elementwise ops, activation totals and peaks come out the same way. Nothing is approximated: a test
compares random configurations with the one-configuration engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Iterable, Sequence

from ..errors import ConfigError, MobilecostError
from ..lang.kinds import MAC_KINDS, LayerKind, act_ops
from ..lang.load import load_spec
from ..lang.ops import OPS
from ..lang.spec import Builder, Layer, Spec, build, check_expansion, expanded_layers
from ..lang.values import Channels, Resolution, norm_resolution, resolution_text, sides, to_fraction
from .cost import Counting
from .limits import DEFAULT_MAX_CONFIGS, grid_size_error

if TYPE_CHECKING:
    import numpy as np

_CHUNK_ELEMS = 1 << 21  # int64 elements in one (α, layer, resolution) block of the peak
_INT64_MAX = (1 << 63) - 1
MAX_RESOLUTION = 1 << 20  # pixels: squared, times channels, still far inside 64 bits


# --------------------------------------------------------------------------- per-α structure

# One light record per layer, as the channel walk emits it: the fields the rules read.
_OP, _KERNEL, _STRIDE, _PAD, _LINE, _SKIP, _IN, _OUT, _GROUPS, _BN, _BIAS, _ACT = range(12)
_STATIC = slice(_OP, _SKIP + 1)  # what a structure is, whatever α and the resolution


class _ChannelBuilder(Builder):
    """The spec builder's own walk (repeats, residuals, inverted residuals, rounding), recording
    tuples instead of Layers and leaving feature-map sizes to the size rules (`_sizes`). About
    3× faster than `build`. The builder's residual check sees channels only here (the map
    size is not tracked); `_sizes` checks the sides."""

    def __init__(self, spec: Spec, alpha: Fraction, resolution: Resolution) -> None:
        super().__init__(spec, alpha, resolution)
        self.memo: dict[Channels, int] = {}

    def ch(self, c: Channels) -> int:
        v = self.memo.get(c)
        if v is None:
            v = self.memo[c] = super().ch(c)
        return v

    def emit(self, op: str, kernel: int, stride: int, out_c: int, *, pad: str = "same",
             groups: int = 1, act: str = "none", bn: bool = False, bias: bool = False,
             skip_from: int | None = None, line: int = 0) -> None:
        if out_c < 1:  # the builder's own error
            super().emit(op, kernel, stride, out_c, pad=pad, groups=groups, act=act, bn=bn,
                         bias=bias, skip_from=skip_from, line=line)
        self.layers.append((op, kernel, stride, pad, line, skip_from, self.channels, out_c, groups,
                            bn, bias, act_ops(act)))
        self.channels = out_c


def _records(spec: Spec, alpha: Fraction, resolution: Resolution) -> list[tuple]:
    b = _ChannelBuilder(spec, alpha, resolution)
    b.walk(spec.body)
    return b.layers


@dataclass(frozen=True)
class _Structure:
    """The layers of one structure (the same ops, windows and lines for every α of it) and their
    channel factors per α, by the op table's cost rules."""

    static: tuple[tuple, ...]  # per layer: op, kernel, stride, pad, line, skip_from
    kinds: tuple[LayerKind, ...]
    rows: "np.ndarray"  # indices into the α list
    macs_f: "np.ndarray"  # [α, L] channel factor of Mult-Adds
    weights_f: "np.ndarray"  # [α, L] channel factor of weights
    extra_params: "np.ndarray"  # [α] FC biases and batchnorm γ, β under the Counting in force
    in_f: "np.ndarray"  # [α, L] channel factor of the elements read
    elem_f: "np.ndarray"  # [α, L] channel factor of the elementwise ops
    out_c: "np.ndarray"  # [α, L]
    input_c: "np.ndarray"  # [α] channels of the input image


class _Columns:
    """Fields of the layers of one op for its cost rules: [α, L_op] arrays for channels, [L_op]
    for kernel and stride (constant over α)."""

    __slots__ = ("kernel", "stride", "in_channels", "out_channels", "groups", "bn", "bias",
                 "act_ops")


def _by_op(static: tuple[tuple, ...]) -> dict[str, "np.ndarray"]:
    """Layer indices of each op of a structure."""
    import numpy as np

    out: dict[str, list[int]] = {}
    for l, st in enumerate(static):
        out.setdefault(st[_OP], []).append(l)
    return {k: np.array(v, dtype=np.int64) for k, v in out.items()}


def _structures(spec: Spec, alphas: Sequence[Fraction], resolution: Resolution,
                counting: Counting) -> list[_Structure]:
    import numpy as np

    groups: dict[tuple, list[int]] = {}
    records = []
    for i, a in enumerate(alphas):
        rec = _records(spec, a, resolution)
        records.append(rec)
        groups.setdefault(tuple(r[_STATIC] for r in rec), []).append(i)
    out = []
    for static, rows in groups.items():
        rec = [records[i] for i in rows]
        col = lambda f: np.array([[r[f] for r in x] for x in rec], dtype=np.int64)  # noqa: E731
        m, n, g, bn, bias = col(_IN), col(_OUT), col(_GROUPS), col(_BN), col(_BIAS)
        acts = col(_ACT)
        n_a, n_l = m.shape[0], len(static)
        macs_f, weights_f, in_f, elem_f = (np.zeros((n_a, n_l), dtype=np.int64) for _ in range(4))
        extra = np.zeros(n_a, dtype=np.int64)
        kernel = np.array([st[_KERNEL] for st in static], dtype=np.int64)
        stride = np.array([st[_STRIDE] for st in static], dtype=np.int64)
        x = _Columns()
        for name, idx in _by_op(static).items():  # each rule once, on all its layers
            rule = OPS[name]
            x.kernel, x.stride = kernel[idx], stride[idx]
            x.in_channels, x.out_channels, x.groups = m[:, idx], n[:, idx], g[:, idx]
            x.bn, x.bias, x.act_ops = bn[:, idx], bias[:, idx], acts[:, idx]
            macs_f[:, idx] = rule.macs_channels(x)
            elem_f[:, idx] = rule.elementwise_channels(x)
            weights_f[:, idx] = rule.weights_channels(x)
            in_f[:, idx] = rule.input_channels(x)
            shape = (n_a, len(idx))
            bn_sets = counting.batchnorm + counting.bn_stats  # γ, β; mean, variance
            if bn_sets:
                extra += bn_sets * np.broadcast_to(rule.bn_params(x), shape).sum(axis=1)
            if counting.biases:
                extra += np.broadcast_to(rule.bias_params(x), shape).sum(axis=1)
        kinds = tuple(OPS[st[_OP]].kind for st in static)
        out.append(_Structure(static, kinds, np.array(rows, dtype=np.int64), macs_f, weights_f,
                              extra, in_f, elem_f, n, m[:, 0].copy()))
    return out


# --------------------------------------------------------------------------- per-resolution sizes

def layer_sides(spec: Spec, alpha: Fraction, layers: Sequence["Layer"],
                res: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """Input and output sides [L, R] of built layers (`build(spec, alpha, r)` at any r) at every
    square resolution of `res`, by the op table's size rules: the grid engine's own size walk."""
    static = tuple((x.op, x.kernel, x.stride, x.pad, x.line, x.skip_from) for x in layers)
    ins, outs, _, _ = _sizes(spec, alpha, static, res, res)
    return ins, outs


def _walk(static: tuple[tuple, ...], side: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """Input and output sides [L, R] along one axis (heights or widths), by the size rules."""
    import numpy as np

    h = side.astype(np.int64)
    ins, outs = [], []
    for op, kernel, stride, pad, _line, skip in static:
        ins.append(h)
        if OPS[op].side_from_skip:  # a scale: the map saved at skip_from
            h = ins[skip]
        else:
            h = np.maximum(OPS[op].out_size(h, kernel, stride, pad), 0)
        outs.append(h)
    return np.stack(ins), np.stack(outs)


def _sizes(spec: Spec, alpha: Fraction, static: tuple[tuple, ...], res_h: "np.ndarray",
           res_w: "np.ndarray") -> tuple["np.ndarray", "np.ndarray", "np.ndarray", "np.ndarray"]:
    """Input and output heights and widths [L, R] of every layer at every input size
    (res_h[r] × res_w[r]), by the op table's size rules, each applied to the two sides on their
    own; a size the builder refuses (a map that vanishes, a residual block that changes the
    map's shape) is refused with the builder's own message."""
    import numpy as np

    ins_h, outs_h = _walk(static, res_h)
    ins_w, outs_w = (ins_h, outs_h) if res_w is res_h else _walk(static, res_w)

    def refuse(j: int, suffix: str, fallback: str) -> ConfigError:
        """The builder's own message for the grid's size j (it refuses the same size), with
        `suffix` added; `fallback` should the builder not refuse it."""
        size = norm_resolution((int(res_h[j]), int(res_w[j])))
        text = resolution_text(size)
        try:
            build(spec, alpha, size)
        except ConfigError as exc:
            return ConfigError(f"{exc} ({suffix.format(text)})")
        return ConfigError(f"{spec.name}: {fallback.format(text)}")

    ok = (outs_h >= 1).all(axis=0) & (outs_w >= 1).all(axis=0)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        raise refuse(int(bad[np.argmax(res_h[bad] * res_w[bad])]),
                     f"{len(bad):,} resolution(s) of the grid are too small, the largest {{}}",
                     "resolution {} leaves an empty feature map")
    for l, (op, _k, _s, _p, line, skip) in enumerate(static):
        if skip is not None and not OPS[op].side_from_skip:
            differs = (ins_h[skip] != ins_h[l]) | (ins_w[skip] != ins_w[l])
            if differs.any():
                raise refuse(int(np.argmax(differs)), "at resolution {} of the grid",
                             f"the residual block of line {line} changes the map's shape at "
                             f"resolution {{}}")
    return ins_h, outs_h, ins_w, outs_w


# --------------------------------------------------------------------------- the grid

@dataclass(frozen=True)
class GridCost:
    """Costs of a grid as [α, resolution] int64 arrays (α in the order given; resolutions as
    `spec.norm_resolution` gives them: an int when square, else (height, width))."""

    spec: Spec
    alphas: tuple[Fraction, ...]
    resolutions: tuple[Resolution, ...]
    macs: "np.ndarray"
    params: "np.ndarray"
    kind_macs: dict[LayerKind, "np.ndarray"]
    activation_elems: "np.ndarray"
    peak_activation_elems: "np.ndarray"
    elementwise_ops: "np.ndarray"  # activations, residual adds, channel-wise scales


def _group_rows(s: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """Distinct rows of an [L, R] array and, per layer, which distinct row it is."""
    import numpy as np

    uniq, inv = np.unique(s, axis=0, return_inverse=True)
    return uniq, inv.reshape(-1)


def _combine(f: "np.ndarray", inv: "np.ndarray", uniq: "np.ndarray") -> "np.ndarray":
    """Σ_l f[α, l] · S[l, r], with layers of equal spatial rows summed first."""
    import numpy as np

    # One pass over the layers sorted by group (a mask per group would be quadratic in the
    # number of layers when every layer has its own map size).
    order = np.argsort(inv, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
    grouped = np.zeros((f.shape[0], uniq.shape[0]), dtype=np.int64)
    grouped[:, inv[order][starts]] = np.add.reduceat(f[:, order], starts, axis=1)
    return grouped @ uniq


def _check_bound(f: "np.ndarray", s: "np.ndarray", what: str) -> None:
    # Python integers: the bound itself may not fit in 64 bits.
    bound = sum(a * b for a, b in zip(f.max(axis=0, initial=0).tolist(),
                                      s.max(axis=1, initial=0).tolist()))
    if bound > _INT64_MAX:
        raise MobilecostError(f"{what} would exceed 64-bit integers on this grid; "
                              f"sweep smaller α or resolutions")


def grid_cost(spec: Spec | str, alphas: Iterable, resolutions: Iterable,
              counting: Counting = Counting(), max_configs: int = DEFAULT_MAX_CONFIGS) -> GridCost:
    """Mult-Adds, parameters and activations of every (α, resolution), as exact integers.

    α is read by `spec.to_fraction`, as everywhere (a float as its 12-digit decimal); a
    resolution by `spec.norm_resolution` (224, (320, 240) or "320x240": height × width)."""
    import numpy as np

    s = load_spec(spec)
    alist = tuple(to_fraction(a) for a in alphas)
    rlist = tuple(norm_resolution(r) for r in resolutions)
    if not alist or not rlist:
        raise MobilecostError("the grid is empty: give at least one α and one resolution")
    for a in alist:
        if a <= 0:
            raise ConfigError(f"alpha must be > 0, got {a}")
    for r in rlist:
        if max(sides(r)) > MAX_RESOLUTION:
            raise ConfigError(f"resolution {resolution_text(r)} is more than a sweep takes "
                              f"({MAX_RESOLUTION:,} px a side; `cost` takes any)")
    check_expansion(s.body, s.source)
    err = grid_size_error(len(alist), len(rlist), max_configs, expanded_layers(s.body))
    if err:
        raise err
    res_h = np.array([sides(r)[0] for r in rlist], dtype=np.int64)
    res_w = np.array([sides(r)[1] for r in rlist], dtype=np.int64)
    n_a, n_r = len(alist), len(rlist)
    macs = np.empty((n_a, n_r), dtype=np.int64)
    params = np.empty((n_a, n_r), dtype=np.int64)
    act = np.empty((n_a, n_r), dtype=np.int64)
    peak = np.empty((n_a, n_r), dtype=np.int64)
    elem = np.empty((n_a, n_r), dtype=np.int64)
    kinds_present = []
    groups = []
    # Build every α at the largest size; too small a resolution is caught per structure.
    try:
        structures = _structures(s, alist, (int(res_h.max()), int(res_w.max())), counting)
    except OverflowError:
        raise MobilecostError(
            f"{s.source}: channel counts or kernel sizes at α up to {float(max(alist)):g} do not "
            f"fit in 64-bit integers; sweep smaller α (`cost` takes any)") from None
    for st in structures:
        a0 = alist[int(st.rows[0])]
        sizes = _sizes(s, a0, st.static, res_h, res_w)
        ins_h, outs_h, ins_w, outs_w = sizes
        del sizes
        ins_h *= ins_w  # map areas [L, R], in place (ins_w is ins_h itself on a square grid)
        outs_h *= outs_w  # (safe: a square grid's width arrays are never read again)
        groups.append((st, ins_h, outs_h))
        del ins_h, outs_h, ins_w, outs_w
        kinds_present += st.kinds
    kind_macs = {k: np.empty((n_a, n_r), dtype=np.int64) for k in MAC_KINDS if k in kinds_present}

    for st, in_area, out_area in groups:
        spatial_macs, spatial_w, spatial_in, spatial_e = _spatial(st, in_area, out_area)  # [L, R]
        out_sq = out_area
        _check_bound(st.macs_f, spatial_macs, "Mult-Adds")
        _check_bound(st.elem_f, spatial_e, "elementwise ops")
        _check_bound(st.weights_f, spatial_w, "parameters")
        _check_bound(st.out_c, out_sq * 3, "activations")
        uniq_m, inv_m = _group_rows(spatial_macs)
        uniq_w, inv_w = _group_rows(spatial_w)
        uniq_o, inv_o = _group_rows(out_sq)
        rows = st.rows
        macs[rows] = _combine(st.macs_f, inv_m, uniq_m)
        params[rows] = _combine(st.weights_f, inv_w, uniq_w) + st.extra_params[:, None]
        for k, arr in kind_macs.items():
            mask = np.array([kind is k for kind in st.kinds])
            f = np.where(mask[None, :], st.macs_f, 0)
            arr[rows] = _combine(f, inv_m, uniq_m)
        act[rows] = (st.input_c[:, None] * (res_h * res_w)[None, :]
                     + _combine(st.out_c, inv_o, uniq_o))
        peak[rows] = _peak(st, spatial_in, out_sq)
        uniq_e, inv_e = _group_rows(spatial_e)
        elem[rows] = _combine(st.elem_f, inv_e, uniq_e)
    return GridCost(s, alist, rlist, macs, params, kind_macs, act, peak, elem)


def _spatial(st: _Structure, ins: "np.ndarray",
             outs: "np.ndarray") -> tuple["np.ndarray", "np.ndarray", "np.ndarray", "np.ndarray"]:
    """Spatial factors [L, R] of Mult-Adds, weights, elements read and elementwise ops, by the
    op table's rules, from the input and output map areas [L, R]."""
    import numpy as np

    sm, sw, si, se = (np.empty_like(ins) for _ in range(4))
    for name, idx in _by_op(st.static).items():  # each rule once, on all its layers
        rule = OPS[name]
        a_in, a_out = ins[idx], outs[idx]
        sm[idx] = rule.macs_spatial(a_in, a_out)
        sw[idx] = rule.weights_spatial(a_in, a_out)
        si[idx] = rule.input_spatial(a_in, a_out)
        se[idx] = rule.elementwise_spatial(a_in, a_out)
    return sm, sw, si, se


def _peak(st: _Structure, in_sq: "np.ndarray", out_sq: "np.ndarray") -> "np.ndarray":
    """max over layers of input + output elements, chunked over α to bound memory."""
    import numpy as np

    in_c = st.in_f
    # Layers with equal channel columns and equal spatial rows give equal terms: keep one.
    keys = {}
    for l in range(in_c.shape[1]):
        key = (in_c[:, l].tobytes(), st.out_c[:, l].tobytes(), in_sq[l].tobytes(), out_sq[l].tobytes())
        keys.setdefault(key, l)
    keep = np.array(sorted(keys.values()))
    a_in, a_out = in_c[:, keep], st.out_c[:, keep]
    s_in, s_out = in_sq[keep], out_sq[keep]
    n_a, n_l, n_r = a_in.shape[0], len(keep), s_in.shape[1]
    out = np.empty((n_a, n_r), dtype=np.int64)
    step = max(1, _CHUNK_ELEMS // max(1, n_l * n_r))
    for lo in range(0, n_a, step):
        hi = min(n_a, lo + step)
        best = a_in[lo:hi, 0, None] * s_in[0] + a_out[lo:hi, 0, None] * s_out[0]
        for l in range(1, n_l):
            np.maximum(best, a_in[lo:hi, l, None] * s_in[l] + a_out[lo:hi, l, None] * s_out[l], out=best)
        out[lo:hi] = best
    return out
__all__ = ["grid_cost", "GridCost", "layer_sides", "MAC_KINDS", "MAX_RESOLUTION"]
