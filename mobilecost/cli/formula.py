"""The formula command: a spec's totals as polynomials in α and ρ."""

from __future__ import annotations

import sys

from ..reports.report import Format
from .common import (
    BiasesOpt,
    BnOpt,
    ClassesOpt,
    ConventionOpt,
    FormatOpt,
    SpecArg,
    command,
    counting_options,
)
from .render import render


@command("formula")
def formula_cmd(spec: SpecArg = "mobilenet_v1", convention: ConventionOpt = None,
                biases: BiasesOpt = False, bn: BnOpt = False,
                classes: ClassesOpt = None, format: FormatOpt = Format.table) -> None:
    """Total Mult-Adds and parameters as polynomials in α and ρ, read off the spec.

    ρ is the resolution over the spec's base resolution. The polynomials are exact where
    channel rounding does not bite; the output says where that is. --format csv, json or
    markdown give one row per term (coefficient, powers of α and ρ).

    Example: mobilecost formula mobilenet_v1
    Example: mobilecost formula mobilenet_v2 --format csv
    """
    from ..reports.formula import formula_report, formula_text

    s, counting, line = counting_options(spec, convention, biases, bn, classes)
    if format is Format.table:
        sys.stdout.write(formula_text(s, counting) + f"\n{line[0].upper()}{line[1:]}.\n")
        return
    render(formula_report(s, counting, line), format)
