"""Rendering a report for the terminal or a pipe: tables fitted to the width ($COLUMNS, the
terminal's, else 80), the least important columns leaving first and named in a note, numbers
never cut; the data formats through `reports.report.FORMATTERS`, their notes on stderr."""

from __future__ import annotations

import sys

from rich.console import Console

from ..reports.report import FORMATTERS, Column, Format, Report
from .common import err_console

# ----------------------------------------------------------------------------- rendering

PIPE_WIDTH = 80  # a table written to a pipe or file, without $COLUMNS


def terminal_width() -> int:
    """The width tables are fitted to: $COLUMNS if set, else the terminal's, else (a pipe or a
    file) 80, as a terminal shows it (`... | tail` must not wrap numbers mid-digit); the whole
    table is `--format markdown` or `csv`."""
    import os
    import shutil

    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return PIPE_WIDTH


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
