"""Each consuming service's projection of consent events, behind one port: the handlers that keep it and
the lookup its routes use. The SQL adapter is :mod:`spendsense_shared.consent_store`.

Events may arrive out of order (SQS is not FIFO), so a projection row only moves forward in time:
an event older than what the row already reflects is ignored.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, EventData
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.unit_of_work import AbstractUnitOfWork, EventHandler

ConsentStatus = Literal["granted", "revoked"]


class ConsentProjection(abc.ABC):
    """The repository of a service's consent projection."""

    @abc.abstractmethod
    async def apply(self, user_id: str, consent_id: str, status: ConsentStatus, as_of: datetime) -> None:
        """Record the user's consent as of ``as_of``, unless the projection already reflects a later event."""

    @abc.abstractmethod
    async def granted(self, user_ids: list[str]) -> set[str]:
        """Those of ``user_ids`` whose consent is current."""

    async def is_granted(self, user_id: str) -> bool:
        return user_id in await self.granted([user_id])


class ConsentProjectingUnitOfWork(AbstractUnitOfWork):
    """A unit of work of a service that keeps a consent projection."""

    consent: ConsentProjection


async def apply_consent_event(
    uow: ConsentProjectingUnitOfWork, envelope: EventEnvelope, data: EventData
) -> None:
    if isinstance(data, ConsentGranted):
        await uow.consent.apply(data.user_id, data.consent_id, "granted", envelope.occurred_at)
    elif isinstance(data, ConsentRevoked):
        await uow.consent.apply(data.user_id, data.consent_id, "revoked", envelope.occurred_at)
    else:
        raise TypeError(f"not a consent event: {envelope.type}")


async def project_consent(envelope: EventEnvelope, data: EventData, uow: ConsentProjectingUnitOfWork) -> None:
    """Handler for ``consent.granted`` and ``consent.revoked``."""
    await apply_consent_event(uow, envelope, data)


def consent_handlers() -> dict[str, EventHandler]:
    return {"consent.granted": project_consent, "consent.revoked": project_consent}


class ProjectedConsent:
    """``ConsentLookup`` (what the routes' access checks ask) over a service's own projection."""

    def __init__(self, unit_of_work: Callable[[], ConsentProjectingUnitOfWork]):
        self.unit_of_work = unit_of_work

    async def has_current_consent(self, user_id: str) -> bool:
        async with self.unit_of_work() as uow:
            return await uow.consent.is_granted(user_id)
