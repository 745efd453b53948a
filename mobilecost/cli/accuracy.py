"""The accuracy command: published ImageNet accuracy and the estimate's validation."""

from __future__ import annotations

from typing import Annotated

import typer

from ..reports.report import Format
from .common import FormatOpt, SpecArg, command
from .render import render

ValidateOpt = Annotated[bool, typer.Option(
    "--validate", help="Leave-one-out error of the estimate on the spec's released checkpoints.")]


@command("accuracy")
def accuracy_cmd(spec: SpecArg = "mobilenet_v1", validate: ValidateOpt = False,
                 format: FormatOpt = Format.table) -> None:
    """Published ImageNet accuracy with its sources, and how the estimate is made.

    With --validate: rebuild the estimate without each released checkpoint in turn, predict it,
    and print the errors (percentage points) and the interval they give.

    Example: mobilecost accuracy --validate
    Example: mobilecost accuracy mobilenet_v2 --validate
    """
    from ..reports.accuracy import accuracy_report

    render(accuracy_report(validate, spec), format)
