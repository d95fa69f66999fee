"""Use case: an upload was ingested → compute every signal and persona for its users, store them with
history, and publish ``personas.assigned`` (or ``upload.failed`` for a user without current consent).

The report and account kinds the recommender needs travel by claim check: one JSON line per user in one
object per batch in the data bucket (one PUT; features remembers which objects hold each user's line, so
an erasure can blank it), the event carrying only the claim of the user's line. A batch's
assignments are announced together (one event per chunk, split only to stay small): every publish costs
the broker the same however small the event, and one per user made the broker the pipeline's bottleneck."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal

import orjson
import pyarrow as pa

from spendsense_features.domain.publication import ScoredUser, account_kinds, details_line, score_snapshots
from spendsense_features.domain.rules import RuleSet
from spendsense_features.domain.snapshots import Snapshots
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_features.handlers.unit_of_work import FeaturesUnitOfWork
from spendsense_shared.blobs import BlobStore, object_missing
from spendsense_shared.dataset import keys_of_user, table_of_key, user_of_key
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.batching import event_batches
from spendsense_shared.messaging.catalog import (
    ASSIGNMENTS_MAX_BYTES,
    ASSIGNMENTS_PER_EVENT_MAX,
    EventData,
    PersonaAssignment,
    PersonasAssigned,
    UploadFailed,
    UploadIngested,
    new_event,
)
from spendsense_shared.messaging.claim_check import ClaimCheck, check_in_batch, content_hash
from spendsense_shared.messaging.contracts import AnalysisReport, PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope

if TYPE_CHECKING:
    from spendsense_features.handlers.ahead import Prepared

log = get_logger(__name__)

# Analyzes a chunk of users (their snapshots, rule set, user ids) into what is stored and announced of each
# (:func:`~spendsense_features.domain.publication.score_snapshots`): on a thread here
# (:func:`analyze_on_a_thread`), or in a pool of processes (adapters.analysis_pool).
Analyzer = Callable[[Snapshots, RuleSet, Collection[str]], Awaitable[list[ScoredUser]]]


async def analyze_on_a_thread(
    snapshots: Snapshots, rule_set: RuleSet, user_ids: Collection[str]
) -> list[ScoredUser]:
    return await asyncio.to_thread(score_snapshots, snapshots, rule_set, user_ids)


async def analyze_upload(
    envelope: EventEnvelope,
    data: EventData,
    uow: FeaturesUnitOfWork,
    *,
    store: BlobStore,
    rule_sets: RuleSetStore,
    analyzer: Analyzer = analyze_on_a_thread,
    prepared: Prepared | None = None,
) -> None:
    """Handler for ``upload.ingested`` (the consumer has entered ``uow`` and commits after it). A chunk
    analyzed ahead (``prepared``, on its ``upload.staged``) is taken from there, still running or done."""
    assert isinstance(data, UploadIngested)
    allowed = await uow.consent.granted(list(data.user_ids))
    refused = sorted(set(data.user_ids) - allowed)
    if refused:
        log.info("analysis_skipped", reason="consent_required", users=len(refused))
    for user_id in refused:
        failure = UploadFailed(
            upload_id=data.upload_id, user_id=user_id, stage="analysis", reason="consent_required"
        )
        uow.publish(new_event(failure, user_id=user_id, causation_id=envelope.id))
    done = await uow.analyses.analyzed(data.upload_id, sorted(allowed))
    if done:  # announced again (the profile's reconciler): analyzed once per upload, never twice
        log.info("analysis_already_done", upload_id=data.upload_id, users=len(done))
        await publish_again(uow, store, data, done, causation_id=envelope.id)
        allowed -= done
    if not allowed:
        return
    rule_set = await rule_sets.active(uow.rule_sets)
    started = time.monotonic()
    # A chunk's keys are all its users' (their rows are told by user_id).
    keys = {user_id: keys_of_user(user_id, data.keys) for user_id in sorted(allowed)}
    await uow.snapshots.remember_many(keys, data.upload_id, data.as_of)
    analysis = (
        None if prepared is None else prepared.take(data.upload_id, data.keys, rule_set.version, allowed)
    )
    if analysis is None:
        remembered = time.monotonic()
        try:
            snapshots = await read_snapshots(store, list(data.keys))
        except Exception as exc:
            if not object_missing(exc):
                raise
            # The snapshots are gone (the emulator restarted): not this event's fault, and no retry brings
            # them back. The users stay ingested; the profile's reconciler writes them again and announces
            # the upload again.
            log.warning("snapshots_missing", upload_id=data.upload_id, users=len(allowed))
            return
        log.info(
            "snapshots_read",
            upload_id=data.upload_id,
            objects=len(data.keys),
            remember_s=round(remembered - started, 3),
            read_s=round(time.monotonic() - remembered, 3),
        )
        analysis = analyzer(snapshots, rule_set, allowed)
    scored = await score(uow, store, analysis, rule_set, upload_id=data.upload_id, causation_id=envelope.id)
    for user_id in sorted(allowed - scored):  # else the upload would wait for this user for ever
        failure = UploadFailed(
            upload_id=data.upload_id,
            user_id=user_id,
            stage="analysis",
            reason="no_transactions",
            detail="no posted transactions to analyze",
        )
        uow.publish(new_event(failure, user_id=user_id, causation_id=envelope.id))


async def publish_again(
    uow: FeaturesUnitOfWork,
    store: BlobStore,
    data: UploadIngested,
    user_ids: set[str],
    *,
    causation_id: uuid.UUID,
) -> None:
    """Users analyzed for this upload already, announced again because no recommendation followed (the
    ``personas.assigned`` or what came after it was lost): ``personas.assigned`` is published again from
    the stored analysis. Its details are checked in again (same content, same key: the emulator may have
    lost the object); the accounts they carry come from the snapshots the profile has just rewritten.
    The recommender derives the same recommendations for the same upload and user."""
    stored = await uow.analyses.reports_of_upload(data.upload_id, sorted(user_ids))
    if not stored:
        return
    users = {report["user_id"] for report, _ in stored}
    keys = [k for k in data.keys if table_of_key(k) == "accounts" and user_of_key(k) in (None, *users)]
    try:
        tables = await read_tables(store, keys)
    except Exception as exc:
        if not object_missing(exc):
            raise
        # The snapshots are gone too: the profile's reconciler writes them again and announces again.
        log.warning("snapshots_missing", upload_id=data.upload_id, users=len(users))
        return
    accounts = account_kinds(tables.get("accounts"))
    reports = [report for report, _ in stored]
    lines = [
        details_line(
            PersonaDetails(
                report=AnalysisReport.model_validate(report), accounts=accounts.get(report["user_id"], [])
            )
        )
        for report in reports
    ]
    claims = await check_in_details(store, [r["user_id"] for r in reports], lines)
    await remember_details(uow, reports, claims)
    by_version: dict[str, list[PersonaAssignment]] = {}  # the batch event has one rule set
    for (report, version), claim in zip(stored, claims, strict=True):
        by_version.setdefault(version, []).append(assignment_of(report, claim))
    for version, assignments in sorted(by_version.items()):
        announce(uow, assignments, data.upload_id, version, "upload", causation_id=causation_id)
    log.info("analysis_published_again", upload_id=data.upload_id, users=len(stored))


async def read_snapshots(
    store: BlobStore, keys: list[str], users_of: Mapping[str, Collection[str]] | None = None
) -> Snapshots:
    """The Parquet snapshots named by ``keys``, each read once (decoded where they are analyzed: see
    :class:`~spendsense_features.domain.snapshots.Snapshots`)."""
    keys = list(dict.fromkeys(keys))
    bodies = await store.get_many(keys)
    return Snapshots(tuple(zip(keys, bodies, strict=True)), users_of)


async def read_tables(store: BlobStore, keys: list[str]) -> dict[str, pa.Table]:
    """The snapshots named by ``keys``, decoded here (on a thread), concatenated per table."""
    return await asyncio.to_thread((await read_snapshots(store, keys)).tables)


async def score(
    uow: FeaturesUnitOfWork,
    store: BlobStore,
    analysis: Awaitable[list[ScoredUser]],
    rule_set: RuleSet,
    *,
    upload_id: str | None,
    causation_id: uuid.UUID,
    reason: Literal["upload", "rescore"] = "upload",
) -> set[str]:
    """Await a batch's ``analysis`` (an :data:`Analyzer`'s), store the results and publish
    ``personas.assigned``. Returns the users scored: not those without a posted transaction (no as-of
    date, nothing to analyze)."""
    started = time.monotonic()
    scored = await analysis  # reports checked against the contract there
    reports = [orjson.loads(user.report) for user in scored]
    analyzed = time.monotonic()
    async with asyncio.TaskGroup() as both:  # the bucket and the database at once
        checking_in = both.create_task(
            check_in_details(store, [u.user_id for u in scored], [u.details for u in scored])
        )
        both.create_task(uow.analyses.save_many(reports, upload_id, rule_set.version))
    claims = checking_in.result()
    checked_in = time.monotonic()
    await remember_details(uow, reports, claims)
    assignments = [assignment_of(r, claim) for r, claim in zip(reports, claims, strict=True)]
    announce(uow, assignments, upload_id, rule_set.version, reason, causation_id=causation_id)
    log.info(
        "users_scored",
        upload_id=upload_id,
        users=len(reports),
        rule_set=rule_set.version,
        reason=reason,
        analyze_s=round(analyzed - started, 3),
        details_and_save_s=round(checked_in - analyzed, 3),
        remember_s=round(time.monotonic() - checked_in, 3),
    )
    return {user.user_id for user in scored}


DETAILS_PER_OBJECT = ASSIGNMENTS_PER_EVENT_MAX  # an event's users' details are (mostly) in one object


def details_key(whole: bytes) -> str:
    """Content-addressed: the same details checked in again (``publish_again``) land under the same key."""
    return f"features/details/{content_hash(whole)[:32]}.jsonl"


async def check_in_details(store: BlobStore, user_ids: list[str], lines: list[bytes]) -> list[ClaimCheck]:
    """Store every user's ``PersonaDetails`` line (:func:`details_line`) in a JSON Lines object, up to
    ``DETAILS_PER_OBJECT`` users per object (one PUT each: an upload's chunk of users takes one); their
    claims, in ``user_ids`` order. Lines are ordered by user id, so the same details give the same objects
    whatever order the users come in."""
    order = sorted(range(len(user_ids)), key=user_ids.__getitem__)
    claims: list[ClaimCheck | None] = [None] * len(user_ids)
    for start in range(0, len(order), DETAILS_PER_OBJECT):
        part = order[start : start + DETAILS_PER_OBJECT]
        checked_in = await check_in_batch(store, details_key, [lines[i] for i in part])
        for index, claim in zip(part, checked_in, strict=True):
            claims[index] = claim
    return [claim for claim in claims if claim is not None]


async def remember_details(
    uow: FeaturesUnitOfWork, reports: list[dict[str, Any]], claims: list[ClaimCheck]
) -> None:
    """Which object holds each user's details: an erasure blanks their lines there."""
    await uow.details_objects.remember(
        [(report["user_id"], claim.key) for report, claim in zip(reports, claims, strict=True)]
    )


def assignment_of(report: dict[str, Any], details: ClaimCheck) -> PersonaAssignment:
    """A report (as stored, of a user with an as-of date) as its ``personas.assigned`` entry."""
    windows: dict[str, Any] = report["windows"]
    return PersonaAssignment(
        user_id=report["user_id"],
        as_of=report["as_of"],
        personas={w: v["persona"]["primary"] for w, v in windows.items()},
        matched={w: [m["id"] for m in v["persona"]["matched"]] for w, v in windows.items()},
        details=details,
    )


def announce(
    uow: FeaturesUnitOfWork,
    assignments: list[PersonaAssignment],
    upload_id: str | None,
    version: str,
    reason: Literal["upload", "rescore"],
    *,
    causation_id: uuid.UUID,
) -> None:
    """Publish ``assignments`` as few ``personas.assigned`` events as their limits allow. The envelope
    names no user (as for ``upload.ingested``): the event is about many."""
    for batch in assignment_batches(assignments):
        event = PersonasAssigned(
            upload_id=upload_id, rule_set_version=version, reason=reason, assignments=batch
        )
        uow.publish(new_event(event, causation_id=causation_id))


def assignment_batches(assignments: list[PersonaAssignment]) -> list[list[PersonaAssignment]]:
    """``assignments`` in as few events as ``ASSIGNMENTS_PER_EVENT_MAX`` and ``ASSIGNMENTS_MAX_BYTES``
    allow."""
    return event_batches(assignments, ASSIGNMENTS_PER_EVENT_MAX, ASSIGNMENTS_MAX_BYTES)
