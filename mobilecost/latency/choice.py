"""Which model a target predicts with: the whole-network model or the roofline model, chosen
by leave-one-out (`calibrate --model auto`, the default: the roofline must be closer on
significantly more points, and lower in median error) or named. A calibration
set that cannot determine the roofline model falls back to the whole-network model with one
line saying which parameters it could not fit (`--model roofline` refuses it instead)."""

from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import MobilecostError
from .roofline_loo import held_out, loo_errors
from .validation import ErrorSummary, leave_one_out
from .whole import min_points as whole_min_points

#: What `calibrate --model` accepts: auto (the better by leave-one-out), or one of the two.
MODELS: tuple[str, ...] = ("auto", "whole", "roofline")
#: auto takes the roofline (five parameters and φ, against four coefficients) only where it is
#: closer than the whole-network model on more leave-one-out points than chance gives at this
#: level (a one-sided sign test), and its median error is lower: with 9 points, on 8 of them.
SIGNIFICANCE = 0.05


def choose_model(target: Any, model_choice: str, source: str = "", unfused: int | None = None,
                 on_progress: Callable[[int, int, str], None] | None = None) -> dict:
    """The roofline fit and which model predicts, with the reason in one line."""
    from .roofline import fit as fit_roofline

    where = f"{source}: " if source else ""
    if model_choice == "whole":
        return {"chosen": "whole", "choice": "whole-network model (--model whole)"}
    try:
        roof = fit_roofline(target.points, target.model.dtype, unfused)
    except MobilecostError as exc:
        if model_choice == "roofline":
            raise MobilecostError(f"{where}{exc}") from None
        return {"chosen": "whole", "choice": f"whole-network model: the roofline model could not "
                                             f"be fitted ({exc})"}
    if model_choice == "roofline":
        return {"roofline": roof, "chosen": "roofline", "choice": "roofline model (--model roofline)"}
    pick, why = compare(roof, target.points, target.model.form, target.model.dtype, on_progress)
    return {"roofline": roof, "chosen": pick, "choice": why}


def compare(roof: Any, points: Any, form: str, dtype: str,
            on_progress: Callable[[int, int, str], None] | None = None) -> tuple[str, str]:
    """Which model `auto` takes for these points, given the roofline fitted on them, and why
    in one line: never a roofline that prices compute or memory as free; else the roofline
    where it is closer on significantly more leave-one-out points and lower in median."""
    free = roof.unbounded()
    if free:
        return "whole", (f"whole-network model: in the roofline fit no layer was bound by its "
                         f"{' or '.join(free)}, which it would price as free")
    roof_loo = loo_errors(points, dtype, roof.unfused if roof.declared else None, on_progress)
    if roof_loo is None or len(points) < whole_min_points() + 1:
        return "whole", ("whole-network model: too few points for leave-one-out to compare the "
                         "two (--model roofline to use the roofline model)")
    whole_all = [p.error for p in leave_one_out(points, form, dtype).predictions]
    whole_loo = [whole_all[i] for i in held_out(len(points))]  # the points the roofline left out
    r, w = ErrorSummary.of(roof_loo).median_abs, ErrorSummary.of(whole_loo).median_abs
    wins, p = sign_test(roof_loo, whole_loo)
    pick = "roofline" if r < w and p < SIGNIFICANCE else "whole"
    name = {"roofline": "roofline model", "whole": "whole-network model"}[pick]
    return pick, (f"{name}: leave-one-out median error {r:.1%} (roofline) against {w:.1%} "
                  f"(whole-network){_subset(len(roof_loo), len(points))}; the roofline closer on "
                  f"{wins} of {len(roof_loo)} points "
                  f"(sign test p = {p:.2g}; below {SIGNIFICANCE:g} and a lower median take it)")


def _subset(left_out: int, n: int) -> str:
    return "" if left_out == n else f" on {left_out} of the {n} points, spread evenly"


def sign_test(a: list[float], b: list[float]) -> tuple[int, float]:
    """How many points `a` predicts closer than `b` (|error|; a tie counts against `a`), and
    the one-sided binomial probability of as many or more by chance."""
    wins = sum(abs(x) < abs(y) for x, y in zip(a, b))
    n = len(a)
    tail = sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n
    return wins, tail


__all__ = ["MODELS", "SIGNIFICANCE", "choose_model", "compare", "sign_test"]
