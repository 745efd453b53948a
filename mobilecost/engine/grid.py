"""The grid engine: every (α, resolution) of a grid at once, exactly equal to `cost()`.

Channel counts depend only on α and feature-map sizes only on the resolution, so each layer's
Mult-Adds factor as f_l(α) · g_l(resolution), and the op table (`lang.ops`) states every
cost rule in that form: for a convolution f = K·K·(M/g)·N (the spec built at α, rounding
applied exactly) and g = D_F², the output side squared; for a fully connected layer f = M·N and
g = the input side squared (1 after a global pool). The engine walks the spec's channels for
every α at once (`_VectorBuilder`: the builder's own walk and each op's own build on int64
arrays over α, α as exact numerators and denominators; a cohort of α splits where a build
branches apart), applies the op table's size rules to all resolutions at once with integer
numpy, and combines the two as one matrix product per total over groups of layers with equal
spatial rows (`_Sum`), the peak over exactly reduced terms (`_peak_terms`), in cache-sized
blocks of α. Parameters, elementwise ops, activation totals and peaks come out the same way.
Nothing is approximated: tests compare random configurations with the one-configuration engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from ..errors import ConfigError, MobilecostError
from ..lang.kinds import MAC_KINDS, LayerKind
from ..lang.load import load_spec
from ..lang.ops import OPS
from ..lang.spec import Spec, check_expansion, expanded_layers
from ..lang.values import (
    MAX_RESOLUTION,
    Resolution,
    norm_resolution,
    resolution_text,
    sides,
    to_fraction,
)
from .cost import Counting
from .limits import DEFAULT_MAX_CONFIGS, grid_size_error
from .walk import _by_op, _sizes, _Structure, _walk_structures

if TYPE_CHECKING:
    import numpy as np

_INT64_MAX = (1 << 63) - 1


#: The last grid's structures, kept while small (α × layers at most this): a sweep with
#: `--target` walks the same spec over the same α twice (the costs, then the prediction).
_KEEP_ELEMS = 1 << 18
_last: tuple[tuple, list[_Structure]] | None = None


def _structures(spec: Spec, alphas: Sequence[Fraction], resolution: Resolution) -> list[_Structure]:
    """The structures of the grid's α (`_walk_structures`), the last grid's kept."""
    global _last
    key = (spec, tuple(alphas), resolution)
    if _last is not None and _last[0] == key:
        return _last[1]
    out = _walk_structures(spec, key[1], resolution)
    small = sum(st.macs_f.size for st in out) <= _KEEP_ELEMS
    _last = (key, out) if small else None
    _last_maps.clear()
    return out


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


_BLOCK_ELEMS = 1 << 15  # elements of one [α, resolution] block: 256 KiB, inside a core's cache


def _blocks(n_a: int, n_r: int) -> Iterator[slice]:
    """Row blocks of an [α, resolution] result small enough to stay in cache while every term
    is applied to them."""
    step = max(1, _BLOCK_ELEMS // max(1, n_r))
    for lo in range(0, n_a, step):
        yield slice(lo, min(n_a, lo + step))


def distinct_rows(rows: "np.ndarray") -> tuple["np.ndarray", "np.ndarray"]:
    """Distinct rows of an [L, R] array (in first-seen order) and which of them each row is,
    found by hashing each row's bytes: no sort, O(L·R)."""
    import numpy as np

    seen: dict[bytes, int] = {}
    first: list[int] = []
    which = np.empty(len(rows), dtype=np.int64)
    for l in range(len(rows)):
        g = seen.setdefault(rows[l].tobytes(), len(first))
        if g == len(first):
            first.append(l)
        which[l] = g
    return rows[first], which


def _check_bound(f: "np.ndarray", s: "np.ndarray", what: str) -> int:
    """Refuse a sum Σ_l f[α, l]·s[l, r] that could leave 64-bit integers (Python integers: the
    bound itself may not fit); the bound, if not."""
    bound = sum(a * b for a, b in zip(f.max(axis=0, initial=0).tolist(),
                                      s.max(axis=1, initial=0).tolist()))
    if bound > _INT64_MAX:
        raise MobilecostError(f"{what} would exceed 64-bit integers on this grid; "
                              f"sweep smaller α or resolutions")
    return bound


#: Integers below this are exact in float64, and so is every product and partial sum of a
#: matrix product whose bound stays below it, in any order of summation.
_FLOAT_EXACT = 1 << 53
#: m·n·k of a matrix product below which OpenBLAS stays on one thread (its SMP threshold):
#: the sweep is single-threaded, and a busy machine makes threads wait on each other.
_ONE_THREAD_MNK = 1 << 18


class _Sum:
    """Σ_l f[α, l] · s[l, r] as one matrix product: the layers' channel factors summed within
    each group of equal spatial rows ([α, G]), times the G distinct rows ([G, R]). Layers with
    no factor or no spatial term are left out first. Where every value of the product stays
    below 2⁵³ (nearly every grid) the product runs in float64 (BLAS), exactly, and is read back
    as int64; else in int64."""

    def __init__(self, f: "np.ndarray", s: "np.ndarray", what: str) -> None:
        import numpy as np

        bound = _check_bound(f, s, what)
        used = np.flatnonzero(f.any(axis=0) & s.any(axis=1))
        rows, which = distinct_rows(s[used])
        self.f = np.zeros((f.shape[0], len(rows)), dtype=np.int64)  # [α, G]
        if len(used):  # the factors of each group summed: layers sorted by group, then reduceat
            order = np.argsort(which, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(which[order]) != 0])
            self.f[:, which[order][starts]] = np.add.reduceat(f[:, used[order]], starts, axis=1)
        self.rows = rows  # [G, R]
        self.exact_in_float = bound < _FLOAT_EXACT
        if self.exact_in_float:
            self.f, self.rows = self.f.astype(np.float64), rows.astype(np.float64)

    def into(self, out: "np.ndarray", at: slice, buf: "np.ndarray") -> None:
        """Write the sum for α rows `at` of the structure into `out` (int64, [rows, R]);
        `buf` is float64 scratch of at least out's size."""
        import numpy as np

        n_g, n_r = self.rows.shape
        if not n_g:
            out[...] = 0
            return
        if not self.exact_in_float:
            np.matmul(self.f[at], self.rows, out=out)
            return
        matmul_one_thread(self.f[at], self.rows, out, buf)


def matmul_one_thread(a: "np.ndarray", b: "np.ndarray", out: "np.ndarray",
                      buf: "np.ndarray | None" = None) -> None:
    """out = a @ b for float64 a [m, k] and b [k, n], in row blocks small enough that BLAS
    runs each on one thread (`_ONE_THREAD_MNK`). `out` may be int64 (the product is then read
    back into it: exact where the caller has bounded it below 2⁵³), using `buf` (float64, at
    least out's size) as scratch."""
    import numpy as np

    m, (k, n) = a.shape[0], b.shape
    step = max(1, _ONE_THREAD_MNK // max(1, n * k))
    direct = out.dtype == np.float64
    for lo in range(0, m, step):
        hi = min(m, lo + step)
        if direct:
            np.matmul(a[lo:hi], b, out=out[lo:hi])
        else:
            part = buf[:(hi - lo) * n].reshape(hi - lo, n)
            np.matmul(a[lo:hi], b, out=part)
            np.copyto(out[lo:hi], part, casting="unsafe")


def _peak_terms(in_f: "np.ndarray", s_in: "np.ndarray", out_c: "np.ndarray",
                s_out: "np.ndarray") -> tuple[list, list]:
    """The terms of max_l (in_f[α, l]·s_in[l, r] + out_c[α, l]·s_out[l, r]), reduced exactly:

    * a layer whose input and output maps have equal spatial rows (every layer that keeps its
      map size) is one product (in + out)(α) · s(r); those sharing a row give the elementwise
      maximum of their factors times the row (`single`: [(factor [α], row [R]), ...]);
    * any other layer keeps its two products (`double`: [((a, A), (b, B)), ...]);
    * a term that some single term bounds everywhere is dropped: Σ_j a_j(α)·ρ_j ≤ E(α), with
      ρ_j = max_r A_j(r) / S(r), in floating point with a margin (1e-9) far above its rounding,
      so a term dropped is strictly below one kept and the maximum is exact."""
    import numpy as np

    n_l = in_f.shape[1]
    _check_bound(np.concatenate([in_f, out_c], axis=1), np.concatenate([s_in, s_out]),
                 "peak activations")
    rows, which = distinct_rows(np.concatenate([s_in, s_out]))
    w_in, w_out = which[:n_l], which[n_l:]
    envelope: dict[int, "np.ndarray"] = {}
    double: list[tuple[tuple["np.ndarray", int], tuple["np.ndarray", int]]] = []
    for l in range(n_l):
        if w_in[l] == w_out[l]:
            f = in_f[:, l] + out_c[:, l]
            g = int(w_in[l])
            envelope[g] = np.maximum(envelope[g], f) if g in envelope else f
        else:
            double.append(((in_f[:, l], int(w_in[l])), (out_c[:, l], int(w_out[l]))))
    rf = rows.astype(np.float64)
    keep_rows = list(envelope)
    singles = {g: envelope[g].astype(np.float64) for g in keep_rows}
    cover = []  # (row id, factor as float, its row as float, where the row is > 0)
    for g in keep_rows:
        cover.append((g, singles[g] * (1 - 1e-9), rf[g], rf[g] > 0))

    def bounded(parts: list[tuple["np.ndarray", int]], skip: int | None) -> bool:
        for g, e, row, pos in cover:
            if g == skip:
                continue
            total = np.zeros_like(e)
            for a, j in parts:
                if (rf[j][~pos] > 0).any():
                    break
                rho = float(np.max(rf[j][pos] / row[pos], initial=0.0))
                total = total + a * rho
            else:
                if (total <= e).all():
                    return True
        return False

    single = [(envelope[g], rows[g]) for g in keep_rows
              if not bounded([(singles[g], g)], g)]
    double = [((a, rows[i]), (b, rows[j])) for (a, i), (b, j) in double
              if not bounded([(a.astype(np.float64), i), (b.astype(np.float64), j)], None)]
    return single, double


def _peak_into(out: "np.ndarray", single: list, double: list, at: slice,
               tmp: "np.ndarray", tmp2: "np.ndarray") -> None:
    """max over the terms, for α rows `at` of a structure, into `out` (int64, exact)."""
    import numpy as np

    out[...] = 0
    for f, row in single:
        np.multiply(f[at, None], row[None, :], out=tmp)
        np.maximum(out, tmp, out=out)
    for (a, ra), (b, rb) in double:
        np.multiply(a[at, None], ra[None, :], out=tmp)
        np.multiply(b[at, None], rb[None, :], out=tmp2)
        tmp += tmp2
        np.maximum(out, tmp, out=out)


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
    # Build every α at the largest size; too small a resolution is caught per structure.
    try:
        structures = _structures(s, alist, (int(res_h.max()), int(res_w.max())))
    except OverflowError:
        raise MobilecostError(
            f"{s.source}: channel counts or kernel sizes at α up to {float(max(alist)):g} do not "
            f"fit in 64-bit integers; sweep smaller α (`cost` takes any)") from None
    kinds_present = {k for st in structures for k in st.kinds}
    kind_list = [k for k in MAC_KINDS if k in kinds_present]
    names = ["macs", "params", "act", "peak", "elem"] + [k.value for k in kind_list]
    out = {k: np.empty((n_a, n_r), dtype=np.int64) for k in names}
    rows_per_block = min(n_a, max(1, _BLOCK_ELEMS // n_r))
    tmp, tmp2, tmp3 = (np.empty(rows_per_block * n_r, dtype=np.int64) for _ in range(3))
    buf = np.empty(rows_per_block * n_r, dtype=np.float64)
    in_area = (res_h * res_w)[None, :]
    for st in structures:
        outs_h, (spatial_macs, spatial_w, spatial_in, spatial_e) = _maps(s, alist, st, res_h, res_w)
        sums = {
            "params": _Sum(st.weights_f, spatial_w, "parameters"),
            "elem": _Sum(st.elem_f, spatial_e, "elementwise ops"),
            "act": _Sum(np.concatenate([st.input_c[:, None], st.out_c], axis=1),
                        np.concatenate([in_area, outs_h]), "activations"),
        }
        kind_of = np.array([kind_list.index(k) if k in kind_list else -1 for k in st.kinds])
        for i, k in enumerate(kind_list):
            sums[k.value] = _Sum(np.where(kind_of[None, :] == i, st.macs_f, 0), spatial_macs,
                                 "Mult-Adds")
        # Mult-Adds are the kinds' sum where every layer with Mult-Adds has a kind of them.
        by_kinds = not st.macs_f[:, kind_of < 0].any()
        if not by_kinds:
            sums["macs"] = _Sum(st.macs_f, spatial_macs, "Mult-Adds")
        else:
            _check_bound(st.macs_f, spatial_macs, "Mult-Adds")
        extra = st.extra_params(counting)
        single, double = _peak_terms(st.in_f, spatial_in, st.out_c, outs_h)
        del outs_h, spatial_macs, spatial_w, spatial_in, spatial_e
        rows = st.rows
        contiguous = bool(rows[-1] - rows[0] + 1 == len(rows))  # rows are sorted
        for at in _blocks(len(rows), n_r):
            shape = (at.stop - at.start, n_r)
            block, block2, block3 = (t[:shape[0] * n_r].reshape(shape) for t in (tmp, tmp2, tmp3))
            where = slice(rows[0] + at.start, rows[0] + at.stop) if contiguous else rows[at]
            results = {}
            for name, sm in sums.items():
                dest = out[name][where] if contiguous else np.empty(shape, dtype=np.int64)
                sm.into(dest, at, buf)
                results[name] = dest
            if by_kinds:
                dest = out["macs"][where] if contiguous else np.empty(shape, dtype=np.int64)
                dest[...] = 0
                for k in kind_list:
                    dest += results[k.value]
                results["macs"] = dest
            results["params"] += extra[at, None]
            dest = out["peak"][where] if contiguous else block3
            _peak_into(dest, single, double, at, block, block2)
            results["peak"] = dest
            if not contiguous:
                for name, value in results.items():
                    out[name][where] = value
    kind_macs = {k: out[k.value] for k in kind_list}
    return GridCost(s, alist, rlist, out["macs"], out["params"], kind_macs, out["act"],
                    out["peak"], out["elem"])


@dataclass(frozen=True)
class StructureFactors:
    """One structure of a grid (the α that build the same layers) and each per-layer quantity
    of `layer_cost` as its exact factors: quantity(α, l, r) = channel[q][i, l] · spatial[q][l, j]
    for the α of `rows` (indices into the grid's α list) and every resolution j."""

    rows: "np.ndarray"  # [n] indices into the α list, ascending
    kinds: tuple[LayerKind, ...]  # each layer's kind
    channel: dict[str, "np.ndarray"]  # [n, L] int64 channel factors
    spatial: dict[str, "np.ndarray"]  # [L, R] int64 spatial factors

    @property
    def layers(self) -> int:
        return len(self.kinds)


#: The per-layer quantities of `layer_cost` that `grid_factors` gives, each separable.
FACTORED = ("macs", "input_elems", "output_elems", "weight_params", "bias_params")


def grid_factors(spec: Spec | str, alphas: Sequence, resolutions: Sequence) -> list[StructureFactors]:
    """Every structure of the grid with the channel and spatial factors of each per-layer
    quantity (`FACTORED`), by the op table's rules: the grid engine's own walk, for the latency
    model's grid predictions. α as `to_fraction` reads it; resolutions as `norm_resolution`."""
    import numpy as np

    s = load_spec(spec)
    alist = tuple(to_fraction(a) for a in alphas)
    if all(type(r) is int and r > 0 for r in resolutions):  # square sizes: as they are
        res_h = res_w = np.array(resolutions, dtype=np.int64)
    else:
        rlist = tuple(norm_resolution(r) for r in resolutions)
        res_h = np.array([sides(r)[0] for r in rlist], dtype=np.int64)
        res_w = np.array([sides(r)[1] for r in rlist], dtype=np.int64)
    if not alist or not len(res_h):
        raise MobilecostError("the grid is empty: give at least one α and one resolution")
    for a in alist:
        if a.numerator <= 0:
            raise ConfigError(f"alpha must be > 0, got {a}")
    check_expansion(s.body, s.source)
    try:
        structures = _structures(s, alist, (int(res_h.max()), int(res_w.max())))
    except OverflowError:
        raise MobilecostError(
            f"{s.source}: channel counts or kernel sizes at α up to {float(max(alist)):g} do not "
            f"fit in 64-bit integers") from None
    out = []
    for st in structures:
        outs_h, (sm, sw, si, _) = _maps(s, alist, st, res_h, res_w)
        channel = {"macs": st.macs_f, "input_elems": st.in_f, "output_elems": st.out_c,
                   "weight_params": st.weights_f, "bias_params": st.bias_f}
        spatial = {"macs": sm, "input_elems": si, "output_elems": outs_h, "weight_params": sw,
                   "bias_params": np.ones_like(sm)}
        out.append(StructureFactors(st.rows, st.kinds, channel, spatial))
    return out


_last_maps: dict[tuple, tuple] = {}  # the maps of the structures kept in `_last`


def _maps(spec: Spec, alphas: Sequence[Fraction], st: _Structure, res_h: "np.ndarray",
          res_w: "np.ndarray") -> tuple["np.ndarray", tuple["np.ndarray", ...]]:
    """The output areas [L, R] of a structure's layers and their spatial factors (`_spatial`)
    on the grid's sizes, by the size rules (`_sizes`, which refuses a size the builder
    refuses); kept beside the structures that `_structures` keeps (read-only)."""
    key = (spec, st.static, res_h.tobytes(), res_w.tobytes())
    kept = _last is not None and any(st is x for x in _last[1])
    if kept and key in _last_maps:
        return _last_maps[key]
    ins_h, outs_h, ins_w, outs_w = _sizes(spec, alphas[int(st.rows[0])], st.static, res_h, res_w)
    ins_h *= ins_w  # map areas [L, R], in place (ins_w is ins_h itself on a square grid)
    outs_h *= outs_w  # (safe: a square grid's width arrays are never read again)
    out = (outs_h, _spatial(st, ins_h, outs_h))
    if kept and outs_h.size <= _KEEP_ELEMS:
        for arr in (outs_h, *out[1]):
            arr.flags.writeable = False
        _last_maps[key] = out
    return out


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
__all__ = ["distinct_rows", "FACTORED", "grid_cost", "grid_factors", "GridCost", "MAC_KINDS",
           "matmul_one_thread", "MAX_RESOLUTION", "StructureFactors"]
