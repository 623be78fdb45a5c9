"""A warm worker server: import torch/transformers once, fork ready workers in ~0.1 s.

    ipfs-accelerate run --warm 600 ...      # this run and any run in the next 600 s idle
    python -m ipfs_accelerate.runner.warm_server --socket PATH --preload torch,transformers --idle 600

Why: a worker spends ~5 s importing torch + transformers before its first test (measured on the
2-core box: torch 1.6-2.4 s, transformers' modelling core 2.5 s) — longer than half the tests of
the spec's model set take. That start-up is serial (no test can run before it), so it caps what a
second worker can gain, and a developer rerunning one model pays it every time. The server pays it
once; each worker is a fork of it (copy-on-write, `gc.freeze`d) that runs the usual worker loop.

Safety rules, because fork and threads do not mix:
* the server imports modules only — it never runs a torch op or sets thread pools, and it leaves
  OpenVINO to the workers (its native library starts a thread on import: ~0.3 s per worker);
  after its imports it checks it is single-threaded (/proc/self/task) and refuses to serve
  otherwise (the runner then spawns workers cold, as without --warm);
* one server per *key*: interpreter, environment, working directory, thread count, preload
  groups and the files of this package and of torch/transformers/openvino/pytest (mtime+size).
  Change any of them (an edited runner module, a pip upgrade, another env var) and a new server
  starts — a fork never runs stale code;
* a forked worker gets its own session (`setsid`, so the runner's process-group kill works) and
  dies when the runner dies (pidfd watch), like a cold worker with PR_SET_PDEATHSIG;
* the server exits after `idle` seconds without a worker alive or a request.

Protocol (`protocol.py`): one Unix-socket connection per worker. The client sends `Spawn` (the
worker's argv and cwd) plus three fds (command pipe, message pipe, log) via SCM_RIGHTS; the server
answers `Pid` and, when that worker exits, `Exited` (rc < 0: killed by signal -rc, like Popen).
Between runs the server keeps *spares*: forks that already collected the last run's tests (see
`warm_server._Server`), so the next run's workers skip pytest's collection too.

Modules: `warm_key` (which server), `warm_client` (the runner's side), `warm_server` (the server
process). This module is their front: what the runner and the tests use.
"""

from __future__ import annotations

from .warm_client import ForkedWorker, WarmClient, connect_or_start
from .warm_key import server_key, socket_dir
from .warm_server import collection_inputs, main, serve

__all__ = ["ForkedWorker", "WarmClient", "collection_inputs", "connect_or_start", "main", "serve", "server_key", "socket_dir"]

if __name__ == "__main__":
    raise SystemExit(main())
