"""Error tree and factory, the provider registry, env configuration, stats percentiles."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

import ipfs_accelerate.api as api
from ipfs_accelerate.api import core
from ipfs_accelerate.api.core import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    StreamError,
    make_status_error,
    percentile,
)
from ipfs_accelerate.api.providers import PROVIDER_NAMES, PROVIDERS, get_provider_class


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (529, ServerError),
        (418, APIStatusError),
        (408, APIStatusError),
    ],
)
def test_factory_maps_status_to_class(code: int, cls: type) -> None:
    err = make_status_error(code, f"HTTP {code}: nope", request_id="req_9", body="x" * 2000)
    assert type(err) is cls and err.status == code == err.status_code
    assert len(err.body) == 500 and "request_id=req_9" in str(err)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and back.status == code and str(back) == str(err)


def test_tree() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)
    for cls in (
        APIConnectionError,
        APIStatusError,
        StreamError,
        CircuitOpenError,
        QueueFullError,
        ResponseDecodeError,
    ):
        assert issubclass(cls, APIError)
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        ConflictError,
        RateLimitError,
        ServerError,
    ):
        assert issubclass(cls, APIStatusError)
    assert not issubclass(StreamError, APIConnectionError)
    doc = core._errors.__doc__
    for cls in (
        APIError,
        APITimeoutError,
        ServerError,
        CircuitOpenError,
        QueueFullError,
        StreamError,
    ):
        assert cls.__name__ in doc


def test_exports_complete_and_sorted() -> None:
    assert core.__all__ == sorted(core.__all__)
    assert api.__all__ == sorted(api.__all__)
    for name in core.__all__:
        assert hasattr(core, name), name
    for name in api.__all__:
        assert getattr(api, name) is not None


def test_registry_data() -> None:
    assert PROVIDER_NAMES == (
        "openai_api",
        "claude",
        "groq",
        "ollama",
        "hf_tgi",
        "hf_tei",
        "gemini",
        "vllm",
        "ovms",
        "opea",
        "s3_kit",
        "llvm",
    )
    for name, info in PROVIDERS.items():
        assert info.name == name and info.module.endswith(f".providers.{name}")
        assert info.default_base_url.startswith("http") and info.family
        assert info.real_mode_env, name
    assert PROVIDERS["gemini"].key_env == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert (
        PROVIDERS["groq"].family == PROVIDERS["vllm"].family == PROVIDERS["llvm"].family == "openai"
    )
    assert PROVIDERS["ollama"].streaming == "ndjson"


def test_registry_import_is_light() -> None:
    code = (
        "import sys; import ipfs_accelerate.api.providers as p; import ipfs_accelerate.api; "
        "assert len(p.PROVIDER_NAMES) == 12; "
        "heavy = [m for m in ('httpx', 'openai', 'anthropic', 'boto3', 'ipfs_accelerate.api.core') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["openai_api", "claude", "groq", "vllm", "llvm", "gemini"])
def test_my_providers_match_registry(name: str) -> None:
    cls = get_provider_class(name)
    assert cls.__name__ == PROVIDERS[name].class_name and cls.name == name


def test_env_configuration() -> None:
    OpenAI = get_provider_class("openai_api")
    p = OpenAI(
        env={"OPENAI_API_KEY": "sk-env-1, sk-env-2", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1/"}
    )
    assert p.base_url == "http://127.0.0.1:9/v1" and len(p.client.keys) == 2
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        OpenAI(env={})
    assert (
        OpenAI(api_key="sk-arg", env={"OPENAI_API_KEY": "sk-env"}).client.keys.secrets[0].reveal()
        == "sk-arg"
    )
    Gemini = get_provider_class("gemini")
    assert Gemini(env={"GOOGLE_API_KEY": "g-2"}).client.keys.secrets[0].reveal() == "g-2"
    assert (
        Gemini(env={"GEMINI_API_KEY": "g-1", "GOOGLE_API_KEY": "g-2"})
        .client.keys.secrets[0]
        .reveal()
        == "g-1"
    )
    Groq = get_provider_class("groq")
    assert Groq(api_key="k", env={"GROQ_BASE_URL": "http://h:1"}).base_url == "http://h:1/openai/v1"
    assert Groq(api_key="k", env={}).base_url == "https://api.groq.com/openai/v1"
    VLLM = get_provider_class("vllm")
    v = VLLM(env={"VLLM_BASE_URL": "http://h:8000/v1"})
    assert v.client.keys is None and v.base_url == "http://h:8000/v1"
    Claude = get_provider_class("claude")
    assert (
        Claude(env={"ANTHROPIC_API_KEY": "a", "ANTHROPIC_BASE_URL": "http://h:2"}).base_url
        == "http://h:2"
    )
    LLVM = get_provider_class("llvm")
    assert LLVM(env={}).base_url == "http://127.0.0.1:8080/v1"


def test_percentile() -> None:
    assert percentile([], 50) is None
    v = sorted(float(i) for i in range(1, 101))
    assert (percentile(v, 50), percentile(v, 95), percentile(v, 100)) == (50.0, 95.0, 100.0)
    assert percentile([3.0], 95) == 3.0
