"""``/api/v1/users``: accounts (admins create them for batch imports; a user reads and edits their own)
and roles (admins only; the last admin keeps the role)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends

from spendsense_auth.api.auth import handle
from spendsense_auth.api.schemas import CreateUserRequest, RoleRequest, UpdateUserRequest, UserOut
from spendsense_auth.domain.commands import CreateUser, GetUser, GrantRole, RevokeRole, UpdateUser
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.logging import get_logger
from spendsense_shared.security import Principal, Role, current_principal, require_role

router = APIRouter(prefix="/api/v1/users", tags=["users"])
log = get_logger(__name__)

Admin = Annotated[Principal, Depends(require_role(Role.admin))]
Caller = Annotated[Principal, Depends(current_principal)]


def _allow(principal: Principal, user_id: str, *, others_need: Role, action: str) -> None:
    """The user themself, or a principal with ``others_need``; every refusal logged."""
    if principal.user_id == user_id or principal.has_role(others_need):
        return
    log.warning(
        "access_denied",
        reason="not_owner",
        actor=principal.user_id,
        role=principal.role.name,
        resource=f"users/{user_id}",
        action=action,
    )
    raise ApiError(403, "forbidden", "you may access only your own account")


def _not_found(user_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no user {user_id}")


@router.post("", status_code=201, response_model=UserOut, summary="Create an account (admins; batch imports)")
async def create_user(body: CreateUserRequest, bus: Bus, principal: Admin) -> UserOut:
    user = await handle(
        bus,
        CreateUser(
            actor_id=principal.user_id,
            email=body.email,
            password=body.password,
            username=body.username,
            display_name=body.display_name,
        ),
    )
    return UserOut.of(user)


@router.get("/{user_id}", response_model=UserOut, summary="An account (the user themself, operators, admins)")
async def get_user(user_id: str, bus: Bus, principal: Caller) -> UserOut:
    _allow(principal, user_id, others_need=Role.operator, action="read")
    view = await handle(bus, GetUser(user_id))
    if view is None:
        raise _not_found(user_id)
    return UserOut.of(view.user, view.identities)


@router.put("/{user_id}", response_model=UserOut, summary="Change username, display name or email")
async def update_user(user_id: str, body: UpdateUserRequest, bus: Bus, principal: Caller) -> UserOut:
    _allow(principal, user_id, others_need=Role.admin, action="update")
    user = await handle(
        bus,
        UpdateUser(
            user_id=user_id,
            actor_id=principal.user_id,
            email=body.email,
            username=body.username,
            display_name=body.display_name,
        ),
    )
    return UserOut.of(user)


@router.post("/{user_id}/roles", response_model=UserOut, summary="Grant a role (admins)")
async def grant_role(user_id: str, body: RoleRequest, bus: Bus, principal: Admin) -> UserOut:
    return UserOut.of(
        await handle(bus, GrantRole(actor_id=principal.user_id, user_id=user_id, role=body.role))
    )


@router.delete("/{user_id}/roles/{role}", response_model=UserOut, summary="Remove a role (admins)")
async def revoke_role(
    user_id: str, role: Literal["operator", "admin"], bus: Bus, principal: Admin
) -> UserOut:
    return UserOut.of(await handle(bus, RevokeRole(actor_id=principal.user_id, user_id=user_id, role=role)))
