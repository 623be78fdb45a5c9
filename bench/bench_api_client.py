"""Client throughput on loopback: our OpenAI provider vs raw httpx vs the official openai SDK.

What it measures: requests per second for ``POST /v1/chat/completions`` against a minimal
keep-alive HTTP/1.1 server (stdlib asyncio, in a separate process so it does not share the
client's GIL), with each client doing the same work — send the JSON request, read and decode the
JSON response. Ours also runs the queue, retry loop, breaker, stats and typed parsing, which is
the overhead this bench prices. Target: ours ≥ 0.9× raw httpx.

Runs are interleaved (raw, ours, sdk, raw, ours, sdk, ...) and the median of ``--rounds`` is
reported, so a noisy neighbour on a 2-core machine hits every client alike. Besides requests/s
(wall clock) it reports the client process's CPU time per request: that is the overhead itself,
and it barely moves when other processes compete for the cores.

    .venv/bin/python bench/bench_api_client.py [--requests 2000] [--rounds 5] [--concurrency 16]
        [--server minimal|fake] [--json out.json]

``--server fake`` uses ``ipfs-accelerate fake-server openai`` instead (a thread-per-connection
server; slower, so ratios compress toward 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from ipfs_accelerate.api.providers.openai_api import OpenAIProvider

KEY = "sk-bench-not-a-secret"
REQUEST = {
    "model": "bench",
    "messages": [{"role": "user", "content": "say hello"}],
    "max_tokens": 8,
}
RESPONSE = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello there"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
).encode()

SERVER_CODE = r"""
import asyncio, sys
BODY = sys.stdin.buffer.read()
HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_bench\r\n"
        b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n")

class Proto(asyncio.Protocol):
    def connection_made(self, transport):
        self.t, self.buf = transport, b""
    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            n = int(head[i + 15:head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None]) if i >= 0 else 0
            if len(self.buf) < end + 4 + n:
                return
            self.buf = self.buf[end + 4 + n:]
            self.t.write(HEAD + BODY)

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Proto, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def start_minimal_server() -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(RESPONSE)
    proc.stdin.close()
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/v1"


def start_fake_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipfs_accelerate.cli", "fake-server", "openai", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=0.5)
            return proc, f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("fake server did not start")


# -- the clients: each makes the same call, sync or async --------------------------------------


class RawHttpx:
    name = "raw_httpx"

    def __init__(self, base: str) -> None:
        self.url = f"{base}/chat/completions"
        self.headers = {"Authorization": f"Bearer {KEY}"}
        self.limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        self.client: httpx.Client | None = None
        self.aclient: httpx.AsyncClient | None = None

    def call(self) -> Any:
        if self.client is None:
            self.client = httpx.Client(limits=self.limits)
        r = self.client.post(self.url, json=REQUEST, headers=self.headers)
        r.raise_for_status()
        return r.json()

    async def acall(self) -> Any:
        if self.aclient is None:
            self.aclient = httpx.AsyncClient(limits=self.limits)
        r = await self.aclient.post(self.url, json=REQUEST, headers=self.headers)
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    async def aclose(self) -> None:
        if self.aclient is not None:
            await self.aclient.aclose()


class Ours:
    name = "ours"

    def __init__(self, base: str) -> None:
        self.client = OpenAIProvider(base_url=base, api_key=KEY, model="bench", max_concurrency=64)

    def call(self) -> Any:
        return self.client.chat(REQUEST["messages"], max_tokens=8)

    async def acall(self) -> Any:
        return await self.client.achat(REQUEST["messages"], max_tokens=8)

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        await self.client.aclose()


class OpenAISDK:
    name = "openai_sdk"

    def __init__(self, base: str) -> None:
        import openai

        self.base = base
        self.client = openai.OpenAI(base_url=base, api_key=KEY)
        self.aclient: Any = None

    def call(self) -> Any:
        return self.client.chat.completions.create(
            model="bench", messages=REQUEST["messages"], max_tokens=8
        )

    async def acall(self) -> Any:
        if self.aclient is None:
            import openai

            self.aclient = openai.AsyncOpenAI(base_url=self.base, api_key=KEY)
        return await self.aclient.chat.completions.create(
            model="bench", messages=REQUEST["messages"], max_tokens=8
        )

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        if self.aclient is not None:
            await self.aclient.close()


def client_classes() -> list[type]:
    classes: list[type] = [RawHttpx, Ours]
    try:
        import openai  # noqa: F401
    except ImportError:
        print("openai SDK not installed: skipping that comparison", file=sys.stderr)
    else:
        classes.append(OpenAISDK)
    return classes


def run_sync(cls: type, base: str, n: int) -> tuple[float, float]:
    """(requests/s by wall clock, client CPU µs per request)."""
    client = cls(base)
    try:
        for _ in range(min(50, n)):  # warm the connection and caches
            client.call()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            client.call()
        return n / (time.perf_counter() - t0), (time.process_time() - c0) / n * 1e6
    finally:
        client.close()


def run_async(cls: type, base: str, n: int, concurrency: int) -> tuple[float, float]:
    async def main() -> tuple[float, float]:
        client = cls(base)

        async def worker(k: int) -> None:
            for _ in range(k):
                await client.acall()

        try:
            await asyncio.gather(*(worker(3) for _ in range(concurrency)))  # warm
            per = max(n // concurrency, 1)
            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker(per) for _ in range(concurrency)))
            done = per * concurrency
            return done / (time.perf_counter() - t0), (time.process_time() - c0) / done * 1e6
        finally:
            await client.aclose()

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests per client per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=16, help="async tasks in the async mode")
    ap.add_argument("--server", choices=["minimal", "fake"], default="minimal")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args(argv)

    proc, base = start_minimal_server() if args.server == "minimal" else start_fake_server()
    results: dict[str, dict[str, float]] = {}
    cpu: dict[str, dict[str, float]] = {}
    classes = client_classes()
    try:
        for mode in ("sync", "async"):
            samples: dict[str, list[tuple[float, float]]] = {cls.name: [] for cls in classes}
            for _ in range(args.rounds):
                for cls in classes:
                    if mode == "sync":
                        samples[cls.name].append(run_sync(cls, base, args.requests))
                    else:
                        samples[cls.name].append(
                            run_async(cls, base, args.requests, args.concurrency)
                        )
            results[mode] = {k: statistics.median(r for r, _ in v) for k, v in samples.items()}
            cpu[mode] = {k: statistics.median(c for _, c in v) for k, v in samples.items()}
    finally:
        proc.terminate()
        proc.wait(5)

    print(
        f"server: {args.server} ({base}); {args.requests} requests × {args.rounds} rounds; "
        f"python {sys.version.split()[0]}, httpx {httpx.__version__}, {os.cpu_count()} CPUs"
    )
    out: dict[str, Any] = {"server": args.server, "requests": args.requests, "rounds": args.rounds}
    for mode, r in results.items():
        c = cpu[mode]
        label = f"{mode} (1 connection)" if mode == "sync" else f"async ({args.concurrency} tasks)"
        print(f"\n{label}: median of {args.rounds} rounds")
        print(f"  {'client':<11} {'req/s':>9} {'client CPU us/req':>19}")
        for name, rps in r.items():
            print(f"  {name:<11} {rps:9.0f} {c[name]:19.0f}")
        ratio_raw = r["ours"] / r["raw_httpx"]
        cpu_raw = c["raw_httpx"] / c["ours"]
        verdict = "PASS" if min(ratio_raw, cpu_raw) >= 0.9 else "FAIL"
        print(
            f"  ours / raw httpx  = {ratio_raw:.3f} by req/s, {cpu_raw:.3f} by CPU cost (target >= 0.9: {verdict})"
        )
        out[mode] = {
            "requests_per_s": r,
            "client_cpu_us_per_request": c,
            "ours_vs_raw_httpx": ratio_raw,
            "ours_vs_raw_httpx_by_cpu": cpu_raw,
        }
        if "openai_sdk" in r:
            ratio_sdk = r["ours"] / r["openai_sdk"]
            cpu_sdk = c["openai_sdk"] / c["ours"]
            print(f"  ours / openai SDK = {ratio_sdk:.3f} by req/s, {cpu_sdk:.3f} by CPU cost")
            out[mode]["ours_vs_openai_sdk"] = ratio_sdk
            out[mode]["ours_vs_openai_sdk_by_cpu"] = cpu_sdk
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
