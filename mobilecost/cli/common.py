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
from ..reports.report import REPORT_FORMATS, Format

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
def format_parser(allowed: tuple[Format, ...]):
    """A --format option's reader: one of `allowed` (a usage error, one line, otherwise)."""

    def read(text: str) -> Format:
        if isinstance(text, Format):
            return text
        if text not in {f.value for f in allowed}:
            raise typer.BadParameter(f"{text!r} is not one of "
                                     f"{', '.join(repr(f.value) for f in allowed)}")
        return Format(text)

    return read


def _metavar(allowed: tuple[Format, ...]) -> str:
    return "<" + "|".join(f.value for f in allowed) + ">"


FormatOpt = Annotated[Format, typer.Option(
    "--format", "-f", help="Output format.", parser=format_parser(REPORT_FORMATS),
    metavar=_metavar(REPORT_FORMATS))]
AnyFormatOpt = Annotated[Format, typer.Option(
    "--format", "-f", help="Output format (parquet needs --output FILE and pyarrow).",
    parser=format_parser(tuple(Format)), metavar=_metavar(tuple(Format)))]


def nonempty_path(option: str):
    """A path option's reader that refuses an empty path ('' would mean the current folder)."""

    def read(text: str) -> Path:
        if isinstance(text, Path):
            return text
        if not str(text).strip():
            raise typer.BadParameter(f"{option} is empty; give a path")
        return Path(text)

    return read


def explicit_option(ctx: typer.Context, name: str) -> bool:
    """Whether the option `name` was given on the command line (not its default)."""
    return ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")


def say(text: str) -> None:
    """One message on stderr, as it is (no markup, no highlighting, wrapped by the terminal)."""
    err_console.print(text, highlight=False, markup=False, soft_wrap=True)


def split_list(text: str, what: str) -> list[str]:
    """The items of a comma-separated option; an empty list is an error."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise MobilecostError(f"{what} is empty")
    return items


BiasesOpt = Annotated[bool, typer.Option(
    "--biases", help="Count every bias as a parameter (the FC layer's, those of the 1×1 convolutions "
                     "of squeeze-and-excitation and of any convolution that has them) and layer "
                     "scale's γ.")]
BnOpt = Annotated[bool, typer.Option("--bn", help="Count batchnorm γ and β as parameters.")]
ClassesOpt = Annotated[Optional[int], typer.Option(
    "--classes", help="Number of classes of the final 'fc N!' (1001: TF-slim's checkpoints) "
                      "\\[default: the spec's].")]


ConventionOpt = Annotated[Optional[str], typer.Option(
    "--convention", help="Count parameters as a published source does: paper (conv and FC "
                         "weights; the default), tf-slim (weights, 1001 classes), torchvision "
                         "(+ biases, batchnorm γ, β: sum(p.numel())), keras (+ batchnorm moving "
                         "mean and variance: count_params()). Every output names the one in force.")]


def counting_options(spec: str, convention: Optional[str], biases: bool, bn: bool,
                     classes: Optional[int]) -> tuple[Any, Any, str]:
    """(the spec, or a copy with `classes` outputs; the Counting; the line every output gives
    about its parameter count) from --convention, --biases/--bn and --classes. `spec` may be
    a list of specs (--spec): each gets the classes."""
    from ..engine.cost import CONVENTIONS, Counting, convention_line
    from ..lang.load import classes_of, load_spec, with_classes

    conv = None
    if convention is not None:
        conv = CONVENTIONS.get(convention)
        if conv is None:
            raise MobilecostError(f"--convention {convention}: unknown; known: "
                                  f"{', '.join(CONVENTIONS)}")
        if biases or bn:
            raise MobilecostError("--convention sets what counts: give it, or --biases/--bn, "
                                  "not both")
    counting = conv.counting if conv is not None else Counting(biases, bn)
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
