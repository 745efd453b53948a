"""Read a PyTorch module into the importer's graph (`importing.graph.Graph`).

The module is traced with `torch.fx.symbolic_trace`: it records the forward pass with
torch.nn's layers as leaves, so each Conv2d, BatchNorm2d, Linear and pool keeps its
attributes and its qualified name (`features.3.conv.0`), which is what the spec needs and
what a message should name. `torch.export` would also trace code that fx cannot (control
flow on shapes), but it lowers every layer to ATen operators and hides the module
boundaries; fx's limit (no Python control flow on tensor values) is reported with the line
of the forward pass that hit it. The traced graph is then run once on a zero input of the
requested size (`ShapeProp`) so that operations the spec cannot express still have shapes.
"""

from __future__ import annotations

import importlib
import importlib.util
import operator
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from ..importing.graph import Graph, ModelImportError, Node, check_size
from .fx_layers import Tracer, activation_of, common_prefix, mixed_convs, run_time_pads


def load_callable(source: str) -> tuple[Callable[[], Any], str]:
    """`package.module:callable` or `path/to/file.py:callable`: the callable and its name."""
    where, sep, attr = source.rpartition(":")
    if not sep or not where or not attr:
        raise ModelImportError(f"{source}: expected MODULE:CALLABLE or FILE.py:CALLABLE, "
                               f"or an .onnx file")
    try:
        if where.endswith(".py") or "/" in where:
            path = Path(where)
            if not path.is_file():
                raise ModelImportError(f"{source}: no such Python file {where}")
            name = f"_mobilecost_import_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ModelImportError:
        raise
    except Exception as exc:  # any error in the user's module is theirs to see, in one line
        raise ModelImportError(f"{source}: importing {where} failed: {_one_line(exc)}"
                               f"{_user_frame(exc)}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise ModelImportError(f"{source}: {where} has no attribute {attr!r}")
    if not callable(fn):
        raise ModelImportError(f"{source}: {attr} is {type(fn).__name__!r}, not a callable")
    return fn, attr


def module_of(source: str) -> tuple[nn.Module, str]:
    """Call the source's callable: it must return an nn.Module."""
    fn, name = load_callable(source)
    if isinstance(fn, nn.Module):
        return fn, name
    try:
        m = fn()
    except Exception as exc:
        raise ModelImportError(f"{source}: calling {name}() failed: {_one_line(exc)}"
                               f"{_user_frame(exc)}") from None
    if not isinstance(m, nn.Module):
        raise ModelImportError(f"{source}: {name}() returned {type(m).__name__!r}, "
                               f"not a torch.nn.Module")
    return m, name


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


def _user_frame(exc: BaseException) -> str:
    """' (at FILE:LINE in FUNC)' for the last frame outside torch and mobilecost."""
    torch_dir = str(Path(torch.__file__).parent)
    ours = str(Path(__file__).parent.parent)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith((torch_dir, ours)) and "importlib" not in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f" (at {f.filename}:{f.lineno} in {f.name})"


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_attrs(m: nn.Conv2d, name: str) -> dict:
    k, s, d = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
    if isinstance(m.padding, str):
        if m.padding == "valid":
            p = (0, 0)
        elif all(kk % 2 and ss == 1 for kk, ss in zip(k, s)):  # 'same' (stride 1 only in torch)
            p = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
        else:
            raise ModelImportError(f"{name} (Conv2d): padding='same' on an even kernel")
    else:
        p = _pair(m.padding)
    return {"in_channels": m.in_channels, "out_channels": m.out_channels, "kernel": k,
            "stride": s, "pads": (p[0], p[1], p[0], p[1]), "dilation": d, "groups": m.groups,
            "bias": m.bias is not None, "padding_mode": m.padding_mode}


def _pool_attrs(m: nn.Module) -> dict:
    k = _pair(m.kernel_size)
    s = _pair(m.stride if m.stride is not None else m.kernel_size)
    p = _pair(m.padding)
    return {"kernel": k, "stride": s, "pads": (p[0], p[1], p[0], p[1]),
            "ceil": bool(m.ceil_mode)}


def _is_one(v: Any) -> bool:
    return v == 1 or v == (1, 1) or v == [1, 1]


def _module_node(name: str, m: nn.Module) -> tuple[str, dict]:
    """The neutral op of a leaf module and its attributes."""
    if isinstance(m, nn.Conv2d):
        a = _conv_attrs(m, name)
        return ("conv" if a["padding_mode"] == "zeros" else "unknown"), a
    if isinstance(m, nn.BatchNorm2d):
        return "bn", {}
    if isinstance(m, nn.ReLU6):
        return "relu6", {}
    if isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0.0, 6.0):
        return "relu6", {}
    if isinstance(m, nn.ReLU):
        return "relu", {}
    for cls, act in ((nn.Hardswish, "hswish"), (nn.Hardsigmoid, "hsigmoid"),
                     (nn.Sigmoid, "sigmoid"), (nn.SiLU, "silu"), (nn.GELU, "gelu")):
        if isinstance(m, cls):
            return act, {}
    act = activation_of(m)
    if act is not None:
        return act, {}
    if isinstance(m, (nn.Identity, nn.Dropout)):
        return "identity", {}
    if isinstance(m, nn.AvgPool2d):
        return ("avgpool" if _pair(m.padding) == (0, 0) else "unknown"), _pool_attrs(m)
    if isinstance(m, nn.MaxPool2d):
        ok = _pair(m.dilation) == (1, 1) and not m.return_indices
        return ("maxpool" if ok else "unknown"), _pool_attrs(m)
    if isinstance(m, nn.AdaptiveAvgPool2d) and _is_one(m.output_size):
        return "gpool", {"keepdim": True}
    if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
        return "flatten", {}
    if isinstance(m, nn.Linear):
        return "linear", {"in_features": m.in_features, "out_features": m.out_features,
                          "bias": m.bias is not None}
    return "unknown", {}


_FUNCTIONS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", F.dropout: "identity",
    F.hardswish: "hswish", F.hardsigmoid: "hsigmoid", torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid", F.silu: "silu", F.gelu: "gelu", F.batch_norm: "bn",
}

#: Tensor methods, in place or not (geffnet's hard-swish is `x.mul_(F.relu6(x + 3.).div_(6.))`).
_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid"}
_ADD = (operator.add, torch.add, operator.iadd, "add", "add_")
_MUL = (operator.mul, torch.mul, operator.imul, "mul", "mul_")
_DIV = (operator.truediv, torch.div, operator.itruediv, "div", "div_")


def _dims(args: Any) -> tuple[int, ...]:
    if isinstance(args, int):
        return (args,)
    return tuple(int(a) for a in args) if isinstance(args, (tuple, list)) else ()


def _arith_node(n: fx.Node, data_args: list) -> tuple[str, dict] | None:
    """x + y, x * y (functions, operators and methods, in place or not), and a number added
    to, multiplying or dividing a tensor."""
    t, args, kw = n.target, n.args, n.kwargs
    if t not in _ADD + _MUL + _DIV or kw:
        return None
    if t in _ADD + _MUL and len(data_args) == 2 and len(args) == 2:
        return ("add" if t in _ADD else "mul"), {}
    if len(data_args) == 1 and len(args) == 2:
        c = args[1] if args[0] in data_args else args[0]
        if isinstance(c, (int, float)) and not isinstance(c, bool) and \
                (t not in _DIV or (args[0] in data_args and c != 0)):
            if t in _ADD:
                return "addc", {"value": float(c)}
            return "mulc", {"value": float(c) if t in _MUL else 1.0 / c}
    return None


def _function_node(n: fx.Node, data_args: list, attr: Callable[[Any], Any]) -> tuple[str, dict]:
    """The neutral op of a function or method call; `attr` gives a get_attr node's tensor
    (F.linear's weight)."""
    t, args, kw = n.target, n.args, n.kwargs
    got = _arith_node(n, data_args)
    if got is not None:
        return got
    if t in _MUL and len(data_args) == 1 and len(args) == 2 and not kw:
        other = args[1] if args[0] is data_args[0] else args[0]
        if _per_channel(other, data_args[0]):
            return "layerscale", {}
    if n.op == "call_function":
        if t is F.hardtanh:
            if (list(args[1:3]) or [kw.get("min_val"), kw.get("max_val")]) == [0.0, 6.0]:
                return "relu6", {}
        elif t is F.batch_norm:
            if not (args[5] if len(args) > 5 else kw.get("training", False)):
                return "bn", {}
        elif t in _FUNCTIONS and len(data_args) == 1:
            return _FUNCTIONS[t], {}
        if t is F.linear and len(data_args) == 1 and len(args) >= 2:
            w = attr(args[1])
            b = args[2] if len(args) > 2 else kw.get("bias")
            if w is not None and w.dim() == 2:
                return "linear", {"in_features": int(w.shape[1]), "out_features": int(w.shape[0]),
                                  "bias": b is not None}
        if t in (torch.clamp, torch.clip) and len(data_args) == 1 and _bounds(args, kw) == [0, 6]:
            return "relu6", {}
        if t is torch.flatten and (args[1:2] or (kw.get("start_dim", 0),))[0] == 1 and \
                (args[2:3] or (kw.get("end_dim", -1),))[0] == -1:
            return "flatten", {}
        if t is F.adaptive_avg_pool2d and _is_one(args[1] if len(args) > 1 else kw.get("output_size")):
            return "gpool", {"keepdim": True}
        if t is torch.mean and len(args) > 1 and sorted(d % 4 for d in _dims(args[1])) == [2, 3]:
            return "gpool", {"keepdim": bool(args[2] if len(args) > 2 else kw.get("keepdim", False))}
    elif n.op == "call_method":
        if t in _METHODS and len(data_args) == 1 and len(args) == 1:
            return _METHODS[t], {}
        if t == "contiguous":
            return "identity", {}
        if t in ("clamp", "clip", "clamp_", "clip_") and len(data_args) == 1 and \
                _bounds(args, kw) == [0, 6]:
            return "relu6", {}
        if t == "flatten" and (args[1:2] or (kw.get("start_dim", 0),))[0] == 1:
            return "flatten", {}
        if t in ("view", "reshape") and len(args) == 3 and args[2] == -1:
            return "flatten", {}
        if t == "mean" and len(args) > 1 and sorted(d % 4 for d in _dims(args[1])) == [2, 3]:
            return "gpool", {"keepdim": bool(args[2] if len(args) > 2 else kw.get("keepdim", False))}
    return "unknown", {}


def _attr_of(gm: fx.GraphModule, a: Any) -> torch.Tensor | None:
    """The tensor a get_attr node reads (a functional layer's weight), or None."""
    if not isinstance(a, fx.Node) or a.op != "get_attr":
        return None
    obj: Any = gm
    for part in a.target.split("."):
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, torch.Tensor) else None


def _per_channel(a: Any, x: fx.Node) -> bool:
    """Whether `a` is a learned tensor of one value per channel of x, C×1×1 (timm's
    LayerScale2d: `x * self.gamma.view(1, -1, 1, 1)`): not computed from the input."""
    if not isinstance(a, fx.Node) or a.op not in ("get_attr", "call_method", "call_function"):
        return False
    seen, todo = set(), [a]
    while todo:  # nothing it is made of reads the input
        u = todo.pop()
        if u.op == "placeholder":
            return False
        if u not in seen:
            seen.add(u)
            todo.extend(v for v in u.all_input_nodes)
    m, mx = a.meta.get("tensor_meta"), x.meta.get("tensor_meta")
    if m is None or mx is None or not hasattr(m, "shape") or len(mx.shape) != 4:
        return False
    shape = tuple(int(v) for v in m.shape)
    return shape in ((1, int(mx.shape[1]), 1, 1), (int(mx.shape[1]), 1, 1))


def _bounds(args: tuple, kw: dict) -> list:
    """The (min, max) of a clamp, given by position or by name: [0, 6] is ReLU6."""
    pos = list(args[1:3]) + [None] * (3 - len(args[:3]))
    return [kw.get("min", pos[0]), kw.get("max", pos[1])]


class _MeasuringShapeProp(ShapeProp):
    """ShapeProp that also measures each node's Mult-Adds with FlopCounterMode (FLOPs / 2):
    what an operation the spec cannot express (attention's matrix products) keeps as its
    cost under --allow-unknown."""

    def run_node(self, n: fx.Node) -> Any:
        if n.op not in ("call_function", "call_method", "call_module"):
            return super().run_node(n)
        with FlopCounterMode(display=False) as counter:
            out = super().run_node(n)
        n.meta["mobilecost_macs"] = counter.get_total_flops() // 2
        return out


def _trace(module: nn.Module, source: str) -> fx.GraphModule:
    for m in module.modules():  # probed before tracing: fx patches module calls while it traces
        activation_of(m)
    try:
        tracer = Tracer()
        graph = tracer.trace(module)
        return fx.GraphModule(tracer.root, graph, type(module).__name__)
    except Exception as exc:
        raise ModelImportError(f"{source}: torch.fx cannot trace the module: {_one_line(exc)}"
                               f"{_user_frame(exc)}") from None


def graph_of_module(module: nn.Module, source: str, name: str, resolution: int) -> Graph:
    """The module as the importer's graph, traced at a resolution×resolution input."""
    module = module.eval()
    mods = list(module.modules())
    check_size(source, sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in mods),
               sum(next(m.children(), None) is None for m in mods))
    gm = _trace(module, source)
    check_size(source, 0, sum(n.op in ("call_module", "call_function", "call_method")
                              for n in gm.graph.nodes))
    mods = dict(gm.named_modules())
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ModelImportError(f"{source}: the module takes {len(placeholders)} inputs; "
                               f"mobilecost imports networks of one image input")
    convs = [mods[n.target] for n in gm.graph.nodes
             if n.op == "call_module" and isinstance(mods[n.target], nn.Conv2d)]
    if not convs:
        raise ModelImportError(f"{source}: the network has no convolution; mobilecost "
                               f"imports convolutional networks")
    in_channels = convs[0].in_channels
    x = torch.zeros(1, in_channels, resolution, resolution)
    try:
        with torch.no_grad():
            _MeasuringShapeProp(gm).propagate(x)
    except Exception as exc:
        raise ModelImportError(f"{source}: the module does not run on a 1×{in_channels}×"
                               f"{resolution}×{resolution} input: {_one_line(exc)}"
                               f"{_user_frame(exc)}") from None
    data: set[fx.Node] = set()
    nodes: list[Node] = []
    output = None
    fused, inside = mixed_convs(gm, mods)
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            data.add(n)
            continue
        if n in inside:
            continue
        if n in fused:
            x, convs, splits = fused[n]
            parts = []
            for c in convs:
                a = _conv_attrs(mods[c.target], c.target)
                if type(mods[c.target]).forward is not nn.Conv2d.forward:
                    _, a = run_time_pads("conv", a, c.args[0].meta.get("tensor_meta"),
                                          c.meta.get("tensor_meta"))
                parts.append(a)
            label = common_prefix([c.target for c in convs])
            nodes.append(Node(label, "mixconv", (x.name,), n.name, "split, Conv2d, cat",
                              {"splits": splits, "parts": parts}))
            data.add(n)
            continue
        if n.op == "output":
            flat: list[fx.Node] = []
            fx.node.map_arg(n.args, flat.append)
            outs = [a for a in flat if a in data]
            if len(outs) != 1:
                raise ModelImportError(f"{source}: the module returns {len(outs)} tensors; "
                                       f"mobilecost imports networks of one output")
            output = outs[0].name
            continue
        flat = []
        fx.node.map_arg((n.args, n.kwargs), flat.append)
        data_args = [a for a in flat if a in data]
        meta = n.meta.get("tensor_meta")
        if not data_args or meta is None or not hasattr(meta, "shape"):
            continue  # constants, shape queries (x.size(0)) and other non-tensor values
        data.add(n)
        if n.op == "call_module":
            m = mods[n.target]
            op, attrs = _module_node(n.target, m)
            label, src = n.target, type(m).__name__
            if op == "conv" and type(m).forward is not nn.Conv2d.forward:
                op, attrs = run_time_pads(op, attrs, data_args[0].meta.get("tensor_meta"), meta)
        else:
            op, attrs = _function_node(n, data_args, lambda a: _attr_of(gm, a))
            label = n.name
            src = getattr(n.target, "__name__", str(n.target))
            stack = n.meta.get("nn_module_stack")
            if stack:  # where it is: the module whose forward calls it, and that module's class
                path, cls = list(stack.values())[-1]
                label = f"{path}.{n.name}"
                src = f"{src} in {getattr(cls, '__name__', cls)}"
        if op == "unknown":
            shape = tuple(int(v) for v in meta.shape)
            attrs = {"out_shape": shape[1:] if len(shape) in (2, 4) else shape,
                     "macs": n.meta.get("mobilecost_macs", 0)}
        nodes.append(Node(label, op, tuple(a.name for a in data_args), n.name, src, attrs))
    clean = re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "imported"
    return Graph(source, clean, placeholders[0].name, output, in_channels, resolution, nodes)


__all__ = ["graph_of_module", "load_callable", "module_of"]
