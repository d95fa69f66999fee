"""Rule-set versions over the repository: the packaged ``personas-v1`` is active until an admin activates
another version; the latest activation wins. Parsed rule sets are cached for the process (versions are
immutable), so ``bootstrap`` builds one store and hands it to every handler."""

from __future__ import annotations

from typing import Any

from spendsense_features.domain.model import RuleSetConflict, RuleSetDetail, RuleSetVersion
from spendsense_features.domain.rules import (
    RuleSet,
    load_rule_set,
    packaged_source,
    parse_rule_set,
    rule_set_to_dict,
)
from spendsense_features.handlers.unit_of_work import RuleSetRepository


class RuleSetStore:
    def __init__(self, packaged: RuleSet | None = None) -> None:
        self.packaged = packaged or load_rule_set()
        # the packaged file's text (None for a rule set handed in, which has no file)
        self.packaged_text = packaged_source() if packaged is None else None
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

    async def detail(self, repository: RuleSetRepository, version: str) -> RuleSetDetail | None:
        """A version's full content; None when it does not exist."""
        packaged = version == self.packaged.version
        stored = await repository.get(version)
        if packaged:
            rule_set, source, document = self.packaged, "packaged", dict(self.packaged.document)
        elif stored is not None:
            rule_set, source, document = (
                self._parse(version, stored.document),
                stored.created_by,
                stored.document,
            )
        else:
            return None
        return RuleSetDetail(
            version=version,
            source=source,
            active=(await self.active(repository)).version == version,
            packaged=packaged,
            activated_at=stored.activated_at if stored is not None else None,
            document=document,
            rule_set=rule_set_to_dict(rule_set),
            source_text=self.packaged_text if packaged else None,
        )

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
