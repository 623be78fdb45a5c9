"""Launch the real ``llama-cpp-python[server]`` OpenAI-compatible server on a tiny GGUF.

This is the third-party peer that ``openai_api``, ``vllm`` and ``llvm`` are proven against: it
implements ``/v1/models``, chat, completions, embeddings and SSE streaming with its own code,
so a client bug that our own fake servers would share cannot hide here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from ._proc import ChildPeer, PeerError


def llama_cpp_skip_reason(python: str | None = None) -> str | None:
    """``None`` when the server can run, else a reason suitable for ``pytest.skip``."""
    if python is None or python == sys.executable:
        missing = [
            m
            for m in ("llama_cpp", "uvicorn", "sse_starlette", "starlette_context")
            if importlib.util.find_spec(m) is None
        ]
        if missing:
            return (
                f"llama-cpp-python[server] not installed (missing {', '.join(missing)}); "
                "run scripts/build_llama_cpp_wheel.sh"
            )
        return None
    try:
        rc = subprocess.run(
            [python, "-c", "import llama_cpp.server"], capture_output=True, timeout=60
        ).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"python {python} unusable for llama-cpp-python: {exc}"
    return None if rc == 0 else f"llama-cpp-python[server] not importable by {python}"


class LlamaCppServer(ChildPeer):
    """Context manager: ``with LlamaCppServer(model) as srv: srv.base_url`` -> ``.../v1``.

    Binds 127.0.0.1 on a free port, waits (bounded) for ``/v1/models``, and on exit stops and
    reaps the process. ``n_threads`` defaults to 1: the peer shares a small machine with tests.
    """

    name = "llama"

    def __init__(
        self,
        model_path: Path,
        *,
        embedding: bool = False,
        alias: str = "tiny",
        n_ctx: int = 512,
        n_threads: int = 1,
        python: str | None = None,
        startup_timeout: float = 60.0,
        log_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        super().__init__(startup_timeout=startup_timeout, log_dir=log_dir)
        self.model_path = Path(model_path)
        self.embedding = embedding
        self.alias = alias
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.python = python or sys.executable
        self.extra_args = extra_args

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (what ``OpenAI(base_url=...)`` and our providers take)."""
        return f"{self.root_url}/v1"

    def _argv(self) -> list[str]:
        return [
            self.python,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
            "--embedding",
            "true" if self.embedding else "false",
            *self.extra_args,
        ]

    def start(self) -> LlamaCppServer:
        reason = llama_cpp_skip_reason(None if self.python == sys.executable else self.python)
        if reason:
            raise PeerError(reason)

        def argv(port: int) -> list[str]:
            self.port = port
            return self._argv()

        return self._launch(argv, lambda port: f"http://127.0.0.1:{port}/v1/models")
