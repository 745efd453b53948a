"""Read an ONNX file into the importer's graph (`importing.graph.Graph`), with the `onnx`
package alone (no torch, no ONNX Runtime).

Conv, BatchNormalization, Relu, Clip(0, 6), Add, AveragePool, MaxPool, GlobalAveragePool,
ReduceMean over H and W, Flatten (and a Reshape or Squeeze to a vector), Gemm and MatMul (+ a
bias Add), Gelu, and a zero Pad read by one convolution (its padding, TensorFlow's SAME as the
`tf_` ports export it) are read; Identity and Dropout are skipped; every other operation is
kept as unknown, with the shape ONNX's shape inference gives it. Exporters fold batchnorm into
the convolution's weights and bias for inference (torch.onnx.export does, in eval mode), so a
convolution with a bias is read as one with batchnorm (`bn=yes`), unless the bias is the
convolution's own parameter: both of torch's exporters keep a parameter's name, so a bias
named `P.bias` beside a weight `P.weight` (timm's `conv_head.bias`) is a bias (`bias=yes`),
while a folded one has a made-up name (`onnx::Conv_508`, `conv_stem.weight_bias`). The Dynamo
exporter drops a bias of zeros (an untrained network's, folded batchnorm's too) and names in
each node's metadata the rewrites it made; a dropped bias and a folded batchnorm are read from
there.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .graph import Graph, ModelImportError, Node, check_size
from .onnx_rewrite import dec, fold, mixconvs, pads_into_convs, shape_now, split_sizes, zero_pad

INSTALL_HINT = "install it: pip install 'mobilecost[onnx]' (or pip install onnx)"


def require_onnx():
    try:
        import onnx
    except ImportError:
        raise ModelImportError(f"reading ONNX files needs the onnx package, which is not "
                               f"installed; {INSTALL_HINT}") from None
    return onnx


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def load_graph(path: str | Path, resolution: int | None = None) -> Graph:
    """The ONNX file at `path` as the importer's graph; `resolution` sets a dynamic input size
    (and must agree with a fixed one)."""
    onnx = require_onnx()
    from onnx import numpy_helper

    p = Path(path)
    if not p.is_file():
        raise ModelImportError(f"{path}: no such file")
    try:
        model = onnx.load(str(p))
    except Exception as exc:
        raise ModelImportError(f"{path}: not a readable ONNX file (truncated or not ONNX?): "
                               f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None
    g = model.graph
    if not g.node:
        raise ModelImportError(f"{path}: the ONNX graph has no operations (truncated or "
                               f"not ONNX?)")
    check_size(str(path), sum(n.op_type in ("Conv", "Gemm", "MatMul") for n in g.node),
               sum(n.op_type != "Constant" for n in g.node))
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:
        inferred = g
    consts: dict[str, Any] = {}
    for t in g.initializer:
        consts[t.name] = numpy_helper.to_array(t)
    for n in g.node:
        if n.op_type == "Constant":
            a = _attrs(n)
            if "value" in a:
                consts[n.output[0]] = numpy_helper.to_array(a["value"])
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1:
        raise ModelImportError(f"{path}: the graph takes {len(inputs)} inputs; mobilecost "
                               f"imports networks of one image input")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ModelImportError(f"{path}: input {inputs[0].name!r} has {len(dims)} dimensions; "
                               f"expected N×C×H×W")
    fixed = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if fixed[1] is None:
        raise ModelImportError(f"{path}: input {inputs[0].name!r} has a dynamic channel count")
    h, w = fixed[2], fixed[3]
    if h is None or w is None:
        if resolution is None:
            raise ModelImportError(f"{path}: input {inputs[0].name!r} has a dynamic size "
                                   f"({_dims_text(dims)}); give the resolution with --res")
        h = w = resolution
    elif resolution is not None and (h, w) != (resolution, resolution):
        raise ModelImportError(f"{path}: input {inputs[0].name!r} is fixed at {h}×{w}; "
                               f"--res {resolution} differs")
    if h != w:
        raise ModelImportError(f"{path}: input {inputs[0].name!r} is {h}×{w}; mobilecost "
                               f"imports square inputs")
    shapes = {}
    for vi in list(inferred.value_info) + list(inferred.output):
        d = vi.type.tensor_type.shape.dim
        if d and all(x.HasField("dim_value") for x in d):
            shapes[vi.name] = tuple(x.dim_value for x in d)
    nodes: list[Node] = []
    alias: dict[str, str] = {}  # identity outputs -> their input
    by_out: dict[str, Node] = {}

    def data(names) -> tuple[str, ...]:
        return tuple(alias.get(x, x) for x in names if x and x not in consts)

    for n in g.node:
        if n.op_type == "Constant":
            continue
        name = n.name or n.output[0]
        ins = data(n.input)
        a = _attrs(n)
        op, attrs = "unknown", {}
        t = n.op_type
        if not ins:  # computed from constants alone: a constant (an Identity of a weight)
            if t == "Identity" and n.input[0] in consts:
                consts[n.output[0]] = consts[n.input[0]]
            else:
                for o, v in zip(n.output, fold(n, consts)):
                    consts.setdefault(o, v)
            continue
        if t in ("Identity", "Dropout") and len(ins) == 1:
            alias[n.output[0]] = ins[0]
            continue
        if t == "Shape" and len(ins) == 1:  # a size the exporter computes with (run-time SAME)
            v = shape_now(ins[0], nodes, inputs[0].name, int(fixed[1]), int(h))
            if v is not None:
                lo, hi = a.get("start", 0), a.get("end", len(v))
                consts[n.output[0]] = np.array(v[lo:hi], dtype=np.int64)
                continue
        if t == "Split" and len(ins) == 1 and int(a.get("axis", 0)) in (1, -3):
            sizes = split_sizes(n, a, consts, shapes)
            if sizes is not None:  # one node per part; `mixconvs` joins split-conv-concat
                for i, o in enumerate(n.output):
                    s = shapes.get(o)
                    node = Node(name, "unknown", ins, o, t,
                                {"split": (name, i, tuple(sizes))}
                                | ({"out_shape": s[1:]} if s and len(s) == 4 else {}))
                    nodes.append(node)
                    by_out[o] = node
                continue
        if t == "Conv" and len(ins) == 1 and n.input[1] in consts:
            op, attrs = "conv", _conv(n, a, consts, name, path)
        elif t == "BatchNormalization" and len(ins) == 1:
            op = "bn"
        elif t == "Relu" and len(ins) == 1:
            op = "relu"
        elif t == "Clip" and len(ins) == 1 and _clip(n, a, consts) == (0.0, 6.0):
            op = "relu6"
        elif t == "HardSwish" and len(ins) == 1:
            op = "hswish"
        elif t == "HardSigmoid" and len(ins) == 1 and \
                abs(float(a.get("alpha", 0.2)) - 1 / 6) < 1e-6 and \
                abs(float(a.get("beta", 0.5)) - 0.5) < 1e-6:
            op = "hsigmoid"  # MobileNetV3's relu6(x + 3)/6; ONNX's default slope 0.2 is not
        elif t == "Sigmoid" and len(ins) == 1:
            op = "sigmoid"
        elif t == "Gelu" and len(ins) == 1:
            op = "gelu"
        elif t == "Concat" and int(a.get("axis", 0)) in (1, -3):
            op, attrs = "unknown", {"concat": True}
        elif t == "Pad" and len(ins) == 1 and zero_pad(n, a, consts) is not None:
            op, attrs = "pad", {"pads": zero_pad(n, a, consts)}
        elif t == "Add" and len(ins) == 2:
            op = "add"
        elif t == "Mul" and len(ins) == 2:
            op = "mul"
        elif t == "Mul" and len(ins) == 1 and _per_channel(n, consts, shapes.get(ins[0])):
            op = "layerscale"
        elif t == "Add" and len(ins) == 1 and ins[0] in by_out and by_out[ins[0]].op == "linear" \
                and not by_out[ins[0]].attrs["bias"]:
            by_out[ins[0]].attrs["bias"] = True  # MatMul + Add: the linear layer's bias
            alias[n.output[0]] = ins[0]
            continue
        elif t in ("Add", "Mul", "Div") and len(ins) == 1 and _scalar(n, consts) is not None \
                and (t != "Div" or (n.input[0] == ins[0] and _scalar(n, consts) != 0)):
            v = _scalar(n, consts)
            op, attrs = ("addc", {"value": v}) if t == "Add" else \
                ("mulc", {"value": v if t == "Mul" else 1.0 / v})
        elif t in ("AveragePool", "MaxPool") and len(ins) == 1 and \
                dec(a.get("auto_pad", "NOTSET")) in ("NOTSET", "VALID") and \
                a.get("dilations", [1, 1]) in ([1, 1], (1, 1)) and len(n.output) == 1:
            k = tuple(a["kernel_shape"])
            pads = tuple(a.get("pads", (0, 0, 0, 0)))
            op = "avgpool" if t == "AveragePool" else "maxpool"
            attrs = {"kernel": k, "stride": tuple(a.get("strides", (1, 1))),
                     "pads": (pads[0], pads[1], pads[2], pads[3]),
                     "ceil": bool(a.get("ceil_mode", 0))}
        elif t == "GlobalAveragePool" and len(ins) == 1:
            op, attrs = "gpool", {"keepdim": True}
        elif t == "ReduceMean" and len(ins) == 1:
            axes = a.get("axes")
            if axes is None and len(n.input) > 1 and n.input[1] in consts:
                axes = [int(v) for v in consts[n.input[1]].reshape(-1)]
            if axes is not None and sorted(int(x) % 4 for x in axes) == [2, 3]:
                op, attrs = "gpool", {"keepdim": bool(a.get("keepdims", 1))}
        elif t == "Flatten" and len(ins) == 1 and a.get("axis", 1) == 1:
            op = "flatten"
        elif t == "Reshape" and len(ins) == 1 and n.input[1] in consts:
            target = [int(v) for v in consts[n.input[1]].reshape(-1)]
            if len(target) == 2:  # (N, -1) or (N, F): the linear layer after it checks F
                op = "flatten"
        elif t == "Squeeze" and len(ins) == 1:
            axes = a.get("axes")
            if axes is None and len(n.input) > 1 and n.input[1] in consts:
                axes = [int(v) for v in consts[n.input[1]].reshape(-1)]
            if axes is not None and sorted(int(x) % 4 for x in axes) == [2, 3]:
                op = "flatten"
        elif t == "Gemm" and len(ins) == 1 and n.input[1] in consts and not a.get("transA", 0):
            b = consts[n.input[1]]
            out, inn = (b.shape[0], b.shape[1]) if a.get("transB", 0) else (b.shape[1], b.shape[0])
            op, attrs = "linear", {"in_features": int(inn), "out_features": int(out),
                                   "bias": len(n.input) > 2 and bool(n.input[2])
                                   or _had_bias(n, "linear")}
        elif t == "MatMul" and len(ins) == 1 and n.input[1] in consts and consts[n.input[1]].ndim == 2:
            b = consts[n.input[1]]
            op, attrs = "linear", {"in_features": int(b.shape[0]), "out_features": int(b.shape[1]),
                                   "bias": False}
        if t == "MatMul" and len(ins) == 2 and op == "unknown":  # attention's QKᵀ and ·V
            a_s, o_s = shapes.get(n.input[0]), shapes.get(n.output[0])
            if a_s and o_s:
                attrs["macs"] = int(np.prod(o_s)) * int(a_s[-1])
        if op in ("unknown", "pad"):
            s = shapes.get(n.output[0])
            attrs |= {"out_shape": s[1:]} if s and len(s) >= 2 else {}
        node = Node(name, "unknown" if op == "pad" else op, ins, n.output[0], t, attrs)
        nodes.append(node)
        by_out[node.output] = node
    if len(g.output) != 1:
        raise ModelImportError(f"{path}: the graph has {len(g.output)} outputs; mobilecost "
                               f"imports networks of one output")
    out = alias.get(g.output[0].name, g.output[0].name)
    nodes = mixconvs(pads_into_convs(nodes, out), out)
    clean = re.sub(r"[^A-Za-z0-9_.\-]", "_", p.stem) or "imported"
    return Graph(str(path), clean, inputs[0].name, out, int(fixed[1]), int(h), nodes)


def _dims_text(dims) -> str:
    return "×".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                    for d in dims)


def _scalar(n: Any, consts: dict) -> float | None:
    """The one constant operand of a two-operand node, where it is a single number."""
    vals = [consts.get(x) for x in n.input if x in consts]
    if len(n.input) != 2 or len(vals) != 1 or vals[0] is None or vals[0].size != 1:
        return None
    return float(vals[0].reshape(-1)[0])


def _clip(n: Any, a: dict, consts: dict) -> tuple[float | None, float | None]:
    lo, hi = a.get("min"), a.get("max")
    if len(n.input) > 1 and n.input[1]:
        lo = float(consts[n.input[1]]) if n.input[1] in consts else None
    if len(n.input) > 2 and n.input[2]:
        hi = float(consts[n.input[2]]) if n.input[2] in consts else None
    return (None if lo is None else float(lo), None if hi is None else float(hi))


def _conv(n: Any, a: dict, consts: dict, name: str, path: Any) -> dict:
    w = consts[n.input[1]]
    if w.ndim != 4:
        raise ModelImportError(f"{path}: {name} (Conv): a {w.ndim - 2}-D convolution; "
                               f"mobilecost imports 2-D ones")
    groups = int(a.get("group", 1))
    k = tuple(int(v) for v in a.get("kernel_shape", w.shape[2:]))
    s = tuple(int(v) for v in a.get("strides", (1, 1)))
    d = tuple(int(v) for v in a.get("dilations", (1, 1)))
    auto = dec(a.get("auto_pad", "NOTSET"))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        # only where SAME's padding is the same on both sides, as a spec's is (stride 1, odd k)
        if s != (1, 1) or k[0] % 2 == 0 or k[1] % 2 == 0:
            raise ModelImportError(f"{path}: {name} (Conv): auto_pad {auto} with stride {s} "
                                   f"on a {k[0]}×{k[1]} kernel pads unevenly")
        pads = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2) * 2
    else:
        pads = tuple(int(v) for v in a.get("pads", (0, 0, 0, 0)))
    bias = len(n.input) > 2 and bool(n.input[2])
    own = bias and n.input[1].endswith(".weight") and n.input[2] == n.input[1][:-7] + ".bias"
    rules = _rules(n)  # the Dynamo exporter's rewrites, which its metadata names
    folded = (bias and not own) or "FuseBatchNormIntoConv" in rules
    if not bias and "FuseBatchNormIntoConv" not in rules and _had_bias(n, "conv2d"):
        bias = own = True  # its own bias, all zeros (an untrained network), dropped
    return {"in_channels": int(w.shape[1]) * groups, "out_channels": int(w.shape[0]),
            "kernel": k, "stride": s, "pads": pads, "dilation": d, "groups": groups,
            "bias": bias or folded, "folded_bn": folded}


def _per_channel(n: Any, consts: dict, x: tuple | None) -> bool:
    """A Mul of a map by a constant of one value per channel (1×C×1×1 or C×1×1): layer
    scale's γ."""
    v = next((consts.get(i) for i in n.input if i in consts), None)
    return v is not None and x is not None and len(x) == 4 and \
        tuple(v.shape) in ((1, x[1], 1, 1), (x[1], 1, 1))


def _had_bias(n: Any, aten: str) -> bool:
    """Whether the Dynamo exporter dropped a bias of this node (`RemoveOptionalBias...` among
    its rewrites) that the torch call it came from passed as a parameter (its metadata
    `pkg.torch.onnx.fx_node`: `aten.conv2d.default](args = (%x, %p_w, %p_b)`)."""
    if not any(r.startswith("RemoveOptionalBias") for r in _rules(n)):
        return False
    call = next((p.value for p in n.metadata_props if p.key == "pkg.torch.onnx.fx_node"), "")
    return re.search(rf"aten\.{aten}\.default\]\(args = \(%[^,()]+, %[^,()]+, %[^,()\s]+",
                     call) is not None


def _rules(n: Any) -> set[str]:
    """The rewrite rules the Dynamo exporter's optimizer applied to a node (its metadata
    `pkg.onnxscript.rewriter.rule_name`): `FuseBatchNormIntoConv` says batchnorm was folded into
    a convolution, `RemoveOptionalBiasFrom...` that a bias of zeros was dropped."""
    for p in n.metadata_props:
        if p.key == "pkg.onnxscript.rewriter.rule_name":
            return {r.strip() for r in p.value.split(",")}
    return set()


__all__ = ["load_graph", "require_onnx"]
