"""The formula command: a spec's totals as polynomials in α and ρ."""

from __future__ import annotations

import sys

from .common import BnOpt, ClassesOpt, ConventionOpt, FcBiasOpt, SpecArg, command, counting_options


@command("formula")
def formula_cmd(spec: SpecArg = "mobilenet_v1", convention: ConventionOpt = None,
                fc_bias: FcBiasOpt = False, bn: BnOpt = False,
                classes: ClassesOpt = None) -> None:
    """Total Mult-Adds and parameters as polynomials in α and ρ, read off the spec.

    ρ is the resolution over the spec's base resolution. The polynomials are exact where
    channel rounding does not bite; the output says where that is.

    Example: mobilecost formula mobilenet_v1
    """
    from ..reports.sweep import formula_text

    s, counting, line = counting_options(spec, convention, fc_bias, bn, classes)
    sys.stdout.write(formula_text(s, counting) + f"\n{line[0].upper()}{line[1:]}.\n")
