"""Rule-set versions in the features schema. The packaged ``personas-v1`` is active until an admin
activates another version; the latest activation wins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_features.adapters.orm import rule_sets
from spendsense_features.domain.rules import RuleSet, load_rule_set, parse_rule_set


class RuleSetStore:
    def __init__(self) -> None:
        self.packaged = load_rule_set()
        self._parsed: dict[str, RuleSet] = {self.packaged.version: self.packaged}

    async def active(self, session: AsyncSession) -> RuleSet:
        row = (
            await session.execute(
                select(rule_sets.c.version, rule_sets.c.document)
                .where(rule_sets.c.activated_at.is_not(None))
                .order_by(rule_sets.c.activated_at.desc())
                .limit(1)
            )
        ).first()
        return self.packaged if row is None else self._parse(row.version, row.document)

    async def get(self, session: AsyncSession, version: str) -> RuleSet | None:
        if version == self.packaged.version:
            return self.packaged
        row = (
            await session.execute(select(rule_sets.c.document).where(rule_sets.c.version == version))
        ).first()
        return None if row is None else self._parse(version, row.document)

    async def add(self, session: AsyncSession, document: Any, created_by: str) -> RuleSet:
        """Validate (raises RuleSetError naming the rule and key) and store a new version."""
        rule_set = parse_rule_set(document)
        if rule_set.version == self.packaged.version:
            raise ValueError(f"version {rule_set.version!r} is the packaged rule set")
        result = await session.execute(
            insert(rule_sets)
            .values(version=rule_set.version, document=document, created_by=created_by)
            .on_conflict_do_nothing()
            .returning(rule_sets.c.version)
        )
        if result.first() is None:
            raise ValueError(f"version {rule_set.version!r} already exists; rule sets are immutable")
        return rule_set

    async def activate(self, session: AsyncSession, version: str) -> None:
        if version == self.packaged.version:
            # Re-activating the packaged set: store it so "latest activation wins" stays one rule.
            await session.execute(
                insert(rule_sets)
                .values(version=version, document=dict(self.packaged.document), created_by="packaged")
                .on_conflict_do_nothing()
            )
        await session.execute(
            update(rule_sets).where(rule_sets.c.version == version).values(activated_at=func.now())
        )

    async def versions(self, session: AsyncSession) -> list[dict[str, Any]]:
        rows = (await session.execute(select(rule_sets).order_by(rule_sets.c.created_at))).all()
        active = (await self.active(session)).version
        listed = [
            {
                "version": self.packaged.version,
                "source": "packaged",
                "active": active == self.packaged.version,
            }
        ]
        for r in rows:
            if r.version != self.packaged.version:
                listed.append(
                    {
                        "version": r.version,
                        "source": r.created_by,
                        "active": active == r.version,
                        "activated_at": _iso(r.activated_at),
                    }
                )
        return listed

    def _parse(self, version: str, document: Any) -> RuleSet:
        if version not in self._parsed:
            self._parsed[version] = parse_rule_set(document)
        return self._parsed[version]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
