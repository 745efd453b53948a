"""The report of `crosscheck`: the engine's counts reconciled with FlopCounterMode's, fvcore's and
torch's parameters, per layer kind or per layer."""

from __future__ import annotations

from collections import Counter

from ..lang.values import resolution_text
from ..torch.counters import CrossCheck, LayerCount
from .report import Column, Report, format_number


def reconcile_report(check: CrossCheck, per_layer: bool = False) -> Report:
    """The reconciliation table: per layer kind (or per layer), every count side by side."""
    groups: dict[str, list[LayerCount]] = {}
    for c in check.layers:
        key = str(c.index + 1) if per_layer else c.kind.value
        groups.setdefault(key, []).append(c)

    def row(label: str, kind: str, cs: list[LayerCount]) -> dict:
        other: Counter = Counter()
        for c in cs:
            other.update(c.fvcore_other)
        r = {"group": label, "kind": kind, "layers": len(cs),
             "engine_macs": sum(c.engine_macs for c in cs),
             "flop_counter_macs": sum(c.flop_counter_macs for c in cs),
             "fvcore_macs": sum(c.fvcore_macs for c in cs),
             "fvcore_batchnorm": other.pop("batch_norm", 0),
             "fvcore_other": sum(other.values()),
             "engine_params": sum(c.engine_params for c in cs),
             "torch_weight_params": sum(c.torch_weight_params for c in cs),
             "engine_params_all": sum(c.engine_params_all for c in cs),
             "torch_params": sum(c.torch_params for c in cs)}
        r["agree"] = "yes" if all(c.macs_agree and c.params_agree for c in cs) else "NO"
        return r

    rows = [row(k, cs[0].kind.value, cs) for k, cs in groups.items()]
    rows.append(row("total", "", list(check.layers)))
    cols = [Column("group", "Layer" if per_layer else "Kind", numeric=False)]
    if per_layer:
        cols.append(Column("kind", "Kind", numeric=False))
    cols += [Column("layers", "Layers"),
            Column("engine_macs", "Engine MACs"),
            Column("flop_counter_macs", "FlopCounterMode/2"),
            Column("fvcore_macs", "fvcore conv+linear"),
            Column("fvcore_batchnorm", "fvcore batchnorm"),
            Column("fvcore_other", "fvcore other"),
            Column("engine_params", "Engine params"),
            Column("torch_weight_params", "torch weights"),
            Column("engine_params_all", "Engine params +bias+BN"),
            Column("torch_params", "torch sum(numel)"),
            Column("agree", "Agree", numeric=False)]
    total = rows[-1]
    unsupported = ", ".join(f"{k} ×{v}" for k, v in sorted(check.fvcore_unsupported.items()))
    notes = [
        f"Mult-Adds of convolutions and linear layers: engine {total['engine_macs']:,}, "
        f"FlopCounterMode {check.flop_counter_total_flops:,} FLOPs = 2 × "
        f"{check.flop_counter_total_flops // 2:,}, fvcore {total['fvcore_macs']:,} "
        + ("— all three agree." if check.macs_agree else "— THEY DISAGREE."),
        f"fvcore's total {check.fvcore_total:,} is larger by {total['fvcore_batchnorm']:,} "
        f"for batchnorm (2 per output element: scale and shift; the engine and the paper "
        f"count 0, since batchnorm folds into the convolution at inference)"
        + (f" and {total['fvcore_other']:,} for other operators" if total["fvcore_other"] else "")
        + ".",
        "Pooling, residual adds and activations are 0 Mult-Adds for the engine and for "
        "FlopCounterMode" + (f"; fvcore could not count {unsupported} and counts them 0"
                             + (" (hardtanh_ is ReLU6)" if "hardtanh" in unsupported else "")
                             if unsupported else "") + "; fvcore skips relu by design.",
        "Parameters: the engine's default counts conv and FC weights only; with FC bias and "
        "batchnorm γ, β (`--biases --bn`) it equals torch's sum(p.numel()). BatchNorm running "
        "mean and variance are buffers, not parameters, in both.",
    ]
    title = (f"Reconciliation: {check.spec}, alpha {format_number(check.alpha)}, "
             f"resolution {resolution_text(check.resolution)}, batch 1")
    return Report(title, cols, rows, notes)
