"""Where problems and notes are collected while an upload streams by.

Problems are kept relative to their user (``transactions[17].amount``) and rendered at the end, because
whether the ``users[k].`` prefix is needed (several users) is only known once the whole upload was read.
"""

from __future__ import annotations

from .model import Problem

DOCUMENT = "$"  # path of problems about the upload as a whole
MAX_DISTINCT_NOTES = 100


class ProblemLog:
    """Keeps the first ``max_errors`` problems and counts the rest, so a hopeless upload still costs
    bounded memory while the uploader learns how much is wrong."""

    def __init__(self, max_errors: int) -> None:
        if max_errors < 1:
            raise ValueError("max_errors must be at least 1")
        self._max = max_errors
        self._kept: list[tuple[int | None, str, str]] = []
        self.dropped = 0

    @property
    def full(self) -> bool:
        """No more problems will be kept (callers may skip composing their messages)."""
        return len(self._kept) >= self._max

    def add(self, user: int | None, path: str, reason: str) -> None:
        if len(self._kept) < self._max:
            self._kept.append((user, path, reason))
        else:
            self.dropped += 1

    def __bool__(self) -> bool:
        return bool(self._kept)

    def render(self, user_prefixes: list[str]) -> list[Problem]:
        out = [Problem(_join(user_prefixes, user, path), reason) for user, path, reason in self._kept]
        if self.dropped:
            out.append(Problem(DOCUMENT, f"…and {self.dropped} more"))
        return out


def _join(prefixes: list[str], user: int | None, path: str) -> str:
    prefix = prefixes[user] if user is not None and user < len(prefixes) else ""
    if not prefix:
        return path
    return prefix.rstrip(".") if path == DOCUMENT else prefix + path


class Notes:
    """Non-fatal observations, de-duplicated with a count so a repeated one does not flood the list."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, text: str) -> None:
        if text in self._counts or len(self._counts) < MAX_DISTINCT_NOTES:
            self._counts[text] = self._counts.get(text, 0) + 1

    def render(self) -> list[str]:
        return [text if n == 1 else f"{text} ({n} times)" for text, n in self._counts.items()]
