"""Plots of measured sweeps: latency against Mult-Adds and against accuracy (with the Pareto
frontier), and each layer kind's share of time against its share of Mult-Adds.

matplotlib (Agg) is imported inside the functions. Each plot is written as PNG and SVG,
each file atomically. Rows are timing rows as `measure_grid` returns them (rows with an
error are left out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..lang.load import load_spec
from ..lang.spec import Spec
from ..lang.values import norm_resolution, resolution_text, sides, to_fraction
from ..runtimes import RUNTIMES
from ..torch.profile import TIME_KIND_LABELS, TIME_KINDS
from ..util import format_number
from .plots import pyplot, save

KIND_COLOURS = {"conv": "#4c72b0", "depthwise": "#dd8452", "pointwise": "#55a868",
                "fc": "#c44e52", "other": "#8c8c8c"}


def _ok(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if not r.get("error") and r.get("latency_ms") is not None]


def _setting(r: dict[str, Any]) -> str:
    rt = RUNTIMES.get(r.get("runtime") or "torch")
    if rt is not None and rt.file_format:  # a runtime that runs the exported file
        return (f"{r['device_name']}, cpu, {r['dtype']}, batch {r['batch']}, {r['threads']} "
                f"threads, {rt.label} {r['runtime_version']} ({r['graph_optimization']})")
    return (f"{r['device_name']}, {r['device']}, {r['dtype']}, batch {r['batch']}, "
            f"{r['threads']} threads, {r['memory_format']}, torch {r['torch_version']}")


def latency_vs_macs(rows: Sequence[dict[str, Any]], base: Path | str) -> list[Path]:
    """Measured latency against Mult-Adds, one marker per configuration, IQR as error bars."""
    plt = pyplot()
    good = _ok(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    by_res: dict[Any, list[dict[str, Any]]] = {}
    for r in good:
        by_res.setdefault(norm_resolution(r["resolution"]), []).append(r)
    for res, rs in sorted(by_res.items(), key=lambda kv: sides(kv[0]), reverse=True):
        rs.sort(key=lambda r: r["macs"])
        ax.errorbar([r["macs"] / 1e6 for r in rs], [r["latency_ms"] for r in rs],
                    yerr=[r["latency_iqr_ms"] / 2 for r in rs], marker="o", capsize=3,
                    label=f"resolution {resolution_text(res)}")
        for r in rs:
            ax.annotate(f"α={format_number(r['alpha'])}", (r["macs"] / 1e6, r["latency_ms"]),
                        textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel("Mult-Adds (millions)")
    ax.set_ylabel("latency (ms; bars: IQR)")
    if good:
        spec = ", ".join(sorted({r["spec"] for r in good}))
        ax.set_title(f"{spec}: measured latency against Mult-Adds\n{_setting(good[0])}",
                     fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    paths = save(fig, Path(base))
    plt.close(fig)
    return paths


def time_share_bars(rows: Sequence[dict[str, Any]], base: Path | str) -> list[Path]:
    """Per configuration, two stacked bars: share of Mult-Adds and share of time, by layer kind."""
    plt = pyplot()
    good = [r for r in _ok(rows) if "time_share_pointwise" in r]
    good.sort(key=lambda r: (-int(r["resolution"]), -float(r["alpha"])))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(good) + 2), 4.8))
    width = 0.38
    xs = range(len(good))
    for offset, prefix, hatch in ((-width / 2 - 0.01, "macs_share_", ""),
                                  (width / 2 + 0.01, "time_share_", "//")):
        bottom = [0.0] * len(good)
        for kind in TIME_KINDS:
            vals = [100 * float(r.get(prefix + kind) or 0.0) for r in good]
            ax.bar([x + offset for x in xs], vals, width, bottom=bottom, hatch=hatch,
                   color=KIND_COLOURS[kind], edgecolor="white", linewidth=0.5,
                   label=TIME_KIND_LABELS[kind] if prefix == "macs_share_" else None)
            bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{format_number(r['alpha'])}\n{r['resolution']}" for r in good],
                       fontsize=7)
    ax.set_xlabel("α / resolution — left bar: share of Mult-Adds, right bar (hatched): share of time")
    ax.set_ylabel("share (%)")
    ax.set_ylim(0, 100)
    if good:
        spec = ", ".join(sorted({r["spec"] for r in good}))
        ax.set_title(f"{spec}: where the Mult-Adds are and where the time goes\n"
                     f"{_setting(good[0])}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    paths = save(fig, Path(base))
    plt.close(fig)
    return paths


def with_accuracy(rows: Sequence[dict[str, Any]], spec: Spec | str) -> list[dict[str, Any]]:
    """Rows with `top1` and `accuracy_source`: the published figure where there is one, else
    the estimate inside its box (engine.estimate.estimate), else None and ''."""
    from ..engine.estimate import estimate

    s = load_spec(spec)
    out = []
    for r in rows:
        res = norm_resolution(r["resolution"])
        if isinstance(res, tuple):  # the checkpoints are square: no accuracy
            out.append(dict(r, top1=None, accuracy_source=""))
            continue
        top1, source = estimate(s, to_fraction(r["alpha"]), res)
        out.append(dict(r, top1=top1, accuracy_source=source))
    return out


def latency_vs_accuracy(rows: Sequence[dict[str, Any]], base: Path | str) -> list[Path]:
    """Top-1 accuracy against measured latency, with the Pareto frontier (rows need `top1`,
    as `with_accuracy` gives them). Filled markers: published accuracy; hollow: estimated."""
    import pandas as pd

    from ..engine.pareto import pareto_front

    plt = pyplot()
    good = [r for r in _ok(rows) if r.get("top1") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if good:
        df = pd.DataFrame(good)
        df["alpha"] = df["alpha"].astype(float)
        for source, filled in (("published", True), ("estimated", False)):
            d = df[df["accuracy_source"] == source]
            ax.scatter(d["latency_ms"], d["top1"], s=36, zorder=3,
                       facecolors="#4c72b0" if filled else "none", edgecolors="#4c72b0",
                       label=f"{source} accuracy" if len(d) else None)
        front = pareto_front(df, cost="latency_ms", accuracy="top1")
        ax.step(front["latency_ms"], front["top1"], where="post", color="#c44e52", lw=1.5,
                label="Pareto frontier", zorder=2)
        for _, r in front.iterrows():
            ax.annotate(f"{r['alpha']:g}-{int(r['resolution'])}", (r["latency_ms"], r["top1"]),
                        textcoords="offset points", xytext=(5, -10), fontsize=7)
        spec = ", ".join(sorted(set(df["spec"])))
        ax.set_title(f"{spec}: ImageNet top-1 against measured latency\n{_setting(good[0])}",
                     fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("ImageNet top-1 (%)")
    ax.grid(alpha=0.3)
    paths = save(fig, Path(base))
    plt.close(fig)
    return paths


def measured_sweep_plots(df, rows: Sequence[dict[str, Any]], folder: Path, spec_name: str,
                         time_share: bool) -> list[Path]:
    """A measured sweep's plots: latency against Mult-Adds, against top-1 with the Pareto
    frontier (where accuracy is known), and (with time shares) where the time goes."""
    import math

    def source(x: Any) -> str:
        return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)

    paths = latency_vs_macs(rows, folder / f"latency_vs_macs_{spec_name}")
    top1 = df["top1"].astype(object).where(df["top1"].notna(), None).tolist()
    sources = [source(x) for x in df["accuracy_source"].tolist()]
    rated = [dict(r, top1=t, accuracy_source=src) for r, t, src in zip(rows, top1, sources)]
    if any(t is not None for t in top1):
        paths += latency_vs_accuracy(rated, folder / f"latency_vs_accuracy_{spec_name}")
    if time_share:
        paths += time_share_bars(rows, folder / f"time_share_{spec_name}")
    return paths


__all__ = ["latency_vs_accuracy", "latency_vs_macs", "measured_sweep_plots", "time_share_bars",
           "with_accuracy"]
