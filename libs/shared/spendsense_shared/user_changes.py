"""Which users' data a committed transaction changed, told by PostgreSQL to the processes that cache it.

A service's migration puts a statement-level trigger on each table its cached reads depend on
(:func:`notify_users_changed_sql`): at commit, the schema's channel receives ``u:<user id>`` once per user
whose rows the transaction inserted, updated (old and new ids: a merge moves rows) or deleted.
:class:`UserChangeListener` LISTENs on that channel in an API process and tells its
:class:`~spendsense_shared.read_cache.ReadCache` to forget those users.

It also lets the process's own writes wait for their notifications (:meth:`UserChangeListener.sync_token`
and :meth:`~UserChangeListener.seen`): a committing unit of work adds ``s:<token>`` to its transaction,
last; PostgreSQL delivers a transaction's notifications in order and transactions in commit order, so
once the token is back every change of that transaction has been applied to the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from spendsense_shared.logging import get_logger
from spendsense_shared.read_cache import ReadCache

log = get_logger(__name__)

USER_PREFIX = "u:"
SYNC_PREFIX = "s:"
PROBE_EVERY_S = 15.0  # a connection that died silently is noticed within this (and the cache stops)
PROBE_TIMEOUT_S = 5.0
SYNC_TIMEOUT_S = 5.0  # a write waits at most this for its own notification (then the cache starts afresh)
RETRY_MAX_S = 10.0

_FUNCTION = """
CREATE OR REPLACE FUNCTION notify_users_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- TG_ARGV[0]: the column naming the user; TG_ARGV[1]: 'array' when it holds several users
    ids text := CASE WHEN TG_ARGV[1] = 'array' THEN format('%I', TG_ARGV[0])
                     ELSE format('ARRAY[%I]', TG_ARGV[0]) END;
    changed text := CASE TG_OP
                        WHEN 'UPDATE' THEN format(
                            'SELECT %s AS ids FROM old_rows UNION ALL SELECT %s FROM new_rows', ids, ids)
                        ELSE format('SELECT %s AS ids FROM changed_rows', ids) END;
BEGIN
    EXECUTE format(
        'SELECT count(pg_notify(%L, %L || u)) FROM (SELECT DISTINCT unnest(ids)::text AS u FROM (%s) c) s '
        'WHERE u IS NOT NULL',
        'users_' || TG_TABLE_SCHEMA, 'u:', changed);
    RETURN NULL;
END $$;
"""


def users_channel(schema: str) -> str:
    return f"users_{schema}"


def notify_users_changed_sql(table: str, column: str = "user_id", *, array: bool = False) -> list[str]:
    """The statements (run with the service's schema first on the search path) that make every committed
    change to ``table`` notify the users named by ``column`` (``array``: a column of several user ids)."""
    kind = "array" if array else "scalar"
    args = f"'{column}', '{kind}'"
    return [
        _FUNCTION,
        f"CREATE TRIGGER {table}_users_ins AFTER INSERT ON {table} REFERENCING NEW TABLE AS changed_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed({args})",
        f"CREATE TRIGGER {table}_users_upd AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed({args})",
        f"CREATE TRIGGER {table}_users_del AFTER DELETE ON {table} REFERENCING OLD TABLE AS changed_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION notify_users_changed({args})",
    ]


def drop_users_changed_sql(table: str) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {table}_users_{op} ON {table}" for op in ("ins", "upd", "del")]


UserTables = Sequence[tuple[str, str, bool]]  # (table, column naming the user, whether it holds several)


def notify_users_changed(execute: Callable[[str], object], tables: UserTables) -> None:
    """A migration's upgrade: ``execute`` is Alembic's ``op.execute``."""
    for table, column, array in tables:
        for statement in notify_users_changed_sql(table, column, array=array):
            execute(statement)


def stop_notifying_users_changed(execute: Callable[[str], object], tables: UserTables) -> None:
    """The same migration's downgrade."""
    for table, _, _ in tables:
        for statement in drop_users_changed_sql(table):
            execute(statement)
    execute("DROP FUNCTION IF EXISTS notify_users_changed()")


class UserChangeListener:
    """LISTENs for the schema's user changes and keeps ``cache`` honest; reconnects on its own."""

    def __init__(self, dsn: str, schema: str, cache: ReadCache):
        self.dsn = dsn
        self.channel = users_channel(schema)
        self.cache = cache
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self.connections = 0  # LISTEN connections opened so far (a reconnect adds one)

    async def start(self) -> None:
        """Listen (waiting for the first connection briefly) and keep listening in the background."""
        await self._connect()
        self._task = asyncio.create_task(self._keep_listening(), name="user-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop()

    # -- a unit of work's own writes ---------------------------------------------------------------------

    def sync_token(self) -> str | None:
        """A payload to notify last in a transaction (None while not listening: nothing to wait for)."""
        if not self.cache.listening:
            return None
        token = secrets.token_hex(8)
        self._waiting[token] = asyncio.get_running_loop().create_future()
        return SYNC_PREFIX + token

    async def seen(self, payload: str) -> None:
        """Returns once the token's transaction's changes are in the cache (or the cache was emptied)."""
        waiter = self._waiting.get(payload.removeprefix(SYNC_PREFIX))
        if waiter is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(waiter), SYNC_TIMEOUT_S)
        except TimeoutError:
            log.warning("user_change_sync_timeout")
            self.cache.forget_all()
        finally:
            self.discard(payload)

    def discard(self, payload: str) -> None:
        """The token's transaction did not commit."""
        waiter = self._waiting.pop(payload.removeprefix(SYNC_PREFIX), None)
        if waiter is not None and not waiter.done():
            waiter.cancel()

    # -- the connection ----------------------------------------------------------------------------------

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(USER_PREFIX):
            self.cache.forget(payload.removeprefix(USER_PREFIX))
        elif payload.startswith(SYNC_PREFIX):
            waiter = self._waiting.get(payload.removeprefix(SYNC_PREFIX))
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _connect(self) -> bool:
        try:
            connection = await asyncpg.connect(self.dsn, timeout=PROBE_TIMEOUT_S)
            await connection.add_listener(self.channel, self._notified)
        except Exception as exc:  # refused, starting up, timed out: no cache meanwhile, tried again later
            log.warning("user_change_listen_unavailable", error=f"{type(exc).__name__}: {exc}"[:200])
            return False
        connection.add_termination_listener(lambda *_: self._lost.set())
        self._connection = connection
        self.connections += 1
        self._lost.clear()
        self.cache.forget_all()  # what changed while nobody listened is unknown
        self.cache.listening = True
        return True

    async def _drop(self) -> None:
        self.cache.listening = False
        self.cache.forget_all()
        for waiter in self._waiting.values():  # writers waiting for a token that may never come
            if not waiter.done():
                waiter.set_result(None)
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await connection.close(timeout=PROBE_TIMEOUT_S)

    async def _alive(self) -> bool:
        connection = self._connection
        if connection is None or connection.is_closed():
            return False
        try:
            await asyncio.wait_for(connection.fetchval("SELECT 1"), PROBE_TIMEOUT_S)
            return True
        except Exception:
            connection.terminate()
            return False

    async def _keep_listening(self) -> None:
        delay = 0.0
        while True:
            if self._connection is None:
                if await self._connect():
                    log.info("user_change_listen_restored", channel=self.channel)
                    delay = 0.0
                else:
                    delay = min(RETRY_MAX_S, delay * 2 or 1.0)
                    await asyncio.sleep(delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), PROBE_EVERY_S)
            if self._lost.is_set() or not await self._alive():
                log.warning("user_change_listen_lost", channel=self.channel)
                await self._drop()
