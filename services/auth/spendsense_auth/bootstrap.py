"""The auth service's composition root: its signing key, served as the JWKS and trusted by its own
verifier."""

from typing import cast

from spendsense_auth.adapters.keys import load_signing_key
from spendsense_auth.adapters.orm import messaging
from spendsense_auth.api.keys import router as keys_router
from spendsense_auth.api.keys import signing_key
from spendsense_auth.settings import AuthSettings
from spendsense_shared.platform import Platform
from spendsense_shared.security import TokenVerifier
from spendsense_shared.service import ServiceDefinition, Wiring


def bootstrap(platform: Platform) -> Wiring:
    key = load_signing_key(cast(AuthSettings, platform.settings))
    return Wiring(
        unit_of_work=platform.database.uow,
        # The auth service verifies its own tokens with its own key: no HTTP round trip to itself.
        token_verifier=TokenVerifier(
            issuer=platform.settings.jwt_issuer, audience=platform.settings.jwt_audience, jwks=key.jwks()
        ),
        dependencies={signing_key: key},
    )


SERVICE = ServiceDefinition(
    name="auth",
    title="SpendSense auth",
    settings_class=AuthSettings,
    tables=messaging,
    routers=[keys_router],
    bootstrap=bootstrap,
)
