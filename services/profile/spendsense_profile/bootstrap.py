"""Wires the profile service's adapters into its API and handlers."""

from fastapi import FastAPI

from spendsense_profile.adapters.orm import messaging
from spendsense_profile.api.consent import router as consent_router
from spendsense_profile.handlers.consent import StoredConsent
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition


def attach_consent_lookup(app: FastAPI, platform: Platform) -> None:
    app.state.consent_lookup = StoredConsent(platform.database)


SERVICE = ServiceDefinition(
    name="profile",
    title="SpendSense profile",
    settings_class=ProfileSettings,
    tables=messaging,
    routers=[consent_router],
    on_app=[attach_consent_lookup],
)
