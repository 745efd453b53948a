"""How well a model predicts points it was not fitted on: predictions with the two baselines
(k·Mult-Adds, c0 + k·Mult-Adds), their error summaries, leave-one-out and held-out
validations (of points, or of a whole network)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..errors import MobilecostError
from ..lang.identity import Network, network_of
from ..lang.spec import Spec
from .features import network_features
from .measurements import Point
from .solve import nnls
from .whole import fit, min_points, predict_ms

WITHIN = 0.10  # the ±10% band of the validation


# --------------------------------------------------------------------------- validation

@dataclass(frozen=True, slots=True)
class Prediction:
    point: Point
    predicted_ms: float
    baseline_ms: float  # Mult-Adds-proportional: k·MACs, k fitted on the same points
    affine_ms: float = float("nan")  # affine in Mult-Adds: c0 + k·MACs, fitted on the same points
    # the target's own predictor where it is not the whole-network model (`Predictor.own`:
    # the layer table's, its overhead fitted on the same points); NaN otherwise
    own_ms: float = float("nan")

    @property
    def error(self) -> float:
        """Relative error of the model: predicted / measured − 1."""
        return self.predicted_ms / self.point.latency_ms - 1

    @property
    def baseline_error(self) -> float:
        return self.baseline_ms / self.point.latency_ms - 1

    @property
    def affine_error(self) -> float:
        return self.affine_ms / self.point.latency_ms - 1

    @property
    def own_error(self) -> float:
        return self.own_ms / self.point.latency_ms - 1


@dataclass(frozen=True, slots=True)
class ErrorSummary:
    n: int
    within: float          # share of |error| ≤ WITHIN
    median_abs: float      # median |relative error|
    worst_abs: float       # largest |relative error|

    @staticmethod
    def of(errors: Sequence[float]) -> "ErrorSummary":
        import numpy as np

        e = np.abs(np.asarray(errors, float))
        if not len(e):
            return ErrorSummary(0, float("nan"), float("nan"), float("nan"))
        return ErrorSummary(len(e), float(np.mean(e <= WITHIN + 1e-12)), float(np.median(e)), float(e.max()))


@dataclass(frozen=True)
class Validation:
    """Predictions of points the model was not fitted on, and their errors."""

    method: str  # "leave-one-out" or "held-out"
    predictions: tuple[Prediction, ...]
    calibration: tuple[Point, ...] = ()  # held-out: the points fitted on
    calibration_fitted_ms: tuple[float, ...] = ()  # and the model's values there

    @property
    def model(self) -> ErrorSummary:
        return ErrorSummary.of([p.error for p in self.predictions])

    @property
    def baseline(self) -> ErrorSummary:
        return ErrorSummary.of([p.baseline_error for p in self.predictions])

    @property
    def affine(self) -> ErrorSummary:
        """The affine baseline c0 + k·MACs (a fixed overhead plus a rate): the honest second
        baseline, which already does well on one network's grid."""
        return ErrorSummary.of([p.affine_error for p in self.predictions])

    @property
    def own(self) -> ErrorSummary:
        """The target's own predictor, where it is not the whole-network model (n = 0 else)."""
        return ErrorSummary.of([p.own_error for p in self.predictions if p.own_ms == p.own_ms])


def fit_macs_baseline(points: Sequence[Point]) -> float:
    """k (ms per Mult-Add) minimising Σ ((k·m_i − t_i) / t_i)²: k = Σ(m/t) / Σ(m/t)²."""
    r = [network_features(p.config).total_macs / p.latency_ms for p in points]
    return sum(r) / sum(x * x for x in r)


def fit_affine_baseline(points: Sequence[Point]) -> tuple[float, float]:
    """(c0 ms, k ms per Mult-Add) ≥ 0 minimising Σ ((c0 + k·m_i − t_i) / t_i)², by non-negative
    least squares on the rows (1/t_i, m_i/t_i) against 1."""
    import numpy as np

    m = np.array([network_features(p.config).total_macs for p in points], dtype=float)
    t = np.array([p.latency_ms for p in points], dtype=float)
    scale = m.max() if len(m) and m.max() > 0 else 1.0  # columns of like size for the solver
    c0, k = nnls(np.stack([1 / t, m / scale / t], axis=1), np.ones(len(t)))
    return float(c0), float(k) / scale


def baselines(train: Sequence[Point], test: Sequence[Point]) -> list[tuple[float, float]]:
    """Both baselines fitted on `train`, at each point of `test`: (k·MACs, c0 + k'·MACs) ms."""
    k = fit_macs_baseline(train)
    c0, k1 = fit_affine_baseline(train)
    macs = [network_features(p.config).total_macs for p in test]
    return [(k * m, c0 + k1 * m) for m in macs]


def _predict_held_out(train: Sequence[Point], test: Sequence[Point], form: str, dtype: str) -> list[Prediction]:
    model = fit(train, form, dtype)
    return [Prediction(p, predict_ms(model, p.config), b, a)
            for p, (b, a) in zip(test, baselines(train, test))]


def leave_one_out(points: Sequence[Point], form: str = "sum", dtype: str = "float32") -> Validation:
    """Fit on all points but one, predict that one, for each point."""
    if len(points) < min_points() + 1:
        raise MobilecostError(f"leave-one-out needs at least {min_points() + 1} measured configurations "
                              f"(each fit needs {min_points()}), got {len(points)}")
    preds = [_predict_held_out([q for j, q in enumerate(points) if j != i], [p], form, dtype)[0]
             for i, p in enumerate(points)]
    return Validation("leave-one-out", tuple(preds))


def held_out(points: Sequence[Point], calibration: Sequence[Point], form: str = "sum",
             dtype: str = "float32") -> Validation:
    """Fit on `calibration`, predict every other point."""
    cal = set(p.config for p in calibration)
    test = [p for p in points if p.config not in cal]
    if not test:
        raise MobilecostError("nothing left to predict: every measured configuration is in the calibration set")
    fitted = [p.predicted_ms for p in _predict_held_out(calibration, calibration, form, dtype)]
    return Validation("held-out", tuple(_predict_held_out(calibration, test, form, dtype)), tuple(calibration),
                      tuple(fitted))


# --------------------------------------------------------------------------- intervals

INTERVAL_COVERAGE = 0.9  # the stated rate of a prediction's interval


def held_out_spec(points: Sequence[Point], spec: "Spec | str | Network", form: str = "sum",
                  dtype: str = "float32") -> Validation:
    """Calibrate on every point of the other networks, predict every point of `spec`'s: the
    question "how fast would a network I never measured be?"."""
    net = network_of(spec)
    test = [p for p in points if p.config.network == net]
    train = [p for p in points if p.config.network != net]
    if not test:
        names = sorted({p.config.spec for p in points})
        raise MobilecostError(f"no measurements of {net.name or spec} to hold out; the target has "
                              f"{', '.join(names)}")
    if len(train) < min_points():
        raise MobilecostError(f"holding out {net.name or spec} leaves {len(train)} measurements of other "
                              f"networks; a fit needs at least {min_points()}")
    model = fit(train, form, dtype)
    preds = tuple(Prediction(p, predict_ms(model, p.config), b, a)
                  for p, (b, a) in zip(test, baselines(train, test)))
    return Validation(f"held-out spec {net.name or spec}", preds, tuple(train),
                      tuple(predict_ms(model, p.config) for p in train))
