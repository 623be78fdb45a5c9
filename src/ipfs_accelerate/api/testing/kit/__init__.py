"""The API test kit: the tests every provider must pass, importable by generated test files.

A generated ``test/apis/test_<api>.py`` needs two lines::

    from ipfs_accelerate.api.testing.kit import api_tests
    globals().update(api_tests("ollama"))

``api_tests(name)`` returns ``{"TestAPI_<name>": <class>}``; plain pytest collects the class.
It holds, for that provider, sync and async:

1. connection — a cheap call (models / tags / health / list_buckets), connection refused,
   wrong key (401, not retried);
2. requests — the main operation, its result checked exactly against the deterministic fake;
   stats (requests, successes, latency p50/p95);
3. queue / concurrency — 24 requests through ``max_concurrency=4``: all delivered once, the
   limit never exceeded (measured by the server);
4. retry / backoff — 503, 503, 200 with a fake clock: the exact backoff schedule, one idempotency
   key across attempts, ``x-retry-count`` 0/1/2; exhaustion; Retry-After rows over real HTTP
   (``RETRY_AFTER_TABLE``: four rows per provider; the one retry loop they all share, httpx and
   botocore alike, is held to the full table by CORE's conformance test);
5. API-specific operations (``test_specific[...]``), and streaming where the API streams;

plus the fault matrix (``REQUEST_FAULTS`` / ``STREAM_FAULTS``: each fault either succeeds after
retries with exactly one delivered result or raises the right typed error; every fault sync,
one fault of each I/O kind async) and the secrets test.
``[mock]`` runs against the provider's local fake server; ``[real]`` runs the same test against
the real service when the provider's key/URL variables are set, and is skipped with that reason
otherwise. s3_kit's local server is :class:`FaultyS3Proxy` (fault injection in front of moto).
"""

from ._profiles import PROFILES, Op, Profile
from ._suite import APISuite, api_tests, write_report
from ._tables import OK, REQUEST_FAULTS, RETRY_AFTER_TABLE, STREAM_FAULTS
from ._target import Target, real_skip_reason, start_fake

__all__ = [
    "OK",
    "PROFILES",
    "REQUEST_FAULTS",
    "RETRY_AFTER_TABLE",
    "STREAM_FAULTS",
    "APISuite",
    "Op",
    "Profile",
    "Target",
    "api_tests",
    "real_skip_reason",
    "start_fake",
    "write_report",
]
