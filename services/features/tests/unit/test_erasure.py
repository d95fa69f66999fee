"""``user.erasure_requested`` on the in-memory unit of work: the user's signals, personas, history,
snapshot pointer, analysis objects and consent row go (a tombstone stays under a one-way hash), others'
stay; a redelivery, a late ``consent.granted`` or a late ``upload.ingested`` recreates nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import pytest

from spendsense_cli.synthetic import build_user
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import load_rule_set
from spendsense_features.handlers.analysis import analyze_upload
from spendsense_features.handlers.erasure import erase_user
from spendsense_features.handlers.merge import merge_users
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_profile.domain.ingest import parse_upload
from spendsense_shared.consent import project_consent
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    UploadIngested,
    UserErasureRequested,
    UserMerged,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheckMismatch, redeem, redeem_many
from spendsense_shared.messaging.contracts import PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import InMemoryBlobStore, load_beside

RULES = load_rule_set()
AS_OF = date(2026, 10, 31)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def report(index: int, user_id: str) -> dict[str, Any]:
    user = {**build_user(index, as_of=AS_OF)[0], "user_id": user_id}
    parsed = parse_upload(json.dumps(user).encode())
    assert parsed.ok
    [result] = analyze(parsed.tables, RULES)
    return json.loads(json.dumps(result, default=str))


def granted(user_id: str, at: datetime) -> EventEnvelope:
    data = ConsentGranted(
        user_id=user_id, consent_id=f"c-{user_id}", policy_version="1", scopes=["analysis"], granted_at=at
    )
    return new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})


async def handle(handler: Any, event: EventEnvelope, uow: Any) -> None:
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


def state(uow: Any) -> Any:
    a = uow.analyses
    return copy.deepcopy((a.signal_rows, a.assignments, a.history, uow.snapshots.rows, uow.consent.rows))


async def test_erasure_deletes_everything_of_the_user_and_nothing_brings_it_back(uow):
    blobs = InMemoryBlobStore()
    for user_id in ("gone", "kept"):
        await handle(project_consent, granted(user_id, T0), uow)
        await uow.snapshots.remember(
            user_id, "up1", [f"profile/users/{user_id}/uploads/up1/t.parquet"], AS_OF
        )
        await uow.analyses.save(report(4, user_id), "up1", RULES.version)
    await blobs.put_many(
        [("features/users/gone/analysis/a.json", b"{}"), ("features/users/gone2/analysis/a.json", b"{}")],
        "application/json",
    )

    erasure = new_event(UserErasureRequested(user_id="gone", requested_at=T0), user_id="gone")
    await handle(partial(erase_user, store=blobs), erasure, uow)

    a = uow.analyses
    assert {u for u, _ in a.signal_rows} == {"kept"}
    assert {u for u, _ in a.assignments} == {"kept"}
    assert set(a.history) == {"kept"}
    assert set(uow.snapshots.rows) == {"kept"}
    assert set(blobs.objects) == {"features/users/gone2/analysis/a.json"}
    assert set(uow.consent.rows) == {"kept", pseudonym("gone")}
    assert [s.user_id for s in await uow.snapshots.of_consented_users()] == ["kept"]  # no re-score of it
    [confirmed] = [e for e in uow.published if e.type == "features.user_erased"]
    assert confirmed.data["subject"] == pseudonym("gone")
    assert confirmed.user_id is None
    assert '"gone"' not in confirmed.model_dump_json()  # the confirmation names nobody

    after = state(uow)
    await handle(partial(erase_user, store=blobs), erasure, uow)  # a redelivery
    await handle(project_consent, granted("gone", datetime.now(UTC)), uow)  # a late or replayed grant
    late = UploadIngested(upload_id="up2", user_ids=["gone"], bucket=blobs.bucket, keys=[], as_of=AS_OF)
    await handle(
        partial(analyze_upload, store=blobs, rule_sets=RuleSetStore()), new_event(late, user_id="gone"), uow
    )
    assert state(uow) == after
    assert [e.data["reason"] for e in uow.published if e.type == "upload.failed"] == ["consent_required"]


handlers = load_beside(__file__, "test_handlers.py", "spendsense_features_unit_test_handlers")


async def test_erasure_blanks_the_users_lines_of_details_merged_ones_included_and_others_still_redeem(uow):
    blobs = InMemoryBlobStore()
    for user_id in ("gone", "merged", "kept"):
        await handlers.consent(uow, user_id)
    event = await handlers.ingested(blobs, "up1", {"gone": handlers.HU, "merged": handlers.SB, "kept": 1})
    await handle(partial(analyze_upload, store=blobs, rule_sets=RuleSetStore()), event, uow)
    claims = {a.user_id: a.details for a in handlers.assigned(uow)}
    [key] = {c.key for c in claims.values()}  # one object for the batch
    await handle(merge_users, new_event(UserMerged(source_user_id="merged", target_user_id="gone")), uow)

    erasure = new_event(UserErasureRequested(user_id="gone", requested_at=T0), user_id="gone")
    await handle(partial(erase_user, store=blobs), erasure, uow)
    await handle(partial(erase_user, store=blobs), erasure, uow)  # a redelivery: nothing left to blank

    stored = blobs.objects[key]
    for user_id in ("gone", "merged"):  # the merged account's line is the remaining account's
        claim = claims[user_id]
        assert claim.offset is not None
        assert stored[claim.offset : claim.offset + claim.size_bytes].strip(b" ") == b""
        with pytest.raises(ClaimCheckMismatch):
            await redeem(blobs, claim)
        assert f'"{user_id}"'.encode() not in stored
    [kept] = await redeem_many(blobs, [claims["kept"]])
    assert PersonaDetails.model_validate_json(kept).report.user_id == "kept"
    assert {u for u, _, _ in uow.details_objects.rows} == {"kept"}
