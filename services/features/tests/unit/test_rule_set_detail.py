"""Reading one rule-set version (``GetRuleSet``): the packaged one with its file's text, an added one with
its document as added and who added it, whether it is active and when it was activated, the rule set as
evaluated (defaults applied, JSON-ready) for comparing versions; an unknown version is not found."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from spendsense_features.domain.commands import ActivateRuleSet, AddRuleSet, GetRuleSet
from spendsense_features.domain.model import RuleSetNotFound
from spendsense_features.domain.rules import load_rule_set, packaged_source, parse_rule_set, rule_set_to_dict
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_features.handlers.rules import activate_rule_set, add_rule_set, get_rule_set

RULES = load_rule_set()


def added_rule_set() -> dict[str, Any]:
    """v1 under another version, with the subscription-heavy threshold moved."""
    document = copy.deepcopy(dict(RULES.document))
    document["version"] = "personas-test-v2"
    for persona in document["personas"]:
        if persona["id"] == "subscription_heavy":
            persona["when"]["all"][0]["value"] = 1000
    return document


async def test_the_packaged_version_comes_with_its_files_text_and_is_active_by_default(uow):
    detail = await get_rule_set(GetRuleSet(RULES.version), uow, RuleSetStore())

    assert (detail.version, detail.source, detail.active, detail.packaged, detail.activated_at) == (
        RULES.version,
        "packaged",
        True,
        True,
        None,
    )
    assert detail.source_text == packaged_source()
    assert yaml.safe_load(detail.source_text) == detail.document == dict(RULES.document)
    assert detail.rule_set == rule_set_to_dict(RULES)
    assert uow.commits == 0


async def test_an_added_version_shows_its_document_its_author_and_its_activation(uow):
    rule_sets = RuleSetStore()
    await add_rule_set(AddRuleSet(added_rule_set(), "admin-1"), uow, rule_sets)

    inactive = await get_rule_set(GetRuleSet("personas-test-v2"), uow, rule_sets)
    assert (inactive.source, inactive.active, inactive.packaged, inactive.activated_at) == (
        "admin-1",
        False,
        False,
        None,
    )
    assert inactive.document == added_rule_set()
    assert inactive.source_text is None  # added versions are stored parsed

    await activate_rule_set(ActivateRuleSet("personas-test-v2", "admin-1"), uow, rule_sets)
    active = await get_rule_set(GetRuleSet("personas-test-v2"), uow, rule_sets)
    packaged = await get_rule_set(GetRuleSet(RULES.version), uow, rule_sets)
    assert (active.active, packaged.active) == (True, False)
    assert active.activated_at is not None

    changed = [
        (old["id"], old["when"], new["when"])
        for old, new in zip(packaged.rule_set["personas"], active.rule_set["personas"], strict=True)
        if old != new
    ]
    assert [(pid, new["all"][0]["value"]) for pid, _, new in changed] == [("subscription_heavy", 1000.0)]


async def test_an_unknown_version_is_not_found(uow):
    with pytest.raises(RuleSetNotFound, match="'nope'"):
        await get_rule_set(GetRuleSet("nope"), uow, RuleSetStore())


def test_the_rule_set_as_evaluated_is_json_with_defaults_applied():
    document = {
        "version": "personas-x",
        "personas": [
            {
                "id": "p",
                "when": {
                    "any": [
                        {
                            "name": "a",
                            "signal": "cash_flow.spending",
                            "op": ">=",
                            "other": "cash_flow.income",
                        },
                        {"name": "b", "signal": "credit.max_utilization", "op": ">", "value": 1},
                        {"name": "c", "signal": "income.pay_frequency", "op": "in", "value": ["weekly"]},
                    ]
                },
            }
        ],
    }
    as_evaluated = rule_set_to_dict(parse_rule_set(document))

    assert as_evaluated == {
        "version": "personas-x",
        "fallback": {"id": "general_wellness", "name": "General Wellness"},
        "personas": [
            {
                "id": "p",
                "name": "p",
                "focus": [],
                "when": {
                    "any": [
                        {
                            "name": "a",
                            "signal": "cash_flow.spending",
                            "op": ">=",
                            "other": "cash_flow.income",
                            "factor": 1.0,
                        },
                        {"name": "b", "signal": "credit.max_utilization", "op": ">", "value": 1.0},
                        {"name": "c", "signal": "income.pay_frequency", "op": "in", "value": ["weekly"]},
                    ]
                },
            }
        ],
    }
    assert json.loads(json.dumps(rule_set_to_dict(RULES))) == rule_set_to_dict(RULES)
    assert parse_rule_set(rule_set_to_dict(RULES)) == RULES  # the same rules, read back
