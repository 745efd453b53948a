"""How large a grid may be: the memory a sweep needs (`grid_memory`, fitted to measured
peaks) and the one-line refusal of a grid over the limit (`grid_size_error`), checked before
any work."""

from __future__ import annotations

from ..errors import MobilecostError

DEFAULT_MAX_CONFIGS = 5_000_000
# Peak memory of a sweep, fitted to measurements (benchmarks/bench_sweep_memory.py): per
# configuration (the DataFrame's columns and the engine's [α, resolution] arrays), and per α and
# layer (the engine's channel counts and channel factors, [α, layer] int64 arrays), and per
# resolution and layer (feature-map sizes). The command line adds its output's cost per row,
# by format.
BYTES_PER_CONFIG = 180
BYTES_PER_ALPHA_LAYER = 152
BYTES_PER_RES_LAYER = 97  # map sizes and spatial factors, [layer, resolution] int64 arrays
# table and CSV stream (a table shows 200 rows; CSV goes out in blocks of 100,000 rows), JSON and
# Markdown are made whole.
CLI_BYTES_PER_ROW = {"table": 10, "csv": 10, "json": 4630, "markdown": 1660}
# --max-configs N allows N configurations, and the memory N configurations take swept and
# written as CSV plus an allowance for the spec's own work (per α, per resolution), so that a
# grid of exactly N configurations passes.
ALLOWED_BYTES_PER_CONFIG = BYTES_PER_CONFIG + CLI_BYTES_PER_ROW["csv"]
WORK_ALLOWANCE = 256 * 2**20
# The most memory any grid may take, whatever --max-configs says: a constant rather than a
# share of this machine's RAM, so that a grid is accepted or refused alike on every machine
# (and in tests); 8 GiB is 8 times what the default limit allows (5,000,000 configurations,
# about 1.1 GiB) and fits the 16 GB of a modest laptop with room for the rest.
MEMORY_LIMIT = 8 * 2**30

#: Layer kinds with Mult-Adds (`ops.MAC_KINDS`): one `macs_share_<kind>` column each, where the
#: spec has them.


def grid_memory(n_alphas: int, n_res: int, layers: int, per_row: int = 0) -> int:
    """Estimated peak bytes of a sweep of n_alphas × n_res over a spec of `layers` layers, plus
    `per_row` bytes of output per configuration."""
    return (n_alphas * n_res * (BYTES_PER_CONFIG + per_row)
            + n_alphas * layers * BYTES_PER_ALPHA_LAYER
            + n_res * layers * BYTES_PER_RES_LAYER)


def _size(n: int) -> str:
    mib = n / 2**20
    return f"{mib / 1024:,.1f} GiB" if mib >= 1024 else f"{mib:,.0f} MiB"


def grid_size_error(n_alphas: int, n_res: int, max_configs: int, layers: int = 0,
                    per_row: int = 0) -> MobilecostError | None:
    """The refusal of a grid too large, or None when it fits.

    A grid is refused when it has more than `max_configs` configurations, or when its
    estimated memory (grid_memory: the rows, the per-α walk of a `layers`-layer spec, its map
    sizes per resolution, `per_row` bytes of output a row) is more than
    max_configs × ALLOWED_BYTES_PER_CONFIG + WORK_ALLOWANCE: what that many configurations take
    swept and written as CSV, plus 256 MiB for the spec's own work; or more than MEMORY_LIMIT,
    whatever `max_configs` is. Counted from the sizes alone: nothing is made first."""
    if isinstance(max_configs, bool) or not isinstance(max_configs, int) or max_configs < 1:
        return MobilecostError(f"--max-configs must be a whole number ≥ 1, got {max_configs}")
    n = n_alphas * n_res
    need = grid_memory(n_alphas, n_res, layers, per_row)
    if n > max_configs:
        return MobilecostError(
            f"the grid has {n:,} configurations ({n_alphas:,} α × {n_res:,} resolutions), about "
            f"{_size(need)} of memory; the limit is {max_configs:,} (raise it with --max-configs, "
            f"or sweep a coarser grid)")
    if need > MEMORY_LIMIT:
        return MobilecostError(
            f"the grid has {n:,} configurations ({n_alphas:,} α × {n_res:,} resolutions), about "
            f"{_size(need)} of memory, more than the {_size(MEMORY_LIMIT)} any sweep may take "
            f"whatever --max-configs says; sweep a coarser grid")
    allowed = max_configs * ALLOWED_BYTES_PER_CONFIG + WORK_ALLOWANCE
    if need > allowed:
        # Name the largest part beyond the rows themselves.
        why, fewer = max(
            (n_alphas * layers * BYTES_PER_ALPHA_LAYER,
             f"every layer has its channels at every α ({n_alphas:,} α × {layers:,} layers)", "α"),
            (n_res * layers * BYTES_PER_RES_LAYER,
             f"every layer has its map size at every resolution ({layers:,} layers × "
             f"{n_res:,} resolutions)", "resolutions"),
            (n * per_row, f"the output takes about {BYTES_PER_CONFIG + per_row:,} bytes a row",
             "configurations"))[1:]
        return MobilecostError(
            f"the grid has {n:,} configurations, but {why}: about {_size(need)} of memory, more "
            f"than the {_size(allowed)} --max-configs {max_configs:,} allows; sweep fewer "
            f"{fewer} or raise --max-configs")
    return None
