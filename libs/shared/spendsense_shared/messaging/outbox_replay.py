"""Outbox events sent again: those published since a point in time are marked unpublished, and their
schema's relay is woken to publish them again.

Two callers need it. A restore brings the stack back to a backup point: what was published in the RPO
window before it may be lost with the purged queues. The embedded AWS emulator keeps everything in
memory: when it restarts, the messages its queues held are gone, so the supervisor (once it has
provisioned the bus again) has every service send again what it published in the replay window before
the emulator went down. Delivery is at-least-once and every consumer keeps an inbox, so an event that
had been handled already is discarded as a duplicate; one that was lost is handled now.

Events are sent again in their original order (the relay publishes by ``seq``), with their original ids:
that is what lets the inboxes recognise them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg

from spendsense_shared.messaging.tables import notify_channel

DEFAULT_REPLAY_WINDOW_S = 900.0  # 15 minutes: the RPO, and how long back a lost queue is replayed


async def outbox_schemas(conn: asyncpg.Connection) -> list[str]:
    """The schemas of the database that have an outbox (one per service)."""
    rows = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox' ORDER BY 1"
    )
    return [str(r["table_schema"]) for r in rows]


async def resend_published(
    conn: asyncpg.Connection, schemas: Iterable[str], since: datetime
) -> dict[str, int]:
    """Mark unpublished, in each of ``schemas``, the outbox events published at or after ``since`` (an
    aware datetime) and wake the schema's relays; how many events each schema sends again."""
    resent: dict[str, int] = {}
    for schema in schemas:
        status = await conn.execute(
            f'UPDATE "{schema}".outbox SET published_at = NULL WHERE published_at >= $1',  # noqa: S608
            since,
        )
        resent[schema] = int(status.split()[-1])
        if resent[schema]:
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(schema))
    return resent
