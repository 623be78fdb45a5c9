"""``s3_kit``: S3-compatible object storage through boto3, under the core's policy.

boto3 is the right dependency for S3 (SigV4 signing, XML, multipart, presigning), so this
provider does not sit on the httpx client. It reuses every *policy* piece of the core instead:
the :class:`RequestQueue` (concurrency limit, priorities), one :class:`CircuitBreaker` per
operation, per-operation stats, :func:`decide_retry` (so 429/5xx/``SlowDown``, Retry-After in
all its forms, resets and timeouts are handled exactly as for the HTTP providers) and the typed
error tree. boto3's own retries are switched off (``total_max_attempts=1``); the retry loop is
the core's (:func:`~ipfs_accelerate.api.core.attempts`), with botocore as its second classifier
(:meth:`S3KitProvider._classify`) beside httpx's. Async runs the blocking boto3 call on a worker
thread while the queue wait and the backoff sleeps stay on the event loop.

Credentials come from arguments or ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``; the endpoint from ``endpoint_url`` or ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL``. Both key parts are :class:`Secret` s and are scrubbed from every error
message and log line. A presigned URL necessarily names the access key id (``X-Amz-Credential``)
and is itself a bearer credential until it expires: it is returned to the caller, never logged.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, TypeVar

from ipfs_accelerate.api import core

__all__ = ["IntegrityError", "ObjectInfo", "PutResult", "S3KitProvider"]

log = logging.getLogger("ipfs_accelerate.api")
T = TypeVar("T")

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None = None
    last_modified: datetime | None = None
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PutResult:
    key: str
    etag: str | None
    version_id: str | None = None
    parts: int = 1


class IntegrityError(core.ResponseDecodeError):
    """An object body that does not match its ETag (MD5): corrupted in transit; retried."""


# The attempt running on this thread (its headers and deadline). A botocore ``before-sign`` hook
# adds the headers, so every attempt of one logical operation carries the same idempotency key
# (as the HTTP providers do) and its retry count, and a server can prove it never delivered one
# operation twice; a body read checks the deadline between chunks.
_attempt = threading.local()


def _add_attempt_headers(request: Any, **_: Any) -> None:
    action: core.Attempt | None = getattr(_attempt, "value", None)
    for name, value in (action.arg if action else {}).items():
        request.headers[name] = value


def _invoke(fn: Callable[[], T], action: core.Attempt) -> T:
    _attempt.value = action
    try:
        return fn()
    finally:
        _attempt.value = None


_session_lock = threading.Lock()


@functools.cache
def _session_cached() -> Any:
    import boto3

    return boto3.session.Session()


def _shared_session() -> Any:
    """One boto3 session for all providers: building one loads botocore's service models
    (~0.2 s); a session is not thread-safe while creating clients, so callers hold the lock."""
    return _session_cached()


def _first_env(env: Mapping[str, str], *names: str) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


@dataclass(frozen=True)
class _Op:
    """One S3 call of a plan: its operation name (stats, errors), the botocore call, and where."""

    name: str
    fn: Callable[[], Any]
    bucket: str | None = None
    key: str | None = None


class S3KitProvider(core.Guarded):
    """S3 operations with queue, retries, breaker, stats and typed errors; sync and async."""

    name = "s3_kit"
    #: class default, as on the httpx providers; an instance may override it
    retry_policy: core.RetryPolicy = core.OPENAI_RETRY

    def __init__(
        self,
        *,
        access_key_id: str | core.Secret | None = None,
        secret_access_key: str | core.Secret | None = None,
        session_token: str | core.Secret | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        bucket: str | None = None,
        addressing_style: str = "path",
        part_size: int = 8 * MiB,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        """``**options``: the fields of :class:`core.ClientOptions` (timeout, max_retries, queue,
        breaker, clock, rng, ...), the same policy keywords as every httpx provider."""
        opts = core.ClientOptions.of(options, "S3KitProvider")
        env = os.environ if env is None else env
        ak = access_key_id or _first_env(env, "AWS_ACCESS_KEY_ID")
        sk = secret_access_key or _first_env(env, "AWS_SECRET_ACCESS_KEY")
        st = session_token or _first_env(env, "AWS_SESSION_TOKEN")
        self._access_key = core.Secret(ak) if ak else None
        self._secret_key = core.Secret(sk) if sk else None
        self._session_token = core.Secret(st) if st else None
        self.endpoint_url = (
            endpoint_url or _first_env(env, "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") or None
        )
        self.region = region or _first_env(env, "AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1"
        self.bucket = bucket or _first_env(env, "S3_KIT_BUCKET")
        self._guard(opts, self.retry_policy)
        self.addressing_style = addressing_style
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {MIN_PART_SIZE} (S3's minimum part size)")
        self.part_size = part_size
        self.redact = core.Redactor([s for s in (self._access_key, self._secret_key, self._session_token) if s])
        self._max_concurrency = self.queue.config.max_concurrency
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._priority: core.Priority = "normal"

    def __repr__(self) -> str:
        url = core.redact_url(self.endpoint_url) if self.endpoint_url else "aws"
        return f"S3KitProvider(endpoint={url!r}, bucket={self.bucket!r}, region={self.region!r})"

    # -- plumbing -----------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 S3 client (built lazily; thread-safe, shared by sync and async calls)."""
        if self._client is None:
            with self._client_lock, _session_lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        from botocore.config import Config

        config = Config(
            region_name=self.region,
            retries={"total_max_attempts": 1, "mode": "standard"},  # our loop retries, not boto
            connect_timeout=self.timeout.connect if self.timeout.connect is not None else 60,
            read_timeout=self.timeout.read if self.timeout.read is not None else 60,
            max_pool_connections=max(10, self._max_concurrency),
            s3={"addressing_style": self.addressing_style},
            signature_version="s3v4",
        )
        client = _shared_session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self._access_key.reveal() if self._access_key else None,
            aws_secret_access_key=self._secret_key.reveal() if self._secret_key else None,
            aws_session_token=self._session_token.reveal() if self._session_token else None,
            config=config,
        )
        client.meta.events.register("before-sign.s3", _add_attempt_headers)
        return client

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._client_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        max_workers=self._max_concurrency, thread_name_prefix="s3_kit"
                    )
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def with_options(self, *, priority: core.Priority | None = None, max_retries: int | None = None) -> S3KitProvider:
        """A view sharing client, queue, breakers and stats, with other per-call defaults."""
        import copy

        clone = copy.copy(self)
        if priority is not None:
            clone._priority = priority
        if max_retries is not None:
            clone.retry_policy = self.retry_policy.with_(max_retries=max_retries)
        return clone

    def stats(self) -> dict[str, core.StatsSnapshot]:
        return self._stats.snapshot()

    def _bucket(self, bucket: str | None) -> str:
        chosen = bucket or self.bucket
        if not chosen:
            raise ValueError("s3_kit: no bucket; pass bucket= here or to the constructor")
        return chosen

    # -- error mapping (the boundary: botocore → our tree, cause chained, secrets scrubbed) ----------

    def _context(self, op: str, bucket: str | None, key: str | None) -> dict[str, Any]:
        path = "/".join(p for p in (bucket, key) if p)
        base = self.endpoint_url or "https://s3.amazonaws.com"
        return {"method": op, "url": core.redact_url(f"{base.rstrip('/')}/{path}"), "provider": self.name}

    def _map_error(self, exc: Exception, op: str, bucket: str | None, key: str | None) -> tuple[core.APIError, int | None, Mapping[str, str] | None]:
        from botocore import exceptions as bx
        from botocore.parsers import ResponseParserError
        from urllib3 import exceptions as ux

        ctx = self._context(op, bucket, key)
        if isinstance(exc, core.APIError):  # raised by our own checks inside the attempt
            exc.__dict__.update({k: v for k, v in ctx.items() if not getattr(exc, k, None)})
            return exc, exc.status, None
        if isinstance(exc, bx.ClientError):
            meta = exc.response.get("ResponseMetadata") or {}
            err = exc.response.get("Error") or {}
            status = meta.get("HTTPStatusCode")
            headers = {str(k).lower(): str(v) for k, v in (meta.get("HTTPHeaders") or {}).items()}
            code = err.get("Code") or "Unknown"
            message = self.redact(f"{self.name}: {op}: HTTP {status}: {code}: {err.get('Message') or ''}".rstrip(": "))
            body = self.redact(f"{code}: {err.get('Message') or ''}")
            if isinstance(status, int):
                mapped: core.APIError = core.make_status_error(
                    status, message, request_id=meta.get("RequestId") or headers.get("x-amz-request-id"),
                    body=body, headers=core.redact_headers(headers), **ctx,
                )
            else:
                mapped = core.APIError(message, body=body, **ctx)
            return mapped, status if isinstance(status, int) else None, headers
        if isinstance(exc, bx.ConnectTimeoutError | bx.ReadTimeoutError):
            return core.APITimeoutError(self.redact(f"{self.name}: {op}: timed out: {type(exc).__name__}"), **ctx), None, None
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError | bx.ConnectionError | bx.HTTPClientError):
            return core.APIConnectionError(self.redact(f"{self.name}: {op}: connection failed: {type(exc).__name__}: {exc}"), **ctx), None, None
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return core.AuthenticationError(f"{self.name}: {op}: no usable credentials; pass them or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", **ctx), None, None
        if isinstance(exc, bx.ParamValidationError):
            return core.BadRequestError(self.redact(f"{self.name}: {op}: {exc}"), **ctx), None, None
        if isinstance(exc, ResponseParserError):
            return core.ResponseDecodeError(self.redact(f"{self.name}: {op}: malformed response: {type(exc).__name__}"), **ctx), None, None
        if isinstance(exc, ux.TimeoutError):  # raised while reading a body, outside botocore
            return core.APITimeoutError(self.redact(f"{self.name}: {op}: timed out reading the body"), **ctx), None, None
        if isinstance(exc, ux.HTTPError):  # e.g. ProtocolError: body cut short (IncompleteRead)
            return core.APIConnectionError(self.redact(f"{self.name}: {op}: connection broken: {type(exc).__name__}"), **ctx), None, None
        if isinstance(exc, bx.BotoCoreError):
            return core.APIConnectionError(self.redact(f"{self.name}: {op}: {type(exc).__name__}: {exc}"), **ctx), None, None
        raise exc

    # -- botocore's classifier over the core's one retry loop -----------------------------------

    def _classify(self, op: str, bucket: str | None, key: str | None, result: Any,
                  exc: Exception | None) -> core.Outcome:
        if exc is None:
            return core.Outcome(result=result)
        error, status, headers = self._map_error(exc, op, bucket, key)  # unknown errors propagate
        error.__cause__ = exc
        local = isinstance(error, core.AuthenticationError | core.BadRequestError | core.ResponseDecodeError)
        spent = isinstance(error, core.APITimeoutError) and error.limit is not None
        return core.Outcome(
            error=error, status=status, headers=headers,
            breaker_failure=status is None or status >= 500 or status == 408,
            # local failures (no credentials, invalid params) and a spent deadline: never retried
            final=spent or (local and status is None and not isinstance(error, IntegrityError)),
        )

    def _attempts(self, op: str, fn: Callable[[], T], bucket: str | None, key: str | None,
                  retryable: bool) -> Generator[Any, Any, T]:
        endpoint = f"{self.name} {op}"
        idem = f"ipfs-accelerate-retry-{uuid.uuid4()}"
        policy = self.retry_policy
        return core.attempts(
            endpoint=endpoint, context=self._context(op, bucket, key), clock=self.clock,
            ticket=self.queue.ticket(self._priority), breaker=self._breakers.get(endpoint),
            stats=self._stats.get(endpoint), policy=policy,
            max_retries=policy.max_retries if retryable else 0, total=self.timeout.total,
            rng=self._rng, release=self.queue.release,
            build=lambda retries, _key, _remaining: {core.IDEMPOTENCY_HEADER: idem, core.RETRY_COUNT_HEADER: str(retries)},
            classify=functools.partial(self._classify, op, bucket, key),
        )

    def _run(self, op: str, fn: Callable[[], T], bucket: str | None = None, key: str | None = None,
             retryable: bool = True) -> T:
        with core.Tracked(self._stats.get(f"{self.name} {op}"), self.clock) as call:
            gen = self._attempts(op, fn, bucket, key, retryable)
            result = core.drive(gen, self.queue, self.clock, functools.partial(_invoke, fn))
        return call.done(result)

    async def _arun(self, op: str, fn: Callable[[], T], bucket: str | None = None, key: str | None = None,
                    retryable: bool = True) -> T:
        loop = asyncio.get_running_loop()

        async def perform(action: core.Attempt) -> T:  # the blocking boto3 call on a worker thread
            return await loop.run_in_executor(self._pool(), _invoke, fn, action)

        with core.Tracked(self._stats.get(f"{self.name} {op}"), self.clock) as call:
            result = await core.adrive(self._attempts(op, fn, bucket, key, retryable), self.queue, self.clock, perform)
        return call.done(result)

    # -- operations: each is (op name, a zero-argument boto3 call, how to map its result) ----------

    def _op_create_bucket(self, bucket: str | None) -> tuple[str, Callable[[], Any], str, None]:
        b = self._bucket(bucket)
        kwargs: dict[str, Any] = {"Bucket": b}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        return "CreateBucket", lambda: self.client.create_bucket(**kwargs), b, None

    def create_bucket(self, bucket: str | None = None) -> str:
        op, fn, b, _ = self._op_create_bucket(bucket)
        self._run(op, fn, b)
        return b

    async def acreate_bucket(self, bucket: str | None = None) -> str:
        op, fn, b, _ = self._op_create_bucket(bucket)
        await self._arun(op, fn, b)
        return b

    def delete_bucket(self, bucket: str | None = None) -> None:
        b = self._bucket(bucket)
        self._run("DeleteBucket", lambda: self.client.delete_bucket(Bucket=b), b)

    async def adelete_bucket(self, bucket: str | None = None) -> None:
        b = self._bucket(bucket)
        await self._arun("DeleteBucket", lambda: self.client.delete_bucket(Bucket=b), b)

    def list_buckets(self) -> list[str]:
        r = self._run("ListBuckets", lambda: self.client.list_buckets())
        return [b["Name"] for b in r.get("Buckets", [])]

    async def alist_buckets(self) -> list[str]:
        r = await self._arun("ListBuckets", lambda: self.client.list_buckets())
        return [b["Name"] for b in r.get("Buckets", [])]

    def _put_kwargs(self, b: str, key: str, data: bytes | str, content_type: str | None,
                    metadata: Mapping[str, str] | None) -> dict[str, Any]:
        body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        kw: dict[str, Any] = {"Bucket": b, "Key": key, "Body": body}
        if content_type:
            kw["ContentType"] = content_type
        if metadata:
            kw["Metadata"] = dict(metadata)
        return kw

    def put_object(self, key: str, data: bytes | str, *, bucket: str | None = None,
                   content_type: str | None = None, metadata: Mapping[str, str] | None = None) -> PutResult:
        """PUT one object (whole body in memory; use :meth:`upload_multipart` for large ones)."""
        b = self._bucket(bucket)
        kw = self._put_kwargs(b, key, data, content_type, metadata)
        r = self._run("PutObject", lambda: self.client.put_object(**kw), b, key)
        return PutResult(key, r.get("ETag"), r.get("VersionId"))

    async def aput_object(self, key: str, data: bytes | str, *, bucket: str | None = None,
                          content_type: str | None = None, metadata: Mapping[str, str] | None = None) -> PutResult:
        b = self._bucket(bucket)
        kw = self._put_kwargs(b, key, data, content_type, metadata)
        r = await self._arun("PutObject", lambda: self.client.put_object(**kw), b, key)
        return PutResult(key, r.get("ETag"), r.get("VersionId"))

    def _get(self, b: str, key: str, range_: str | None) -> Callable[[], bytes]:
        def call() -> bytes:
            kw: dict[str, Any] = {"Bucket": b, "Key": key}
            if range_:
                kw["Range"] = range_
            r = self.client.get_object(**kw)
            action: core.Attempt | None = getattr(_attempt, "value", None)
            parts: list[bytes] = []
            # read1 of the urllib3 response (what ``with`` gives): what has arrived, so the deadline
            # is checked while a server trickles; urllib3 still enforces the length at EOF
            with r["Body"] as body:  # read inside the attempt: a reset mid-body is retried
                read = getattr(body, "read1", None) or body.read
                while part := read(64 * 1024):
                    parts.append(part)
                    if action is not None:  # a trickling server cannot outlive the deadline
                        action.check(self.clock, "reading the body", self._context("GetObject", b, key))
            data = b"".join(parts)
            etag = (r.get("ETag") or "").strip('"')
            # A single-part ETag is the body's MD5; check it on whole-object reads.
            if not range_ and len(etag) == 32 and "-" not in etag:
                if hashlib.md5(data, usedforsecurity=False).hexdigest() != etag:
                    raise IntegrityError(f"{self.name}: GetObject: body does not match its ETag")
            return data

        return call

    def get_object(self, key: str, *, bucket: str | None = None, range: str | None = None) -> bytes:  # noqa: A002
        """GET the object's bytes (``range="bytes=0-99"`` for part of it)."""
        b = self._bucket(bucket)
        return self._run("GetObject", self._get(b, key, range), b, key)

    async def aget_object(self, key: str, *, bucket: str | None = None, range: str | None = None) -> bytes:  # noqa: A002
        b = self._bucket(bucket)
        return await self._arun("GetObject", self._get(b, key, range), b, key)

    @staticmethod
    def _info(key: str, r: Mapping[str, Any]) -> ObjectInfo:
        return ObjectInfo(key=key, size=int(r.get("ContentLength") or r.get("Size") or 0), etag=r.get("ETag"),
                          last_modified=r.get("LastModified"), content_type=r.get("ContentType"),
                          metadata=dict(r.get("Metadata") or {}))

    def head_object(self, key: str, *, bucket: str | None = None) -> ObjectInfo:
        b = self._bucket(bucket)
        return self._info(key, self._run("HeadObject", lambda: self.client.head_object(Bucket=b, Key=key), b, key))

    async def ahead_object(self, key: str, *, bucket: str | None = None) -> ObjectInfo:
        b = self._bucket(bucket)
        r = await self._arun("HeadObject", lambda: self.client.head_object(Bucket=b, Key=key), b, key)
        return self._info(key, r)

    def _list_page(self, b: str, prefix: str, token: str | None, page_size: int) -> Callable[[], Any]:
        kw: dict[str, Any] = {"Bucket": b, "Prefix": prefix, "MaxKeys": page_size}
        if token:
            kw["ContinuationToken"] = token
        return lambda: self.client.list_objects_v2(**kw)

    @staticmethod
    def _page_items(r: Mapping[str, Any]) -> tuple[list[ObjectInfo], str | None]:
        items = [ObjectInfo(o["Key"], int(o.get("Size") or 0), o.get("ETag"), o.get("LastModified"))
                 for o in r.get("Contents", [])]
        return items, (r.get("NextContinuationToken") if r.get("IsTruncated") else None)

    def list_objects(self, prefix: str = "", *, bucket: str | None = None, page_size: int = 1000) -> list[ObjectInfo]:
        """Every object under ``prefix`` (follows continuation tokens; each page is retried alone)."""
        b = self._bucket(bucket)
        out: list[ObjectInfo] = []
        token: str | None = None
        while True:
            items, token = self._page_items(self._run("ListObjectsV2", self._list_page(b, prefix, token, page_size), b))
            out.extend(items)
            if token is None:
                return out

    async def alist_objects(self, prefix: str = "", *, bucket: str | None = None, page_size: int = 1000) -> list[ObjectInfo]:
        b = self._bucket(bucket)
        out: list[ObjectInfo] = []
        token: str | None = None
        while True:
            r = await self._arun("ListObjectsV2", self._list_page(b, prefix, token, page_size), b)
            items, token = self._page_items(r)
            out.extend(items)
            if token is None:
                return out

    def delete_object(self, key: str, *, bucket: str | None = None) -> None:
        b = self._bucket(bucket)
        self._run("DeleteObject", lambda: self.client.delete_object(Bucket=b, Key=key), b, key)

    async def adelete_object(self, key: str, *, bucket: str | None = None) -> None:
        b = self._bucket(bucket)
        await self._arun("DeleteObject", lambda: self.client.delete_object(Bucket=b, Key=key), b, key)

    def _delete_many(self, b: str, keys: Iterable[str]) -> Callable[[], Any]:
        objs = [{"Key": k} for k in keys]
        return lambda: self.client.delete_objects(Bucket=b, Delete={"Objects": objs, "Quiet": False})

    def delete_objects(self, keys: Iterable[str], *, bucket: str | None = None) -> list[str]:
        """Batch delete (up to 1000 keys per request); returns the keys the server deleted."""
        b = self._bucket(bucket)
        keys = list(keys)
        deleted: list[str] = []
        for i in range(0, len(keys), 1000):
            r = self._run("DeleteObjects", self._delete_many(b, keys[i : i + 1000]), b)
            deleted += [d["Key"] for d in r.get("Deleted", [])]
        return deleted

    async def adelete_objects(self, keys: Iterable[str], *, bucket: str | None = None) -> list[str]:
        b = self._bucket(bucket)
        keys = list(keys)
        deleted: list[str] = []
        for i in range(0, len(keys), 1000):
            r = await self._arun("DeleteObjects", self._delete_many(b, keys[i : i + 1000]), b)
            deleted += [d["Key"] for d in r.get("Deleted", [])]
        return deleted

    # -- multipart ----------------------------------------------------------------------------------

    def _parts(self, data: bytes | IO[bytes], part_size: int) -> Iterable[bytes]:
        if isinstance(data, bytes | bytearray | memoryview):
            view = bytes(data)
            for i in range(0, max(len(view), 1), part_size):
                yield view[i : i + part_size]
            return
        while True:
            chunk = data.read(part_size)
            if not chunk:
                return
            yield chunk

    def _step(self, op: _Op) -> Any:
        return self._run(op.name, op.fn, op.bucket, op.key)

    async def _astep(self, op: _Op) -> Any:
        return await self._arun(op.name, op.fn, op.bucket, op.key)

    def _upload_multipart(self, key: str, data: bytes | IO[bytes], *, bucket: str | None = None,
                          part_size: int | None = None, content_type: str | None = None) -> core.Plan[PutResult]:
        """Multipart upload: create, upload each part (each retried on its own), complete.

        On any failure the upload is aborted so no orphaned parts are billed, and the error is
        raised. Parts are ``part_size`` bytes (S3 minimum 5 MiB, except the last); the sync
        call reads and sends them one by one, the async one concurrently (queue-bounded).
        """
        b = self._bucket(bucket)
        size = part_size or self.part_size
        if size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be >= {MIN_PART_SIZE}")
        create_kw: dict[str, Any] = {"Bucket": b, "Key": key}
        if content_type:
            create_kw["ContentType"] = content_type
        created = yield _Op("CreateMultipartUpload", lambda: self.client.create_multipart_upload(**create_kw), b, key)
        upload_id = created["UploadId"]
        try:
            results = yield (
                _Op("UploadPart", lambda n=n, chunk=chunk: self.client.upload_part(
                    Bucket=b, Key=key, UploadId=upload_id, PartNumber=n, Body=chunk), b, key)
                for n, chunk in enumerate(self._parts(data, size), start=1)
            )
            parts = [{"PartNumber": n, "ETag": res["ETag"]} for n, res in enumerate(results, start=1)]
            done = yield _Op("CompleteMultipartUpload", lambda: self.client.complete_multipart_upload(
                Bucket=b, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}), b, key)
        except BaseException:
            try:
                yield _Op("AbortMultipartUpload", lambda: self.client.abort_multipart_upload(
                    Bucket=b, Key=key, UploadId=upload_id), b, key)
            except core.APIError as abort_error:
                log.warning("%s: abort of multipart upload failed: %s", self.name, abort_error)
            raise
        return PutResult(key, done.get("ETag"), done.get("VersionId"), parts=len(parts))

    upload_multipart, aupload_multipart = core.verb_pair(_upload_multipart, "_step", "_astep")

    def list_multipart_uploads(self, *, bucket: str | None = None) -> list[str]:
        """Upload ids still open in the bucket (an aborted or completed upload is gone)."""
        b = self._bucket(bucket)
        r = self._run("ListMultipartUploads", lambda: self.client.list_multipart_uploads(Bucket=b), b)
        return [u["UploadId"] for u in r.get("Uploads", [])]

    # -- presigned URLs -----------------------------------------------------------------------------

    def presigned_url(self, key: str, *, method: str = "get", bucket: str | None = None,
                      expires_in: int = 3600, content_type: str | None = None) -> str:
        """A URL that lets its holder GET or PUT this one object until it expires (signed
        locally: no request is sent). Treat it as a credential: it is never logged here."""
        b = self._bucket(bucket)
        ops = {"get": "get_object", "put": "put_object", "delete": "delete_object", "head": "head_object"}
        try:
            client_method = ops[method.lower()]
        except KeyError:
            raise ValueError(f"method must be one of {sorted(ops)}") from None
        if not 1 <= expires_in <= 604800:
            raise ValueError("expires_in must be 1..604800 seconds (SigV4's 7-day limit)")
        params: dict[str, Any] = {"Bucket": b, "Key": key}
        if content_type and client_method == "put_object":
            params["ContentType"] = content_type
        try:
            return self.client.generate_presigned_url(client_method, Params=params, ExpiresIn=expires_in)
        except Exception as exc:
            error, _, _ = self._map_error(exc, "Presign", b, key)
            raise error from exc

    async def apresigned_url(self, key: str, *, method: str = "get", bucket: str | None = None,
                             expires_in: int = 3600, content_type: str | None = None) -> str:
        return self.presigned_url(key, method=method, bucket=bucket, expires_in=expires_in,
                                  content_type=content_type)
