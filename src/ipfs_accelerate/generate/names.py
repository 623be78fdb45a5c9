"""Name validation: every model / API / task name becomes part of a file name and a Python
literal, so only a small ASCII alphabet is accepted — before any lookup, before any path exists.

Rejected with a message that says why: empty names, path pieces (``../x``, ``a/b``), shell
metacharacters (``bert; rm -rf /``), whitespace and control characters, and non-ASCII look-alikes
(``bеrt`` with a Cyrillic ``е``), whose code point and Unicode name are printed so the user can see
the difference.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LEN = 64
# dots only between other characters: transformers has `kosmos-2.5`; never `..` or a leading dot
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*\Z")


class InvalidNameError(ValueError):
    """A malformed or hostile name; nothing is generated when one is given."""

    def __init__(self, kind: str, name: str, why: str) -> None:
        self.kind = kind
        self.name = name
        self.why = why
        super().__init__(f"invalid {kind} name {name!r}: {why}")


def _why(name: str) -> str | None:
    if not name:
        return "the name is empty"
    if len(name) > MAX_LEN:
        return f"longer than {MAX_LEN} characters"
    for i, ch in enumerate(name):
        if ord(ch) > 127:
            uname = unicodedata.name(ch, "unnamed character")
            return (
                f"non-ASCII character U+{ord(ch):04X} ({uname}) at position {i}; "
                "look-alike letters are not accepted"
            )
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in "_-.")})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        pathlike = "; a name is never a path" if {"/", "\\"} & set(bad) or ".." in name else ""
        return f"characters {shown} are not allowed (only ASCII letters, digits, '_', '-' and inner '.'){pathlike}"
    if ".." in name or name.endswith("."):
        return "'.' only between other characters; a name is never a path"
    if not _VALID.match(name):
        return "must start with an ASCII letter or digit"
    return None


def check_name(kind: str, name: str) -> str:
    """Return ``name`` unchanged if it is safe, else raise InvalidNameError."""
    if not isinstance(name, str):
        raise InvalidNameError(kind, repr(name), "not a string")
    why = _why(name)
    if why:
        raise InvalidNameError(kind, name, why)
    return name


def is_valid(name: str) -> bool:
    return isinstance(name, str) and _why(name) is None


def ident(name: str) -> str:
    """``xlm-roberta`` -> ``xlm_roberta``, ``kosmos-2.5`` -> ``kosmos_2_5``: the file-name form."""
    return check_name("name", name).replace("-", "_").replace(".", "_").lower()


def camel(name: str) -> str:
    """``xlm-roberta`` -> ``XlmRoberta``: the class-name form of a checked name."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", ident(name)) if part)
