"""The operator service's composition root: wires its adapters into its handlers and routes."""

from spendsense_operator.adapters.orm import messaging
from spendsense_operator.adapters.unit_of_work import SqlOperatorUnitOfWork
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.consent import ProjectedConsent, consent_handlers, merge_consent
from spendsense_shared.platform import Platform
from spendsense_shared.service import ServiceDefinition, Wiring


def bootstrap(platform: Platform) -> Wiring:
    uow = platform.database.uow_factory(SqlOperatorUnitOfWork)
    return Wiring(
        unit_of_work=uow,
        # its only per-user data so far is the consent projection, so a merge of accounts is applied to it
        event_handlers={**consent_handlers(), "user.merged": merge_consent},
        consent=ProjectedConsent(uow),
    )


SERVICE = ServiceDefinition(
    name="operator",
    title="SpendSense operator",
    settings_class=OperatorSettings,
    tables=messaging,
    bootstrap=bootstrap,
)
