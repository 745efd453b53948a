"""Reports of the analytic engine: the paper's Tables 1–3, and one configuration's cost."""

from __future__ import annotations

from fractions import Fraction

from ..dtypes import lookup as lookup_dtype
from ..engine.cost import Counting, NetworkCost, cost
from ..lang.load import load_spec
from ..lang.parse import parse
from ..lang.spec import Spec
from ..lang.values import resolution_text, resolution_value, to_fraction
from . import paper
from .report import Column, Report, format_number, percent, plain


def _config_title(c: NetworkCost) -> str:
    return f"{c.spec}, alpha {format_number(c.alpha)}, resolution {resolution_text(c.resolution)}"


def _totals_note(c: NetworkCost) -> str:
    return (f"Total: {c.macs:,} Mult-Adds ({c.macs / 1e6:,.2f}M; {2 * c.macs / 1e9:.3f} GFLOPs), "
            f"{c.params:,} parameters ({c.params / 1e6:.3f}M).")


def _bytes_note(c: NetworkCost, dtype: str) -> str:
    d = lookup_dtype(dtype)
    return (f"Bytes at {d.short}: {c.weight_bytes(dtype):,} of weights as a file stores them, "
            f"batchnorm folded into the convolutions' biases: {d.scheme}.")


def table1(spec: Spec | str, alpha: float | Fraction = 1, resolution: int | None = None,
           counting: Counting = Counting(), dtype: str | None = None) -> Report:
    """The architecture as Table 1 prints it, with each layer's Mult-Adds and parameters, and
    at `dtype` the bytes a file stores of its weights."""
    c = cost(spec, alpha, resolution, counting)
    rows = []
    for lc in c.layers:
        layer = lc.layer
        rows.append({
            "layer": layer.index + 1, "type": layer.describe, "filter_shape": layer.filter_shape,
            "input_size": layer.input_shape, "kind": layer.kind.value, "macs": lc.macs,
            "params": lc.params, "alpha": c.alpha, "resolution": resolution_value(c.resolution), "spec_line": layer.line,
        } | ({"weight_bytes": lc.stored_weight_bytes(dtype)} if dtype else {}))
    cols = [Column("layer", "#"), Column("type", "Type / Stride", numeric=False),
            Column("filter_shape", "Filter Shape", numeric=False),
            Column("input_size", "Input Size", numeric=False),
            Column("kind", "Kind", numeric=False, table=False), Column("macs", "Mult-Adds"),
            Column("params", "Parameters")]
    cols += [Column("weight_bytes", f"Weight bytes ({dtype})")] if dtype else []
    cols += [Column("alpha", "alpha", table=False),
             Column("resolution", "resolution", table=False), Column("spec_line", "line")]
    total = {"layer": "total", "type": f"{len(c.layers)} layers", "filter_shape": "",
             "input_size": "", "kind": "", "macs": c.macs, "params": c.params,
             "alpha": c.alpha, "resolution": resolution_value(c.resolution), "spec_line": None
             } | ({"weight_bytes": c.weight_bytes(dtype)} if dtype else {})
    notes = [_totals_note(c)] + ([_bytes_note(c, dtype)] if dtype else [])
    return Report(f"Table 1: {_config_title(c)}", cols, rows, notes, total=total,
                  rows_name="layers", drop_order=("spec_line", "filter_shape"))


def cost_report(spec: Spec | str, alpha: float | Fraction = 1, resolution: int | None = None,
                counting: Counting = Counting(), dtype: str | None = None) -> Report:
    """Per-layer cost of one configuration, with memory traffic and intensity: in elements, or
    at `dtype` in bytes (weights as a file stores them, the maps read and written) with
    Mult-Adds per byte."""
    c = cost(spec, alpha, resolution, counting)
    rows = []
    for lc in c.layers:
        layer = lc.layer
        rows.append({
            "layer": layer.index + 1, "op": layer.op, "kind": layer.kind.value,
            "input": layer.input_shape,
            "output": layer.output_shape,
            "macs": lc.macs, "params": lc.params, "macs_share": lc.macs / (c.macs or 1),
            "elementwise_ops": lc.elementwise_ops, "input_elems": lc.input_elems, "output_elems": lc.output_elems,
            "weight_elems": lc.weight_elems, "intensity": lc.intensity,
            "alpha": c.alpha, "resolution": resolution_value(c.resolution),
        } | (_layer_bytes(lc, dtype) if dtype else {}))
    cols = [Column("layer", "#"), Column("op", "Op", numeric=False),
            Column("kind", "Kind", numeric=False),
            Column("input", "Input", numeric=False), Column("output", "Output", numeric=False),
            Column("macs", "Mult-Adds"), Column("params", "Parameters"),
            Column("macs_share", "% Mult-Adds", percent),
            Column("elementwise_ops", "Elementwise ops"),
            Column("input_elems", "In elems", table=False),
            Column("output_elems", "Out elems", table=False),
            Column("weight_elems", "Weight elems", table=False),
            Column("intensity", "MACs/elem", lambda x: f"{x:.1f}", table=not dtype)]
    if dtype:
        cols += [Column("weight_bytes", "Weight B"), Column("activation_bytes", "Map B"),
                 Column("intensity_bytes", "MACs/B", lambda x: f"{x:.1f}")]
    cols += [Column("alpha", "alpha", table=False), Column("resolution", "resolution", table=False)]
    kinds = "; ".join(f"{k.label} {percent(t.macs_share, 1)}" for k, t in c.by_kind().items()
                      if t.macs)
    moved = sum(lc.elems_moved for lc in c.layers)
    total = {"layer": "total", "op": f"{len(c.layers)} layers", "kind": "",
             "input": rows[0]["input"] if rows else "", "output": rows[-1]["output"] if rows else "",
             "macs": c.macs, "params": c.params, "macs_share": 1.0 if c.macs else 0.0,
             "elementwise_ops": c.elementwise_ops, "input_elems": sum(lc.input_elems for lc in c.layers),
             "output_elems": sum(lc.output_elems for lc in c.layers),
             "weight_elems": sum(lc.weight_elems for lc in c.layers),
             "intensity": c.macs / moved if moved else 0.0,
             "alpha": c.alpha, "resolution": resolution_value(c.resolution)}
    notes = [_totals_note(c)]
    if dtype:
        w, a = c.weight_bytes(dtype), c.activation_bytes(dtype)
        total |= {"weight_bytes": w, "activation_bytes": a,
                  "intensity_bytes": c.macs / (w + a) if w + a else 0.0}
        notes += [_bytes_note(c, dtype),
                  f"Map B: the layer's input and output maps, one image; MACs/B: Mult-Adds "
                  f"per byte of weights and maps; total {w + a:,} bytes moved."]
    return Report(f"Cost: {_config_title(c)}" + (f" ({dtype})" if dtype else ""), cols, rows,
                  notes + [f"Mult-Adds by kind: {kinds}.",
                   f"Elementwise ops (activations, residual adds, channel-wise scales; one per "
                   f"element, not Mult-Adds): {c.elementwise_ops:,}.",
                   "The last row (layer 'total') sums every layer; JSON gives it as "
                   "{\"layers\": [...], \"total\": {...}}."],
                  total=total, rows_name="layers",
                  drop_order=("kind", "elementwise_ops", "intensity", "input", "macs_share")
                  + (("params", "activation_bytes", "intensity_bytes") if dtype else ()))


def _layer_bytes(lc, dtype: str) -> dict[str, float]:
    w, a = lc.stored_weight_bytes(dtype), lc.activation_bytes(dtype)
    return {"weight_bytes": w, "activation_bytes": a, "intensity_bytes": lc.intensity_at(dtype)}


def table2(spec: Spec | str, alpha: float | Fraction = 1, resolution: int | None = None,
           counting: Counting = Counting()) -> Report:
    """Resources per layer type; for MobileNet 1.0-224 the paper's printed values beside."""
    c = cost(spec, alpha, resolution, counting)
    printed = (c.spec == "mobilenet_v1" and c.alpha == 1 and c.resolution == 224)
    rows, notes = [], []
    for kind, t in c.by_kind().items():
        if not (t.macs or t.params):
            continue
        row = {"type": kind.label, "kind": kind.value, "layers": t.layers, "macs": t.macs,
               "params": t.params, "macs_share": t.macs_share, "params_share": t.params_share,
               "alpha": c.alpha, "resolution": resolution_value(c.resolution)}
        if printed and kind in paper.TABLE2:
            pm, pp = paper.TABLE2[kind]
            row |= {"paper_macs_share": pm / 100, "paper_params_share": pp / 100}
            if kind in paper.TABLE2_NOTES:
                notes.append(paper.TABLE2_NOTES[kind])
        rows.append(row)
    cols = [Column("type", "Type", numeric=False), Column("kind", "Kind", numeric=False, table=False),
            Column("layers", "Layers"), Column("macs", "Mult-Adds"),
            Column("macs_share", "% Mult-Adds", percent)]
    if printed:
        cols.append(Column("paper_macs_share", "paper", percent))
    cols += [Column("params", "Parameters"), Column("params_share", "% Parameters", percent)]
    if printed:
        cols.append(Column("paper_params_share", "paper", percent))
    cols += [Column("alpha", "alpha", table=False), Column("resolution", "resolution", table=False)]
    if counting != Counting():
        notes.append("Parameters counted with " + ", ".join(
            n for n, on in (("FC bias", counting.biases), ("batchnorm", counting.batchnorm)) if on)
            + "; the paper's shares are reproduced by weights alone.")
    return Report(f"Table 2: resources per layer type, {_config_title(c)}", cols, rows,
                  [_totals_note(c)] + notes, drop_order=("layers", "macs", "params"))


def table3() -> Report:
    """Table 3: one 14×14×512 layer as it is shrunk, every row computed by the engine."""
    rows = []
    for r in paper.TABLE3:
        spec = parse(r.spec, source=r.label)
        res = spec.resolution_for(r.rho)
        c = cost(spec, r.alpha, res)
        rows.append({
            "modification": r.label, "alpha": to_fraction(r.alpha), "rho": r.rho,
            "resolution": res, "macs": c.macs, "params": c.params,
            "macs_m": c.macs / 1e6, "paper_macs_m": r.macs_m,
            "macs_diff_m": round(c.macs / 1e6, 3) - r.macs_m,
            "params_m": c.params / 1e6, "paper_params_m": r.params_m,
            "params_diff_m": round(c.params / 1e6, 3) - r.params_m,
        })
    m3 = lambda x: f"{x:.3f}"  # noqa: E731
    d3 = lambda x: f"{x:+.3f}"  # noqa: E731
    cols = [Column("modification", "Layer / Modification", numeric=False),
            Column("alpha", "α"), Column("rho", "ρ"), Column("resolution", "D_F"),
            Column("macs", "Mult-Adds", table=False), Column("macs_m", "M Mult-Adds", m3),
            Column("paper_macs_m", "paper", plain), Column("macs_diff_m", "diff", d3),
            Column("params", "Parameters", table=False), Column("params_m", "M Params", m3),
            Column("paper_params_m", "paper", plain), Column("params_diff_m", "diff", d3)]
    notes = ["Layer: 3×3 kernel, M = N = 512 channels, D_F = 14. ρ = 0.714 takes D_F to "
             "round(0.714 · 14) = 10, the 14×14 map of MobileNet at resolution 160.",
             "Every computed value agrees with the printed one after rounding to the printed digits."]
    return Report("Table 3: resource use of one layer as it is shrunk", cols, rows, notes,
                  drop_order=("rho", "alpha", "resolution"))


def published_report() -> Report:
    """Tables 4–7 (and MobileNetV2's headline): the engine beside each printed figure."""
    rows = []
    for p in paper.PUBLISHED_COSTS:
        c = cost(load_spec(p.spec), p.alpha, p.resolution)
        rows.append({"table": p.table, "spec": p.spec, "alpha": to_fraction(p.alpha),
                     "resolution": p.resolution, "macs": c.macs, "paper_macs_m": p.macs_m,
                     "params": c.params, "paper_params_m": p.params_m, "note": p.note})
    cols = [Column("table", "Table", numeric=False), Column("spec", "Spec", numeric=False),
            Column("alpha", "α"), Column("resolution", "res"),
            Column("macs", "M Mult-Adds", lambda x: f"{x / 1e6:,.2f}"),
            Column("paper_macs_m", "paper", plain),
            Column("params", "M Params", lambda x: f"{x / 1e6:.3f}"),
            Column("paper_params_m", "paper", plain)]
    notes = [f"Table {p.table} {p.spec}: {p.note}" for p in paper.PUBLISHED_COSTS if p.note]
    return Report("Published cost figures beside the engine", cols, rows, notes)


__all__ = ["cost_report", "published_report", "table1", "table2", "table3"]
