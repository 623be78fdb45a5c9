#!/usr/bin/env bash
# Install the real third-party peers for the `peer` test tier (tests/api/peers).
#
#   moto[s3] + boto3 + gguf      -> the shared venv (small, keep the project pins)
#   kserve                        -> its OWN venv: kserve 0.21 pins psutil<6, which would downgrade
#                                    the psutil 7 the project venv uses; it also weighs ~500 MB.
#                                    The kserve launcher runs a standalone script with that python.
#   llama-cpp-python[server]      -> scripts/build_llama_cpp_wheel.sh (cached wheel, slow first time)
#
# Environment:
#   PYTHON                   project venv interpreter        (default: .venv/bin/python)
#   IPFS_ACCEL_KSERVE_VENV   where the kserve venv lives     (default: $HOME/.cache/ipfs-accelerate/kserve-venv)
#   SKIP_LLAMA_CPP=1         do not build/install llama-cpp-python
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
KVENV="${IPFS_ACCEL_KSERVE_VENV:-$HOME/.cache/ipfs-accelerate/kserve-venv}"

"$PYTHON" -m pip install -q -c constraints.txt 'moto[s3]>=5.0' 'boto3>=1.34' 'gguf>=0.10' flask flask-cors

if [ ! -x "$KVENV/bin/python" ] || ! "$KVENV/bin/python" -c 'import kserve' 2>/dev/null; then
  BASE="$("$PYTHON" -c 'import sys; print(sys.base_prefix)')/bin/python3"
  "$BASE" -m venv "$KVENV"
  "$KVENV/bin/python" -m pip install -q -c constraints.txt 'kserve==0.21.0'
fi

if [ "${SKIP_LLAMA_CPP:-0}" != "1" ]; then
  scripts/build_llama_cpp_wheel.sh
fi
