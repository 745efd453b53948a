"""Where an imported network comes from, and the reports of `import` and `crosscheck --against`.

A source is an ONNX file (`model.onnx`, read with the onnx package, no torch) or a Python
callable returning an `nn.Module` (`package.module:callable`, `path/to/file.py:callable`,
traced by `mobilecost.torch.fx`; torch is loaded only then).
"""

from __future__ import annotations

from fractions import Fraction

from ..importing.compare import compare
from ..importing.recognise import ModelImportError
from ..importing.write import Imported, import_graph
from ..lang.spec import Spec
from ..lang.values import Rounding
from .report import Column, Report, format_number

DEFAULT_RESOLUTION = 224  # a module has no input size of its own


def is_onnx(source: str) -> bool:
    return source.lower().endswith(".onnx")


def read_source(source: str, resolution: int | None = None, rounding: Rounding = Rounding(),
                allow_unknown: bool = False) -> Imported:
    """The spec of the network at `source`, at `resolution` (an ONNX file's own fixed size,
    else DEFAULT_RESOLUTION for a module)."""
    if resolution is not None and (isinstance(resolution, bool) or resolution < 1):
        raise ModelImportError(f"--res must be a positive integer, got {resolution}")
    if is_onnx(source):
        from ..importing.onnx import load_graph

        graph = load_graph(source, resolution)
    else:
        from ..torch import require_torch

        require_torch()
        from ..torch.fx import graph_of_module, module_of

        module, name = module_of(source)
        graph = graph_of_module(module, source, name,
                                DEFAULT_RESOLUTION if resolution is None else resolution)
    return import_graph(graph, rounding, allow_unknown)


def import_summary(imp: Imported) -> list[str]:
    """What an import found, one line each: size, cost, and the unknown operations' share."""
    s = imp.spec
    macs = imp.total_macs
    params = sum(r["params"] or 0 for r in imp.rows)
    lines = [f"{s.name}: {len(imp.layers)} layers at {s.resolution}×{s.resolution}×"
             f"{s.in_channels.base}, {macs:,} Mult-Adds, {params:,} parameters (weights)"]
    if imp.unknown:
        share = imp.unknown_macs / macs if macs else 0.0
        lines.append(f"{len(imp.unknown)} operation(s) the spec cannot express, written as "
                     f"comments: they hold {imp.unknown_macs:,} of the {macs:,} Mult-Adds "
                     f"({share:.2%})")
        lines += [f"  {u.text()}: {u.advice}" for u in imp.unknown[:10]]
        if len(imp.unknown) > 10:
            lines.append(f"  ... and {len(imp.unknown) - 10:,} more (written as comments in "
                         f"the spec)")
    return lines


def against_report(spec: Spec, alpha: Fraction, resolution: int, source: str,
                   imp: Imported):
    """The spec at (α, resolution) beside the network, layer by layer, and the comparison."""
    layers = spec.build(alpha, resolution)
    cmp = compare(layers, imp)
    cols = [Column("layer", "Layer"),
            Column("agree", "Agree", numeric=False),
            Column("spec", "Spec", numeric=False),
            Column("network", "Network", numeric=False),
            Column("spec_macs", "Spec MACs"), Column("network_macs", "Network MACs"),
            Column("spec_params", "Spec params"), Column("network_params", "Network params")]
    bad = [r for r in cmp.rows if r["agree"] != "yes"]
    spec_macs = sum(r["spec_macs"] or 0 for r in cmp.rows)
    net_macs = sum(r["network_macs"] or 0 for r in cmp.rows)
    notes = [f"Mult-Adds: spec {spec_macs:,}, network {net_macs:,}; "
             + ("every layer agrees." if not bad else f"{len(bad)} row(s) disagree.")]
    if imp.unknown:
        notes.append(f"the network has {len(imp.unknown)} operation(s) the spec language "
                     f"cannot express, holding {imp.unknown_macs:,} Mult-Adds")
    title = (f"{spec.name} at alpha {format_number(alpha)}, resolution {resolution} against "
             f"{source}")
    return Report(title, cols, cmp.rows, notes, drop_order=("spec_params", "network_params")), cmp


def disagreement_text(cmp) -> str:
    r = cmp.first
    return (f"first disagreement at layer {r['layer']}: spec {r['spec']} "
            f"({_n(r['spec_macs'])} Mult-Adds, {_n(r['spec_params'])} params), network "
            f"{r['network']} ({_n(r['network_macs'])} Mult-Adds, {_n(r['network_params'])} params)")


def _n(v) -> str:
    return "—" if v is None else f"{v:,}"


__all__ = ["DEFAULT_RESOLUTION", "against_report", "disagreement_text", "import_summary",
           "is_onnx", "read_source"]
