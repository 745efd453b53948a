"""How a target turns a configuration into a latency: one `Predictor` interface, two models.

- `WholeNetwork`: the whole-network model (`latency.whole`), fitted on whole-network
  measurements alone; it predicts a grid vectorised, and extrapolates outside the networks,
  batches and α and resolution ranges it was calibrated on.
- `LayerLevel`: the layer table (`latency.layers`), each distinct layer shape timed alone,
  summed with a whole-network overhead; it extrapolates where a layer was not timed.

Everything outside asks the predictor, never which it is: its name (`method`), a prediction
and why it extrapolates, its leave-one-out errors and the interval they give, a grid of
predictions, the same predictor refitted on other points (for validation), the columns it
adds to a prediction (`columns`, `detail`) and the notes that say how it predicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import MobilecostError
from ..lang.identity import Network
from ..util import conformal_half_width
from .layers import FULL_OVERHEAD_POINTS, LayerTable, loo_errors
from .measurements import EXTRAPOLATION_MARGIN, Config, Point
from .roofline import RooflineFit
from .validation import INTERVAL_COVERAGE, leave_one_out
from .whole import Fit, min_points, predict_grid

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

# A layer-level target prices a grid one configuration at a time (each built and summed layer by
# layer, a few ms each): a grid larger than this is refused before any work.
MAX_LAYER_GRID = 20_000


@dataclass(frozen=True)
class GridPrediction:
    """Predictions of an α × resolution grid, each [n_α, n_r] (α-major when flattened, the
    order of `mobilecost.sweep`'s rows)."""

    predicted_ms: "np.ndarray"
    extrapolated_codes: "np.ndarray"     # of int: index into extrapolated_texts
    extrapolated_texts: tuple[str, ...]  # why a prediction extrapolates, '' if it does not
    low_ms: "np.ndarray"         # the 90% interval, NaN where the prediction extrapolates or
    high_ms: "np.ndarray"        # the predictor has too few points to say


class Predictor:
    """How a target predicts (see the module's docstring). `model` is the whole-network model
    every target has: its points are the target's measurements."""

    method: str = ""
    #: (key, header) of the fields `detail` adds to each prediction (none by default).
    columns: tuple[tuple[str, str], ...] = ()
    #: The name of the predictor's own columns in a validation (`Prediction.own_ms`), beside
    #: the whole-network model's; None where the predictor is that model.
    own: str | None = None

    def __init__(self, model: Fit) -> None:
        self.model = model

    @property
    def points(self) -> tuple[Point, ...]:
        return self.model.points

    def predict_ms(self, config: Config) -> float:
        raise NotImplementedError

    def extrapolation(self, config: Config) -> list[str]:
        """Why a prediction of `config` lies outside what the predictor was calibrated on
        (empty: inside, where its leave-one-out error applies)."""
        raise NotImplementedError

    @cached_property
    def loo_errors(self) -> list[float] | None:
        """Leave-one-out relative errors over the target's points (None with too few)."""
        raise NotImplementedError

    @cached_property
    def interval_rel(self) -> float | None:
        """Relative half-width q of the 90% interval, prediction × (1 ± q), inside the
        calibrated range: the ⌈0.9·(n+1)⌉-th smallest leave-one-out error; None with too few
        points for a leave-one-out, infinite with too few for the rate."""
        errors = self.loo_errors
        return None if errors is None else conformal_half_width(errors, INTERVAL_COVERAGE)

    def interval_ms(self, config: Config) -> tuple[float, float]:
        """The prediction's 90% interval (low, high) in ms; NaN, NaN where the prediction
        extrapolates or there are too few points to say."""
        q = self.interval_rel
        if q is None or math.isinf(q) or self.extrapolation(config):
            return math.nan, math.nan
        p = self.predict_ms(config)
        return p * (1 - q), p * (1 + q)

    def grid(self, network: Network, alphas: Sequence, resolutions: Sequence[int],
             batch: int = 1) -> GridPrediction:
        """Every (α, resolution) of a grid, one configuration at a time (`WholeNetwork`
        overrides this with its vectorised form)."""
        import numpy as np

        if len(alphas) * len(resolutions) > MAX_LAYER_GRID:
            raise MobilecostError(f"a {self.method} target predicts one configuration at a time: "
                                  f"at most {MAX_LAYER_GRID:,} per grid, got "
                                  f"{len(alphas) * len(resolutions):,} (give a coarser grid)")
        configs = [[Config(network.name, a, r, batch, network) for r in resolutions]
                   for a in alphas]
        predicted = np.array([[self.predict_ms(c) for c in row] for row in configs], float)
        texts: dict[str, int] = {}
        codes = np.array([[texts.setdefault(", ".join(self.extrapolation(c)), len(texts))
                           for c in row] for row in configs], dtype=np.int64)
        codes = codes.reshape(len(alphas), len(resolutions))
        bounds = np.array([[self.interval_ms(c) for c in row] for row in configs], float)
        return GridPrediction(predicted, codes, tuple(texts), bounds[..., 0], bounds[..., 1])

    def refit(self, points: Sequence[Point]) -> "Predictor":
        """The same predictor fitted on `points` instead (what a held-out validation asks)."""
        raise NotImplementedError

    def held_out_ms(self, train: Sequence[Point], test: Sequence[Point]) -> list[float]:
        """Predictions of `test` by this predictor refitted on `train`."""
        refitted = self.refit(train)
        return [refitted.predict_ms(p.config) for p in test]

    def loo_ms(self) -> list[float]:
        """Each of the target's points predicted with the predictor refitted on the others."""
        pts = self.points
        return [self.held_out_ms([q for q in pts if q is not p], [p])[0] for p in pts]

    def detail(self, config: Config) -> dict[str, Any]:
        """The fields of `columns` for a prediction of `config`."""
        return {}

    def model_notes(self) -> list[str]:
        """The whole-network model's rates, one line each (every target has that model)."""
        c = self.model.coefficients

        def rate(v: float, unit: str) -> str:
            return f"{1e-6 / v:,.1f} {unit}" if v > 0 else "not used (fitted 0)"

        return [f"dense (conv, pointwise, FC) compute: {rate(c['ms_per_mac_dense'], 'GMAC/s')}",
                f"depthwise compute: {rate(c['ms_per_mac_depthwise'], 'GMAC/s')}",
                f"memory: {rate(c['ms_per_byte'], 'GB/s')} ({self.model.dtype})",
                f"fixed cost per layer: {1e3 * c['ms_per_layer']:.1f} µs"]

    def notes(self) -> list[str]:
        """How the predictor predicts beyond the whole-network model, one line each."""
        return []

    def prediction_notes(self, rows: Sequence[dict[str, Any]], first: Config) -> list[str]:
        """What to say of predictions `rows` (with the `detail` fields), `first` the first
        configuration predicted."""
        return []

    def validation_note(self, summary: Any) -> str:
        """The line on the predictor's own errors in a validation (`own` is not None)."""
        return ""

    #: What the predictor was fitted on, as the warning's verb phrase ("target X ...").
    fitted_on = "was calibrated on"

    @property
    def extrapolation_reasons(self) -> str:
        """What column Extrapolates can say, for the warning."""
        return (f"another spec or batch, or α or resolution more than "
                f"{EXTRAPOLATION_MARGIN - 1:.0%} outside its range")

    def extrapolation_note(self, outside: int, total: int, name: str) -> str:
        """The warning for `outside` of `total` predictions extrapolating on target `name`."""
        return (f"{outside} of {total} predictions extrapolate beyond what target {name} "
                f"{self.fitted_on} (column Extrapolates: {self.extrapolation_reasons}); the "
                f"leave-one-out error does not apply to them")


class WholeNetwork(Predictor):
    """The whole-network model: per-layer compute and memory terms, fitted on whole networks."""

    @property
    def method(self) -> str:  # type: ignore[override]
        return f"{self.model.form} model"

    def predict_ms(self, config: Config) -> float:
        return self.model.predict_ms(config)

    def extrapolation(self, config: Config) -> list[str]:
        d = self.model.domain
        return d.outside(config) if d is not None else []

    @cached_property
    def loo_errors(self) -> list[float] | None:
        if len(self.points) < min_points() + 1:
            return None
        return [p.error for p in leave_one_out(self.points, self.model.form,
                                               self.model.dtype).predictions]

    def grid(self, network: Network, alphas: Sequence, resolutions: Sequence[int],
             batch: int = 1) -> GridPrediction:
        """The grid vectorised (`whole.predict_grid`), its extrapolation from the domain's
        ranges, four texts for the four combinations of α and resolution outside."""
        import numpy as np

        predicted = predict_grid(self.model, network, alphas, resolutions, batch)
        d = self.model.domain
        if d is None:
            nan = np.full(predicted.shape, np.nan)
            return GridPrediction(predicted, np.zeros(predicted.shape, dtype=np.int8), ("",),
                                  nan, nan)
        base = [w for w, out in (("spec", network not in d.networks),
                                 ("batch", batch not in d.batches)) if out]
        lo, hi = d.alpha_bounds  # compared as integers: lo ≤ n/d ≤ hi
        a_out = np.array([not (lo.numerator * a.denominator <= a.numerator * lo.denominator
                               and a.numerator * hi.denominator <= hi.numerator * a.denominator)
                          for a in alphas])
        r_out = np.array([not d.resolution_inside(r) for r in resolutions])
        # the four combinations of (α outside, resolution outside), each one text
        texts = tuple(", ".join(base + ["α"] * ao + ["resolution"] * ro)
                      for ao in (0, 1) for ro in (0, 1))
        codes = 2 * a_out[:, None].astype(np.int8) + r_out[None, :].astype(np.int8)
        q = self.interval_rel
        if q is None or math.isinf(q):
            nan = np.full(predicted.shape, np.nan)
            return GridPrediction(predicted, codes, texts, nan, nan)
        ok = np.array([x == "" for x in texts])[codes]
        return GridPrediction(predicted, codes, texts, np.where(ok, predicted * (1 - q), np.nan),
                              np.where(ok, predicted * (1 + q), np.nan))

    def refit(self, points: Sequence[Point]) -> "WholeNetwork":
        from .whole import fit

        return WholeNetwork(fit(points, self.model.form, self.model.dtype))


class LayerLevel(Predictor):
    """The layer table: each layer's timed (or modelled) time, summed, with the overhead."""

    method = "layer-level"
    columns = (("layers", "Layers"), ("layers_timed", "Timed"), ("layers_modelled", "Modelled"))
    own = "layer"

    def __init__(self, model: Fit, table: LayerTable) -> None:
        super().__init__(model)
        self.table = table

    def predict_ms(self, config: Config) -> float:
        return self.table.predict_ms(config)

    def extrapolation(self, config: Config) -> list[str]:
        why = [] if self.table.predict(config).modelled == 0 else ["untimed layers"]
        return why + (["batch"] if config.batch != self.table.batch else [])

    @cached_property
    def loo_errors(self) -> list[float] | None:
        """The overhead refitted without each whole-network point (the table is kept: it
        times layers, not networks); None with under 3 points at the table's batch."""
        pts = [p for p in self.points if p.config.batch == self.table.batch]
        return None if len(pts) < 3 else loo_errors(self.table, pts)

    def refit(self, points: Sequence[Point]) -> "LayerLevel":
        return LayerLevel(self.model, self.table.with_overhead(points))

    def loo_ms(self) -> list[float]:
        if all(p.config.batch == self.table.batch for p in self.points):
            # each network's layer sum once, the overhead refitted without each point
            errors = loo_errors(self.table, self.points)
            return [(1 + e) * p.latency_ms for e, p in zip(errors, self.points)]
        return super().loo_ms()

    def detail(self, config: Config) -> dict[str, Any]:
        lp = self.table.predict(config)
        return {"layers": lp.layers, "layers_timed": lp.from_table, "layers_modelled": lp.modelled}

    def notes(self) -> list[str]:
        table, timing = self.table, self.table.timing
        notes = [f"layer table: {len(table.entries)} layer shapes timed alone (batch {table.batch}, "
                 f"{timing.get('threads')} thread(s), {timing.get('rounds')} round(s), "
                 f"{timing.get('noisy_layers', 0)} noisy); a network = {table.describe_overhead()}, "
                 f"fitted on {table.overhead_points} whole-network measurements"
                 + (f" (the weight bytes, map bytes and per-layer terms need at least "
                    f"{FULL_OVERHEAD_POINTS}: left at 0)"
                    if table.overhead_points < FULL_OVERHEAD_POINTS else "")]
        errors = self.loo_errors
        if errors:
            from .validation import ErrorSummary

            e = ErrorSummary.of(errors)
            notes.append(f"layer-level leave-one-out (overhead refitted): {e.within:.0%} within "
                         f"±10%, median {e.median_abs:.1%}, worst {e.worst_abs:.1%}")
        return notes

    def prediction_notes(self, rows: Sequence[dict[str, Any]], first: Config) -> list[str]:
        table = self.table
        modelled = sum(r["layers_modelled"] for r in rows)
        notes = [f"layer-level: each network is {table.describe_overhead()}; "
                 f"{len(table.entries)} layer shapes timed"
                 + (f"; {modelled} layers of these networks not timed, priced by the per-layer "
                    f"model fitted on the table (column layers_modelled)" if modelled else
                    "; every layer of these networks timed")]
        measured_whole = {p.config.network for p in self.points}
        if self.model.domain is not None and first.network not in measured_whole:
            notes.append(f"{first.spec} was not measured whole: its interval is the "
                         f"leave-one-out of the networks that were "
                         f"({', '.join(sorted({n.name for n in measured_whole}))}), and another "
                         f"family's errors can run wider; measure a few of its configurations and "
                         f"`predict --validate --hold-out-spec {first.spec}` says how much")
        return notes

    def validation_note(self, summary: Any) -> str:
        return (f"layer-level (column Layer err: the {len(self.table.entries)} timed layer "
                f"shapes, overhead refitted on the same points): {summary.within:.0%} within "
                f"±10%, median error {summary.median_abs:.1%}, worst {summary.worst_abs:.1%}")

    fitted_on = "timed"
    extrapolation_reasons = "layers priced by the per-layer model, or another batch"


class Roofline(Predictor):
    """The accelerator model (`latency.roofline`): per layer the slower of compute at a fill-
    dependent rate and bytes at a bandwidth, plus a fixed cost; fitted on whole networks."""

    method = "roofline model"
    own = "roofline"

    def __init__(self, model: Fit, roofline: RooflineFit) -> None:
        super().__init__(model)
        self.roofline = roofline

    @property
    def phi(self) -> int | None:
        """φ where the user declared it (refits keep it), None where it was fitted."""
        return self.roofline.unfused if self.roofline.declared else None

    def predict_ms(self, config: Config) -> float:
        return self.roofline.predict_ms(config)

    def extrapolation(self, config: Config) -> list[str]:
        d = self.roofline.domain
        why = d.outside(config) if d is not None else []
        return why + (["compute share"] if self.roofline.off_calibrated_share(config) else [])

    @cached_property
    def loo_errors(self) -> list[float] | None:
        from .roofline_loo import loo_errors

        return loo_errors(self.points, self.roofline.dtype, self.phi)

    def refit(self, points: Sequence[Point]) -> "Roofline":
        from .roofline import fit as fit_roofline
        from .whole import fit

        return Roofline(fit(points, self.model.form, self.model.dtype),
                        fit_roofline(points, self.roofline.dtype, self.phi))

    def held_out_ms(self, train: Sequence[Point], test: Sequence[Point]) -> list[float]:
        from .roofline import fit as fit_roofline

        return fit_roofline(train, self.roofline.dtype, self.phi).predict_many(
            [p.config for p in test])

    def loo_ms(self) -> list[float]:
        errors = self.loo_errors
        if errors is None:
            return [math.nan] * len(self.points)
        return [(1 + e) * p.latency_ms for e, p in zip(errors, self.points)]

    def model_notes(self) -> list[str]:
        return self.roofline.notes()

    def notes(self) -> list[str]:
        bad = self.roofline.implausible()
        return [f"warning: roofline {', '.join(bad)} outside the plausible range: the fit "
                f"explains these points with an unphysical device; treat its predictions with "
                f"care"] if bad else []

    def validation_note(self, summary: Any) -> str:
        return (f"roofline model (column Roofline err, refitted on the same points): "
                f"{summary.within:.0%} within ±10%, median error {summary.median_abs:.1%}, "
                f"worst {summary.worst_abs:.1%}")

    @property
    def extrapolation_reasons(self) -> str:
        from .roofline import SHARE_MARGIN

        return (f"another spec or batch, α or resolution more than "
                f"{EXTRAPOLATION_MARGIN - 1:.0%} outside its range, or a compute share: its "
                f"share of time on the compute roof more than {100 * SHARE_MARGIN:g} percentage "
                f"points outside the calibration points'")


__all__ = ["GridPrediction", "LayerLevel", "MAX_LAYER_GRID", "Predictor", "Roofline", "WholeNetwork"]
