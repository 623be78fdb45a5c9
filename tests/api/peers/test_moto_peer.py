"""s3_kit against moto's real S3 server (no proxy in between): SigV4, XML, multipart, presign."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from ipfs_accelerate.api.core import FakeClock, NotFoundError
from ipfs_accelerate.api.providers.s3_kit import S3KitProvider
from ipfs_accelerate.api.testing.peers import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, MotoS3Server

pytestmark = [pytest.mark.peer, pytest.mark.timeout(120)]
MiB = 1024 * 1024


@pytest.fixture
def s3(moto_s3: MotoS3Server) -> S3KitProvider:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    p = S3KitProvider(
        access_key_id=FAKE_ACCESS_KEY, secret_access_key=FAKE_SECRET_KEY,
        endpoint_url=moto_s3.endpoint_url, bucket="peer-bucket", env={},
    )
    p.create_bucket()
    yield p
    p.close()


def test_put_get_head_list_delete(s3: S3KitProvider) -> None:
    put = s3.put_object("dir/a.txt", "h\u00e9llo", content_type="text/plain", metadata={"k": "v"})
    assert put.etag == '"' + __import__("hashlib").md5("h\u00e9llo".encode()).hexdigest() + '"'
    assert s3.get_object("dir/a.txt") == "h\u00e9llo".encode()
    assert s3.get_object("dir/a.txt", range="bytes=1-2") == "h\u00e9llo".encode()[1:3]
    info = s3.head_object("dir/a.txt")
    assert (info.size, info.content_type, info.metadata) == (6, "text/plain", {"k": "v"})
    for i in range(3):
        s3.put_object(f"dir/{i}", b"x" * i)
    listed = s3.list_objects("dir/", page_size=2)
    assert [o.key for o in listed] == ["dir/0", "dir/1", "dir/2", "dir/a.txt"]
    assert s3.delete_objects([o.key for o in listed]) and s3.list_objects("dir/") == []
    with pytest.raises(NotFoundError) as info_err:
        s3.get_object("dir/a.txt")
    assert "NoSuchKey" in str(info_err.value) and info_err.value.request_id
    assert s3.stats()["s3_kit GetObject"].failures == 1


def test_multipart_sync_and_async(s3: S3KitProvider) -> None:
    data = bytes(range(256)) * (11 * MiB // 256 + 3)  # three parts of 5 MiB, 5 MiB, ~1 MiB
    r = s3.upload_multipart("big", data, part_size=5 * MiB)
    assert r.parts == 3 and r.etag.strip('"').endswith("-3")
    assert s3.get_object("big") == data

    async def main() -> bytes:
        r2 = await s3.aupload_multipart("big2", data, part_size=5 * MiB)
        assert r2.parts == 3
        return await s3.aget_object("big2")

    assert asyncio.run(main()) == data
    assert s3.list_multipart_uploads() == []  # all completed


def test_presigned_urls_work_for_plain_http_clients(s3: S3KitProvider) -> None:
    put_url = s3.presigned_url("shared.bin", method="put", expires_in=120)
    assert httpx.put(put_url, content=b"\x00\x01", trust_env=False).status_code == 200
    get_url = s3.presigned_url("shared.bin", expires_in=120)
    assert httpx.get(get_url, trust_env=False).content == b"\x00\x01"
    assert FAKE_SECRET_KEY not in get_url and "X-Amz-Signature=" in get_url
    with pytest.raises(ValueError):
        s3.presigned_url("x", expires_in=8 * 24 * 3600)


def test_missing_bucket_is_typed_and_not_retried(moto_s3: MotoS3Server) -> None:
    clock = FakeClock()
    p = S3KitProvider(access_key_id=FAKE_ACCESS_KEY, secret_access_key=FAKE_SECRET_KEY,
                      endpoint_url=moto_s3.endpoint_url, bucket="no-such-bucket", env={}, clock=clock)
    with pytest.raises(NotFoundError) as info:
        p.put_object("k", b"v")
    assert "NoSuchBucket" in str(info.value) and clock.sleeps == []
    assert FAKE_SECRET_KEY not in repr(info.value) + str(info.value) + (info.value.body or "")
    p.close()


def test_multipart_failure_aborts_the_upload(s3: S3KitProvider, moto_s3: MotoS3Server) -> None:
    class Exploding:
        """A file object that fails after the first part has been uploaded."""

        def __init__(self) -> None:
            self.calls = 0

        def read(self, n: int) -> bytes:
            self.calls += 1
            if self.calls > 1:
                raise OSError("disk went away")
            return b"a" * n

    with pytest.raises(OSError, match="disk went away"):
        s3.upload_multipart("doomed", Exploding(), part_size=5 * MiB)
    assert s3.list_multipart_uploads() == []  # aborted: no orphaned parts
    assert s3.stats()["s3_kit AbortMultipartUpload"].successes == 1
