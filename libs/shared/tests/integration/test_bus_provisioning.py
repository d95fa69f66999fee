"""Provisioning the declared topology on the AWS emulator: idempotent, and filter policies route by type."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from spendsense_shared.aws import Aws
from spendsense_shared.messaging.catalog import UploadIngested, UserRegistered, new_event
from spendsense_shared.messaging.provision import provision, queue_address, topic_arn
from spendsense_shared.testing.bus import drain, envelopes


async def provisioned_resources(aws: Aws, env: str) -> dict[str, object]:
    """What actually exists on the emulator for ``env`` (not what the declaration says)."""
    async with aws.client("sns") as sns, aws.client("sqs") as sqs, aws.client("s3") as s3:
        topic_arns = [  # every page: SNS lists 100 topics at a time, and other tests make theirs too
            t["TopicArn"]
            async for page in sns.get_paginator("list_topics").paginate()
            for t in page.get("Topics", [])
            if t["TopicArn"].rsplit(":", 1)[-1].startswith(f"spendsense-{env}-")
        ]
        queue_urls = (await sqs.list_queues(QueueNamePrefix=f"spendsense-{env}-")).get("QueueUrls", [])
        subscriptions = []
        for arn in topic_arns:
            subs = (await sns.list_subscriptions_by_topic(TopicArn=arn))["Subscriptions"]
            subscriptions += [(arn, s["Endpoint"]) for s in subs]
        buckets = [b["Name"] for b in (await s3.list_buckets())["Buckets"] if b["Name"].endswith(f"-{env}")]
    return {
        "topics": sorted(topic_arns),
        "queues": sorted(queue_urls),
        "subscriptions": Counter(subscriptions),
        "buckets": sorted(buckets),
    }


async def test_provisioning_twice_changes_nothing(settings_for, topology, isolation_id):
    aws = Aws(settings_for("profile"))
    before = await provisioned_resources(aws, isolation_id)

    first = await provision(aws, topology)
    second = await provision(aws, topology)
    after = await provisioned_resources(aws, isolation_id)

    assert first == second
    assert after == before
    assert len(after["topics"]) == len(topology.topics)
    assert len(after["queues"]) == 2 * len(topology.queues)  # each queue and its DLQ
    assert len(after["buckets"]) == len(topology.buckets)
    assert set(after["subscriptions"].values()) == {1}  # one subscription per (topic, queue)
    assert sum(after["subscriptions"].values()) == len(topology.subscriptions)


async def test_each_queue_redrives_to_its_dlq_after_max_receives(settings_for, topology):
    aws = Aws(settings_for("profile"))
    queue = topology.queues["features"]

    address = await queue_address(aws, queue.name)
    async with aws.client("sqs") as sqs:
        attributes = (await sqs.get_queue_attributes(QueueUrl=address.url, AttributeNames=["All"]))[
            "Attributes"
        ]
        dlq_arn = (await sqs.get_queue_attributes(QueueUrl=address.dlq_url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]

    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) == queue.max_receives
    assert int(attributes["VisibilityTimeout"]) == queue.visibility_timeout_s


async def publish(sns, arn: str, envelope) -> None:
    # As the outbox relay publishes: the type is a message attribute the filter policies match on.
    await sns.publish(
        TopicArn=arn,
        Message=envelope.to_json(),
        MessageAttributes={
            "type": {"DataType": "String", "StringValue": envelope.type},
            "version": {"DataType": "Number", "StringValue": str(envelope.version)},
        },
    )


async def test_filter_policies_deliver_each_type_only_to_its_consumers(settings_for, topology):
    aws = Aws(settings_for("profile"))
    upload = new_event(UploadIngested(upload_id="up1", user_ids=["u1"], bucket="data", keys=["k"]))
    registered = new_event(UserRegistered(user_id="u1", roles=["user"], registered_via="password"))
    addresses = {s: await queue_address(aws, q.name) for s, q in topology.queues.items()}

    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        await publish(sns, await topic_arn(aws, topology.topics["profile"]), upload)
        await publish(sns, await topic_arn(aws, topology.topics["auth"]), registered)
        received = await asyncio.gather(
            *(
                drain(sqs, a.url, expect=1 if s in ("features", "profile") else None)
                for s, a in addresses.items()
            )
        )

    by_queue = {
        service: [e.id for e in envelopes(msgs)] for service, msgs in zip(addresses, received, strict=True)
    }
    assert by_queue == {
        "auth": [],
        "profile": [registered.id],
        "features": [upload.id],
        "recommender": [],
        "operator": [],
    }


async def test_raw_delivery_puts_the_envelope_itself_in_the_queue(settings_for, topology):
    aws = Aws(settings_for("profile"))
    event = new_event(UploadIngested(upload_id="up2", user_ids=["u2"], bucket="data", keys=[]))
    features = await queue_address(aws, topology.queues["features"].name)

    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        await publish(sns, await topic_arn(aws, topology.topics["profile"]), event)
        [message] = await drain(sqs, features.url, expect=1)

    assert envelopes([message]) == [event]
