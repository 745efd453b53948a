#!/usr/bin/env bash
# Regenerate reports/cpu/torch_* with the tool itself: profile at 1.0-224, the 16-configuration
# grid with time shares and plots, and the builder benchmark. Run from the repository root:
#   PYTHON=/path/to/python benchmarks/make_cpu_torch_reports.sh
set -euo pipefail
PY=${PYTHON:-python}
OUT=reports/cpu
export MOBILECOST_CACHE_DIR=${MOBILECOST_CACHE_DIR:-$(mktemp -d)}
mkdir -p "$OUT"
lscpu > "$OUT/lscpu.txt"
for t in 1 2; do
  $PY -m mobilecost profile mobilenet_v1 --alpha 1 --res 224 --threads $t --passes 30 -f csv \
    > "$OUT/torch_profile_mobilenet_v1_1_224_${t}thread.csv"
  $PY -m mobilecost profile mobilenet_v1 --alpha 1 --res 224 --threads $t --passes 30 -f markdown \
    > "$OUT/torch_profile_mobilenet_v1_1_224_${t}thread.md"
done
$PY -m mobilecost profile mobilenet_v1 --alpha 1 --res 224 --threads 1 --passes 30 --per-layer \
  -f csv > "$OUT/torch_profile_mobilenet_v1_1_224_1thread_per_layer.csv"
$PY -m mobilecost measure mobilenet_v1 --alpha 1,0.75,0.5,0.25 --res 224,192,160,128 --threads 1 \
  --min-time 2 --max-time 6 --time-share --fresh --plot-dir "$OUT" \
  -o "$OUT/torch_measure_mobilenet_v1_grid_1thread.csv" -f markdown \
  > "$OUT/torch_measure_mobilenet_v1_grid_1thread.md"
for t in 1 2; do
  $PY benchmarks/bench_torch_build.py --alpha 1 --res 224 --threads $t --rounds 7 \
    > "$OUT/bench_torch_build_1_224_${t}thread.txt"
done
