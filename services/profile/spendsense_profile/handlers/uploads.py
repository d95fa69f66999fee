"""Use cases of uploads.

* :func:`receive_upload` (the API): stream the body to the data bucket and record the upload ``received``
  — a claim check, answered at once; nothing is parsed on the request path.
* :func:`process_upload` (the worker's job): parse it within its budgets, then ingest it (merge →
  Parquet snapshot → ``upload.ingested``, all or nothing) or fail it with the reason; delete the received
  bytes either way. New users' snapshots are written while PostgreSQL merges, and announced at once as
  ``upload.staged`` (:func:`announce_staged`, a transaction of its own): a hint on which features
  analyzes ahead, nothing being stored or announced on it until ``upload.ingested``.
* :func:`get_upload` reads its progress, and :func:`record_progress` (:func:`record_personas` for a batch)
  follows that progress from the events of the services downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date

from spendsense_profile.domain.commands import GetUpload, ProcessUpload, ReceiveUpload
from spendsense_profile.domain.ingest import ParsedUpload
from spendsense_profile.domain.uploads import (
    BodyMeter,
    ParseBudget,
    Upload,
    UploadConsentRequired,
    UploadFailure,
    UploadRejected,
    UploadSource,
    UserProgress,
    advances,
    chunk_names,
    consent_missing,
    ingested_events,
    judge,
    source_name,
    user_chunks,
)
from spendsense_profile.handlers.snapshots import as_stored, write_snapshots
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork, UploadParser, UploadSources
from spendsense_shared.blobs import BlobStore
from spendsense_shared.correlation import bind_correlation_id, current_correlation_id
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    EventData,
    PersonaAssigned,
    PersonasAssigned,
    RecommendationsBatchGenerated,
    RecommendationsGenerated,
    UploadFailed,
    UploadIngested,
    UploadStaged,
    new_event,
)
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)

# Announces chunks of an upload being merged (``upload.staged``) at once, whatever becomes of the upload.
Stager = Callable[[list[UploadIngested]], Awaitable[None]]


# -- the request path ----------------------------------------------------------------------------------------


async def receive_upload(
    cmd: ReceiveUpload, uow: ProfileUnitOfWork, sources: UploadSources, max_bytes: int
) -> Upload:
    if not cmd.actor_is_operator:  # their own data: their consent is known now, before a byte is read
        async with uow:
            if await uow.consents.current(cmd.actor_id) is None:
                failure = consent_missing([cmd.actor_id])
                raise UploadRejected(403, failure.code, failure.message, failure.details)
    upload_id = f"up_{uuid.uuid4().hex}"
    name = source_name(upload_id)
    meter = BodyMeter(max_bytes)

    async def metered() -> AsyncIterator[bytes]:
        async for chunk in cmd.body.chunks():
            meter.feed(chunk)
            yield chunk
        meter.finish()  # raising here, after the last chunk, still stores nothing

    await sources.put(name, metered(), cmd.body.content_type)
    upload = Upload.received(
        upload_id,
        cmd.actor_id,
        uploader_is_operator=cmd.actor_is_operator,
        size_bytes=meter.size,
        source=UploadSource(name, cmd.body.filename, cmd.body.content_type),
        correlation_id=current_correlation_id(),
    )
    try:
        async with uow:
            await uow.uploads.add(upload)
            await uow.commit()
    except BaseException:
        await asyncio.shield(sources.delete(name))
        raise
    log.info("upload_received", upload=upload_id, size_bytes=meter.size, operator=cmd.actor_is_operator)
    return upload


# -- the worker's job ----------------------------------------------------------------------------------------


async def process_upload(
    cmd: ProcessUpload,
    uow: ProfileUnitOfWork,
    parser: UploadParser,
    sources: UploadSources,
    data_bucket: BlobStore,
    budget: ParseBudget,
    max_attempts: int,
    stage: Stager | None = None,
) -> Upload | None:
    async with uow:
        upload = await uow.uploads.get(cmd.upload_id)
        if upload is not None and upload.waiting:
            upload.attempts = await uow.uploads.count_attempt(cmd.upload_id)
            await uow.commit()
    if upload is None:
        return None  # erased meanwhile (the erasure deleted its bytes)
    bind_correlation_id(upload.correlation_id)
    if upload.waiting:
        assert upload.source is not None  # a received upload has its bytes until it is decided
        failure = await _ingest_or_failure(upload, uow, parser, data_bucket, budget, max_attempts, stage)
        if failure is not None:
            await _fail(upload.upload_id, failure, uow)
    if upload.source is not None:
        await sources.delete(upload.source.name)
        async with uow:
            await uow.uploads.source_deleted(upload.upload_id)
            await uow.commit()
    async with uow:
        return await uow.uploads.get(cmd.upload_id)


async def _ingest_or_failure(
    upload: Upload,
    uow: ProfileUnitOfWork,
    parser: UploadParser,
    data_bucket: BlobStore,
    budget: ParseBudget,
    max_attempts: int,
    stage: Stager | None,
) -> UploadFailure | None:
    if upload.attempts > max_attempts:
        return UploadFailure(
            "processing_failed", f"parsing was started {max_attempts} times without finishing"
        )
    if not upload.uploader_is_operator:  # revoked since it was received: don't even parse it
        async with uow:
            if await uow.consents.current(upload.uploader_id) is None:
                return consent_missing([upload.uploader_id])
    assert upload.source is not None
    log.info("upload_parsing", upload=upload.upload_id, attempt=upload.attempts, size_bytes=upload.size_bytes)
    started = time.monotonic()
    outcome = await parser.parse(upload.source, budget, default_user_id=upload.uploader_id)
    parse_s = time.monotonic() - started
    failure = judge(outcome, upload.uploader_id, uploader_is_operator=upload.uploader_is_operator)
    if failure is not None:
        return failure
    assert isinstance(outcome, ParsedUpload)
    return await _ingest(upload.upload_id, outcome, uow, data_bucket, parse_s, stage)


async def _ingest(
    upload_id: str,
    parsed: ParsedUpload,
    uow: ProfileUnitOfWork,
    data_bucket: BlobStore,
    parse_s: float,
    stage: Stager | None = None,
) -> UploadFailure | None:
    """Merge, snapshot and announce: all or nothing, and only while the upload is still received."""
    user_ids = sorted(parsed.user_ids)
    async with uow:
        upload = await uow.uploads.get(upload_id, for_update=True)
        if upload is None or not upload.waiting:
            return None  # erased, or decided by another attempt meanwhile
        missing = sorted(await uow.consents.without_current_consent(user_ids))  # one query for them all
        if missing:
            return consent_missing([u for u in missing if not await uow.consents.is_erased(u)])
        chunks = user_chunks(user_ids)
        counts, keys, timings = await _merge_and_snapshot(uow, parsed, upload_id, data_bucket, chunks, stage)
        snapshotted = time.monotonic()
        upload.mark_ingested(
            user_ids=user_ids,
            counts=counts,
            notes=list(parsed.notes),
            keys=[k for chunk in keys for k in chunk],
            format=parsed.format,
            as_of=parsed.as_of,
        )
        await uow.uploads.save(upload)
        for event in ingested_events(upload_id, chunks, data_bucket.bucket, keys, parsed.as_of):
            uow.publish(new_event(event, user_id=user_ids[0] if len(user_ids) == 1 else None))
        await uow.commit()
    log.info(
        "upload_ingested",
        upload=upload_id,
        users=len(user_ids),
        counts=counts,
        parse_s=round(parse_s, 2),
        **{name: round(seconds, 2) for name, seconds in timings.items()},
        commit_s=round(time.monotonic() - snapshotted, 2),
    )
    return None


async def _merge_and_snapshot(
    uow: ProfileUnitOfWork,
    parsed: ParsedUpload,
    upload_id: str,
    data_bucket: BlobStore,
    chunks: list[list[str]],
    stage: Stager | None,
) -> tuple[dict[str, int], list[list[str]], dict[str, float]]:
    """Merge the upload and write its chunks' snapshots: counts, each chunk's keys, seconds per step."""
    names = chunk_names(len(chunks))
    user_ids = [user for chunk in chunks for user in chunk]
    started = time.monotonic()
    if parsed.removed_transaction_ids or await uow.data.holds_rows(user_ids):
        counts = await _merge(uow, parsed, upload_id)
        merged = time.monotonic()
        snapshot = await uow.data.snapshot(user_ids)
        read = time.monotonic()
        keys = await write_snapshots(data_bucket, upload_id, snapshot, chunks, names)
        return (
            counts,
            keys,
            {
                "merge_s": merged - started,
                "snapshot_read_s": read - merged,
                "snapshots_s": time.monotonic() - read,
            },
        )
    # Nothing else is stored of these users: the snapshots are the upload's own rows, written to the
    # bucket while PostgreSQL merges them (a failed merge leaves objects no event names but the hints,
    # under the upload's prefix, which the next attempt writes again).
    writing = asyncio.create_task(_write_as_stored(data_bucket, upload_id, parsed, chunks, names, stage))
    try:
        counts = await _merge(uow, parsed, upload_id)
    except BaseException:
        writing.cancel()
        with contextlib.suppress(BaseException):
            await writing
        raise
    merged = time.monotonic()
    keys, snapshots_s = await writing
    return (
        counts,
        keys,
        {
            "merge_s": merged - started,
            "snapshot_read_s": 0.0,
            "snapshots_s": snapshots_s,
            "snapshots_after_merge_s": time.monotonic() - merged,
        },
    )


async def _merge(uow: ProfileUnitOfWork, parsed: ParsedUpload, upload_id: str) -> dict[str, int]:
    counts = await uow.data.merge(parsed.tables, upload_id)
    counts["removed_transactions"] = await uow.data.remove_transactions(parsed.removed_transaction_ids)
    return counts


async def _write_as_stored(
    data_bucket: BlobStore,
    upload_id: str,
    parsed: ParsedUpload,
    chunks: list[list[str]],
    names: list[str],
    stage: Stager | None,
) -> tuple[list[list[str]], float]:
    """The snapshots of users of whom nothing else is stored, from the upload itself (:func:`as_stored`:
    what reading their rows back after the merge would give), each chunk announced as staged once its
    objects are written; their keys, and the seconds it took."""
    started = time.monotonic()
    snapshot = await asyncio.to_thread(as_stored, parsed.tables)
    written = None if stage is None else _stager(stage, upload_id, chunks, data_bucket.bucket, parsed.as_of)
    keys = await write_snapshots(data_bucket, upload_id, snapshot, chunks, names, written)
    return keys, time.monotonic() - started


def _stager(
    stage: Stager, upload_id: str, chunks: list[list[str]], bucket: str, as_of: date | None
) -> Callable[[int, list[str]], Awaitable[None]]:
    """Announces chunk ``i`` as staged once its snapshots (``keys``) are written."""

    async def announce(index: int, keys: list[str]) -> None:
        staged = ingested_events(upload_id, [chunks[index]], bucket, [keys], as_of, UploadStaged)
        try:
            await stage(staged)
        except Exception:  # a hint lost costs time only: the merge goes on, upload.ingested follows it
            log.warning("upload_staged_not_announced", upload=upload_id, exc_info=True)

    return announce


async def announce_staged(uow: ProfileUnitOfWork, events: list[UploadIngested]) -> None:
    """Publish ``upload.staged`` in a transaction of its own, committed at once: the upload's own
    transaction, still merging, publishes ``upload.ingested`` when, and only if, it commits."""
    async with uow:
        for event in events:
            uow.publish(new_event(event, user_id=event.user_ids[0] if len(event.user_ids) == 1 else None))
        await uow.commit()


async def _fail(upload_id: str, failure: UploadFailure, uow: ProfileUnitOfWork) -> None:
    async with uow:
        upload = await uow.uploads.get(upload_id, for_update=True)
        if upload is None or not upload.waiting:
            return
        upload.mark_failed(failure)
        await uow.uploads.save(upload)
        await uow.commit()
    log.info("upload_failed", upload=upload_id, reason=failure.code, message=failure.message[:300])


# -- reading and following -----------------------------------------------------------------------------------


async def get_upload(query: GetUpload, uow: ProfileUnitOfWork) -> Upload | None:
    """Raises :class:`UploadConsentRequired` when an operator asks for a user's own upload and that
    user's consent is not current; of a batch import, an operator sees only the users whose consent is."""
    async with uow:
        upload = await uow.uploads.get(query.upload_id)
        if upload is None:
            return None
        seen = upload.seen_by(query.actor_id, operator=query.actor_is_operator)
        if seen is None or not query.actor_is_operator:
            return seen
        if not upload.uploader_is_operator:  # a user's own upload: like any of their data
            others = query.actor_id != upload.uploader_id
            if others and await uow.consents.current(upload.uploader_id) is None:
                log.warning("access_denied", reason="consent_required", actor=query.actor_id)
                raise UploadConsentRequired(upload.uploader_id)
            return seen
        ids = sorted({*upload.user_ids, *(u.user_id for u in upload.users)})
        hidden = await uow.consents.without_current_consent(ids)
    return seen.without_users(hidden)


async def record_progress(envelope: EventEnvelope, data: EventData, uow: ProfileUnitOfWork) -> None:
    """persona.assigned / recommendations.generated / upload.failed → the user's stage for that upload."""
    if isinstance(data, PersonaAssigned):
        upload_id, progress = data.upload_id, UserProgress(data.user_id, "analyzed")
    elif isinstance(data, RecommendationsGenerated):
        upload_id, progress = data.upload_id, UserProgress(data.user_id, "recommended")
    elif isinstance(data, UploadFailed):
        upload_id, progress = data.upload_id, UserProgress(data.user_id, "failed", data.reason)
    else:
        raise TypeError(envelope.type)
    await _advance(uow, upload_id, [progress])


async def record_personas(envelope: EventEnvelope, data: EventData, uow: ProfileUnitOfWork) -> None:
    """personas.assigned → every assigned user of the batch is ``analyzed`` in that upload."""
    if not isinstance(data, PersonasAssigned):
        raise TypeError(envelope.type)
    progress = [UserProgress(a.user_id, "analyzed") for a in data.assignments]
    await _advance(uow, data.upload_id, progress)


async def record_recommended(envelope: EventEnvelope, data: EventData, uow: ProfileUnitOfWork) -> None:
    """recommendations.batch_generated → every user of the batch is ``recommended`` in that upload."""
    if not isinstance(data, RecommendationsBatchGenerated):
        raise TypeError(envelope.type)
    progress = [UserProgress(g.user_id, "recommended") for g in data.generated]
    await _advance(uow, data.upload_id, progress)


async def _advance(uow: ProfileUnitOfWork, upload_id: str | None, progress: list[UserProgress]) -> None:
    """Store each user's new stage where it moves the user forward: one read (locking only these users'
    rows, however large the upload) and one write for the whole batch."""
    if upload_id is None:
        return  # e.g. a re-score, not tied to an upload
    current = await uow.uploads.stages_of(upload_id, [p.user_id for p in progress])
    moved = [p for p in progress if p.user_id in current and advances(current[p.user_id].stage, p.stage)]
    if moved:
        await uow.uploads.save_stages(upload_id, moved)
