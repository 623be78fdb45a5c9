"""`ipfs-accelerate fake-server FAMILY --port N`: serve a local fake of an inference API.

For users' own tests: point an SDK at the printed URL, then inject faults per request with the
``x-fake-fault`` header or ``POST /__fake__/faults`` (see `ipfs_accelerate.api.testing`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._faults import Fault


def configure(parser: argparse.ArgumentParser) -> None:
    from . import ALIASES, KINDS, SERVERS

    families = sorted(SERVERS) + sorted(ALIASES)
    parser.add_argument(
        "family", choices=families, help="protocol family (or a provider that speaks it)"
    )
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--api-key", default=None, help="require this key (401 otherwise); default: accept any"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="queue a fault for the next request, e.g. '429;retry-after=2' (repeatable); kinds: "
        + ", ".join(KINDS),
    )


def main(args: argparse.Namespace) -> int:
    from . import Fault

    try:
        faults = [Fault.parse(spec) for spec in args.fault]
    except ValueError as exc:
        print(f"fake-server: {exc}", file=sys.stderr)
        return 2
    # Ctrl-C (SIGINT) and SIGTERM both stop it — explicitly, because a process started as a
    # background job of a non-interactive shell (nohup, CI scripts) inherits SIGINT *ignored*,
    # and Python then never raises KeyboardInterrupt: `kill -INT` would leave it running. The
    # handlers go in *before* the "listening" line: that line is the readiness handshake a caller
    # waits for before signalling, and a SIGINT sent between the two used to be lost (ignored) or
    # to escape as a KeyboardInterrupt traceback. A handler only writes a byte to a pipe (no lock:
    # setting a threading.Event from a handler can deadlock on the Event's own lock).
    wake_r, wake_w = os.pipe()
    previous = {
        sig: signal.signal(sig, lambda *_: os.write(wake_w, b"x"))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        return _serve(args, faults, wake_r)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)


def _serve(args: argparse.Namespace, faults: list[Fault], stop_fd: int) -> int:
    """Bind, announce the URL (the readiness line), and serve until a byte arrives on
    ``stop_fd``."""
    from . import server_class

    server = server_class(args.family)(
        args.host, args.port, api_key=args.api_key, latency=args.latency
    )
    try:
        server.start()
    except OSError as exc:
        print(f"fake-server: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        for fault in faults:
            server.inject(fault)
        print(
            f"{server.family} fake server listening on {server.url} "
            f"(SDK base URL: {server.base_url})",
            flush=True,
        )
        print("Ctrl-C to stop; faults: x-fake-fault header or POST /__fake__/faults", flush=True)
        os.read(stop_fd, 1)  # blocks until a handler writes; retried across EINTR (PEP 475)
    finally:
        server.stop()
    return 0
