"""A long-lived pytest worker: imports the heavy runtimes once, holds one pytest session, and runs
the node ids the runner sends, one file's batch at a time (xdist's worker model, without execnet).

    python -m ipfs_accelerate.runner.worker --cmd-fd R --msg-fd W [--preload torch,openvino] -- PYTEST_ARGS

Why a session per worker instead of a process per test: importing torch + transformers costs
~3 s and the first import of a model module 1-4 s; a warm worker pays that once, and a (model,
backend) case then costs only its own build/convert/inference. The runner replaces a worker that
crashes, hangs or grows too large; this process only reports what happened.
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import os
import resource
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from .channel import WorkerChannel
from .collect import CollectPlugin
from .preload import hardware_info, own_rss_mb, preload
from .protocol import BatchDone, Exit, Ready, Run, Start, Stop, TestDone

OUTPUT_LIMIT = 6000


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the runner dies, even mid-test (a hung test never reads the pipe)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the runner already died before prctl
        os._exit(1)


def _trim(text: str, limit: int = OUTPUT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + f"\n... [{len(text) - limit} characters cut] ...\n" + text[-half:]


def _skip_reason(report: pytest.TestReport) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        msg = str(lr[2])
        return msg[len("Skipped: ") :] if msg.startswith("Skipped: ") else msg
    return str(lr or "")


def _failure_reason(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    text = report.longreprtext.strip()
    return text.splitlines()[-1] if text else "failed"


def outcome(reports: list[pytest.TestReport]) -> tuple[str, str]:
    """(status, reason) of one test from its setup/call/teardown reports.

    A strict xfail that passes arrives as 'failed' with '[XPASS(strict)]'; a non-strict one as
    'passed' with `wasxfail`. Both are `xpassed` here: the registry says it fails and it does not.
    """
    status, reason = "passed", ""
    for r in reports:
        wasxfail = getattr(r, "wasxfail", None)
        if r.when == "setup":
            if r.skipped:
                return ("xfailed", str(wasxfail)) if wasxfail is not None else ("skipped", _skip_reason(r))
            if r.failed:
                status, reason = "error", f"setup: {_failure_reason(r)}"
        elif r.when == "call":
            if r.passed:
                status, reason = ("xpassed", f"unexpected pass: {wasxfail}") if wasxfail is not None else ("passed", "")
            elif r.skipped:
                status, reason = ("xfailed", str(wasxfail)) if wasxfail is not None else ("skipped", _skip_reason(r))
            elif r.failed:
                text = r.longreprtext
                if text.startswith("[XPASS(strict)]"):
                    status, reason = "xpassed", "unexpected pass (strict xfail): " + text[len("[XPASS(strict)]") :].strip()
                else:
                    status, reason = "failed", _failure_reason(r)
        elif r.when == "teardown" and r.failed and status not in ("failed", "error"):
            status, reason = "error", f"teardown: {_failure_reason(r)}"
    return status, reason


def _output(reports: list[pytest.TestReport], status: str) -> str:
    if status in ("passed", "skipped", "xfailed"):
        return ""
    parts = []
    for r in reports:
        if r.failed and r.longreprtext:
            parts.append(f"--- {r.when} ---\n{r.longreprtext}")
    for title, content in reports[-1].sections if reports else []:
        if content.strip():
            parts.append(f"--- {title} ---\n{content}")
    return _trim("\n".join(parts))


class WorkerPlugin:
    """Registered into the worker's pytest session: replaces the run loop, streams results."""

    def __init__(self, chan: WorkerChannel | None, info: dict[str, Any], collector: CollectPlugin,
                 claim: Callable[[], tuple[WorkerChannel, dict[str, Any]]] | None = None) -> None:
        self.chan = chan
        self.info = info
        self.collector = collector
        self.claim = claim  # a spare: collected ahead of any run, blocks here until a runner claims it
        self.items: dict[str, pytest.Item] = {}
        self.reports: dict[str, list[pytest.TestReport]] = {}
        self.collect_start = time.perf_counter()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        self.items = {item.nodeid: item for item in session.items}
        gc.collect()
        gc.freeze()  # imports + collection are permanent: later collections skip them (~ms, not ~100s of ms)
        collect_s = time.perf_counter() - self.collect_start
        if self.claim is not None:
            self.chan, more = self.claim()
            self.info.update(more)
        assert self.chan is not None
        # the runner takes its test list from the first worker ready: no separate collection process
        found = self.collector.result
        self.chan.send(Ready(**self.info, n_items=len(self.items), collect_s=collect_s,
                             items=found.items, problems=found.problems))
        while True:
            cmd = self.chan.recv()
            if cmd is None or isinstance(cmd, Stop):
                break
            if isinstance(cmd, Run):
                self._run_batch(list(cmd.ids))
        return True

    def _run_batch(self, ids: list[str]) -> None:
        start, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        for i, nodeid in enumerate(ids):
            item = self.items.get(nodeid)
            if item is None:
                self.chan.send(TestDone(nodeid=nodeid, status="error",
                                        reason="not collected by the worker (the file changed during the run?)"))
                continue
            nextitem = self.items.get(ids[i + 1]) if i + 1 < len(ids) else None
            item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        cases = sys.modules.get("ipfs_accelerate.testing.model_tests")
        if cases is not None:  # the batch was one model file: its cached builds are dead weight now
            cases._CASES.clear()
        gc.collect()
        gc.freeze()  # what survived (modelling modules imported by this batch) is long-lived too
        end = resource.getrusage(resource.RUSAGE_SELF)
        self.chan.send(BatchDone(wall_s=time.perf_counter() - start, rss_mb=own_rss_mb(),
                                 cpu_s=end.ru_utime + end.ru_stime - usage.ru_utime - usage.ru_stime,
                                 page_faults=end.ru_minflt - usage.ru_minflt))

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
        try:
            offset = os.fstat(2).st_size
        except OSError:
            offset = 0
        self.reports[nodeid] = []
        self.chan.send(Start(nodeid=nodeid, offset=offset))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        reports = self.reports.pop(nodeid, [])
        status, reason = outcome(reports)
        case = None
        for r in reports:
            for key, value in r.user_properties:
                if key == "ipfs_case":
                    case = value
        self.chan.send(TestDone(nodeid=nodeid, status=status, reason=_trim(reason, 2000),
                                duration_s=sum(r.duration for r in reports), output=_output(reports, status), case=case))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        split = argv.index("--")
        own, pytest_args = argv[:split], argv[split + 1 :]
    else:
        own, pytest_args = argv, []
    ap = argparse.ArgumentParser(prog="ipfs_accelerate.runner.worker")
    ap.add_argument("--cmd-fd", type=int, default=-1)
    ap.add_argument("--msg-fd", type=int, default=-1)
    ap.add_argument("--preload", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hardware-info", action="store_true")
    ap.add_argument("--spare-fd", type=int, default=None, help=argparse.SUPPRESS)  # warm server: collect now, claimed later
    args = ap.parse_args(own)
    _die_with_parent()
    faulthandler.enable(file=sys.stderr, all_threads=True)
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)  # runner asks before a timeout kill
    groups = [g for g in args.preload.split(",") if g and g != "none"]
    info: dict[str, Any] = {"pid": os.getpid(), "import_s": preload(groups, args.threads)}
    if args.hardware_info:
        info["hardware"] = hardware_info(groups)
    collector = CollectPlugin()
    if args.spare_fd is not None:
        from .spare import claim_spare

        plugin = WorkerPlugin(None, info, collector, claim=lambda: claim_spare(args.spare_fd, groups))
    else:
        plugin = WorkerPlugin(WorkerChannel(args.cmd_fd, args.msg_fd), info, collector)
    rc = pytest.main(pytest_args, plugins=[collector, plugin])
    if plugin.chan is not None:
        plugin.chan.send(Exit(rc=int(rc)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
