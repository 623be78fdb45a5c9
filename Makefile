# The README's two front-door commands are `make run` and `make test`; both set up .venv first.
PY := .venv/bin/python
OUT ?= test_results
WORKERS ?= 2

.PHONY: setup setup-test run test lint generate-check bench bench-api-deadline properties-long mutation setup-ray test-ray bench-scale sweep observed-from-run

## What the main job needs (model matrix, cache, reports): no API SDKs, peers or browser
setup:
	./scripts/setup.sh

## Everything the tests need on top: dev tools, API SDKs and real peers, chromium, npm IPFS peers
setup-test:
	./scripts/setup_test.sh

## Main job: the whole model registry on CPU + OpenVINO -> $(OUT)/<run-id>/{results.json,report.md,junit.xml}
run: setup
	$(PY) -m ipfs_accelerate.cli run --type model --hardware cpu openvino --workers $(WORKERS) --output-dir $(OUT)

## Every test: lint, generated files in sync, framework tests, then via the runner the curated model entries
## (hand-tuned, with overrides), the diffusion pipelines and every API. The derived types are the main job's
## (`make run`): at ~20 tests per type they take ~1 h on 2 cores, past CI's budget.
test: setup-test lint generate-check
	$(PY) -m pytest tests -q -n $(WORKERS) -p no:cacheprovider
	$(PY) -m ipfs_accelerate.cli run --type all --registry curated --hardware cpu openvino --workers $(WORKERS) --output-dir $(OUT)

lint: setup-test
	.venv/bin/ruff check src tests test bench

## Generated tests and the status file must match the registry (writes nothing; exit 1 on drift)
generate-check: setup-test
	$(PY) -m ipfs_accelerate.cli generate --type all --check
	$(PY) -m ipfs_accelerate.registry.derive --check

bench: setup-test
	$(PY) bench/bench_matrix.py
	$(PY) bench/bench_parallel.py
	$(PY) bench/bench_generate.py
	$(PY) bench/bench_api_client.py
	$(PY) bench/bench_api_suite.py

## API deadlines against trickling / stalling servers: seconds to the typed error per provider
bench-api-deadline: setup-test
	nice $(PY) bench/bench_api_deadline.py --rounds 3

## The property-based tests with the long hypothesis profile (CI runs a fixed, derandomized one)
properties-long: setup-test
	HYPOTHESIS_PROFILE=long $(PY) -m pytest tests/api/core/test_properties.py -q -p no:cacheprovider

## Ray cluster tier: a real 2-node Ray cluster on loopback (~2.5 min). Ray is the [ray] extra:
## installed here only, so `make run` and `make test` never pay for it. No -n: one cluster per process.
setup-ray: setup-test
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[ray]"

test-ray: setup-ray
	RAY_TESTS=1 $(PY) -m pytest tests/test_ray.py -q -p no:cacheprovider

## Real-size models (--scale full) on CPU + OpenVINO f32/bf16/int8/int4: takes ~40 min on 2 cores
bench-scale: setup-test
	nice $(PY) bench/bench_scale.py --out $(OUT)/bench-scale

## Measure every registry type in one warm process (CPU, then OpenVINO) and record observed reasons
sweep: setup-test
	$(PY) -m ipfs_accelerate.harness.sweep --first-passing --max-heads 3 --write --expected-dir test/expected_results
	$(PY) -m ipfs_accelerate.harness.sweep --hardware openvino --write

## Mutation testing of the verdict modules (mutmut 3.8.1) -> docs/mutation.md; exit 1 if a module scores below 90 %
mutation: setup-test
	$(PY) scripts/mutation.py --jobs 2

## After a full matrix run: its failing (type, head, backend) cases become observed strict xfails
## (RUN=test_results/<run-id>); native crashes and timeouts are listed, not declared
observed-from-run: setup-test
	$(PY) -m ipfs_accelerate.harness.sweep --from-results $(RUN) --write
	$(PY) -m ipfs_accelerate.cli generate --type all --force
