"""A fault-injecting S3 front: the fake-server machinery in front of moto's real S3 server.

moto gives faithful S3 semantics (SigV4 requests, XML, multipart) but cannot misbehave on request;
the fake servers (``api.testing``) misbehave on request and record every request server-side but
do not speak S3. This server is both: every request passes through the shared fault injection and
request log, then is forwarded verbatim to a moto server it owns. moto does not check
signatures, so forwarding under another Host header is harmless. Errors injected here use S3's
XML error body (``<Error><Code>SlowDown</Code>...``), which boto3 parses like AWS's own.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import httpx

from ipfs_accelerate.api.testing import FakeServer, Request, Response
from ipfs_accelerate.api.testing.peers import MotoS3Server

_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "AccessDenied",
    404: "NoSuchKey",
    408: "RequestTimeout",
    409: "OperationAborted",
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "SlowDown",
    504: "GatewayTimeout",
}
_HOP_BY_HOP = {
    "connection", "keep-alive", "transfer-encoding", "content-length", "date", "server", "host",
    "proxy-connection", "te", "trailer", "upgrade",
}


class FaultyS3Proxy(FakeServer):
    """``with FaultyS3Proxy() as s3: s3.url`` is an S3 endpoint; ``s3.inject(...)`` as usual."""

    family = "s3"
    ROUTES = [(m, r"/.*", "forward") for m in ("GET", "PUT", "POST", "DELETE", "HEAD")]
    request_id_header = "x-amz-request-id"

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.moto = MotoS3Server()
        self._upstream: httpx.Client | None = None

    def start(self) -> FaultyS3Proxy:
        if self._upstream is None:
            self.moto.start()
            self._upstream = httpx.Client(
                base_url=self.moto.endpoint_url, timeout=30.0, trust_env=False,
                limits=httpx.Limits(max_connections=128, max_keepalive_connections=64),
            )
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None
        self.moto.stop()

    def reset_storage(self) -> None:
        """Empty moto (all buckets and objects); the request log is reset with ``reset()``."""
        self.moto.reset()

    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        xml_code = code if code and code[0].isupper() else _CODES.get(status, "InternalError")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(xml_code)}</Code><Message>{escape(message)}</Message>"
            "<RequestId>fake</RequestId></Error>"
        )

    def auth_ok(self, req: Request) -> bool:
        return True  # SigV4 is checked by nobody here; the secret never travels anyway

    def forward(self, req: Request) -> Response:
        assert self._upstream is not None, "proxy not started"
        query = [(k, v) for k, vs in req.query.items() for v in vs]
        headers = {k: v for k, v in req.headers.items() if k not in _HOP_BY_HOP}
        upstream = self._upstream.request(
            req.method, req.path, params=query, headers=headers, content=req.body
        )
        out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        ctype = out_headers.pop("content-type", "application/xml")
        return Response(upstream.content, upstream.status_code, ctype, out_headers)
