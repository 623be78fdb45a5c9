#!/usr/bin/env bash
# Create .venv with what the main job (`make run`: the model matrix on CPU + OpenVINO) needs, and
# nothing else: no API SDKs, no real API peers, no browser. `scripts/setup_test.sh` adds those.
# Idempotent: a second run only checks a stamp. Pinned by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.setup-run-$(cat constraints.txt pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi
start=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" -U pip
# torch first, exactly pinned: an unpinned torch (asked for by any package) pulls a multi-GB CUDA build.
"${PIP[@]}" -c constraints.txt torch==2.13.0
"${PIP[@]}" -c constraints.txt -e ".[matrix]"
touch "$stamp"
echo "setup (model matrix): $(( $(date +%s) - start )) s" >&2
