"""Rule-set versions over the repository: the packaged ``personas-v1`` is active until an admin activates
another version; the latest activation wins. Parsed rule sets are cached for the process (versions are
immutable), so ``bootstrap`` builds one store and hands it to every handler."""

from __future__ import annotations

from typing import Any

from spendsense_features.domain.model import RuleSetConflict, RuleSetVersion
from spendsense_features.domain.rules import RuleSet, load_rule_set, parse_rule_set
from spendsense_features.handlers.unit_of_work import RuleSetRepository


class RuleSetStore:
    def __init__(self, packaged: RuleSet | None = None) -> None:
        self.packaged = packaged or load_rule_set()
        self._parsed: dict[str, RuleSet] = {self.packaged.version: self.packaged}

    async def active(self, repository: RuleSetRepository) -> RuleSet:
        stored = await repository.latest_activated()
        return self.packaged if stored is None else self._parse(stored.version, stored.document)

    async def get(self, repository: RuleSetRepository, version: str) -> RuleSet | None:
        if version == self.packaged.version:
            return self.packaged
        stored = await repository.get(version)
        return None if stored is None else self._parse(version, stored.document)

    def validate_new(self, document: Any) -> RuleSet:
        """The rule set of a new version's document (raises RuleSetError naming the rule and key)."""
        rule_set = parse_rule_set(document)
        if rule_set.version == self.packaged.version:
            raise RuleSetConflict(f"version {rule_set.version!r} is the packaged rule set")
        return rule_set

    async def versions(self, repository: RuleSetRepository) -> list[RuleSetVersion]:
        active = (await self.active(repository)).version
        packaged = self.packaged.version
        listed = [RuleSetVersion(packaged, "packaged", active == packaged, packaged=True)]
        listed += [
            RuleSetVersion(s.version, s.created_by, active == s.version, False, s.activated_at)
            for s in await repository.all()
            if s.version != packaged
        ]
        return listed

    def _parse(self, version: str, document: Any) -> RuleSet:
        if version not in self._parsed:
            self._parsed[version] = parse_rule_set(document)
        return self._parsed[version]
