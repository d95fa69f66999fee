"""Which errors are the infrastructure's (retried in place, 503) and which the message's (DLQ, 500):
real exception objects of the drivers we use, as they raise them."""

from __future__ import annotations

import asyncpg
import pytest
import redis.exceptions
import sqlalchemy.exc
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from spendsense_shared.messaging.errors import PermanentError
from spendsense_shared.messaging.transient import is_transient


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def wrapped(orig: BaseException, kind: type[sqlalchemy.exc.DBAPIError]) -> sqlalchemy.exc.DBAPIError:
    return kind("SELECT 1", None, orig)  # type: ignore[arg-type]


def raised_from(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("handler failed") from cause
    except RuntimeError as exc:
        return exc


TRANSIENT = [
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    client_error("ThrottlingException"),
    client_error("AWS.SimpleQueueService.NonExistentQueue"),
    client_error("Whatever", status=503),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    wrapped(ConnectionRefusedError(111, "refused"), sqlalchemy.exc.OperationalError),
    wrapped(asyncpg.InterfaceError("connection is closed"), sqlalchemy.exc.InterfaceError),
    sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
    redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379"),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    raised_from(ConnectionResetError(104, "reset by peer")),
]
OF_THE_MESSAGE = [
    ValueError("amount must be a number"),
    KeyError("user_id"),
    PermanentError("unknown rule set"),
    FileNotFoundError(2, "no such file"),
    client_error("NoSuchKey", status=404),
    client_error("ValidationError"),
    wrapped(asyncpg.UniqueViolationError("duplicate key"), sqlalchemy.exc.IntegrityError),
    asyncpg.DataError("invalid input syntax for type integer"),
    raised_from(ValueError("bad")),
]


@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__)
def test_infrastructure_errors_are_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize("exc", OF_THE_MESSAGE, ids=lambda e: type(e).__name__)
def test_errors_of_the_message_are_not(exc: BaseException) -> None:
    assert not is_transient(exc)
