"""What every command shares: the app, output options, rendering and error handling.

Only the CLI imports typer and rich. Data goes to stdout, messages to stderr. Library code
raises MobilecostError; `command` turns it into one line on stderr and exit code 2.
"""

from __future__ import annotations

import functools
import sys
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import MobilecostError
from ..report import FORMATTERS, Format, Report

# A terminal gets tables fitted to its width; a pipe or file gets them whole.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

app = typer.Typer(
    name="mobilecost",
    help="Exact cost, sweeps and latency of MobileNet-style networks.\n\n"
         "Example: mobilecost sweep --alpha 0.25..1 --res 128..224",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


def _one_line_usage_error(e: Any) -> None:
    """Click usage errors as one line (typer's default is a multi-line panel)."""
    if type(e).__name__ == "NoArgsIsHelpError":  # the help was printed already
        return
    cmd = e.ctx.command_path if getattr(e, "ctx", None) else "mobilecost"
    sys.stderr.write(f"error: {cmd}: {e.format_message()} (see '{cmd} --help')\n")


def _install_error_format() -> None:
    from typer import rich_utils

    rich_utils.rich_format_error = _one_line_usage_error


_install_error_format()


def reflow(doc: str | None) -> str | None:
    """A docstring as help text: the lines of each paragraph joined (rich keeps line breaks),
    'Example:' lines kept on lines of their own."""
    if not doc:
        return doc
    import inspect

    paragraphs = []
    for para in inspect.cleandoc(doc).split("\n\n"):
        lines: list[str] = []
        for line in para.splitlines():
            if lines and not line.startswith("Example:") and not lines[-1].startswith("Example:"):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`app.command`, with the project's errors as one line and exit code 2."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*a: Any, **k: Any) -> Any:
            try:
                return fn(*a, **k)
            except MobilecostError as exc:
                raise fail(str(exc)) from None
            except KeyboardInterrupt:
                raise fail("interrupted", 130) from None

        wrapper.__doc__ = reflow(fn.__doc__)
        return app.command(*args, **kwargs)(wrapper)

    return decorate


# ----------------------------------------------------------------------------- shared options

SpecArg = Annotated[str, typer.Argument(
    help="A built-in spec (mobilenet_v1, mobilenet_v2, conv_mobilenet, shallow_mobilenet) "
         "or the path of a spec file.", show_default=True)]
AlphaOpt = Annotated[str, typer.Option("--alpha", "-a", help="Width multiplier α (> 0).")]
ResOpt = Annotated[Optional[int], typer.Option(
    "--res", "-r", help="Input resolution in pixels \\[default: the spec's base resolution].")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
FcBiasOpt = Annotated[bool, typer.Option("--fc-bias", help="Count the FC layer's biases as parameters.")]
BnOpt = Annotated[bool, typer.Option("--bn", help="Count batchnorm γ and β as parameters.")]


def parse_alpha(text: str) -> Fraction:
    from ..spec import to_fraction

    a = to_fraction(text)
    if a <= 0:
        raise MobilecostError(f"--alpha must be > 0, got {text}")
    return a


# ----------------------------------------------------------------------------- rendering

def render(report: Report, fmt: Format) -> None:
    """Print a report to stdout in the asked format; notes go to stderr for csv and json."""
    if fmt is Format.table:
        table = Table(title=report.title, title_justify="left", header_style="bold")
        shown = [c for c in report.columns if c.table]
        for c in shown:
            table.add_column(c.header, justify="right" if c.numeric else "left")
        for cells in report.cells(shown):
            table.add_row(*cells)
        console.print(table)
        for n in report.notes:
            console.print(f"• {n}", highlight=False, markup=False)
        return
    sys.stdout.write(FORMATTERS[fmt](report))
    if fmt in (Format.csv, Format.json):
        for n in report.notes:
            err_console.print(f"note: {n}", highlight=False, markup=False)


def check_output_dir(path: Path) -> Path:
    """A folder reports can be written to, made if need be; else a MobilecostError."""
    import os

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MobilecostError(f"cannot create output directory {path}: {exc.strerror}") from None
    if not path.is_dir():
        raise MobilecostError(f"output path {path} is not a directory")
    if not os.access(path, os.W_OK | os.X_OK):
        raise MobilecostError(f"output directory {path} is not writable")
    return path
