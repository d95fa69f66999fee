"""Use cases of the rule-set admin API: add a version, activate one (which requests a re-score of every
consented user through the bus), list them, read one."""

from __future__ import annotations

from spendsense_features.domain.commands import ActivateRuleSet, AddRuleSet, GetRuleSet, ListRuleSets
from spendsense_features.domain.model import (
    RuleSetConflict,
    RuleSetDetail,
    RuleSetNotFound,
    RuleSetVersion,
)
from spendsense_features.handlers.rule_sets import RuleSetStore
from spendsense_features.handlers.unit_of_work import FeaturesUnitOfWork
from spendsense_shared.messaging.catalog import RescoreRequested, new_event


async def add_rule_set(cmd: AddRuleSet, uow: FeaturesUnitOfWork, rule_sets: RuleSetStore) -> str:
    """Raises RuleSetError (invalid document) or RuleSetConflict (existing or packaged version)."""
    rule_set = rule_sets.validate_new(cmd.document)
    async with uow:
        if not await uow.rule_sets.add(rule_set.version, cmd.document, cmd.created_by):
            raise RuleSetConflict(f"version {rule_set.version!r} already exists; rule sets are immutable")
        await uow.commit()
    return rule_set.version


async def activate_rule_set(cmd: ActivateRuleSet, uow: FeaturesUnitOfWork, rule_sets: RuleSetStore) -> None:
    """Raises RuleSetNotFound."""
    async with uow:
        if await rule_sets.get(uow.rule_sets, cmd.version) is None:
            raise RuleSetNotFound(f"rule set {cmd.version!r} not found")
        if cmd.version == rule_sets.packaged.version:
            # Re-activating the packaged set: store it so "latest activation wins" stays one rule.
            await uow.rule_sets.add(cmd.version, dict(rule_sets.packaged.document), "packaged")
        await uow.rule_sets.activate(cmd.version)
        uow.publish(new_event(RescoreRequested(rule_set_version=cmd.version, requested_by=cmd.requested_by)))
        await uow.commit()


async def list_rule_sets(
    query: ListRuleSets, uow: FeaturesUnitOfWork, rule_sets: RuleSetStore
) -> list[RuleSetVersion]:
    async with uow:
        return await rule_sets.versions(uow.rule_sets)


async def get_rule_set(query: GetRuleSet, uow: FeaturesUnitOfWork, rule_sets: RuleSetStore) -> RuleSetDetail:
    """Raises RuleSetNotFound."""
    async with uow:
        detail = await rule_sets.detail(uow.rule_sets, query.version)
    if detail is None:
        raise RuleSetNotFound(f"rule set {query.version!r} not found")
    return detail
