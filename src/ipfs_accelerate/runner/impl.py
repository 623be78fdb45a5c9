"""The `--impl-type` vocabulary, one place for the runner and the pytest plugin.

`tiny` (real forward passes of tiny models on seeded random weights; API tests: the local
protocol server) and `pretrained` (a resolved pretrained checkpoint; API tests: the provider's
real endpoint) say what the modes are. The spec's `mock` and `real` stay accepted aliases and
remain the tags recorded in results and node ids (`[cpu]`, `[cpu-real]`), so existing results,
expected files and reports are unchanged.
"""

from __future__ import annotations

IMPL_TAGS = {"tiny": "mock", "pretrained": "real", "all": "all", "mock": "mock", "real": "real"}
IMPL_CHOICES = tuple(IMPL_TAGS)
IMPL_HELP = ("tiny: tiny real forward passes on random weights / the local protocol server; pretrained: pretrained "
             "weights / the real endpoint (skipped when none resolves offline or no key is set); all: both. "
             "mock and real are accepted aliases of tiny and pretrained")


def impl_tag(name: str) -> str:
    """The recorded tag (mock / real / all) of a front-door name; ValueError names the choices."""
    try:
        return IMPL_TAGS[name]
    except KeyError:
        raise ValueError(f"--impl-type {name!r}: choose from {', '.join(IMPL_CHOICES)}") from None
