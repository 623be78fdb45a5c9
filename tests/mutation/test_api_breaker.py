"""Pure unit tests of api/core/_breaker.py that kill its mutants, on the injectable FakeClock.

The breaker decides whether a request is sent at all: these pin the trial count, the
"retry in" it reports and that failures while open do not re-open it.
"""

from __future__ import annotations

import pytest

from ipfs_accelerate.api.core import BreakerConfig, CircuitBreaker, CircuitOpenError, FakeClock
from ipfs_accelerate.api.core._breaker import BreakerSet


def test_breaker_set_names_its_breakers() -> None:
    clock = FakeClock()
    s = BreakerSet(BreakerConfig(), clock)
    b = s.get("ep")
    assert b is not None and b.name == "ep" and s.get("ep") is b
    assert repr(b) == "CircuitBreaker('ep', state='closed')"
    assert BreakerSet(None, clock).get("ep") is None


def test_open_reports_time_left_and_name() -> None:
    clock = FakeClock()
    b = CircuitBreaker("ep", BreakerConfig(failure_threshold=1, reset_timeout=10.0), clock)
    b.record_failure()
    clock.advance(3.0)
    with pytest.raises(CircuitOpenError) as info:
        b.before_request()
    assert info.value.retry_in == pytest.approx(7.0)
    assert "circuit open for ep; retry in 7.000s" in str(info.value)


def test_failures_while_open_do_not_reopen() -> None:
    clock = FakeClock()
    b = CircuitBreaker("ep", BreakerConfig(failure_threshold=1, reset_timeout=10.0), clock)
    b.record_failure()
    clock.advance(4.0)
    b.record_failure()  # already open: the window is not restarted
    assert b.times_opened == 1
    clock.advance(6.0)
    assert b.state == "half_open"


def test_half_open_admits_exactly_max_trials_and_says_zero_wait() -> None:
    clock = FakeClock()
    b = CircuitBreaker("ep", BreakerConfig(failure_threshold=1, reset_timeout=5.0, half_open_max=2), clock)
    b.record_failure()
    clock.advance(5.0)
    b.before_request()
    b.before_request()
    with pytest.raises(CircuitOpenError) as info:
        b.before_request()
    assert info.value.retry_in == 0.0 and "retry in 0.000s" in str(info.value)


def test_release_trial_frees_one_place_and_never_more() -> None:
    clock = FakeClock()
    b = CircuitBreaker("ep", BreakerConfig(failure_threshold=1, reset_timeout=5.0, half_open_max=1), clock)
    b.record_failure()
    clock.advance(5.0)
    assert b.state == "half_open"
    b.release_trial()  # no trial taken yet: nothing to free
    b.before_request()
    with pytest.raises(CircuitOpenError):
        b.before_request()
    b.release_trial()
    b.before_request()  # the freed place
    with pytest.raises(CircuitOpenError):
        b.before_request()
