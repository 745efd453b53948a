"""Tabular reports as plain data, and one pure formatter per output format.

A `Report` is a title, typed columns, rows of raw values (exact integers stay integers) and
notes. The CLI renders it as a rich table; `to_csv`, `to_json` and `to_markdown` turn it into
text without rich. Number formatting and atomic writes live in `mobilecost.util` (re-exported
here for older imports).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Any, Callable, Iterable

from ..util import format_number, millions, milliseconds, percent, plain, write_atomic


class Format(str, Enum):
    """The output formats: a report renders in the first four; `parquet` is a sweep's frame
    written to a file (`sweep --output FILE.parquet`)."""

    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"
    parquet = "parquet"


#: The formats every command renders its report in.
REPORT_FORMATS = (Format.table, Format.csv, Format.json, Format.markdown)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    display: Callable[[Any], str] = plain
    numeric: bool = True
    table: bool = True  # shown in the terminal table (False: data formats only)


@dataclass
class Report:
    """Rows of raw values under typed columns, with notes.

    `total` is an optional summary row (a network's totals under its per-layer rows): CSV
    gives it as a last row, JSON as {ROWS_NAME: [...], "total": {...}}, tables and Markdown as
    a last row. `drop_order` names the columns a narrow terminal table may leave out, least
    important first (the data formats always carry every column).
    """

    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    total: dict[str, Any] | None = None
    rows_name: str = "rows"
    drop_order: tuple[str, ...] = ()

    def cells(self, columns: list[Column] | None = None,
              with_total: bool = False) -> Iterable[list[str]]:
        rows = self.rows + ([self.total] if with_total and self.total is not None else [])
        for row in rows:
            yield [c.display(row.get(c.key)) for c in (columns or self.columns)]


def _raw(v: Any) -> Any:
    """A value as data: Fractions become floats, NaN becomes None."""
    if isinstance(v, Fraction):
        return float(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, Enum):
        return v.value
    return v


def to_csv(report: Report) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([c.key for c in report.columns])
    rows = report.rows + ([report.total] if report.total is not None else [])
    for row in rows:
        w.writerow(["" if _raw(row.get(c.key)) is None else _raw(row.get(c.key)) for c in report.columns])
    return buf.getvalue()


def to_json(report: Report) -> str:
    """A list of rows; with a total, {rows_name: [rows], "total": {the total row}}."""
    def record(row: dict[str, Any]) -> dict[str, Any]:
        return {c.key: _raw(row.get(c.key)) for c in report.columns}

    rows: Any = [record(row) for row in report.rows]
    if report.total is not None:
        rows = {report.rows_name: rows, "total": record(report.total)}
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def to_markdown(report: Report) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = [f"### {report.title}", "",
             "| " + " | ".join(esc(c.header) for c in report.columns) + " |",
             "|" + "|".join("---:" if c.numeric else "---" for c in report.columns) + "|"]
    lines += ["| " + " | ".join(esc(x) for x in cells) + " |"
              for cells in report.cells(with_total=True)]
    if report.notes:
        lines.append("")
        lines += [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


FORMATTERS: dict[Format, Callable[[Report], str]] = {
    Format.csv: to_csv, Format.json: to_json, Format.markdown: to_markdown,
}


__all__ = ["Column", "FORMATTERS", "Format", "Report", "format_number", "millions",
           "milliseconds", "percent", "plain", "to_csv", "to_json", "to_markdown", "write_atomic"]
