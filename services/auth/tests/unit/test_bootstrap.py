"""The composition root wires every command and query, the consumed event, the keys and the admin."""

from __future__ import annotations

import inspect

from spendsense_auth.api.deps import proxy_trusted
from spendsense_auth.api.keys import signing_key
from spendsense_auth.bootstrap import SERVICE
from spendsense_auth.domain import commands
from spendsense_auth.settings import AuthSettings
from spendsense_shared.jwk import SigningKey
from spendsense_shared.messagebus import Message
from spendsense_shared.messaging.catalog import CONSUMES


async def test_every_core_message_has_a_handler_the_event_too_and_previous_keys_are_served(tmp_path):
    current, old, older = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    (tmp_path / "older.pem").write_bytes(older.pem())
    settings = AuthSettings(
        jwt_private_key=current.pem().decode(),
        jwt_previous_keys=[old.pem().decode()],
        jwt_previous_key_files=[tmp_path / "older.pem"],
        trust_proxy=True,
    )
    platform = SERVICE.platform(settings)
    try:
        wiring = SERVICE.bootstrap(platform)
        messages = {
            obj
            for _, obj in inspect.getmembers(commands, inspect.isclass)
            if issubclass(obj, Message) and obj.__module__ == commands.__name__
        }
        assert messages <= set(wiring.bus.handlers)
        assert set(wiring.event_handlers) == set(CONSUMES["auth"])
        assert wiring.dependencies[proxy_trusted] is True
        assert len(wiring.startup) == 1
        kids = [k["kid"] for k in wiring.dependencies[signing_key].jwks()["keys"]]
        assert kids == [current.kid, old.kid, older.kid]
        # The auth service's own verifier trusts the previous keys too (tokens signed before rotation).
        token = old.sign("u1", roles=["user"], issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        assert wiring.token_verifier is not None
        assert (await wiring.token_verifier.verify(token)).user_id == "u1"
    finally:
        await platform.close()
