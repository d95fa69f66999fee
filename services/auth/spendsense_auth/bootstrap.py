"""Wires the auth service's adapters into its API and handlers."""

from typing import cast

from fastapi import FastAPI

from spendsense_auth.adapters.keys import load_signing_key
from spendsense_auth.adapters.orm import messaging
from spendsense_auth.api.keys import router as keys_router
from spendsense_auth.settings import AuthSettings
from spendsense_shared.platform import Platform
from spendsense_shared.security import TokenVerifier
from spendsense_shared.service import ServiceDefinition


def attach_signing_key(app: FastAPI, platform: Platform) -> None:
    key = load_signing_key(cast(AuthSettings, platform.settings))
    app.state.signing_key = key
    # The auth service verifies its own tokens with its own key: no HTTP round trip to itself.
    app.state.token_verifier = TokenVerifier(
        issuer=platform.settings.jwt_issuer, audience=platform.settings.jwt_audience, jwks=key.jwks()
    )


SERVICE = ServiceDefinition(
    name="auth",
    title="SpendSense auth",
    settings_class=AuthSettings,
    tables=messaging,
    routers=[keys_router],
    on_app=[attach_signing_key],
)
