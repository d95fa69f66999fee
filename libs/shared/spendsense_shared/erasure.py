"""The right to be forgotten, the parts every service shares.

When a user asks to be erased, profile deletes what it holds and publishes ``user.erasure_requested``;
every consumer deletes every row and object of the user it keeps. Two things stay, without the user id:

- **Audit rows** (the operator's audit log) keep the operator's action, but their user id is replaced by
  :func:`pseudonym`, a one-way SHA-256 of the id (user ids are random UUIDs, so the hash cannot be
  reversed by guessing). Rows of one erased user still group together, and nobody can tell whose they are.
- **A tombstone in each consent projection**: the erased user's row is replaced by one keyed by the
  pseudonym, so a redelivered or late ``consent.*`` event for the erased user is ignored instead of
  recreating a row (SQS is not FIFO: ``consent.revoked``, published with the erasure request, may arrive
  after it).

The outbox of every service keeps what it has not yet published (the erasure's own events among them);
each service deletes its *published* outbox rows that mention the user
(:meth:`spendsense_shared.unit_of_work.AbstractUnitOfWork.forget_published`).
"""

from __future__ import annotations

import hashlib

from spendsense_shared.messaging.catalog import EventData, UserErased
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.unit_of_work import AbstractUnitOfWork

PSEUDONYM_PREFIX = "erased:"
PSEUDONYM_SALT = "spendsense-erasure:"


def pseudonym(user_id: str) -> str:
    """The one-way replacement of an erased user's id (71 characters: fits every user id column)."""
    digest = hashlib.sha256(f"{PSEUDONYM_SALT}{user_id}".encode()).hexdigest()
    return PSEUDONYM_PREFIX + digest


def user_prefix(service: str, user_id: str) -> str:
    """Where ``service`` keeps the user's objects in the data bucket."""
    return f"{service}/users/{user_id}/"


async def forget_erased_user(envelope: EventEnvelope, data: EventData, uow: AbstractUnitOfWork) -> None:
    """Handler for ``user.erased`` (every service confirmed): the published events about the user that
    the erasure itself sent, or that were sent while it was under way, are deleted too."""
    if not isinstance(data, UserErased):
        raise TypeError(envelope.type)
    await uow.forget_published_of(data.subject)
