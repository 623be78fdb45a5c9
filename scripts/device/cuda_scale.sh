#!/usr/bin/env bash
# On a machine with a CUDA GPU: the tiny registry on cpu + cuda, then the real-size benchmark models
# on cuda (fp32 + fp16/bf16 variants). Commits nothing; copies the results files under results/.
set -euo pipefail; cd "$(dirname "$0")/../.."; ./scripts/setup.sh
py=.venv/bin/python; out=${OUT:-test_results}/cuda; tag=$(hostname -s)-$(date +%Y%m%d)
$py -m ipfs_accelerate.cli hardware
$py -m ipfs_accelerate.cli run --type model --hardware cpu cuda --workers "${WORKERS:-8}" --output-dir "$out/tiny" || status=$?
$py -m ipfs_accelerate.cli run --type model --models bert gpt2 t5 vit whisper llama --scale full --benchmark --hardware cuda --workers 1 --timeout 1800 --output-dir "$out/full" || status=$?
mkdir -p results; cp "$(ls -td "$out"/tiny/*/ | head -1)results.json" "results/cuda-$tag.json"
full=$(ls -td "$out"/full/*/ | head -1); cp "${full}results.json" "results/cuda-full-$tag.json"
$py -m ipfs_accelerate.results.bench_report "${full}results.json" --out "results/cuda-full-$tag"
exit "${status:-0}"
