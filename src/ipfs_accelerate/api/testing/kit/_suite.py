"""The test class every provider gets: the spec's five kinds of API test, sync and async,
plus the fault matrix, the Retry-After table and the secrets check.

:func:`api_tests` builds a subclass of :class:`APISuite` bound to one provider's
:class:`~._profiles.Profile`; plain pytest collects it from any module that puts it in its
globals. Tests whose fixture is ``target`` run twice: ``[mock]`` against the provider's local
fake server and ``[real]`` against the real service when its environment is set (skipped with
that reason otherwise). Tests on ``mock`` need fault injection or server-side counting, which
only the fake can give. Every test is bounded by ``pytest-timeout`` and by client timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from ipfs_accelerate.api import core
from ipfs_accelerate.api.core import FakeClock, Timeout
from ipfs_accelerate.api.providers import get_provider_class
from ipfs_accelerate.api.testing.peers import free_port

from ._profiles import PROFILES, Op, Profile
from ._tables import (
    GIVE_UP,
    OK,
    READ_TIMEOUT,
    REQUEST_FAULTS,
    RETRY_AFTER_TABLE,
    START_WALL,
    STREAM_FAULTS,
    expected_sleep,
)
from ._target import KEY_PREFIX, NoJitter, Target, iter_texts, new_key, real_skip_reason, start_fake

__all__ = ["APISuite", "api_tests"]

T = TypeVar("T")
TEST_TIMEOUT = 60  # seconds; every kit test is bounded
# Rows every provider runs over real HTTP: a value, a give-up, an HTTP date, milliseconds.
# CORE's conformance test runs the full table over every httpx provider with a scripted
# transport; s3_kit's botocore classifier sits on the same loop, so these rows suffice for it too.
CORE_ROWS = ("1.5", "121", "http-date-future", "ms-250")
ASYNC_ROWS = ("1.5", "http-date-future")
# The async driver performs the same decisions as the sync one; these faults exercise each kind
# of I/O it does differently (status, reset, body cut, bad JSON, stream cut, error event).
ASYNC_FAULTS = frozenset(
    {"503", "reset", "truncated-body", "malformed-json", "truncated", "error-event"}
)
# A hang or a stall must be cut by the read timeout; every other fault runs with a roomy one,
# so that a slow (loaded) machine never turns a normal answer into a timeout and a retry.
# Deadline tests (issue 18): a trickling server must not keep a 1 s call alive; a stream stalled
# after its first event fails at GAP. The tight bound of the issue (a 1 s call fails within 1.5 s,
# a gap within GAP + 2 s) is bench/bench_api_deadline.py's, run alone on an idle machine; these
# tests run beside a loaded suite, so they check the typed error, the named limit and that the
# deadline is never early, with a slack that only a loaded scheduler needs: the trickled body
# takes ~1 minute and the stall 10 s, so failing within SLACK_BOUND still proves the limit cut it.
DEADLINE_BOUND = 1.5  # the bound, held by the bench
SLACK_BOUND = 6.0
GAP = 0.5
SHORT_TIMEOUT = Timeout(connect=2.0, read=READ_TIMEOUT, write=5.0, pool=10.0, total=30.0)
FAULT_TIMEOUT = Timeout(connect=2.0, read=10.0, write=10.0, pool=10.0, total=30.0)


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body on a fresh event loop (no pytest-asyncio needed)."""
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def _call(target: Target, op: Op, **kw: Any) -> Any:
    with target.make(**kw) as p:
        return op.call(p)


def _acall(target: Target, op: Op, **kw: Any) -> Any:
    async def main() -> Any:
        async with target.make(**kw) as p:
            return await op.acall(p)

    return run(main)


def _with_provider(target: Target, fn: Callable[[Any], T], **kw: Any) -> T:
    with target.make(**kw) as p:
        return fn(p)


def _error_name(exc: BaseException) -> str:
    return type(exc).__name__


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return OK, fn()
    except core.APIError as exc:
        return _error_name(exc), exc


def _timed(target: Target, op: Op, timeout: Any, how: str) -> tuple[str, Any, float]:
    """Build the provider, then time only the call (outcome, value, seconds)."""
    if how == "sync":
        with target.make(timeout=timeout) as p:
            started = time.perf_counter()
            outcome, value = _outcome(lambda: op.call(p))
            return outcome, value, time.perf_counter() - started

    async def main() -> tuple[str, Any, float]:
        async with target.make(timeout=timeout) as p:
            started = time.perf_counter()
            try:
                outcome, value = OK, await op.acall(p)
            except core.APIError as exc:
                outcome, value = _error_name(exc), exc
            return outcome, value, time.perf_counter() - started

    return run(main)


def _is_a(exc: Any, name: str) -> bool:
    return any(c.__name__ == name for c in type(exc).__mro__)


class APISuite:
    """Base class of every provider's API tests (not collected itself).

    A subclass that sets ``profile`` is a complete, collected test class: the generated
    ``test/apis/test_<name>.py`` is just ``class TestAPI_<name>(APISuite): profile =
    PROFILES["<name>"]``, and the tests whose parameters depend on the profile (its specific
    operations, its fault rows, its Retry-After rows; no stream tests where it does not stream)
    are added here, when the class is made.
    """

    __test__ = False
    profile: ClassVar[Profile]
    key: ClassVar[str]
    pytestmark: ClassVar[list[Any]] = [pytest.mark.timeout(TEST_TIMEOUT)]

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        profile = cls.__dict__.get("profile")
        if profile is None:
            return
        cls.__test__ = True
        cls.key = new_key()
        for attrs in (_specific_tests(profile), _fault_tests(profile), _retry_after_tests(profile)):
            for name, fn in attrs.items():
                setattr(cls, name, fn)
        if profile.stream is None:
            cls.test_stream = None  # type: ignore[assignment]
            cls.test_stream_async = None  # type: ignore[assignment]

    # -- fixtures ------------------------------------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def fake(cls) -> Iterator[Any]:
        srv = start_fake(cls.profile, cls.key)
        try:
            yield srv
        finally:
            srv.stop()

    @pytest.fixture
    def mock(self, fake: Any) -> Target:
        fake.reset()
        fake.latency = 0.0
        return Target(self.profile, "mock", fake, self.key)

    @pytest.fixture(params=["mock", "real"])
    def target(self, request: pytest.FixtureRequest) -> Target:
        if request.param == "real":
            reason = real_skip_reason(self.profile.name)
            if reason:
                pytest.skip(reason)
            return Target(self.profile, "real", None, None)
        return request.getfixturevalue("mock")

    # -- 1. connection --------------------------------------------------------------------------

    def test_connection(self, target: Target) -> None:
        op = self.profile.connect
        op.check(_call(target, op), target.strict)

    def test_connection_async(self, target: Target) -> None:
        op = self.profile.connect
        op.check(_acall(target, op), target.strict)

    def _refused(self, mock: Target, call: Callable[..., Any]) -> None:
        clock = FakeClock()
        with pytest.raises(core.APIConnectionError) as info:
            call(mock, self.profile.request, base_url=f"http://127.0.0.1:{free_port()}",
                 clock=clock, rng=NoJitter(), max_retries=1)
        assert not isinstance(info.value, core.APITimeoutError)
        assert len(clock.sleeps) == 1  # retried once, then gave up

    def test_connection_refused(self, mock: Target) -> None:
        self._refused(mock, _call)

    def test_connection_refused_async(self, mock: Target) -> None:
        self._refused(mock, _acall)

    def _auth(self, mock: Target, call: Callable[..., Any]) -> None:
        if not self.profile.auth_enforced:
            pytest.skip(f"{self.profile.name}'s local server does not check credentials")
        op = self.profile.request
        error_name, status = self.profile.auth_error
        with pytest.raises(core.APIStatusError) as info:
            call(mock, op, api_key=KEY_PREFIX + "WRONG-0000")
        assert _is_a(info.value, error_name) and info.value.status == status, repr(info.value)
        assert len(mock.records(op.path, op.method)) == 1  # a 401 with one key is not retried

    def test_auth_rejected(self, mock: Target) -> None:
        self._auth(mock, _call)

    def test_auth_rejected_async(self, mock: Target) -> None:
        self._auth(mock, _acall)

    # -- 2. requests ----------------------------------------------------------------------------

    def _real_request_op(self, target: Target) -> Op:
        """The request op, or the connection probe in real mode when the request op needs the
        fake's models (e.g. ovms' add_sub)."""
        op = self.profile.request
        return self.profile.connect if target.mode == "real" and not op.real else op

    def _request(self, target: Target, call: Callable[..., Any]) -> None:
        op = self._real_request_op(target)
        op.check(call(target, op), target.strict)
        if target.mode == "mock":
            recs = target.records(op.path, op.method)
            assert sum(r.delivered for r in recs) == 1 and len(recs) == 1

    def test_request(self, target: Target) -> None:
        self._request(target, _call)

    def test_request_async(self, target: Target) -> None:
        self._request(target, _acall)

    def test_request_stats(self, mock: Target) -> None:
        op = self.profile.request

        def body(p: Any) -> Any:
            op.call(p)
            op.call(p)
            return p.stats()

        stats = _with_provider(mock, body)
        main = [s for s in stats.values() if s.requests >= 2]
        assert main, stats
        s = main[0]
        assert (s.successes, s.failures, s.retries) == (s.requests, 0, 0)
        assert s.latency_p50 is not None and s.latency_p95 is not None
        assert 0 <= s.latency_p50 <= s.latency_p95

    # -- 3. queue and concurrency ---------------------------------------------------------------

    def _concurrency(self, target: Target, *, use_async: bool) -> None:
        op = self._real_request_op(target)
        n, limit = (24, 4) if target.mode == "mock" else (6, 2)
        if target.server is not None:
            target.server.latency = 0.005  # requests overlap, so the limit is what bounds them
        if use_async:

            async def main() -> list[Any]:
                async with target.make(max_concurrency=limit) as p:
                    return list(await asyncio.gather(*(op.acall(p) for _ in range(n))))

            results = run(main)
        else:
            with target.make(max_concurrency=limit) as p, ThreadPoolExecutor(16) as pool:
                results = list(pool.map(lambda _: op.call(p), range(n)))
        assert len(results) == n
        for r in results:
            op.check(r, target.strict)
        if target.server is not None:
            recs = target.records(op.path, op.method)
            assert len(recs) == n and sum(r.delivered for r in recs) == n
            keys = [r.idempotency_key for r in recs]
            if op.method != "GET":
                assert len(set(keys)) == n  # one logical request each, none duplicated
            assert 2 <= target.server.max_in_flight <= limit, target.server.max_in_flight

    def test_concurrency(self, target: Target) -> None:
        self._concurrency(target, use_async=False)

    def test_concurrency_async(self, target: Target) -> None:
        self._concurrency(target, use_async=True)

    # -- 4. retry and backoff ---------------------------------------------------------------------

    def _policy(self) -> Any:
        return get_provider_class(self.profile.name).retry_policy

    def _retry(self, mock: Target, call: Callable[..., Any]) -> None:
        op = self.profile.request
        mock.inject("503", path=op.path, method=op.method, times=2)
        clock = FakeClock()
        result = call(mock, op, clock=clock, rng=NoJitter())
        op.check(result, True)
        policy = self._policy()
        assert clock.sleeps == [pytest.approx(policy.backoff(0, 0.0)), pytest.approx(policy.backoff(1, 0.0))]
        recs = mock.records(op.path, op.method)
        assert [r.status for r in recs] == [503, 503, 200]
        assert sum(r.delivered for r in recs) == 1
        keys = {r.idempotency_key for r in recs}
        if op.method != "GET":
            assert len(keys) == 1 and None not in keys  # one key across all retries
        assert [r.headers.get("x-retry-count") for r in recs] == ["0", "1", "2"]

    def test_retry_backoff(self, mock: Target) -> None:
        self._retry(mock, _call)

    def test_retry_backoff_async(self, mock: Target) -> None:
        self._retry(mock, _acall)

    def _exhausted(self, mock: Target, call: Callable[..., Any]) -> None:
        op = self.profile.request
        mock.inject("500", path=op.path, method=op.method, times=None)
        clock = FakeClock()
        with pytest.raises(core.ServerError) as info:
            call(mock, op, clock=clock, rng=NoJitter())
        policy = self._policy()
        assert info.value.status == 500
        assert len(clock.sleeps) == policy.max_retries
        assert clock.sleeps == sorted(clock.sleeps)  # exponential, never shrinking
        recs = mock.records(op.path, op.method)
        assert len(recs) == policy.max_retries + 1 and not any(r.delivered for r in recs)

    def test_retry_exhausted(self, mock: Target) -> None:
        self._exhausted(mock, _call)

    def test_retry_exhausted_async(self, mock: Target) -> None:
        self._exhausted(mock, _acall)

    def _retry_after(self, mock: Target, headers: dict[str, str], row: Any, mode: str) -> None:
        from ipfs_accelerate.api.testing import Fault

        op = self.profile.request
        fault = Fault.http(
            429, retry_after=headers.get("retry-after"), retry_after_ms=headers.get("retry-after-ms")
        )
        mock.inject(fault, path=op.path, method=op.method)
        clock = FakeClock(wall=START_WALL)
        expected = expected_sleep(self._policy(), row)
        call = _call if mode == "sync" else _acall
        if expected == GIVE_UP:
            with pytest.raises(core.RateLimitError):
                call(mock, op, clock=clock, rng=NoJitter())
            assert clock.sleeps == [] and len(mock.records(op.path, op.method)) == 1
        else:
            op.check(call(mock, op, clock=clock, rng=NoJitter()), True)
            assert clock.sleeps == [pytest.approx(expected)]  # waited exactly that: never early
            assert len(mock.records(op.path, op.method)) == 2

    # -- 5. API-specific --------------------------------------------------------------------------

    def _specific(self, target: Target, name: str, call: Callable[..., Any]) -> None:
        op = next(o for o in self._specific_ops() if o.name == name)
        if target.mode == "real" and not op.real:
            pytest.skip(f"{name} is not exercised against the real service")
        op.check(call(target, op), target.strict)

    def _specific_ops(self) -> tuple[Op, ...]:
        return self.profile.specific

    # (test_specific / test_specific_async are added per profile by api_tests, parametrized
    # over the profile's operation names)

    # -- streaming ----------------------------------------------------------------------------------

    def test_stream(self, target: Target) -> None:
        op = self.profile.stream
        assert op is not None
        op.check(_call(target, op), target.strict)

    def test_stream_async(self, target: Target) -> None:
        op = self.profile.stream
        assert op is not None
        op.check(_acall(target, op), target.strict)

    # -- fault matrix -------------------------------------------------------------------------------

    def _fault(self, mock: Target, op: Op, spec: str, expected: str, attempts: int,
               call: Callable[..., Any], method: str | None = None) -> None:
        method = method or op.method
        mock.inject(spec, path=op.path, method=method)
        clock = FakeClock()
        short = spec.startswith(("hang", "stall", "slow"))
        timeout = SHORT_TIMEOUT if short else FAULT_TIMEOUT
        outcome, value = _outcome(lambda: call(mock, op, clock=clock, rng=NoJitter(), timeout=timeout))
        recs = mock.records(op.path, method)
        if expected == OK:
            assert outcome == OK, f"{spec}: expected success after retries, got {value!r}"
            op.check(value, True)
            assert sum(r.delivered for r in recs) == 1, [(r.status, r.fault, r.delivered) for r in recs]
        else:
            assert outcome != OK and _is_a(value, expected), f"{spec}: expected {expected}, got {outcome}: {value!r}"
            assert sum(r.delivered for r in recs) <= (0 if op.stream else 1)
        assert recs and recs[0].fault, "the fault was not applied"
        assert len(recs) == attempts, [(r.status, r.fault) for r in recs]

    def _fault_case(self, name: str) -> tuple[Op, str, str, int, str | None]:
        if name in REQUEST_FAULTS:
            spec, expected, attempts = REQUEST_FAULTS[name]
            op = self.profile.request
        else:
            spec, expected, attempts = STREAM_FAULTS[name]
            assert self.profile.stream is not None
            op = self.profile.stream
        override = self.profile.fault_overrides.get(name)
        if override:
            expected, _, n = override.partition(":")
            attempts = int(n) if n else attempts
        return op, spec, expected, attempts, self.profile.fault_methods.get(name)

    # (test_fault / test_fault_async are added per profile by api_tests)

    # -- deadlines: a timeout bounds the whole call, body and stream included -----------------------

    def test_deadline_trickle(self, mock: Target) -> None:
        """A server sending one byte every 0.2 s cannot keep a call alive: ``timeout=1`` and
        ``Timeout(total=1)`` each fail with the typed total-timeout error, not before 1 s and well
        before the trickle ends (SLACK_BOUND; the bench holds 1.5 s), sync and async, streaming
        and not. The cases run concurrently (the bound is per call)."""
        ops = [self.profile.request] + ([self.profile.stream] if self.profile.stream else [])
        forms: list[Any] = [1.0, Timeout(total=1.0)]
        cases = [(op, form, how) for op in ops for form in forms for how in ("sync", "async")]
        for op in ops:
            mock.inject("trickle;seconds=0.2", path=op.path, times=None)
        try:
            with ThreadPoolExecutor(len(cases)) as pool:
                results = list(pool.map(lambda c: _timed(mock, *c), cases))
        finally:
            mock.server.clear_faults()  # type: ignore[union-attr]
        for (op, form, how), (outcome, value, seconds) in zip(cases, results, strict=True):
            where = f"{op.name} {how} timeout={form!r}"
            assert _is_a(value, "APITimeoutError"), f"{where}: expected a timeout, got {outcome}: {value!r}"
            assert value.limit == "total", f"{where}: {value!r} names limit {value.limit!r}"
            assert 1.0 <= value.elapsed < SLACK_BOUND, f"{where}: the call ran {value.elapsed:.2f}s"
            if self.profile.request_is_one_call or op is not self.profile.request:
                assert seconds < SLACK_BOUND, f"{where}: failed after {seconds:.2f}s, bound {SLACK_BOUND}s"

    def test_stream_gap(self, mock: Target) -> None:
        """A stream that stalls after its first event fails at the gap limit (sync and async)."""
        if self.profile.stream is None:
            pytest.skip(f"{self.profile.name} has no stream operation")
        op = self.profile.stream
        limits = Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0, total=30.0, first_event=20.0, gap=GAP)
        mock.inject("stall;after=1;seconds=10", path=op.path, times=2)
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda how: _timed(mock, op, limits, how), ("sync", "async")))
        for how, (outcome, value, seconds) in zip(("sync", "async"), results, strict=True):
            assert _is_a(value, "StreamTimeoutError"), f"{how}: expected a gap timeout, got {outcome}: {value!r}"
            assert value.limit == "gap", f"{how}: {value!r}"
            assert GAP <= value.elapsed < SLACK_BOUND, f"{how}: gap fired after {value.elapsed:.2f}s"
            assert seconds < SLACK_BOUND, f"{how}: the call took {seconds:.2f}s"

    # -- secrets --------------------------------------------------------------------------------------

    def test_secrets_never_leak(self, mock: Target, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        """Success, stream, auth failure, an error body echoing the key, exhausted retries and a
        refused connection: the key appears in no log line, error, result or report."""
        from ipfs_accelerate.api.testing import Fault

        key = self.key
        wrong = KEY_PREFIX + "WRONG-" + new_key()[-8:]
        op = self.profile.request
        texts: list[str] = []
        errors: list[BaseException] = []
        caplog.set_level(logging.DEBUG)
        for name in ("httpx", "httpcore", "botocore", "urllib3", "ipfs_accelerate"):
            caplog.set_level(logging.DEBUG, logger=name)
        with mock.make(clock=FakeClock(), rng=NoJitter()) as p:
            results: list[Any] = [op.call(p)]
            if self.profile.stream is not None:
                results.append(self.profile.stream.call(p))
            # A server that echoes the key back in an error body (only possible if it travels).
            echo = f"upstream rejected key {key}" if self.profile.secret_travels else "upstream rejected key"
            mock.inject(Fault.http(500, message=echo), path=op.path, method=op.method, times=None)
            with contextlib.suppress(core.APIError) as _:
                try:
                    op.call(p)
                except core.APIError as exc:
                    errors.append(exc)
            mock.server.clear_faults()  # type: ignore[union-attr]
            stats = {k: v.to_dict() for k, v in p.stats().items()}
            texts += [repr(p), str(p)]
        # A wrong key, and a server that echoes it back in its 401 body.
        echo = f"invalid api key {wrong}" if self.profile.secret_travels else "invalid api key"
        mock.inject(Fault.http(401, message=echo), path=op.path, method=op.method)
        try:
            _call(mock, op, api_key=wrong)
        except core.APIError as exc:
            errors.append(exc)
        try:
            _call(mock, op, base_url=f"http://127.0.0.1:{free_port()}", max_retries=0)
        except core.APIError as exc:
            errors.append(exc)
        assert len(errors) == 3, errors
        report = write_report(tmp_path / "report.json", self.profile.name, results, errors, stats)
        texts.append(report.read_text())
        for rec in caplog.records:
            texts.append(rec.getMessage())
            texts.append(logging.Formatter("%(message)s %(exc_info)s").format(rec))
        import traceback

        for exc in errors:
            texts.extend(iter_texts(exc))
            texts.append("".join(traceback.format_exception(exc)))
        for r in results:
            texts.extend(iter_texts(r))
        leaks = [t for t in texts if key in t or wrong in t]
        assert not leaks, f"secret leaked in {len(leaks)} place(s): {leaks[0][:300]!r}"
        assert any("upstream rejected key" in t for t in texts)  # the echo was seen, scrubbed


def write_report(path: Path, provider: str, results: list[Any], errors: list[BaseException],
                 stats: dict[str, Any]) -> Path:
    """The kind of JSON report a run writes: results, errors, stats (all through repr/str)."""
    doc = {
        "provider": provider,
        "results": [repr(r) for r in results],
        "errors": [
            {"type": type(e).__name__, "message": str(e), "repr": repr(e),
             "body": getattr(e, "body", None), "url": getattr(e, "url", None),
             "headers": getattr(e, "headers", None)}
            for e in errors
        ],
        "stats": stats,
    }
    path.write_text(json.dumps(doc, indent=2, default=repr))
    return path


# -- building the per-provider class ---------------------------------------------------------------


def _specific_tests(profile: Profile) -> dict[str, Any]:
    names = [o.name for o in profile.specific]
    if not names:
        return {}

    @pytest.mark.parametrize("op_name", names)
    def test_specific(self: APISuite, target: Target, op_name: str) -> None:
        self._specific(target, op_name, _call)

    @pytest.mark.parametrize("op_name", names)
    def test_specific_async(self: APISuite, target: Target, op_name: str) -> None:
        self._specific(target, op_name, _acall)

    return {"test_specific": test_specific, "test_specific_async": test_specific_async}


def _retry_after_tests(profile: Profile) -> dict[str, Any]:
    rows = [r for r in RETRY_AFTER_TABLE if r[0] in CORE_ROWS]
    arows = [r for r in RETRY_AFTER_TABLE if r[0] in ASYNC_ROWS]

    @pytest.mark.parametrize(("label", "headers", "row"), rows, ids=[r[0] for r in rows])
    def test_retry_after(self: APISuite, mock: Target, label: str, headers: dict[str, str], row: Any) -> None:
        self._retry_after(mock, headers, row, "sync")

    @pytest.mark.parametrize(("label", "headers", "row"), arows, ids=[r[0] for r in arows])
    def test_retry_after_async(self: APISuite, mock: Target, label: str, headers: dict[str, str], row: Any) -> None:
        self._retry_after(mock, headers, row, "async")

    return {"test_retry_after": test_retry_after, "test_retry_after_async": test_retry_after_async}


def _fault_tests(profile: Profile) -> dict[str, Any]:
    names = list(REQUEST_FAULTS) + (list(STREAM_FAULTS) if profile.stream is not None else [])

    @pytest.mark.parametrize("fault", names)
    def test_fault(self: APISuite, mock: Target, fault: str) -> None:
        op, spec, expected, attempts, method = self._fault_case(fault)
        self._fault(mock, op, spec, expected, attempts, _call, method)

    @pytest.mark.parametrize("fault", [n for n in names if n in ASYNC_FAULTS])
    def test_fault_async(self: APISuite, mock: Target, fault: str) -> None:
        op, spec, expected, attempts, method = self._fault_case(fault)
        self._fault(mock, op, spec, expected, attempts, _acall, method)

    return {"test_fault": test_fault, "test_fault_async": test_fault_async}


def api_tests(name: str) -> dict[str, type]:
    """``{"TestAPI_<name>": class}``: every kit test for provider ``name``, ready for pytest (the
    generated files spell the class out instead: see :class:`APISuite`)."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(f"no API test profile for {name!r}; known: {', '.join(PROFILES)}") from None
    cls_name = f"TestAPI_{name}"
    doc = f"API tests for the {name} provider (ipfs_accelerate.api.testing.kit)."
    return {cls_name: type(cls_name, (APISuite,), {"profile": profile, "__doc__": doc})}
