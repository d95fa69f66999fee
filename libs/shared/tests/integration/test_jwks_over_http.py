"""TokenVerifier fetching the auth service's JWKS over real HTTP: cached, and refetched on key rotation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from spendsense_auth.api.keys import signing_key as signing_key_dependency
from spendsense_auth.bootstrap import SERVICE as AUTH
from spendsense_auth.settings import AuthSettings
from spendsense_shared import security
from spendsense_shared.embedded.servers import free_port
from spendsense_shared.jwk import SigningKey
from spendsense_shared.security import TokenError, TokenVerifier
from spendsense_shared.service import build_app
from spendsense_shared.testing.plugin import AUDIENCE, ISSUER

JWKS_PATH = "/api/v1/auth/.well-known/jwks.json"


class CountingApp:
    """Passes everything to the auth app and counts JWKS requests."""

    def __init__(self, app: Any):
        self.app = app
        self.jwks_requests = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == JWKS_PATH:
            self.jwks_requests += 1
        await self.app(scope, receive, send)


@dataclass
class AuthServer:
    url: str
    app: Any  # the auth FastAPI app: its signing_key dependency is what the JWKS serves
    counter: CountingApp
    key: SigningKey

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH


class KeySet:
    """Stands in for the signing key during a rotation: publishes several keys."""

    def __init__(self, *keys: SigningKey):
        self.keys = keys

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk for k in self.keys]}


@pytest.fixture
def auth_server(infra, isolation_id) -> Iterator[AuthServer]:
    key = SigningKey.generate()
    settings = AuthSettings(
        service_name="auth",
        env=isolation_id,
        jwt_private_key=key.pem().decode(),
        database_url=infra.database_url,
        redis_url=infra.redis_url,
        aws_endpoint_url=infra.aws_endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    app = build_app(AUTH, settings)
    counter = CountingApp(app)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(counter, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="auth-jwks-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the auth server did not start")
        time.sleep(0.02)
    try:
        yield AuthServer(url=f"http://127.0.0.1:{port}", app=app, counter=counter, key=key)
    finally:
        server.should_exit = True
        thread.join(10)


class ShiftedClock:
    """The security module's view of time, which a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@pytest.fixture
def clock(monkeypatch) -> ShiftedClock:
    shifted = ShiftedClock()
    monkeypatch.setattr(security, "time", shifted)
    return shifted


def sign(key: SigningKey, subject: str = "u1", roles: list[str] | None = None) -> str:
    return key.sign(subject, roles=roles or ["user"], issuer=ISSUER, audience=AUDIENCE)


async def test_auth_service_serves_its_signing_key_as_jwks(auth_server):
    async with httpx.AsyncClient() as client:
        response = await client.get(auth_server.jwks_url)

    assert response.status_code == 200
    assert response.json() == auth_server.key.jwks()
    assert "max-age" in response.headers["cache-control"]


async def test_verifier_fetches_the_jwks_once_and_then_uses_its_cache(auth_server, clock):
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=auth_server.jwks_url)

    principal = await verifier.verify(sign(auth_server.key, "u1", ["operator"]))
    for subject in ("u2", "u3", "u4"):
        await verifier.verify(sign(auth_server.key, subject))

    assert (principal.user_id, principal.roles) == ("u1", frozenset({"operator"}))
    assert auth_server.counter.jwks_requests == 1


async def test_verifier_refetches_when_the_cache_ttl_expires(auth_server, clock):
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=auth_server.jwks_url, cache_ttl_s=300)
    await verifier.verify(sign(auth_server.key))

    clock.offset += 301
    await verifier.verify(sign(auth_server.key))
    await verifier.verify(sign(auth_server.key))

    assert auth_server.counter.jwks_requests == 2


async def test_verifier_refetches_once_when_a_new_kid_appears(auth_server, clock):
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=auth_server.jwks_url)
    old_key, new_key = auth_server.key, SigningKey.generate()
    await verifier.verify(sign(old_key))
    assert auth_server.counter.jwks_requests == 1

    # The auth service rotates: it now publishes both keys and signs with the new one.
    rotated = KeySet(new_key, old_key)
    auth_server.app.dependency_overrides[signing_key_dependency] = lambda: rotated
    clock.offset += 11  # past the 10 s minimum between refetches for unknown kids
    principal = await verifier.verify(sign(new_key, "u-new"))
    for _ in range(3):
        await verifier.verify(sign(new_key))
    await verifier.verify(sign(old_key))

    assert principal.user_id == "u-new"
    assert auth_server.counter.jwks_requests == 2


async def test_unknown_kids_do_not_make_the_verifier_hammer_the_auth_service(auth_server, clock):
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=auth_server.jwks_url)
    await verifier.verify(sign(auth_server.key))
    stranger = SigningKey.generate()

    for _ in range(5):
        with pytest.raises(TokenError, match="unknown signing key"):
            await verifier.verify(sign(stranger))

    assert auth_server.counter.jwks_requests == 1


async def test_verifier_without_a_reachable_jwks_rejects_tokens(signing_key):
    verifier = TokenVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json"
    )

    with pytest.raises(TokenError, match="signing keys unavailable"):
        await verifier.verify(sign(signing_key))


async def test_verifier_keeps_its_keys_when_a_refetch_fails(auth_server, clock):
    verifier = TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks_url=auth_server.jwks_url, cache_ttl_s=300)
    await verifier.verify(sign(auth_server.key))
    verifier.jwks_url = f"http://127.0.0.1:{free_port()}/jwks.json"  # the auth service went away

    clock.offset += 301
    principal = await verifier.verify(sign(auth_server.key, "still-works"))

    assert principal.user_id == "still-works"
