"""The library side of the grid commands: sweep, formula, accuracy and suggest as reports
(pick's is `mobilecost.pickreport`, on top of this one).

Each command of the CLI parses its options, calls one function here and renders the
`Report` it gets back; everything in between (the grid from the options, the sweep frame with
target latencies and measurements joined, the report's columns and notes, fast CSV and
Parquet of big frames, the closed form's notes, the accuracy tables) lives here and is tested
without the CLI. numpy and pandas load on use.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from ..engine.cost import Counting
from ..engine.sweep import frame_specs
from ..errors import MobilecostError
from ..lang.kinds import LayerKind
from ..util import format_number, millions, milliseconds, percent, plain, write_atomic
from .report import Column, Report

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..lang.spec import Spec
    from ..lang.values import Resolution

DEFAULT_ALPHAS = "1,0.75,0.5,0.25"
DEFAULT_RESOLUTIONS = "224,192,160,128"

# Columns a measured sweep takes from the timing rows (time_share_<kind> come as well).
MEASURED_COLUMNS = ("latency_ms", "latency_iqr_ms", "latency_median_ms", "rounds", "runs",
                    "calls_per_run", "noisy", "load", "cores", "batch", "device", "device_name", "torch_version", "threads",
                    "dtype", "memory_format", "compile", "cuda_graphs", "runtime", "runtime_version",
                    "graph_optimization", "cached", "error")

# Terminal-table columns in the order they are dropped when the terminal is too narrow
# (least important first); the data formats always carry every column.
SWEEP_DROP_ORDER = ("peak_activation_elems", "activation_elems", "macs_share_fc",
                    "macs_share_conv", "top5", "rho", "macs_share_depthwise",
                    "macs_share_pointwise", "accuracy_source")


# --------------------------------------------------------------------------- grid

def grid_from_options(spec_name: "Spec | str", alpha: str, res: str | None, rho: str | None,
                      max_configs: int | None = None, fmt: str | None = None,
                      aspect: str | None = None) -> tuple["Spec", list[Fraction], list]:
    """The spec and its (alphas, resolutions) from the grid options as written; with
    `max_configs`, a grid too large is refused from the options' arithmetic, before any value is
    enumerated (`fmt`: the output format, whose bytes per row count; parquet counts as csv)."""
    from ..engine.axes import grid_from_text
    from ..engine.limits import CLI_BYTES_PER_ROW, grid_size_error
    from ..lang.load import load_spec
    from ..lang.spec import expanded_layers

    spec = load_spec(spec_name)
    check = None
    if max_configs is not None:
        layers = expanded_layers(spec.body)
        per_row = CLI_BYTES_PER_ROW.get(fmt, CLI_BYTES_PER_ROW["csv"]) if fmt is not None else 0
        check = lambda n_a, n_r: grid_size_error(n_a, n_r, max_configs, layers, per_row)  # noqa: E731
    alphas, resolutions = grid_from_text(spec, alpha, res, rho, check, DEFAULT_RESOLUTIONS, aspect)
    return spec, alphas, resolutions


def family_grid_from_options(specs: str, alpha: str, res: str | None, rho: str | None,
                             max_configs: int | None = None, fmt: str | None = None,
                             aspect: str | None = None) -> tuple[list["Spec"], list[Fraction], list]:
    """The specs of a `--spec` option (a list, or `all`) and the one grid they share; the
    grid is refused when it is too large for any one spec or for all of them together."""
    from ..engine.limits import CLI_BYTES_PER_ROW, grid_size_error
    from ..lang.spec import expanded_layers

    if rho is not None:
        raise MobilecostError("--rho goes with one spec (each has its own base resolution); "
                              "give --res with --spec")
    grids = [grid_from_options(n, alpha, res, None, max_configs, fmt, aspect)
             for n in specs_from_option(specs)]
    found = [g[0] for g in grids]
    alphas, resolutions = grids[0][1], grids[0][2]
    differ = [g[0].name for g in grids if g[2] != resolutions]
    if differ:  # a non-square spec turns the same heights into other sizes
        raise MobilecostError(f"--spec: {differ[0]} has another input aspect than "
                              f"{found[0].name}, so one --res means other sizes; give --aspect or "
                              f"HEIGHTxWIDTH sizes, or sweep them apart")
    if max_configs is not None:
        per_row = CLI_BYTES_PER_ROW.get(fmt, CLI_BYTES_PER_ROW["csv"]) if fmt is not None else 0
        err = grid_size_error(len(found) * len(alphas), len(resolutions), max_configs,
                              max(expanded_layers(x.body) for x in found), per_row)
        if err:
            raise err
    return found, alphas, resolutions


def grid_configs(df: "pd.DataFrame") -> list[tuple[Fraction, "Resolution"]]:
    """(α exactly, from the frame's alpha_exact, resolution) of every row of the sweep, in order."""
    from ..engine.sweep import frame_alphas
    from ..lang.values import norm_resolution

    return list(zip(frame_alphas(df), (norm_resolution(r) for r in df["resolution"].tolist())))


def add_target_latency(df: "pd.DataFrame", spec_name: str, alphas: Sequence[Fraction],
                       resolutions: Sequence[int], target, batch: int = 1,
                       measured: bool = False) -> "pd.DataFrame":
    """`predicted_latency_ms` on `target` for every row of the sweep of `alphas` ×
    `resolutions` (α-major, as `gridcost.sweep` gives them); with `measured`, also `latency_ms`
    (the target's own measurement where it has one for that configuration, else the
    prediction) and `latency_source` (measured | predicted)."""
    import numpy as np

    from ..latency.targets import grid_latency

    if len(df) != len(alphas) * len(resolutions):
        raise MobilecostError("internal: the sweep's rows are not the α × resolution grid")
    odd = [r for r in resolutions if isinstance(r, tuple)]
    if odd:
        raise MobilecostError(f"{spec_name} at {odd[0][0]}x{odd[0][1]}: latency targets are "
                              f"calibrated and predicted on square inputs only")
    g = grid_latency(target, spec_name, alphas, resolutions, batch)
    df = with_columns(df, predicted_latency_ms=g.predicted_ms.reshape(-1),
                      predicted_latency_low_ms=g.low_ms.reshape(-1),
                      predicted_latency_high_ms=g.high_ms.reshape(-1),
                      latency_extrapolated=text_column(g.extrapolated_codes, g.extrapolated_texts))
    if measured:
        found = g.measured_ms.reshape(-1)
        df = df.assign(latency_ms=g.latency_ms.reshape(-1),
                       latency_high_ms=np.where(np.isnan(found), g.high_ms.reshape(-1), found),
                       latency_source=np.where(np.isnan(found), "predicted", "measured"))
    return df


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


def add_measured(df: "pd.DataFrame", rows: list[dict[str, Any]]) -> "pd.DataFrame":
    """The timing rows' latency, device and time-share columns beside the sweep's."""
    keys = list(MEASURED_COLUMNS) + sorted(
        {k for r in rows for k in r if k.startswith("time_share_")})
    return df.assign(**{k: [r.get(k) for r in rows] for k in keys})


def sweep_frame(spec: "Spec | str | Sequence[Spec | str]", alphas: Sequence[Fraction],
                resolutions: Sequence[int], counting: Counting = Counting(),
                max_configs: int | None = None, target=None, spec_name: str | None = None,
                batch: int = 1) -> "pd.DataFrame":
    """The sweep of `spec` over the grid, with `predicted_latency_ms` on `target` if given
    (`spec_name`: the name the target knows the network by, default the spec's). Several specs
    give their sweeps one after the other, each row's `spec` saying whose it is."""
    from ..engine.limits import DEFAULT_MAX_CONFIGS
    from ..engine.sweep import sweep
    from ..lang.load import load_spec

    if isinstance(spec, (list, tuple)):
        import pandas as pd

        frames = [sweep_frame(x, alphas, resolutions, counting, max_configs, target, None, batch)
                  for x in spec]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    s = load_spec(spec)
    df = sweep(s, alphas, resolutions, counting,
               DEFAULT_MAX_CONFIGS if max_configs is None else max_configs)
    if target is not None:
        df = add_target_latency(df, spec_name or s.name, alphas, resolutions, target, batch)
    return df


# --------------------------------------------------------------------------- sweep report

def _pct1(x: Any) -> str:
    return "" if x is None else f"{x:.1f}"


def _source(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def _num(v: Any) -> Any:
    """A DataFrame cell as plain Python (ints stay exact, NaN becomes None)."""
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def sweep_columns(df: "pd.DataFrame") -> list[Column]:
    ranged = bool((df["accuracy_source"] == "estimated").any())  # the table shows top-1's interval
    cols = [
        Column("spec", "Spec", numeric=False, table=False),
        Column("alpha", "α", lambda x: format_number(x)),
        Column("resolution", "Resolution", numeric="width" not in df.columns),
        Column("rho", "ρ", lambda x: f"{x:.4g}"),
    ]
    if "width" in df.columns:  # non-square inputs: each side as a number, and ρ of the width
        cols[3:3] = [Column("height", "Height", table=False), Column("width", "Width", table=False)]
        cols.append(Column("rho_w", "ρ width", lambda x: f"{x:.4g}", table=False))
    cols += [
        Column("macs", "Mult-Adds (M)", millions),
        Column("params", "Params (M)", millions),
    ]
    labels = {k.value: f"% {k.short}" for k in LayerKind}
    for c in df.columns:
        if c.startswith("macs_share_"):
            kind = c[len("macs_share_"):]
            cols.append(Column(c, f"{labels.get(kind, kind)} MACs", lambda x: percent(x, 1)))
    cols += [
        Column("elementwise_ops", "Elementwise ops (M)", millions, table=False),
        Column("activation_elems", "Activations (M)", millions),
        Column("peak_activation_elems", "Peak act. (M)", millions),
        Column("top1", "Top-1 %", _pct1),
        Column("top1_low", "Top-1 low", _pct1, table=ranged),
        Column("top1_high", "Top-1 high", _pct1, table=ranged),
        Column("top5", "Top-5 %", _pct1),
        Column("top5_low", "Top-5 low", _pct1, table=False),
        Column("top5_high", "Top-5 high", _pct1, table=False),
        Column("accuracy_source", "Accuracy", _source, numeric=False),
    ]
    cols += latency_columns(df)
    if "alpha_exact" in df.columns:  # α exactly ('1/3'), so a file reads back the α swept
        cols.append(Column("alpha_exact", "α exact", str, numeric=False, table=False))
    return cols


def latency_columns(df: "pd.DataFrame") -> list[Column]:
    """The latency columns present in a sweep (--target, --measure, --time-share)."""
    cols = []
    if "predicted_latency_ms" in df.columns:
        cols.append(Column("predicted_latency_ms", "Predicted ms", milliseconds))
        for k, head in (("predicted_latency_low_ms", "90% low ms"), ("predicted_latency_high_ms", "90% high ms")):
            if k in df.columns:
                cols.append(Column(k, head, milliseconds, table=False))
    if "latency_ms" in df.columns:
        shown = {"latency_ms": "Latency ms" if "latency_source" in df.columns else "Measured ms",
                 "latency_iqr_ms": "IQR ms"}
        if "latency_median_ms" in df.columns and (df["rounds"].fillna(1) > 1).any():
            shown["latency_median_ms"] = "Median of rounds ms"
        if "noisy" in df.columns and df["noisy"].fillna(False).astype(bool).any():
            shown["noisy"] = "Noisy"
        numeric = {"latency_ms", "latency_iqr_ms", "latency_median_ms", "rounds", "runs",
                   "calls_per_run", "batch", "threads", "load", "cores"}
        for k in MEASURED_COLUMNS:
            if k in df.columns:
                cols.append(Column(k, shown.get(k, k), milliseconds if k.endswith("_ms") else plain,
                                   numeric=k in numeric, table=k in shown))
        for c in df.columns:
            if c.startswith("time_share_"):
                cols.append(Column(c, f"% time {c[len('time_share_'):]}",
                                   lambda x: percent(x, 1)))
    if "latency_source" in df.columns:
        cols.append(Column("latency_source", "Latency", _source, numeric=False))
    if "latency_high_ms" in df.columns:
        cols.append(Column("latency_high_ms", "90% high ms", milliseconds, table=False))
    if "latency_extrapolated" in df.columns:
        cols.append(Column("latency_extrapolated", "Extrapolates", _source, numeric=False,
                           table=bool((df["latency_extrapolated"] != "").any())))
    return cols


def frame_rows(df: "pd.DataFrame", columns: list[Column]) -> list[dict[str, Any]]:
    keys = [c.key for c in columns]
    data = {k: df[k].astype(object).where(df[k].notna(), None).tolist() for k in keys}
    return [{k: _num(data[k][i]) for k in keys} for i in range(len(df))]


def sweep_notes(df: "pd.DataFrame") -> list[str]:
    from ..engine.estimate import COVERAGE, ESTIMATE_METHOD

    notes = ["Mult-Adds = multiply-accumulates (FLOPs = 2 × Mult-Adds); activations in elements "
             "(input image plus every layer's output).",
             df.attrs.get("params_convention", "parameters: conv and FC weights (each spec's "
                          "classes)")]
    src = df["accuracy_source"]
    if (src == "published").any():
        notes.append("published accuracy: the released checkpoints (TF-slim's, else torchvision's) "
                     "where one exists, else the paper's tables; `mobilecost accuracy` lists every "
                     "source.")
    if (src == "estimated").any():
        notes.append(f"estimated accuracy: {ESTIMATE_METHOD}; never above a published point with "
                     f">= α and >= resolution; low-high is a {COVERAGE:.0%} interval from its "
                     "leave-one-out errors (`mobilecost accuracy --validate`).")
    if src.isna().any():
        notes.append("no accuracy where nothing is published and the estimate does not reach "
                     "(specs without released checkpoints; outside the box the checkpoints "
                     "span: `mobilecost accuracy` gives it).")
    if "width" in df.columns and (df["height"] != df["width"]).any():
        notes.append("resolutions are height x width; no accuracy for non-square inputs (every "
                     "published checkpoint was trained and evaluated on square crops).")
    return notes


def sweep_report(df: "pd.DataFrame", limit: int | None = None,
                 extra: list[str] | None = None) -> Report:
    """The sweep as a report; with `limit`, only the first rows (and a note saying so)."""
    names = frame_specs(df)
    spec = ", ".join(names)
    columns = sweep_columns(df)
    if len(names) > 1:
        columns = [Column("spec", "Spec", numeric=False) if c.key == "spec" else c for c in columns]
    shown = df if limit is None or len(df) <= limit else df.head(limit)
    notes = sweep_notes(df) + list(extra or [])
    if len(shown) < len(df):
        notes.insert(0, f"showing the first {len(shown):,} of {len(df):,} configurations; "
                        f"--format csv or --output DIR gives them all")
    return Report(f"{spec}: {len(df):,} configuration{'s' if len(df) != 1 else ''}", columns, frame_rows(shown, columns), notes,
                  drop_order=SWEEP_DROP_ORDER)


# The phone runtimes' names in reports (--runtime executorch|litert; docs/runtimes.md).
PHONE_RUNTIMES = {"executorch": "ExecuTorch", "litert": "LiteRT"}


def setting_note(row: dict[str, Any]) -> str:
    """Device, torch, threads, dtype, batch and format of a measurement, in one line."""
    if row.get("runtime") == "onnxruntime":
        return (f"{row['device_name']} (cpu), ONNX Runtime {row['runtime_version']} (CPU "
                f"execution provider, {row['graph_optimization']}) on the exported file, "
                f"{row['threads']} threads, {row['dtype']}, batch {row['batch']}.")
    if row.get("runtime") in PHONE_RUNTIMES:
        return (f"{row['device_name']} (cpu), {PHONE_RUNTIMES[row['runtime']]} "
                f"{row['runtime_version']} ({row['graph_optimization']}) on the exported file, "
                f"{row['threads']} threads, {row['dtype']}, batch {row['batch']}.")
    return (f"{row['device_name']} ({row['device']}), torch {row['torch_version']}, "
            f"{row['threads']} threads, {row['dtype']}, batch {row['batch']}, "
            f"{row['memory_format']}" + (", torch.compile" if row["compile"] else "")
            + (", CUDA graphs" if row["cuda_graphs"] else "") + ".")


def timing_note(rows: list[dict[str, Any]], rounds: int) -> str:
    """What latency_ms is, for a report's notes."""
    if rounds > 1:
        return (f"latency_ms: the lowest of {rounds} round medians, latency_median_ms their "
                f"median; the grid was timed {rounds} times, one round after the other, and "
                "noise only ever adds time. Each round median is over `runs` timed runs "
                "(torch.utils.benchmark adaptive_autorange, after warm-up).")
    return ("latency_ms: median of `runs` timed runs (torch.utils.benchmark "
            "adaptive_autorange, after warm-up); each run averages calls_per_run calls.")


def noisy_note(rows: list[dict[str, Any]]) -> str | None:
    """A note on the rows flagged noisy, if any."""
    noisy = [r for r in rows if r.get("noisy")]
    if not noisy:
        return None
    return (f"{len(noisy)} of {len(rows)} timings are noisy (column noisy: IQR above 10% of the "
            f"median, or the machine's load above its cores while timing); they were taken "
            f"again and will be measured again on the next run.")


def latency_notes(df: "pd.DataFrame | None", rows: list[dict[str, Any]] | None, target,
                  rounds: int = 1) -> list[str]:
    """Notes on a sweep's predicted (target) and measured latencies."""
    notes = []
    if target is not None:
        notes.append(f"predicted_latency_ms: target {target.name} ({target.method} "
                     f"fitted on {len(target.points)} measured points"
                     + (f", leave-one-out median error {target.prediction_loo_median:.1%}"
                        if target.prediction_loo_median is not None else "") + ").")
        if df is not None and "latency_extrapolated" in df.columns:
            outside = int((df["latency_extrapolated"] != "").sum())
            if outside:
                notes.append(extrapolation_note(target, outside, len(df)))
    if rows:
        notes += measurement_notes(rows, rounds, "measured")
    return notes


def measurement_notes(rows: list[dict[str, Any]], rounds: int, what: str = "") -> list[str]:
    """The setting, what latency_ms is, the noisy and the cached rows, as notes (`what`: a
    label for the setting, such as 'measured')."""
    if not rows:
        return []
    notes = [(f"{what}: " if what else "") + setting_note(rows[0]), timing_note(rows, rounds)]
    if noisy := noisy_note(rows):
        notes.append(noisy)
    cached = sum(1 for r in rows if r.get("cached"))
    if cached:
        notes.append(f"{cached} of {len(rows)} {what + ' ' if what else ''}rows come from the "
                     f"measurement cache (--fresh measures again).")
    return notes


def extrapolation_note(target, outside: int, total: int) -> str:
    """The warning for predictions beyond a target's calibration (also printed on stderr)."""
    from ..latency.model import EXTRAPOLATION_MARGIN

    if target.layers is not None:
        return (f"warning: {outside:,} of {total:,} predicted latencies extrapolate beyond what "
                f"target {target.name} timed; column latency_extrapolated says how (untimed "
                f"layers, priced by the per-layer model, or another batch); the leave-one-out "
                f"error does not apply to them.")
    d = target.domain
    return (f"warning: {outside:,} of {total:,} predicted latencies extrapolate beyond what target "
            f"{target.name} was calibrated on ({d.describe() if d else 'nothing'}); column "
            f"latency_extrapolated says how (spec, batch, α or resolution more than "
            f"{EXTRAPOLATION_MARGIN - 1:.0%} outside); the leave-one-out error does not apply to them.")


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


# --------------------------------------------------------------------------- --spec

def specs_from_option(text: str) -> list[str]:
    """The specs of a `--spec` option: a comma-separated list, or `all` (every built-in)."""
    from ..lang.load import builtin_names

    if text.strip() == "all":
        return builtin_names()
    names = [x.strip() for x in text.split(",")]
    if not all(names):
        raise MobilecostError(f"--spec {text}: an empty name in the list")
    if len(set(names)) != len(names):
        raise MobilecostError(f"--spec {text}: a spec named twice")
    return names


# --------------------------------------------------------------------------- which to measure

def suggest_report(specs: Sequence["Spec | str"], alpha: str, res: str, n: int,
                   batch: int = 1) -> Report:
    """The n configurations of the grid (every spec × the α and resolution options) to measure
    for the best-determined latency fit (`latency.suggest`), with their Mult-Adds. A grid with
    more than MAX_SUGGEST_CANDIDATES configurations is refused before it is enumerated."""
    from ..engine.axes import specs_grid
    from ..lang.load import load_spec
    from ..latency.model import (
        MAX_SUGGEST_CANDIDATES,
        POOR_SPREAD_CONDITION,
        Config,
        layer_features,
        spread_condition,
        suggest,
    )

    loaded = [load_spec(x) for x in specs]
    alphas, resolutions = specs_grid(
        loaded, alpha, res, MAX_SUGGEST_CANDIDATES,
        lambda total: MobilecostError(f"cannot suggest from {total:,} configurations; at most "
                                      f"{MAX_SUGGEST_CANDIDATES:,} (give a coarser grid)"))
    configs = [Config(s, a, r, batch) for s in loaded for a in alphas for r in resolutions]
    chosen = suggest(configs, n)
    rows = [{"spec": c.spec, "alpha": c.alpha, "resolution": c.resolution, "batch": c.batch,
             "macs": layer_features(c).total_macs} for c in chosen]
    rows.sort(key=lambda r: -r["macs"])
    cond = spread_condition(chosen)
    notes = [f"{n} of the grid's {len(configs):,} configurations, chosen for the best-determined fit "
             f"(D-optimal on the model's scaled features); spread condition {cond:.0f} (above "
             f"{POOR_SPREAD_CONDITION:g} a set is poorly spread). Measure them, then `mobilecost "
             f"calibrate`."]
    return Report(f"Configurations to measure ({n})", [
        Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
        Column("resolution", "Resolution"), Column("batch", "Batch"),
        Column("macs", "Mult-Adds (M)", millions)], rows, notes)


# --------------------------------------------------------------------------- formula

def formula_text(spec: "Spec | str", counting: Counting = Counting()) -> str:
    """Total Mult-Adds and parameters as polynomials in α and ρ, where they are exact, and
    three checks against the engine."""
    from ..engine.closedform import closed_form
    from ..engine.cost import cost
    from ..lang.load import load_spec

    s = load_spec(spec)
    f = closed_form(s, counting)
    out = [f"{s.name}: totals as polynomials in α and ρ = resolution / {s.resolution}\n\n",
           f"  {f.macs.format('MACs')}\n", f"  {f.params.format('params')}\n\n"]
    rule = ("int(α·c) rounds channel counts down" if s.rounding.rule == "int"
            else f"channel counts round to multiples of {s.rounding.divisor}")
    step = ("a whole number" if f.alpha_step == 1 else
            f"a multiple of {format_number(f.alpha_step) if f.alpha_step.denominator == 1 else f.alpha_step}")
    floor = f" and α ≥ {f.min_alpha}" if f.min_alpha > f.alpha_step else ""
    whole = ("whole" if s.rounding.rule == "int" else f"a multiple of {s.rounding.divisor}")
    out.append(f"Exact where α is {step}{floor} (α·c is then {whole} for every scaled "
               f"channel count c) and the resolution is a multiple of "
               f"{f.resolution_step} (every feature map is then exactly ρ times its size at "
               f"{s.resolution}). Elsewhere {rule} and SAME padding rounds feature maps up, and "
               f"the polynomial is an approximation; `mobilecost cost` gives the exact count.\n")
    checks = [(Fraction(3, 4), s.resolution * 6 // 7), (Fraction(1), s.resolution),
              (Fraction(3, 10), s.resolution - 23)]
    out.append("\n")
    for a, r in checks:
        if r < 1:
            continue
        try:
            exact = cost(s, a, r, counting).macs
        except MobilecostError:
            continue
        poly = f.macs(a, Fraction(r, s.resolution))
        tag = "exact" if f.exact_at(a, r) else "rounding bites"
        diff = "" if poly == exact else f" ({float(poly - exact) / exact:+.2%})"
        out.append(f"  α = {format_number(a)}, resolution {r} ({tag}): polynomial "
                   f"{float(poly):,.0f}, engine {exact:,}{diff}\n")
    if any("+" in line.split("#")[0] for line in s.format().splitlines()):
        out.append("\nChannels written 'c+' (never below c) count as fixed: the closed form is "
                   "for α ≤ 1.\n")
    return "".join(out)


# --------------------------------------------------------------------------- accuracy

def accuracy_report(validate: bool = False, spec: str = "mobilenet_v1") -> Report:
    """Published accuracy with its sources; with `validate`, the estimate's leave-one-out
    errors on `spec`'s released checkpoints."""
    from ..engine import accuracy as acc
    from ..engine.estimate import COVERAGE, ESTIMATE_METHOD, estimate_leave_one_out, estimator

    if not validate:
        rows = [{"spec": p.spec, "alpha": p.alpha, "resolution": p.resolution, "top1": p.top1,
                 "top5": p.top5, "kind": p.kind, "source": p.source} for p in acc.published()]
        cols = [Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
                Column("resolution", "Resolution"), Column("top1", "Top-1 %", _pct1),
                Column("top5", "Top-5 %", _pct1), Column("kind", "Kind", numeric=False),
                Column("source", "Source", numeric=False)]
        notes = [f"estimate: {ESTIMATE_METHOD}, so it equals every released figure and "
                 "never exceeds a published point with >= α and >= resolution."]
        for name in acc.ESTIMATED_SPECS:
            notes += [f"{name}: law fitted by least squares to {m.points} checkpoints: {m.describe()}"
                      for m in (acc.model(name, "top1"), acc.model(name, "top5")) if m]
        boxes = []
        for name in acc.ESTIMATED_SPECS:
            e = estimator(name, "top1")
            if e is not None:
                (a0, a1), (r0, r1) = e.alpha_range, e.resolution_range
                boxes.append(f"{name} {format_number(a0)} ≤ α ≤ {format_number(a1)}, "
                             f"{r0} ≤ resolution ≤ {r1}")
        notes.append("estimates are given only inside the box each spec's checkpoints span ("
                     + "; ".join(boxes) + "), fitted per spec and never carried to another, "
                     "and are always marked 'estimated'.")
        return Report("Published ImageNet accuracy", cols, rows, notes, drop_order=("kind",))
    if spec not in acc.ESTIMATED_SPECS:
        raise MobilecostError(f"no accuracy estimate for {spec}; estimated: "
                              f"{', '.join(acc.ESTIMATED_SPECS)}")
    rows, notes = [], []
    per_metric = {m: estimate_leave_one_out(spec, m) for m in acc.METRICS}
    for i, p in enumerate(per_metric["top1"]):
        q = per_metric["top5"][i]
        rows.append({"alpha": p.alpha, "resolution": p.resolution, "macs": p.macs,
                     "top1": p.published, "top1_loo": p.predicted, "top1_error": p.error,
                     "top5": q.published, "top5_loo": q.predicted, "top5_error": q.error})
    for m, pts in per_metric.items():
        worst = max(pts, key=lambda p: abs(p.error))
        half = estimator(spec, m).half_width
        law = acc.leave_one_out(spec, m)
        loglin = acc.leave_one_out(spec, m, width_term=False)
        notes.append(f"{m}: leave-one-out RMSE {acc.rmse(pts):.2f} points, largest error "
                     f"{worst.error:+.2f} at α {format_number(worst.alpha)}, {worst.resolution}; "
                     f"{COVERAGE:.0%} interval ±{half:.2f} (holds "
                     f"{sum(abs(p.error) <= half for p in pts)} of {len(pts)}); the fitted law "
                     f"alone: RMSE {acc.rmse(law):.2f} (without (ln α)²: {acc.rmse(loglin):.2f})")
    notes.append(f"estimate: {ESTIMATE_METHOD}; each prediction comes from the estimate rebuilt "
                 "without that point (at the grid's edge it extends the nearest point by the law's "
                 "slope).")

    def signed(x: Any) -> str:
        return "" if x is None else f"{x:+.2f}"

    cols = [Column("alpha", "α", format_number), Column("resolution", "Resolution"),
            Column("macs", "Mult-Adds (M)", millions),
            Column("top1", "Top-1 %", _pct1), Column("top1_loo", "Top-1 LOO", lambda x: f"{x:.2f}"),
            Column("top1_error", "Error", signed),
            Column("top5", "Top-5 %", _pct1), Column("top5_loo", "Top-5 LOO", lambda x: f"{x:.2f}"),
            Column("top5_error", "Error", signed)]
    return Report(f"Leave-one-out validation of the accuracy estimate ({spec})", cols, rows,
                  notes, drop_order=("macs",))


__all__ = ["DEFAULT_ALPHAS", "DEFAULT_RESOLUTIONS", "MEASURED_COLUMNS",
           "accuracy_report", "add_measured", "add_target_latency",
           "extrapolation_note", "family_grid_from_options", "suggest_report", "measurement_notes", "noisy_note",
           "specs_from_option",
           "formula_text", "frame_csv", "frame_csv_bytes", "frame_csv_chunks", "frame_rows", "grid_configs", "grid_from_options",
           "latency_columns", "latency_notes", "require_pyarrow", "setting_note",
           "sweep_columns", "sweep_frame", "sweep_notes", "sweep_report", "timing_note",
           "write_frame", "write_reports", "write_sweep"]
