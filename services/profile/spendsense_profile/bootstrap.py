"""Wires the profile service's adapters into its API and handlers."""

from spendsense_profile.adapters.orm import messaging
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="profile",
    title="SpendSense profile",
    settings_class=ProfileSettings,
    tables=messaging,
)
