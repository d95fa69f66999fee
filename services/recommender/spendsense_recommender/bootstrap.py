"""Wires the recommender service's adapters into its API and handlers."""

from typing import cast

from fastapi import FastAPI

from spendsense_recommender.adapters.llm import make_writer
from spendsense_recommender.adapters.orm import consent_projection, messaging
from spendsense_recommender.api.recommendations import router as recommendations_router
from spendsense_recommender.handlers.recommend import GenerateRecommendations, apply_review
from spendsense_recommender.settings import RecommenderSettings
from spendsense_shared.consent import ProjectedConsent, consent_handlers
from spendsense_shared.messaging.consumer import Handler
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition


def handlers(platform: Platform) -> dict[str, Handler]:
    settings = cast(RecommenderSettings, platform.settings)
    return {
        **consent_handlers(consent_projection),
        "persona.assigned": GenerateRecommendations(
            make_writer(settings, platform.cache), settings.auto_approve
        ),
        "recommendation.reviewed": apply_review,
    }


def attach_consent_lookup(app: FastAPI, platform: Platform) -> None:
    app.state.consent_lookup = ProjectedConsent(platform.database, consent_projection)


SERVICE = ServiceDefinition(
    name="recommender",
    title="SpendSense recommender",
    settings_class=RecommenderSettings,
    tables=messaging,
    routers=[recommendations_router],
    handlers=handlers,
    on_app=[attach_consent_lookup],
)
