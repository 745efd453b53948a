"""Per-layer latency-model features for a whole α × resolution grid at once.

Every per-layer quantity the latency model reads — Mult-Adds, input and output elements,
weights, biases — is a product f_l(α) · g_l(resolution): channel counts depend only on α,
feature-map sizes only on the resolution (the factorisation the grid engine rests on). So
for a quantity q, with r₀ a resolution every α can be built at and α₀ one α of each
structure (the same layers in the same order),

    q(α, l, r) = q(α, l, r₀) · q(α₀, l, r) / q(α₀, l, r₀),

and a grid of n_α × n_r configurations needs the spec costed n_α + n_r times (per
structure), not n_α · n_r times. Sums over layers of a group are then one matrix product
each. The costs come from `cost()`, the one-configuration engine, so nothing here restates
a layer's cost rule; a test checks the products against `cost()` on random grids.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Iterator, Sequence

from ..engine.cost import cost
from ..errors import MobilecostError
from ..lang.spec import Spec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

#: The per-layer quantities, each separable in α and resolution.
QUANTITIES: tuple[str, ...] = ("macs", "input_elems", "output_elems", "weight_params", "bias_params")


@dataclass(frozen=True)
class StructureTerms:
    """One structure's factors: q(α, l, r) = per_alpha[q][i, l] · per_res[q][l, j] for the
    α of `rows` (indices into the grid's α list) and every resolution j."""

    rows: "np.ndarray"                  # [n] indices into the α list
    kinds: tuple                        # LayerKind of each layer
    per_alpha: dict[str, "np.ndarray"]  # [n, L] float64
    per_res: dict[str, "np.ndarray"]    # [L, n_r] float64, ratios to the reference resolution

    @property
    def layers(self) -> int:
        return len(self.kinds)

    def quantity(self, name: str, lo: int = 0, hi: int | None = None) -> "np.ndarray":
        """q for α rows lo:hi as an [n, L, n_r] array (for per-layer work, in chunks)."""
        return self.per_alpha[name][lo:hi, :, None] * self.per_res[name][None, :, :]


def _signature(layers) -> tuple:
    return tuple((c.layer.op, c.kind, c.layer.kernel, c.layer.stride) for c in layers)


def _values(layers) -> dict[str, list[int]]:
    return {q: [getattr(c, q) for c in layers] for q in QUANTITIES}


def _per_resolution(spec: Spec, alpha: Fraction, resolutions: Sequence[int]) -> dict[str, "np.ndarray"]:
    """Each quantity of each layer at `alpha` and every resolution, [L, n_r] float64.

    The feature-map sides come from the grid engine's size walk (`engine.grid.layer_sides`, all
    resolutions at once by the op table's size rules). The quantities come from `layer_cost`
    itself, applied to the layer with its sides as arrays, so no cost rule is restated here.
    """
    import dataclasses

    import numpy as np

    from ..engine.cost import layer_cost
    from ..engine.grid import layer_sides
    from ..lang.spec import build

    layers = build(spec, alpha, max(resolutions))
    res = np.array(resolutions, dtype=np.int64)
    ins, outs = layer_sides(spec, alpha, layers, res)
    out = {q: np.empty((len(layers), len(res))) for q in QUANTITIES}
    for i, layer in enumerate(layers):
        c = layer_cost(dataclasses.replace(layer, in_size=ins[i], out_size=outs[i],
                                           in_width=ins[i], out_width=outs[i]))  # square maps
        for q in QUANTITIES:
            out[q][i] = np.broadcast_to(np.asarray(getattr(c, q), dtype=np.float64), res.shape)
    return out


def structure_terms(spec: Spec, alphas: Sequence[Fraction], resolutions: Sequence[int]) -> Iterator[StructureTerms]:
    """The factors of every structure of the grid (α grouped by the layers they build)."""
    import numpy as np

    r0 = max(resolutions)
    groups: dict[tuple, list[tuple[int, dict[str, list[int]], tuple]]] = {}
    for i, a in enumerate(alphas):
        layers = cost(spec, a, r0).layers
        groups.setdefault(_signature(layers), []).append((i, _values(layers), tuple(c.kind for c in layers)))
    for members in groups.values():
        i0 = members[0][0]
        ref = members[0][1]
        by_res = _per_resolution(spec, alphas[i0], resolutions)
        per_res = {}
        for q in QUANTITIES:
            at = by_res[q]  # [L, n_r]
            base = np.array(ref[q], dtype=np.float64)
            zero = base == 0
            if np.any(at[zero] != 0):
                raise MobilecostError(f"{spec.name}: {q} of a layer is not a product of an α "
                                      f"factor and a resolution factor")
            per_res[q] = np.divide(at, np.where(zero, 1.0, base)[:, None])
        per_alpha = {q: np.array([m[1][q] for m in members], dtype=np.float64) for q in QUANTITIES}
        for q in QUANTITIES:
            zero = per_alpha[q][0] == 0
            if np.any(per_alpha[q][:, zero] != 0):
                raise MobilecostError(f"{spec.name}: {q} of a layer is not a product of an α "
                                      f"factor and a resolution factor")
        yield StructureTerms(np.array([m[0] for m in members]), members[0][2], per_alpha, per_res)


__all__ = ["QUANTITIES", "StructureTerms", "structure_terms"]
