#!/usr/bin/env bash
# The MobileNet v1 grid timed by torch and by ONNX Runtime in one run, side by side, with
# each runtime's time shares and plots (ORT's in reports/cpu/ort/). From the repository root:
#   PYTHON=.venv/bin/python bash benchmarks/make_runtime_reports.sh
set -euo pipefail
PY=${PYTHON:-python}
MC="$PY -m mobilecost"
OUT=reports/cpu
CACHE=$(mktemp -d)
ROUNDS=${ROUNDS:-3}
mkdir -p "$OUT/ort"
MOBILECOST_CACHE_DIR=$CACHE $MC sweep --measure --rounds "$ROUNDS" --threads 1 --time-share \
  --min-time 0.5 --format csv > "$CACHE/torch.csv"
MOBILECOST_CACHE_DIR=$CACHE $MC sweep --measure --runtime onnxruntime --rounds "$ROUNDS" \
  --threads 1 --time-share --min-time 0.5 --plot --output-dir "$OUT/ort" --format markdown > /dev/null
# the analytic plots are the same as reports/'s; keep the measured ones
rm -f "$OUT"/ort/accuracy_* "$OUT"/ort/macs_heatmap_*
$PY benchmarks/compare_runtimes.py "$CACHE/torch.csv" "$OUT/ort/sweep_mobilenet_v1.csv" \
  > "$OUT/runtimes_mobilenet_v1.md"
$MC profile mobilenet_v1 --alpha 1 --res 224 --threads 1 --passes 30 --runtime onnxruntime \
  -f markdown > "$OUT/ort/profile_mobilenet_v1_1_224.md"
rm -rf "$CACHE"
