"""An upload announced again for users the features service analyzed already (the profile's reconciler:
no recommendations followed) against the in-memory unit of work and data bucket: ``personas.assigned`` is
published again from the stored analysis, the same data and claim, its details checked in again when the
bucket lost them; not analyzed again; and not for a user analyzed since for a newer upload."""

from __future__ import annotations

from datetime import timedelta

from spendsense_features.handlers.analysis import analyze_upload
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_shared.messaging.claim_check import redeem
from spendsense_shared.messaging.contracts import PersonaDetails
from spendsense_shared.testing.fakes import load_beside

handlers = load_beside(__file__, "test_handlers.py", "spendsense_features_unit_test_handlers")


async def test_an_analyzed_user_announced_again_gets_its_persona_published_again(uow, data_bucket):
    await handlers.consent(uow, "u1")
    first = await handlers.ingested(data_bucket, "up1", {"u1": handlers.HU})
    await handlers.handle(analyze_upload, first, uow, store=data_bucket, rule_sets=RuleSetStore())
    [original] = handlers.events(uow, "personas.assigned")
    await data_bucket.delete_prefix("features/")  # the emulator lost the details
    history = len(uow.analyses.history["u1"])

    again = await handlers.ingested(data_bucket, "up1", {"u1": handlers.HU})
    await handlers.handle(analyze_upload, again, uow, store=data_bucket, rule_sets=RuleSetStore())

    [_, republished] = handlers.events(uow, "personas.assigned")
    assert republished.id != original.id
    assert republished.causation_id == again.id
    assert republished.data == original.data  # the stored analysis: the same data, the same claim
    [one] = handlers.parse_data(republished).each()
    details = PersonaDetails.model_validate_json(await redeem(data_bucket, one.details))
    assert details.report.user_id == "u1"
    assert details.accounts
    assert len(uow.analyses.history["u1"]) == history  # not analyzed again


async def test_a_user_analyzed_since_for_a_newer_upload_is_not_published_again(uow, data_bucket):
    await handlers.consent(uow, "u1")
    rule_sets = RuleSetStore()
    for upload_id, as_of in (("up1", handlers.AS_OF), ("up2", handlers.AS_OF + timedelta(days=7))):
        event = await handlers.ingested(data_bucket, upload_id, {"u1": handlers.HU}, as_of)
        await handlers.handle(analyze_upload, event, uow, store=data_bucket, rule_sets=rule_sets)
    assert len(handlers.assigned(uow)) == 2

    again = await handlers.ingested(data_bucket, "up1", {"u1": handlers.HU})
    await handlers.handle(analyze_upload, again, uow, store=data_bucket, rule_sets=rule_sets)

    assert len(handlers.assigned(uow)) == 2  # its current analysis is up2's
