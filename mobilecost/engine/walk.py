"""The grid engine's walks: the spec's channels at every α of a grid (`_walk_structures`:
the builder's own walk run once on integer arrays over α, cohorts where a build branches, the
per-α walk as the exact fallback) and its feature-map sides at every resolution (`_sizes`, the
op table's size rules on integer arrays). `engine.grid` combines the two."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Sequence

from ..errors import ConfigError, MobilecostError
from ..lang.kinds import LayerKind, act_ops
from ..lang.ops import OPS
from ..lang.spec import Builder, Layer, Spec, build
from ..lang.values import (
    Channels,
    Resolution,
    norm_resolution,
    resolution_text,
    sides,
)
from .cost import Counting

if TYPE_CHECKING:
    import numpy as np

    from ..lang.spec import LayerDef


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
