"""Which model a target predicts with: the whole-network model or the roofline model, chosen
by leave-one-out median error (`calibrate --model auto`, the default) or named. A calibration
set that cannot determine the roofline model falls back to the whole-network model with one
line saying which parameters it could not fit (`--model roofline` refuses it instead)."""

from __future__ import annotations

from typing import Any

from ..errors import MobilecostError
from .validation import ErrorSummary

#: What `calibrate --model` accepts: auto (the better by leave-one-out), or one of the two.
MODELS: tuple[str, ...] = ("auto", "whole", "roofline")


def choose_model(target: Any, model_choice: str, source: str = "") -> dict:
    """The roofline fit and which model predicts, with the reason in one line."""
    from .roofline import fit as fit_roofline
    from .roofline import loo_errors

    where = f"{source}: " if source else ""
    if model_choice == "whole":
        return {"chosen": "whole", "choice": "whole-network model (--model whole)"}
    try:
        roof = fit_roofline(target.points, target.model.dtype)
    except MobilecostError as exc:
        if model_choice == "roofline":
            raise MobilecostError(f"{where}{exc}") from None
        return {"chosen": "whole", "choice": f"whole-network model: the roofline model could not "
                                             f"be fitted ({exc})"}
    if model_choice == "roofline":
        return {"roofline": roof, "chosen": "roofline", "choice": "roofline model (--model roofline)"}
    free = roof.unbounded()
    if free:
        return {"roofline": roof, "chosen": "whole",
                "choice": f"whole-network model: in the roofline fit no layer was bound by its "
                          f"{' or '.join(free)}, which it would price as free"}
    roof_loo = loo_errors(target.points, target.model.dtype)
    whole_loo = target.loo_median_error
    if roof_loo is None or whole_loo is None:
        return {"roofline": roof, "chosen": "whole",
                "choice": "whole-network model: too few points for leave-one-out to compare the two "
                          "(--model roofline to use the roofline model)"}
    r = ErrorSummary.of(roof_loo).median_abs
    pick = "roofline" if r < whole_loo else "whole"
    name = {"roofline": "roofline model", "whole": "whole-network model"}[pick]
    return {"roofline": roof, "chosen": pick,
            "choice": f"{name}: leave-one-out median error {r:.1%} (roofline) against "
                      f"{whole_loo:.1%} (whole-network)"}


__all__ = ["MODELS", "choose_model"]
