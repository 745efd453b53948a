"""The formula command: a spec's totals as polynomials in α and ρ."""

from __future__ import annotations

import sys

from ..cost import Counting
from .common import BnOpt, FcBiasOpt, SpecArg, command


@command("formula")
def formula_cmd(spec: SpecArg = "mobilenet_v1", fc_bias: FcBiasOpt = False, bn: BnOpt = False) -> None:
    """Total Mult-Adds and parameters as polynomials in α and ρ, read off the spec.

    ρ is the resolution over the spec's base resolution. The polynomials are exact where
    channel rounding does not bite; the output says where that is.

    Example: mobilecost formula mobilenet_v1
    """
    from ..sweepreport import formula_text

    sys.stdout.write(formula_text(spec, Counting(fc_bias, bn)))
