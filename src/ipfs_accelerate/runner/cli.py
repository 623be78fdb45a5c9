"""`ipfs-accelerate run` and `test/run_unified_tests.py`: run the generated tests in parallel
long-lived pytest workers and write results.json, report.md and junit.xml.

--impl-type (the spec's "mock" and "real" are accepted aliases of "tiny" and "pretrained"):
  model tests  tiny       = real forward passes of tiny models built from the registry config on
                            seeded random weights (always offline; nothing is faked);
               pretrained = pretrained weights: the checkpoint `--model-id` or
                            registry/pretrained.toml names, if it resolves locally (installed
                            package folder, local path, or the Hugging Face cache); otherwise the
                            test is skipped with that reason.
  API tests    tiny       = the local protocol server that speaks the provider's wire format;
               pretrained = the provider's real endpoint, only when its key/URL environment
                            variable is set; otherwise skipped with that reason.
  all = both (the default). Results and node ids keep the tags "mock" / "real".

Exit codes: 0 all passed (skips/xfails allowed), 1 failures (incl. unexpected passes, crashes,
timeouts), 2 usage error, 3 nothing selected or every test skipped, 130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .core import Runner
from .impl import IMPL_CHOICES, IMPL_HELP
from .plan import RunOptions

EPILOG = """examples (from test/):
  python run_unified_tests.py                                   # everything
  python run_unified_tests.py --type model --hardware cpu openvino
  python run_unified_tests.py --type model --models bert t5 llama
  python run_unified_tests.py --type api --apis ollama openai_api
  python run_unified_tests.py --category vision --limit 10 --verbose
  python run_unified_tests.py --type model --models bert t5 gpt2 --benchmark
  python run_unified_tests.py --shard 2/4                       # one CI job of four
  python run_unified_tests.py --resume                          # finish the latest interrupted run
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n\n")[0]
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("paths", nargs="*", default=[], metavar="PATH",
                        help="run these test files/folders instead of the generated suite (any pytest file)")
    sel = parser.add_argument_group("selection")
    sel.add_argument("--type", choices=("model", "api", "all"), default="all", help="model tests, API tests, or both (default: all)")
    sel.add_argument("--models", nargs="+", default=[], metavar="MODEL", help="registry model names (unknown names: exit 2 with suggestions)")
    sel.add_argument("--apis", nargs="+", default=[], metavar="API", help="API backends, e.g. ollama openai_api")
    sel.add_argument("--category", default="all", metavar="CAT",
                     help="language, vision, audio, multimodal, specialized (model tests), api (API tests) or all")
    sel.add_argument("--registry", choices=("all", "curated", "derived"), default="all",
                     help="which registry entries: curated (the hand-tuned entries with their overrides), "
                          "derived (the types taken from transformers' Auto mappings), or all (default)")
    sel.add_argument("--limit", type=int, default=None, metavar="N", help="at most N models (and N APIs), in registry order")
    sel.add_argument("--hardware", nargs="+", default=["cpu", "cuda", "openvino"], metavar="HW",
                     help="hardware for model tests: cpu cuda openvino (default: all; unavailable ones are skipped with the reason)")
    sel.add_argument("--impl-type", choices=IMPL_CHOICES, default="all", help=f"{IMPL_HELP} (see above)")
    sel.add_argument("-k", dest="keyword", default=None, metavar="EXPR", help="pytest -k expression on test names")
    sel.add_argument("--shard", default=None, metavar="K/N", help="run shard K of N (files balanced by recorded durations)")
    sel.add_argument("--durations-from", type=Path, default=None, metavar="RESULTS_JSON",
                     help="results.json whose durations balance --shard (default: the newest run in --output-dir)")
    sel.add_argument("--test-dir", type=Path, default=None, help="folder holding skills/ and apis/ (default: . or ./test)")
    ex = parser.add_argument_group("execution")
    ex.add_argument("--workers", type=int, default=None, metavar="N", help="parallel worker processes (default: usable CPU cores)")
    ex.add_argument("--timeout", type=float, default=None, metavar="S",
                    help="per-test timeout in seconds (default 300; 1800 with --scale full, where one real-size "
                         "whisper benchmark takes ~7 min on 2 cores)")
    ex.add_argument("--max-memory", type=float, default=None, metavar="MB", dest="max_memory_mb",
                    help="per-worker RSS cap; a test above it is recorded crashed (default: 80%% of RAM / workers)")
    ex.add_argument("--recycle", type=int, default=50, metavar="N", dest="recycle_after",
                    help="replace a worker after N test files that ran something, or sooner when its RSS passes half of "
                    "--max-memory (at most 4 GB); its successor starts one file early (default 50)")
    ex.add_argument("--warm", type=float, nargs="?", const=600.0, default=0.0, metavar="S",
                    help="fork workers from a warm server that imported torch/transformers once; it stays S seconds "
                    "after the run (default 600) so the next run's workers start in ~0.1 s instead of ~5 s (Linux)")
    ex.add_argument("--no-cache", action="store_true", help="build every artifact afresh (no content-addressed cache)")
    ex.add_argument("--cache-max-gb", type=float, default=None, metavar="GB",
                    help="artifact cache size bound, least recently used evicted first (default 5)")
    ex.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="local: worker processes on this machine (default); ray: test files as tasks on a Ray cluster, "
                    "placed by the resources each hardware needs (needs the [ray] extra; see docs/cluster.md)")
    ex.add_argument("--address", default=None, metavar="ADDR",
                    help="--executor ray: the cluster's HOST:PORT (default: $RAY_ADDRESS, else a running local cluster; "
                    "'local' starts a private one)")
    ex.add_argument("--threads", type=int, default=1, metavar="N", help="torch/OpenVINO threads per worker (default 1)")
    ex.add_argument("--benchmark", action="store_true", help="more warm-up/repetitions, batch sizes 1/4/16, throughput; same report")
    ex.add_argument("--scale", choices=("tiny", "full"), default="tiny",  # seam(scale)
                    help="tiny seeded models (default) or the real reference size with seeded random weights "
                    "(bert-base, gpt2, t5-small, vit-base, whisper-tiny, llama 1B); skipped when it would not fit in memory")
    ex.add_argument("--resume", nargs="?", const="latest", default=None, metavar="RUN_ID",
                    help="continue a run (default: the newest in --output-dir), skipping every recorded test")
    ex.add_argument("--preload", default="auto", help=argparse.SUPPRESS)
    out = parser.add_argument_group("output")
    out.add_argument("--output-dir", type=Path, default=Path("test_results"), help="results root (default: ./test_results)")
    out.add_argument("--run-id", default=None, help="name of the run folder (default: timestamp)")
    out.add_argument("--report", type=Path, default=None, metavar="PATH", help="also write the Markdown report here")
    out.add_argument("--verbose", "-v", action="store_true", help="one line per test and worker events")
    out.add_argument("--plain", action="store_true", default=None, help="plain progress lines even on a terminal")
    out.add_argument("--collect-only", action="store_true", help="list the selected tests and exit")
    out.add_argument("--history", type=Path, default=None, metavar="PATH", help="run history database (default: <output-dir>/history.sqlite)")
    out.add_argument("--baseline", default=None, metavar="REF", help="compare with this run (id, ~N, previous, or a results.json); see `compare`")
    out.add_argument("--fail-on", default="", metavar="KINDS", help="exit 1 if the comparison finds any of: regression,new-failure,fingerprint,new-skip")


def options_from(args: argparse.Namespace, argv: list[str] | None = None) -> RunOptions:
    fields = set(RunOptions.__dataclass_fields__)
    values = {k: v for k, v in vars(args).items() if k in fields}
    full = values.get("scale") == "full"
    if values.get("timeout") is None:
        values["timeout"] = 1800.0 if full else 300.0
    if full and values.get("workers") is None:
        values["workers"] = 1  # real-size timings must not share the CPUs with another worker
    opts = RunOptions(**values)
    opts.argv = list(argv if argv is not None else sys.argv)
    return opts


def main(args: argparse.Namespace) -> int:
    import os  # seam(cache): workers inherit the artifact-cache settings through the environment

    if getattr(args, "no_cache", False):
        os.environ["IPFS_ACCELERATE_NO_CACHE"] = "1"
    if getattr(args, "cache_max_gb", None) is not None:
        os.environ["IPFS_ACCELERATE_CACHE_MAX_GB"] = str(args.cache_max_gb)
    return execute(options_from(args, ["ipfs-accelerate", *sys.argv[1:]]))


def usage_problem(opts: RunOptions) -> str:
    """The first option argparse's types cannot rule out ("" when none). `not x > 0` also
    refuses NaN, which compares false with everything and would disable a limit."""
    if opts.workers is not None and opts.workers < 1:
        return "--workers must be at least 1"
    if not opts.timeout > 0:
        return f"--timeout must be a positive number of seconds (got {opts.timeout})"
    if opts.max_memory_mb is not None and not opts.max_memory_mb > 0:
        return f"--max-memory must be a positive number of MB (got {opts.max_memory_mb})"
    if opts.threads < 1:
        return "--threads must be at least 1"
    if opts.recycle_after < 1:
        return "--recycle must be at least 1"
    if math.isnan(opts.warm):
        return "--warm must be a number of seconds"
    return ""


def execute(opts: RunOptions) -> int:
    problem = usage_problem(opts)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return Runner(opts).run()


def run_from_argv(argv: list[str], default_test_dir: Path | None = None, prog: str = "run_unified_tests.py") -> int:
    """Entry for the thin `test/run_unified_tests.py` wrapper (its folder is the default test dir)."""
    parser = argparse.ArgumentParser(prog=prog)
    configure(parser)
    if default_test_dir is not None:
        parser.set_defaults(test_dir=default_test_dir)
    args = parser.parse_args(argv)
    return execute(options_from(args, [prog, *argv]))
