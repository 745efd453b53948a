"""Tabular reports as plain data, and one pure formatter per output format.

A `Report` is a title, typed columns, rows of raw values (exact integers stay integers) and
notes. The CLI renders it as a rich table; `to_csv`, `to_json` and `to_markdown` turn it into
text without rich. Files are written atomically (`write_atomic`): a temporary file in the same
folder, renamed into place, so an interrupted run never leaves half a report.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


def millions(x: Any, digits: int = 2) -> str:
    return "" if x is None else f"{x / 1e6:,.{digits}f}"


def percent(x: Any, digits: int = 2) -> str:
    return "" if x is None else f"{100 * x:.{digits}f}%"


def milliseconds(x: Any) -> str:
    return "" if x is None else f"{x:.3f}"


def plain(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, Fraction):
        return format_number(x)
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, int) and not isinstance(x, bool):
        return f"{x:,}"
    return str(x)


def format_number(x: Fraction | float) -> str:
    """Shortest decimal text for an α or ρ: 3/4 -> '0.75', 1 -> '1'."""
    f = float(x)
    return str(int(f)) if f == int(f) else f"{f:g}"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    display: Callable[[Any], str] = plain
    numeric: bool = True
    table: bool = True  # shown in the terminal table (False: data formats only)


@dataclass
class Report:
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def cells(self, columns: list[Column] | None = None) -> Iterable[list[str]]:
        for row in self.rows:
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
    for row in report.rows:
        w.writerow(["" if _raw(row.get(c.key)) is None else _raw(row.get(c.key)) for c in report.columns])
    return buf.getvalue()


def to_json(report: Report) -> str:
    rows = [{c.key: _raw(row.get(c.key)) for c in report.columns} for row in report.rows]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def to_markdown(report: Report) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = [f"### {report.title}", "",
             "| " + " | ".join(esc(c.header) for c in report.columns) + " |",
             "|" + "|".join("---:" if c.numeric else "---" for c in report.columns) + "|"]
    lines += ["| " + " | ".join(esc(x) for x in cells) + " |" for cells in report.cells()]
    if report.notes:
        lines.append("")
        lines += [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


FORMATTERS: dict[Format, Callable[[Report], str]] = {
    Format.csv: to_csv, Format.json: to_json, Format.markdown: to_markdown,
}


def write_atomic(path: Path | str, data: str | bytes) -> Path:
    """Write a file so that it is either complete or absent, never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the mode open() would
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
