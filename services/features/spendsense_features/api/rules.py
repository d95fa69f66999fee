"""``/api/v1/personas/rules``: persona rule-set versions. Operators and admins list them and read one
(its full content, to show and compare versions); admins add and activate versions. Activating one
re-scores every consented user through the bus."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml
from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field

from spendsense_features.domain.commands import ActivateRuleSet, AddRuleSet, GetRuleSet, ListRuleSets
from spendsense_features.domain.model import RuleSetDetail, RuleSetNotFound, RuleSetVersion
from spendsense_features.domain.rules import RuleSetError
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.security import Principal, Role, require_role

router = APIRouter(prefix="/api/v1/personas/rules", tags=["rules"])


class RuleSetList(BaseModel):
    items: list[dict[str, Any]]


class Activated(BaseModel):
    version: str
    status: str


class RuleSetOut(BaseModel):
    version: str
    source: str = Field(description='"packaged", or who added it')
    active: bool
    packaged: bool
    activated_at: datetime | None = Field(description="The latest activation; null: never activated")
    document: Any = Field(description="The rule-set document as added (its YAML or JSON, parsed)")
    rule_set: dict[str, Any] = Field(
        description="The rule set as evaluated: defaults applied, in the document's shape (for diffs)"
    )
    source_text: str | None = Field(
        description="The document's text: the packaged file's; null for added versions (stored parsed)"
    )

    @classmethod
    def of(cls, d: RuleSetDetail) -> RuleSetOut:
        return cls(
            version=d.version,
            source=d.source,
            active=d.active,
            packaged=d.packaged,
            activated_at=d.activated_at,
            document=d.document,
            rule_set=d.rule_set,
            source_text=d.source_text,
        )


def _listed(v: RuleSetVersion) -> dict[str, Any]:
    item: dict[str, Any] = {"version": v.version, "source": v.source, "active": v.active}
    if not v.packaged:
        item["activated_at"] = v.activated_at.isoformat() if v.activated_at else None
    return item


@router.get("", response_model=RuleSetList, summary="Rule-set versions and which one is active")
async def list_rule_sets(bus: Bus, _: Principal = Depends(require_role(Role.operator))) -> RuleSetList:
    return RuleSetList(items=[_listed(v) for v in await bus.handle(ListRuleSets())])


@router.get(
    "/{version}",
    response_model=RuleSetOut,
    summary="One rule-set version's full content: its document, the rule set as evaluated, its text",
)
async def get_rule_set(
    version: str, bus: Bus, _: Principal = Depends(require_role(Role.operator))
) -> RuleSetOut:
    try:
        detail = await bus.handle(GetRuleSet(version=version))
    except RuleSetNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return RuleSetOut.of(detail)


@router.post(
    "", status_code=201, summary="Add a rule-set version (YAML or JSON), validated against the signals"
)
async def add_rule_set(
    bus: Bus,
    body: str = Body(..., media_type="application/yaml", description="The rule-set document"),
    principal: Principal = Depends(require_role(Role.admin)),
) -> dict[str, str]:
    try:
        document = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise ApiError(422, "invalid_rule_set", f"body: not valid YAML or JSON: {exc}") from exc
    try:
        version = await bus.handle(AddRuleSet(document=document, created_by=principal.user_id))
    except RuleSetError as exc:
        raise ApiError(422, "invalid_rule_set", str(exc)) from exc
    except ValueError as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    return {"version": version}


@router.post(
    "/{version}/activate",
    status_code=202,
    response_model=Activated,
    summary="Activate a version and re-score every consented user (history kept)",
)
async def activate(
    version: str, bus: Bus, principal: Principal = Depends(require_role(Role.admin))
) -> Activated:
    try:
        await bus.handle(ActivateRuleSet(version=version, requested_by=principal.user_id))
    except RuleSetNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return Activated(version=version, status="rescore_requested")
