#!/usr/bin/env bash
# The checks that need a CUDA GPU, as one script: the CUDA tests, then the GPU benchmark cases,
# then the whole suite with a GPU present (device: auto now means CUDA). Results go to $OUT.
#   OUT=/tmp/gpu bash scripts/gpu_check.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-/tmp/lrtrain-gpu}
mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
} 2>&1 | tee "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -m cuda tests 2>&1 | tee "$OUT/cuda_tests.log"
timeout 240 python3 -m benchmarks --only cuda --output "$OUT/results_gpu.json" 2>&1 \
  | tee "$OUT/bench_gpu.log"
timeout 180 python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tail -40 | tee "$OUT/suite.log"
