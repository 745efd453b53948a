"""The same grid timed by two runtimes, side by side: two `sweep --measure --time-share` CSVs
(torch, onnxruntime) joined on (alpha_exact, resolution) into one Markdown table with the
latency ratio and each runtime's share of time in depthwise and 1×1 layers.

    python benchmarks/compare_runtimes.py torch.csv ort.csv > runtimes_mobilenet_v1.md
"""

from __future__ import annotations

import sys

import pandas as pd


def main() -> None:
    a, b = (pd.read_csv(p) for p in sys.argv[1:3])
    key = ["alpha_exact", "resolution"]
    df = a.merge(b, on=key, suffixes=("_torch", "_ort"))
    for side in ("torch", "ort"):
        runtime = df[f"runtime_{side}"].unique().tolist()
        assert runtime == [{"torch": "torch", "ort": "onnxruntime"}[side]], runtime
    print("### mobilenet_v1 timed by torch and by ONNX Runtime, side by side\n")
    print("| α | res | M Mult-Adds | torch ms | ORT ms | torch / ORT | time DW torch | ORT "
          "| time 1×1 torch | ORT | Mult-Adds DW | 1×1 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _, r in df.iterrows():
        print(f"| {r['alpha_exact']} | {r['resolution']} | {r['macs_torch'] / 1e6:.2f} "
              f"| {r['latency_ms_torch']:.3f} | {r['latency_ms_ort']:.3f} "
              f"| {r['latency_ms_torch'] / r['latency_ms_ort']:.2f} "
              f"| {r['time_share_depthwise_torch']:.1%} | {r['time_share_depthwise_ort']:.1%} "
              f"| {r['time_share_pointwise_torch']:.1%} | {r['time_share_pointwise_ort']:.1%} "
              f"| {r['macs_share_depthwise_torch']:.1%} | {r['macs_share_pointwise_torch']:.1%} |")
    ratio = df["latency_ms_torch"] / df["latency_ms_ort"]
    first = a.iloc[0]
    print(f"\n- torch / ORT latency: median {ratio.median():.2f}, range {ratio.min():.2f}–"
          f"{ratio.max():.2f} over {len(df)} configurations.")
    print(f"- {first['device_name']}, {first['threads']:.0f} thread(s), fp32, batch 1; torch "
          f"{first['torch_version']}, ONNX Runtime {b.iloc[0]['runtime_version']} "
          f"({b.iloc[0]['graph_optimization']}); latency_ms: the lowest of "
          f"{int(first['rounds'])} round medians.")
    noisy = int(df["noisy_torch"].sum() + df["noisy_ort"].sum())
    if noisy:
        print(f"- {noisy} of {2 * len(df)} timings flagged noisy (the machine was shared).")


if __name__ == "__main__":
    main()
