"""Who may call what: require_role and require_user_access on a real service app, in process."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from fastapi import APIRouter, Depends

from spendsense_shared import security
from spendsense_shared.http.app import create_service_app
from spendsense_shared.security import Principal, Role, require_role, require_user_access
from spendsense_shared.settings import ServiceSettings

CONSENTED = "u-consented"
NOT_CONSENTED = "u-not-consented"
ERASED = "u-erased"


class FixedConsent:
    def __init__(self, consented: set[str]):
        self.consented = consented
        self.asked: list[str] = []

    async def has_current_consent(self, user_id: str) -> bool:
        self.asked.append(user_id)
        return user_id in self.consented

    async def is_erased(self, user_id: str) -> bool:
        return user_id == ERASED


def build_app(token_verifier, consent: FixedConsent | None):
    router = APIRouter()

    @router.get("/operator-only")
    async def operator_only(principal: Principal = Depends(require_role(Role.operator))) -> dict[str, str]:
        return {"by": principal.user_id}

    @router.get("/admin-only")
    async def admin_only(principal: Principal = Depends(require_role(Role.admin))) -> dict[str, str]:
        return {"by": principal.user_id}

    @router.get("/users/{user_id}")
    async def user_data(user_id: str, principal: Principal = Depends(require_user_access)) -> dict[str, str]:
        return {"user": user_id, "by": principal.user_id}

    app = create_service_app(ServiceSettings(service_name="t"), title="t", routers=[router])
    app.dependency_overrides[security.token_verifier] = lambda: token_verifier
    if consent is not None:
        app.dependency_overrides[security.consent_lookup] = lambda: consent
    return app


@dataclass(frozen=True)
class Actor:
    name: str
    user_id: str | None  # None: anonymous
    roles: tuple[str, ...] = ()


ANONYMOUS = Actor("anonymous", None)
USER = Actor("user", "u-self")
OPERATOR = Actor("operator", "op-1", ("operator",))
ADMIN = Actor("admin", "admin-1", ("admin",))

OK, UNAUTHORIZED, FORBIDDEN, CONSENT_REQUIRED, NOT_FOUND = (
    (200, None),
    (401, "unauthorized"),
    (403, "forbidden"),
    (403, "consent_required"),
    (404, "not_found"),
)
ERASED_SELF = Actor("erased user", ERASED)

MATRIX = [
    # actor, path, expected (status, error code)
    (ANONYMOUS, "/operator-only", UNAUTHORIZED),
    (ANONYMOUS, "/admin-only", UNAUTHORIZED),
    (ANONYMOUS, f"/users/{CONSENTED}", UNAUTHORIZED),
    (USER, "/operator-only", FORBIDDEN),
    (USER, "/admin-only", FORBIDDEN),
    (USER, "/users/u-self", OK),
    (USER, f"/users/{CONSENTED}", FORBIDDEN),  # consent does not open other users' data to users
    (USER, f"/users/{NOT_CONSENTED}", FORBIDDEN),
    (OPERATOR, "/operator-only", OK),
    (OPERATOR, "/admin-only", FORBIDDEN),
    (OPERATOR, f"/users/{CONSENTED}", OK),
    (OPERATOR, f"/users/{NOT_CONSENTED}", CONSENT_REQUIRED),
    (OPERATOR, "/users/op-1", OK),  # their own data needs no consent
    (ADMIN, "/operator-only", OK),
    (ADMIN, "/admin-only", OK),
    (ADMIN, f"/users/{CONSENTED}", OK),
    (ADMIN, f"/users/{NOT_CONSENTED}", CONSENT_REQUIRED),
    # an erased user is gone for whoever could see them; others still learn nothing (403)
    (ERASED_SELF, f"/users/{ERASED}", NOT_FOUND),
    (OPERATOR, f"/users/{ERASED}", NOT_FOUND),
    (ADMIN, f"/users/{ERASED}", NOT_FOUND),
    (USER, f"/users/{ERASED}", FORBIDDEN),
]


def headers_for(actor: Actor, mint) -> dict[str, str]:
    if actor.user_id is None:
        return {}
    return {"Authorization": f"Bearer {mint(actor.user_id, roles=list(actor.roles) or ['user'])}"}


async def call(app, path: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get(path, headers=headers)


@pytest.fixture(scope="module")
def matrix_app(token_verifier):
    return build_app(token_verifier, FixedConsent({CONSENTED}))


@pytest.mark.parametrize(
    ("actor", "path", "expected"), MATRIX, ids=[f"{a.name}-GET {p}" for a, p, _ in MATRIX]
)
async def test_authorization_matrix(matrix_app, mint, actor, path, expected):
    status, code = expected

    response = await call(matrix_app, path, headers_for(actor, mint))

    assert response.status_code == status, response.text
    if code is None:
        assert response.json()["by"] == actor.user_id
    else:
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]


async def test_unauthorized_answers_carry_a_bearer_challenge(matrix_app):
    response = await call(matrix_app, "/admin-only", {})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    ["Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer", "Token abc"],
)
async def test_bad_or_non_bearer_credentials_are_unauthorized(matrix_app, authorization):
    response = await call(matrix_app, "/operator-only", {"Authorization": authorization})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_refresh_token_cannot_be_used_as_a_bearer_token(matrix_app, mint):
    token = mint("admin-1", roles=["admin"], token_type="refresh")

    response = await call(matrix_app, "/admin-only", {"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


async def test_consent_is_looked_up_only_for_staff_reading_someone_else(token_verifier, mint):
    consent = FixedConsent({CONSENTED})
    app = build_app(token_verifier, consent)

    await call(app, "/users/u-self", headers_for(USER, mint))
    await call(app, f"/users/{CONSENTED}", headers_for(USER, mint))
    await call(app, f"/users/{CONSENTED}", headers_for(OPERATOR, mint))

    assert consent.asked == [CONSENTED]


async def test_staff_access_is_denied_when_the_service_has_no_consent_lookup(token_verifier, mint):
    app = build_app(token_verifier, consent=None)

    response = await call(app, f"/users/{CONSENTED}", headers_for(ADMIN, mint))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "consent_required"
