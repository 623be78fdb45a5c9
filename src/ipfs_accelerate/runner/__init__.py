"""The unified test runner (`ipfs-accelerate run`, `test/run_unified_tests.py`).

pytest is the engine: the generated files are ordinary pytest modules and run under plain
`pytest` too. The runner adds what a long matrix of heavy, crash-prone cases needs:

* **long-lived workers** (`worker.py`): each is one pytest session that imports torch,
  transformers and OpenVINO once, pins 1 thread per runtime, and runs the node ids it is sent —
  one test file per batch, so a model's cases share one build and one import of its modelling
  code. Its first collection is the run's test list.
* **a watching parent** (`pool.py`): never imports torch; enforces the per-test timeout, the
  per-worker memory cap and crash detection from outside, records `timeout`/`crashed` with the
  log tail, replaces the worker and continues; recycles workers to bound leaked memory.
* **results as they happen** (`core.py`, `..results.store`): one fsynced JSON line per test,
  reports rewritten atomically, `--resume` and `--shard k/N` on top.

Why not pytest-xdist: its workers are also long-lived pytest sessions, but a crashed worker is
reported as a generic failure, there is no per-test timeout that survives a hang in C code
(pytest-timeout's thread method kills the whole worker, indistinguishable from a crash), no
memory cap, no recycling, and no (model, hardware) affinity without `xdist_group` marks. The
generated files still work with `pytest -n` for anyone who prefers it.
"""
