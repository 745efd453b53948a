"""A spec compared layer by layer with an imported network (`crosscheck --against`): shapes,
Mult-Adds and parameters of each, and the first layer where they disagree."""

from __future__ import annotations

from dataclasses import dataclass

from ..lang.kinds import LayerKind
from ..lang.spec import Layer
from .write import Imported, layer_row

# --------------------------------------------------------------------------- comparison

@dataclass
class Comparison:
    """A spec at (α, resolution) beside a network, layer by layer."""

    rows: list[dict]
    first: dict | None  # the first disagreeing row
    macs_disagree: bool  # on a convolution's or linear layer's Mult-Adds (or a layer missing)

    @property
    def agree(self) -> bool:
        return self.first is None


def compare(spec_layers: tuple[Layer, ...], net: Imported) -> Comparison:
    """Row i of the spec beside row i of the network: shapes, Mult-Adds, parameters."""
    ours = [layer_row(l) for l in spec_layers]
    theirs = net.rows
    rows: list[dict] = []
    first = None
    macs_bad = False
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else None
        b = theirs[i] if i < len(theirs) else None
        r = {"layer": i + 1,
             "spec": _side(a), "network": _side(b),
             "spec_macs": a["macs"] if a else None, "network_macs": b["macs"] if b else None,
             "spec_params": a["params"] if a else None,
             "network_params": b["params"] if b else None}
        same = (a is not None and b is not None and _same_op(a, b)
                and a["input"] == b["input"] and a["output"] == b["output"]
                and a["macs"] == b["macs"] and a["params"] == b["params"])
        r["agree"] = "yes" if same else "NO"
        if not same:
            kinds = {x["kind"] for x in (a, b) if x}
            mac_kind = bool(kinds & ({k.value for k in LayerKind if k.has_macs} | {"unknown"}))
            if mac_kind and (a is None or b is None or a["macs"] != b["macs"]):
                macs_bad = True
            if first is None:
                first = r
        rows.append(r)
    return Comparison(rows, first, macs_bad)


def _same_op(a: dict, b: dict) -> bool:
    """The same op, or a fully connected layer and a 1×1 convolution on a 1×1 map (timm's
    MobileNetV3 head `conv_head` after the global pool is torchvision's `Linear`): the same
    products, the same weights."""
    return a["op"] == b["op"] or ({a["op"], b["op"]} == {"fc", "pw"}
                                  and a["input"].startswith("1×1×"))


def _side(r: dict | None) -> str:
    if r is None:
        return "—"
    if r["op"] == "unknown":
        return f"unknown {r['layer']}"
    return f"{r['op']} {r['input']} → {r['output']}"
