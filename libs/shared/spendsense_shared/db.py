"""Async PostgreSQL access: one engine per process, the service's schema as search path, a unit of work."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    event,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from spendsense_shared.erasure import PSEUDONYM_PREFIX, PSEUDONYM_SALT
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.tables import MessagingTables, notify_channel
from spendsense_shared.settings import ServiceSettings
from spendsense_shared.unit_of_work import AbstractUnitOfWork
from spendsense_shared.user_changes import users_channel

IDLE_PING_S = 2.0  # a pooled connection idle this long is pinged before use
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema_name(schema: str) -> str:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


def create_engine(
    settings: ServiceSettings,
    *,
    schema: str | None = None,
    pool_size: int | None = None,
    idle_ping_s: float | None = None,
) -> AsyncEngine:
    """An engine whose every connection works in ``schema`` (the service's own); a pooled connection
    idle ``idle_ping_s`` (default :data:`IDLE_PING_S`) or longer is pinged before use."""
    schema = check_schema_name(schema or settings.schema_name)
    engine = create_async_engine(
        settings.database_url.get_secret_value(),
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=settings.db_pool_recycle_s,
        # Not ``pool_pre_ping``: with asyncpg it is three round trips (BEGIN, ``;``, ROLLBACK) before every
        # checkout, the cost of a cheap read again. Only a connection idle for a while is pinged
        # (``ping_when_idle``); a busy one was just used.
        pool_pre_ping=False,
        # A failed statement's message (logged, dead-lettered) must not carry the values bound to it:
        # user free text, ids, amounts.
        hide_parameters=True,
        json_serializer=json_text,  # read back with the standard module: orjson reads wide integers as floats
        connect_args={
            "server_settings": {
                "search_path": schema,
                "application_name": f"spendsense-{settings.service_name}",
            }
        },
    )
    ping_when_idle(engine, IDLE_PING_S if idle_ping_s is None else idle_ping_s)
    return engine


def json_text(value: Any) -> str:
    """A JSON(B) column's value as text: ``orjson`` (a tenth of ``json.dumps``' time on the signals and
    events written by the batch); what only the standard module encodes (an integer wider than 64 bits)
    goes through it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def insert_all(table: Table, rows: Sequence[Mapping[str, Any]], *, replace: bool = False) -> PgInsert:
    """One ``INSERT … SELECT unnest(…), …`` of ``rows`` (mappings of the same columns): each column's
    values travel as one array, so PostgreSQL runs one statement for them all, its text the same
    whatever their number. An executemany runs the statement once per row: ~60 µs a row in PostgreSQL,
    5 to 8 times this. ``replace``: a row whose primary key is stored replaces it."""
    columns = list(rows[0])
    if nested := [name for name in columns if isinstance(table.c[name].type, ARRAY)]:
        raise ValueError(f"{table.name}.{nested[0]} is an array: unnest would flatten its values")
    values = select(*(_unnested(table.c[name], [row[name] for row in rows]) for name in columns))
    statement = pg_insert(table).from_select(columns, values)
    if not replace:
        return statement
    keys = [c.name for c in table.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys, set_={name: statement.excluded[name] for name in columns if name not in keys}
    )


def _unnested(column: Column[Any], values: list[Any]) -> ColumnElement[Any]:
    if isinstance(column.type, JSON):  # JSON(B) goes as text: a list value is not an array dimension
        texts = [None if v is None else json_text(v) for v in values]
        return cast(func.unnest(bindparam(f"all_{column.name}", texts, type_=ARRAY(Text))), column.type)
    return func.unnest(bindparam(f"all_{column.name}", values, type_=ARRAY(column.type)))


def ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Pings a pooled connection at checkout when it sat idle ``idle_s`` or longer: PostgreSQL may have
    ended it meanwhile (a restart, ``spendsense restore`` ending every session). A dead one is replaced
    (``DisconnectionError``: the pool discards it and checks out another), so no request sees it. A
    connection killed within ``idle_s`` of its last use fails one statement (503, transient); the pool
    then replaces every connection older than that failure."""

    @event.listens_for(engine.sync_engine, "checkin")
    def idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return  # new, or just used
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is dead: {type(exc).__name__}") from exc


_IDLE_SINCE = "spendsense_idle_since"


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The same database URL in the form asyncpg's own ``connect`` takes (for LISTEN)."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


class CommitWatcher(Protocol):
    """Lets a process's own writes wait until its read cache has seen them
    (:class:`spendsense_shared.user_changes.UserChangeListener`)."""

    def sync_token(self) -> str | None: ...

    async def seen(self, payload: str) -> None: ...

    def discard(self, payload: str) -> None: ...


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
        self.read_only = False  # set by ``Database.read_uow_factory``: its statements autocommit
        self.commit_watcher: CommitWatcher | None = None  # set by ``Database``'s factories

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
        if self.read_only:
            raise RuntimeError("a read-only unit of work has nothing to commit (its statements autocommit)")
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
        token = self.commit_watcher.sync_token() if self.commit_watcher else None
        if token is None:
            await self.session.commit()
            return
        try:  # last in the transaction: once it is back, the cache has forgotten what this one changed
            notify = {"channel": users_channel(self.schema), "token": token}
            await self.session.execute(text("SELECT pg_notify(:channel, :token)"), notify)
            await self.session.commit()
        except BaseException:
            self.commit_watcher.discard(token)  # type: ignore[union-attr]
            raise
        await self.commit_watcher.seen(token)  # type: ignore[union-attr]

    async def _rollback(self) -> None:
        if self.read_only:
            return  # each statement committed by itself; closing the session returns the connection
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
        # Same pool; each statement its own transaction: no BEGIN and no ROLLBACK round trips.
        self.commit_watcher: CommitWatcher | None = None  # an API process's read cache listener
        self.read_sessions = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

    def uow(self) -> SqlUnitOfWork:
        return self.uow_factory(SqlUnitOfWork)()

    def uow_factory(self, kind: type[SqlUnitOfWorkT]) -> Callable[[], SqlUnitOfWorkT]:
        """Fresh units of work of the service's ``kind`` (one per request or event: never shared)."""

        def fresh() -> SqlUnitOfWorkT:
            uow = kind(self.sessions, self.tables, self.schema)
            uow.commit_watcher = self.commit_watcher
            return uow

        return fresh

    def read_uow_factory(self, kind: type[SqlUnitOfWorkT]) -> Callable[[], SqlUnitOfWorkT]:
        """Units of work for a read of ONE statement (a page of a list, the consent standing): outside
        a transaction, so the read is one round trip, not three. Never for writes (``commit`` refuses),
        nor for reads of several statements that must agree (each sees its own snapshot)."""

        def read_only() -> SqlUnitOfWorkT:
            uow = kind(self.read_sessions, self.tables, self.schema)
            uow.read_only = True
            return uow

        return read_only

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
