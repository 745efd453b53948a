"""The report of `formula`: a spec's total Mult-Adds and parameters as polynomials in α and ρ
(`engine.closedform`), as text (the polynomials, where they are exact, three checks against
the engine) or as data (one row per term)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from ..engine.cost import Counting
from ..errors import MobilecostError
from ..util import format_number
from .report import Column, Report

if TYPE_CHECKING:  # pragma: no cover
    from ..lang.spec import Spec


def formula_report(spec: "Spec | str", counting: Counting = Counting(), line: str = "") -> Report:
    """The polynomials' terms as data: quantity (macs, params), coefficient, the powers of α
    and ρ; the text of `formula_text` in the notes."""
    from ..engine.closedform import closed_form
    from ..lang.load import load_spec

    s = load_spec(spec)
    f = closed_form(s, counting)
    rows = [{"spec": s.name, "quantity": q, "coefficient": t.coef, "alpha_power": t.alpha_power,
             "rho_power": t.rho_power}
            for q, poly in (("macs", f.macs), ("params", f.params))
            for t in sorted(poly.terms, key=lambda t: (-t.rho_power, t.alpha_power))]
    notes = [x.strip() for x in formula_text(s, counting).split("\n") if x.strip()][1:]
    return Report(f"{s.name}: totals as polynomials in α and ρ = resolution / {s.resolution}", [
        Column("spec", "Spec", numeric=False), Column("quantity", "Quantity", numeric=False),
        Column("coefficient", "Coefficient"), Column("alpha_power", "α power"),
        Column("rho_power", "ρ power")], rows, notes + ([line] if line else []))


def formula_text(spec: "Spec | str", counting: Counting = Counting()) -> str:
    """Total Mult-Adds and parameters as polynomials in α and ρ, where they are exact, and
    three checks against the engine."""
    from ..engine.closedform import closed_form
    from ..engine.cost import cost
    from ..lang.load import load_spec

    s = load_spec(spec)
    f = closed_form(s, counting)
    out = [f"{s.name}: totals as polynomials in α and ρ = resolution / {s.resolution}\n\n",
           f"  {f.macs.format('MACs')}\n", f"  {f.params.format('params')}\n\n"]
    rule = ("int(α·c) rounds channel counts down" if s.rounding.rule == "int"
            else f"channel counts round to multiples of {s.rounding.divisor}")
    step = ("a whole number" if f.alpha_step == 1 else
            f"a multiple of {format_number(f.alpha_step) if f.alpha_step.denominator == 1 else f.alpha_step}")
    floor = f" and α ≥ {f.min_alpha}" if f.min_alpha > f.alpha_step else ""
    whole = ("whole" if s.rounding.rule == "int" else f"a multiple of {s.rounding.divisor}")
    out.append(f"Exact where α is {step}{floor} (α·c is then {whole} for every scaled "
               f"channel count c) and the resolution is a multiple of "
               f"{f.resolution_step} (every feature map is then exactly ρ times its size at "
               f"{s.resolution}). Elsewhere {rule} and SAME padding rounds feature maps up, and "
               f"the polynomial is an approximation; `mobilecost cost` gives the exact count.\n")
    checks = [(Fraction(3, 4), s.resolution * 6 // 7), (Fraction(1), s.resolution),
              (Fraction(3, 10), s.resolution - 23)]
    out.append("\n")
    for a, r in checks:
        if r < 1:
            continue
        try:
            exact = cost(s, a, r, counting).macs
        except MobilecostError:
            continue
        poly = f.macs(a, Fraction(r, s.resolution))
        tag = "exact" if f.exact_at(a, r) else "rounding bites"
        diff = "" if poly == exact else f" ({float(poly - exact) / exact:+.2%})"
        out.append(f"  α = {format_number(a)}, resolution {r} ({tag}): polynomial "
                   f"{float(poly):,.0f}, engine {exact:,}{diff}\n")
    if any("+" in line.split("#")[0] for line in s.format().splitlines()):
        out.append("\nChannels written 'c+' (never below c) count as fixed: the closed form is "
                   "for α ≤ 1.\n")
    return "".join(out)


__all__ = ["formula_report", "formula_text"]
