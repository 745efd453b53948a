"""The sweep's report: the grid from the options, the sweep frame with target latencies and
measurements joined (`run_sweep`), and the report's columns and notes (pick's is
`reports.pick`, on top of this one; files out are `reports.output`). numpy and pandas load on
use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..engine.cost import Counting
from ..engine.sweep import frame_specs
from ..errors import MobilecostError
from ..lang.kinds import LayerKind
from ..util import format_number, millions, milliseconds, percent, plain
from .frame import text_column, with_columns
from .report import Column, Report
from .timing_notes import measurement_notes

if TYPE_CHECKING:
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
SWEEP_DROP_ORDER = ("peak_activation_elems", "activation_elems", "peak_activation_bytes", "macs_share_fc",
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
    `resolutions` (α-major, as `engine.sweep.sweep` gives them); with `measured`, also `latency_ms`
    (the target's own measurement where it has one for that configuration, else the
    prediction) and `latency_source` (measured | predicted)."""
    import numpy as np

    from ..dtypes import lookup as lookup_dtype

    if len(df) != len(alphas) * len(resolutions):
        raise MobilecostError("internal: the sweep's rows are not the α × resolution grid")
    odd = [r for r in resolutions if isinstance(r, tuple)]
    if odd:
        raise MobilecostError(f"{spec_name} at {odd[0][0]}x{odd[0][1]}: latency targets are "
                              f"calibrated and predicted on square inputs only")
    g = target.grid(spec_name, alphas, resolutions, batch)
    df = with_columns(df, predicted_latency_ms=g.predicted_ms.reshape(-1),
                      predicted_latency_low_ms=g.low_ms.reshape(-1),
                      predicted_latency_high_ms=g.high_ms.reshape(-1),
                      latency_extrapolated=text_column(g.extrapolated_codes, g.extrapolated_texts),
                      latency_dtype=lookup_dtype(target.dtype).short)  # the target's precision
    if measured:
        found = g.measured_ms.reshape(-1)
        df = df.assign(latency_ms=g.latency_ms.reshape(-1),
                       latency_high_ms=np.where(np.isnan(found), g.high_ms.reshape(-1), found),
                       latency_source=np.where(np.isnan(found), "predicted", "measured"))
    return df


def add_measured(df: "pd.DataFrame", rows: list[dict[str, Any]]) -> "pd.DataFrame":
    """The timing rows' latency, device and time-share columns beside the sweep's."""
    keys = list(MEASURED_COLUMNS) + sorted(
        {k for r in rows for k in r if k.startswith("time_share_")})
    return df.assign(**{k: [r.get(k) for r in rows] for k in keys})


def sweep_frame(spec: "Spec | str | Sequence[Spec | str]", alphas: Sequence[Fraction],
                resolutions: Sequence[int], counting: Counting = Counting(),
                max_configs: int | None = None, target=None, spec_name: str | None = None,
                batch: int = 1, dtype: str | None = None) -> "pd.DataFrame":
    """The sweep of `spec` over the grid, with `predicted_latency_ms` on `target` if given
    (`spec_name`: the name the target knows the network by, default the spec's). Several specs
    give their sweeps one after the other, each row's `spec` saying whose it is."""
    from ..engine.limits import DEFAULT_MAX_CONFIGS
    from ..engine.sweep import sweep
    from ..lang.load import load_spec

    if isinstance(spec, (list, tuple)):
        import pandas as pd

        frames = [sweep_frame(x, alphas, resolutions, counting, max_configs, target, None, batch,
                              dtype) for x in spec]
        return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    s = load_spec(spec)
    df = sweep(s, alphas, resolutions, counting,
               DEFAULT_MAX_CONFIGS if max_configs is None else max_configs, dtype)
    if target is not None:
        df = add_target_latency(df, spec_name or s.name, alphas, resolutions, target, batch)
    return df


@dataclass
class SweepRun:
    """A sweep done: its frame, the measured rows (with --measure), and the notes on its
    latencies."""

    df: "pd.DataFrame"
    rows: list[dict[str, Any]] | None
    notes: list[str]
    warnings: list[str]  # measurements that stayed noisy or failed


def run_sweep(spec: "Spec | list[Spec]", alphas: Sequence[Fraction], resolutions: Sequence,
              counting: Counting, max_configs: int, *, target=None, spec_name: str | None = None,
              batch: int = 1, timing=None,
              on_progress: Callable[[int, int, str], None] | None = None,
              dtype: str | None = None) -> SweepRun:
    """The sweep of `spec` (or of each of several specs), with predicted latencies on `target`
    and, where `timing` is given (`latency.options.Timing`: `sweep --measure`), every
    configuration timed in torch (cached, resumable); `dtype` adds bytes at that dtype."""
    df = sweep_frame(spec, alphas, resolutions, counting, max_configs, target=target,
                     spec_name=spec_name, batch=batch, dtype=dtype)
    rows = None
    warnings: list[str] = []
    if timing is not None:
        from ..torch.timing import run_grid

        rows = run_grid(spec, grid_configs(df), timing, on_progress, warnings.append)
        df = add_measured(df, rows)
        warnings += [f"{spec.name} α={format_number(r['alpha'])} {r['resolution']}: {r['error']}"
                     for r in rows if r["error"]]
    notes = latency_notes(df, rows, target, timing.rounds if timing is not None else 1)
    if dtype is not None:
        from ..dtypes import lookup as lookup_dtype

        notes.append(f"Bytes at {dtype} (MB = 10^6 bytes), as a file stores them: "
                     f"{lookup_dtype(dtype).scheme}.")
    return SweepRun(df, rows, notes, warnings)


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
    ]
    if "weight_bytes" in df.columns:  # `--dtype`: bytes at it (MB, as a file's size is read)
        cols += [Column("weight_bytes", "Weights (MB)", millions),
                 Column("activation_bytes", "Act. (MB)", millions, table=False),
                 Column("peak_activation_bytes", "Peak act. (MB)", millions)]
    cols += [
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
    if "latency_dtype" in df.columns:  # the precision of the target's latencies (a note says it)
        cols.append(Column("latency_dtype", "Latency dtype", str, numeric=False, table=False))
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
        notes.append("published accuracy: the released checkpoints (TF-slim's, torchvision's or "
                     "timm's) where one exists, else the paper's tables; `mobilecost accuracy` "
                     "lists every source.")
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


def latency_notes(df: "pd.DataFrame | None", rows: list[dict[str, Any]] | None, target,
                  rounds: int = 1) -> list[str]:
    """Notes on a sweep's predicted (target) and measured latencies."""
    from ..latency.precision import latency_note

    notes = []
    if target is not None:
        notes.append(f"predicted_latency_ms: target {target.name} ({target.method} "
                     f"fitted on {len(target.points)} measured points"
                     + (f", leave-one-out median error {target.prediction_loo_median:.1%}"
                        if target.prediction_loo_median is not None else "") + ").")
        notes.append(latency_note(target))
        if df is not None and "latency_extrapolated" in df.columns:
            outside = int((df["latency_extrapolated"] != "").sum())
            if outside:
                notes.append(extrapolation_note(target, outside, len(df)))
    if rows:
        notes += measurement_notes(rows, rounds, "measured")
    return notes


def extrapolation_note(target, outside: int, total: int) -> str:
    """The warning for predictions beyond a target's calibration (also printed on stderr)."""
    p = target.predictor
    d = target.domain
    on = "" if target.layers is not None else f" ({d.describe() if d else 'nothing'})"
    return (f"warning: {outside:,} of {total:,} predicted latencies extrapolate beyond what target "
            f"{target.name} {p.fitted_on}{on}; column latency_extrapolated says how "
            f"({p.extrapolation_reasons}); the leave-one-out error does not apply to them.")


# --------------------------------------------------------------------------- --spec

def specs_from_option(text: str, option: str = "--spec") -> list[str]:
    """The specs of a `--spec` option: a comma-separated list, or `all` (every built-in)."""
    from ..lang.load import builtin_names

    if text.strip() == "all":
        return builtin_names()
    names = [x.strip() for x in text.split(",")]
    if not all(names):
        raise MobilecostError(f"{option} {text}: an empty name in the list")
    if len(set(names)) != len(names):
        raise MobilecostError(f"{option} {text}: a spec named twice")
    return names
__all__ = ["add_measured", "add_target_latency", "DEFAULT_ALPHAS", "DEFAULT_RESOLUTIONS",
           "extrapolation_note", "family_grid_from_options", "frame_rows", "grid_configs",
           "grid_from_options", "latency_columns", "latency_notes", "MEASURED_COLUMNS",
           "specs_from_option", "sweep_columns", "sweep_frame", "sweep_notes", "sweep_report"]
