"""Wires the features service's adapters into its API and handlers."""

from spendsense_features.adapters.orm import messaging
from spendsense_features.settings import FeaturesSettings
from spendsense_shared.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="features",
    title="SpendSense features",
    settings_class=FeaturesSettings,
    tables=messaging,
)
