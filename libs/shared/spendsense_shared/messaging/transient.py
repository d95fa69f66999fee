"""Which errors are the infrastructure's, not the message's: a dependency down, slow or throttling.

A consumer retries those without spending the message's delivery budget (the message is not at fault:
dead-lettering it after five deliveries during a 30 s database outage lost work for nothing); an API
answers 503 with them. Everything else is the message's own error: retried a few times, then
dead-lettered.

Duck-typed (class names in the exception's ancestry, SQL states, error codes): the HTTP layer uses it
too, and routers, which import that layer, reach no SQL, AWS or Redis library.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

# Class names (anywhere in an exception's ancestry) that say "a dependency is unreachable or slow".
TRANSIENT_CLASS_NAMES = frozenset(
    {
        # builtins (connection refused/reset/aborted, timeouts)
        "ConnectionError",
        "TimeoutError",
        # SQLAlchemy: a lost or refused connection, a pool that had none to give
        "OperationalError",
        "InterfaceError",
        "DisconnectionError",
        # asyncpg
        "PostgresConnectionError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "CannotConnectNowError",
        "AdminShutdownError",
        "CrashShutdownError",
        "TooManyConnectionsError",
        "ConnectionRejectionError",
        # botocore / aiobotocore / aiohttp
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ProxyConnectionError",
        "ClientConnectorError",
        "ClientOSError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        # redis
        "BusyLoadingError",
    }
)
# PostgreSQL SQL states worth retrying: connection exceptions (class 08), shutting down or starting up
# (57P01-57P03), too many connections, and the concurrency conflicts a retry resolves.
TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300", "40001", "40P01")
# AWS error codes of throttling or of a service that is (briefly) not there. A queue or bucket missing
# is the emulator having restarted: the stack's supervisor provisions them again.
TRANSIENT_AWS_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "NoSuchBucket",
        "NotFound",  # SNS: the topic is gone (the emulator restarted)
    }
)
TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EPIPE,
        errno.ETIMEDOUT,
    }
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, what caused it, what it was raised while handling, and a wrapped driver error (``orig``)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, getattr(current, "orig", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)


def _one_is_transient(exc: BaseException) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & TRANSIENT_CLASS_NAMES:
        return True
    if getattr(exc, "connection_invalidated", False) is True:  # SQLAlchemy saw the connection drop
        return True
    if isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS:
        return True
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(TRANSIENT_SQLSTATE_PREFIXES):
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        code = str(response.get("Error", {}).get("Code", ""))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in TRANSIENT_AWS_CODES or (isinstance(status, int) and status >= 500):
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is an infrastructure error that retrying later resolves."""
    return any(_one_is_transient(e) for e in _chain(exc))
