"""Who may call what, on every route of every service: each route's cells — (anonymous, the user
themself, another user, an operator, an admin) x (the user's consent current, revoked) — are called on
the service's real app (in process, on its migrated schema) and their status checked against the table
below.

The cells are generated from the apps' own route tables, so a new route without a row in ``EXPECTED``
fails (and so does a row naming a route that no longer exists). Expected statuses are classes: 401,
403, or ``ALLOWED`` (anything but 401/403: a 404 or 422 for a made-up resource or a minimal body means
authorization passed). No cell may answer 5xx.

Every cell gets a fresh target user whose consent is set the way the service sees it: profile keeps the
consent records (granted, then revoked, through its API, by the user), the other services a projection
fed by ``consent.granted`` / ``consent.revoked`` events (applied here with the service's own wiring).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi.routing import iter_route_contexts

from spendsense_auth.bootstrap import SERVICE as AUTH
from spendsense_features.bootstrap import SERVICE as FEATURES
from spendsense_operator.bootstrap import SERVICE as OPERATOR
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.aws import Aws
from spendsense_shared.gateway.routes import resolve
from spendsense_shared.http.app import create_service_app
from spendsense_shared.jwk import SigningKey
from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, new_event, parse_data
from spendsense_shared.messaging.provision import provision
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.migrations import upgrade
from spendsense_shared.service import ServiceDefinition, Wiring, build_app
from spendsense_shared.testing.plugin import ServiceClient, drop_schemas, make_settings

SERVICES: dict[str, ServiceDefinition] = {s.name: s for s in (AUTH, PROFILE, FEATURES, RECOMMENDER, OPERATOR)}

# -- the expectations ----------------------------------------------------------------------------------

UNAUTHORIZED, FORBIDDEN, ALLOWED = "401", "403", "allowed"
ACTORS = ("anonymous", "self", "other", "operator", "admin")
CONSENT_STATES = ("current", "revoked")

# An actor's expectation: one class, or (when the user's consent is current, when it is revoked).
Expectation = str | tuple[str, str]


@dataclass(frozen=True)
class Policy:
    name: str
    anonymous: Expectation
    self: Expectation
    other: Expectation
    operator: Expectation
    admin: Expectation

    def expected(self, actor: str, consent: str) -> str:
        value: Expectation = getattr(self, actor)
        if isinstance(value, tuple):
            return value[CONSENT_STATES.index(consent)]
        return value


CONSENT_GATED = (ALLOWED, FORBIDDEN)

PUBLIC = Policy("public", ALLOWED, ALLOWED, ALLOWED, ALLOWED, ALLOWED)
AUTHENTICATED = Policy("any signed-in user", UNAUTHORIZED, ALLOWED, ALLOWED, ALLOWED, ALLOWED)
OPERATOR_ROLE = Policy("require_role(operator)", UNAUTHORIZED, FORBIDDEN, FORBIDDEN, ALLOWED, ALLOWED)
ADMIN_ROLE = Policy("require_role(admin)", UNAUTHORIZED, FORBIDDEN, FORBIDDEN, FORBIDDEN, ALLOWED)
# require_user_access: the user themself, or staff while the user's consent is current
USER_ACCESS = Policy("require_user_access", UNAUTHORIZED, ALLOWED, FORBIDDEN, CONSENT_GATED, CONSENT_GATED)
# require_consented_user_access: the user themself too needs current consent
CONSENTED_USER_ACCESS = Policy(
    "require_consented_user_access", UNAUTHORIZED, CONSENT_GATED, FORBIDDEN, CONSENT_GATED, CONSENT_GATED
)
# Routes that check in their body (not with the shared dependencies), as their code and docs say.
SELF_ONLY = Policy("only the user themself", UNAUTHORIZED, ALLOWED, FORBIDDEN, FORBIDDEN, FORBIDDEN)
SELF_WITH_CONSENT = Policy(
    "the user themself, with current consent", UNAUTHORIZED, CONSENT_GATED, FORBIDDEN, FORBIDDEN, FORBIDDEN
)
STAFF_WITH_CONSENT = Policy(
    "operator+, with current consent", UNAUTHORIZED, FORBIDDEN, FORBIDDEN, CONSENT_GATED, CONSENT_GATED
)
SELF_OR_OPERATOR = Policy(
    "the user themself or operator+, consent not checked", UNAUTHORIZED, ALLOWED, FORBIDDEN, ALLOWED, ALLOWED
)
SELF_OR_ADMIN = Policy(
    "the user themself or admin, consent not checked", UNAUTHORIZED, ALLOWED, FORBIDDEN, FORBIDDEN, ALLOWED
)

DUMMY = "does-not-exist"  # a made-up path parameter or id
NO_BODY = object()  # send no body at all (the default for POST/PUT is ``{}``)


@dataclass(frozen=True)
class Row:
    policy: Policy
    body: Any = None  # None: ``{}`` for POST/PUT, nothing otherwise; "{user_id}" in it names the target
    note: str = ""


def _docs() -> dict[tuple[str, str], Row]:
    """Every app's own endpoints (create_service_app): OpenAPI, docs, health, readiness, metrics."""
    rows = {
        (method, path): Row(PUBLIC)
        for path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
        for method in ("GET", "HEAD")
    }
    rows.update({("GET", path): Row(PUBLIC) for path in ("/health", "/ready", "/metrics")})
    return rows


EXPECTED: dict[str, dict[tuple[str, str], Row]] = {
    "auth": {
        **_docs(),
        ("GET", "/api/v1/auth/.well-known/jwks.json"): Row(PUBLIC),
        ("POST", "/api/v1/auth/register"): Row(PUBLIC),
        ("POST", "/api/v1/auth/login"): Row(PUBLIC),
        ("POST", "/api/v1/auth/refresh"): Row(PUBLIC),
        ("POST", "/api/v1/auth/logout"): Row(AUTHENTICATED),
        ("POST", "/api/v1/users"): Row(ADMIN_ROLE),
        # accounts are not consent-governed data: "the user themself, operators, admins" (its summary)
        ("GET", "/api/v1/users/{user_id}"): Row(SELF_OR_OPERATOR),
        ("PUT", "/api/v1/users/{user_id}"): Row(SELF_OR_ADMIN),
        ("POST", "/api/v1/users/{user_id}/roles"): Row(ADMIN_ROLE),
        ("DELETE", "/api/v1/users/{user_id}/roles/{role}"): Row(ADMIN_ROLE),
        ("GET", "/api/v1/admin/erasures"): Row(ADMIN_ROLE),
        ("GET", "/api/v1/admin/erasures/{user_id}"): Row(ADMIN_ROLE),
        ("POST", "/api/v1/auth/phone/request"): Row(PUBLIC),
        ("POST", "/api/v1/auth/phone/resend"): Row(PUBLIC),
        ("POST", "/api/v1/auth/phone/verify"): Row(PUBLIC),
        ("POST", "/api/v1/auth/phone/link"): Row(AUTHENTICATED),
        ("DELETE", "/api/v1/auth/phone/unlink"): Row(AUTHENTICATED),
        ("GET", "/api/v1/auth/oauth/{provider}/authorize"): Row(PUBLIC),
        ("GET", "/api/v1/auth/oauth/{provider}/callback"): Row(PUBLIC),
        ("POST", "/api/v1/auth/oauth/{provider}/callback"): Row(PUBLIC),
        ("POST", "/api/v1/auth/oauth/{provider}/token"): Row(PUBLIC),
        ("POST", "/api/v1/auth/oauth/link"): Row(AUTHENTICATED),
        ("DELETE", "/api/v1/auth/oauth/unlink/{provider}"): Row(AUTHENTICATED),
    },
    "profile": {
        **_docs(),
        # consent is the user's own act: nobody grants it for them (the body names the target user)
        ("POST", "/api/v1/consent"): Row(SELF_ONLY, body={"user_id": "{user_id}"}),
        ("GET", "/api/v1/consent/{user_id}"): Row(SELF_OR_OPERATOR),
        ("DELETE", "/api/v1/consent/{user_id}"): Row(SELF_OR_ADMIN),
        ("POST", "/api/v1/uploads"): Row(AUTHENTICATED, body=NO_BODY),  # whose data: decided by its rows
        ("GET", "/api/v1/uploads/{upload_id}"): Row(AUTHENTICATED),  # someone else's upload: 404
        ("GET", "/api/v1/profile/{user_id}"): Row(USER_ACCESS),
        ("GET", "/api/v1/mobile/profile/{user_id}"): Row(USER_ACCESS),
        ("POST", "/api/v1/mobile/consent/{user_id}"): Row(SELF_ONLY),
        ("POST", "/api/v1/mobile/push/register"): Row(AUTHENTICATED),  # registers the caller's own device
    },
    "features": {
        **_docs(),
        ("GET", "/api/v1/profile/{user_id}/signals"): Row(CONSENTED_USER_ACCESS),
        ("GET", "/api/v1/profile/{user_id}/persona"): Row(CONSENTED_USER_ACCESS),
        ("GET", "/api/v1/personas/rules"): Row(OPERATOR_ROLE),
        ("GET", "/api/v1/personas/rules/{version}"): Row(OPERATOR_ROLE),  # a made-up version: 404
        ("POST", "/api/v1/personas/rules"): Row(ADMIN_ROLE),
        ("POST", "/api/v1/personas/rules/{version}/activate"): Row(ADMIN_ROLE),
    },
    "recommender": {
        **_docs(),
        ("GET", "/api/v1/recommendations/{user_id}"): Row(CONSENTED_USER_ACCESS),
        ("GET", "/api/v1/mobile/recommendations/{user_id}"): Row(CONSENTED_USER_ACCESS),
        # a valid body, so that the route's own "only the user gives feedback" check is reached
        ("POST", "/api/v1/recommendations/{user_id}/feedback"): Row(
            SELF_WITH_CONSENT, body={"recommendation_id": DUMMY, "kind": "helpful"}
        ),
        # require_consented_user_access, then "decision traces are for operators"
        ("GET", "/api/v1/recommendations/{user_id}/traces"): Row(STAFF_WITH_CONSENT),
        ("GET", "/api/v1/recommendations/{user_id}/traces/{recommendation_id}"): Row(STAFF_WITH_CONSENT),
    },
    "operator": {
        **_docs(),
        # the review queue and its audit log: operators only; the queue lists only users whose consent
        # is current (services/operator/tests/unit/test_review_handlers.py), decisions refuse the others
        ("GET", "/api/v1/operator/review"): Row(OPERATOR_ROLE),
        ("POST", "/api/v1/operator/approve"): Row(OPERATOR_ROLE, body={"user_id": "{user_id}"}),
        ("POST", "/api/v1/operator/reject"): Row(
            OPERATOR_ROLE, body={"recommendation_ids": [DUMMY], "reason": "matrix"}
        ),
        ("POST", "/api/v1/operator/flag"): Row(OPERATOR_ROLE, body={"recommendation_ids": [DUMMY]}),
        # overrides need the item's user's current consent; a made-up item answers 404 to staff
        ("POST", "/api/v1/operator/override"): Row(
            OPERATOR_ROLE, body={"recommendation_id": DUMMY, "catalog_item_id": DUMMY, "reason": "matrix"}
        ),
        ("POST", "/api/v1/operator/override/check"): Row(
            OPERATOR_ROLE, body={"recommendation_id": DUMMY, "catalog_item_id": DUMMY}
        ),
        # a user's signals, personas and review items: staff only, while the user's consent is current
        # (the target, known to the operator only by consent, answers 404 then)
        ("GET", "/api/v1/operator/users/{user_id}"): Row(STAFF_WITH_CONSENT),
        ("GET", "/api/v1/operator/audit"): Row(OPERATOR_ROLE),
        ("GET", "/api/v1/operator/audit.csv"): Row(OPERATOR_ROLE),
        # the services' dead-letter queues (the bus, not any user's data): admins only; a made-up
        # service answers 404
        ("GET", "/api/v1/admin/dead-letters"): Row(ADMIN_ROLE),
        ("GET", "/api/v1/admin/dead-letters/{service}"): Row(ADMIN_ROLE),
        ("POST", "/api/v1/admin/dead-letters/{service}/redrive"): Row(ADMIN_ROLE),
    },
}

# Path parameters other than the target user: made-up values (a real OAuth provider's name, a real role,
# so that the route's own lookups pass and authorization is what answers).
DUMMY_PATH_VALUES = {"provider": "google", "role": "operator"}

# -- the route tables ------------------------------------------------------------------------------------


def route_table(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, included routers flattened."""
    table = set()
    for route in iter_route_contexts(app.routes):
        path = route.path
        for method in route.methods or ():
            table.add((method, path))
    return table


def declared_routes(definition: ServiceDefinition) -> set[tuple[str, str]]:
    """The routes of the app ``build_app`` makes of ``definition`` (the same routers on the same base
    app), known at collection time without a database; the live apps are checked to match it."""
    settings = definition.settings_class(service_name=definition.name)
    return route_table(create_service_app(settings, title=definition.title, routers=definition.routers))


ROUTES = {name: sorted(declared_routes(definition)) for name, definition in SERVICES.items()}

CELLS = [
    pytest.param(service, method, path, actor, consent, id=f"{service} {method} {path} | {actor} | {consent}")
    for service, routes in ROUTES.items()
    for method, path in routes
    for actor in ACTORS
    for consent in CONSENT_STATES
]

# -- the apps ---------------------------------------------------------------------------------------------


@dataclass
class Service:
    client: ServiceClient
    wiring: Wiring


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(infra, signing_key, token_verifier, mint) -> AsyncIterator[Mapping[str, Service]]:
    """One real app per service for the whole module (what ``service_client`` builds per test), on its own
    migrated schema and provisioned bus resources."""
    isolation_id = "t" + uuid.uuid4().hex[:10]
    built: dict[str, Service] = {}
    schemas: list[str] = []
    try:
        declared = build_topology(isolation_id, max_receives=3, visibility_timeout_s=5)
        await provision(Aws(make_settings(infra, isolation_id, "profile")), declared)
        for name, definition in SERVICES.items():
            settings = make_settings(infra, isolation_id, definition, **setting_overrides(name, signing_key))
            await asyncio.to_thread(upgrade, f"spendsense_{name}", infra.database_url, settings.schema_name)
            schemas.append(settings.schema_name)
            app = build_app(definition, settings, token_verifier=token_verifier)
            client = ServiceClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            client.app, client.mint = app, mint
            built[name] = Service(client, definition.bootstrap(client.platform))
        yield built
    finally:
        for service in built.values():
            await service.client.aclose()
            await service.client.platform.close()
        await drop_schemas(infra.database_url, schemas)


def setting_overrides(name: str, signing_key: SigningKey) -> dict[str, Any]:
    """Auth signs with the test key and has Google configured (on an address nobody answers: no cell
    gets as far as calling a provider), so that its OAuth routes answer for themselves."""
    if name != "auth":
        return {}
    nowhere = "http://127.0.0.1:9"
    return {
        "jwt_private_key": signing_key.pem().decode(),
        "oauth_redirect_base_url": "http://auth",
        "oauth_timeout_s": 1.0,
        "oauth_google_client_id": "matrix-client",
        "oauth_google_client_secret": "matrix-secret",
        **{f"oauth_google_{e}_url": f"{nowhere}/{e}" for e in ("authorize", "token", "userinfo", "jwks")},
        "oauth_google_issuer": nowhere,
    }


OPERATOR_ID, ADMIN_ID, OTHER_ID = "op-matrix", "admin-matrix", "u-matrix-other"


def headers_for(client: ServiceClient, actor: str, target: str) -> dict[str, str]:
    match actor:
        case "anonymous":
            return {}
        case "self":
            return client.as_(target)
        case "other":
            return client.as_(OTHER_ID)
        case "operator":
            return client.as_(OPERATOR_ID, "operator")
        case "admin":
            return client.as_(ADMIN_ID, "admin")
    raise AssertionError(actor)


async def set_consent(name: str, service: Service, user_id: str, *, current: bool) -> None:
    """Give ``user_id`` consent (revoked afterwards unless ``current``) the way this service sees it."""
    if name == "auth":
        return  # the auth service has no consent view: no route of it depends on consent
    if name == "profile":  # profile keeps the records: the user grants and revokes through its API
        me = service.client.as_(user_id)
        granted = await service.client.post("/api/v1/consent", json={"user_id": user_id}, headers=me)
        assert granted.status_code == 201, granted.text
        if not current:
            revoked = await service.client.delete(f"/api/v1/consent/{user_id}", headers=me)
            assert revoked.status_code == 200, revoked.text
    else:  # the others keep a projection of profile's consent events
        now = datetime.now(UTC)
        events = [
            new_event(
                ConsentGranted(
                    user_id=user_id, consent_id="c1", policy_version="1", scopes=["analysis"], granted_at=now
                ),
                user_id=user_id,
            ).model_copy(update={"occurred_at": now})
        ]
        if not current:
            later = now + timedelta(seconds=1)
            events.append(
                new_event(
                    ConsentRevoked(user_id=user_id, consent_id="c1", revoked_at=later), user_id=user_id
                ).model_copy(update={"occurred_at": later})
            )
        for event in events:
            async with service.wiring.unit_of_work() as uow:
                await service.wiring.event_handlers[event.type](event, parse_data(event), uow)
                await uow.commit()
    assert service.wiring.consent is not None
    assert await service.wiring.consent.has_current_consent(user_id) is current


def fill_path(path: str, target: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return target if name == "user_id" else DUMMY_PATH_VALUES.get(name, DUMMY)

    return re.sub(r"\{([^}]+)\}", value, path)


def fill_body(body: Any, target: str) -> Any:
    if isinstance(body, dict):
        return {k: fill_body(v, target) for k, v in body.items()}
    if isinstance(body, str):
        return body.replace("{user_id}", target)
    return body


def request_body(method: str, row: Row, target: str) -> dict[str, Any]:
    if row.body is NO_BODY:
        return {}
    if row.body is not None:
        return {"json": fill_body(row.body, target)}
    return {"json": {}} if method in ("POST", "PUT", "PATCH") else {}


def status_class(status: int) -> str:
    return {401: UNAUTHORIZED, 403: FORBIDDEN}.get(status, ALLOWED)


# -- the tests --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("service", "method", "path", "actor", "consent"), CELLS)
async def test_cell(services, service, method, path, actor, consent):
    row = EXPECTED[service].get((method, path))
    assert row is not None, f"{service}: {method} {path} has no row in EXPECTED — who may call it?"
    target = f"u-matrix-{uuid.uuid4().hex[:12]}"
    await set_consent(service, services[service], target, current=consent == "current")
    client = services[service].client

    response = await client.request(
        method,
        fill_path(path, target),
        headers=headers_for(client, actor, target),
        **request_body(method, row, target),
    )

    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    expected = row.policy.expected(actor, consent)
    assert status_class(response.status_code) == expected, (
        f"{service} {method} {path} as {actor} (consent {consent}): expected {expected} "
        f"({row.policy.name}), got {response.status_code}: {response.text[:500]}"
    )


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_route_has_a_row_and_every_row_a_route(service):
    routes = set(ROUTES[service])
    rows = set(EXPECTED[service])

    assert not routes - rows, f"{service}: routes without a row in EXPECTED: {sorted(routes - rows)}"
    assert not rows - routes, f"{service}: rows naming no route of the app: {sorted(rows - routes)}"


@pytest.mark.parametrize("service", list(SERVICES))
async def test_the_live_apps_serve_exactly_the_collected_routes(services, service):
    assert route_table(services[service].client.app) == set(ROUTES[service])


def test_no_unknown_service_in_the_table():
    assert set(EXPECTED) == set(SERVICES)


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_api_route_is_reachable_through_the_gateway(service):
    """A route the gateway does not forward exists only for in-cluster callers: none of ours is one."""
    unrouted = []
    for method, path in ROUTES[service]:
        if not path.startswith("/api/"):
            continue  # each service's own docs, health, readiness and metrics
        concrete = re.sub(r"\{([^}:]+)(:[^}]*)?\}", "x", path)
        route = resolve(method, concrete)
        if route is None or route.service != service:
            unrouted.append((method, path, route.service if route else None))
    assert not unrouted, f"{service}: the gateway does not forward {unrouted}"
