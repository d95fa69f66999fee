"""The admins' dead-letter use cases on an in-memory port: every consuming service's queue listed by name
with its depth and a bounded peek (nothing consumed), one queue by service (an unknown one named in the
error), a re-drive bounded by max_messages and logged; the bounds of the commands; how a dead letter's
body and recorded error are read. The SQS adapter is tested on the AWS emulator (integration)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.domain.commands import GetDeadLetters, ListDeadLetters, RedriveDeadLetters
from spendsense_operator.domain.dead_letters import (
    PEEK_DEFAULT,
    PEEK_MAX,
    REDRIVE_DEFAULT,
    REDRIVE_MAX,
    DeadLetterMessage,
    QueueRef,
    QueueUnavailable,
    UnknownService,
    envelope_fields,
    error_of,
)
from spendsense_operator.handlers import dead_letters as handlers
from spendsense_operator.handlers.dead_letters import (
    get_dead_letters,
    list_dead_letters,
    redrive_dead_letters,
)
from spendsense_operator.settings import OperatorSettings
from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_operator_unit_fakes")

QUEUES = {
    s: QueueRef(s, f"spendsense-test-{s}", f"spendsense-test-{s}-dlq")
    for s in ("profile", "features", "auth")
}
T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)


def letter(n: int, error: str | None = "RuntimeError: boom") -> DeadLetterMessage:
    return DeadLetterMessage(
        message_id=f"m{n}",
        event_type="upload.ingested",
        event_id=f"e{n}",
        correlation_id=f"c{n}",
        error=error,
        receive_count=3,
        sent_at=T0,
    )


@pytest.fixture
def port() -> Any:
    dead = fakes.InMemoryDeadLetterQueues()
    dead.dlqs["features"] = [letter(n) for n in range(12)]
    return dead


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


async def test_every_queue_is_listed_by_service_with_its_depth_and_a_bounded_peek(port):
    listed = await list_dead_letters(ListDeadLetters(limit=5), QUEUES, port)

    assert [(q.ref.service, q.depth, len(q.messages)) for q in listed] == [
        ("auth", 0, 0),
        ("features", 12, 5),
        ("profile", 0, 0),
    ]
    assert [m.message_id for m in listed[1].messages] == ["m0", "m1", "m2", "m3", "m4"]
    assert listed[1].ref == QUEUES["features"]
    assert len(port.dlqs["features"]) == 12  # nothing consumed
    assert port.peeks == [("features", 5)]  # empty queues are not peeked


async def test_one_queue_by_service_and_an_unknown_service_is_named(port):
    queue = await get_dead_letters(GetDeadLetters("features"), QUEUES, port)
    assert (queue.depth, len(queue.messages)) == (12, PEEK_DEFAULT)

    with pytest.raises(UnknownService, match="'billing'") as refused:
        await get_dead_letters(GetDeadLetters("billing"), QUEUES, port)
    assert "auth, features, profile" in str(refused.value)
    with pytest.raises(UnknownService):
        await redrive_dead_letters(RedriveDeadLetters("billing", "admin-1"), QUEUES, port)
    assert port.peeks == [("features", PEEK_DEFAULT)]


async def test_a_missing_queue_is_unavailable(port):
    port.missing.add("profile")
    with pytest.raises(QueueUnavailable, match="'profile'"):
        await list_dead_letters(ListDeadLetters(), QUEUES, port)
    with pytest.raises(QueueUnavailable):
        await redrive_dead_letters(RedriveDeadLetters("profile", "admin-1"), QUEUES, port)


async def test_a_redrive_moves_at_most_max_messages_and_is_logged(port, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(handlers, "log", recorder)

    moved = await redrive_dead_letters(
        RedriveDeadLetters("features", "admin-1", max_messages=5), QUEUES, port
    )
    assert moved == 5
    assert [m.message_id for m in port.queues["features"]] == ["m0", "m1", "m2", "m3", "m4"]
    assert len(port.dlqs["features"]) == 7

    assert await redrive_dead_letters(RedriveDeadLetters("features", "admin-2"), QUEUES, port) == 7
    assert await redrive_dead_letters(RedriveDeadLetters("auth", "admin-2"), QUEUES, port) == 0
    assert port.dlqs["features"] == []
    assert recorder.lines == [
        (
            "dead_letters_redriven",
            {
                "actor": "admin-1",
                "service": "features",
                "queue": "spendsense-test-features",
                "moved": 5,
                "max_messages": 5,
            },
        ),
        (
            "dead_letters_redriven",
            {
                "actor": "admin-2",
                "service": "features",
                "queue": "spendsense-test-features",
                "moved": 7,
                "max_messages": REDRIVE_DEFAULT,
            },
        ),
        (
            "dead_letters_redriven",
            {
                "actor": "admin-2",
                "service": "auth",
                "queue": "spendsense-test-auth",
                "moved": 0,
                "max_messages": REDRIVE_DEFAULT,
            },
        ),
    ]


@pytest.mark.parametrize("limit", [0, -1, PEEK_MAX + 1])
def test_a_peek_is_bounded(limit):
    with pytest.raises(ValueError, match=f"limit: between 1 and {PEEK_MAX}"):
        ListDeadLetters(limit=limit)
    with pytest.raises(ValueError, match="limit"):
        GetDeadLetters("features", limit=limit)


@pytest.mark.parametrize("max_messages", [0, REDRIVE_MAX + 1])
def test_a_redrive_is_bounded(max_messages):
    with pytest.raises(ValueError, match=f"max_messages: between 1 and {REDRIVE_MAX}"):
        RedriveDeadLetters("features", "admin-1", max_messages=max_messages)


def test_the_bounds_themselves_are_allowed():
    assert ListDeadLetters(limit=PEEK_MAX).limit == PEEK_MAX
    assert GetDeadLetters("x", limit=1).limit == 1
    assert RedriveDeadLetters("x", "a", max_messages=REDRIVE_MAX).max_messages == REDRIVE_MAX


def test_a_dead_letters_body_is_read_leniently():
    body = '{"id": "e1", "type": "upload.ingested", "correlation_id": "c1", "data": {}}'
    assert (envelope_fields(body).event_id, envelope_fields(body).event_type) == ("e1", "upload.ingested")
    assert envelope_fields(body).correlation_id == "c1"
    for malformed in ("not json", "[1, 2]", '{"id": 7, "type": "", "correlation_id": null}'):
        fields = envelope_fields(malformed)
        assert (fields.event_id, fields.event_type, fields.correlation_id) == (None, None, None)


def test_the_recorded_error_reads_as_type_and_message():
    assert error_of("KeyError", "'x'") == "KeyError: 'x'"
    assert error_of("TimeoutError", "TimeoutError") == "TimeoutError"  # an exception without a message
    assert error_of("TimeoutError", "") == "TimeoutError"
    assert error_of("", "") is None  # put in the DLQ by hand: nothing recorded


async def test_bootstrap_wires_the_dead_letter_use_cases():
    platform = SERVICE.platform(OperatorSettings())
    try:
        wiring = SERVICE.bootstrap(platform)
    finally:
        await platform.close()
    for message in (ListDeadLetters, GetDeadLetters, RedriveDeadLetters):
        assert message in wiring.bus.handlers
