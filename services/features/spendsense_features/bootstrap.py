"""Wires the features service's adapters into its API and handlers."""

from fastapi import FastAPI

from spendsense_features.adapters.orm import consent_projection, messaging
from spendsense_features.api.profile import router as profile_router
from spendsense_features.domain.rules import load_rule_set
from spendsense_features.handlers.analysis import AnalyzeUpload
from spendsense_features.settings import FeaturesSettings
from spendsense_shared.consent import ProjectedConsent, consent_handlers
from spendsense_shared.messaging.consumer import Handler
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition
from spendsense_shared.storage import ObjectStore


def handlers(platform: Platform) -> dict[str, Handler]:
    data = ObjectStore(platform.aws, platform.topology.buckets["data"], "")
    return {
        **consent_handlers(consent_projection),
        "upload.ingested": AnalyzeUpload(data, load_rule_set()),
    }


def attach_consent_lookup(app: FastAPI, platform: Platform) -> None:
    app.state.consent_lookup = ProjectedConsent(platform.database, consent_projection)


SERVICE = ServiceDefinition(
    name="features",
    title="SpendSense features",
    settings_class=FeaturesSettings,
    tables=messaging,
    routers=[profile_router],
    handlers=handlers,
    on_app=[attach_consent_lookup],
)
