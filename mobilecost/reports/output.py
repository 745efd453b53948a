"""A sweep's frame out: CSV in chunks (never the whole text in memory), JSON, Markdown and
Parquet files, the reports folder (`write_sweep`), every file written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..engine.sweep import frame_specs
from ..errors import MobilecostError
from ..util import write_atomic
from .report import Column, Report
from .sweep import sweep_columns, sweep_report

if TYPE_CHECKING:
    import pandas as pd

# --------------------------------------------------------------------------- files

def _csv_field(text: str) -> str:
    """One CSV field as the csv module writes it (QUOTE_MINIMAL)."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _column_text(series: "pd.Series") -> list[str]:
    """A column's CSV fields, formatted a column at a time: floats by repr (the shortest
    text that reads back to the same double, as Python and pandas write them), integers
    exactly, empty for missing values; columns with few distinct values are formatted once
    per value."""
    import numpy as np
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        labels = np.array([_csv_field(str(c)) for c in series.cat.categories] + [""], dtype=object)
        codes = series.cat.codes.to_numpy()
        return labels[np.where(codes < 0, len(labels) - 1, codes)].tolist()
    kind = series.dtype.kind
    values = series.to_numpy()
    if kind == "f":
        missing = np.isnan(values)
        uniq, inverse = np.unique(values, return_inverse=True)
        if len(uniq) * 4 < len(values):
            text = np.array([repr(v) for v in uniq.tolist()], dtype=object)[inverse.reshape(-1)]
            text[missing] = ""
            return text.tolist()
        out = list(map(repr, values.tolist()))
        for i in np.flatnonzero(missing).tolist():
            out[i] = ""
        return out
    if kind in "iub":
        return list(map(str, values.tolist()))
    return ["" if v is None or (isinstance(v, float) and v != v) else _csv_field(str(v))
            for v in values.tolist()]


# pyarrow writes a double as Python's repr does for 1e-4 <= x < 1e9 when x is not whole
# (checked on millions of random doubles; tests compare the two writers byte for byte)
_ARROW_FLOAT_RANGE = (1e-4, 1e9)


def _column_arrow(series: "pd.Series"):
    """`_column_text` as a pyarrow string array, formatted in C++ where pyarrow writes the
    same text as Python (integers; floats in _ARROW_FLOAT_RANGE) and by repr elsewhere."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    if isinstance(series.dtype, pd.CategoricalDtype):
        labels = pa.array([_csv_field(str(c)) for c in series.cat.categories] + [""], text)
        codes = series.cat.codes.to_numpy()
        return pc.take(labels, np.where(codes < 0, len(labels) - 1, codes))
    kind = series.dtype.kind
    values = series.to_numpy()
    if kind in "iu":
        return pc.cast(pa.array(values), text)
    if kind != "f":
        return pa.array(_column_text(series), text)
    lo, hi = _ARROW_FLOAT_RANGE
    with np.errstate(invalid="ignore"):
        own = ~((values >= lo) & (values < hi) & (values != np.trunc(values)))
    out = pc.cast(pa.array(values), text)
    if own.any():
        codes, uniques = pd.factorize(values[own], use_na_sentinel=False)
        labels = np.array(["" if u != u else repr(u) for u in uniques.tolist()], dtype=object)
        out = pc.replace_with_mask(out, pa.array(own), pa.array(labels[codes].tolist(), text))
    return out


def frame_csv(df: "pd.DataFrame", columns: list[Column]) -> str:
    """The CSV `report.to_csv` gives for these rows (a test checks that the two agree byte for
    byte), formatted a column at a time and joined by pyarrow in C++ when it is installed:
    a million-row sweep in a few seconds, where pandas' `to_csv` takes several times as long
    (benchmarks/bench_sweep_output.py). `frame_csv_bytes` gives it UTF-8 encoded."""
    return frame_csv_bytes(df, columns).decode("utf-8")


CSV_CHUNK_ROWS = 100_000  # rows formatted at a time: the text of a big grid is never whole in memory


def frame_csv_chunks(df: "pd.DataFrame", columns: list[Column],
                     chunk_rows: int = CSV_CHUNK_ROWS) -> "Iterator[bytes]":
    """`frame_csv`, encoded, as the header and then blocks of `chunk_rows` rows: what a file or
    stdout takes, without decoding and encoding again, in memory bounded by the block."""
    keys = [c.key for c in columns]
    yield (",".join(_csv_field(k) for k in keys) + "\n").encode("utf-8")
    for lo in range(0, len(df), chunk_rows):
        yield _csv_block(df.iloc[lo:lo + chunk_rows], keys)


def _csv_block(df: "pd.DataFrame", keys: list[str]) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:  # pyarrow is optional: formatting in Python is slower, not different
        fields = [_column_text(df[k]) for k in keys]
        return ("\n".join(map(",".join, zip(*fields))) + "\n").encode("utf-8")
    import numpy as np

    text = pa.large_string()
    fields = [_column_arrow(df[k]) for k in keys]
    # the last field of each row takes the newline, then one C++ join makes "a,b,c\n" per
    # row, and the rows lie one after the other in the result's data buffer
    fields[-1] = pc.binary_join_element_wise(fields[-1], pa.scalar("", text), pa.scalar("\n", text))
    rows = pc.binary_join_element_wise(*fields, pa.scalar(",", text))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    first, last = int(offsets[rows.offset]), int(offsets[rows.offset + len(rows)])
    return memoryview(rows.buffers()[2])[first:last].tobytes()


def frame_csv_bytes(df: "pd.DataFrame", columns: list[Column]) -> bytes:
    """`frame_csv`, encoded, whole (see frame_csv_chunks for big grids)."""
    return b"".join(frame_csv_chunks(df, columns))


def write_reports(report: Report, folder: Path, stem: str,
                  csv_text: "str | bytes | Iterator[bytes] | None" = None) -> list[Path]:
    """CSV, JSON and Markdown of a report, each written atomically."""
    from .report import to_csv, to_json, to_markdown

    return [write_atomic(folder / f"{stem}.csv", csv_text if csv_text is not None else to_csv(report)),
            write_atomic(folder / f"{stem}.json", to_json(report)),
            write_atomic(folder / f"{stem}.md", to_markdown(report))]


def write_sweep(df: "pd.DataFrame", folder: Path, extra: list[str] | None = None,
                plot: bool = False) -> list[Path]:
    """The sweep's CSV, JSON and Markdown (and plots) in `folder`; the paths written."""
    names = frame_specs(df)
    name = names[0] if len(names) == 1 else "family"
    report = sweep_report(df, extra=extra)
    written = write_reports(report, folder, f"sweep_{name}", frame_csv_chunks(df, report.columns))
    if plot:
        from .plots import sweep_plots

        for n in names:  # each family's figures, under its own name
            written += sweep_plots(df[df["spec"].astype(str) == n], folder)
    return written


def require_pyarrow() -> None:
    """Parquet needs pyarrow, an optional extra: one clear line when it is missing."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MobilecostError("Parquet output needs pyarrow, which is not installed: "
                              "pip install 'mobilecost[parquet]'") from None


def write_frame(df: "pd.DataFrame", path: Path, fmt: str, extra: list[str] | None = None) -> Path:
    """Every row of the sweep to one file, atomically: csv (pandas' C writer), json, markdown
    (with the notes), or parquet (pyarrow; typed columns, exact integers)."""
    columns = sweep_columns(df)
    if fmt == "csv":
        return write_atomic(path, frame_csv_chunks(df, columns))
    if fmt == "parquet":
        require_pyarrow()
        import io

        buf = io.BytesIO()
        df[[c.key for c in columns]].to_parquet(buf, index=False, engine="pyarrow")
        return write_atomic(path, buf.getvalue())
    from .report import to_json, to_markdown

    report = sweep_report(df, extra=extra)
    return write_atomic(path, to_json(report) if fmt == "json" else to_markdown(report))
