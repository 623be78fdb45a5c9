"""Pure unit tests of api/core/_errors.py that kill its mutants: every field an error carries.

Errors end up in logs, reports and across process pools; these pin what they say, what they
keep, and that pickling keeps all of it.
"""

from __future__ import annotations

import pickle

from ipfs_accelerate.api.core._errors import (
    APIError,
    APITimeoutError,
    CircuitOpenError,
    NotFoundError,
    StreamTimeoutError,
    make_status_error,
)


def test_make_status_error_keeps_every_field() -> None:
    e = make_status_error(404, "no such model", request_id="r1", body="b" * 600, method="POST", url="http://h/v1/x",
                          headers={"x-request-id": "r1"}, provider="groq")
    assert type(e) is NotFoundError and e.status == 404 and e.status_code == 404
    assert (e.message, e.request_id, e.method, e.url, e.provider) == ("no such model", "r1", "POST", "http://h/v1/x", "groq")
    assert e.headers == {"x-request-id": "r1"} and e.body == "b" * 500
    assert e.args == ("no such model",)


def test_api_error_defaults_and_headers_copy() -> None:
    src = {"a": "1"}
    e = APIError("m", headers=src)
    src["a"] = "2"
    assert e.headers == {"a": "1"} and APIError("m").headers == {}
    assert (e.method, e.url, e.provider, e.status, e.body) == (None, None, None, None, None)


def test_str_and_repr() -> None:
    assert str(APIError("boom", status=500, request_id="r")) == "boom status=500 request_id=r"
    assert str(APIError("HTTP 500 from server", status=500)) == "HTTP 500 from server"  # status already said
    assert str(APIError("boom")) == "boom"
    assert str(APIError("code None here")) == "code None here"
    assert repr(make_status_error(404, "x")) == "NotFoundError('x', status=404)"


def test_timeout_and_circuit_fields() -> None:
    t = APITimeoutError("slow", limit="gap", elapsed=2.5, status=None, provider="p")
    assert (t.message, t.limit, t.elapsed, t.provider, str(t)) == ("slow", "gap", 2.5, "p", "slow")
    s = StreamTimeoutError("stalled", limit="first_event", elapsed=1.0, provider="q")
    assert (s.limit, s.elapsed, s.provider, s.message) == ("first_event", 1.0, "q", "stalled")
    c = CircuitOpenError("open", retry_in=3.0, provider="r")
    assert (c.message, c.retry_in, c.provider, str(c)) == ("open", 3.0, "r", "open")
    assert CircuitOpenError("half-open, trials in use").retry_in == 0.0


def test_pickle_round_trip_keeps_message_and_fields() -> None:
    e = make_status_error(429, "slow down", request_id="r", provider="p", headers={"retry-after": "1"})
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is type(e) and back.args == ("slow down",) and str(back) == str(e)
    assert (back.status, back.request_id, back.provider, back.headers) == (429, "r", "p", {"retry-after": "1"})
    t = pickle.loads(pickle.dumps(APITimeoutError("t", limit="total", elapsed=1.5)))
    assert (t.limit, t.elapsed, t.args) == ("total", 1.5, ("t",))
