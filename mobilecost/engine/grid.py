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
from ..lang.kinds import MAC_KINDS, LayerKind, act_ops
from ..lang.load import load_spec
from ..lang.ops import OPS
from ..lang.spec import Builder, Layer, Spec, build, check_expansion, expanded_layers
from ..lang.values import (
    MAX_RESOLUTION,
    Channels,
    Resolution,
    norm_resolution,
    resolution_text,
    sides,
    to_fraction,
)
from .cost import Counting
from .limits import DEFAULT_MAX_CONFIGS, grid_size_error

if TYPE_CHECKING:
    import numpy as np

    from ..lang.spec import LayerDef

_INT64_MAX = (1 << 63) - 1


# --------------------------------------------------------------------------- the channel walk

# One light record per layer, as the channel walk emits it: the fields the rules read.
_OP, _KERNEL, _STRIDE, _PAD, _LINE, _SKIP, _IN, _OUT, _GROUPS, _BN, _BIAS, _ACT = range(12)
_STATIC = slice(_OP, _SKIP + 1)  # what a structure is, whatever α and the resolution
_CHANNEL_FIELDS = (_IN, _OUT, _GROUPS, _BN, _BIAS, _ACT)  # may differ from α to α


class _ChannelBuilder(Builder):
    """The spec builder's own walk (repeats, residuals, inverted residuals, rounding) at one α,
    recording tuples instead of Layers and leaving feature-map sizes to the size rules
    (`_sizes`): the exact fallback of the vectorised walk, for an op that declares its build
    not array-safe (`Op.vector_channels`), α past 64-bit integers, or a grid the builder
    refuses (its error is the builder's own). The builder's residual check sees channels only
    here (the map size is not tracked); `_sizes` checks the sides."""

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


class _Split(BaseException):
    """An op's build branches on channel counts that differ across the α of a cohort; `mask`
    says which α go which way. (A BaseException, so that no `except Exception` in an op's
    build can take it for its own error.)"""

    def __init__(self, mask: "np.ndarray") -> None:
        super().__init__("the cohort's α branch apart")
        self.mask = mask


class _NotVector(Exception):
    """The vectorised walk cannot go on (a value it cannot hold as one integer per α, a count
    the builder refuses): the per-α walk takes over."""


_VECTOR_TYPE = None


def _vector_type() -> type:
    """The type of a channel count of the vectorised walk: an int64 array with one element per
    α of a cohort whose truth value, where an op's build branches on it (`if`, `max`, `==` of a
    residual), is its elements' common one; where they differ, the cohort splits (`_Split`) and
    each part is walked again, so every branch sees one answer."""
    global _VECTOR_TYPE
    if _VECTOR_TYPE is None:
        import numpy as np

        class AlphaVector(np.ndarray):
            def __bool__(self) -> bool:
                a = self.view(np.ndarray)
                if a.all():
                    return True
                if not a.any():
                    return False
                raise _Split(a.astype(bool))

            # An op's build treats a channel count as an int: `x += y` makes a new value and
            # leaves every other name of the old one alone (`[c // n] * n` holds one array
            # twice; in place, a `+=` on one would change both, and the builder's own count).
            def __iadd__(self, other):
                return self + other

            def __isub__(self, other):
                return self - other

            def __imul__(self, other):
                return self * other

            def __ifloordiv__(self, other):
                return self // other

            def __imod__(self, other):
                return self % other

        _VECTOR_TYPE = AlphaVector
    return _VECTOR_TYPE


class _VectorBuilder(Builder):
    """The spec builder's walk at every α of a cohort at once: channel counts are integer
    arrays, one element per α (`_vector_type`), rounded by `Rounding.apply_ratio` on α's
    numerators and denominators, and every op's own build runs on them unchanged (the op
    table's channel rules are integer arithmetic: `lang.values.make_divisible_ratio`,
    `round_ratio`). A branch that goes both ways splits the cohort (`_Split`)."""

    def __init__(self, spec: Spec, num: "np.ndarray", den: "np.ndarray",
                 resolution: Resolution) -> None:
        vec = _vector_type()
        self.spec, self.resolution = spec, resolution
        self.alpha = None  # not one α: the builder's own messages come from the per-α walk
        self.num, self.den = num.view(vec), den.view(vec)
        self.size, self.width = sides(resolution)
        self.layers = []
        self.memo: dict[Channels, object] = {}
        self.channels = self._counted(spec.rounding.apply_ratio(spec.in_channels, self.num,
                                                                self.den))

    def _counted(self, c: object) -> object:
        """A channel count as the walk keeps it: an int (the same at every α) or an int64
        array of the cohort's length; anything else stops the vectorised walk."""
        import numpy as np

        if isinstance(c, int) and not isinstance(c, bool):
            return c
        if (isinstance(c, np.ndarray) and c.dtype == np.int64 and c.shape == self.num.shape):
            return c.view(_vector_type())
        if isinstance(c, np.integer):
            return int(c)
        raise _NotVector(f"a channel count of type {type(c).__name__}")

    def ch(self, c: Channels) -> object:
        v = self.memo.get(c)
        if v is None:
            v = self.memo[c] = self._counted(self.spec.rounding.apply_ratio(c, self.num, self.den))
        return v

    def layer(self, d: "LayerDef") -> None:
        if not OPS[d.op].vector_channels:
            raise _NotVector(f"op {d.op!r} builds one α at a time")
        super().layer(d)

    def residual(self, body, line: int) -> None:
        import numpy as np

        start, before = len(self.layers), self.channels
        body()
        if np.any(np.asarray(self.channels) != np.asarray(before)):
            raise _NotVector("a residual block changes the channels")  # the builder's error
        self.emit("add", 1, 1, before, skip_from=start, line=line)

    def emit(self, op: str, kernel: int, stride: int, out_c: object, *, pad: str = "same",
             groups: object = 1, act: str = "none", bn: object = False, bias: object = False,
             skip_from: int | None = None, line: int = 0) -> None:
        import numpy as np

        for v in (kernel, stride, skip_from):
            if not (v is None or type(v) is int):
                raise _NotVector("a kernel, stride or skip that is not one int for the cohort")
        out_c, groups = self._counted(out_c), self._counted(groups)
        if np.any(np.asarray(out_c) < 1):
            raise _NotVector("a channel count below 1")  # the builder's error, per α
        self.layers.append((op, kernel, stride, pad, line, skip_from, self.channels, out_c, groups,
                            bn, bias, act_ops(act)))
        self.channels = out_c


def _alpha_ratios(alphas: Sequence[Fraction]) -> tuple["np.ndarray", "np.ndarray"] | None:
    """Numerators and denominators of the α as int64 arrays; None if one does not fit."""
    import numpy as np

    try:
        return (np.array([a.numerator for a in alphas], dtype=np.int64),
                np.array([a.denominator for a in alphas], dtype=np.int64))
    except OverflowError:
        return None


def _vector_walk(spec: Spec, alphas: Sequence[Fraction],
                 resolution: Resolution) -> list[tuple["np.ndarray", list[tuple]]] | None:
    """(rows, records) of each cohort of α that builds one structure, all α of a cohort walked
    at once (records hold int64 arrays over the cohort); None where the vectorised walk cannot
    take the spec or the grid (then `_scalar_walk` does, exactly, or raises the builder's own
    error). A cohort splits only where an op's build branches apart across its α."""
    import numpy as np

    ratios = _alpha_ratios(alphas)
    if ratios is None:
        return None
    num, den = ratios
    todo = [np.arange(len(alphas))]
    done = []
    while todo:
        rows = todo.pop()
        b = _VectorBuilder(spec, num[rows], den[rows], resolution)
        try:
            b.walk(spec.body)
        except _Split as split:
            if split.mask.shape != rows.shape:  # a branch on something else than the cohort's α
                return None
            todo += [rows[~split.mask], rows[split.mask]]
            continue
        except (_NotVector, MobilecostError, ArithmeticError, TypeError, ValueError):
            return None
        done.append((rows, b.layers))
    return done


def _scalar_walk(spec: Spec, alphas: Sequence[Fraction],
                 resolution: Resolution) -> list[tuple["np.ndarray", list[tuple]]]:
    """The same as `_vector_walk`, one α at a time (Python integers, exact at any size): each
    α is a cohort of one, its records plain ints."""
    import numpy as np

    out = []
    for i, a in enumerate(alphas):
        b = _ChannelBuilder(spec, a, resolution)
        b.walk(spec.body)
        out.append((np.array([i], dtype=np.int64), b.layers))
    return out


def _channel_walk(spec: Spec, alphas: Sequence[Fraction],
                  resolution: Resolution) -> list[tuple["np.ndarray", list[tuple]]]:
    """(rows, records) per cohort of α: vectorised where it can be, else one α at a time."""
    walked = _vector_walk(spec, alphas, resolution)
    return _scalar_walk(spec, alphas, resolution) if walked is None else walked


@dataclass(frozen=True)
class _Structure:
    """The layers of one structure (the same ops, windows and lines for every α of it) and their
    channel factors per α, by the op table's cost rules."""

    static: tuple[tuple, ...]  # per layer: op, kernel, stride, pad, line, skip_from
    kinds: tuple[LayerKind, ...]
    rows: "np.ndarray"  # indices into the α list
    macs_f: "np.ndarray"  # [α, L] channel factor of Mult-Adds
    weights_f: "np.ndarray"  # [α, L] channel factor of weights
    bias_f: "np.ndarray"  # [α, L] biases (channels only)
    bn_f: "np.ndarray"  # [α, L] batchnorm γ, β (channels only)
    in_f: "np.ndarray"  # [α, L] channel factor of the elements read
    elem_f: "np.ndarray"  # [α, L] channel factor of the elementwise ops
    out_c: "np.ndarray"  # [α, L]
    input_c: "np.ndarray"  # [α] channels of the input image

    def extra_params(self, counting: Counting) -> "np.ndarray":
        """[α] FC and SE biases and batchnorm γ, β (and statistics) under `counting`."""
        extra = (counting.batchnorm + counting.bn_stats) * self.bn_f.sum(axis=1)
        if counting.biases:
            extra = extra + self.bias_f.sum(axis=1)
        return extra


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


#: Channel factors past this are refused: a product with a spatial factor is checked against
#: 64 bits later, but a factor must first be computed exactly.
_FACTOR_LIMIT = 1 << 62


def _factor(rule, x: _Columns, xf: _Columns, shape: tuple[int, int]) -> "np.ndarray":
    """One channel rule of an op on its layers' columns ([α, L_op] int64), checked against 64
    bits by the same rule on float64 columns (rules are products and sums of the fields, so
    the float value bounds the exact one where the int64 one could have wrapped)."""
    import numpy as np

    exact = np.broadcast_to(rule(x), shape)
    if float(np.abs(np.broadcast_to(rule(xf), shape)).max(initial=0)) >= _FACTOR_LIMIT:
        raise OverflowError("channel factor past 64 bits")
    return exact


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


def _walk_structures(spec: Spec, alphas: Sequence[Fraction],
                     resolution: Resolution) -> list[_Structure]:
    import numpy as np

    cohorts: dict[tuple, list[tuple["np.ndarray", list[tuple]]]] = {}
    for rows, records in _channel_walk(spec, alphas, resolution):
        cohorts.setdefault(tuple(r[_STATIC] for r in records), []).append((rows, records))
    out = []
    for static, parts in cohorts.items():
        rows = np.concatenate([p[0] for p in parts])
        n_a, n_l = len(rows), len(static)
        cols = {f: np.empty((n_a, n_l), dtype=np.int64) for f in _CHANNEL_FIELDS}
        at = 0
        for part_rows, records in parts:
            k = len(part_rows)
            for f, arr in cols.items():
                block = arr[at:at + k]
                for l, r in enumerate(records):
                    block[:, l] = r[f]
            at += k
        order = np.argsort(rows, kind="stable")  # α in the grid's order: blocks are slices
        rows = rows[order]
        cols = {f: arr[order] for f, arr in cols.items()}
        m, n = cols[_IN], cols[_OUT]
        macs_f, weights_f, in_f, elem_f, bias_f, bn_f = (
            np.zeros((n_a, n_l), dtype=np.int64) for _ in range(6))
        kernel = np.array([st[_KERNEL] for st in static], dtype=np.int64)
        stride = np.array([st[_STRIDE] for st in static], dtype=np.int64)
        x, xf = _Columns(), _Columns()
        for name, idx in _by_op(static).items():  # each rule once, on all its layers
            rule = OPS[name]
            for c, dtype in ((x, np.int64), (xf, np.float64)):
                c.kernel, c.stride = kernel[idx].astype(dtype), stride[idx].astype(dtype)
                c.in_channels, c.out_channels = m[:, idx].astype(dtype), n[:, idx].astype(dtype)
                c.groups, c.bn = cols[_GROUPS][:, idx].astype(dtype), cols[_BN][:, idx].astype(dtype)
                c.bias, c.act_ops = cols[_BIAS][:, idx].astype(dtype), cols[_ACT][:, idx].astype(dtype)
            shape = (n_a, len(idx))
            macs_f[:, idx] = _factor(rule.macs_channels, x, xf, shape)
            elem_f[:, idx] = _factor(rule.elementwise_channels, x, xf, shape)
            weights_f[:, idx] = _factor(rule.weights_channels, x, xf, shape)
            in_f[:, idx] = _factor(rule.input_channels, x, xf, shape)
            bn_f[:, idx] = _factor(rule.bn_params, x, xf, shape)
            bias_f[:, idx] = _factor(rule.bias_params, x, xf, shape)
        kinds = tuple(OPS[st[_OP]].kind for st in static)
        out.append(_Structure(static, kinds, rows, macs_f, weights_f, bias_f, bn_f, in_f, elem_f,
                              n, m[:, 0].copy()))
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


__all__ = ["FACTORED", "grid_cost", "grid_factors", "GridCost", "layer_sides", "MAC_KINDS",
           "distinct_rows", "matmul_one_thread",
           "MAX_RESOLUTION", "StructureFactors"]
