"""Each consuming service's projection of consent events, behind one port: the handlers that keep it and
the lookup its routes use. The SQL adapter is :mod:`spendsense_shared.consent_store`.

Events may arrive out of order (SQS is not FIFO), so a projection row only moves forward in time:
an event older than what the row already reflects is ignored.

When a user is erased (``user.erasure_requested``) their row is replaced by a tombstone keyed by a one-way
hash of their id (:mod:`spendsense_shared.erasure`): no consent event of theirs is applied afterwards.

When two accounts are merged (``user.merged``), the projection follows what the profile service does with
the consent records themselves: the account that remains keeps its current consent; when it has none, the
merged-away account's current consent becomes its; the merged-away account's row is deleted
(:func:`merged_consent`).
"""

from __future__ import annotations

import abc
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, EventData, UserMerged
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.read_cache import ReadCache
from spendsense_shared.security import ConsentStanding
from spendsense_shared.unit_of_work import AbstractUnitOfWork, EventHandler

ConsentStatus = Literal["granted", "revoked"]


@dataclass(frozen=True)
class ProjectedConsentRow:
    """One user's row of a consent projection."""

    consent_id: str
    status: ConsentStatus
    as_of: datetime


def merged_consent(
    source: ProjectedConsentRow | None, target: ProjectedConsentRow | None
) -> ProjectedConsentRow | None:
    """The target's row once the source account is merged into it (the source's row is deleted).

    The target's row stays, unless only the source's consent is current: then the source's consent is
    the target's current one (as in the profile service, which moves the consent records themselves),
    as of the later of the two rows, so no older event of either can undo it. Merging again (a
    redelivery: the source has no row any more) changes nothing."""
    if source is None:
        return target
    if target is None:
        return source
    if target.status == "granted" or source.status != "granted":
        return target
    return replace(source, as_of=max(source.as_of, target.as_of))


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

    @abc.abstractmethod
    async def is_erased(self, user_id: str) -> bool:
        """The user was erased (their tombstone is here)."""

    async def standing(self, user_id: str) -> ConsentStanding:
        """Erased, and consent current, at once (the SQL projection reads both in one query)."""
        erased = await self.is_erased(user_id)
        return ConsentStanding(erased=erased, current=not erased and await self.is_granted(user_id))

    @abc.abstractmethod
    async def merge(self, source_user_id: str, target_user_id: str) -> None:
        """The source account was merged into the target: the target's row becomes
        ``merged_consent(source's, target's)`` and the source's row is deleted."""

    @abc.abstractmethod
    async def erase(self, user_id: str, as_of: datetime) -> None:
        """The user was erased: their row is deleted and a tombstone keyed by
        :func:`spendsense_shared.erasure.pseudonym` recorded, so :meth:`apply` ignores every later (or
        redelivered) consent event of the user instead of recreating a row. Erasing twice changes nothing."""


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


async def merge_consent(envelope: EventEnvelope, data: EventData, uow: ConsentProjectingUnitOfWork) -> None:
    """Handler for ``user.merged`` of a service whose only per-user data is its consent projection (the
    others call it from their own merge handler)."""
    if not isinstance(data, UserMerged):
        raise TypeError(f"not a merge: {envelope.type}")
    if data.source_user_id != data.target_user_id:
        await uow.consent.merge(data.source_user_id, data.target_user_id)


def consent_handlers() -> dict[str, EventHandler]:
    return {"consent.granted": project_consent, "consent.revoked": project_consent}


STANDING_TTL_S = 1.0  # how long the access checks may reuse a user's standing (the revocation bound)
_STANDING_CACHE_MAX = 10_000  # users remembered at most (then the cache starts afresh)
_LOOKUPS: weakref.WeakSet[ProjectedConsent] = weakref.WeakSet()  # this process's, for forget_standing


def forget_standing(user_id: str) -> None:
    """The user's projection row changes (consent granted or revoked, merged, erased): every lookup of
    this process reads it afresh from now on. Called by the SQL projection whenever it writes a row."""
    for lookup in list(_LOOKUPS):
        lookup.forget(user_id)


class RememberedConsent:
    """A user's current consent remembered in the process's read cache until their consent rows change
    (a revocation, an erasure and a merge all write them: the cache hears of it at commit). Only a current
    consent is remembered; any other standing is read afresh every time."""

    KEY = "consent is current"  # a read cache key no request line can take (``http.cached``)

    def __init__(self, cache: ReadCache | None):
        self.cache = cache

    def is_current(self, user_id: str) -> bool:
        return self.cache is not None and self.cache.lookup(user_id, self.KEY) is not None

    def version(self, user_id: str) -> tuple[int, int]:
        return self.cache.version(user_id) if self.cache is not None else (0, 0)

    def note(self, user_id: str, standing: ConsentStanding, version: tuple[int, int]) -> None:
        if self.cache is not None and standing.current and not standing.erased:
            self.cache.remember(user_id, self.KEY, b"", "", version)


class ProjectedConsent:
    """``ConsentLookup`` (what the routes' access checks ask) over a service's own projection.

    ``standing`` (erased? consent current?) is one query on one connection, and its answer is reused
    for ``ttl_s`` (1 s) per user: the access checks of a busy user's requests do not each take a
    connection from the pool. The bound: a revocation (or erasure) the projection has committed is
    honoured by every request that starts ``ttl_s`` later, and at once when this process applies the
    event itself (:func:`forget_standing`). ``has_current_consent`` and ``is_erased`` always read afresh.
    With a listening read cache, a current consent is remembered there until the projection row changes
    (:class:`RememberedConsent`).
    """

    def __init__(
        self,
        unit_of_work: Callable[[], ConsentProjectingUnitOfWork],
        *,
        ttl_s: float = STANDING_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        cache: ReadCache | None = None,
    ):
        self.unit_of_work = unit_of_work
        self.remembered = RememberedConsent(cache)
        self.ttl_s = ttl_s
        self.clock = clock
        self._known: dict[str, tuple[float, ConsentStanding]] = {}
        self._changes = 0  # counts forget(): a read that overlapped a change is not remembered
        _LOOKUPS.add(self)

    async def standing(self, user_id: str) -> ConsentStanding:
        if self.remembered.is_current(user_id):
            return ConsentStanding(erased=False, current=True)
        started, changes, version = self.clock(), self._changes, self.remembered.version(user_id)
        known = self._known.get(user_id)
        if known is not None and started - known[0] < self.ttl_s:
            return known[1]
        async with self.unit_of_work() as uow:
            standing = await uow.consent.standing(user_id)
        self.remembered.note(user_id, standing, version)
        if self.ttl_s > 0 and changes == self._changes:
            if len(self._known) >= _STANDING_CACHE_MAX:
                self._known.clear()
            self._known[user_id] = (started, standing)  # aged from before the read: the bound holds
        return standing

    def forget(self, user_id: str) -> None:
        self._changes += 1
        self._known.pop(user_id, None)

    async def has_current_consent(self, user_id: str) -> bool:
        async with self.unit_of_work() as uow:
            return await uow.consent.is_granted(user_id)

    async def is_erased(self, user_id: str) -> bool:
        async with self.unit_of_work() as uow:
            return await uow.consent.is_erased(user_id)
