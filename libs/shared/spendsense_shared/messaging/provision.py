"""Create the declared topology (idempotently) on SNS/SQS/S3, and resolve names to ARNs and URLs."""

from __future__ import annotations

import json
from dataclasses import dataclass

from spendsense_shared.aws import Aws
from spendsense_shared.messaging.topology import Topology


@dataclass(frozen=True)
class QueueAddress:
    url: str
    arn: str
    dlq_url: str


async def topic_arn(aws: Aws, topic: str) -> str:
    async with aws.client("sts") as sts:
        account = (await sts.get_caller_identity())["Account"]
    return f"arn:aws:sns:{aws.settings.aws_region}:{account}:{topic}"


async def queue_address(aws: Aws, queue: str) -> QueueAddress:
    async with aws.client("sqs") as sqs:
        url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
        dlq_url = (await sqs.get_queue_url(QueueName=f"{queue}-dlq"))["QueueUrl"]
        attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return QueueAddress(url=url, arn=attrs["Attributes"]["QueueArn"], dlq_url=dlq_url)


async def provision(aws: Aws, topology: Topology) -> dict[str, int]:
    """Create every topic, queue, DLQ, subscription and bucket; safe to run again."""
    topic_arns: dict[str, str] = {}
    queue_arns: dict[str, str] = {}
    async with aws.client("sns") as sns, aws.client("sqs") as sqs, aws.client("s3") as s3:
        for topic in topology.topics.values():
            topic_arns[topic] = (await sns.create_topic(Name=topic))["TopicArn"]
        for queue in topology.queues.values():
            dlq_url = (
                await sqs.create_queue(QueueName=queue.dlq, Attributes={"MessageRetentionPeriod": "1209600"})
            )["QueueUrl"]
            dlq_arn = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))[
                "Attributes"
            ]["QueueArn"]
            attributes = {
                "VisibilityTimeout": str(queue.visibility_timeout_s),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receives}
                ),
            }
            url = (await sqs.create_queue(QueueName=queue.name))["QueueUrl"]
            await sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
            queue_arns[queue.name] = (
                await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            )["Attributes"]["QueueArn"]
        existing = set()
        for topic_arn_ in topic_arns.values():
            subs = await sns.list_subscriptions_by_topic(TopicArn=topic_arn_)
            existing |= {(topic_arn_, s["Endpoint"]) for s in subs.get("Subscriptions", [])}
        for sub in topology.subscriptions:
            key = (topic_arns[sub.topic], queue_arns[sub.queue])
            if key in existing:
                continue
            await sns.subscribe(
                TopicArn=key[0],
                Protocol="sqs",
                Endpoint=key[1],
                Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(sub.filter_policy)},
                ReturnSubscriptionArn=True,
            )
        for bucket in topology.buckets.values():
            try:
                await s3.head_bucket(Bucket=bucket)
            except Exception:
                await s3.create_bucket(Bucket=bucket)
    return {
        "topics": len(topic_arns),
        "queues": len(queue_arns),
        "subscriptions": len(topology.subscriptions),
        "buckets": len(topology.buckets),
    }
