"""Bulk approval by persona and/or kind (open items of consented users, capped, with what remains) and
the auto-approval policy: the pure rule (with properties over generated items), its setting, and the
``recommendations.generated`` handler applying it in the same transaction."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from spendsense_operator.domain.commands import ApproveMatching, Decide
from spendsense_operator.domain.model import BULK_APPROVE_MAX, MatchFilter, QueuedItem
from spendsense_operator.domain.policy import GUARDRAIL_CHECKS, POLICIES, auto_approves, policy_operator
from spendsense_operator.handlers.review import approve_matching, decide
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.messaging.catalog import parse_data
from spendsense_shared.messaging.contracts import GuardrailResults
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "support.py", "spendsense_operator_unit_support")
item, queued, consent, T0 = support.item, support.queued, support.consent, support.T0

# --- bulk approval -----------------------------------------------------------------------------------


async def bulk(uow: Any, limit: int = BULK_APPROVE_MAX, **where: Any) -> Any:
    return await approve_matching(ApproveMatching(MatchFilter(**where), "op-1", limit), uow)


async def test_bulk_approval_takes_the_open_items_of_a_persona_among_consented_users(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("a1"), item("a2", "offer"), item("a3", persona="saver"))
    await queued(uow, data_bucket, "u2", item("b1"), at=T0 + timedelta(hours=1))
    await queued(uow, data_bucket, "u3", item("c1"))
    await consent(uow, "u3", granted=False, hours=1)  # left out, not refused
    await decide(Decide("rejected", "op-0", recommendation_ids=("a2",), reason="no"), uow)
    await decide(Decide("flagged", "op-0", recommendation_ids=("b1",)), uow)

    result = await bulk(uow, persona="high_utilization")

    assert result.decision == "approved"
    assert [i.recommendation_id for i in result.items] == ["a1", "b1"]  # oldest first; flagged is open
    assert result.remaining == 0
    statuses = {rid: i.status for rid, i in uow.queue.items.items()}
    assert statuses == {
        "a1": "approved",
        "a2": "rejected",
        "a3": "pending",
        "b1": "approved",
        "c1": "pending",
    }
    audited = [(e.recommendation_id, e.before_status, e.operator_id) for e in uow.audit.entries[2:]]
    assert audited == [("a1", "pending", "op-1"), ("b1", "flagged", "op-1")]
    announced = [parse_data(e) for e in uow.published[2:]]
    assert [(r.recommendation_id, r.decision, r.policy) for r in announced] == [  # type: ignore[attr-defined]
        ("a1", "approved", None),
        ("b1", "approved", None),
    ]


async def test_bulk_approval_by_kind_or_both_and_capped_with_what_remains(uow, data_bucket):
    items = [item(f"e{n}") for n in range(5)] + [item("o1", "offer"), item("s1", "offer", persona="saver")]
    await queued(uow, data_bucket, "u1", *items)

    both = await bulk(uow, persona="saver", kind="offer")
    assert [i.recommendation_id for i in both.items] == ["s1"]
    first = await bulk(uow, limit=3, kind="education")
    assert (len(first.items), first.remaining) == (3, 2)
    rest = await bulk(uow, limit=3, kind="education")
    assert ([i.recommendation_id for i in rest.items], rest.remaining) == (["e3", "e4"], 0)
    empty = await bulk(uow, kind="education")
    assert (empty.items, empty.remaining) == ([], 0)
    assert uow.queue.items["o1"].status == "pending"


def test_a_bulk_filter_names_a_persona_or_a_kind_and_a_call_is_capped():
    with pytest.raises(ValueError, match="persona, a kind"):
        MatchFilter()
    with pytest.raises(ValueError, match="limit"):
        ApproveMatching(MatchFilter(kind="offer"), "op-1", BULK_APPROVE_MAX + 1)
    with pytest.raises(ValueError, match="limit"):
        ApproveMatching(MatchFilter(kind="offer"), "op-1", 0)


# --- the policy (pure) ----------------------------------------------------------------------------


def queued_item(**changes: Any) -> QueuedItem:
    fields: dict[str, Any] = {
        "recommendation_id": "r1",
        "user_id": "u1",
        "upload_id": "up1",
        "persona": "saver",
        "kind": "education",
        "title": "t",
        "body": "b",
        "rationale": "r",
        "disclosure": "d",
        "catalog_item_id": "i",
        "catalog_version": "catalog-v1",
        "rank": 1,
        "guardrails": dict.fromkeys(GUARDRAIL_CHECKS, True),
        "generator": "template",
        "fell_back_to_template": False,
        "priority": 0,
        "created_at": T0,
    }
    return QueuedItem(**(fields | changes))


items = st.builds(
    queued_item,
    kind=st.sampled_from(["education", "offer"]),
    guardrails=st.dictionaries(st.sampled_from([*GUARDRAIL_CHECKS, "extra"]), st.booleans()),
    fell_back_to_template=st.booleans(),
    generator=st.sampled_from(["template", "openai"]),
    status=st.sampled_from(["pending", "approved", "rejected", "flagged", "overridden"]),
)


@given(items)
def test_off_never_approves(candidate):
    assert not auto_approves("off", candidate)


@given(items)
def test_education_checks_passed_is_exactly_its_four_conditions(candidate):
    expected = (
        candidate.kind == "education"
        and all(candidate.guardrails.get(c) is True for c in GUARDRAIL_CHECKS)
        and not candidate.fell_back_to_template
        and candidate.status == "pending"
    )
    assert auto_approves("education_checks_passed", candidate) is expected


@given(items, st.sampled_from(GUARDRAIL_CHECKS))
def test_a_failed_or_missing_check_always_keeps_the_item_for_a_human(candidate, check):
    failed = dataclasses.replace(candidate, guardrails={**candidate.guardrails, check: False})
    missing = dataclasses.replace(
        candidate, guardrails={k: v for k, v in candidate.guardrails.items() if k != check}
    )
    assert not auto_approves("education_checks_passed", failed)
    assert not auto_approves("education_checks_passed", missing)


def test_the_policy_in_examples():
    assert auto_approves("education_checks_passed", queued_item())
    assert auto_approves("education_checks_passed", queued_item(generator="openai"))
    assert not auto_approves("education_checks_passed", queued_item(kind="offer"))
    assert not auto_approves("education_checks_passed", queued_item(fell_back_to_template=True))
    assert not auto_approves("education_checks_passed", queued_item(guardrails={"tone": True}))
    assert policy_operator("education_checks_passed") == "policy:education_checks_passed"
    with pytest.raises(ValueError, match="unknown auto-approval policy"):
        auto_approves("sometimes", queued_item())  # type: ignore[arg-type]


def test_the_setting_defaults_to_off_reads_the_environment_and_refuses_unknown_values(monkeypatch):
    assert OperatorSettings().auto_approval_policy == "off"
    monkeypatch.setenv("SPENDSENSE_AUTO_APPROVAL_POLICY", "education_checks_passed")
    assert OperatorSettings().auto_approval_policy == "education_checks_passed"
    monkeypatch.setenv("SPENDSENSE_AUTO_APPROVAL_POLICY", "everything")
    with pytest.raises(ValidationError) as refused:
        OperatorSettings()
    assert refused.value.errors()[0]["loc"] == ("auto_approval_policy",)
    assert set(POLICIES) == {"off", "education_checks_passed"}


# --- the policy at work ---------------------------------------------------------------------------

FAILED_TONE = GuardrailResults(tone=False, grounding=True, disclosure=True, length=True)


async def test_the_policy_approves_what_it_covers_as_the_items_are_queued(uow, data_bucket):
    await consent(uow, "u1")
    event = support.generated(
        "u1",
        [
            item("ok"),
            item("offer", "offer"),
            item("fallback", fell_back_to_template=True),
            item("tone", guardrails=FAILED_TONE),
        ],
    )
    await support.deliver(uow, data_bucket, event, policy="education_checks_passed")

    statuses = {rid: (i.status, i.decided_by) for rid, i in uow.queue.items.items()}
    assert statuses == {
        "ok": ("approved", "policy:education_checks_passed"),
        "offer": ("pending", None),
        "fallback": ("pending", None),
        "tone": ("pending", None),
    }
    [entry] = uow.audit.entries
    assert (entry.recommendation_id, entry.action, entry.operator_id, entry.before_status) == (
        "ok",
        "approve",
        "policy:education_checks_passed",
        "pending",
    )
    assert entry.reason is not None
    assert "four guardrail checks" in entry.reason
    [announced] = uow.published
    reviewed = parse_data(announced)
    assert (reviewed.decision, reviewed.policy, reviewed.operator_id) == (  # type: ignore[attr-defined]
        "approved",
        "education_checks_passed",
        "policy:education_checks_passed",
    )
    assert announced.causation_id == event.id
    assert announced.user_id == "u1"
    assert uow.commits == 2  # consent, then the queue and its approvals in one transaction

    await support.deliver(uow, data_bucket, event, policy="education_checks_passed")  # a redelivery
    assert len(uow.audit.entries) == 1
    assert len(uow.published) == 1


async def test_with_the_policy_off_or_without_consent_nothing_is_approved(uow, data_bucket):
    await consent(uow, "u1")
    await support.deliver(uow, data_bucket, support.generated("u1", [item("r1")]))
    assert uow.queue.items["r1"].status == "pending"
    await support.deliver(
        uow, data_bucket, support.generated("u2", [item("r2")]), policy="education_checks_passed"
    )
    assert "r2" not in uow.queue.items
    assert uow.audit.entries == []
    assert uow.published == []
