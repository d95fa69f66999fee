"""Wires the features service's adapters into its API and handlers."""

from fastapi import FastAPI

from spendsense_features.adapters.orm import consent_projection, messaging
from spendsense_features.adapters.rule_sets import RuleSetStore
from spendsense_features.api.profile import router as profile_router
from spendsense_features.api.rules import router as rules_router
from spendsense_features.handlers.analysis import AnalyzeUpload
from spendsense_features.handlers.rescore import RescoreAll
from spendsense_features.settings import FeaturesSettings
from spendsense_shared.consent import ProjectedConsent, consent_handlers
from spendsense_shared.messaging.consumer import Handler
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition
from spendsense_shared.storage import ObjectStore


def handlers(platform: Platform) -> dict[str, Handler]:
    data = ObjectStore(platform.aws, platform.topology.buckets["data"], "")
    rule_sets = RuleSetStore()
    return {
        **consent_handlers(consent_projection),
        "upload.ingested": AnalyzeUpload(data, rule_sets),
        "personas.rescore_requested": RescoreAll(data, rule_sets),
    }


def attach_state(app: FastAPI, platform: Platform) -> None:
    app.state.consent_lookup = ProjectedConsent(platform.database, consent_projection)
    app.state.rule_sets = RuleSetStore()


SERVICE = ServiceDefinition(
    name="features",
    title="SpendSense features",
    settings_class=FeaturesSettings,
    tables=messaging,
    routers=[profile_router, rules_router],
    handlers=handlers,
    on_app=[attach_state],
)
