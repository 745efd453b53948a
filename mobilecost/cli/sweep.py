"""Grid commands: sweep, formula, accuracy, pick. numpy, pandas and matplotlib load on use."""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..cost import Counting
from ..errors import MobilecostError
from ..report import Column, Format, Report, format_number, millions, milliseconds, percent, write_atomic
from .common import BnOpt, FcBiasOpt, FormatOpt, SpecArg, command, err_console, render
from .latency import TargetsDirOpt
from .measuring import (BatchOpt, CacheDirOpt, ChannelsLastOpt, CompileOpt, Device, DeviceOpt,
                        Dtype, DtypeOpt, FreshOpt, GraphsOpt, MaxTimeOpt, MinTimeOpt, RoundsOpt,
                        ThreadsOpt, TimeShareOpt, TimingArgs)

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_ALPHAS = "1,0.75,0.5,0.25"
DEFAULT_RESOLUTIONS = "224,192,160,128"
DEFAULT_OUTPUT = Path("reports")
TABLE_ROWS = 200  # a terminal table longer than this shows its head; files get every row

GridAlphaOpt = Annotated[str, typer.Option(
    "--alpha", "-a", help="Width multipliers: a list (0.25,0.5,1), a range a..b (step 0.25) "
                          "or a..b:step.")]
GridResOpt = Annotated[Optional[str], typer.Option(
    "--res", "-r", help="Resolutions in pixels: a list, a range a..b (step 32) or a..b:step "
                        f"\\[default: {DEFAULT_RESOLUTIONS}]")]
RhoOpt = Annotated[Optional[str], typer.Option(
    "--rho", help="Resolution multipliers of the spec's base resolution instead of --res "
                  "(a list or a range, step 0.25).")]
OutputOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="Write the report files (CSV, JSON, Markdown) into this folder "
                           f"\\[default with --plot: {DEFAULT_OUTPUT}/]")]
PlotOpt = Annotated[bool, typer.Option("--plot", help="Also write the plots (PNG and SVG).")]
MaxConfigsOpt = Annotated[int, typer.Option(
    "--max-configs", help="Refuse grids with more configurations than this, or needing more "
                          "memory than this many written as CSV (560 bytes each, + 256 MiB; the "
                          "per-α work and the output format count).")]
MeasureOpt = Annotated[bool, typer.Option(
    "--measure", help="Also time every configuration in torch and add latency_ms (cached on "
                      "disk: an interrupted sweep resumes; see the timing options).")]
SweepTargetOpt = Annotated[Optional[str], typer.Option(
    "--target", help="Add predicted_latency_ms from this calibrated target "
                     "(see `mobilecost targets`).")]

# Columns a measured sweep takes from the timing rows (time_share_<kind> come as well).
MEASURED_COLUMNS = ("latency_ms", "latency_iqr_ms", "latency_median_ms", "rounds", "runs",
                    "calls_per_run", "batch", "device", "device_name", "torch_version", "threads",
                    "dtype", "memory_format", "compile", "cuda_graphs", "cached", "error")


# --------------------------------------------------------------------------- grid options

def grid_from_options(spec_name: str, alpha: str, res: str | None, rho: str | None,
                      max_configs: int | None = None, fmt: Format | None = None):
    """The spec and its (alphas, resolutions) from the grid options; with `max_configs`, a grid
    too large is refused from the options' arithmetic, before any value is enumerated."""
    from ..grid import grid_from_text
    from ..gridcost import CLI_BYTES_PER_ROW, grid_size_error
    from ..spec import expanded_layers, load_spec

    spec = load_spec(spec_name)
    check = None
    if max_configs is not None:
        layers = expanded_layers(spec.body)
        per_row = CLI_BYTES_PER_ROW[fmt.value] if fmt is not None else 0
        check = lambda n_a, n_r: grid_size_error(n_a, n_r, max_configs, layers, per_row)  # noqa: E731
    alphas, resolutions = grid_from_text(spec, alpha, res, rho, check, DEFAULT_RESOLUTIONS)
    return spec, alphas, resolutions


def _num(v: Any) -> Any:
    """A DataFrame cell as plain Python (ints stay exact, NaN becomes None)."""
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _pct1(x: Any) -> str:
    return "" if x is None else f"{x:.1f}"


def _source(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def sweep_columns(df: "pd.DataFrame") -> list[Column]:
    cols = [
        Column("spec", "Spec", numeric=False, table=False),
        Column("alpha", "α", lambda x: format_number(x)),
        Column("resolution", "Resolution"),
        Column("rho", "ρ", lambda x: f"{x:.4g}"),
        Column("macs", "Mult-Adds (M)", millions),
        Column("params", "Params (M)", millions),
    ]
    labels = {"conv": "% Conv", "depthwise": "% DW", "pointwise": "% 1×1", "fc": "% FC"}
    for c in df.columns:
        if c.startswith("macs_share_"):
            kind = c[len("macs_share_"):]
            cols.append(Column(c, f"{labels.get(kind, kind)} MACs", lambda x: percent(x, 1)))
    cols += [
        Column("activation_elems", "Activations (M)", millions),
        Column("peak_activation_elems", "Peak act. (M)", millions),
        Column("top1", "Top-1 %", _pct1),
        Column("top5", "Top-5 %", _pct1),
        Column("accuracy_source", "Accuracy", _source, numeric=False),
    ]
    return cols + latency_columns(df)


def latency_columns(df: "pd.DataFrame") -> list[Column]:
    """The latency columns present in a sweep (--target, --measure, --time-share)."""
    from ..report import plain

    cols = []
    if "predicted_latency_ms" in df.columns:
        cols.append(Column("predicted_latency_ms", "Predicted ms", milliseconds))
    if "latency_ms" in df.columns:
        shown = {"latency_ms": "Latency ms" if "latency_source" in df.columns else "Measured ms",
                 "latency_iqr_ms": "IQR ms"}
        if "latency_median_ms" in df.columns and (df["rounds"].fillna(1) > 1).any():
            shown["latency_median_ms"] = "Median of rounds ms"
        numeric = {"latency_ms", "latency_iqr_ms", "latency_median_ms", "rounds", "runs",
                   "calls_per_run", "batch", "threads"}
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
    return cols


def frame_rows(df: "pd.DataFrame", columns: list[Column]) -> list[dict[str, Any]]:
    keys = [c.key for c in columns]
    data = {k: df[k].astype(object).where(df[k].notna(), None).tolist() for k in keys}
    return [{k: _num(data[k][i]) for k in keys} for i in range(len(df))]


def sweep_report(df: "pd.DataFrame", limit: int | None = None,
                 extra: list[str] | None = None) -> Report:
    spec = str(df["spec"].iloc[0])
    columns = sweep_columns(df)
    shown = df if limit is None or len(df) <= limit else df.head(limit)
    notes = sweep_notes(df) + list(extra or [])
    if len(shown) < len(df):
        notes.insert(0, f"showing the first {len(shown):,} of {len(df):,} configurations; "
                        f"--format csv or --output DIR gives them all")
    return Report(f"{spec}: {len(df):,} configurations", columns, frame_rows(shown, columns), notes)


def sweep_notes(df: "pd.DataFrame") -> list[str]:
    from ..accuracy import MODEL_EQUATION

    notes = ["Mult-Adds = multiply-accumulates (FLOPs = 2 × Mult-Adds); params are conv and FC "
             "weights; activations in elements (input image plus every layer's output)."]
    src = df["accuracy_source"]
    if (src == "published").any():
        notes.append("published accuracy: the released TF-slim checkpoints (top-1, top-5) where one "
                     "exists, else the paper's tables; `mobilecost accuracy` lists every source.")
    if (src == "estimated").any():
        notes.append(f"estimated accuracy: {MODEL_EQUATION}, fitted to the 16 released MobileNet v1 "
                     "checkpoints; `mobilecost accuracy --validate` shows its leave-one-out error.")
    if src.isna().any():
        notes.append("no accuracy where nothing is published and the fitted model does not reach "
                     "(other specs; mobilenet_v1 outside 0.25 ≤ α ≤ 1, 128 ≤ resolution ≤ 224).")
    return notes


def frame_csv(df: "pd.DataFrame", columns: list[Column]) -> str:
    """The CSV `report.to_csv` gives for these rows, written by pandas (fast on big grids;
    a test checks that the two agree byte for byte)."""
    return df[[c.key for c in columns]].to_csv(index=False, lineterminator="\n", na_rep="")


def write_reports(report: Report, folder: Path, stem: str, csv_text: str | None = None) -> list[Path]:
    """CSV, JSON and Markdown of a report, each written atomically."""
    from ..report import to_csv, to_json, to_markdown

    return [write_atomic(folder / f"{stem}.csv", csv_text if csv_text is not None else to_csv(report)),
            write_atomic(folder / f"{stem}.json", to_json(report)),
            write_atomic(folder / f"{stem}.md", to_markdown(report))]


def _writing(folder: Path):
    """Turn a failed write (disk full, a folder in the way) into one line and exit code 2."""
    import contextlib

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except OSError as exc:
            where = getattr(exc, "filename2", None) or exc.filename or folder
            raise MobilecostError(f"cannot write {where}: {exc.strerror or exc}") from None

    return guard()


def _status(message: str, big: bool):
    """A spinner on stderr for work that takes a while; nothing for small grids."""
    import contextlib

    return err_console.status(message) if big else contextlib.nullcontext()


# --------------------------------------------------------------------------- sweep

def grid_configs(df: "pd.DataFrame") -> list[tuple[Fraction, int]]:
    """(α exactly, from the frame's alpha_exact, resolution) of every row of the sweep, in order."""
    from ..gridcost import frame_alphas

    return list(zip(frame_alphas(df), df["resolution"].tolist()))


def add_target_latency(df: "pd.DataFrame", spec_name: str, configs: list[tuple[Fraction, int]],
                       target, batch: int = 1, measured: bool = False) -> "pd.DataFrame":
    """`predicted_latency_ms` on `target` for every row; with `measured`, also `latency_ms`
    (the target's own measurement where it has one for that configuration, else the
    prediction) and `latency_source` (measured | predicted)."""
    from ..latency import Config
    from ..targets import predict_latencies_ms

    predicted = predict_latencies_ms(target, [(spec_name, a, r, batch) for a, r in configs])
    df = df.assign(predicted_latency_ms=predicted)
    if measured:
        known = {p.config: p.latency_ms for p in target.points}
        found = [known.get(Config(spec_name, a, r, batch)) for a, r in configs]
        df = df.assign(latency_ms=[p if m is None else m for m, p in zip(found, predicted)],
                       latency_source=["predicted" if m is None else "measured" for m in found])
    return df


def add_measured(df: "pd.DataFrame", rows: list[dict[str, Any]]) -> "pd.DataFrame":
    """The timing rows' latency, device and time-share columns beside the sweep's."""
    keys = list(MEASURED_COLUMNS) + sorted(
        {k for r in rows for k in r if k.startswith("time_share_")})
    return df.assign(**{k: [r.get(k) for r in rows] for k in keys})


def load_target(name: str | None, targets_dir: Path | None):
    if name is None:
        return None
    from ..targets import load

    return load(name, targets_dir)


def measured_plots(df: "pd.DataFrame", rows: list[dict[str, Any]], folder: Path, spec_name: str,
                   time_share: bool) -> list[Path]:
    """Measured latency against Mult-Adds, against top-1 with the Pareto frontier, and (with
    time shares) where the time goes."""
    from ..torch.plots import latency_vs_accuracy, latency_vs_macs, time_share_bars

    paths = latency_vs_macs(rows, folder / f"latency_vs_macs_{spec_name}")
    top1 = df["top1"].astype(object).where(df["top1"].notna(), None).tolist()
    source = [_source(x) for x in df["accuracy_source"].tolist()]
    rated = [dict(r, top1=t, accuracy_source=src) for r, t, src in zip(rows, top1, source)]
    if any(t is not None for t in top1):
        paths += latency_vs_accuracy(rated, folder / f"latency_vs_accuracy_{spec_name}")
    if time_share:
        paths += time_share_bars(rows, folder / f"time_share_{spec_name}")
    return paths


def latency_notes(df: "pd.DataFrame", rows: list[dict[str, Any]] | None, target,
                  rounds: int) -> list[str]:
    notes = []
    if target is not None:
        notes.append(f"predicted_latency_ms: target {target.name} ({target.model.form} model "
                     f"fitted on {len(target.points)} measured points"
                     + (f", leave-one-out median error {target.loo_median_error:.1%}"
                        if target.loo_median_error is not None else "") + ").")
    if rows:
        from .measuring import setting_note, timing_note

        notes.append("measured: " + setting_note(rows[0]))
        notes.append(timing_note(rows, rounds))
        cached = sum(1 for r in rows if r.get("cached"))
        if cached:
            notes.append(f"{cached} of {len(rows)} measured rows come from the measurement cache "
                         f"(--fresh measures again).")
    return notes


def checked_output(n_alphas: int, n_res: int, max_configs: int, output: Path | None,
                   plot: bool) -> Path | None:
    """The folder reports go to (made and checked), if any. (grid_from_options has refused a
    grid too large for memory.)"""
    from .common import check_output_dir

    folder = output if output is not None else (DEFAULT_OUTPUT if plot else None)
    if folder is not None:
        check_output_dir(folder)
    return folder


@command("sweep")
def sweep_cmd(spec: SpecArg = "mobilenet_v1", alpha: GridAlphaOpt = DEFAULT_ALPHAS,
              res: GridResOpt = None, rho: RhoOpt = None, format: FormatOpt = Format.table,
              output: OutputOpt = None, plot: PlotOpt = False,
              max_configs: MaxConfigsOpt = 5_000_000, fc_bias: FcBiasOpt = False,
              bn: BnOpt = False, target: SweepTargetOpt = None, targets_dir: TargetsDirOpt = None,
              measure: MeasureOpt = False, batch: BatchOpt = 1, device: DeviceOpt = Device.cpu,
              dtype: DtypeOpt = Dtype.fp32, threads: ThreadsOpt = None,
              channels_last: ChannelsLastOpt = False, compile: CompileOpt = False,
              cuda_graphs: GraphsOpt = False, time_share: TimeShareOpt = False,
              min_time: MinTimeOpt = 1.0, max_time: MaxTimeOpt = 10.0, rounds: RoundsOpt = 1,
              cache_dir: CacheDirOpt = None, fresh: FreshOpt = False) -> None:
    """Cost, Mult-Adds shares, activations and accuracy over a grid of α × resolution.

    With no options: the paper's 16 configurations of MobileNet v1 (α 1, 0.75, 0.5, 0.25 × 224, 192, 160, 128 px). Accuracy is published where it exists, else estimated (and marked so).

    --target NAME adds each configuration's predicted latency on a calibrated target.

    --measure times every configuration in torch and adds the measured latency, with a progress bar and an on-disk cache: an interrupted sweep resumes. The timing options (--batch ... --fresh) are those of `mobilecost measure`; they go with --measure (--batch also with --target).

    Example: mobilecost sweep mobilenet_v1 --alpha 0.25..1 --res 128..224 --plot
    Example: mobilecost sweep --alpha 0.25,0.5 --res 128,160 --measure --threads 2 --rounds 3
    """
    from ..gridcost import sweep

    timing = TimingArgs(batch, device, dtype, threads, channels_last, compile, cuda_graphs,
                        min_time, max_time, rounds, time_share, cache_dir, fresh)
    if not measure:
        stray = [o for o in timing.changed() if not (o == "--batch" and target is not None)]
        if stray:
            raise MobilecostError(f"{', '.join(stray)} {'needs' if len(stray) == 1 else 'need'} --measure")
    if targets_dir is not None and target is None:
        raise MobilecostError("--targets-dir goes with --target")
    # --output writes CSV, JSON and Markdown of every row: JSON, the largest, sets the peak.
    s, alphas, resolutions = grid_from_options(
        spec, alpha, res, rho, max_configs, Format.json if output is not None else format)
    folder = checked_output(len(alphas), len(resolutions), max_configs, output, plot)
    t = load_target(target, targets_dir)
    if measure:
        from ..torch import require_torch

        require_torch()
    big = len(alphas) * len(resolutions) > 200_000
    with _status(f"sweeping {len(alphas) * len(resolutions):,} configurations", big):
        df = sweep(s, alphas, resolutions, Counting(fc_bias, bn), max_configs)
    configs = grid_configs(df)
    if t is not None:
        with _status(f"predicting {len(configs):,} latencies", len(configs) > 2_000):
            df = add_target_latency(df, spec, configs, t, batch)
    rows = None
    if measure:
        from .measuring import run_grid

        rows = run_grid(s, configs, timing)
        df = add_measured(df, rows)
    extra = latency_notes(df, rows, t, rounds)
    if folder is not None:
        with _status("writing reports", big), _writing(folder):
            report = sweep_report(df, extra=extra)
            written = write_reports(report, folder, f"sweep_{s.name}", frame_csv(df, report.columns))
            if plot:
                from ..plots import sweep_plots

                written += sweep_plots(df, folder)
                if rows:
                    written += measured_plots(df, rows, folder, s.name, time_share)
        for path in written:
            err_console.print(f"wrote {path}", highlight=False, markup=False)
    if format is Format.csv:
        with _status("formatting", big):
            text = frame_csv(df, sweep_columns(df))
        sys.stdout.write(text)
        for note in sweep_notes(df) + extra:
            err_console.print(f"note: {note}", highlight=False, markup=False)
        return
    limit = TABLE_ROWS if format is Format.table else None
    with _status("formatting", big and format is not Format.table):
        render(sweep_report(df, limit, extra), format)
    if rows:
        for r in rows:
            if r["error"]:
                err_console.print(f"warning: {s.name} α={format_number(r['alpha'])} "
                                  f"{r['resolution']}: {r['error']}", highlight=False, markup=False)


# --------------------------------------------------------------------------- formula

@command("formula")
def formula_cmd(spec: SpecArg = "mobilenet_v1", fc_bias: FcBiasOpt = False, bn: BnOpt = False) -> None:
    """Total Mult-Adds and parameters as polynomials in α and ρ, read off the spec.

    ρ is the resolution over the spec's base resolution. The polynomials are exact where
    channel rounding does not bite; the output says where that is.

    Example: mobilecost formula mobilenet_v1
    """
    from ..cost import cost
    from ..formula import closed_form
    from ..spec import load_spec

    s = load_spec(spec)
    f = closed_form(s, Counting(fc_bias, bn))
    out = sys.stdout
    out.write(f"{s.name}: totals as polynomials in α and ρ = resolution / {s.resolution}\n\n")
    out.write(f"  {f.macs.format('MACs')}\n")
    out.write(f"  {f.params.format('params')}\n\n")
    rule = ("int(α·c) rounds channel counts down" if s.rounding.rule == "int"
            else f"channel counts round to multiples of {s.rounding.divisor}")
    step = ("a whole number" if f.alpha_step == 1 else
            f"a multiple of {format_number(f.alpha_step) if f.alpha_step.denominator == 1 else f.alpha_step}")
    floor = f" and α ≥ {f.min_alpha}" if f.min_alpha > f.alpha_step else ""
    whole = ("whole" if s.rounding.rule == "int" else f"a multiple of {s.rounding.divisor}")
    out.write(f"Exact where α is {step}{floor} (α·c is then {whole} for every scaled "
              f"channel count c) and the resolution is a multiple of "
              f"{f.resolution_step} (every feature map is then exactly ρ times its size at "
              f"{s.resolution}). Elsewhere {rule} and SAME padding rounds feature maps up, and "
              f"the polynomial is an approximation; `mobilecost cost` gives the exact count.\n")
    checks = [(Fraction(3, 4), s.resolution * 6 // 7), (Fraction(1), s.resolution),
              (Fraction(3, 10), s.resolution - 23)]
    out.write("\n")
    for a, r in checks:
        if r < 1:
            continue
        try:
            exact = cost(s, a, r, Counting(fc_bias, bn)).macs
        except MobilecostError:
            continue
        poly = f.macs(a, Fraction(r, s.resolution))
        tag = "exact" if f.exact_at(a, r) else "rounding bites"
        diff = "" if poly == exact else f" ({float(poly - exact) / exact:+.2%})"
        out.write(f"  α = {format_number(a)}, resolution {r} ({tag}): polynomial "
                  f"{float(poly):,.0f}, engine {exact:,}{diff}\n")
    out.write("\nChannels written 'c+' (never below c) count as fixed: the closed form is for α ≤ 1.\n"
              if any("+" in line.split("#")[0] for line in s.format().splitlines()) else "")


# --------------------------------------------------------------------------- accuracy

ValidateOpt = Annotated[bool, typer.Option(
    "--validate", help="Leave-one-out error of the fitted model on the 16 released checkpoints.")]


@command("accuracy")
def accuracy_cmd(validate: ValidateOpt = False, format: FormatOpt = Format.table) -> None:
    """Published ImageNet accuracy with its sources, and the fitted estimate's equation.

    With --validate: refit the model without each released checkpoint in turn, predict it, and
    print the errors (percentage points).

    Example: mobilecost accuracy --validate
    """
    from .. import accuracy as acc

    if not validate:
        rows = [{"spec": p.spec, "alpha": p.alpha, "resolution": p.resolution, "top1": p.top1,
                 "top5": p.top5, "kind": p.kind, "source": p.source} for p in acc.published()]
        cols = [Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
                Column("resolution", "Resolution"), Column("top1", "Top-1 %", _pct1),
                Column("top5", "Top-5 %", _pct1), Column("kind", "Kind", numeric=False),
                Column("source", "Source", numeric=False)]
        notes = [f"estimate ({acc.MODEL_EQUATION}), fitted by least squares to the "
                 f"{m.points} mobilenet_v1 checkpoints: {m.describe()}"
                 for m in (acc.model("mobilenet_v1", "top1"), acc.model("mobilenet_v1", "top5")) if m]
        notes.append("estimates are given only for mobilenet_v1 inside the fitted box "
                     "(0.25 ≤ α ≤ 1, 128 ≤ resolution ≤ 224) and are always marked 'estimated'.")
        render(Report("Published ImageNet accuracy", cols, rows, notes), format)
        return
    rows, notes = [], []
    per_metric = {m: acc.leave_one_out("mobilenet_v1", m) for m in acc.METRICS}
    for i, p in enumerate(per_metric["top1"]):
        q = per_metric["top5"][i]
        rows.append({"alpha": p.alpha, "resolution": p.resolution, "macs": p.macs,
                     "top1": p.published, "top1_loo": p.predicted, "top1_error": p.error,
                     "top5": q.published, "top5_loo": q.predicted, "top5_error": q.error})
    for m, pts in per_metric.items():
        worst = max(pts, key=lambda p: abs(p.error))
        loglin = acc.leave_one_out("mobilenet_v1", m, width_term=False)
        notes.append(f"{m}: leave-one-out RMSE {acc.rmse(pts):.2f} points, largest error "
                     f"{worst.error:+.2f} at α {format_number(worst.alpha)}, {worst.resolution} "
                     f"(without the (ln α)² term: RMSE {acc.rmse(loglin):.2f}, largest "
                     f"{max(abs(p.error) for p in loglin):.2f})")
    notes.append(f"model: {acc.MODEL_EQUATION}; every prediction comes from a fit to the other 15 points.")
    signed = lambda x: "" if x is None else f"{x:+.2f}"  # noqa: E731
    cols = [Column("alpha", "α", format_number), Column("resolution", "Resolution"),
            Column("macs", "Mult-Adds (M)", millions),
            Column("top1", "Top-1 %", _pct1), Column("top1_loo", "Top-1 LOO", lambda x: f"{x:.2f}"),
            Column("top1_error", "Error", signed),
            Column("top5", "Top-5 %", _pct1), Column("top5_loo", "Top-5 LOO", lambda x: f"{x:.2f}"),
            Column("top5_error", "Error", signed)]
    render(Report("Leave-one-out validation of the accuracy estimate (mobilenet_v1)", cols, rows,
                  notes), format)


# --------------------------------------------------------------------------- pick

MaxMacsOpt = Annotated[Optional[str], typer.Option(
    "--max-macs", help="Mult-Adds budget, e.g. 300M (suffixes k, M, G).")]
MaxParamsOpt = Annotated[Optional[str], typer.Option(
    "--max-params", help="Parameter budget, e.g. 2M (suffixes k, M, G).")]
MaxLatencyOpt = Annotated[Optional[str], typer.Option(
    "--max-latency", help="Latency budget on --target, e.g. 5ms, 0.5s or 800us.")]
PickTargetOpt = Annotated[Optional[str], typer.Option(
    "--target", help="A calibrated target (see `mobilecost targets`): pick by its latency, the "
                     "measured one where it has one for a configuration, else the predicted.")]


def budgets_from_options(max_macs: str | None, max_params: str | None) -> list:
    from ..grid import parse_quantity
    from ..pareto import Budget

    budgets = []
    for column, option, text in (("macs", "--max-macs", max_macs), ("params", "--max-params", max_params)):
        if text is not None:
            budgets.append(Budget(column, parse_quantity(text, option), f"{option} {text}"))
    return budgets


@command("pick")
def pick_cmd(spec: SpecArg = "mobilenet_v1", alpha: GridAlphaOpt = DEFAULT_ALPHAS,
             res: GridResOpt = None, rho: RhoOpt = None, max_macs: MaxMacsOpt = None,
             max_params: MaxParamsOpt = None, max_latency: MaxLatencyOpt = None,
             target: PickTargetOpt = None, targets_dir: TargetsDirOpt = None,
             format: FormatOpt = Format.table, output: OutputOpt = None, plot: PlotOpt = False,
             max_configs: MaxConfigsOpt = 5_000_000) -> None:
    """The Pareto-optimal configurations (top-1 against cost) and the most accurate one in budget.

    Budgets take suffixes k, M and G; --max-latency takes ms, s or us and needs --target.
    With --target the frontier is top-1 against latency on that target: the target's own
    measurement where it has one for a configuration, else its prediction (column Latency
    says which). Exit code 1 when no configuration meets the budget.

    Example: mobilecost pick mobilenet_v1 --alpha 0.25..1:0.05 --res 128..224:16 --max-macs 300M
    Example: mobilecost pick --alpha 0.25..1:0.05 --res 128..224:16 --max-latency 5ms --target my-cpu
    """
    from ..gridcost import sweep
    from ..grid import format_quantity
    from ..pareto import pick
    from .common import fail

    from ..latency import parse_latency_ms
    from ..pareto import Budget

    if max_latency is not None and target is None:
        raise MobilecostError("--max-latency needs --target NAME (a calibrated target; "
                              "see `mobilecost targets`)")
    if targets_dir is not None and target is None:
        raise MobilecostError("--targets-dir goes with --target")
    s, alphas, resolutions = grid_from_options(spec, alpha, res, rho, max_configs, Format.table)
    budgets = []
    if max_latency is not None:
        try:
            limit_ms = parse_latency_ms(max_latency)
        except MobilecostError as exc:
            raise MobilecostError(f"--max-latency: {exc}") from None
        budgets.append(Budget("latency_ms", limit_ms, f"--max-latency {max_latency}"))
    budgets += budgets_from_options(max_macs, max_params)
    folder = checked_output(len(alphas), len(resolutions), max_configs, output, plot)
    t = load_target(target, targets_dir)
    df = sweep(s, alphas, resolutions, max_configs=max_configs)
    if t is not None:
        with _status(f"predicting {len(df):,} latencies", len(df) > 2_000):
            df = add_target_latency(df, spec, grid_configs(df), t, measured=True)
    result = pick(df, budgets, cost="latency_ms" if t is not None else None)
    front = result.frontier
    columns = [c for c in sweep_columns(df) if not c.key.startswith("macs_share_")
               and c.key not in ("activation_elems", "peak_activation_elems")]
    columns.append(Column("within_budget", "In budget", lambda x: "yes" if x else "no", numeric=False))
    what = {"macs": "Mult-Adds", "params": "parameters",
            "latency_ms": f"latency on {target}"}.get(result.cost, result.cost)
    budget_text = ", ".join(str(b) for b in budgets) or "no budget"
    notes = []
    if result.best is not None:
        b = result.best
        lat = (f", {b['latency_ms']:.3f} ms ({b['latency_source']})" if t is not None else "")
        notes.append(f"most accurate within {budget_text}: α {b['alpha']:g}, resolution "
                     f"{int(b['resolution'])}: {b['top1']:.1f}% top-1 ({b['accuracy_source']}), "
                     f"{format_quantity(int(b['macs']))} Mult-Adds, {format_quantity(int(b['params']))} params"
                     + lat)
    notes += sweep_notes(df)[1:]
    if t is not None:
        measured = int((df["latency_source"] == "measured").sum())
        loo = (f" (leave-one-out median error {t.loo_median_error:.1%})"
               if t.loo_median_error is not None else "")
        if measured == len(df):
            notes.append(f"latency on target {t.name}: measured for all {measured:,} "
                         f"configurations (the target's calibration points).")
        else:
            notes.append(f"latency on target {t.name}: measured for {measured:,} of {len(df):,} "
                         f"configurations (the target's calibration points), predicted by its "
                         f"{t.model.form} model for the other {len(df) - measured:,}{loo}.")
    report = Report(f"{s.name}: Pareto-optimal configurations, top-1 against {what} "
                    f"({len(front)} of {len(df):,}; {budget_text})", columns,
                    frame_rows(front, columns), notes)
    if folder is not None:
        with _writing(folder):
            written = write_reports(report, folder, f"pick_{s.name}")
            if plot:
                from ..plots import pareto_plot

                written += pareto_plot(df, result, folder / f"pareto_{s.name}")
        for path in written:
            err_console.print(f"wrote {path}", highlight=False, markup=False)
    if result.best is not None:
        render(report, format)
    else:
        cheapest = {b.column: df[b.column].min() for b in budgets}
        label = {"macs": "Mult-Adds", "params": "parameters", "latency_ms": "ms"}
        detail = ", ".join(
            f"the lowest latency on the grid: {cheapest[b.column]:.3f} ms" if b.column == "latency_ms"
            else f"the fewest {label.get(b.column, b.column)} on the grid: "
                 f"{format_quantity(cheapest[b.column])}" for b in budgets)
        raise fail(f"no configuration with known accuracy meets {budget_text} ({result.feasible:,} "
                   f"within budget; {detail})", 1)
