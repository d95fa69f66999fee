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

When every consumer's inbox is in the same database (the embedded stack), the supervisor names the
consumers (schema → the event types it handles): an event every one of its consumers has recorded in its
inbox was handled, and is not sent again; one that a consumer has not recorded is (its other consumers
discard it as a duplicate). Sending everything again instead put every event of the window back into the
queues: on a loaded machine the emulator, whose queue operations grow with the queue's length, then took
minutes to hand out a thousand duplicates, while the events the stack waited for sat behind them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import asyncpg

from spendsense_shared.db import check_schema_name
from spendsense_shared.messaging.tables import notify_channel

DEFAULT_REPLAY_WINDOW_S = 900.0  # 15 minutes: the RPO, and how long back a lost queue is replayed


async def outbox_schemas(conn: asyncpg.Connection) -> list[str]:
    """The schemas of the database that have an outbox (one per service)."""
    rows = await conn.fetch(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'outbox' ORDER BY 1"
    )
    return [str(r["table_schema"]) for r in rows]


async def _inbox_schemas(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT table_schema FROM information_schema.tables WHERE table_name = 'inbox'")
    return {str(r["table_schema"]) for r in rows}


async def _unhandled(conn: asyncpg.Connection, consumers: Mapping[str, Iterable[str]]) -> str:
    """The SQL condition (on outbox row ``o``) of an event some consumer has not recorded in its inbox.
    A consumer without an inbox table here is never taken to have handled anything."""
    inboxes = await _inbox_schemas(conn)
    conditions = []
    for schema, types in sorted(consumers.items()):
        listed = ", ".join("'" + t.replace("'", "''") + "'" for t in sorted(set(types)))
        if not listed:
            continue
        handled = (
            f'EXISTS (SELECT 1 FROM "{schema}".inbox i WHERE i.event_id = o.event_id)'  # noqa: S608
            if schema in inboxes
            else "false"
        )
        conditions.append(f"(o.event_type IN ({listed}) AND NOT {handled})")
    return "(" + (" OR ".join(conditions) or "false") + ")"


async def resend_published(
    conn: asyncpg.Connection,
    schemas: Iterable[str],
    since: datetime,
    consumers: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, int]:
    """Mark unpublished, in each of ``schemas``, the outbox events published at or after ``since`` (an
    aware datetime) and wake the schema's relays; how many events each schema sends again. With
    ``consumers`` (schema → the event types its inbox records), only the events some consumer has not
    handled yet are sent again."""
    unhandled = "true" if consumers is None else await _unhandled(conn, consumers)
    resent: dict[str, int] = {}
    for schema in schemas:
        for name in (schema, *(consumers or ())):
            check_schema_name(name)
        status = await conn.execute(
            f'UPDATE "{schema}".outbox AS o SET published_at = NULL '  # noqa: S608
            f"WHERE o.published_at >= $1 AND {unhandled}",
            since,
        )
        resent[schema] = int(status.split()[-1])
        if resent[schema]:
            await conn.execute("SELECT pg_notify($1, '')", notify_channel(schema))
    return resent
