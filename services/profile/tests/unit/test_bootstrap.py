"""The composition root wires every use case and every consumed event the profile handles."""

from __future__ import annotations

import inspect

from spendsense_profile.api.uploads import upload_max_bytes
from spendsense_profile.bootstrap import SERVICE
from spendsense_profile.domain import commands
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.messagebus import Message
from spendsense_shared.messaging.catalog import CONSUMES


async def test_every_command_and_query_has_a_handler_and_every_consumed_event_too():
    platform = SERVICE.platform(ProfileSettings(upload_max_bytes=1234))
    try:
        wiring = SERVICE.bootstrap(platform)
        messages = {
            obj
            for _, obj in inspect.getmembers(commands, inspect.isclass)
            if issubclass(obj, Message) and obj.__module__ == commands.__name__
        }
        assert messages
        assert set(wiring.bus.handlers) == messages
        assert set(wiring.event_handlers) == set(CONSUMES["profile"])
        assert wiring.consent is not None
        assert wiring.dependencies[upload_max_bytes] == 1234
    finally:
        await platform.close()
