"""``/api/v1/personas/rules``: persona rule-set versions (admin). Activating one re-scores every
consented user through the bus."""

from __future__ import annotations

from typing import Any, cast

import yaml
from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel

from spendsense_features.adapters.rule_sets import RuleSetStore
from spendsense_features.domain.rules import RuleSetError
from spendsense_shared.db import Database
from spendsense_shared.http.errors import ApiError
from spendsense_shared.messaging.catalog import RescoreRequested, new_event
from spendsense_shared.security import Principal, Role, require_role

router = APIRouter(prefix="/api/v1/personas/rules", tags=["rules"])


class RuleSetList(BaseModel):
    items: list[dict[str, Any]]


class Activated(BaseModel):
    version: str
    status: str


def _deps(request: Request) -> tuple[Database, RuleSetStore]:
    return cast(Database, request.app.state.platform.database), cast(
        RuleSetStore, request.app.state.rule_sets
    )


@router.get("", response_model=RuleSetList, summary="Rule-set versions and which one is active")
async def list_rule_sets(
    request: Request, _: Principal = Depends(require_role(Role.operator))
) -> RuleSetList:
    database, store = _deps(request)
    async with database.uow() as uow:
        return RuleSetList(items=await store.versions(uow.session))


@router.post(
    "", status_code=201, summary="Add a rule-set version (YAML or JSON), validated against the signals"
)
async def add_rule_set(
    request: Request,
    body: str = Body(..., media_type="application/yaml", description="The rule-set document"),
    principal: Principal = Depends(require_role(Role.admin)),
) -> dict[str, str]:
    database, store = _deps(request)
    try:
        document = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise ApiError(422, "invalid_rule_set", f"body: not valid YAML or JSON: {exc}") from exc
    async with database.uow() as uow:
        try:
            rule_set = await store.add(uow.session, document, principal.user_id)
        except RuleSetError as exc:
            raise ApiError(422, "invalid_rule_set", str(exc)) from exc
        except ValueError as exc:
            raise ApiError(409, "conflict", str(exc)) from exc
        await uow.commit()
    return {"version": rule_set.version}


@router.post(
    "/{version}/activate",
    status_code=202,
    response_model=Activated,
    summary="Activate a version and re-score every consented user (history kept)",
)
async def activate(
    version: str, request: Request, principal: Principal = Depends(require_role(Role.admin))
) -> Activated:
    database, store = _deps(request)
    async with database.uow() as uow:
        if await store.get(uow.session, version) is None:
            raise ApiError(404, "not_found", f"rule set {version!r} not found")
        await store.activate(uow.session, version)
        uow.publish(new_event(RescoreRequested(rule_set_version=version, requested_by=principal.user_id)))
        await uow.commit()
    return Activated(version=version, status="rescore_requested")
