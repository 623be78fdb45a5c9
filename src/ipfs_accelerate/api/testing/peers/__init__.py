"""Real third-party servers ("peers") started by the tests themselves.

Our own fake servers (``api.testing``) share our reading of each protocol; a peer does not.
Each launcher is a context manager that binds 127.0.0.1 on a free port, waits for readiness
with a bound, and stops and reaps the server on exit:

* :class:`LlamaCppServer` - ``llama-cpp-python[server]`` (OpenAI-compatible) on a tiny GGUF
  written offline by :func:`write_tiny_gguf`; judges ``openai_api``, ``vllm`` and ``llvm``.
* :class:`MotoS3Server` - moto's S3 server (SigV4, multipart, presigned URLs); judges ``s3_kit``.
* :class:`KServeServer` - kserve's v2 ``ModelServer`` (Open Inference Protocol); judges ``ovms``.

Each has a ``*_skip_reason()`` that says why it cannot run here (``None`` when it can), so the
peer tier skips with a reason instead of silently passing. Install: ``scripts/setup_api_peers.sh``.
"""

from ._proc import PeerError, free_port
from .gguf_model import TinyGGUF, write_tiny_gguf
from .kserve_server import TINY_B, TINY_W, KServeServer, kserve_python, kserve_skip_reason
from .llama_cpp_server import LlamaCppServer, llama_cpp_skip_reason
from .moto_s3 import (
    FAKE_ACCESS_KEY,
    FAKE_SECRET_KEY,
    REGION,
    MotoS3Server,
    moto_skip_reason,
)

__all__ = [
    "FAKE_ACCESS_KEY",
    "FAKE_SECRET_KEY",
    "REGION",
    "TINY_B",
    "TINY_W",
    "KServeServer",
    "LlamaCppServer",
    "MotoS3Server",
    "PeerError",
    "TinyGGUF",
    "free_port",
    "kserve_python",
    "kserve_skip_reason",
    "llama_cpp_skip_reason",
    "moto_skip_reason",
    "write_tiny_gguf",
]
