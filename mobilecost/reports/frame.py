"""Columns joined to a sweep's DataFrame without copying a million-row array twice: new
columns as they are (`with_columns`), and a text column made from a few distinct rows of codes
(`text_column`: why each prediction extrapolates)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def with_columns(df: "pd.DataFrame", **columns: Any) -> "pd.DataFrame":
    """`df.assign(**columns)` for new columns, without copying their arrays (assign copies
    each one: a tenth of a second for four columns of a million rows)."""
    import pandas as pd

    new = pd.DataFrame(columns, index=df.index, copy=False)
    out = pd.concat([df, new], axis=1)
    out.attrs = dict(df.attrs)
    return out


def text_column(codes: "np.ndarray", texts: Sequence[str]) -> Any:
    """The column texts[codes] (codes [α, resolution], rows α-major) as pandas stores strings:
    what it makes of an object array of str, made by pyarrow from the few distinct rows of
    codes where pandas keeps its strings in pyarrow (a million rows in milliseconds, where
    converting a million Python strings takes a tenth of a second or more)."""
    import numpy as np
    import pandas as pd

    dtype = pd.Series(list(texts[:1]) or [""]).dtype  # pandas' own choice for str values
    codes = np.asarray(codes)
    grid = codes.reshape(1, -1) if codes.ndim == 1 else codes
    width = max((len(t.encode("utf-8")) for t in texts), default=0)
    if getattr(dtype, "storage", None) == "pyarrow" and grid.size * width < 2**31:
        import pyarrow as pa
        import pyarrow.compute as pc

        words = pa.array(list(texts), pa.string())
        built: dict[bytes, Any] = {}
        parts = []
        for row in grid:  # each distinct row of codes made once, then the rows concatenated
            key = row.tobytes()
            if key not in built:
                built[key] = pc.take(words, pa.array(row))
            parts.append(built[key])
        return pd.array(pa.chunked_array([pa.concat_arrays(parts)]), dtype=dtype)
    return np.array(list(texts), dtype=object)[grid.reshape(-1)]
