"""An erasure's progress: which services have confirmed that they erased their part of a user (pure).

The erasure is keyed by the user's pseudonym (``spendsense_shared.erasure.pseudonym``), never the id, so
the record outlives the user without naming them. It is complete when every service that keeps per-user
data has confirmed; auth then publishes ``user.erased``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from spendsense_shared.messaging.catalog import ERASURE_CONFIRMATIONS

# auth erases the account itself; every other service confirms with ``<service>.user_erased``
ERASING_SERVICES: tuple[str, ...] = ("auth", *ERASURE_CONFIRMATIONS)


@dataclass(frozen=True)
class ErasureProgress:
    subject: str
    requested_at: datetime | None  # None: a confirmation arrived before the request reached auth
    confirmed: dict[str, datetime] = field(default_factory=dict)  # service → when it erased
    completed_at: datetime | None = None

    @property
    def pending(self) -> list[str]:
        return [s for s in ERASING_SERVICES if s not in self.confirmed]

    @property
    def complete(self) -> bool:
        return not self.pending

    def requested(self, at: datetime) -> ErasureProgress:
        return self if self.requested_at is not None else replace(self, requested_at=at)

    def confirm(self, service: str, at: datetime) -> ErasureProgress:
        """The progress once ``service`` has confirmed; a service's first confirmation is the one kept."""
        if service not in ERASING_SERVICES:
            raise ValueError(f"{service} keeps no user data to erase")
        if service in self.confirmed:
            return self
        return replace(self, confirmed={**self.confirmed, service: at})

    def finished(self, at: datetime) -> ErasureProgress:
        return replace(self, completed_at=at)
