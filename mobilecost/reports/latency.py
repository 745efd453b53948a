"""Reports of the latency commands: `calibrate` (and the configurations to measure for it),
`targets`, `predict` and `predict --validate`. What a predictor adds (its columns, its notes)
comes from the target's predictor; nothing here asks which predictor it is.

numpy and matplotlib are imported inside these functions, never at import: loading this module
costs the analytic commands nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import MobilecostError
from ..util import format_number, millions, milliseconds, percent
from .report import Column, Report

if TYPE_CHECKING:  # pragma: no cover
    from ..lang.spec import Spec
    from ..latency.checks import TargetValidation
    from ..latency.options import Timing
    from ..latency.targets import Target


def _pct(x: object) -> str:
    return "" if x is None else percent(x, 1)


def _signed_pct(x: object) -> str:
    return "" if x is None else f"{100 * x:+.1f}%"


# --------------------------------------------------------------------------- calibrate

@dataclass(frozen=True)
class Calibrated:
    """A target calibrated and written: its report, where it was written, and a warning to
    repeat on stderr (a poorly spread calibration set), if any."""

    target: "Target"
    path: Path
    report: Report
    warning: str | None
    timing_warnings: tuple[str, ...] = ()  # layers whose timing stayed noisy (a few, and a count)


def calibrate_target(inputs: Sequence[Path], name: str, *, form: str = "sum", model: str = "auto",
                     unfused: str = "auto",
                     manifest: Path | None = None, spec: str | None = None,
                     layers: "Timing | None" = None, layer_specs: str | None = None,
                     alpha: str = "", res: str = "", targets_dir: Path | None = None,
                     on_progress: Callable[[int, int, str], None] | None = None) -> Calibrated:
    """Read measurements (one CSV, or device benchmark logs), fit the target, time its layers
    with torch where `layers` says how (and those of `layer_specs` over `alpha` × `res`), and
    write it. Everything wrong with the inputs is refused before any timing."""
    from ..latency import design
    from ..latency import targets as tg
    from ..latency.logs import read_inputs

    tg.check_name(name)
    from ..latency.choice import MODELS

    if model not in MODELS:
        raise MobilecostError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    phi = {"auto": None, "yes": 1, "no": 0}.get(unfused, -1)
    if phi == -1:
        raise MobilecostError(f"--unfused must be one of auto, yes, no, got {unfused!r}")
    if layer_specs is not None and layers is None:
        raise MobilecostError("--layer-specs goes with --layers")
    extra = [] if layers is None else layer_spec_configs(layer_specs, alpha, res, layers.batch)
    data, source, first = read_inputs(inputs, manifest, spec)
    t = tg.calibrate(name, data, source=source, form=form, model_choice=model, unfused=phi,
                     on_progress=on_progress)
    warnings: list[str] = []
    if layers is not None:
        from ..torch.layers import time_layer_table

        t = time_layer_table(t, extra, layers, data.dtype, on_progress, warnings.append)
        if len(warnings) > 3:
            warnings[3:] = [f"and {len(warnings) - 3} more of the {len(t.layers.entries)} layer "
                            f"shapes (the layer table's timing.noisy_layers counts those that "
                            f"stayed noisy)"]
    path = tg.save(t, targets_dir)
    rows = [{"spec": p.config.spec, "alpha": p.config.alpha, "resolution": p.config.resolution,
             "batch": p.config.batch, "latency_ms": p.latency_ms,
             "fitted_latency_ms": t.predict_ms(p.config),
             "error": t.predict_ms(p.config) / p.latency_ms - 1} for p in t.points]
    from ..latency.predictor import WholeNetwork

    notes = first + WholeNetwork(t.model).model_notes()
    notes.append(f"fit on {len(t.points)} points: median error {t.fit_median_error:.1%}, "
                 f"worst {t.fit_worst_error:.1%}")
    if t.loo_within is not None:
        notes.append(f"leave-one-out: {t.loo_within:.0%} within ±10%, median "
                     f"{t.loo_median_error:.1%}, worst {t.loo_worst_error:.1%}")
    if t.roofline is not None:
        notes += t.roofline.notes()
    if t.layers is None:
        notes.append(f"predicts with the {t.choice}")
    cond = design.spread_condition([p.config for p in t.points], t.model.dtype)
    poor = None
    if cond > design.POOR_SPREAD_CONDITION:
        poor = (f"the {len(t.points)} calibration points are poorly spread (spread condition "
                f"{cond:.0f}, above {design.POOR_SPREAD_CONDITION:g}): some coefficients are "
                f"barely determined; `mobilecost suggest -n N SPEC...` chooses "
                f"better-spread ones")
        notes.append("warning: " + poor)
    notes += t.predictor.notes()
    report = Report(f"Target {name}: {t.method} fitted to {source}", [
        Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
        Column("resolution", "Res"), Column("batch", "Batch"),
        Column("latency_ms", "Measured ms", milliseconds),
        Column("fitted_latency_ms", "Fitted ms", milliseconds),
        Column("error", "Error", _signed_pct)], rows, notes)
    return Calibrated(t, path, report, poor, tuple(warnings))


MAX_LAYER_CONFIGS = 5_000  # configurations --layer-specs × --alpha × --res may name


def layer_spec_configs(layer_specs: str | None, alpha: str, res: str, batch: int) -> list:
    """The configurations of --layer-specs over --alpha × --res (checked before any timing)."""
    if layer_specs is None:
        return []
    from ..engine.axes import specs_grid
    from ..lang.identity import Network
    from ..lang.load import load_spec
    from ..lang.spec import checked_configs
    from ..latency.measurements import Config
    from .sweep import specs_from_option

    specs = [load_spec(x) for x in specs_from_option(layer_specs, "--layer-specs")]
    alphas, resolutions = specs_grid(
        specs, alpha, res, MAX_LAYER_CONFIGS,
        lambda total: MobilecostError(f"--layer-specs × --alpha × --res is {total:,} "
                                      f"configurations; at most {MAX_LAYER_CONFIGS:,}"))
    return [Config(s.name, a, r, batch, Network.of(s))
            for s in specs for a, r in checked_configs(s, [(a, r) for a in alphas for r in resolutions])]


# --------------------------------------------------------------------------- targets

def targets_report(directory: Path | None = None) -> tuple[Report, list[str]]:
    """Every target in the folder, and a warning for each file that is not one."""
    from ..latency import targets as tg
    from ..latency.whole import COEFFICIENTS

    directory = directory or tg.default_dir()
    good, bad = tg.scan(directory)
    rows = [{"target": t.name, "device": t.device, "points": len(t.points), "form": t.model.form,
             "dtype": t.model.dtype, "fit_median_error": t.fit_median_error,
             "fit_worst_error": t.fit_worst_error, "loo_within_10pct": t.loo_within,
             "loo_median_error": t.loo_median_error, "loo_worst_error": t.loo_worst_error,
             **t.model.coefficients, "predicts": t.method,
             "calibrated_on": t.domain.describe() if t.domain else "",
             "source": t.source, "created": t.created} for t in good]
    columns = [Column("target", "Target", numeric=False), Column("device", "Device", numeric=False),
               Column("points", "Points"), Column("form", "Model", numeric=False),
               Column("dtype", "Dtype", numeric=False),
               Column("fit_median_error", "Fit median err", _pct),
               Column("fit_worst_error", "Fit worst err", _pct),
               Column("loo_within_10pct", "LOO ±10%", _pct),
               Column("loo_median_error", "LOO median", _pct),
               Column("loo_worst_error", "LOO worst", _pct)]
    columns += [Column(k, k, table=False) for k in COEFFICIENTS]
    columns += [Column("predicts", "Predicts", numeric=False, table=False),
                Column("calibrated_on", "Calibrated on", numeric=False, table=False),
                Column("source", "Source", numeric=False, table=False),
                Column("created", "Created", numeric=False, table=False)]
    notes = [] if rows else [f"no targets in {directory}; make one with 'mobilecost calibrate'"]
    other = [t for t in good if t.method != f"{t.model.form} model"]
    if other:
        notes.append(f"{', '.join(f'{t.name} ({t.method})' for t in other)} "
                     f"{'predicts' if len(other) == 1 else 'predict'} otherwise than the "
                     f"whole-network model; the Fit and LOO columns are the whole-network "
                     f"model's, `mobilecost predict --validate --target NAME` shows both")
    return Report(f"Targets in {directory}", columns, rows, notes), [f"warning: {m}" for m in bad]


# --------------------------------------------------------------------------- predict

def predict_report(t: "Target", spec: str, alphas: Sequence, resolutions: Sequence[int] | None,
                   batch: int = 1) -> tuple[Report, str | None]:
    """Predictions of every α × resolution on target `t`, with the measurement where it has
    one; and the warning to repeat on stderr where some extrapolate."""
    from ..lang.load import load_spec
    from ..latency.features import network_features
    from ..latency.measurements import Config
    from ..latency.precision import latency_note, short

    resolutions = resolutions or [load_spec(spec).resolution]
    p = t.predictor
    rows = []
    for a in alphas:
        for r in resolutions:
            config = Config(spec, a, r, batch)
            predicted, measured = t.predict_ms(config), t.measured_ms(config)
            low, high = t.interval_ms(config)
            rows.append({"spec": config.spec, "alpha": a, "resolution": r, "batch": batch,
                         "macs": network_features(config).total_macs,
                         "predicted_latency_ms": predicted,
                         "predicted_latency_low_ms": None if low != low else low,
                         "predicted_latency_high_ms": None if high != high else high,
                         "measured_latency_ms": measured,
                         "error": None if measured is None else predicted / measured - 1,
                         "extrapolated": ", ".join(t.extrapolation(config)),
                         "latency_dtype": short(t.dtype), **p.detail(config)})
    outside = [r for r in rows if r["extrapolated"]]
    domain = t.domain
    notes = [f"target {t.name}: {t.method} fitted on {len(t.points)} points of "
             f"{domain.describe() if domain else 'nothing'}", latency_note(t)]
    notes += p.prediction_notes(rows, Config(spec, alphas[0], resolutions[0], batch))
    loo = _pct(t.prediction_loo_median) or "n/a"
    if len(outside) < len(rows):
        q = t.interval_rel
        notes.append(f"leave-one-out median error {loo}: it applies to predictions inside that range"
                     + (f"; 90% low-high: the prediction × (1 ± {q:.1%}), the leave-one-out errors' "
                        f"90% rank" if q is not None and q != float("inf") else
                        "; too few points for a 90% interval"))
    warning = p.extrapolation_note(len(outside), len(rows), t.name) if outside else None
    if warning:
        notes.append(warning)
    report = Report(f"Predicted latency on {t.name}", [
        Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
        Column("resolution", "Res"), Column("batch", "Batch"), Column("macs", "Mult-Adds"),
        Column("predicted_latency_ms", "Predicted ms", milliseconds),
        Column("predicted_latency_low_ms", "90% low", milliseconds),
        Column("predicted_latency_high_ms", "90% high", milliseconds),
        Column("measured_latency_ms", "Measured ms", milliseconds),
        Column("error", "Error", _signed_pct),
        Column("extrapolated", "Extrapolates", numeric=False, table=bool(outside)),
        Column("latency_dtype", "Latency dtype", numeric=False, table=False)]
        + [Column(k, header, table=False) for k, header in p.columns], rows, notes)
    return report, warning


# --------------------------------------------------------------------------- validate

def validation_report(tv: "TargetValidation", out_dir: Path) -> Report:
    """A target's validation (`latency.checks.validate`) as a report, its plot written into
    `out_dir`."""
    from ..latency.checks import own_predictor
    from .plots import plot_validation

    t, v = tv.target, tv.validation
    ownp = own_predictor(t)
    own = None if ownp is None else ownp.own
    rows = [{"spec": p.point.config.spec, "alpha": p.point.config.alpha,
             "resolution": p.point.config.resolution, "batch": p.point.config.batch,
             "measured_latency_ms": p.point.latency_ms, "predicted_latency_ms": p.predicted_ms,
             "error": p.error, "baseline_latency_ms": p.baseline_ms,
             "baseline_error": p.baseline_error, "affine_latency_ms": p.affine_ms,
             "affine_error": p.affine_error,
             **({f"{own}_latency_ms": p.own_ms, f"{own}_error": p.own_error} if own else {})}
            for p in v.predictions]
    files = plot_validation(v, out_dir / tv.stem, f"target {t.name} ({t.model.form} model)")
    m, b, af = v.model, v.baseline, v.affine
    ratio = b.median_abs / m.median_abs if m.median_abs else float("inf")
    notes = []
    if tv.how == "measurements":
        notes.append(f"{tv.overlap} of these {m.n} configurations are among the {len(t.points)} "
                     f"the target was fitted on (measured again, not held out)")
    if tv.how == "hold-out-spec":
        names = sorted({p.config.spec for p in v.calibration})
        notes.append(f"calibrated on the {len(v.calibration)} measurements of {', '.join(names)}")
    elif v.calibration and v.method == "held-out":
        notes.append("calibrated on " + ", ".join(p.config.label for p in v.calibration))
    notes += [f"{'whole-network ' if own else ''}model: {m.within:.0%} of {m.n} within ±10% of "
              f"measured, median error {m.median_abs:.1%}, worst {m.worst_abs:.1%}",
              f"Mult-Adds-proportional baseline (k·MACs, fitted on the same points): {b.within:.0%} "
              f"within ±10%, median error {b.median_abs:.1%}, worst {b.worst_abs:.1%}; "
              f"median error ratio baseline/model {ratio:.1f}×",
              f"affine baseline (c0 + k·MACs, fitted on the same points): {af.within:.0%} within "
              f"±10%, median error {af.median_abs:.1%}, worst {af.worst_abs:.1%}"]
    if own:
        notes.append(ownp.validation_note(v.own))
    notes.append("plot: " + ", ".join(str(f) for f in files))
    head = own.capitalize() if own else ""
    return Report(f"Validation of target {t.name}: {v.method}", [
        Column("spec", "Spec", numeric=False), Column("alpha", "α", format_number),
        Column("resolution", "Res"), Column("batch", "Batch"),
        Column("measured_latency_ms", "Measured ms", milliseconds),
        Column("predicted_latency_ms", "Predicted ms", milliseconds),
        Column("error", "Error", _signed_pct), Column("baseline_latency_ms", "k·MACs ms", milliseconds),
        Column("baseline_error", "k·MACs err", _signed_pct),
        Column("affine_latency_ms", "c0+k·MACs ms", milliseconds, table=False),
        Column("affine_error", "c0+k·MACs err", _signed_pct)]
        + ([Column(f"{own}_latency_ms", f"{head} ms", milliseconds, table=False),
            Column(f"{own}_error", f"{head} err", _signed_pct)] if own else []),
        rows, notes, drop_order=("baseline_latency_ms", "batch", "predicted_latency_ms",
                                 "measured_latency_ms"))


# --------------------------------------------------------------------------- which to measure

def suggest_report(specs: Sequence["Spec | str"], alpha: str, res: str, n: int,
                   batch: int = 1, model: str = "whole", dtype: str = "float32") -> Report:
    """The n configurations of the grid (every spec × the α and resolution options) to measure
    for the best-determined latency fit (`latency.suggest`), with their Mult-Adds. A grid with
    more than MAX_SUGGEST_CANDIDATES configurations is refused before it is enumerated."""
    from ..engine.axes import specs_grid
    from ..lang.load import load_spec
    from ..latency.design import (
        MAX_SUGGEST_CANDIDATES,
        POOR_SPREAD_CONDITION,
        spread_condition,
        suggest,
    )
    from ..latency.features import network_features
    from ..latency.measurements import Config

    loaded = [load_spec(x) for x in specs]
    alphas, resolutions = specs_grid(
        loaded, alpha, res, MAX_SUGGEST_CANDIDATES,
        lambda total: MobilecostError(f"cannot suggest from {total:,} configurations; at most "
                                      f"{MAX_SUGGEST_CANDIDATES:,} (give a coarser grid)"))
    configs = [Config(s, a, r, batch) for s in loaded for a in alphas for r in resolutions]
    if model == "roofline":
        return _suggest_roofline_report(configs, n, dtype)
    if model != "whole":
        raise MobilecostError(f"--model must be one of whole, roofline, got {model!r}")
    chosen = suggest(configs, n)
    rows = [{"spec": c.spec, "alpha": c.alpha, "resolution": c.resolution, "batch": c.batch,
             "macs": network_features(c).total_macs} for c in chosen]
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


def _suggest_roofline_report(configs: list, n: int, dtype: str) -> Report:
    """`suggest --model roofline`: the configurations in the order to measure them, each with
    how wide the 90% interval of the grid's predictions is once it is measured."""
    from ..dtypes import lookup as lookup_dtype
    from ..latency.design_roofline import NOISE, PRIOR, has_dense_convolutions, suggest_roofline
    from ..latency.features import network_features
    from ..latency.roofline import min_points as roofline_min_points

    dtype = lookup_dtype(dtype).name
    steps = suggest_roofline(configs, n, dtype)
    rows = [{"order": i + 1, "spec": st.config.spec, "alpha": st.config.alpha,
             "resolution": st.config.resolution, "batch": st.config.batch,
             "macs": network_features(st.config).total_macs,
             "half_width_90": None if st.half_width == float("inf") else st.half_width}
            for i, st in enumerate(steps)]
    first = next((r["order"] for r in rows if r["half_width_90"] is not None), None)
    notes = [f"{n} of the grid's {len(configs):,} configurations, in the order to measure them: "
             f"each the one that most sharpens the roofline model's five parameters (D-optimal "
             f"on ∂ ln T / ∂ ln θ at a prior device: {PRIOR['peak'] / 1e12:g} TMAC/s, depthwise "
             f"at {PRIOR['depthwise_efficiency']:.0%}, {PRIOR['bandwidth'] / 1e9:g} GB/s, "
             f"{PRIOR['overhead'] * 1e6:g} µs a layer, W½ {PRIOR['fill_half']:g}; {dtype})",
             f"90% ±: the widest 90% interval of any configuration of the grid once the rows up "
             f"to it are measured, at {NOISE:.0%} noise per measurement; empty while the "
             f"parameters are not all determined"
             + (f" (the first {first} determine them; `calibrate` asks for "
                f"{roofline_min_points()}, so that the fit's error means something)" if first else
                " (these do not determine them: measure more)"),
             "the design is local to the prior: once a few points are measured, `mobilecost "
             "calibrate --model roofline` shows the device's own parameters"]
    first_of = {c.network: c for c in reversed(configs)}  # one configuration of each network
    if not any(has_dense_convolutions(c) for c in first_of.values()):
        notes.append("warning: none of these networks has a dense k×k convolution beyond its "
                     "stem, so the fit will not see the device run one, and networks that have "
                     "them (MobileNetV4-Conv's fused blocks, full convolutions) will be priced by "
                     "a peak these points barely exercise (docs/latency.md, 'Measured figures'); "
                     "add one such network, e.g. mobilenetv4_conv_small")
    return Report(f"Configurations to measure for the roofline model ({n})", [
        Column("order", "#"), Column("spec", "Spec", numeric=False),
        Column("alpha", "α", format_number), Column("resolution", "Resolution"),
        Column("batch", "Batch"), Column("macs", "Mult-Adds (M)", millions),
        Column("half_width_90", "90% ±", _pct)], rows, notes)
