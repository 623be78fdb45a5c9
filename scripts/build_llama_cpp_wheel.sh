#!/usr/bin/env bash
# Build (once) and install the llama-cpp-python[server] wheel used by the real-peer test tier.
#
# PyPI ships llama-cpp-python as source only, and compiling it costs ~9-15 minutes on 2 cores.
# The wheel is built into a cache directory outside the repository, so CI (which caches that
# directory) and later runs only pay the ~7 s install. The build is niced and, by default,
# single-job so that it does not starve other work on a shared 2-core machine.
#
# Environment:
#   IPFS_ACCEL_WHEEL_CACHE   wheel cache dir   (default: $HOME/.cache/ipfs-accelerate/wheels)
#   LLAMA_CPP_VERSION        version to build  (default: 0.3.36)
#   LLAMA_CPP_BUILD_JOBS     parallel compile jobs (default: 1)
#   PYTHON                   interpreter of the target venv (default: .venv/bin/python)
#   BUILD_ONLY=1             build/cache the wheel but do not install it
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
CACHE="${IPFS_ACCEL_WHEEL_CACHE:-$HOME/.cache/ipfs-accelerate/wheels}"
JOBS="${LLAMA_CPP_BUILD_JOBS:-1}"
mkdir -p "$CACHE"

# llama-cpp-python loads its C library through ctypes, so the wheel is tagged py3-none-<platform>:
# one cached wheel per version and platform (GGML_NATIVE=OFF keeps it portable across x86-64).
PLAT="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')"
shopt -s nullglob
cached=("$CACHE"/llama_cpp_python-"$VERSION"-*-"$PLAT".whl)
shopt -u nullglob

if [ "${#cached[@]}" -eq 0 ]; then
  echo "build_llama_cpp_wheel: no cached wheel for $VERSION/$PLAT in $CACHE; compiling (slow)" >&2
  start=$(date +%s)
  # LLAVA (multimodal) and native-CPU tuning are off: smaller, faster, portable build.
  CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF}" \
  CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
    nice -n 19 "$PYTHON" -m pip wheel --no-deps --no-cache-dir \
      -w "$CACHE" "llama-cpp-python==$VERSION"
  echo "build_llama_cpp_wheel: built in $(( $(date +%s) - start )) s" >&2
else
  echo "build_llama_cpp_wheel: reusing ${cached[0]}" >&2
fi

if [ "${BUILD_ONLY:-0}" != "1" ]; then
  # --only-binary forbids a silent recompile; constraints keep numpy & co. at the project pins.
  "$PYTHON" -m pip install --find-links "$CACHE" --only-binary llama-cpp-python \
    -c constraints.txt "llama-cpp-python[server]==$VERSION"
fi
