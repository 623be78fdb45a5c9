"""Where a kit test sends its requests: the provider's local fake (mock) or the real service."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from ipfs_accelerate.api.core import Timeout, shared_ssl_context
from ipfs_accelerate.api.providers import PROVIDERS, get_provider_class

from ._profiles import S3_BUCKET, Profile

#: a recognisable key: the secrets test greps every log line, error and report for it
KEY_PREFIX = "sk-ipfsaccel-SECRET-"
MOCK_TIMEOUT = Timeout(connect=2.0, read=10.0, write=10.0, pool=30.0, total=300.0)  # above every Retry-After cap


def _transports() -> tuple[httpx.HTTPTransport, httpx.AsyncHTTPTransport]:
    """Real socket transports sharing one SSL context: httpx builds a context (loading the CA
    bundle, ~0.1 s) for every client otherwise, which would dominate a 1,000-test suite."""
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=64)
    return (
        httpx.HTTPTransport(verify=shared_ssl_context(), limits=limits),
        httpx.AsyncHTTPTransport(verify=shared_ssl_context(), limits=limits),
    )


def new_key() -> str:
    return KEY_PREFIX + uuid.uuid4().hex


class NoJitter(random.Random):
    """``random()`` is always 0, so backoff delays are exact (the jitter only shortens them)."""

    def random(self) -> float:
        return 0.0


def real_env(name: str) -> tuple[str, ...]:
    """Variables that switch ``name``'s tests to the real service (any one of them set)."""
    if name == "s3_kit":
        return ("S3_KIT_BUCKET",)
    return PROVIDERS[name].real_mode_env


def real_skip_reason(name: str) -> str | None:
    env = real_env(name)
    if any(os.environ.get(v) for v in env):
        if name == "s3_kit" and not os.environ.get("AWS_SECRET_ACCESS_KEY"):
            return "real mode for s3_kit needs AWS credentials as well as S3_KIT_BUCKET"
        return None
    return f"real mode: set {' or '.join(env)} to run {name}'s API tests against the real service"


def start_fake(profile: Profile, key: str) -> Any:
    """Start the local server for ``profile`` (auth enforced with ``key`` where it applies)."""
    if profile.fake == "s3":
        from ._s3_proxy import FaultyS3Proxy

        srv = FaultyS3Proxy().start()
        import boto3

        boto3.session.Session().client(
            "s3", endpoint_url=srv.url, aws_access_key_id="AKIAKITSETUP",
            aws_secret_access_key="kit-setup", region_name="us-east-1",
        ).create_bucket(Bucket=S3_BUCKET)
        srv.reset()
        return srv
    from ipfs_accelerate.api.testing import start_server

    kw: dict[str, Any] = {}
    if profile.auth_enforced:
        kw["api_key"] = key
    return start_server(profile.fake, **kw)


@dataclass
class Target:
    """A provider factory bound to one place: ``make(**overrides)`` builds a fresh provider."""

    profile: Profile
    mode: str  # "mock" or "real"
    server: Any | None
    key: str | None

    @property
    def strict(self) -> bool:
        """Exact content checks against the deterministic fake; structure only for real."""
        return self.mode == "mock"

    def make(self, **kw: Any) -> Any:
        name = self.profile.name
        cls = get_provider_class(name)
        if self.mode == "real":
            model = os.environ.get(f"IPFS_ACCEL_{name.upper()}_MODEL") or self.profile.real_model
            if name == "s3_kit":
                return cls(**{"bucket": os.environ.get("S3_KIT_BUCKET"), **kw})
            if model:
                kw.setdefault("model", model)
            return cls(**self.profile.extra, **kw)
        assert self.server is not None
        kw.setdefault("timeout", MOCK_TIMEOUT)
        base_url = kw.pop("base_url", None) or self.profile.base_url(self.server)
        if name == "s3_kit":
            key = kw.pop("api_key", self.key)
            return cls(
                access_key_id="AKIAIPFSACCELKIT0000", secret_access_key=key,
                endpoint_url=base_url, bucket=S3_BUCKET, env={}, **kw,
            )
        kw.setdefault("api_key", self.key)
        if "transport" not in kw:
            kw["transport"], kw["async_transport"] = _transports()
        if self.profile.model is not None:
            kw.setdefault("model", self.profile.model)
        return cls(base_url=base_url, env={}, **self.profile.extra, **kw)

    # -- server-side views (mock only) -------------------------------------------------------------

    def records(self, path: str, method: str | None = None) -> list[Any]:
        """Requests the fake received for ``path`` (exact, ``/``-ended prefix, or glob)."""
        import fnmatch

        assert self.server is not None
        out = []
        for r in self.server.requests:
            if method and r.method != method:
                continue
            if r.path == path or (path.endswith("/") and r.path.startswith(path)) or (
                any(c in path for c in "*?[") and fnmatch.fnmatchcase(r.path, path)
            ):
                out.append(r)
        return out

    def inject(self, spec: Any, *, path: str, method: str | None = None, times: int | None = 1) -> None:
        assert self.server is not None
        self.server.inject(spec, times=times, path=path, method=method)


def iter_texts(obj: Any) -> Iterator[str]:
    """Every string reachable from an error or result (attributes, args, nested containers)."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, str):
            yield o
        elif isinstance(o, bytes):
            yield o.decode("utf-8", "replace")
        elif isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, list | tuple | set | frozenset):
            stack.extend(o)
        elif isinstance(o, BaseException):
            yield str(o)
            yield repr(o)
            stack.extend(o.args)
            stack.extend(vars(o).values())
            if o.__cause__ is not None:
                stack.append(o.__cause__)
            if o.__context__ is not None:
                stack.append(o.__context__)
        else:
            yield repr(o)
