"""Finding 6 of the security review: a failed database call logged its SQL parameters (user free text and
ids). Engines now hide parameters from their errors, and the shared error handler logs of a database
error only its type, SQL state and where it was raised, never its message (PostgreSQL's own message may
quote a value).

Real PostgreSQL: the failures are real (a check constraint, a bad cast).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import structlog
from sqlalchemy import text

from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_shared.db import create_engine
from spendsense_shared.http import errors

SECRET_TEXT = "secret-Pickle-7731"
SECRET_USER = "u-Zebra-4410"


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def msg(self, message: str) -> None:
        self.lines.append(message)

    log = debug = info = warning = error = critical = exception = msg

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def logged(monkeypatch) -> Lines:
    """What the shared error handler logs, rendered as in production (JSON, tracebacks formatted)."""
    lines = Lines()
    logger = structlog.wrap_logger(
        lines, processors=[structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    )
    monkeypatch.setattr(errors, "log", logger)
    return lines


async def test_a_failed_insert_logs_neither_the_free_text_nor_the_user_id(service_client, logged):
    profile = await service_client(PROFILE)
    async with profile.platform.database.engine.begin() as conn:
        await conn.execute(
            text("ALTER TABLE consents ADD CONSTRAINT no_secrets CHECK (policy_version NOT LIKE 'secret%')")
        )

    response = await profile.post(
        "/api/v1/consent",
        json={"user_id": SECRET_USER, "policy_version": SECRET_TEXT},
        headers=profile.as_(SECRET_USER),
    )

    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    [line] = logged.lines
    record = json.loads(line)
    assert record["event"] == "unhandled_error"
    assert record["sqlstate"] == "23514"  # check_violation: what failed, without what was in it
    assert record["db_error"]
    assert "repositories.py" in record["stack"] or "consent" in record["stack"]  # where it was raised
    assert SECRET_TEXT not in line
    assert SECRET_USER not in line


async def test_engine_errors_hide_parameters_and_the_handler_drops_the_servers_message(migrated, logged):
    settings = await migrated("profile")
    engine = create_engine(settings)
    try:
        with pytest.raises(Exception, match="no_such_table") as failed:
            async with engine.connect() as conn:
                await conn.execute(text("INSERT INTO no_such_table (v) VALUES (:v)"), {"v": SECRET_TEXT})
        assert SECRET_TEXT not in str(failed.value)  # hide_parameters: no "[parameters: …]"

        with pytest.raises(Exception, match="invalid input syntax") as cast_failed:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": SECRET_TEXT})
        # PostgreSQL's message itself quotes the value: only the handler can keep it out of the logs
        assert SECRET_TEXT in str(cast_failed.value)
        errors.log_unexpected(_raised_from(cast_failed.value))
    finally:
        await engine.dispose()

    [line] = logged.lines
    assert json.loads(line)["sqlstate"] == "22P02"
    assert SECRET_TEXT not in line


def _raised_from(cause: BaseException) -> BaseException:
    """A service's own error raised while handling the database error (the chain is walked)."""
    try:
        try:
            raise cause
        except Exception as exc:
            raise RuntimeError("saving failed") from exc
    except RuntimeError as wrapped:
        return wrapped


def test_an_error_that_is_no_database_error_is_logged_with_its_message(logged):
    try:
        raise ValueError("a bug, described")
    except ValueError as exc:
        errors.log_unexpected(exc)
    record: dict[str, Any] = json.loads(logged.lines[0])
    assert "a bug, described" in record["exception"]
