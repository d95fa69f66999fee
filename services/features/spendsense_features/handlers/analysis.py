"""Use case: an upload was ingested → compute every signal and persona for its users, store them with
history, and publish ``persona.assigned`` (or ``upload.failed`` for a user without current consent)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from typing import Any, Literal

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from spendsense_features.adapters.orm import (
    consent_projection,
    persona_assignments,
    persona_history,
    signals,
    user_snapshots,
)
from spendsense_features.adapters.rule_sets import RuleSetStore
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import RuleSet
from spendsense_shared.dataset import from_parquet, table_of_key
from spendsense_shared.db import UnitOfWork
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    EventData,
    PersonaAssigned,
    UploadFailed,
    UploadIngested,
    new_event,
)
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.storage import ObjectStore

log = get_logger(__name__)


async def consented(uow: UnitOfWork, user_ids: list[str]) -> set[str]:
    rows = await uow.session.execute(
        select(consent_projection.c.user_id).where(
            consent_projection.c.user_id.in_(user_ids), consent_projection.c.status == "granted"
        )
    )
    return {r.user_id for r in rows}


async def read_tables(store: ObjectStore, keys: list[str]) -> dict[str, pa.Table]:
    """The Parquet snapshots named by the event, concatenated per table."""
    bodies = await store.get_many(keys)

    def decode() -> dict[str, pa.Table]:
        parts: dict[str, list[pa.Table]] = {}
        for key, body in zip(keys, bodies, strict=True):
            parts.setdefault(table_of_key(key), []).append(from_parquet(body, dictionary=True))
        return {name: pa.concat_tables(tables) for name, tables in parts.items()}

    return await asyncio.to_thread(decode)


class AnalyzeUpload:
    """Handler for ``upload.ingested``."""

    def __init__(self, store: ObjectStore, rule_sets: RuleSetStore):
        self.store = store
        self.rule_sets = rule_sets

    async def __call__(self, envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
        assert isinstance(data, UploadIngested)
        allowed = await consented(uow, data.user_ids)
        for user_id in sorted(set(data.user_ids) - allowed):
            failure = UploadFailed(
                upload_id=data.upload_id, user_id=user_id, stage="analysis", reason="consent_required"
            )
            uow.publish(new_event(failure, user_id=user_id, causation_id=envelope.id))
        if not allowed:
            return
        await remember_snapshots(uow, data, allowed)
        tables = await read_tables(self.store, list(data.keys))
        rule_set = await self.rule_sets.active(uow.session)
        scored = await score(
            uow, tables, allowed, rule_set, upload_id=data.upload_id, causation_id=envelope.id
        )
        for user_id in sorted(allowed - scored):  # else the upload would wait for this user for ever
            failure = UploadFailed(
                upload_id=data.upload_id,
                user_id=user_id,
                stage="analysis",
                reason="no_transactions",
                detail="no posted transactions to analyze",
            )
            uow.publish(new_event(failure, user_id=user_id, causation_id=envelope.id))


async def score(
    uow: UnitOfWork,
    tables: dict[str, pa.Table],
    user_ids: set[str],
    rule_set: RuleSet,
    *,
    upload_id: str | None,
    causation_id: uuid.UUID,
    reason: Literal["upload", "rescore"] = "upload",
) -> set[str]:
    """Analyze ``user_ids`` in one vectorized batch, store the results and publish ``persona.assigned``.
    Returns the users scored: not those without a posted transaction (no as-of date, nothing to analyze)."""
    reports = await asyncio.to_thread(analyze, tables, rule_set, user_ids)
    reports = [r for r in reports if r["as_of"] is not None]
    accounts = accounts_by_user(tables.get("accounts"))
    for report in reports:
        await save_report(uow, report, upload_id, rule_set.version)
        event = persona_event(report, upload_id, rule_set.version).model_copy(
            update={
                "reason": reason,
                "report": event_report(report),
                "accounts": accounts.get(report["user_id"], []),
            }
        )
        uow.publish(new_event(event, user_id=report["user_id"], causation_id=causation_id))
    log.info(
        "users_scored", upload_id=upload_id, users=len(reports), rule_set=rule_set.version, reason=reason
    )
    return {r["user_id"] for r in reports}


ACCOUNT_FIELDS = ("type", "subtype", "name", "official_name", "holder_category")
MAX_EVENT_REPORT_BYTES = 120_000  # SNS allows 256 KB per message; leave room for the envelope


def accounts_by_user(accounts: pa.Table | None) -> dict[str, list[dict[str, Any]]]:
    """What offer eligibility needs about each account: kinds and names, never numbers or ids."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    if accounts is None:
        return grouped
    for row in accounts.select(["user_id", *ACCOUNT_FIELDS]).to_pylist():
        grouped.setdefault(str(row.pop("user_id")), []).append(row)
    return grouped


def event_report(report: dict[str, Any]) -> dict[str, Any]:
    """The report for the event; the Plaid-shaped stream lists go first if it would be too large."""
    if len(json.dumps(report, default=str)) <= MAX_EVENT_REPORT_BYTES:
        return report
    slim = json.loads(json.dumps(report, default=str))
    for window in slim["windows"].values():
        window["signals"].get("subscriptions", {}).pop("streams", None)
    return slim


async def remember_snapshots(uow: UnitOfWork, data: UploadIngested, user_ids: set[str]) -> None:
    for user_id in user_ids:
        keys = [k for k in data.keys if f"/users/{user_id}/" in f"/{k}"]
        row = {"user_id": user_id, "upload_id": data.upload_id, "object_keys": keys, "as_of": data.as_of}
        await uow.session.execute(
            insert(user_snapshots)
            .values(row)
            .on_conflict_do_update(
                index_elements=[user_snapshots.c.user_id],
                set_={
                    "upload_id": data.upload_id,
                    "object_keys": keys,
                    "as_of": data.as_of,
                    "updated_at": func.now(),
                },
            )
        )


def persona_event(report: dict[str, Any], upload_id: str | None, version: str) -> PersonaAssigned:
    windows = report["windows"]
    return PersonaAssigned(
        user_id=report["user_id"],
        upload_id=upload_id,
        as_of=date.fromisoformat(report["as_of"]),
        rule_set_version=version,
        personas={w: v["persona"]["primary"] for w, v in windows.items()},
        matched={w: [m["id"] for m in v["persona"]["matched"]] for w, v in windows.items()},
    )


async def save_report(uow: UnitOfWork, report: dict[str, Any], upload_id: str | None, version: str) -> None:
    user_id, as_of = report["user_id"], date.fromisoformat(report["as_of"])
    previous = {
        r.window: r.primary_persona
        for r in await uow.session.execute(
            select(persona_assignments.c.window, persona_assignments.c.primary_persona).where(
                persona_assignments.c.user_id == user_id
            )
        )
    }
    for window, result in report["windows"].items():
        persona = result["persona"]
        signal_row = {
            "user_id": user_id,
            "window": window,
            "as_of": as_of,
            "upload_id": upload_id,
            "values": result["signals"],
        }
        await uow.session.execute(
            insert(signals)
            .values(signal_row)
            .on_conflict_do_update(
                index_elements=[signals.c.user_id, signals.c.window],
                set_={k: v for k, v in signal_row.items() if k not in ("user_id", "window")},
            )
        )
        assignment = {
            "user_id": user_id,
            "window": window,
            "primary_persona": persona["primary"],
            "matched": persona["matched"],
            "rule_set_version": version,
            "as_of": as_of,
            "upload_id": upload_id,
        }
        await uow.session.execute(
            insert(persona_assignments)
            .values(assignment)
            .on_conflict_do_update(
                index_elements=[persona_assignments.c.user_id, persona_assignments.c.window],
                set_={k: v for k, v in assignment.items() if k not in ("user_id", "window")},
            )
        )
        await uow.session.execute(
            insert(persona_history).values(
                user_id=user_id,
                window=window,
                primary_persona=persona["primary"],
                previous_persona=previous.get(window),
                rule_set_version=version,
                as_of=as_of,
                upload_id=upload_id,
            )
        )
