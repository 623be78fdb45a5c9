"""Run moto's S3 server (a real, independent SigV4 S3 implementation) for ``s3_kit`` tests.

moto runs in-process on a thread (``ThreadedMotoServer``, ~0.35 s to start) bound to 127.0.0.1;
boto3 reaches it over real HTTP, so request signing, XML parsing and multipart are all real.
``reset()`` clears every bucket between tests via moto's ``POST /moto-api/reset``.
"""

from __future__ import annotations

import importlib.util

import httpx

from ._proc import Peer, PeerError, free_port, wait_http_ready

# moto accepts any credentials; these are obviously fake and must never be mistaken for real.
FAKE_ACCESS_KEY = "AKIAIOSFODNN7FAKEKEY"
FAKE_SECRET_KEY = "fake/secret/key/for/moto/never/real/0000"
REGION = "us-east-1"


def moto_skip_reason() -> str | None:
    missing = [
        m for m in ("moto", "boto3", "flask", "flask_cors") if importlib.util.find_spec(m) is None
    ]
    if missing:
        return f"moto[s3] peer not installed (missing {', '.join(missing)}); run scripts/setup_api_peers.sh"
    return None


class MotoS3Server(Peer):
    """Context manager: ``with MotoS3Server() as s3: s3.endpoint_url``."""

    def __init__(self, *, startup_timeout: float = 20.0) -> None:
        self.startup_timeout = startup_timeout
        self.port = 0
        self._server = None

    @property
    def endpoint_url(self) -> str:
        return self.root_url

    def start(self) -> MotoS3Server:
        reason = moto_skip_reason()
        if reason:
            raise PeerError(reason)
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        wait_http_ready(f"{self.endpoint_url}/moto-api/data.json", timeout=self.startup_timeout)
        return self

    def reset(self) -> None:
        """Drop all state (buckets, objects, multipart uploads) in the server."""
        resp = httpx.post(f"{self.endpoint_url}/moto-api/reset", timeout=10.0, trust_env=False)
        if resp.status_code != 200:
            raise PeerError(f"moto reset failed: HTTP {resp.status_code}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
