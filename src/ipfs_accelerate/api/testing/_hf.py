"""What the fake TGI and TEI servers share, written once: a served model id, the server root as
``base_url`` (Hugging Face clients take it as the model URL), and HF's error body."""

from __future__ import annotations

from typing import Any

from .openai_server import FakeOpenAIServer

__all__ = ["FakeHFServer"]


class FakeHFServer(FakeOpenAIServer):
    default_model_id = "fake-org/tiny"

    def __init__(self, *args: Any, model_id: str | None = None, **kw: Any) -> None:
        model_id = model_id or self.default_model_id
        kw.setdefault("models", (model_id,))
        super().__init__(*args, **kw)
        self.model_id = model_id

    @property
    def base_url(self) -> str:
        """Root URL: InferenceClient(model=base_url); OpenAI-style routes are under ``/v1``."""
        return self.url

    def error_type(self, status: int) -> str:
        """The ``error_type`` the real server sends with this status."""
        raise NotImplementedError

    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        return {"error": message, "error_type": self.error_type(status)}
