"""What the fake TGI and TEI servers share, written once: a served model id, the server root as
``base_url`` (Hugging Face clients take it as the model URL), and HF's error body."""

from __future__ import annotations

from typing import Any, ClassVar

from ._server import HTTPError, Request
from .openai_server import FakeOpenAIServer

__all__ = ["FakeHFServer"]


class FakeHFServer(FakeOpenAIServer):
    default_model_id = "fake-org/tiny"
    #: what TGI's and TEI's routers both serve
    HF_ROUTES: ClassVar[list[tuple[str, str, str]]] = [
        ("POST", r"/", "compat"),
        ("POST", r"/tokenize", "tokenize"),
        ("GET", r"/info", "info"),
        ("GET", r"/health", "health"),
    ]

    def __init__(self, *args: Any, model_id: str | None = None, **kw: Any) -> None:
        model_id = model_id or self.default_model_id
        kw.setdefault("models", (model_id,))
        super().__init__(*args, **kw)
        self.model_id = model_id

    @property
    def base_url(self) -> str:
        """Root URL: InferenceClient(model=base_url); OpenAI-style routes are under ``/v1``."""
        return self.url

    #: the ``error_type`` the real server sends per status, and for any other (< 500, >= 500)
    error_types: ClassVar[dict[int, str]] = {}
    error_type_fallback: ClassVar[tuple[str, str]] = ("Validation", "Backend")

    def error_type(self, status: int) -> str:
        """The ``error_type`` the real server sends with this status."""
        return self.error_types.get(status, self.error_type_fallback[status >= 500])

    def not_found(self, req: Request) -> HTTPError:
        return HTTPError(404, "Not Found")  # axum's plain 404, as both routers send it

    def error_body(self, status: int, message: str, code: str | None = None) -> Any:
        return {"error": message, "error_type": self.error_type(status)}
