"""Async PostgreSQL access: one engine per process, the service's schema as search path, a unit of work."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Text, cast, delete, func, insert, literal, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from spendsense_shared.erasure import PSEUDONYM_PREFIX, PSEUDONYM_SALT
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.tables import MessagingTables, notify_channel
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.unit_of_work import AbstractUnitOfWork

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


def create_engine(
    settings: ServiceSettings, *, schema: str | None = None, pool_size: int | None = None
) -> AsyncEngine:
    """An engine whose every connection works in ``schema`` (the service's own)."""
    schema = check_schema_name(schema or settings.schema_name)
    return create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=settings.db_pool_recycle_s,
        pool_pre_ping=True,
        connect_args={
            "server_settings": {
                "search_path": schema,
                "application_name": f"spendsense-{settings.service_name}",
            }
        },
    )


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The same database URL in the form asyncpg's own ``connect`` takes (for LISTEN)."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class SqlUnitOfWork(AbstractUnitOfWork):
    """The unit of work on one SQLAlchemy session. A service subclasses it to build its repositories
    on the session (override :meth:`bind`); events are written to the outbox at commit."""

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], tables: MessagingTables, schema: str
    ):
        super().__init__()
        self._session_factory = session_factory
        self.tables = tables
        self.schema = schema

    def bind(self, session: AsyncSession) -> None:
        """Build the service's repositories on ``session`` (called on entering)."""

    async def _begin(self) -> None:
        self.session = self._session_factory()
        self.bind(self.session)

    async def _end(self) -> None:
        await self.session.close()

    async def forget_published(self, user_id: str) -> int:
        outbox = self.tables.outbox
        needle = json.dumps(user_id)  # the id as a JSON string, quotes included: no partial matches
        result = await self.session.execute(
            delete(outbox).where(
                outbox.c.published_at.is_not(None),
                func.strpos(cast(outbox.c.payload, Text), needle) > 0,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def forget_published_of(self, subject: str) -> int:
        outbox = self.tables.outbox
        user_id = outbox.c.payload["user_id"].astext
        # pseudonym() in SQL: the same salted SHA-256 of the envelope's user id
        hashed = literal(PSEUDONYM_PREFIX) + func.encode(
            func.sha256(func.convert_to(literal(PSEUDONYM_SALT) + user_id, "UTF8")), "hex"
        )
        result = await self.session.execute(
            delete(outbox).where(outbox.c.published_at.is_not(None), user_id.is_not(None), hashed == subject)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def mark_processed(self, event: EventEnvelope) -> bool:
        inbox = self.tables.inbox
        stmt = (
            pg_insert(inbox)
            .values(event_id=event.id, event_type=event.type)
            .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
            .returning(inbox.c.event_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def _commit(self, events: list[EventEnvelope]) -> None:
        if events:
            await self.session.execute(
                insert(self.tables.outbox),
                [
                    {"event_id": e.id, "event_type": e.type, "payload": e.model_dump(mode="json")}
                    for e in events
                ],
            )
            # Delivered at commit, so the relay wakes only for events that really exist.
            await self.session.execute(
                text("SELECT pg_notify(:channel, '')"), {"channel": notify_channel(self.schema)}
            )
        await self.session.commit()

    async def _rollback(self) -> None:
        await self.session.rollback()


UnitOfWork = SqlUnitOfWork  # the plain unit of work, for code that needs no repositories
SqlUnitOfWorkT = TypeVar("SqlUnitOfWorkT", bound=SqlUnitOfWork)


class Database:
    """A process's engine and unit-of-work factory for one schema."""

    def __init__(self, settings: ServiceSettings, tables: MessagingTables, *, schema: str | None = None):
        self.schema = check_schema_name(schema or settings.schema_name)
        self.settings = settings
        self.engine = create_engine(settings, schema=self.schema)
        self.tables = tables
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.sessions, self.tables, self.schema)

    def uow_factory(self, kind: type[SqlUnitOfWorkT]) -> Callable[[], SqlUnitOfWorkT]:
        """Fresh units of work of the service's ``kind`` (one per request or event: never shared)."""
        return lambda: kind(self.sessions, self.tables, self.schema)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
