"""In-memory fakes of the shared ports, for handler unit tests that run in milliseconds (cosmicpython's
``FakeUnitOfWork``). Every adapter they stand in for is also tested against the real servers."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType

from spendsense_shared.consent import ConsentProjection, ConsentStatus, ProjectedConsentRow, merged_consent
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.unit_of_work import AbstractUnitOfWork


class FakeUnitOfWork(AbstractUnitOfWork):
    """A service's fake subclasses this and adds its in-memory repositories in ``__init__``.

    ``published`` holds the events of committed transactions only, as the outbox would.
    """

    def __init__(self) -> None:
        super().__init__()
        self.commits = 0
        self.published: list[EventEnvelope] = []
        self.processed: set[str] = set()
        self.forgotten: list[str] = []

    async def forget_published(self, user_id: str) -> int:
        """Drops the committed events that mention the user (the fake has no unpublished ones)."""
        needle = json.dumps(user_id)
        kept = [e for e in self.published if needle not in e.model_dump_json()]
        dropped = len(self.published) - len(kept)
        self.published = kept
        self.forgotten.append(user_id)
        return dropped

    async def forget_published_of(self, subject: str) -> int:
        kept = [e for e in self.published if e.user_id is None or pseudonym(e.user_id) != subject]
        dropped = len(self.published) - len(kept)
        self.published = kept
        return dropped

    async def mark_processed(self, event: EventEnvelope) -> bool:
        if str(event.id) in self.processed:
            return False
        self.processed.add(str(event.id))
        return True

    async def _begin(self) -> None:
        return None

    async def _commit(self, events: list[EventEnvelope]) -> None:
        self.commits += 1
        self.published += events

    async def _rollback(self) -> None:
        return None

    def published_types(self) -> list[str]:
        return [e.type for e in self.published]


class InMemoryConsentProjection(ConsentProjection):
    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, ConsentStatus, datetime]] = {}

    async def apply(self, user_id: str, consent_id: str, status: ConsentStatus, as_of: datetime) -> None:
        if pseudonym(user_id) in self.rows:
            return
        current = self.rows.get(user_id)
        if current is None or current[2] <= as_of:
            self.rows[user_id] = (consent_id, status, as_of)

    async def erase(self, user_id: str, as_of: datetime) -> None:
        self.rows.pop(user_id, None)
        self.rows.setdefault(pseudonym(user_id), ("erased", "revoked", as_of))

    async def granted(self, user_ids: list[str]) -> set[str]:
        return {u for u in user_ids if u in self.rows and self.rows[u][1] == "granted"}

    async def is_erased(self, user_id: str) -> bool:
        return pseudonym(user_id) in self.rows

    async def merge(self, source_user_id: str, target_user_id: str) -> None:
        def row(user_id: str) -> ProjectedConsentRow | None:
            found = self.rows.get(user_id)
            return None if found is None else ProjectedConsentRow(*found)

        merged = merged_consent(row(source_user_id), row(target_user_id))
        self.rows.pop(source_user_id, None)
        if merged is not None:
            self.rows[target_user_id] = (merged.consent_id, merged.status, merged.as_of)


class InMemoryBlobStore:
    """``BlobStore`` in a dict."""

    def __init__(self, bucket: str = "spendsense-data-test") -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}

    async def put_many(self, items: list[tuple[str, bytes]], content_type: str) -> list[str]:
        self.objects.update(items)
        return [name for name, _ in items]

    async def get_many(self, names: list[str]) -> list[bytes]:
        return [self.objects[n] for n in names]

    async def get(self, name: str) -> bytes:
        return self.objects[name]

    async def delete_prefix(self, name_prefix: str) -> int:
        names = [n for n in self.objects if n.startswith(name_prefix)]
        for name in names:
            del self.objects[name]
        return len(names)


def load_beside(test_file: str, filename: str, module_name: str) -> ModuleType:
    """A module of test support that sits beside ``test_file`` (a service's ``fakes.py``), loaded under a
    name of its own: under pytest's importlib mode tests are not importable packages, and every service
    has a ``fakes.py``."""
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, Path(test_file).with_name(filename))
        if spec is None or spec.loader is None:
            raise ImportError(f"no {filename} beside {test_file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]
