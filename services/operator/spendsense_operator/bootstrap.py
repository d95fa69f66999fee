"""Wires the operator service's adapters into its API and handlers."""

from spendsense_operator.adapters.orm import messaging
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.service import ServiceDefinition

SERVICE = ServiceDefinition(
    name="operator",
    title="SpendSense operator",
    settings_class=OperatorSettings,
    tables=messaging,
)
