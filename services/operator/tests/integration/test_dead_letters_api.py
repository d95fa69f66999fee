"""``/api/v1/admin/dead-letters`` on the operator's real app and the AWS emulator's SQS, with this test's
own provisioned queues: messages put in a service's DLQ (as the consumer puts them, and by hand) are
listed with their recorded error, never consumed by looking, re-driven back to the service's queue
(bounded by max_messages, the error attributes stripped); admins only; an unknown service is a 404, a
queue that was never provisioned a 503."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from spendsense_operator.bootstrap import SERVICE
from spendsense_shared.messaging.catalog import ConsentRevoked, new_event
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.provision import QueueAddress, queue_address

BASE = "/api/v1/admin/dead-letters"


@pytest.fixture
async def client(service_client, topology):
    client = await service_client(SERVICE)
    client.admin = client.as_("admin-1", "admin")  # type: ignore[attr-defined]
    client.topology = topology  # type: ignore[attr-defined]
    return client


async def address(client, service: str) -> QueueAddress:
    return await queue_address(client.platform.aws, client.topology.queues[service].name)


def revoked(user_id: str) -> EventEnvelope:
    return new_event(
        ConsentRevoked(user_id=user_id, consent_id="c", revoked_at=datetime.now(UTC)),
        user_id=user_id,
        correlation_id=f"corr-{user_id}",
    )


async def dead_letter(client, service: str, envelope: EventEnvelope) -> None:
    """What the consumer sends to the DLQ after the last attempt: the body, its type, the error."""
    where = await address(client, service)
    text = {"DataType": "String"}
    async with client.platform.aws.client("sqs") as sqs:
        await sqs.send_message(
            QueueUrl=where.dlq_url,
            MessageBody=envelope.to_json(),
            MessageAttributes={
                "type": {**text, "StringValue": envelope.type},
                "error_type": {**text, "StringValue": "RuntimeError"},
                "error_message": {**text, "StringValue": "projection store rejected the write"},
                "failed_at": {**text, "StringValue": datetime.now(UTC).isoformat()},
                "receive_count": {"DataType": "Number", "StringValue": "3"},
                "source_queue": {**text, "StringValue": where.url},
            },
        )


async def by_hand(client, service: str, body: str) -> None:
    where = await address(client, service)
    async with client.platform.aws.client("sqs") as sqs:
        await sqs.send_message(QueueUrl=where.dlq_url, MessageBody=body)


async def drain_queue(client, service: str) -> list[dict]:
    """Everything in the service's work queue (consumed)."""
    where = await address(client, service)
    received: list[dict] = []
    async with client.platform.aws.client("sqs") as sqs:
        while True:
            response = await sqs.receive_message(
                QueueUrl=where.url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
            )
            messages = response.get("Messages", [])
            if not messages:
                return received
            received += messages
            await sqs.delete_message_batch(
                QueueUrl=where.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )


async def test_an_admin_sees_every_services_dead_letters_with_the_recorded_error(client):
    event = revoked("u1")
    await dead_letter(client, "features", event)
    await by_hand(client, "features", '{"type": "consent.revoked", "data": 1')  # malformed, no attributes

    answer = await client.get(BASE, headers=client.admin)

    assert answer.status_code == 200, answer.text
    queues = answer.json()["queues"]
    topology = client.topology
    assert [q["service"] for q in queues] == sorted(topology.queues)
    assert {(q["queue"], q["dlq"]) for q in queues} == {(q.name, q.dlq) for q in topology.queues.values()}
    features = next(q for q in queues if q["service"] == "features")
    assert [(q["service"], q["depth"]) for q in queues if q["depth"]] == [("features", 2)]
    recorded = dict(next(m for m in features["messages"] if m["event_id"]))
    sent_at = datetime.fromisoformat(recorded.pop("sent_at"))
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 120
    assert recorded.pop("message_id")
    assert recorded == {
        "event_type": "consent.revoked",
        "event_id": str(event.id),
        "error": "RuntimeError: projection store rejected the write",
        "receive_count": 3,
        "correlation_id": "corr-u1",
    }
    malformed = next(m for m in features["messages"] if not m["event_id"])
    assert {k: malformed[k] for k in ("event_type", "error", "receive_count", "correlation_id")} == {
        "event_type": None,
        "error": None,
        "receive_count": None,
        "correlation_id": None,
    }

    again = await client.get(f"{BASE}/features", headers=client.admin)  # looking consumed nothing
    assert again.status_code == 200, again.text
    assert again.json()["depth"] == 2
    assert {m["message_id"] for m in again.json()["messages"]} == {
        m["message_id"] for m in features["messages"]
    }
    one = (await client.get(f"{BASE}/features?limit=1", headers=client.admin)).json()
    assert (one["service"], one["depth"], len(one["messages"])) == ("features", 2, 1)
    assert await drain_queue(client, "features") == []  # nothing went back to the work queue


async def test_a_peek_beyond_one_receive_lists_each_message_once(client):
    for n in range(13):
        await dead_letter(client, "recommender", revoked(f"u{n}"))

    for limit, shown in ((50, 13), (11, 11)):
        answer = await client.get(f"{BASE}/recommender?limit={limit}", headers=client.admin)
        assert answer.status_code == 200, answer.text
        ids = [m["event_id"] for m in answer.json()["messages"]]
        assert len(ids) == len(set(ids)) == shown
    assert (await client.get(f"{BASE}/recommender", headers=client.admin)).json()["depth"] == 13


async def test_a_redrive_moves_at_most_max_messages_back_to_the_queue_without_the_error(client):
    events = [revoked(f"u{n}") for n in range(3)]
    for event in events:
        await dead_letter(client, "features", event)

    first = await client.post(f"{BASE}/features/redrive", json={"max_messages": 1}, headers=client.admin)
    assert first.status_code == 200, first.text
    assert first.json() == {"moved": 1}
    [moved] = await drain_queue(client, "features")
    assert json.loads(moved["Body"])["id"] in {str(e.id) for e in events}
    assert set(moved.get("MessageAttributes", {})) == {"type"}  # the recorded error stays behind
    assert (await client.get(f"{BASE}/features", headers=client.admin)).json()["depth"] == 2

    rest = await client.post(f"{BASE}/features/redrive", headers=client.admin)  # no body: the default
    assert rest.json() == {"moved": 2}
    assert (await client.post(f"{BASE}/features/redrive", json={}, headers=client.admin)).json() == {
        "moved": 0
    }
    back = await drain_queue(client, "features")
    assert sorted(json.loads(m["Body"])["id"] for m in [moved, *back]) == sorted(str(e.id) for e in events)
    emptied = (await client.get(f"{BASE}/features", headers=client.admin)).json()
    assert (emptied["depth"], emptied["messages"]) == (0, [])


async def test_only_admins_and_only_known_services_within_bounds(client):
    operator = client.as_("op-1", "operator")
    for method, path in (("GET", BASE), ("GET", f"{BASE}/features"), ("POST", f"{BASE}/features/redrive")):
        assert (await client.request(method, path, headers=operator)).status_code == 403
        assert (await client.request(method, path)).status_code == 401

    for method, path in (("GET", f"{BASE}/billing"), ("POST", f"{BASE}/billing/redrive")):
        unknown = await client.request(method, path, headers=client.admin)
        assert unknown.status_code == 404
        assert "'billing'" in unknown.json()["error"]["message"]

    for bad in ({"max_messages": 0}, {"max_messages": 1001}, {"max_messages": 5, "other": 1}):
        refused = await client.post(f"{BASE}/features/redrive", json=bad, headers=client.admin)
        assert refused.status_code == 422, bad
    for limit in (0, 51):
        assert (await client.get(f"{BASE}?limit={limit}", headers=client.admin)).status_code == 422


async def test_queues_that_were_never_provisioned_are_unavailable(service_client):
    client = await service_client(SERVICE)  # no topology fixture: nothing on the emulator
    admin = client.as_("admin-1", "admin")

    listed = await client.get(BASE, headers=admin)
    assert listed.status_code == 503
    assert listed.json()["error"]["code"] == "queue_unavailable"
    redriven = await client.post(f"{BASE}/features/redrive", headers=admin)
    assert redriven.status_code == 503
    assert "'features'" in redriven.json()["error"]["message"]
