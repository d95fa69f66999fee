"""In-memory repositories and unit of work of the profile service, for handler unit tests that run in
milliseconds. The SQL repositories they stand in for are tested against PostgreSQL (integration)."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from spendsense_profile.domain.commands import ProcessUpload, ReceiveUpload
from spendsense_profile.domain.consent import Consent
from spendsense_profile.domain.ingest import parse_upload
from spendsense_profile.domain.profile import Profile, PushDevice, PushNotification, PushPlatform
from spendsense_profile.domain.uploads import (
    ErasedUploads,
    ParseBudget,
    ParseOutcome,
    Upload,
    UploadSource,
    UploadSummary,
    UserProgress,
    erased_from,
    upload_objects,
    with_users_status,
)
from spendsense_profile.handlers.push import PushEndpointGone, PushNotConfigured, PushNotifier
from spendsense_profile.handlers.unit_of_work import (
    ConsentRepository,
    NormalizedData,
    ProfileUnitOfWork,
    PushDeviceRepository,
    UploadRepository,
)
from spendsense_profile.handlers.uploads import process_upload, receive_upload
from spendsense_shared.blobs import BlobStore
from spendsense_shared.dataset import TABLES, user_of_key
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import FakeUnitOfWork


class _Clock:
    """Strictly increasing timestamps, so "newest first" is well defined in tests."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class InMemoryConsentRepository(ConsentRepository):
    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.profiles: dict[str, Profile] = {}
        self.consents: dict[str, Consent] = {}
        self.erased: set[str] = set()

    async def ensure_profile(self, user_id: str) -> None:
        self.profiles.setdefault(user_id, Profile(user_id, self.clock.tick()))

    async def get_profile(self, user_id: str) -> Profile | None:
        return self.profiles.get(user_id)

    async def current(self, user_id: str, *, for_update: bool = False) -> Consent | None:
        return next((c for c in self.consents.values() if c.user_id == user_id and c.is_current), None)

    async def history(self, user_id: str) -> list[Consent]:
        mine = [c for c in self.consents.values() if c.user_id == user_id]
        return sorted(mine, key=lambda c: c.granted_at, reverse=True)

    async def add(self, consent: Consent) -> None:
        if await self.current(consent.user_id) is not None:
            raise ValueError("a user has at most one current consent")  # the database's unique index
        self.consents[consent.consent_id] = consent

    async def mark_revoked(self, consent: Consent) -> None:
        self.consents[consent.consent_id] = replace(
            self.consents[consent.consent_id], revoked_at=consent.revoked_at
        )

    async def reassign(self, source_user_id: str, target_user_id: str) -> None:
        for consent_id, consent in list(self.consents.items()):
            if consent.user_id == source_user_id:
                if consent.is_current and await self.current(target_user_id) is not None:
                    raise ValueError("a user has at most one current consent")  # the unique index
                self.consents[consent_id] = replace(consent, user_id=target_user_id)

    async def delete_profile(self, user_id: str) -> None:
        self.profiles.pop(user_id, None)

    async def erase_user(self, user_id: str) -> None:
        self.consents = {k: c for k, c in self.consents.items() if c.user_id != user_id}
        self.profiles.pop(user_id, None)
        self.erased.add(user_id)

    async def is_erased(self, user_id: str) -> bool:
        return user_id in self.erased


class InMemoryUploadRepository(UploadRepository):
    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.uploads: dict[str, Upload] = {}
        self.notified: list[str] = []  # received uploads announced to the worker (at commit, in SQL)

    async def add(self, upload: Upload) -> None:
        now = self.clock.tick()
        self.uploads[upload.upload_id] = replace(copy.deepcopy(upload), created_at=now, updated_at=now)
        if upload.waiting:
            self.notified.append(upload.upload_id)

    async def save(self, upload: Upload) -> None:
        stored = self.uploads[upload.upload_id]
        self.uploads[upload.upload_id] = replace(
            copy.deepcopy(upload),
            source=stored.source,
            attempts=stored.attempts,
            created_at=stored.created_at,
            updated_at=self.clock.tick(),
        )

    async def stuck(self, stage: str, older_than_s: float, limit: int) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for upload in self.uploads.values():  # a stage's age is its upload's (no per-user clock here)
            assert upload.updated_at is not None
            if (self.clock.now - upload.updated_at).total_seconds() >= older_than_s:
                users = [u.user_id for u in upload.users if u.stage == stage]
                if users:
                    found[upload.upload_id] = users
        return dict(list(found.items())[:limit])

    async def touch_stage(self, upload_id: str, user_ids: list[str]) -> None:
        self.uploads[upload_id].updated_at = self.clock.tick()

    async def count_attempt(self, upload_id: str) -> int:
        self.uploads[upload_id].attempts += 1
        return self.uploads[upload_id].attempts

    async def source_deleted(self, upload_id: str) -> None:
        if upload_id in self.uploads:
            self.uploads[upload_id].source = None

    async def get(self, upload_id: str, *, for_update: bool = False) -> Upload | None:
        upload = self.uploads.get(upload_id)
        if upload is None:
            return None
        found = copy.deepcopy(upload)
        found.users.sort(key=lambda u: u.user_id)
        return with_users_status(found)

    async def stages_of(self, upload_id: str, user_ids: list[str]) -> dict[str, UserProgress]:
        upload = self.uploads.get(upload_id)
        if upload is None:
            return {}
        return {u.user_id: replace(u) for u in upload.users if u.user_id in user_ids}

    async def save_stages(self, upload_id: str, progress: list[UserProgress]) -> None:
        stored = self.uploads[upload_id]
        for saved in progress:
            [mine] = [u for u in stored.users if u.user_id == saved.user_id]
            mine.stage, mine.reason = saved.stage, saved.reason
        stored.updated_at = self.clock.tick()
        with_users_status(stored)  # what SQL derives when read, kept here so tests may read it stored

    async def count_for_user(self, user_id: str) -> int:
        return sum(1 for u in self.uploads.values() if user_id in u.user_ids)

    async def latest_for_user(self, user_id: str) -> UploadSummary | None:
        mine = [u for u in self.uploads.values() if user_id in u.user_ids]
        if not mine:
            return None
        latest = max(mine, key=lambda u: u.created_at or datetime.min.replace(tzinfo=UTC))
        assert latest.created_at is not None
        return UploadSummary(
            latest.upload_id, with_users_status(copy.deepcopy(latest)).status, latest.created_at
        )

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        for upload in self.uploads.values():
            if not upload.involves(source_user_id):
                continue
            shared = upload.progress_of(target_user_id) is not None
            upload.users = [u for u in upload.users if not (shared and u.user_id == source_user_id)]
            for u in upload.users:
                if u.user_id == source_user_id:
                    u.user_id = target_user_id
            upload.user_ids = sorted({target_user_id if u == source_user_id else u for u in upload.user_ids})
            if upload.uploader_id == source_user_id:
                upload.uploader_id = target_user_id
            with_users_status(upload)
            upload.updated_at = self.clock.tick()

    async def erase_user(self, user_id: str) -> ErasedUploads:
        erased = ErasedUploads()
        for upload_id, upload in list(self.uploads.items()):
            if not upload.involves(user_id):
                continue
            if upload.waiting and upload.uploader_is_operator:
                upload.uploader_id = (
                    pseudonym(user_id) if upload.uploader_id == user_id else upload.uploader_id
                )
            elif not [u for u in upload.user_ids if u != user_id]:
                del self.uploads[upload_id]
                erased.prefixes.append(upload_objects(upload_id))
            else:
                kept = erased_from(upload, user_id)
                erased.shared_keys.extend(k for k in kept.keys if user_of_key(k) is None)
                self.uploads[upload_id] = replace(kept, updated_at=self.clock.tick())
        return erased


class InMemoryNormalizedData(NormalizedData):
    """Rows per table keyed like the SQL tables: (user_id, the table's id column)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[tuple[str, str], dict[str, Any]]] = {name: {} for name in TABLES}
        self.snapshots_read = 0

    async def merge(self, tables: dict[str, pa.Table], upload_id: str) -> dict[str, int]:
        merged = {}
        for name, data in tables.items():
            id_column = TABLES[name].names[1]
            for row in data.to_pylist():
                self.rows[name][(row["user_id"], row[id_column])] = {**row, "upload_id": upload_id}
            merged[name] = data.num_rows
        return merged

    async def holds_rows(self, user_ids: list[str]) -> bool:
        return any(user in user_ids for rows in self.rows.values() for user, _ in rows)

    async def remove_transactions(self, pairs: list[tuple[str, str]]) -> int:
        removed = [self.rows["transactions"].pop(pair, None) for pair in pairs]
        return sum(1 for r in removed if r is not None)

    async def snapshot(self, user_ids: list[str]) -> dict[str, pa.Table]:
        self.snapshots_read += 1
        tables = {}
        for name, schema in TABLES.items():
            rows = sorted(
                (r for (user, _), r in self.rows[name].items() if user in user_ids),
                key=lambda r: (r["user_id"], r[schema.names[1]]),
            )
            tables[name] = pa.Table.from_pylist(
                [{c: r[c] for c in schema.names} for r in rows], schema=schema
            )
        return tables

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        for rows in self.rows.values():
            for user, key in [k for k in rows if k[0] == source_user_id]:
                row = rows.pop((user, key))
                rows.setdefault((target_user_id, key), {**row, "user_id": target_user_id})

    async def erase_user(self, user_id: str) -> None:
        for rows in self.rows.values():
            for key in [k for k in rows if k[0] == user_id]:
                del rows[key]


class InMemoryPushDeviceRepository(PushDeviceRepository):
    def __init__(self) -> None:
        self.devices: dict[str, PushDevice] = {}

    async def holder(self, token: str) -> PushDevice | None:
        return self.devices.get(token)

    async def register(self, device: PushDevice) -> None:
        known = self.devices.get(device.token)
        keep = known is not None and known.disabled_at is None and known.platform == device.platform
        endpoint = known.endpoint_arn if keep and known is not None else None
        self.devices[device.token] = replace(device, endpoint_arn=endpoint, disabled_at=None)

    async def for_user(self, user_id: str) -> list[PushDevice]:
        return sorted((d for d in self.devices.values() if d.user_id == user_id), key=lambda d: d.token)

    async def set_endpoint(self, token: str, endpoint_arn: str) -> None:
        self.devices[token] = replace(self.devices[token], endpoint_arn=endpoint_arn)

    async def disable(self, token: str, at: datetime) -> None:
        self.devices[token] = replace(self.devices[token], disabled_at=at)

    async def reassign(self, source_user_id: str, target_user_id: str) -> None:
        for token, device in list(self.devices.items()):
            if device.user_id == source_user_id:
                self.devices[token] = replace(device, user_id=target_user_id)

    async def erase_user(self, user_id: str) -> None:
        self.devices = {t: d for t, d in self.devices.items() if d.user_id != user_id}


class TransientPushError(Exception):
    """What the fake notifier raises for an SNS error worth retrying (throttling, unavailable)."""


class FakePushNotifier(PushNotifier):
    """The push port in memory: endpoints by ARN, what each received, and failures to script.

    ``disabled`` / ``deleted``: endpoints whose pushes fail as SNS's would (:class:`PushEndpointGone`);
    ``refused``: tokens the platform refuses; ``unconfigured``: platforms without an application;
    ``failing``: a transient error on the next sends (until cleared)."""

    def __init__(self) -> None:
        self.endpoints: dict[str, tuple[PushPlatform, str]] = {}  # arn -> (platform, token)
        self.sent: dict[str, list[PushNotification]] = {}
        self.disabled: set[str] = set()
        self.deleted: list[str] = []
        self.refused: set[str] = set()
        self.unconfigured: set[PushPlatform] = set()
        self.failing = False

    def arn_of(self, token: str) -> str | None:
        return next((arn for arn, (_, t) in self.endpoints.items() if t == token), None)

    def received(self, token: str) -> list[PushNotification]:
        arn = self.arn_of(token)
        return [] if arn is None else self.sent.get(arn, [])

    async def create_endpoint(self, platform: PushPlatform, token: str) -> str:
        if platform in self.unconfigured:
            raise PushNotConfigured(platform)
        if token in self.refused:
            raise PushEndpointGone("token_refused")
        arn = self.arn_of(token) or f"arn:fake:sns:endpoint/{platform}/{len(self.endpoints) + 1}"
        self.endpoints[arn] = (platform, token)
        self.disabled.discard(arn)  # created again: enabled with the current token
        return arn

    async def send(self, endpoint_arn: str, notification: PushNotification) -> None:
        if self.failing:
            raise TransientPushError("Throttling")
        if endpoint_arn not in self.endpoints:
            raise PushEndpointGone("NotFound")
        if endpoint_arn in self.disabled:
            raise PushEndpointGone("EndpointDisabled")
        self.sent.setdefault(endpoint_arn, []).append(notification)

    async def delete_endpoint(self, endpoint_arn: str) -> None:
        if self.failing:
            raise TransientPushError("Throttling")
        self.endpoints.pop(endpoint_arn, None)
        self.deleted.append(endpoint_arn)


class FakeProfileUnitOfWork(FakeUnitOfWork, ProfileUnitOfWork):
    """One fake shared by every "transaction" of a test: what one commits, the next sees, and what a
    transaction changed without committing is undone when it ends (all or nothing, as in PostgreSQL)."""

    def __init__(self) -> None:
        super().__init__()
        clock = _Clock()
        self.consents = InMemoryConsentRepository(clock)
        self.uploads = InMemoryUploadRepository(clock)
        self.data = InMemoryNormalizedData()
        self.push_devices = InMemoryPushDeviceRepository()
        self._checkpoint = self._state()

    def _state(self) -> Any:
        return copy.deepcopy(
            (
                self.consents.profiles,
                self.consents.consents,
                self.uploads.uploads,
                self.data.rows,
                self.push_devices.devices,
            )
        )

    async def _begin(self) -> None:
        self._checkpoint = self._state()

    async def _commit(self, events: list[EventEnvelope]) -> None:
        await super()._commit(events)
        self._checkpoint = self._state()

    async def _rollback(self) -> None:
        (
            self.consents.profiles,
            self.consents.consents,
            self.uploads.uploads,
            self.data.rows,
            self.push_devices.devices,
        ) = self._state_of(self._checkpoint)

    @staticmethod
    def _state_of(checkpoint: Any) -> Any:
        return copy.deepcopy(checkpoint)


# -- uploads: received bytes, the parser, and the whole way from a body to an ingested upload --------------


class InMemoryUploadSources:
    """``UploadSources`` in a dict — the data bucket's, as in production they share the bucket and prefix
    (what a failing stream leaves: nothing)."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = {} if objects is None else objects
        self.deleted: list[str] = []

    async def put(self, name: str, chunks: AsyncIterator[bytes], content_type: str | None) -> int:
        body = b"".join([chunk async for chunk in chunks])
        self.objects[name] = body
        return len(body)

    async def delete(self, name: str) -> None:
        self.objects.pop(name, None)
        self.deleted.append(name)


class InProcessParser:
    """``UploadParser`` without a process or budgets: ``parse_upload`` on the stored bytes — or, when
    ``outcome`` is set, that outcome (a budget exceeded, a crash)."""

    def __init__(self, sources: InMemoryUploadSources, fx_rates: dict[str, float] | None = None) -> None:
        self.sources = sources
        self.fx_rates = fx_rates or {}
        self.outcome: ParseOutcome | None = None
        self.calls = 0

    async def parse(self, source: UploadSource, budget: ParseBudget, *, default_user_id: str) -> ParseOutcome:
        self.calls += 1
        if self.outcome is not None:
            return self.outcome
        return parse_upload(
            io.BytesIO(self.sources.objects[source.name]),
            filename=source.filename,
            content_type=source.content_type,
            fx_rates=self.fx_rates,
            default_user_id=default_user_id,
        )


class BytesBody:
    """An ``UploadBody`` from bytes, in chunks as a request would deliver them."""

    def __init__(self, data: bytes, content_type: str | None = "application/json", chunk: int = 64 * 1024):
        self.data = data
        self.filename: str | None = None
        self.content_type = content_type
        self.chunk = chunk

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), self.chunk):
            yield self.data[start : start + self.chunk]


BUDGET = ParseBudget(cpu_seconds=60, wall_seconds=120, decompressed_bytes=1024**3)


class Uploads:
    """The upload use cases wired on the fakes, as bootstrap wires them on the adapters."""

    def __init__(
        self, uow: FakeProfileUnitOfWork, blobs: BlobStore, fx_rates: dict[str, float] | None = None
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.sources = InMemoryUploadSources(getattr(blobs, "objects", None))
        self.parser = InProcessParser(self.sources, fx_rates)
        self.max_bytes = 10 * 1024 * 1024
        self.max_attempts = 3

    async def receive(self, body: Any, actor: str = "u1", *, operator: bool = False) -> Upload:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        cmd = ReceiveUpload(actor_id=actor, actor_is_operator=operator, body=BytesBody(data))
        return await receive_upload(cmd, self.uow, self.sources, self.max_bytes)

    async def process(self, upload_id: str) -> Upload | None:
        return await process_upload(
            ProcessUpload(upload_id),
            self.uow,
            self.parser,
            self.sources,
            self.blobs,
            BUDGET,
            self.max_attempts,
        )

    async def ingest(self, body: Any, actor: str = "u1", *, operator: bool = False) -> Upload:
        """Receive, then process: the upload as the worker leaves it."""
        received = await self.receive(body, actor, operator=operator)
        processed = await self.process(received.upload_id)
        assert processed is not None
        return processed
