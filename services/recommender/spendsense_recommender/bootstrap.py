"""Wires the recommender service's adapters into its API and handlers."""

from spendsense_recommender.adapters.orm import messaging
from spendsense_recommender.settings import RecommenderSettings
from spendsense_shared.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="recommender",
    title="SpendSense recommender",
    settings_class=RecommenderSettings,
    tables=messaging,
)
