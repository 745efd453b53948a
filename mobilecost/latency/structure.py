"""Per-layer latency-model features for a whole α × resolution grid at once.

Every per-layer quantity the latency model reads — Mult-Adds, input and output elements,
weights, biases — is a product f_l(α) · g_l(resolution): channel counts depend only on α,
feature-map sizes only on the resolution (the factorisation the grid engine rests on). The
grid engine gives both factors of each quantity exactly, by the op table's rules, walking all
α at once (`engine.grid.grid_factors`); a grid of n_α × n_r configurations needs no
configuration built on its own. Sums over layers are then matrix products, and a test checks
the products against `cost()` on random grids.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Iterator, Sequence

from ..errors import MobilecostError
from ..lang.spec import Spec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ..engine.grid import StructureFactors

#: The per-layer quantities, each separable in α and resolution.
QUANTITIES: tuple[str, ...] = ("macs", "input_elems", "output_elems", "weight_params", "bias_params")


@dataclass(frozen=True)
class StructureTerms:
    """One structure's factors: q(α, l, r) = channel[q][i, l] · spatial[q][l, j] exactly (the
    grid engine's `StructureFactors`), for the α of `rows` (indices into the α list) and every
    resolution j. `per_alpha` and `per_res` give the same product normalised at the largest
    resolution: q at it, and the ratio to it."""

    factors: "StructureFactors"
    reference: int  # index of the largest resolution

    @property
    def rows(self) -> "np.ndarray":
        return self.factors.rows

    @property
    def kinds(self) -> tuple:
        return self.factors.kinds

    @property
    def layers(self) -> int:
        return len(self.kinds)

    @cached_property
    def per_alpha(self) -> dict[str, "np.ndarray"]:
        """[n, L] float64: each quantity at the largest resolution."""
        f, j = self.factors, self.reference
        return {q: f.channel[q] * f.spatial[q][:, j].astype(float)[None, :] for q in QUANTITIES}

    @cached_property
    def per_res(self) -> dict[str, "np.ndarray"]:
        """[L, n_r] float64: each quantity's ratio to its value at the largest resolution."""
        import numpy as np

        out = {}
        for q in QUANTITIES:
            s = self.factors.spatial[q].astype(float)
            at = s[:, self.reference]
            zero = at == 0
            if np.any(s[zero] != 0):
                raise MobilecostError(f"{q} of a layer is zero at the largest resolution but not "
                                      f"at every resolution")
            out[q] = s / np.where(zero, 1.0, at)[:, None]
        return out

    def quantity(self, name: str, lo: int = 0, hi: int | None = None) -> "np.ndarray":
        """q for α rows lo:hi as an [n, L, n_r] float64 array (exact products, as floats)."""
        f = self.factors
        return f.channel[name][lo:hi, :, None] * f.spatial[name][None, :, :].astype(float)


def structure_terms(spec: Spec, alphas: Sequence, resolutions: Sequence[int]) -> Iterator[StructureTerms]:
    """The factors of every structure of the grid (α grouped by the layers they build)."""
    from ..engine.grid import grid_factors

    reference = max(range(len(resolutions)), key=lambda j: resolutions[j])
    for st in grid_factors(spec, alphas, resolutions):
        yield StructureTerms(st, reference)


__all__ = ["QUANTITIES", "StructureTerms", "structure_terms"]
