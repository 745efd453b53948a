"""Pareto frontiers of accuracy against cost, and the most accurate configuration in a budget.

A budget is a generic "column ≤ limit" filter over a sweep's DataFrame (`macs`, `params`, and
any cost column a later engine adds, such as a latency), so picking knows nothing of what
the columns mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..errors import MobilecostError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `limit` of `column`; `option` names it for messages (e.g. '--max-macs 300M')."""

    column: str
    limit: float
    option: str = ""

    def __str__(self) -> str:
        return self.option or f"{self.column} ≤ {self.limit:g}"


def pareto_front(df: "pd.DataFrame", cost: str = "macs", accuracy: str = "top1") -> "pd.DataFrame":
    """Rows no other row beats: none costs no more and is more accurate, or costs less and is
    as accurate. Sorted by cost; rows without accuracy are left out."""
    import numpy as np

    known = df[df[accuracy].notna()]
    if known.empty:
        return known
    order = np.lexsort((-known[accuracy].to_numpy(), known[cost].to_numpy()))
    acc = known[accuracy].to_numpy()[order]
    best_before = np.maximum.accumulate(np.concatenate([[-np.inf], acc[:-1]]))
    return known.iloc[order[acc > best_before]]


@dataclass(frozen=True)
class Pick:
    """The frontier (with a `within_budget` column), the best row in budget (None: nothing fits)."""

    frontier: "pd.DataFrame"
    best: "pd.Series | None"
    budgets: tuple[Budget, ...]
    feasible: int  # configurations within every budget, accuracy known or not
    cost: str
    accuracy: str


def within(df: "pd.DataFrame", budgets: Sequence[Budget]) -> "pd.Series":
    import numpy as np

    mask = np.ones(len(df), dtype=bool)
    for b in budgets:
        if b.column not in df.columns:
            raise MobilecostError(f"{b}: the sweep has no column {b.column!r}")
        mask &= (df[b.column] <= b.limit).to_numpy()
    return mask


def pick(df: "pd.DataFrame", budgets: Sequence[Budget] = (), accuracy: str = "top1",
         cost: str | None = None) -> Pick:
    """The Pareto frontier against `cost` (default: the first budget's column, else macs) and the
    most accurate configuration within every budget (ties: the cheaper)."""
    budgets = tuple(budgets)
    cost = cost or (budgets[0].column if budgets else "macs")
    if df[accuracy].isna().all():
        spec = str(df["spec"].iloc[0]) if len(df) else "the spec"
        raise MobilecostError(
            f"{spec}: no accuracy is known on this grid (published points exist for the built-in "
            f"specs' released configurations, estimates for mobilenet_v1 at 0.25 ≤ α ≤ 1, "
            f"128 ≤ resolution ≤ 224)")
    mask = within(df, budgets)
    front = pareto_front(df, cost, accuracy).copy()
    front["within_budget"] = within(front, budgets)
    fits = df[mask & df[accuracy].notna().to_numpy()]
    best = None
    if not fits.empty:
        top = fits[fits[accuracy] == fits[accuracy].max()]
        best = top.sort_values(cost, kind="stable").iloc[0]
    return Pick(front, best, budgets, int(mask.sum()), cost, accuracy)


__all__ = ["Budget", "Pick", "pareto_front", "pick", "within"]
