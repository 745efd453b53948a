"""Published ImageNet accuracy, and an estimate between the published points that never
contradicts them.

Published rows live in `data/accuracy.csv`, each with its source: the 16 released MobileNet v1
checkpoints (top-1 and top-5, TF-slim) and the paper's tables (top-1 only). Where a configuration
has a checkpoint row that row is shown, else the paper's.

For MobileNet v1 a law is fitted by least squares to the 16 checkpoints:

    top(α, ρ) = c0 + c1 · ln(MACs) + c2 · (ln α)²

The paper observes that accuracy is log-linear in Mult-Adds "with a jump when models get very
small at α = 0.25"; the (ln α)² term is that drop, zero at α = 1 and growing as the network
narrows. Top-5 uses the same form.

The estimate between published points is `engine.estimate`'s.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Sequence

from ..lang.load import load_spec
from ..lang.spec import Spec
from ..lang.values import to_fraction

if TYPE_CHECKING:
    import numpy as np

SOURCES = ("published", "estimated")  # accuracy_source categories; missing accuracy is empty
# Specs whose released checkpoints the estimate is fitted to, each on its own: never carried
# over to another family.
ESTIMATED_SPECS = ("mobilenet_v1", "mobilenet_v2")
METRICS = ("top1", "top5")
MODEL_EQUATION = "top = c0 + c1·ln(MACs) + c2·(ln α)²"


@dataclass(frozen=True, slots=True)
class PublishedAccuracy:
    """One published accuracy, ImageNet %, with where it comes from."""

    spec: str
    alpha: Fraction
    resolution: int
    top1: float
    top5: float | None
    kind: str  # checkpoint | paper
    source: str


@lru_cache(maxsize=1)
def published() -> tuple[PublishedAccuracy, ...]:
    """Every published row shipped with the package."""
    text = (resources.files("mobilecost.engine") / "data" / "accuracy.csv").read_text(encoding="utf-8")
    rows = []
    for r in csv.DictReader(text.splitlines()):
        rows.append(PublishedAccuracy(
            r["spec"], to_fraction(r["alpha"]), int(r["resolution"]), float(r["top1"]),
            float(r["top5"]) if r["top5"] else None, r["kind"], r["source"]))
    return tuple(rows)


@lru_cache(maxsize=None)
def _builtin(name: str) -> Spec:
    return load_spec(name)


def builtin_match(spec: Spec) -> str | None:
    """The built-in spec name that `spec` is (same layers, whatever its file), if any. ImageNet's
    1,000 classes and TF-slim's 1,001 (a background class first) are one task: a built-in
    with `--classes 1001` keeps its published accuracy."""
    from ..lang.load import classes_of, with_classes

    n = classes_of(spec)
    for name in sorted({p.spec for p in published()}):
        builtin = _builtin(name)
        same = dataclasses.replace(spec, name=builtin.name)
        if n in (1000, 1001) and classes_of(builtin) in (1000, 1001):
            same = with_classes(same, classes_of(builtin))
        if same == builtin:
            return name
    return None


def lookup(spec: Spec) -> dict[tuple[Fraction, int], PublishedAccuracy]:
    """Published accuracy of a spec by (α, resolution): checkpoint rows before paper rows."""
    name = builtin_match(spec)
    out: dict[tuple[Fraction, int], PublishedAccuracy] = {}
    for p in published():
        if p.spec == name:
            key = (p.alpha, p.resolution)
            if key not in out or (out[key].kind == "paper" and p.kind == "checkpoint"):
                out[key] = p
    return out


# --------------------------------------------------------------------------- the fitted model

@dataclass(frozen=True, slots=True)
class AccuracyModel:
    """top = c0 + c1·ln(MACs) + c2·(ln α)², valid inside its fitted (α, resolution) box."""

    spec: str
    metric: str  # top1 | top5
    coef: tuple[float, float, float]
    alpha_range: tuple[Fraction, Fraction]
    resolution_range: tuple[int, int]
    points: int

    def predict(self, alpha: "np.ndarray", macs: "np.ndarray") -> "np.ndarray":
        import numpy as np

        a = np.asarray(alpha, dtype=np.float64)
        return (self.coef[0] + self.coef[1] * np.log(np.asarray(macs, dtype=np.float64))
                + self.coef[2] * np.log(a) ** 2)

    def describe(self) -> str:
        c0, c1, c2 = self.coef
        return f"{self.metric} = {c0:.3f} + {c1:.4f}·ln(MACs) {'+' if c2 >= 0 else '-'} {abs(c2):.4f}·(ln α)²"


def _design(alpha: "np.ndarray", macs: "np.ndarray", width_term: bool = True) -> "np.ndarray":
    """Columns 1, ln(MACs), (ln α)²; without the width term, the paper's plain log-linear law."""
    import numpy as np

    cols = [np.ones_like(macs), np.log(macs)] + ([np.log(alpha) ** 2] if width_term else [])
    return np.column_stack(cols)


def _points(spec_name: str, metric: str) -> list[tuple[PublishedAccuracy, int, float]]:
    """The checkpoints the estimate of a spec is fitted to: those of widths released at two
    resolutions or more (a width with one checkpoint, such as MobileNetV2's 1.3 and 1.4 at 224,
    has no curve to follow; it stays a published point)."""
    from collections import Counter

    from .cost import cost

    rows = []
    for p in published():
        value = getattr(p, metric)
        if p.spec == spec_name and p.kind == "checkpoint" and value is not None:
            rows.append((p, cost(spec_name, p.alpha, p.resolution).macs, value))
    per_width = Counter(p.alpha for p, _, _ in rows)
    return [r for r in rows if per_width[r[0].alpha] >= 2]


def _fit(rows: Sequence[tuple[PublishedAccuracy, int, float]],
         width_term: bool = True) -> tuple[float, ...]:
    import numpy as np

    a = np.array([float(p.alpha) for p, _, _ in rows])
    m = np.array([float(macs) for _, macs, _ in rows])
    y = np.array([v for _, _, v in rows])
    coef, *_ = np.linalg.lstsq(_design(a, m, width_term), y, rcond=None)
    return tuple(float(c) for c in coef)


@lru_cache(maxsize=None)
def model(spec_name: str = "mobilenet_v1", metric: str = "top1") -> AccuracyModel | None:
    """The fitted model of a built-in spec, or None when it has too few checkpoints."""
    if spec_name not in ESTIMATED_SPECS:
        return None
    rows = _points(spec_name, metric)
    if len(rows) < 4:
        return None
    alphas = [p.alpha for p, _, _ in rows]
    res = [p.resolution for p, _, _ in rows]
    return AccuracyModel(spec_name, metric, _fit(rows), (min(alphas), max(alphas)),
                         (min(res), max(res)), len(rows))


@dataclass(frozen=True, slots=True)
class LooPoint:
    alpha: Fraction
    resolution: int
    macs: int
    published: float
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted - self.published


def leave_one_out(spec_name: str = "mobilenet_v1", metric: str = "top1",
                  width_term: bool = True) -> list[LooPoint]:
    """Refit without each checkpoint in turn and predict it (width_term=False: the plain
    log-linear law, for comparison)."""
    import numpy as np

    rows = _points(spec_name, metric)
    out = []
    for i, (p, macs, value) in enumerate(rows):
        coef = _fit(rows[:i] + rows[i + 1:], width_term)
        x = _design(np.array([float(p.alpha)]), np.array([float(macs)]), width_term)[0]
        out.append(LooPoint(p.alpha, p.resolution, macs, value, float(x @ np.array(coef))))
    return out


def rmse(points: Sequence[LooPoint]) -> float:
    return math.sqrt(sum(p.error ** 2 for p in points) / len(points))
__all__ = ["AccuracyModel", "builtin_match", "leave_one_out", "lookup", "LooPoint", "model",
           "MODEL_EQUATION", "published", "PublishedAccuracy", "rmse", "SOURCES"]
