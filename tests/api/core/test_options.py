"""The policy keywords are declared once (core.ClientOptions / HTTPOptions): every client takes
the same ones, builds its queue the same way, and names a misspelt keyword."""

from __future__ import annotations

import pytest

from ipfs_accelerate.api import core
from ipfs_accelerate.api.providers.openai_api import OpenAIProvider
from ipfs_accelerate.api.providers.s3_kit import S3KitProvider


def test_a_misspelt_option_is_a_type_error_naming_it_and_the_client() -> None:
    with pytest.raises(TypeError, match=r"OpenAIProvider: unknown option\(s\) \['timout'\]"):
        OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_key="k", env={}, timout=3)
    with pytest.raises(TypeError, match=r"S3KitProvider: unknown option\(s\) \['transport'\]"):
        S3KitProvider(endpoint_url="http://127.0.0.1:9", env={}, transport=object())


def test_httpx_and_s3_clients_build_the_same_policy_from_the_same_keywords() -> None:
    clock = core.FakeClock()
    kw = {"max_concurrency": 3, "max_waiting": 5, "aging_interval": None, "max_retries": 7,
          "timeout": 4.0, "clock": clock}
    http = OpenAIProvider(base_url="http://127.0.0.1:9/v1", api_key="k", env={}, **kw).client
    s3 = S3KitProvider(endpoint_url="http://127.0.0.1:9", env={}, **kw)
    for client in (http, s3):
        assert client.queue.config == core.QueueConfig(3, 5, None)
        assert client.retry_policy.max_retries == 7
        assert client.timeout == core.Timeout.of(4.0)
        assert client.clock is clock
    shared = core.RequestQueue(core.QueueConfig(2), clock)
    assert OpenAIProvider(base_url="http://x/v1", api_key="k", env={}, queue=shared).client.queue is shared
    assert S3KitProvider(env={}, queue=shared).queue is shared
