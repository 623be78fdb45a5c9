"""s3_kit: error mapping at the boundary, retries through the fault proxy, local validation."""

from __future__ import annotations

import asyncio

import pytest

from ipfs_accelerate.api.core import (
    APIConnectionError,
    FakeClock,
    RateLimitError,
    ServerError,
)
from ipfs_accelerate.api.providers.s3_kit import S3KitProvider
from ipfs_accelerate.api.testing.peers import moto_skip_reason

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(moto_skip_reason() is not None, reason=str(moto_skip_reason())),
]
SECRET = "sk-ipfsaccel-SECRET-s3-0123456789"


@pytest.fixture(scope="module")
def proxy():
    from ipfs_accelerate.api.testing.kit._s3_proxy import FaultyS3Proxy

    with FaultyS3Proxy() as srv:
        yield srv


@pytest.fixture
def s3(proxy):
    proxy.reset()
    p = S3KitProvider(access_key_id="AKIAS3KITTEST", secret_access_key=SECRET, endpoint_url=proxy.url,
                      bucket="unit-bucket", env={}, clock=FakeClock())
    if "unit-bucket" not in p.list_buckets():
        p.create_bucket()
    proxy.reset()
    yield p
    p.close()


def test_slowdown_honours_retry_after_and_reuses_the_idempotency_key(s3, proxy) -> None:
    proxy.inject("503;retry-after=2", path="/unit-bucket/k", method="PUT")
    s3.put_object("k", b"v")
    puts = [r for r in proxy.requests if r.method == "PUT"]
    assert [r.status for r in puts] == [503, 200] and s3.clock.sleeps == [2.0]
    assert len({r.idempotency_key for r in puts}) == 1
    assert [r.headers["x-retry-count"] for r in puts] == ["0", "1"]


def test_rate_limit_above_cap_gives_up_at_once(s3, proxy) -> None:
    proxy.inject("429;retry-after=600", path="/unit-bucket/k", method="PUT")
    with pytest.raises(RateLimitError):
        s3.put_object("k", b"v")
    assert s3.clock.sleeps == []


def test_errors_carry_code_and_never_the_secret(s3, proxy) -> None:
    proxy.inject("500", path="/unit-bucket/", times=None)
    with pytest.raises(ServerError) as info:
        s3.get_object("missing")
    err = info.value
    assert err.status == 500 and "InternalError" in str(err) and err.provider == "s3_kit"
    assert SECRET not in str(err) + repr(err) + (err.body or "") + str(err.headers)
    assert s3.stats()["s3_kit GetObject"].retries == 2


def test_connection_refused_is_a_connection_error() -> None:
    from ipfs_accelerate.api.testing.peers import free_port

    p = S3KitProvider(access_key_id="AKIA", secret_access_key=SECRET,
                      endpoint_url=f"http://127.0.0.1:{free_port()}", bucket="b", env={},
                      clock=FakeClock(), max_retries=1)
    with pytest.raises(APIConnectionError) as info:
        p.list_buckets()
    assert len(p.clock.sleeps) == 1 and SECRET not in str(info.value)


def test_credentials_from_env_and_repr_hides_them() -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "S3_KIT_BUCKET": "envb"}
    p = S3KitProvider(env=env)
    assert (p.endpoint_url, p.bucket) == ("http://127.0.0.1:9", "envb")
    assert SECRET not in repr(p) and "AKIAENV" not in repr(p)


def test_local_validation() -> None:
    p = S3KitProvider(access_key_id="a", secret_access_key="b", endpoint_url="http://127.0.0.1:9", env={})
    with pytest.raises(ValueError, match="no bucket"):
        p.put_object("k", b"v")
    with pytest.raises(ValueError, match="part_size"):
        S3KitProvider(env={}, part_size=1024)
    with pytest.raises(ValueError, match="method"):
        p.presigned_url("k", bucket="b", method="post")


def test_async_queue_limit_holds_for_threads_behind_it(proxy) -> None:
    proxy.reset()
    proxy.latency = 0.01
    p = S3KitProvider(access_key_id="AKIA", secret_access_key=SECRET, endpoint_url=proxy.url,
                      bucket="unit-bucket", env={}, max_concurrency=3)

    async def main():
        await asyncio.gather(*(p.aput_object(f"c/{i}", b"x") for i in range(12)))

    try:
        asyncio.run(main())
    finally:
        proxy.latency = 0.0
        p.close()
    assert 1 <= proxy.max_in_flight <= 3
    assert len([r for r in proxy.requests if r.method == "PUT"]) == 12
