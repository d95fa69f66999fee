"""The declared bus topology derives exactly from the catalog (SPEC §2)."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spendsense_shared.messaging.catalog import CATALOG, CONSUMES
from spendsense_shared.messaging.topology import BUCKET_KINDS, build_topology

ENV = "qa1"
ENVS = st.from_regex(r"\A[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?\Z")


@pytest.fixture(scope="module")
def topology():
    return build_topology(ENV)


def test_each_consumer_subscribes_to_exactly_the_types_it_consumes(topology):
    for service, types in CONSUMES.items():
        queue = topology.queues[service].name
        subscribed = [t for s in topology.subscriptions if s.queue == queue for t in s.event_types]
        assert sorted(subscribed) == sorted(types), service


def test_each_subscription_reads_the_topic_of_its_types_producer(topology):
    for sub in topology.subscriptions:
        producers = {CATALOG[t].producer for t in sub.event_types}
        assert len(producers) == 1
        assert sub.topic == topology.topics[producers.pop()]


def test_one_subscription_per_topic_and_queue_with_a_type_filter(topology):
    pairs = Counter((s.topic, s.queue) for s in topology.subscriptions)

    assert set(pairs.values()) == {1}
    for sub in topology.subscriptions:
        assert sub.filter_policy == {"type": list(sub.event_types)}
        assert sub.event_types


def test_one_topic_per_producer(topology):
    assert set(topology.topics) == {spec.producer for spec in CATALOG.values()}
    assert len(set(topology.topics.values())) == len(topology.topics)


def test_queues_exist_only_for_services_that_consume(topology):
    assert set(topology.queues) == {s for s, types in CONSUMES.items() if types}
    assert all(q.service == s for s, q in topology.queues.items())


def test_every_queue_has_its_own_dead_letter_queue(topology):
    names = [q.name for q in topology.queues.values()]
    dlqs = [q.dlq for q in topology.queues.values()]

    assert all(q.dlq == f"{q.name}-dlq" for q in topology.queues.values())
    assert len(set(names + dlqs)) == len(names) * 2


def test_queue_settings_come_from_the_arguments():
    topology = build_topology(ENV, max_receives=7, visibility_timeout_s=45)

    assert {(q.max_receives, q.visibility_timeout_s) for q in topology.queues.values()} == {(7, 45)}


def test_a_bucket_for_every_kind(topology):
    assert set(topology.buckets) == set(BUCKET_KINDS)


@given(env=ENVS)
def test_every_resource_name_includes_the_env_and_is_a_valid_aws_name(env):
    topology = build_topology(env)
    queue_names = [n for q in topology.queues.values() for n in (q.name, q.dlq)]

    for name in [*topology.topics.values(), *queue_names, *topology.buckets.values()]:
        assert f"-{env}-" in f"-{name}-", name
    for name in [*topology.topics.values(), *queue_names]:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name), name
    for name in topology.buckets.values():
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", name), name


def test_two_envs_share_no_resource_names():
    def names(env: str) -> set[str]:
        t = build_topology(env)
        return {
            *t.topics.values(),
            *t.buckets.values(),
            *(n for q in t.queues.values() for n in (q.name, q.dlq)),
        }

    assert not names("dev") & names("prod")


def test_json_export_matches_the_declaration(topology):
    exported = json.loads(topology.to_json())

    assert exported["env"] == ENV
    assert exported["topics"] == topology.topics
    assert {s: q["dlq"] for s, q in exported["queues"].items()} == {
        s: q.dlq for s, q in topology.queues.items()
    }
    assert len(exported["subscriptions"]) == len(topology.subscriptions)
    assert exported["buckets"] == topology.buckets


@pytest.mark.parametrize("env", ["dev-", "-dev", "Dev", "a" * 21, ""])
def test_an_env_that_would_make_invalid_resource_names_is_refused(env):
    from pydantic import ValidationError

    from spendsense_shared.settings import ServiceSettings

    with pytest.raises(ValidationError):
        ServiceSettings(env=env)
