"""What recognised statements fold into: expand/depthwise/(SE)/project runs into `ir` where
they match the op exactly (`fold_inverted_residuals`), and each squeeze-and-excitation's ratio
and squeeze source (`choose_se_ratios`)."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from ..lang.ops import SE_DIVISOR, expanded_width
from ..lang.spec import LayerDef, Residual
from ..lang.values import Channels, Rounding, make_divisible
from .statements import Stmt


def se_ratios(channels: int, squeeze: int) -> tuple[int, ...]:
    """The ratios R with make_divisible(channels / R, 8) = squeeze (R = 1 … channels; a
    larger R gives what R = channels gives). make_divisible is monotone: the R that fit are
    one run."""
    out = []
    for r in range(1, channels + 1):
        w = make_divisible(Fraction(channels, r), SE_DIVISOR)
        if w == squeeze:
            out.append(r)
        elif w < squeeze:
            break
    return tuple(out)


def _in_ratios(block_in: int, squeeze: int) -> tuple[int, ...]:
    """The ratios R with max(1, int(block_in / R)) = squeeze: an inverted residual's SE that
    squeezes from the block's input (`squeeze=in`, MnasNet-A1's and EfficientNet's rule)."""
    return tuple(r for r in range(1, block_in + 1) if max(1, block_in // r) == squeeze)


def _se_contexts(stmts: list[Stmt]):
    """(the SE statement, the input width of the inverted residual it would sit in, or 0) for
    every squeeze-and-excitation: [pw, dw, se] or [dw, se] before it reads the block's input."""
    for k, s in enumerate(stmts):
        if isinstance(s.node, Residual):
            yield from _se_contexts(_stmts_of_residual(s))
        elif isinstance(s.node, LayerDef) and s.node.op == "se":
            ops = [x.node.op if isinstance(x.node, LayerDef) else "" for x in stmts[max(0, k - 2):k]]
            block_in = 0
            if ops[-1:] == ["dw"]:
                first = stmts[k - 2] if ops == ["pw", "dw"] else stmts[k - 1]
                block_in = first.in_shape[0]
            yield s, block_in


def choose_se_ratios(stmts: list[Stmt]) -> None:
    """Give every squeeze-and-excitation its rule and ratio: the one that fits the most blocks
    of the network, MobileNetV3's make_divisible(expanded / R, 8) before MnasNet-A1's
    max(1, int(in / R)) (`squeeze=in`, inside an inverted residual only), then 4, then the
    smallest R; a block it does not fit takes, by the same order, the best of its own. An SE
    that no rule fits keeps no ratio and ends as the unknown operation it was read as."""
    ses = [(s, [("exp", r) for r in s.ratios]
            + ([("in", r) for r in _in_ratios(block_in, s.squeeze)] if block_in else []))
           for s, block_in in _se_contexts(stmts)]
    count = Counter(c for _, fits in ses for c in fits)
    order = lambda c: (count[c], c[0] == "exp", c[1] == 4, -c[1])  # noqa: E731
    if not count:
        return
    best = max(count, key=order)
    for s, fits in ses:
        if not fits:
            continue
        mode, r = best if best in fits else max(fits, key=order)
        s.node = s.node.replace(se=r, squeeze=mode)


def _resolve_squeezes(stmts: list[Stmt]) -> list[Stmt]:
    """Every SE statement left outside an inverted residual with no ratio of the spec's own
    `se` rule is written with its squeeze width, `se R w=S` (MixNet's squeeze from the block
    input after a mixed depthwise); one whose width is not known stays the unknown operation
    it was read as (and a residual block around one is unknown as a whole)."""
    out = []
    for s in stmts:
        if isinstance(s.node, Residual):
            s.inner = _resolve_squeezes(s.inner)
            bad = [x.node for x in s.inner if not isinstance(x.node, (LayerDef, Residual))]
            if bad and s.fallback is not None:
                # a residual block around an operation the spec cannot write is unknown as a
                # whole: all its operations named, all their Mult-Adds kept
                s.fallback.node.advice = bad[0].advice
                out.append(s.fallback)
                continue
            s.node = Residual(tuple(x.node for x in s.inner))
        if (isinstance(s.node, LayerDef) and s.node.op == "se"
                and (s.node.se == 0 or s.node.squeeze != "exp")):
            if s.squeeze:  # the width itself: `se R w=S`, R the nearest ratio
                c = s.in_shape[0]
                s.node = s.node.replace(se=max(1, round(Fraction(c, s.squeeze))),
                                        squeeze="exp", squeeze_width=Channels(s.squeeze))
            else:
                s = s.fallback if s.fallback is not None else s
        out.append(s)
    return out


def fold_inverted_residuals(stmts: list[Stmt], rounding: Rounding = Rounding()) -> list[Stmt]:
    """Write [pw to hidden, dw K sS, (se R,) linear pw to C] (or [dw, (se R,) linear pw]
    without expansion) as `ir` where it builds exactly those layers: batchnorm on the three
    convolutions, the same activation on the first two, none on the projection, the
    squeeze-and-excitation's inner activation ReLU, the hidden width the spec's rounding makes
    of in·T for T = hidden/in, and a residual around it exactly when the stride is 1 and the
    input has C channels."""
    out: list[Stmt] = []
    i = 0
    while i < len(stmts):
        s = stmts[i]
        if isinstance(s.node, Residual):
            d = _ir_of(s.inner, residual=True, rounding=rounding)
            if d is not None:
                out.append(Stmt(d, s.in_shape, s.out_shape, s.layers, s.names))
            else:
                inner = fold_inverted_residuals(s.inner, rounding)
                out.append(Stmt(Residual(tuple(x.node for x in inner)), s.in_shape,
                                s.out_shape, s.layers, s.names, inner, fallback=s.fallback))
            i += 1
            continue
        for n in (4, 3, 2):
            run = stmts[i:i + n]
            if len(run) == n:
                d = _ir_of(run, residual=False, rounding=rounding)
                if d is not None:
                    out.append(Stmt(d, run[0].in_shape, run[-1].out_shape,
                                    sum(r.layers for r in run), [x for r in run for x in r.names]))
                    i += n
                    break
        else:
            out.append(s)
            i += 1
    return out


def _stmts_of_residual(s: Stmt) -> list[Stmt]:
    return s.inner


def _ir_of(run: list[Stmt], residual: bool, rounding: Rounding = Rounding()) -> LayerDef | None:
    if not run or not all(isinstance(r.node, LayerDef) for r in run):
        return None
    ds = [r.node for r in run]
    ops = [d.op for d in ds]
    se = None
    if "se" in ops[1:-1]:
        se = ds[ops.index("se")]
        if ops.index("se") != len(ops) - 2:
            return None  # an ir's squeeze-and-excitation comes after the depthwise
        ds = [d for d in ds if d.op != "se"]
        ops = [d.op for d in ds]
    if ops == ["pw", "dw", "pw"]:
        expand, dw, proj = ds
    elif ops == ["dw", "pw"]:
        expand, (dw, proj) = None, ds
    else:
        return None
    cin = run[0].in_shape[0]
    cout = proj.channels.base
    if not all(d.bn and not d.own_bias and d.groups == 1 for d in ds if d.op != "dw") or \
            not all(d.bn for d in ds) or proj.act != "none" or \
            dw.pad not in ("same", "tf") or proj.stride != 1:
        return None
    if expand is not None:
        if expand.stride != 1 or expand.act != dw.act:
            return None
        hidden = expand.channels.base
        t = Fraction(hidden, cin)
        if t == 1 or expanded_width(cin, t, rounding) != hidden:
            return None
        t = t.numerator if t.denominator == 1 else t
    else:
        t = 1
    if residual != (dw.stride == 1 and cin == cout):
        return None
    if se is not None and se.se == 0:
        return None  # no rule fits its squeeze width
    return LayerDef("ir", kernel=dw.kernel, stride=dw.stride, channels=Channels(cout),
                    act=dw.act, expand=t, se=se.se if se else 0,
                    gate=se.gate if se else "hsigmoid", squeeze=se.squeeze if se else "exp",
                    se_act=(se.act or "relu") if se else "relu", pad=dw.pad)
