"""Plots of a sweep: accuracy against Mult-Adds and parameters (the paper's Figures 4 and 5),
the Pareto frontier with a budget, and a heat map of Mult-Adds over α × resolution.

matplotlib with the Agg backend, imported only here and only when a plot is asked for. Each
figure is written as PNG and SVG, atomically, with no timestamps inside (reproducible files).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from ..util import write_atomic

if TYPE_CHECKING:
    import pandas as pd

    from ..engine.pareto import Pick
    from ..latency.validation import Validation

SIZE_IN = (6.4, 4.4)
DPI = 150
MAX_POINTS = 20_000  # a scatter above this is thinned evenly (the heat map keeps every cell)


def pyplot():
    """matplotlib.pyplot on the Agg backend, with the project's style (imported on use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "mobilecost", "font.size": 10, "axes.titlesize": 11,
                         "legend.fontsize": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def save(fig, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.svg atomically; return the paths."""
    out = []
    for fmt, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=DPI, bbox_inches="tight", metadata=meta)
        out.append(write_atomic(stem.parent / f"{stem.name}.{fmt}", buf.getvalue()))
    return out


def _thin(df: "pd.DataFrame") -> "pd.DataFrame":
    if len(df) <= MAX_POINTS:
        return df
    return df.iloc[:: -(-len(df) // MAX_POINTS)]


def _log_ticks(axis, lo: float, hi: float) -> None:
    """Plain-number ticks at 1, 2, 3, 5 × 10^k on a log axis (no 2×10¹ clutter)."""
    import math

    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    values = [m * 10 ** k for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
              for m in (1, 2, 3, 5) if lo / 1.2 <= m * 10 ** k <= hi * 1.2]
    if len(values) < 2:
        return
    axis.set_major_locator(FixedLocator(values))
    axis.set_major_formatter(lambda v, _: f"{v:g}")
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def _alpha_label(a: float) -> str:
    return f"α = {a:g}"


def _scatter_by_alpha(ax, df: "pd.DataFrame", x: str, y: str, scale: float) -> None:
    """One colour per α (a colour bar when there are many), filled published, hollow estimated."""
    alphas = sorted(df["alpha"].unique(), reverse=True)
    plt = pyplot()
    if len(alphas) <= 8:
        colors = plt.get_cmap("viridis")([i / max(1, len(alphas) - 1) for i in range(len(alphas))])
        for a, c in zip(alphas, colors):
            d = df[df["alpha"] == a].sort_values(x)
            ax.plot(d[x] / scale, d[y], "-", color=c, lw=1, alpha=0.6)
            pub = d[d["accuracy_source"] == "published"]
            est = d[d["accuracy_source"] == "estimated"]
            ax.scatter(pub[x] / scale, pub[y], color=c, s=36, label=_alpha_label(a), zorder=3)
            ax.scatter(est[x] / scale, est[y], facecolors="none", edgecolors=[c], s=36, zorder=3,
                       label=None if pub.shape[0] else _alpha_label(a))
        ax.legend(title="width", loc="lower right", frameon=True)
    else:
        sc = ax.scatter(df[x] / scale, df[y], c=df["alpha"], cmap="viridis", s=6)
        pub = df[df["accuracy_source"] == "published"]
        ax.scatter(pub[x] / scale, pub[y], c=pub["alpha"], cmap="viridis", s=40,
                   vmin=df["alpha"].min(), vmax=df["alpha"].max(), edgecolors="black",
                   linewidths=1, label="published", zorder=3)
        if len(pub):
            ax.legend(loc="lower right", frameon=True)
        plt.colorbar(sc, ax=ax, label="width multiplier α")


def _source_note(df: "pd.DataFrame", markers: bool = True) -> str:
    """Which accuracies a plot shows, and (markers=True) how a few-α plot draws them."""
    counts = df["accuracy_source"].value_counts()
    pub, est = int(counts.get("published", 0)), int(counts.get("estimated", 0))
    if not est:
        return "published accuracy"
    if not pub:
        return "estimated accuracy (interpolated)"
    if markers and df["alpha"].nunique() <= 8:
        return "filled: published, hollow: estimated (interpolated)"
    return f"{pub} published, {est:,} estimated (interpolated)"


def accuracy_plot(df: "pd.DataFrame", x: str, stem: Path, metric: str = "top1") -> list[Path]:
    """Accuracy against Mult-Adds (x='macs', Figure 4) or parameters (x='params', Figure 5)."""
    plt = pyplot()
    d = _thin(df[df[metric].notna()])
    fig, ax = plt.subplots(figsize=SIZE_IN)
    _scatter_by_alpha(ax, d, x, metric, 1e6)
    ax.set_xscale("log")
    _log_ticks(ax.xaxis, d[x].min() / 1e6, d[x].max() / 1e6)
    what = "Mult-Adds" if x == "macs" else "Parameters"
    ax.set_xlabel(f"{what} (millions, log scale)")
    ax.set_ylabel(f"ImageNet {'top-1' if metric == 'top1' else 'top-5'} accuracy (%)")
    spec = str(df["spec"].iloc[0])
    ax.set_title(f"{spec}: accuracy against {what}\n{_source_note(d)}")
    try:
        return save(fig, stem)
    finally:
        plt.close(fig)


def heatmap(df: "pd.DataFrame", stem: Path) -> list[Path]:
    """Mult-Adds (millions) over α (rows) × resolution (columns), a log colour scale."""
    import numpy as np
    from matplotlib.colors import LogNorm

    plt = pyplot()
    table = df.pivot_table(index="alpha", columns="resolution", values="macs", aggfunc="first",
                           observed=True)
    table = table.sort_index(ascending=True)
    if "width" in df.columns:  # "320x240" labels: order by the input's area
        from ..lang.values import norm_resolution, sides

        area = {c: sides(norm_resolution(str(c)))[0] * sides(norm_resolution(str(c)))[1]
                for c in table.columns}
        table = table[sorted(table.columns, key=lambda c: (area[c], str(c)))]
    else:
        table = table.sort_index(axis=1)
    m = table.to_numpy(dtype=np.float64) / 1e6
    fig, ax = plt.subplots(figsize=SIZE_IN)
    im = ax.imshow(m, origin="lower", aspect="auto", cmap="magma", norm=LogNorm(np.nanmin(m), np.nanmax(m)))
    cbar = fig.colorbar(im, ax=ax, label="Mult-Adds (millions, log scale)")
    _log_ticks(cbar.ax.yaxis, np.nanmin(m), np.nanmax(m))
    rows, cols = table.index.to_numpy(), table.columns.to_numpy()

    def ticks(values, n=8):
        idx = np.unique(np.linspace(0, len(values) - 1, min(n, len(values))).round().astype(int))
        return idx, [f"{values[i]:g}" if not isinstance(values[i], str) else values[i]
                     for i in idx]

    xi, xl = ticks(cols)
    yi, yl = ticks(rows)
    ax.set_xticks(xi, xl)
    ax.set_yticks(yi, yl)
    ax.grid(False)
    if m.shape[0] * m.shape[1] <= 64:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                v = m[i, j]
                ax.text(j, i, f"{v:.0f}" if v >= 10 else f"{v:.1f}", ha="center", va="center",
                        fontsize=8, color="white" if v < np.sqrt(np.nanmin(m) * np.nanmax(m)) else "black")
    ax.set_xlabel("input resolution (pixels" + ("; height x width)" if "width" in df.columns
                                                 else ")"))
    ax.set_ylabel("width multiplier α")
    ax.set_title(f"{df['spec'].iloc[0]}: Mult-Adds (millions) over α × resolution")
    try:
        return save(fig, stem)
    finally:
        plt.close(fig)


def pareto_plot(df: "pd.DataFrame", result: "Pick", stem: Path) -> list[Path]:
    """Every configuration, the Pareto frontier, the budget line and the pick."""
    plt = pyplot()
    cost, metric = result.cost, result.accuracy
    in_ms = cost.endswith("_ms")
    scale = 1 if in_ms else 1e6
    d = _thin(df[df[metric].notna()])
    from ..engine.sweep import frame_specs

    families = frame_specs(df)
    # several families: a wider figure, the legend beside the axes (never over the points)
    fig, ax = plt.subplots(figsize=SIZE_IN if len(families) == 1 else (SIZE_IN[0] + 3, SIZE_IN[1]))
    f = result.frontier
    if len(families) == 1:
        ax.scatter(d[cost] / scale, d[metric], s=10, color="0.7", label="configurations", zorder=2)
        ax.step(f[cost] / scale, f[metric], where="post", color="tab:blue", lw=1.5, zorder=3)
        ax.scatter(f[cost] / scale, f[metric], s=24, color="tab:blue", label="Pareto frontier",
                   zorder=4)
    else:  # one colour per family; published filled, estimated hollow; one frontier across them
        ax.step(f[cost] / scale, f[metric], where="post", color="0.2", lw=1.2, zorder=3,
                label="Pareto frontier (all families)")
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, fam in enumerate(families):  # past the colours, the next marker shape
            colour = colours[i % len(colours)]
            shape = "o^sDv"[i // len(colours) % 5]
            mine = d[d["spec"].astype(str) == fam]
            pub = mine["accuracy_source"].astype(str) == "published"
            ax.scatter(mine[cost][~pub] / scale, mine[metric][~pub], s=12, facecolors="none",
                       edgecolors=colour, lw=0.7, zorder=2, marker=shape)
            ax.scatter(mine[cost][pub] / scale, mine[metric][pub], s=30, color=colour, zorder=4,
                       label=fam, marker=shape)
    for b in result.budgets:
        if b.column == cost:
            ax.axvline(b.limit / scale, color="tab:red", ls="--", lw=1.2, label=f"budget {b}")
    if result.best is not None:
        r = result.best
        fam = f"{r['spec']} " if len(families) > 1 else ""
        ax.scatter([r[cost] / scale], [r[metric]], s=140, marker="*", zorder=5,
                   color="tab:red" if len(families) == 1 else "black",
                   label=f"pick: {fam}α {r['alpha']:g}, {r['resolution']} px ({r[metric]:.1f}%)")
    ax.set_xscale("log")
    _log_ticks(ax.xaxis, d[cost].min() / scale, d[cost].max() / scale)
    what = {"macs": "Mult-Adds", "params": "Parameters", "latency_ms": "Latency"}.get(cost, cost)
    ax.set_xlabel(f"{what} ({'ms' if in_ms else 'millions'}, log scale)")
    ax.set_ylabel(f"ImageNet {'top-1' if metric == 'top1' else 'top-5'} accuracy (%)")
    note = (_source_note(d, markers=False) if len(families) == 1 else
            "filled: published; hollow: estimated, each from its own family")
    who = families[0] if len(families) == 1 else f"{len(families)} families"
    ax.set_title(f"{who}: accuracy against {what}, Pareto frontier\n{note}",
                 fontsize=10 if len(families) > 1 else None)
    if len(families) == 1:
        ax.legend(loc="lower right", frameon=True)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=8)
    try:
        return save(fig, stem)
    finally:
        plt.close(fig)


def sweep_plots(df: "pd.DataFrame", folder: Path) -> list[Path]:
    """Figures 4 and 5 (where accuracy is known) and the Mult-Adds heat map."""
    spec = str(df["spec"].iloc[0])
    out = []
    if df["top1"].notna().any():
        out += accuracy_plot(df, "macs", folder / f"accuracy_macs_{spec}")
        out += accuracy_plot(df, "params", folder / f"accuracy_params_{spec}")
    out += heatmap(df, folder / f"macs_heatmap_{spec}")
    return out


def plot_validation(validation: "Validation", stem: Path | str, title: str) -> list[Path]:
    """Predicted against measured with the ±10% band, as STEM.png and STEM.svg (atomically)."""
    from ..latency.validation import WITHIN

    plt = pyplot()
    measured = [p.point.latency_ms for p in validation.predictions]
    predicted = [p.predicted_ms for p in validation.predictions]
    baseline = [p.baseline_ms for p in validation.predictions]
    affine = [p.affine_ms for p in validation.predictions]
    lo = min(measured + predicted + baseline + affine) / 1.3
    hi = max(measured + predicted + baseline + affine) * 1.3
    fig, ax = plt.subplots(figsize=(6, 6))
    xs = [lo, hi]
    ax.fill_between(xs, [x * (1 - WITHIN) for x in xs], [x * (1 + WITHIN) for x in xs],
                    color="tab:green", alpha=0.15, label=f"±{WITHIN:.0%} of measured")
    ax.plot(xs, xs, color="tab:green", lw=1)
    m, b, af = validation.model, validation.baseline, validation.affine
    ax.scatter(measured, baseline, marker="x", color="tab:gray",
               label=f"k·Mult-Adds: {b.within:.0%} within, median {b.median_abs:.1%}")
    ax.scatter(measured, affine, marker="+", color="tab:purple",
               label=f"c0 + k·Mult-Adds: {af.within:.0%} within, median {af.median_abs:.1%}")
    ax.scatter(measured, predicted, color="tab:blue", zorder=3,
               label=f"model: {m.within:.0%} within, median {m.median_abs:.1%}, worst {m.worst_abs:.1%}")
    if validation.calibration_fitted_ms:
        cal = [p.latency_ms for p in validation.calibration]
        ax.scatter(cal, validation.calibration_fitted_ms, marker="s", facecolors="none", edgecolors="tab:orange",
                   zorder=2, label=f"calibration points, fitted ({len(cal)})")
    for p in validation.predictions:
        ax.annotate(p.point.config.label.split(" ", 1)[1], (p.point.latency_ms, p.predicted_ms),
                    fontsize=6, xytext=(3, -8), textcoords="offset points", color="tab:blue")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{title}\n{validation.method}, {m.n} predictions", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out = save(fig, Path(stem))
    plt.close(fig)
    return out


__all__ = ["accuracy_plot", "heatmap", "pareto_plot", "plot_validation", "pyplot", "save",
           "sweep_plots"]
