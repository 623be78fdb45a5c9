"""Property tests (hypothesis) for the two parsers every response goes through.

* any chunking of a valid SSE byte stream yields the same events as the whole stream;
* ``Retry-After`` parsing never raises, and the delay the retry loop would sleep is finite and
  bounded, for any header value.

The default profile is fixed and derandomized (CI gets the same examples every run); set
``HYPOTHESIS_PROFILE=long`` for a longer randomized search.
"""

from __future__ import annotations

import math
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipfs_accelerate.api.core import OPENAI_RETRY, SSEDecoder, decide_retry, parse_retry_after

PROFILES = {
    "ci": settings(derandomize=True, max_examples=100, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow]),
    "long": settings(max_examples=20_000, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow]),
}
PROFILE = PROFILES[os.environ.get("HYPOTHESIS_PROFILE", "ci")]
WALL_NOW = 1_750_000_000.0

# -- SSE framing --------------------------------------------------------------------------------

# Field values never hold a line end (the protocol cannot carry one) nor start with a space
# (one leading space after the colon is stripped by the spec; we always write exactly one).
_value = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)
_name = st.sampled_from(["message", "delta", "ping", "error"])
_event = st.fixed_dictionaries(
    {"data": st.lists(_value, min_size=1, max_size=3)},
    optional={"event": _name, "id": _value.filter(lambda v: "\0" not in v),
              "retry": st.integers(0, 10_000)},
)
_eol = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def sse_stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[object, ...]]]:
    """A valid stream (one line-end style, as a server writes) and the events it carries."""
    eol = draw(_eol)
    out, expected = [], []
    last_id = None  # the last event id persists until another id line (WHATWG)
    for ev in draw(st.lists(_event, max_size=6)):
        lines = []
        if draw(st.booleans()):
            lines.append(b": keep-alive")
        if "event" in ev:
            lines.append(b"event: " + ev["event"].encode())
        if "id" in ev:
            lines.append(b"id: " + ev["id"].encode())
        if "retry" in ev:
            lines.append(b"retry: %d" % ev["retry"])
        lines += [b"data: " + d.encode() for d in ev["data"]]
        out.append(b"".join(line + eol for line in lines) + eol)  # a blank line ends the event
        last_id = ev.get("id", last_id)
        expected.append(("\n".join(ev["data"]), ev.get("event"), last_id, ev.get("retry")))
    return b"".join(out), expected


def _decode(chunks: list[bytes]) -> list[tuple[object, ...]]:
    dec = SSEDecoder()
    events = [e for c in chunks for e in dec.feed(c)] + dec.close()
    return [(e.data, e.event, e.id, e.retry) for e in events]


@PROFILE
@given(stream=sse_stream(), cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_any_chunking_yields_the_same_events(
    stream: tuple[bytes, list[tuple[object, ...]]], cuts: list[int]
) -> None:
    data, expected = stream
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert b"".join(chunks) == data
    assert _decode([data]) == expected
    assert _decode(chunks) == expected
    assert _decode([data[i : i + 1] for i in range(len(data))]) == expected  # byte by byte


# -- Retry-After ----------------------------------------------------------------------------------

_header_value = st.one_of(
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.datetimes().map(lambda d: d.strftime("%a, %d %b %Y %H:%M:%S GMT")),
    st.sampled_from(["inf", "-inf", "nan", "1e400", "-0", " 5 ", "0x10", "１２"]),
)


@PROFILE
@given(ra=st.one_of(st.none(), _header_value), ms=st.one_of(st.none(), _header_value),
       retries=st.integers(0, 5), rand=st.floats(0, 1, exclude_max=True), status=st.sampled_from([429, 503, 500]))
def test_retry_after_never_raises_and_is_bounded(
    ra: str | None, ms: str | None, retries: int, rand: float, status: int
) -> None:
    headers = {k: v for k, v in (("retry-after", ra), ("retry-after-ms", ms)) if v is not None}
    parsed = parse_retry_after(headers, WALL_NOW)
    assert parsed is None or isinstance(parsed, float)
    d = decide_retry(OPENAI_RETRY, status=status, headers=headers, retries_taken=retries,
                     max_retries=10, wall_now=WALL_NOW, rand=rand)
    assert math.isfinite(d.delay)
    assert 0.0 <= d.delay <= max(OPENAI_RETRY.retry_after_cap, OPENAI_RETRY.max_delay)
