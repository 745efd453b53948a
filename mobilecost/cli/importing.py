"""The import command: a spec from a PyTorch module or an ONNX file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..util import write_atomic
from .common import check_output_file, command, err_console, fail, writing


@command("import")
def import_cmd(source: Annotated[str, typer.Argument(
                   help="model.onnx, package.module:callable or path/to/file.py:callable (a "
                        "callable returning a torch.nn.Module).")],
               output: Annotated[Optional[Path], typer.Option(
                   "--output", "-o", help="Write the spec to this file \\[default: stdout].")] = None,
               rounding: Annotated[str, typer.Option(
                   "--rounding", help="The spec's rounding rule: 'int', 'int min=N' or "
                                      "'multiple N'.")] = "int",
               res: Annotated[Optional[int], typer.Option(
                   "--res", "-r", help="Input resolution the network is traced at \\[default: an "
                                       "ONNX file's own, 224 for a module].")] = None,
               force: Annotated[bool, typer.Option(
                   "--force", help="Overwrite an existing --output file.")] = False,
               allow_unknown: Annotated[bool, typer.Option(
                   "--allow-unknown", help="Write operations the spec cannot express as comments "
                                           "instead of refusing.")] = False) -> None:
    """Write the spec of a network: its convolutions, inverted residuals, pools and classifier.

    The spec is canonical text at α = 1 with the network's input resolution. Operations the
    spec cannot express are listed with their names (exit code 2), or with --allow-unknown
    written as comments, with their share of the Mult-Adds.

    Example: mobilecost import mymodels.py:mobilenet --res 224 -o mine.spec

    Example: mobilecost import model.onnx --rounding 'multiple 8'
    """
    from ..importing.write import parse_rounding
    from ..reports.importing import import_summary, read_source

    rule = parse_rounding(rounding)
    if output is not None:
        if output.exists() and not force:
            raise fail(f"--output {output}: the file exists; --force overwrites it")
        check_output_file(output)
    with err_console.status(f"reading {source}…"):
        imp = read_source(source, res, rule, allow_unknown)
    if output is not None:
        with writing(output):
            write_atomic(output, imp.text)
        err_console.print(f"wrote {output}", highlight=False, markup=False)
    else:
        typer.echo(imp.text, nl=False)
    for line in import_summary(imp):
        err_console.print(line, highlight=False, markup=False)


__all__ = ["import_cmd"]
