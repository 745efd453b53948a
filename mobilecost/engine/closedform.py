"""Closed forms: total Mult-Adds and parameters as polynomials in α and ρ, derived from a spec.

Every layer's Mult-Adds are K·K·(M/g)·N·D_F² (an FC layer: D_in²·M·N). With channels scaled
ideally (c -> α·c, no rounding) each channel factor is α⁰, α¹ or α², and with feature maps scaled
ideally (D -> ρ·D) each spatial factor is ρ⁰ or ρ². So the totals are polynomials; for MobileNet
v1, MACs(α, ρ) = ρ²·(a·α + b·α²) + c·α: the first conv and the depthwise layers are linear in α,
the pointwise layers quadratic, and the classifier (after a global pool) has no ρ.

The exponents are read off the spec, not assumed: the spec is built ideally (rounding 'int',
which is exact at α = 2) at α = 1 and α = 2, and at the base resolution and twice it; each layer's
factor must scale by 1, 2 or 4. The polynomial equals the exact engine where rounding does not
bite: where α·c is a whole number (a multiple of the rounding divisor) for every scaled channel
count c, and where the resolution is a multiple of the network's total stride. Channels written
'c+' (never below c) count as fixed: the closed form is for α ≤ 1.

A spec with squeeze-and-excitation has no closed form: its squeeze width make_divisible(c/r, 8)
jumps by 8 channels at a time whatever the spec's rounding (c/r = 10 gives 16, 12 gives 16, 30
gives 32), so no polynomial in α follows it; `closed_form` refuses such a spec.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction
from math import gcd

from ..errors import MobilecostError
from ..lang.kinds import LayerKind
from ..lang.load import load_spec
from ..lang.ops import OPS, areas
from ..lang.spec import LayerDef, Node, Repeat, Residual, Spec, build, iter_layer_defs
from ..lang.values import Channels, Rounding, sides
from .cost import Counting


@dataclass(frozen=True, slots=True)
class Term:
    coef: int
    alpha_power: int
    rho_power: int


@dataclass(frozen=True)
class Polynomial:
    """Σ coef · α^p · ρ^q with integer coefficients."""

    terms: tuple[Term, ...]

    def coefficient(self, alpha_power: int, rho_power: int) -> int:
        return sum(t.coef for t in self.terms if (t.alpha_power, t.rho_power) == (alpha_power, rho_power))

    def __call__(self, alpha: Fraction | float, rho: Fraction | float) -> Fraction | float:
        return sum(t.coef * alpha ** t.alpha_power * rho ** t.rho_power for t in self.terms)

    def format(self, name: str) -> str:
        """E.g. 'MACs(α, ρ) = ρ²·(a·α + b·α²) + c·α'."""
        by_rho: dict[int, list[Term]] = {}
        for t in sorted(self.terms, key=lambda t: (-t.rho_power, t.alpha_power)):
            by_rho.setdefault(t.rho_power, []).append(t)
        parts = []
        for q, terms in by_rho.items():
            inner = " + ".join(_mono(t.coef, t.alpha_power) for t in terms)
            if q == 0:
                parts.append(inner)
            else:
                rho = "ρ" + _SUP.get(q, f"^{q}")
                parts.append(f"{rho}·({inner})" if len(terms) > 1 else f"{rho}·{inner}")
        return f"{name}(α, ρ) = " + (" + ".join(parts) if parts else "0")


_SUP = {1: "", 2: "²", 3: "³", 4: "⁴"}


def _mono(coef: int, p: int) -> str:
    if p == 0:
        return f"{coef:,}"
    return f"{coef:,}·α{_SUP.get(p, f'^{p}')}"


@dataclass(frozen=True)
class ClosedForm:
    spec: str
    macs: Polynomial
    params: Polynomial
    alpha_step: Fraction  # exact when α is a multiple of this
    resolution_step: int  # and the resolution a multiple of this
    min_alpha: Fraction  # and α at least this (a rounding minimum does not bite)
    base_resolution: int

    def exact_at(self, alpha: Fraction, resolution: int) -> bool:
        return (alpha / self.alpha_step).denominator == 1 and resolution % self.resolution_step == 0 \
            and alpha >= self.min_alpha


def _fixed_atleast(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
    out: list[Node] = []
    for n in nodes:
        if isinstance(n, Repeat):
            out.append(dataclasses.replace(n, body=_fixed_atleast(n.body)))
        elif isinstance(n, Residual):
            out.append(dataclasses.replace(n, body=_fixed_atleast(n.body)))
        elif isinstance(n, LayerDef) and n.channels is not None and n.channels.mode == "atleast":
            out.append(n.replace(channels=Channels(n.channels.base, "fixed")))
        else:
            out.append(n)
    return tuple(out)


def _power(ratio: Fraction, base: int, what: str, where: str) -> int:
    for p in range(3):
        if ratio == base ** p:
            return p
    raise MobilecostError(f"{where}: {what} does not scale as a power; no closed form for this spec")


def closed_form(spec: Spec | str, counting: Counting = Counting()) -> ClosedForm:
    """The polynomials of a spec, read off ideal builds at α ∈ {1, 2}, resolution ∈ {R, 2R}."""
    s = load_spec(spec)
    for d in iter_layer_defs(s.body):
        if d.op == "se" or d.se:
            raise MobilecostError(
                f"{s.source}:{d.line}: squeeze-and-excitation's width make_divisible(c/{d.se}, 8) "
                f"follows no polynomial in α; no closed form for this spec (`mobilecost cost` "
                f"and `sweep` count it exactly)")
    ideal = dataclasses.replace(s, rounding=Rounding("int"), body=_fixed_atleast(s.body),
                                in_channels=(Channels(s.in_channels.base, "fixed")
                                             if s.in_channels.mode == "atleast" else s.in_channels))
    base = s.resolution
    h0, w0 = sides(s.size)  # ρ scales both sides: a spatial factor (an area) by ρ² per degree
    l1, l2, r2 = build(ideal, 1, s.size), build(ideal, 2, s.size), build(ideal, 1, (2 * h0, 2 * w0))
    sig = [(x.op, x.line) for x in l1]
    if [(x.op, x.line) for x in l2] != sig or [(x.op, x.line) for x in r2] != sig:
        raise MobilecostError(f"{s.name}: the layers change with α or resolution; no closed form")
    macs: dict[tuple[int, int], int] = {}
    params: dict[tuple[int, int], int] = {}
    scaled: set[int] = set()
    stride = 1

    def add(d: dict, key: tuple[int, int], v: int) -> None:
        if v:
            d[key] = d.get(key, 0) + v

    for a, b, c in zip(l1, l2, r2):
        where = f"{s.source}:{a.line}"
        rule = OPS[a.op]
        for x1, x2 in ((a.in_channels, b.in_channels), (a.out_channels, b.out_channels)):
            if x2 == 2 * x1:
                scaled.add(x1)
        # Each cost rule is a channel factor (α: compare builds a, b) times a spatial factor
        # (ρ: compare builds a, c).
        for channels, spatial, total in ((rule.macs_channels, rule.macs_spatial, macs),
                                         (rule.weights_channels, rule.weights_spatial, params)):
            f1, f2 = channels(a), channels(b)
            if f1:
                g1 = spatial(*areas(a))
                g2 = spatial(*areas(c))
                p = _power(Fraction(f2, f1), 2, "the channel factor", where)
                q = 2 * _power(Fraction(g2, g1), 4, "the feature map", where)
                add(total, (p, q), f1 * g1)
        for on, what, extra in ((counting.biases, "bias", rule.bias_params),
                                (counting.batchnorm, "batchnorm", rule.bn_params),
                                (counting.bn_stats, "batchnorm statistics", rule.bn_params)):
            e1 = extra(a) if on else 0
            if e1:
                add(params, (_power(Fraction(extra(b), e1), 2, what, where), 0), e1)
        for side0, out1, out2 in ((h0, a.out_size, c.out_size), (w0, a.out_width, c.out_width)):
            if a.kind is LayerKind.POOL and out1 != 1 and 2 * out1 != out2:
                raise MobilecostError(f"{where}: a pooling layer does not scale with ρ; no closed form")
            if out1 > 1:
                stride = max(stride, -(-side0 // out1))
    g = 0
    for ch in scaled:
        g = gcd(g, ch)
    rounding = s.rounding
    divisor = rounding.divisor if rounding.rule == "multiple" else 1
    alpha_step = Fraction(divisor, g) if g else Fraction(1)
    floor = rounding.min if rounding.rule == "int" else divisor
    min_alpha = Fraction(floor, min(scaled)) if scaled else Fraction(0)

    def poly(d: dict) -> Polynomial:
        return Polynomial(tuple(Term(v, p, q) for (p, q), v in sorted(d.items(), key=lambda kv: (-kv[0][1], kv[0][0]))))

    return ClosedForm(s.name, poly(macs), poly(params), alpha_step, stride, min_alpha, base)


__all__ = ["ClosedForm", "Polynomial", "Term", "closed_form"]
