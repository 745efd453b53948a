"""Rewrites of a graph read from ONNX, before its layers are recognised: small constant
chains evaluated (the TorchScript exporter writes a fixed F.pad's amounts and run-time SAME
padding as Shape, Gather, Ceil ... Pad), a tensor's shape worked out from the operations read
so far, MixNet's split-convolve-concatenate made one node, and a zero Pad read into the
convolution after it."""

from __future__ import annotations

from typing import Any

from .graph import Graph, ModelImportError, Node


def dec(v: Any) -> Any:
    """An attribute's text as str (ONNX gives bytes)."""
    return v.decode() if isinstance(v, bytes) else v


#: Operations on small constants worth evaluating: the TorchScript exporter writes a fixed
#: F.pad's amounts as a chain of these.
_FOLDABLE = {"ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast", "Unsqueeze",
             "Squeeze", "Add", "Sub", "Mul", "Div", "Ceil", "Floor", "Clip", "Gather", "Max",
             "Min", "Neg", "Shape", "Size"}


def fold(n: Any, consts: dict) -> list:
    """The outputs of a node whose inputs are all constants, by ONNX's reference evaluator
    where the op is a small arithmetic or shape one and the inputs are few numbers; else
    unknown (None)."""
    vals = [consts.get(x) for x in n.input if x]
    if n.op_type not in _FOLDABLE or any(v is None for v in vals) or \
            sum(v.size for v in vals) > 1024:
        return [None] * len(n.output)
    try:
        from onnx.reference import ReferenceEvaluator

        got = ReferenceEvaluator(n).run(None, {x: consts[x] for x in n.input if x})
    except Exception:  # noqa: BLE001 - an op the evaluator cannot run stays unknown
        return [None] * len(n.output)
    return list(got)


def shape_now(t: str, nodes: list[Node], input_name: str, channels: int,
               size: int) -> tuple[int, ...] | None:
    """The N×C×H×W shape of data tensor t from the nodes read so far (their padding taken
    into the convolutions first), or None where that cannot be worked out."""
    from .graph import propagate

    done = pads_into_convs([Node(n.name, n.op, n.inputs, n.output, n.source_op, dict(n.attrs))
                             for n in nodes], t)
    try:
        shapes = propagate(Graph("", "", input_name, t, channels, size, done))
    except ModelImportError:
        return None
    s = shapes.get(t)
    if s is None or any(n.op == "unknown" and "out_shape" not in n.attrs for n in done):
        return None  # an operation of unknown shape on the way
    return (1,) + tuple(s)


def split_sizes(n: Any, a: dict, consts: dict, shapes: dict) -> list[int] | None:
    """The channels of each part of a Split on axis 1."""
    if len(n.input) > 1 and n.input[1]:
        v = consts.get(n.input[1])
        return None if v is None else [int(x) for x in v.reshape(-1)]
    if "split" in a:
        return [int(x) for x in a["split"]]
    s = shapes.get(n.input[0])
    parts = len(n.output)
    if s is None or len(s) != 4:
        return None
    each = -(-s[1] // parts)  # equal parts, the last one smaller (ONNX's num_outputs rule)
    return [each] * (parts - 1) + [s[1] - each * (parts - 1)]


def mixconvs(nodes: list[Node], output: str) -> list[Node]:
    """A Split on the channels, one convolution on each part, and a Concat of their outputs
    in order (MixNet's MixConv as the exporters write it): one `mixconv` node."""
    readers: dict[str, list[Node]] = {}
    for n in nodes:
        for t in n.inputs:
            readers.setdefault(t, []).append(n)
    by_out = {n.output: n for n in nodes}
    drop: set[int] = set()
    new: dict[int, Node] = {}
    for n in nodes:
        if not n.attrs.get("concat") or n.output == output:
            continue
        convs = [by_out.get(t) for t in n.inputs]
        if not convs or any(c is None or c.op != "conv" or len(readers.get(c.output, [])) != 1
                            for c in convs):
            continue
        parts = [by_out.get(c.inputs[0]) for c in convs]
        if any(p is None or "split" not in p.attrs or len(readers.get(p.output, [])) != 1
               for p in parts):
            continue
        ids = [p.attrs["split"] for p in parts]
        sizes = ids[0][2]
        if len({i[0] for i in ids}) != 1 or [i[1] for i in ids] != list(range(len(sizes))) \
                or len({p.inputs for p in parts}) != 1:
            continue
        for x in parts + convs:
            drop.add(id(x))
        new[id(n)] = Node(_prefix([c.name for c in convs]), "mixconv", parts[0].inputs,
                          n.output, "Split, Conv, Concat",
                          {"splits": list(sizes), "parts": [c.attrs for c in convs]})
    return [new.get(id(n), n) for n in nodes if id(n) not in drop]


def _prefix(names: list[str]) -> str:
    parts = [x.split("/") for x in names]
    common = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common) or names[0]


def zero_pad(n: Any, a: dict, consts: dict) -> tuple[int, int, int, int] | None:
    """A Pad with zeros on H and W only (TensorFlow's SAME computed at export, as timm's
    `Conv2dSame` pads at run time): (top, left, bottom, right); else None."""
    if dec(a.get("mode", "constant")) != "constant":
        return None
    pads = a.get("pads")
    if pads is None and len(n.input) > 1 and n.input[1] in consts and consts[n.input[1]] is not None:
        pads = [int(v) for v in consts[n.input[1]].reshape(-1)]
    if len(n.input) > 2 and n.input[2]:
        v = consts.get(n.input[2])
        if v is None or v.size != 1 or float(v.reshape(-1)[0]) != 0:
            return None
    if len(n.input) > 3 and n.input[3]:
        return None  # padding of chosen axes only
    if pads is None or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        return None
    return (int(pads[2]), int(pads[3]), int(pads[6]), int(pads[7]))


def pads_into_convs(nodes: list[Node], output: str) -> list[Node]:
    """Zero padding read by one convolution alone becomes that convolution's padding."""
    readers: dict[str, list[Node]] = {}
    for n in nodes:
        for t in n.inputs:
            readers.setdefault(t, []).append(n)
    out = []
    for n in nodes:
        rs = readers.get(n.output, [])
        if "pads" in n.attrs and n.op == "unknown" and n.output != output and len(rs) == 1 \
                and rs[0].op == "conv" and rs[0].inputs == (n.output,):
            c = rs[0]
            c.inputs = n.inputs
            c.attrs["pads"] = tuple(x + y for x, y in zip(c.attrs["pads"], n.attrs["pads"]))
            continue
        out.append(n)
    return out
