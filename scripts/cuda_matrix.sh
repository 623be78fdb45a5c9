#!/usr/bin/env bash
# The model matrix on a CUDA machine, unchanged: same registry, same harness, cpu + cuda (+ openvino).
# On a GPU host PyPI's torch==2.13.0 is the CUDA build; nothing else differs from `make run`.
# Writes results/cuda-<host>-<date>.json (commit it: the compatibility matrix then shows CUDA rows).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
.venv/bin/python -m ipfs_accelerate.cli hardware
out=${OUT:-test_results}/cuda
.venv/bin/python -m ipfs_accelerate.cli run --type model --hardware cpu cuda openvino --workers "${WORKERS:-4}" --output-dir "$out" || status=$?
latest=$(ls -td "$out"/*/ | head -1)
mkdir -p results
cp "$latest/results.json" "results/cuda-$(hostname -s)-$(date +%Y%m%d).json"
exit "${status:-0}"
