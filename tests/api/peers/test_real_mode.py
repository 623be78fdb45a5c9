"""The kit's real mode, pointed at real third-party servers through the usual variables.

Real mode is what a user gets with OPENAI_API_KEY / OLLAMA_HOST / ... set; here the "real
services" are llama-cpp-python (as llvm and vllm), kserve (as ovms) and moto (as S3), so the
[real] tests are proven to run, not just to skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ipfs_accelerate.api.testing.peers import (
    FAKE_ACCESS_KEY,
    FAKE_SECRET_KEY,
    MotoS3Server,
)

from ._shared import PeerAddress

pytestmark = [pytest.mark.peer, pytest.mark.timeout(300)]


def test_real_mode_runs_against_real_servers(
    tmp_path: Path, llama_server: PeerAddress, kserve_server: PeerAddress, moto_s3: MotoS3Server
) -> None:
    import boto3

    boto3.client(
        "s3", endpoint_url=moto_s3.endpoint_url, aws_access_key_id=FAKE_ACCESS_KEY,
        aws_secret_access_key=FAKE_SECRET_KEY, region_name="us-east-1",
    ).create_bucket(Bucket="real-mode-bucket")
    # The file name must not contain "real": ``-k real`` matches module names too, and would then
    # select every [mock] test as well (that made this test run ~240 tests instead of ~60).
    test_file = tmp_path / "test_peer_services.py"
    test_file.write_text(textwrap.dedent("""\
        from ipfs_accelerate.api.testing.kit import api_tests
        for name in ("llvm", "vllm", "ovms", "s3_kit"):
            globals().update(api_tests(name))
    """))
    env = {
        **os.environ,
        "LLVM_BASE_URL": llama_server.base_url, "IPFS_ACCEL_LLVM_MODEL": llama_server.alias,
        "VLLM_BASE_URL": llama_server.base_url, "IPFS_ACCEL_VLLM_MODEL": llama_server.alias,
        "OVMS_BASE_URL": kserve_server.base_url,
        "S3_KIT_BUCKET": "real-mode-bucket", "AWS_ENDPOINT_URL_S3": moto_s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-rs", "-k", "real",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        capture_output=True, text=True, timeout=280, cwd=tmp_path, env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    passed = int(out.split(" passed")[0].split()[-1])
    assert passed >= 30, out[-2000:]
    assert " deselected" in out  # the [mock] variants are not run again here
    assert "real mode: set" not in out  # nothing skipped for lack of configuration
    # what is skipped is skipped with its reason (ops that need the fake's own models)
    assert "is not exercised against the real service" in out
