"""Analytic commands: table1, table2, table3, cost. None of them imports torch or pandas."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Annotated, Optional

import typer

from ..dtypes import DTYPES
from ..reports import tables
from ..reports.report import Format
from .common import (
    AlphaOpt,
    BiasesOpt,
    BnOpt,
    ClassesOpt,
    ConventionOpt,
    FormatOpt,
    ResOpt,
    SpecArg,
    command,
    counting_options,
    parse_alpha,
    parse_res,
)
from .render import render

# Every dtype of the table (mobilecost.dtypes), for the bytes a report shows at it.
AnyDtype = Enum("AnyDtype", {d.short: d.short for d in DTYPES}, type=str)  # type: ignore[misc]
BytesDtypeOpt = Annotated[Optional[AnyDtype], typer.Option(
    "--dtype", help="Add bytes at this dtype: weights as a file stores them (int8: per-channel "
                    "scales, int32 biases), maps read and written, Mult-Adds per byte.")]


@command("table1")
def table1_cmd(spec: SpecArg = "mobilenet_v1", alpha: AlphaOpt = "1", res: ResOpt = None,
               convention: ConventionOpt = None, biases: BiasesOpt = False, bn: BnOpt = False,
               classes: ClassesOpt = None, dtype: BytesDtypeOpt = None,
               format: FormatOpt = Format.table) -> None:
    """The architecture as the paper prints Table 1, with Mult-Adds and parameters per layer.

    Example: mobilecost table1 mobilenet_v1 --alpha 0.5 --res 160
    Example: mobilecost table1 --dtype int8 (bytes a quantized file stores per layer)
    """
    s, counting, line = counting_options(spec, convention, biases, bn, classes)
    report = tables.table1(s, parse_alpha(alpha), parse_res(res, s), counting,
                           dtype.value if dtype else None)
    render(dataclasses.replace(report, notes=report.notes + [line]), format)


@command("table2")
def table2_cmd(spec: SpecArg = "mobilenet_v1", alpha: AlphaOpt = "1", res: ResOpt = None,
               convention: ConventionOpt = None, biases: BiasesOpt = False, bn: BnOpt = False,
               classes: ClassesOpt = None, format: FormatOpt = Format.table) -> None:
    """Resources per layer type (% Mult-Adds, % parameters); the paper's values beside for 1.0-224.

    Example: mobilecost table2 --format markdown
    """
    s, counting, line = counting_options(spec, convention, biases, bn, classes)
    report = tables.table2(s, parse_alpha(alpha), parse_res(res, s), counting)
    render(dataclasses.replace(report, notes=report.notes + [line]), format)


@command("table3")
def table3_cmd(format: FormatOpt = Format.table) -> None:
    """The paper's Table 3: one 14×14×512 layer as full, separable, α = 0.75 and ρ = 0.714.

    Example: mobilecost table3 --format csv
    """
    render(tables.table3(), format)


@command("cost")
def cost_cmd(spec: SpecArg = "mobilenet_v1", alpha: AlphaOpt = "1", res: ResOpt = None,
             convention: ConventionOpt = None, biases: BiasesOpt = False, bn: BnOpt = False,
             classes: ClassesOpt = None, dtype: BytesDtypeOpt = None,
             format: FormatOpt = Format.table) -> None:
    """Totals and the per-layer table of one configuration.

    Example: mobilecost cost mobilenet_v2 --alpha 0.75 --res 192
    Example: mobilecost cost mobilenet_v3_large --convention tf-slim (1001 classes)
    Example: mobilecost cost mobilenet_v2 --convention keras (count_params())
    Example: mobilecost cost mobilenet_v1 --res 320x240 (height x width)
    Example: mobilecost cost mobilenet_v1 --dtype int8 (bytes, Mult-Adds per byte)
    """
    s, counting, line = counting_options(spec, convention, biases, bn, classes)
    report = tables.cost_report(s, parse_alpha(alpha), parse_res(res, s), counting,
                                dtype.value if dtype else None)
    render(dataclasses.replace(report, notes=report.notes + [line]), format)


@command("published")
def published_cmd(format: FormatOpt = Format.table) -> None:
    """The paper's printed Mult-Adds and parameters (Tables 4–7, 9) beside the engine's.

    Example: mobilecost published --format markdown
    """
    render(tables.published_report(), format)


@command("spec")
def spec_cmd(spec: SpecArg = "mobilenet_v1") -> None:
    """Print a spec in canonical form (a built-in one, or check a file of your own).

    Example: mobilecost spec mobilenet_v2 > my_net.spec
    """
    import sys

    from ..lang.load import load_spec

    sys.stdout.write(load_spec(spec).format())
