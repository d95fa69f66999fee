"""Case-insensitive patterns, scanned faster on ASCII text (the guardrails' hot path).

Python's ``re`` tries every branch of an alternation under ``IGNORECASE`` (it can skip a branch by
its first character only when the match is case-sensitive), so the checks' big case-insensitive
patterns cost several times what the same patterns cost case-sensitively. On ASCII text the two are
the same thing: a lowercase pattern without ``IGNORECASE`` matches ``text.lower()`` exactly where the
case-insensitive pattern matches ``text``, with the same spans (lowering ASCII changes only A-Z, one
character for one). Non-ASCII text keeps the case-insensitive pattern: ``IGNORECASE`` also folds
characters such as the long s, the dotless i, the dotted capital I and the Kelvin sign onto ASCII
letters, which ``str.lower`` does not.
``tone``, ``contacts`` and ``grounding`` use the twins on ASCII text only, so what a check finds does
not change; each also remembers what it found in a text up to ``CACHED_TEXT_MAX`` characters.
"""

from __future__ import annotations

import re

__all__ = ["CACHED_TEXT_MAX", "lowercase_twin"]

# The checks remember what they found in a text up to this long (any title and rationale within the
# length limits): the same text comes back for every user (a catalog title) and when the writer checks
# again what selection checked.
CACHED_TEXT_MAX = 1024

_ESCAPE = re.compile(r"\\.|\(\?P[<=]", re.DOTALL)  # escapes ("\\S") and named groups ("(?P<name>")
_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]+[:)]")


def lowercase_twin(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The same pattern without ``IGNORECASE``: it matches lowercased ASCII text exactly where
    ``pattern`` matches the text. Refuses a pattern with an uppercase letter outside an escape (such
    as ``\\S``), which the twin would never match in lowercased text, or with inline flags (a
    case-sensitive ``(?-i:...)`` part would differ)."""
    if not pattern.flags & re.IGNORECASE:
        raise ValueError("lowercase_twin is for case-insensitive patterns")
    source = _ESCAPE.sub("", pattern.pattern)
    if any(ch.isupper() for ch in source) or _INLINE_FLAGS.search(source):
        raise ValueError(f"pattern has uppercase letters or inline flags: {pattern.pattern!r}")
    return re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)
