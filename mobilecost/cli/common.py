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

from ..errors import MobilecostError
from ..reports.report import FORMATTERS, Column, Format, Report

CONTEXT = {"help_option_names": ["-h", "--help"]}

err_console = Console(stderr=True)

app = typer.Typer(
    name="mobilecost",
    help="Exact cost, sweeps and latency of MobileNet-style networks.\n\n"
         "Example: mobilecost sweep --alpha 0.25..1 --res 128..224",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings=CONTEXT,
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        sys.stdout.write(f"mobilecost {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Exact cost, sweeps and latency of MobileNet-style networks.

    Example: mobilecost sweep --alpha 0.25..1 --res 128..224
    """


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
    help="A built-in spec (mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small, "
         "mnasnet_b1 and others: an unknown name lists them all) or the path of a spec file.",
    show_default=True)]
AlphaOpt = Annotated[str, typer.Option("--alpha", "-a", help="Width multiplier α (> 0).")]
ResOpt = Annotated[Optional[str], typer.Option(
    "--res", "-r", help="Input resolution in pixels, or HEIGHTxWIDTH (320x240) "
                        "\\[default: the spec's base resolution].")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
FcBiasOpt = Annotated[bool, typer.Option("--fc-bias", help="Count biases as parameters (the FC layer's, squeeze-and-excitation's 1×1 convolutions'), and layer scale's γ.")]
BnOpt = Annotated[bool, typer.Option("--bn", help="Count batchnorm γ and β as parameters.")]
ClassesOpt = Annotated[Optional[int], typer.Option(
    "--classes", help="Number of classes of the final 'fc N!' (1001: TF-slim's checkpoints) "
                      "\\[default: the spec's].")]


ConventionOpt = Annotated[Optional[str], typer.Option(
    "--convention", help="Count parameters as a published source does: paper (conv and FC "
                         "weights; the default), tf-slim (weights, 1001 classes), torchvision "
                         "(+ biases, batchnorm γ, β: sum(p.numel())), keras (+ batchnorm moving "
                         "mean and variance: count_params()). Every output names the one in force.")]


def counting_options(spec: str, convention: Optional[str], fc_bias: bool, bn: bool,
                     classes: Optional[int]) -> tuple[Any, Any, str]:
    """(the spec, or a copy with `classes` outputs; the Counting; the line every output gives
    about its parameter count) from --convention, --fc-bias/--bn and --classes. `spec` may be
    a list of specs (--spec): each gets the classes."""
    from ..engine.cost import CONVENTIONS, Counting, convention_line
    from ..lang.load import classes_of, load_spec, with_classes

    conv = None
    if convention is not None:
        conv = CONVENTIONS.get(convention)
        if conv is None:
            raise MobilecostError(f"--convention {convention}: unknown; known: "
                                  f"{', '.join(CONVENTIONS)}")
        if fc_bias or bn:
            raise MobilecostError("--convention sets what counts: give it, or --fc-bias/--bn, "
                                  "not both")
    counting = conv.counting if conv is not None else Counting(fc_bias, bn)
    n = classes if classes is not None else (conv.classes if conv is not None else None)
    several = isinstance(spec, (list, tuple))
    loaded = [load_spec(x) for x in (spec if several else [spec])]
    if n is not None:
        loaded = [with_classes(x, n) for x in loaded]
    line = convention_line(counting, classes_of(loaded[0]))
    if n is None:
        return spec, counting, line
    return (loaded if several else loaded[0]), counting, line


def parse_res(text: str | None, spec):
    """--res of a one-configuration command: None (the spec's base), a number of pixels (the
    side of a square input; the height, with the spec's own aspect, for a non-square spec) or
    HEIGHTxWIDTH."""
    if text is None:
        return None
    from ..engine.axes import with_aspect
    from ..lang.load import load_spec
    from ..lang.values import norm_resolution

    return with_aspect(load_spec(spec), [norm_resolution(text, "--res")], None)[0]


def parse_alpha(text: str) -> Fraction:
    from ..lang.values import to_fraction

    a = to_fraction(text)
    if a <= 0:
        raise MobilecostError(f"--alpha must be > 0, got {text}")
    return a


# ----------------------------------------------------------------------------- rendering

def terminal_width() -> int | None:
    """The width tables are fitted to: $COLUMNS if set, else the terminal's; None for a pipe
    or a file without $COLUMNS (tables then come whole)."""
    import os
    import shutil

    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _cell_width(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)


TEXT_MIN = 20  # a text column may wrap (at words, else fold) down to this width


def _min_width(column: Column, cells: list[str]) -> int:
    """The narrowest a column may get: a numeric column its widest cell (numbers are never
    cut or wrapped), a text column its longest word up to TEXT_MIN; headers wrap at words."""
    header = max((_cell_width(w) for w in column.header.split()), default=0)
    if column.numeric:
        return max(header, max((_cell_width(x) for x in cells), default=0))
    word = max((_cell_width(w) for x in cells for w in x.split()), default=0)
    return max(header, min(word, TEXT_MIN), min(max((_cell_width(x) for x in cells), default=0),
                                                 TEXT_MIN))


def fit_columns(report: Report, width: int | None) -> tuple[list[Column], list[Column]]:
    """The table columns that fit in `width` terminal cells, and those left out.

    A column needs its widest cell (numbers are never cut or wrapped) or its header's longest
    word (headers may wrap), plus 3 cells of border and padding. Columns leave in the
    report's `drop_order`, least important first, then from the right, until the rest fit.
    """
    shown = [c for c in report.columns if c.table]
    if width is None:
        return shown, []
    rows = list(report.cells(shown, with_total=True))
    need = {c.key: _min_width(c, [r[i] for r in rows]) + 3 for i, c in enumerate(shown)}
    dropped: list[Column] = []
    # the report's own order first, then from the right; the first column always stays
    order = [c for key in report.drop_order for c in shown if c.key == key]
    order += [c for c in reversed(shown[1:]) if c not in order]
    for c in order:
        if sum(need[c.key] for c in shown) + 1 <= width:
            break
        shown.remove(c)
        dropped.append(c)
    return shown, dropped


def table_text(report: Report, width: int | None) -> tuple["object", list[str]]:
    """A rich Table of the report fitted to `width`, and the notes (with one on the columns
    left out, if any)."""
    from rich.table import Table

    shown, dropped = fit_columns(report, width)
    table = Table(title=report.title, title_justify="left", header_style="bold")
    every = list(report.cells(shown, with_total=True))
    rows = every[:len(report.rows)]
    total = every[len(report.rows)] if report.total is not None else None
    widths: list[int | None] = [None] * len(shown)
    if width is not None:
        # every column gets its narrowest width, then the room left widens them in order
        # up to their natural width (whole header, widest cell)
        cols = [[r[i] for r in every] for i in range(len(shown))]
        low = [_min_width(c, cols[i]) for i, c in enumerate(shown)]
        natural = [max([_cell_width(c.header)] + [_cell_width(x) for x in cols[i]])
                   for i, c in enumerate(shown)]
        room = width - sum(w + 3 for w in low) - 1
        widths = list(low)
        for i in range(len(shown)):
            extra = max(0, min(natural[i] - low[i], room))
            widths[i] += extra
            room -= extra
    for i, c in enumerate(shown):
        table.add_column(c.header, justify="right" if c.numeric else "left", width=widths[i],
                         overflow="fold")
    for j, cells in enumerate(rows):
        table.add_row(*cells, end_section=(total is not None and j == len(rows) - 1))
    if total is not None:
        table.add_row(*total, style="bold")
    notes = list(report.notes)
    if dropped:
        notes.append(f"columns left out to fit {width} columns: "
                     + ", ".join(c.header for c in dropped)
                     + " (a wider terminal, COLUMNS=N, or --format csv|json|markdown shows them).")
    return table, notes


TABLE_MAX_ROWS = 200  # a terminal table longer than this shows its head; data formats get every row


def _head(report: Report) -> Report:
    """A report cut to its first TABLE_MAX_ROWS rows for the terminal (its total row stays),
    with a note saying so: drawing 100,000 rows would take rich half a minute."""
    import dataclasses

    if len(report.rows) <= TABLE_MAX_ROWS:
        return report
    note = (f"showing the first {TABLE_MAX_ROWS:,} of {len(report.rows):,} rows; --format csv, "
            f"json or markdown gives them all")
    return dataclasses.replace(report, rows=report.rows[:TABLE_MAX_ROWS],
                               notes=[note] + list(report.notes))


def render(report: Report, fmt: Format) -> None:
    """Print a report to stdout in the asked format; notes go to stderr for csv and json."""
    if fmt is Format.table:
        report = _head(report)
        width = terminal_width()
        table, notes = table_text(report, width)
        console = Console(width=width if width is not None else 100_000, soft_wrap=False)
        console.print(table)
        # notes wrap at the terminal's width; through a pipe they stay one line each
        note_console = Console(width=width if width is not None else 100_000)
        for n in notes:
            note_console.print(f"• {n}", highlight=False, markup=False)
        return
    sys.stdout.write(FORMATTERS[fmt](report))
    if fmt in (Format.csv, Format.json):
        for n in report.notes:
            err_console.print(f"note: {n}", highlight=False, markup=False)


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(path: Path, option: str = "--output-dir") -> Path:
    """A folder reports can be written to, checked without making it (it is made when the
    first file is written, so a command that fails leaves no empty folder behind)."""
    import os

    if path.exists() and not path.is_dir():
        raise MobilecostError(f"{option} {path}: output path is not a directory")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise MobilecostError(f"{option} {path}: cannot create output directory: "
                              f"{base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise MobilecostError(f"{option} {path}: output directory "
                              f"{'is' if base == path.absolute() else f'{base} is'} not writable")
    return path


def check_output_file(path: Path, option: str = "--output") -> Path:
    """A file a command can write (atomically) once its work is done, checked before the work
    starts: not a directory, in a folder that exists and is writable."""
    import os

    if path.is_dir():
        raise MobilecostError(f"{option} {path}: is a directory; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise MobilecostError(f"{option} {path}: file is not writable")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise MobilecostError(f"{option} {path}: no such folder {folder}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise MobilecostError(f"{option} {path}: folder {folder} is not writable")
    return path


def writing(where: Path):
    """Turn a failed write (disk full, a folder in the way) into one line and exit code 2."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except OSError as exc:
            place = getattr(exc, "filename2", None) or exc.filename or where
            raise MobilecostError(f"cannot write {place}: {exc.strerror or exc}") from None

    return guard()


def status(message: str, big: bool):
    """A spinner on stderr for work that takes a while; nothing for small jobs."""
    import contextlib

    return err_console.status(message) if big else contextlib.nullcontext()


def report_written(paths: list[Path]) -> None:
    for path in paths:
        err_console.print(f"wrote {path}", highlight=False, markup=False)
