"""Overrides, bulk approval and the auto-approval policy on the operator's real app and PostgreSQL: the
queue shows each item's facts and alternatives; ``POST /override`` (edited text under the shared
guardrails, or an alternative) stores the new text beside the original, audits before/after and
announces ``recommendation.reviewed`` overridden through the outbox; ``/override/check`` reports without
saving; ``/approve`` with a persona/kind filter approves open items of consented users, capped, with what
remains; every refusal (400/403/404/422) is precise and changes nothing."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from spendsense_operator.bootstrap import SERVICE
from spendsense_shared.guardrails import DISCLOSURE
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "review_support.py", "spendsense_operator_review_support")
item, reviewable, T0 = support.review_item, support.reviewable, support.T0
EDIT = {
    "title": "Credit utilization 101: a plan",
    "body": support.CATALOG_BODY + " Paying the $3,400 down over time is one way.",
    "rationale": "Your card ending in 4523 is at 68 % utilization, so a steady plan may help.",
}


@pytest.fixture
async def operator(service_client):
    return support.Operator(await service_client(SERVICE))


async def reviewed_events(op: Any) -> list[Any]:
    return [e for e in await op.outbox() if e.type == "recommendation.reviewed"]


async def test_the_queue_shows_each_items_facts_and_alternatives(operator):
    await operator.queue("u1", reviewable("r1"))
    listed = await operator.client.get("/api/v1/operator/review", headers=operator.headers())
    assert listed.status_code == 200, listed.text
    [shown] = listed.json()["items"]
    assert shown["facts"][1] == {
        "key": "card.utilization",
        "unit": "percent",
        "value": 68.0,
        "display": "68 %",
        "untrusted": False,
    }
    assert [a["catalog_item_id"] for a in shown["alternatives"]] == ["edu-autopay"]
    assert shown["alternatives"][0]["disclosure"] == DISCLOSURE
    assert shown["override"] is None


async def test_an_edited_override_is_stored_audited_and_announced(operator):
    await operator.queue("u1", reviewable("r1"), reviewable("r2"))
    client, me = operator.client, operator.headers()

    checked = await client.post(
        "/api/v1/operator/override/check", json={"recommendation_id": "r1", "text": EDIT}, headers=me
    )
    assert checked.status_code == 200, checked.text
    assert checked.json()["passed"] is True
    assert checked.json()["report"]["reasons"] == []
    assert await reviewed_events(operator) == []  # a check saves nothing

    done = await client.post(
        "/api/v1/operator/override",
        json={"recommendation_id": "r1", "text": EDIT, "reason": "=clearer wording"},
        headers=me,
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["decision"] == "overridden"
    assert body["report"]["passed"] is True
    shown = body["item"]
    assert (shown["status"], shown["decided_by"], shown["reason"]) == (
        "overridden",
        "op-1",
        "=clearer wording",
    )
    assert shown["override"] == {
        **EDIT,
        "disclosure": DISCLOSURE,
        "catalog_item_id": "item-r1",
        "catalog_version": "catalog-v1",
        "source": "edited",
    }
    assert shown["title"] == "Credit utilization 101"  # the recommender's text stays beside it

    [event] = await reviewed_events(operator)
    assert (event.user_id, event.data["decision"], event.data["override"]) == (
        "u1",
        "overridden",
        shown["override"],
    )
    assert event.data["policy"] is None

    audit = (await client.get("/api/v1/operator/audit", headers=me)).json()["items"]
    [entry] = audit
    assert (entry["action"], entry["before_status"], entry["after_status"]) == (
        "override",
        "pending",
        "overridden",
    )
    assert entry["before"]["rationale"] == "Your card ending in 4523 is at 68 % utilization ($3,400 balance)."
    assert entry["after"] == shown["override"]
    exported = list(
        csv.DictReader(io.StringIO((await client.get("/api/v1/operator/audit.csv", headers=me)).text))
    )
    assert json.loads(exported[0]["after"])["source"] == "edited"
    assert exported[0]["reason"] == "'=clearer wording"  # never a formula

    counts = (await client.get("/api/v1/operator/review", headers=me)).json()["counts"]
    assert counts == {"pending": 1, "approved": 0, "rejected": 0, "flagged": 0, "overridden": 1}
    overridden = await client.get("/api/v1/operator/review", params={"status": "overridden"}, headers=me)
    assert [i["recommendation_id"] for i in overridden.json()["items"]] == ["r1"]


async def test_an_override_with_an_alternative(operator):
    await operator.queue("u1", reviewable("r1"))
    done = await operator.client.post(
        "/api/v1/operator/override",
        json={"recommendation_id": "r1", "catalog_item_id": "edu-autopay", "reason": "a better fit"},
        headers=operator.headers(),
    )
    assert done.status_code == 200, done.text
    override = done.json()["item"]["override"]
    assert (override["source"], override["catalog_item_id"], override["title"]) == (
        "catalog_item",
        "edu-autopay",
        "Autopay basics",
    )
    assert done.json()["report"]["grounding"]["checked_by"] == "recommender"
    [event] = await reviewed_events(operator)
    assert event.data["override"]["catalog_item_id"] == "edu-autopay"


async def test_every_refused_override_is_precise_and_changes_nothing(operator):
    await operator.queue("u1", reviewable("r1"))
    await operator.queue("u2", reviewable("r2"))
    await operator.consent("u2", granted=False, hours=1)
    client, me = operator.client, operator.headers()

    async def post(path: str, body: dict[str, Any]) -> Any:
        return await client.post(f"/api/v1/operator/{path}", json=body, headers=me)

    invented = {**EDIT, "rationale": EDIT["rationale"].replace("68 %", "91 %")}
    failed = await post("override", {"recommendation_id": "r1", "text": invented, "reason": "x"})
    assert failed.status_code == 422
    error = failed.json()["error"]
    assert error["code"] == "guardrails_failed"
    assert error["details"]["reasons"] == ["grounding"]
    assert error["details"]["grounding"]["unmatched"] == ["91 %"]
    assert set(error["details"]) >= {"passed", "tone", "grounding", "disclosure", "length"}

    shaming = {**EDIT, "body": EDIT["body"] + " Stop wasting money."}
    assert (await post("override/check", {"recommendation_id": "r1", "text": shaming})).json()["report"][
        "reasons"
    ] == ["tone"]

    stranger = await post(
        "override", {"recommendation_id": "r1", "catalog_item_id": "edu-payday", "reason": "x"}
    )
    assert stranger.status_code == 422
    assert stranger.json()["error"]["code"] == "not_an_alternative"
    assert stranger.json()["error"]["details"] == {
        "field": "catalog_item_id",
        "catalog_item_id": "edu-payday",
        "alternatives": ["edu-autopay"],
    }

    both = await post(
        "override", {"recommendation_id": "r1", "text": EDIT, "catalog_item_id": "edu-autopay", "reason": "x"}
    )
    assert both.status_code == 422
    assert [d["field"] for d in both.json()["error"]["details"]] == ["text", "catalog_item_id"]
    neither = await post("override/check", {"recommendation_id": "r1"})
    assert neither.status_code == 422
    assert [d["field"] for d in neither.json()["error"]["details"]] == ["text", "catalog_item_id"]
    no_reason = await post("override", {"recommendation_id": "r1", "text": EDIT})
    assert no_reason.status_code == 422
    assert no_reason.json()["error"]["details"][0]["field"] == "reason"
    blank = await post("override", {"recommendation_id": "r1", "text": EDIT, "reason": "   "})
    assert (blank.status_code, blank.json()["error"]["details"][0]["field"]) == (422, "reason")
    partial_text = await post("override", {"recommendation_id": "r1", "text": {"title": "t"}, "reason": "x"})
    assert {d["field"] for d in partial_text.json()["error"]["details"]} == {"text.body", "text.rationale"}

    unknown = await post("override", {"recommendation_id": "nope", "text": EDIT, "reason": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["details"] == {"recommendation_ids": ["nope"]}
    assert (await post("override/check", {"recommendation_id": "nope", "text": EDIT})).status_code == 404

    revoked = await post("override", {"recommendation_id": "r2", "text": EDIT, "reason": "x"})
    assert revoked.status_code == 403
    assert revoked.json()["error"] == {
        "code": "consent_required",
        "message": "the user has not given current consent: u2",
        "details": {"user_ids": ["u2"]},
    }
    assert (await post("override/check", {"recommendation_id": "r2", "text": EDIT})).status_code == 403

    user = await client.post(
        "/api/v1/operator/override",
        json={"recommendation_id": "r1", "text": EDIT, "reason": "x"},
        headers=client.as_("u1"),
    )
    assert user.status_code == 403
    assert (await client.post("/api/v1/operator/override/check", json={})).status_code == 401

    listed = (await client.get("/api/v1/operator/review", headers=me)).json()["items"]
    assert {(i["status"], i["override"]) for i in listed} == {("pending", None)}
    assert (await client.get("/api/v1/operator/audit", headers=me)).json()["items"] == []
    assert await reviewed_events(operator) == []


async def test_bulk_approval_by_persona_and_kind(operator):
    await operator.queue(
        "u1", item("a1", persona="debtor"), item("a2", "offer", persona="debtor"), item("a3")
    )
    await operator.queue("u2", item("b1", persona="debtor"), at=T0.replace(hour=1))
    await operator.queue("u3", item("c1", persona="debtor"))
    await operator.consent("u3", granted=False, hours=1)
    client, me = operator.client, operator.headers()

    first = await client.post(
        "/api/v1/operator/approve", json={"filter": {"persona": "debtor"}, "limit": 2}, headers=me
    )
    assert first.status_code == 200, first.text
    assert [i["recommendation_id"] for i in first.json()["items"]] == ["a1", "a2"]
    assert first.json()["remaining"] == 1
    rest = await client.post(
        "/api/v1/operator/approve", json={"filter": {"persona": "debtor", "kind": "education"}}, headers=me
    )
    assert ([i["recommendation_id"] for i in rest.json()["items"]], rest.json()["remaining"]) == (["b1"], 0)
    by_kind = await client.post(
        "/api/v1/operator/approve", json={"filter": {"kind": "education"}}, headers=me
    )
    assert [i["recommendation_id"] for i in by_kind.json()["items"]] == ["a3"]
    by_ids = await client.post("/api/v1/operator/approve", json={"recommendation_ids": ["a3"]}, headers=me)
    assert by_ids.json()["remaining"] is None

    events = await reviewed_events(operator)
    assert [e.data["recommendation_id"] for e in events] == ["a1", "a2", "b1", "a3", "a3"]
    listed = await client.get("/api/v1/operator/review", params={"status": "pending"}, headers=me)
    assert listed.json()["items"] == []  # u3's item is left out, not refused (and not listed to staff)

    async def refused(body: dict[str, Any]) -> list[str]:
        answer = await client.post("/api/v1/operator/approve", json=body, headers=me)
        assert answer.status_code == 422, answer.text
        return [d["field"] for d in answer.json()["error"]["details"]]

    assert await refused({"filter": {}}) == ["filter"]
    assert await refused({"filter": {"kind": "loan"}}) == ["filter.kind"]
    assert await refused({"user_id": "u1", "filter": {"kind": "offer"}}) == ["user_id", "filter"]
    assert await refused({}) == ["recommendation_ids", "user_id", "filter"]
    assert await refused({"user_id": "u1", "limit": 5}) == ["limit"]
    assert await refused({"filter": {"kind": "offer"}, "limit": 1001}) == ["limit"]


async def test_the_auto_approval_policy_approves_clean_education_items_as_they_are_queued(service_client):
    op = support.Operator(await service_client(SERVICE, auto_approval_policy="education_checks_passed"))
    failing = support.ALL_PASSED.model_copy(update={"grounding": False})
    await op.queue(
        "u1",
        item("ok"),
        item("offer", "offer"),
        item("fallback", fell_back_to_template=True),
        item("ungrounded", guardrails=failing),
    )
    listed = (await op.client.get("/api/v1/operator/review", headers=op.headers())).json()["items"]
    assert {i["recommendation_id"]: (i["status"], i["decided_by"]) for i in listed} == {
        "ok": ("approved", "policy:education_checks_passed"),
        "offer": ("pending", None),
        "fallback": ("pending", None),
        "ungrounded": ("pending", None),
    }
    [event] = await reviewed_events(op)
    assert (event.data["recommendation_id"], event.data["policy"], event.data["operator_id"]) == (
        "ok",
        "education_checks_passed",
        "policy:education_checks_passed",
    )
    [entry] = (await op.client.get("/api/v1/operator/audit", headers=op.headers())).json()["items"]
    assert (entry["operator_id"], entry["action"], entry["recommendation_id"]) == (
        "policy:education_checks_passed",
        "approve",
        "ok",
    )


async def test_an_unknown_policy_fails_at_load_naming_the_setting(service_client):
    with pytest.raises(ValueError, match="auto_approval_policy"):
        await service_client(SERVICE, auto_approval_policy="approve_everything")
