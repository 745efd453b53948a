"""How well a target predicts: `validate` predicts measured points the predictors were not
fitted on (leave-one-out; a held-out part of the target's points; a held-out network; new
measurements) with the whole-network model, the two Mult-Adds baselines and, where the
target predicts otherwise, its own predictor, each refitted on the same calibration points.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ..errors import MobilecostError
from ..lang.identity import network_of
from .design import spread_subset
from .measurements import Point, parse_alpha_res, read_measurements
from .precision import check_dtype, short
from .targets import Target
from .validation import Prediction, Validation, baselines, held_out, held_out_spec, leave_one_out


@dataclass(frozen=True)
class TargetValidation:
    """A target's validation, what it held out (`how`, for notes) and a file stem for its
    plot."""

    target: Target
    validation: Validation
    how: str        # calibrate-on | calibrate-with | hold-out-spec | measurements | leave-one-out
    stem: str
    overlap: int = 0  # new measurements: how many are among the target's own points


def _split(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise MobilecostError(f"{what} is empty")
    return items


def validate(t: Target, *, calibrate_on: int | None = None, calibrate_with: str | None = None,
             measurements: Path | None = None, hold_out_spec: str | None = None) -> TargetValidation:
    """Validate target `t` one way (at most one of the options; none: leave-one-out)."""
    given = [x is not None for x in (calibrate_on, calibrate_with, measurements, hold_out_spec)]
    if sum(given) > 1:
        raise MobilecostError("give at most one of --calibrate-on, --calibrate-with, --measurements "
                              "and --hold-out-spec")
    points = list(t.points)
    form, dtype = t.model.form, t.model.dtype
    overlap = 0
    if calibrate_on is not None:
        v = held_out(points, spread_subset(points, calibrate_on), form, dtype)
        how, stem = "calibrate-on", f"validate_{t.name}_heldout{calibrate_on}"
    elif calibrate_with is not None:
        wanted = [parse_alpha_res(x) for x in _split(calibrate_with, "--calibrate-with")]
        by_config = {p.config: p for p in points}
        missing = [c.label for c in wanted if c not in by_config]
        if missing:
            raise MobilecostError(f"--calibrate-with: not among target {t.name}'s measured points: "
                                  f"{', '.join(missing)}")
        v = held_out(points, [by_config[c] for c in wanted], form, dtype)
        how, stem = "calibrate-with", f"validate_{t.name}_with{len(wanted)}"
    elif hold_out_spec is not None:
        v = held_out_spec(points, hold_out_spec, form, dtype)
        how, stem = "hold-out-spec", f"validate_{t.name}_without_{network_of(hold_out_spec).name}"
    elif measurements is not None:
        data = read_measurements(measurements)
        check_dtype(t, data.dtype, f"{measurements} is of", f"validate on {short(t.dtype)} "
                    f"measurements")
        preds = tuple(Prediction(p, t.model.predict_ms(p.config), b, a)
                      for p, (b, a) in zip(data.points, baselines(points, data.points)))
        v = Validation("held-out (new measurements)", preds, tuple(points))
        seen = {p.config for p in points}
        overlap = sum(p.point.config in seen for p in v.predictions)
        how, stem = "measurements", f"validate_{t.name}_{measurements.stem}"
    else:
        v = leave_one_out(points, form, dtype)
        how, stem = "leave-one-out", f"validate_{t.name}_loo"
    return TargetValidation(t, _with_own(t, v, points), how, stem, overlap)


def _with_own(t: Target, v: Validation, points: Sequence[Point]) -> Validation:
    """The validation with the target's own predictor's value at each point (where it is not
    the whole-network model), refitted on the validation's calibration points: without the
    point itself in a leave-one-out, as stored for new measurements."""
    p = own_predictor(t)
    if p is None:
        return v
    if v.method == "leave-one-out":
        ms = p.loo_ms()
    elif v.method == "held-out (new measurements)":
        ms = [p.predict_ms(q.point.config) for q in v.predictions]
    else:
        ms = p.held_out_ms(v.calibration, [q.point for q in v.predictions])
    return replace(v, predictions=tuple(replace(q, own_ms=x) for q, x in zip(v.predictions, ms)))


def own_predictor(t: Target):
    """The predictor a validation shows beside the whole-network model: the target's own where
    it predicts otherwise (layer table, roofline), else its roofline model where it has one
    (so that both models are reported), else None."""
    if t.predictor.own is not None:
        return t.predictor
    return t.roofline_predictor


__all__ = ["TargetValidation", "own_predictor", "validate"]
