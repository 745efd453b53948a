"""Import coverage of the real mobile networks: timm's and geffnet's, by torch.fx and ONNX.

Each network is built with `pretrained=False`, counted by torch's FlopCounterMode (FLOPs / 2
= Mult-Adds) and `sum(p.numel())` (torchvision's parameter convention: weights, biases,
batchnorm's γ and β), then imported three ways:

* fx:      `mobilecost.torch.fx` (torch.fx.symbolic_trace of the module);
* onnx:    a file from `torch.onnx.export(..., dynamo=False)` (the TorchScript exporter);
* dynamo:  a file from `torch.onnx.export(..., dynamo=True)`.

A route is `exact` when the imported spec's Mult-Adds and its parameters under the
torchvision convention equal the network's; otherwise the table gives the difference or the
one-line refusal. `--allow-unknown` is tried on every refusal (it must never end in a
traceback). Before export, every batchnorm's statistics and affine parameters and every bias
are set to nonzero values from a fixed seed, as a trained network's are (an untrained
network's zero biases are constants an exporter may drop; the counts do not depend on the
values).

timm imports torchvision at import time; torchvision's wheels are CUDA builds that fail beside
the CPU torch, so a stand-in package is written by `--write-stub DIR` and put on PYTHONPATH.
It is never part of mobilecost, nor needed by its tests. To run:

    python3 -m venv V && V/bin/pip install torch==2.13.0
    V/bin/pip install --no-deps timm==1.0.31 geffnet==1.0.2
    V/bin/pip install huggingface_hub safetensors pyyaml pillow onnx onnxscript onnxruntime
    V/bin/pip install --no-deps -e .
    V/bin/python benchmarks/import_coverage.py --write-stub STUBS
    PYTHONPATH=STUBS V/bin/python benchmarks/import_coverage.py --onnx-dir ONNX --out cov.md

(`--only NAME,...` runs some networks; `--routes fx,onnx` some routes; ONNX files already in
`--onnx-dir` are reused; `--untrained` keeps the values as built, zero biases the Dynamo
exporter drops, which its metadata names.)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings
from pathlib import Path

STUB = '''"""A stand-in for torchvision, enough for `import timm` (nothing in it runs)."""
import enum
import sys
import types

__version__ = "0.0+stub"
InterpolationMode = enum.Enum("InterpolationMode", [(n, n.lower()) for n in (
    "NEAREST", "NEAREST_EXACT", "BILINEAR", "BICUBIC", "BOX", "HAMMING", "LANCZOS")])


class _Meta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Stub


class _Stub(metaclass=_Meta):
    def __init__(self, *a, **k):
        raise RuntimeError("torchvision stand-in: not available")


def _getattr(attr):
    if attr.startswith("__"):
        raise AttributeError(attr)
    return InterpolationMode if attr == "InterpolationMode" else _Stub


for _n in ("transforms", "transforms.functional", "transforms.v2", "ops", "ops.misc",
           "datasets", "utils", "models", "models.feature_extraction", "io"):
    _m = types.ModuleType(f"torchvision.{_n}")
    _m.__getattr__, _m.__path__ = _getattr, []
    sys.modules[_m.__name__] = _m
    _parent, _, _leaf = _m.__name__.rpartition(".")
    setattr(sys.modules[_parent], _leaf, _m)
'''

#: (zoo, model name): timm's mobile networks and geffnet's.
NETWORKS = [("timm", n) for n in (
    "mobilenetv1_100", "mobilenetv2_100", "mobilenetv2_050", "mobilenetv3_large_100",
    "mobilenetv3_large_075", "mobilenetv3_small_100", "tf_mobilenetv3_large_100",
    "tf_mobilenetv3_small_100", "tf_mobilenetv3_large_minimal_100", "mobilenetv4_conv_small",
    "mobilenetv4_conv_medium", "mobilenetv4_conv_large", "mobilenetv4_hybrid_medium",
    "mobilenetv4_hybrid_large", "mnasnet_100", "semnasnet_100", "efficientnet_lite0",
    "tf_efficientnet_lite0", "lcnet_100", "fbnetc_100", "ghostnet_100", "mixnet_s",
    "tinynet_a")] + [("geffnet", n) for n in (
    "mobilenetv2_100", "mobilenetv3_large_100", "mobilenetv3_small_100", "mnasnet_100",
    "semnasnet_100", "efficientnet_lite0", "fbnetc_100", "spnasnet_100", "mixnet_s",
    "tf_mobilenetv3_large_100")]

ROUTES = ("fx", "onnx", "dynamo")

#: The networks with a built-in spec: (zoo/name, spec, α) for `crosscheck SPEC --alpha A
#: --against` (the command's library call), layer by layer against the fx import.
AGAINST = [
    ("timm/mobilenetv1_100", "mobilenet_v1", "1"), ("timm/mobilenetv2_100", "mobilenet_v2", "1"),
    ("timm/mobilenetv2_050", "mobilenet_v2", "0.5"),
    ("timm/mobilenetv3_large_100", "mobilenet_v3_large", "1"),
    ("timm/mobilenetv3_large_075", "mobilenet_v3_large", "0.75"),
    ("timm/mobilenetv3_small_100", "mobilenet_v3_small", "1"),
    ("timm/tf_mobilenetv3_large_minimal_100", "mobilenet_v3_large_minimalistic", "1"),
    ("timm/mobilenetv4_conv_small", "mobilenetv4_conv_small", "1"),
    ("timm/mobilenetv4_conv_medium", "mobilenetv4_conv_medium", "1"),
    ("timm/mobilenetv4_conv_large", "mobilenetv4_conv_large", "1"),
    ("timm/mobilenetv4_hybrid_medium", "mobilenetv4_hybrid_medium", "1"),
    ("timm/mobilenetv4_hybrid_large", "mobilenetv4_hybrid_large", "1"),
    ("timm/mnasnet_100", "mnasnet_b1", "1"), ("geffnet/mnasnet_100", "mnasnet_b1", "1"),
    ("geffnet/mobilenetv2_100", "mobilenet_v2", "1"),
    ("geffnet/mobilenetv3_large_100", "mobilenet_v3_large", "1"),
    ("geffnet/mobilenetv3_small_100", "mobilenet_v3_small", "1"),
]


def against(m, label: str, spec_name: str, alpha: str) -> dict:
    """`crosscheck SPEC --alpha A --res 224 --against` the network: agrees, or the first
    disagreeing layer."""
    from fractions import Fraction

    from mobilecost.errors import MobilecostError
    from mobilecost.importing.write import import_graph
    from mobilecost.lang.load import load_spec
    from mobilecost.reports.importing import against_report, disagreement_text
    from mobilecost.torch.fx import graph_of_module

    try:
        imp = import_graph(graph_of_module(m, label, label.replace("/", "_"), RES),
                           allow_unknown=True)
        _, cmp = against_report(load_spec(spec_name), Fraction(alpha), RES, label, imp)
    except MobilecostError as exc:
        return {"result": "refused", "why": str(exc)}
    return ({"result": "agrees", "why": ""} if cmp.agree
            else {"result": "differs", "why": disagreement_text(cmp)})
RES = 224


UNTRAINED = False  # --untrained: the values as built (zero biases, identity batchnorm)


def build(zoo: str, name: str):
    import torch

    if zoo == "timm":
        import timm

        m = timm.create_model(name, pretrained=False)
    else:
        import geffnet

        m = geffnet.create_model(name, pretrained=False)
        m._mobilecost_name = name
    m.eval()
    if UNTRAINED:
        return m
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a trained network's values: no zero bias, no identity batchnorm
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                if mod.affine:
                    mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
            elif getattr(mod, "bias", None) is not None and isinstance(mod.bias, torch.nn.Parameter):
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
    return m


def rebuild(m):
    """The same geffnet network built again (under the current geffnet config), its values
    copied."""
    fresh = build("geffnet", m._mobilecost_name)
    fresh.load_state_dict(m.state_dict())
    return fresh.eval()


def reference(m) -> tuple[int, int]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(torch.zeros(1, 3, RES, RES))
    return fc.get_total_flops() // 2, sum(p.numel() for p in m.parameters())


def export(m, path: Path, dynamo: bool) -> None:
    import torch

    if path.exists():
        return
    if not dynamo and type(m).__module__.startswith("geffnet"):
        # geffnet's memory-efficient activations are autograd Functions the TorchScript
        # exporter cannot write; its documented export switch builds plain ones
        import geffnet

        geffnet.config.set_exportable(True)
        try:
            m = rebuild(m)
        finally:
            geffnet.config.set_exportable(False)
    x = torch.zeros(1, 3, RES, RES)
    tmp = path.with_suffix(".tmp.onnx")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(m, (x,), str(tmp), dynamo=True, external_data=False)
        else:
            torch.onnx.export(m, (x,), str(tmp), dynamo=False, opset_version=18)
    tmp.rename(path)


def graph(route: str, m, label: str, onnx_dir: Path):
    if route == "fx":
        from mobilecost.torch.fx import graph_of_module

        return graph_of_module(m, label, label.replace("/", "_"), RES)
    from mobilecost.importing.onnx import load_graph

    path = onnx_dir / f"{label.replace('/', '_')}.{route}.onnx"
    export(m, path, route == "dynamo")
    return load_graph(path)


def attempt(route: str, m, label: str, onnx_dir: Path, want: tuple[int, int]) -> dict:
    """One route: exact, off (the differences) or refused (the message); and what
    --allow-unknown does with a refusal."""
    from mobilecost.engine.cost import Counting, layer_cost
    from mobilecost.errors import MobilecostError
    from mobilecost.importing.write import import_graph

    t0 = time.perf_counter()
    row = {"route": route}
    try:
        g = graph(route, m, label, onnx_dir)
    except MobilecostError as exc:
        return row | {"result": "refused", "why": str(exc), "allow": "—"}
    except Exception as exc:  # noqa: BLE001 - the export itself (not mobilecost) failed
        return row | {"result": "no file", "why": f"{type(exc).__name__}: {str(exc)[:150]}",
                      "allow": "—"}
    try:
        imp = import_graph(g)
        params = sum(layer_cost(ly, Counting(True, True)).params for ly in imp.layers)
        macs = imp.total_macs
        if (macs, params) == want:
            row |= {"result": "exact", "why": "", "allow": "—"}
        else:
            row |= {"result": "off", "allow": "—",
                    "why": f"Mult-Adds {macs - want[0]:+,}, params {params - want[1]:+,}"}
    except MobilecostError as exc:
        row |= {"result": "refused", "why": str(exc)}
        try:
            imp = import_graph(g, allow_unknown=True)
            share = imp.unknown_macs / imp.total_macs if imp.total_macs else 0
            row["allow"] = (f"{len(imp.unknown)} unknown, {share:.1%} of Mult-Adds; "
                            f"total {imp.total_macs - want[0]:+,}")
        except MobilecostError as exc2:
            row["allow"] = f"refused: {str(exc2)[:120]}"
        except Exception as exc2:  # noqa: BLE001 - a traceback is what this looks for
            row["allow"] = f"TRACEBACK {type(exc2).__name__}: {exc2}"
    except Exception as exc:  # noqa: BLE001 - a traceback is what this looks for
        row |= {"result": "TRACEBACK", "why": f"{type(exc).__name__}: {exc}", "allow": "—"}
    row["seconds"] = time.perf_counter() - t0
    return row


def markdown(rows: list[dict], versions: str) -> str:
    lines = [f"Networks at {RES}×{RES}, {versions}.", "",
             "| network | Mult-Adds | params | route | result | why not / --allow-unknown |",
             "|---|---:|---:|---|---|---|"]
    for r in rows:
        why = r["why"].replace("|", "/")
        if len(why) > 220:
            why = why[:217] + "..."
        extra = f" (--allow-unknown: {r['allow']})" if r["allow"] not in ("—", "") else ""
        lines.append(f"| {r['network']} | {r['macs']:,} | {r['params']:,} | {r['route']} | "
                     f"{r['result']} | {why}{extra} |")
    lines.append("")
    for route in sorted({r["route"] for r in rows}, key=ROUTES.index):
        rs = [r for r in rows if r["route"] == route]
        ok = sum(r["result"] == "exact" for r in rs)
        lines.append(f"- {route}: {ok} of {len(rs)} exact ({ok / len(rs):.0%})")
    return "\n".join(lines) + "\n"


def against_markdown(checks: list[dict]) -> str:
    if not checks:
        return ""
    lines = ["", (f"`crosscheck SPEC --alpha A --res {RES} --against` each network with a "
                  "built-in spec (its fx import, unknown operations as rows of their own):"), "",
             "| network | spec | result | first disagreement |", "|---|---|---|---|"]
    for c in checks:
        why = c["why"].replace("|", "/")
        lines.append(f"| {c['network']} | {c['spec']} | {c['result']} | "
                     f"{why[:217] + '...' if len(why) > 220 else why} |")
    ok = sum(c["result"] == "agrees" for c in checks)
    lines += ["", f"- {ok} of {len(checks)} agree layer by layer"]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, help="write the Markdown table here (else stdout)")
    ap.add_argument("--onnx-dir", type=Path, default=Path("import_coverage_onnx"))
    ap.add_argument("--only", help="comma-separated zoo/name or name")
    ap.add_argument("--routes", default=",".join(ROUTES))
    ap.add_argument("--write-stub", type=Path, metavar="DIR",
                    help="write the torchvision stand-in package into DIR and stop")
    ap.add_argument("--untrained", action="store_true",
                    help="keep the values as built (zero biases, identity batchnorm), which the "
                         "Dynamo exporter drops; use another --onnx-dir")
    a = ap.parse_args()
    global UNTRAINED
    UNTRAINED = a.untrained
    if a.write_stub:
        (a.write_stub / "torchvision").mkdir(parents=True, exist_ok=True)
        (a.write_stub / "torchvision" / "__init__.py").write_text(STUB)
        print(f"wrote {a.write_stub / 'torchvision'}; put {a.write_stub} on PYTHONPATH")
        return 0
    import geffnet
    import onnx
    import timm
    import torch

    routes = [r for r in a.routes.split(",") if r]
    only = set(a.only.split(",")) if a.only else None
    a.onnx_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for zoo, name in NETWORKS:
        label = f"{zoo}/{name}"
        if only and label not in only and name not in only:
            continue
        m = build(zoo, name)
        want = reference(m)
        for route in routes:
            r = attempt(route, m, label, a.onnx_dir, want)
            rows.append(r | {"network": label, "macs": want[0], "params": want[1]})
            print(f"{label:40s} {route:7s} {r['result']:9s} {r['why'][:150]}", file=sys.stderr,
                  flush=True)
    checks = []
    for label, spec_name, alpha in AGAINST:
        if only and label not in only and label.split("/")[1] not in only:
            continue
        r = against(build(*label.split("/")), label, spec_name, alpha)
        checks.append(r | {"network": label, "spec": f"{spec_name} at α {alpha}"})
        print(f"{label:40s} against {spec_name} {alpha}: {r['result']} {r['why'][:150]}",
              file=sys.stderr, flush=True)
    versions = (f"timm {timm.__version__}, geffnet {getattr(geffnet, '__version__', '1.0.2')}, "
                f"torch {torch.__version__}, onnx {onnx.__version__}")
    text = markdown(rows, versions) + against_markdown(checks)
    if a.out:
        a.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
