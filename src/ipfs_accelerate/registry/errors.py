"""Errors for registry lookups: every unknown name comes with close-match suggestions."""

from __future__ import annotations

import difflib


class UnknownNameError(LookupError):
    """An unknown model / task / category / API name; ``suggestions`` holds close matches."""

    def __init__(self, kind: str, name: str, known: list[str], *, context: str = "") -> None:
        self.kind = kind
        self.name = name
        self.suggestions = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        where = f" for {context}" if context else ""
        hint = f"; did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        if not self.suggestions and len(known) <= 12:
            hint = f"; known: {', '.join(sorted(known))}"
        super().__init__(f"unknown {kind} {name!r}{where}{hint}")
