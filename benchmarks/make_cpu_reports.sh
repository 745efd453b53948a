#!/usr/bin/env bash
# Regenerate every CPU report under reports/cpu/ with the tool itself, on a quiet machine:
# the measured 16-configuration sweep (twice, independently, for repeatability), where the time
# goes, the builder benchmark, and the latency model's validation. From the repository root:
#   PYTHON=.venv/bin/python bash benchmarks/make_cpu_reports.sh
set -euo pipefail
PY=${PYTHON:-python}
MC="$PY -m mobilecost"
OUT=reports/cpu
CACHE=$(mktemp -d)
mkdir -p "$OUT"
lscpu > "$OUT/lscpu.txt"
$PY -c "import torch, platform; print('torch', torch.__version__, '| python', platform.python_version())" > "$OUT/versions.txt"

# 1. The measured grid: 1 thread, batch 1, fp32; 5 interleaved rounds, latency_ms = lowest round median.
MOBILECOST_CACHE_DIR=$CACHE/a $MC sweep --measure --rounds 5 --threads 1 --time-share --fresh \
  --plot --output-dir "$OUT" --format markdown > /dev/null
# ... and an independent repeat, to see how far two measurements of the same grid differ.
MOBILECOST_CACHE_DIR=$CACHE/b $MC sweep --measure --rounds 5 --threads 1 --fresh \
  --format csv > "$OUT/sweep_mobilenet_v1_repeat.csv"

# 2. Where the time goes at 1.0-224, per kind and per layer.
$MC profile mobilenet_v1 --alpha 1 --res 224 --threads 1 --passes 30 -f markdown > "$OUT/profile_mobilenet_v1_1_224.md"
$MC profile mobilenet_v1 --alpha 1 --res 224 --threads 1 --passes 30 --per-layer -f csv > "$OUT/profile_mobilenet_v1_1_224_per_layer.csv"

# 3. The spec-built network against a hand-written one, same settings.
$PY benchmarks/bench_torch_build.py --alpha 1 --res 224 --threads 1 --rounds 7 > "$OUT/bench_torch_build.txt"

# 4. The latency model: calibrate on 6 of the 16, predict the other 10; leave-one-out; the repeat.
$PY benchmarks/bench_latency_model.py "$OUT/sweep_mobilenet_v1.csv" --repeat "$OUT/sweep_mobilenet_v1_repeat.csv" \
  --calibrate-on 6 --plots "$OUT" > "$OUT/bench_latency_model.txt"
rm -rf "$CACHE"
