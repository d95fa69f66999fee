"""Hot reads answered from memory until the user's data changes.

A service's API process keeps the bytes of recent answers (a user's recommendations, persona, profile)
per user. The database says when they go stale: a trigger on every table such a read depends on notifies
the schema's channel with the id of each user whose rows a committing transaction changed
(:mod:`spendsense_shared.user_changes`), and the process's listener forgets that user's answers. The
notification comes from the commit itself, so a worker's write, another replica's and this process's are
all seen, and a rolled-back one never is.

Three rules keep an answer from outliving its data:

* **Only while listening.** The cache answers only while the listener's connection is up; when it drops,
  everything is forgotten and every read goes to the database until it is back.
* **No answer older than the read that built it.** A read notes the user's version before it queries;
  a change notified while it ran bumps the version, and the stale answer is not remembered.
* **Your own writes.** A unit of work of this process, once committed, waits until the listener has
  received every notification up to that commit (:meth:`UserChangeListener.caught_up`), so the next read
  of the same client never sees the old answer.

Entries also expire after ``ttl_s`` (a bound if a notification were ever lost), and the cache is
bounded in entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_TTL_S = 300.0
DEFAULT_MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class CachedBody:
    """A response body as sent, with its strong ETag (the hash of those bytes)."""

    body: bytes
    etag: str
    stored_at: float


class ReadCache:
    def __init__(
        self,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self.listening = False  # set by the listener: no invalidation, no answers from memory
        self._entries: dict[str, dict[str, CachedBody]] = {}
        self._versions: dict[str, int] = {}
        self._epoch = 0  # bumped by forget_all: a read that overlapped it remembers nothing
        self._size = 0
        self.hits = 0
        self.misses = 0

    def lookup(self, user_id: str, key: str) -> CachedBody | None:
        entry = self._entries.get(user_id, {}).get(key) if self.listening else None
        if entry is not None and self.clock() - entry.stored_at < self.ttl_s:
            self.hits += 1
            return entry
        self.misses += 1
        return None

    def version(self, user_id: str) -> tuple[int, int]:
        """Note it before reading the database; hand it to :meth:`remember`."""
        return self._epoch, self._versions.get(user_id, 0)

    def remember(
        self, user_id: str, key: str, body: bytes, etag: str, version: tuple[int, int]
    ) -> CachedBody:
        """``body`` with its ETag, kept only if nothing about the user changed since ``version``."""
        entry = CachedBody(body, etag, self.clock())
        if self.listening and version == self.version(user_id):
            if self._size >= self.max_entries:
                self._clear()
            entries = self._entries.setdefault(user_id, {})
            self._size += key not in entries
            entries[key] = entry
        return entry

    def forget(self, user_id: str) -> None:
        if len(self._versions) >= self.max_entries:  # versions of users long gone: start afresh
            self.forget_all()
        self._versions[user_id] = self._versions.get(user_id, 0) + 1
        self._size -= len(self._entries.pop(user_id, {}))

    def forget_all(self) -> None:
        self._epoch += 1
        self._versions.clear()
        self._clear()

    def _clear(self) -> None:
        self._entries.clear()
        self._size = 0
