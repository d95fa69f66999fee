"""Wires the operator service's adapters into its API and handlers."""

from fastapi import FastAPI

from spendsense_operator.adapters.orm import consent_projection, messaging
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.consent import ProjectedConsent, consent_handlers
from spendsense_shared.messaging.consumer import Handler
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition


def handlers(platform: Platform) -> dict[str, Handler]:
    return consent_handlers(consent_projection)


def attach_consent_lookup(app: FastAPI, platform: Platform) -> None:
    app.state.consent_lookup = ProjectedConsent(platform.database, consent_projection)


SERVICE = ServiceDefinition(
    name="operator",
    title="SpendSense operator",
    settings_class=OperatorSettings,
    tables=messaging,
    handlers=handlers,
    on_app=[attach_consent_lookup],
)
