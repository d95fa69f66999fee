"""Wires the profile service's adapters into its API and handlers."""

from fastapi import FastAPI

from spendsense_profile.adapters.orm import messaging
from spendsense_profile.api.consent import router as consent_router
from spendsense_profile.api.profile import router as profile_router
from spendsense_profile.api.uploads import router as uploads_router
from spendsense_profile.handlers.consent import StoredConsent
from spendsense_profile.handlers.uploads import record_progress
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.messaging.consumer import Handler
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition


def handlers(platform: Platform) -> dict[str, Handler]:
    return {
        "persona.assigned": record_progress,
        "recommendations.generated": record_progress,
        "upload.failed": record_progress,
    }


def attach_consent_lookup(app: FastAPI, platform: Platform) -> None:
    app.state.consent_lookup = StoredConsent(platform.database)


SERVICE = ServiceDefinition(
    name="profile",
    title="SpendSense profile",
    settings_class=ProfileSettings,
    tables=messaging,
    routers=[consent_router, uploads_router, profile_router],
    handlers=handlers,
    on_app=[attach_consent_lookup],
)
