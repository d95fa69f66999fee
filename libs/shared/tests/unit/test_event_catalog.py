"""The event catalog: consistent with the services, envelopes built and parsed by it, docs kept current."""

from __future__ import annotations

import contextvars
import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from spendsense_shared.correlation import bind_correlation_id
from spendsense_shared.messaging.catalog import (
    CATALOG,
    CONSUMES,
    ERASURE_CONFIRMATIONS,
    SERVICES,
    ConsentGranted,
    ConsentRevoked,
    EventData,
    GeneratedForUser,
    PersonaAssigned,
    PersonaAssignment,
    PersonasAssigned,
    RecommendationReviewed,
    RecommendationsBatchGenerated,
    RecommendationsGenerated,
    RecommendationsPublished,
    RescoreRequested,
    UnknownEventType,
    UploadFailed,
    UploadIngested,
    UploadStaged,
    UserErased,
    UserErasureRequested,
    UserMerged,
    UserRegistered,
    new_event,
    parse_data,
    render_markdown,
    spec_for,
)
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.plugin import repo_root

NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)

SAMPLES: dict[str, EventData] = {
    "user.registered": UserRegistered(user_id="u1", roles=["user"], registered_via="password"),
    "user.merged": UserMerged(source_user_id="u2", target_user_id="u1"),
    "user.erased": UserErased(subject="3f2a", requested_at=NOW, completed_at=NOW),
    "consent.granted": ConsentGranted(
        user_id="u1", consent_id="c1", policy_version="2026-01", scopes=["analysis"], granted_at=NOW
    ),
    "consent.revoked": ConsentRevoked(user_id="u1", consent_id="c1", revoked_at=NOW),
    "upload.staged": UploadStaged(
        upload_id="up1", user_ids=["u1", "u2"], bucket="b", keys=["k/1.parquet"], as_of=date(2026, 2, 28)
    ),
    "upload.ingested": UploadIngested(
        upload_id="up1", user_ids=["u1", "u2"], bucket="b", keys=["k/1.parquet"], as_of=date(2026, 2, 28)
    ),
    "user.erasure_requested": UserErasureRequested(user_id="u1", requested_at=NOW),
    "persona.assigned": PersonaAssigned(
        user_id="u1",
        upload_id="up1",
        as_of=date(2026, 2, 28),
        rule_set_version="r1",
        personas={"30d": "saver", "180d": "saver"},
        matched={"30d": ["saver", "subscription_heavy"], "180d": ["saver"]},
        details=ClaimCheck(
            bucket="spendsense-data-test",
            key="features/users/u1/analysis/ab.json",
            sha256="0" * 64,
            size_bytes=9,
        ),
    ),
    "personas.assigned": PersonasAssigned(
        upload_id="up1",
        rule_set_version="r1",
        reason="upload",
        assignments=[
            PersonaAssignment(
                user_id=user_id,
                as_of=date(2026, 2, 28),
                personas={"30d": "saver", "180d": "saver"},
                matched={"30d": ["saver", "subscription_heavy"], "180d": ["saver"]},
                details=ClaimCheck(
                    bucket="spendsense-data-test",
                    key=f"features/users/{user_id}/analysis/ab.json",
                    sha256="0" * 64,
                    size_bytes=9,
                ),
            )
            for user_id in ("u1", "u2")
        ],
    ),
    "personas.rescore_requested": RescoreRequested(rule_set_version="personas-v2", requested_by="admin-1"),
    "upload.failed": UploadFailed(upload_id="up1", user_id="u1", stage="analysis", reason="no_transactions"),
    "recommendations.generated": RecommendationsGenerated(
        user_id="u1",
        upload_id="up1",
        recommendation_ids=["r1", "r2"],
        persona="saver",
        items_claim=ClaimCheck(
            bucket="spendsense-data-test",
            key="recommender/reviews/ab.jsonl",
            sha256="0" * 64,
            size_bytes=9,
            offset=0,
        ),
    ),
    "recommendations.batch_generated": RecommendationsBatchGenerated(
        upload_id="up1",
        generated=[
            GeneratedForUser(
                user_id="u1",
                recommendation_ids=["r1", "r2"],
                persona="saver",
                items_claim=ClaimCheck(
                    bucket="spendsense-data-test",
                    key="recommender/reviews/ab.jsonl",
                    sha256="0" * 64,
                    size_bytes=9,
                    offset=0,
                ),
            ),
            GeneratedForUser(user_id="u2", recommendation_ids=["r3"], persona="builder", items_claim=None),
        ],
    ),
    "recommendation.reviewed": RecommendationReviewed(
        recommendation_id="r1", user_id="u1", decision="approved", operator_id="op1"
    ),
    "recommendations.published": RecommendationsPublished(user_id="u1", recommendation_ids=["r1"]),
    **{
        f"{service}.user_erased": confirmation(subject="3f2a", erased_at=datetime(2026, 1, 2, tzinfo=UTC))
        for service, confirmation in ERASURE_CONFIRMATIONS.items()
    },
}


def test_every_catalog_type_has_a_sample_here():
    assert set(SAMPLES) == set(CATALOG)


def test_a_batch_of_assignments_is_each_users_persona_assigned():
    batch = SAMPLES["personas.assigned"]
    assert isinstance(batch, PersonasAssigned)
    first, second = batch.each()
    assert first == SAMPLES["persona.assigned"]  # what the per-user event carried, field for field
    assert (second.user_id, second.details.key) == ("u2", "features/users/u2/analysis/ab.json")
    assert new_event(batch).user_id is None  # a batch names no single user in its envelope


def test_a_batch_of_generated_recommendations_is_each_users_recommendations_generated():
    batch = SAMPLES["recommendations.batch_generated"]
    assert isinstance(batch, RecommendationsBatchGenerated)
    first, second = batch.each()
    assert first == SAMPLES["recommendations.generated"]  # what the per-user event carries, field for field
    assert (second.user_id, second.upload_id, second.items, second.items_claim) == ("u2", "up1", None, None)
    assert new_event(batch).user_id is None  # a batch names no single user in its envelope


def test_every_producer_is_a_known_service():
    assert {spec.producer for spec in CATALOG.values()} <= set(SERVICES)


def test_catalog_keys_match_their_specs_and_data_schemas_are_distinct():
    assert all(key == spec.type for key, spec in CATALOG.items())
    data_classes = [spec.data for spec in CATALOG.values()]
    assert len(data_classes) == len(set(data_classes))


def test_consumers_are_known_services_consuming_known_types():
    assert set(CONSUMES) <= set(SERVICES)
    for service, types in CONSUMES.items():
        assert set(types) <= set(CATALOG), service
        assert len(types) == len(set(types)), service


# A batch job a service asks of itself goes through its own queue on purpose (durable, retried,
# spread over workers); every other event crosses a service boundary.
SELF_CONSUMED = {("features", "personas.rescore_requested")}


def test_no_service_consumes_its_own_events_except_declared_batch_jobs():
    for service, types in CONSUMES.items():
        own = {(service, t) for t in types if CATALOG[t].producer == service}
        assert own <= SELF_CONSUMED, service


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_new_event_fills_the_envelope_from_the_catalog(event_type):
    spec = CATALOG[event_type]

    envelope = new_event(SAMPLES[event_type], user_id="u1")

    assert (envelope.type, envelope.version, envelope.producer) == (spec.type, spec.version, spec.producer)
    assert envelope.user_id == "u1"
    assert envelope.occurred_at.tzinfo is not None


@pytest.mark.parametrize("event_type", sorted(CATALOG))
def test_event_survives_the_wire_and_parses_back_to_its_data(event_type):
    sent = new_event(SAMPLES[event_type], user_id="u1", causation_id=uuid.uuid4())

    received = EventEnvelope.from_json(sent.to_json())

    assert received == sent
    assert parse_data(received) == SAMPLES[event_type]


def test_new_event_takes_the_correlation_id_bound_to_the_current_context():
    def in_a_request() -> EventEnvelope:
        bind_correlation_id("corr-from-request")
        return new_event(SAMPLES["user.erased"])

    envelope = contextvars.copy_context().run(in_a_request)

    assert envelope.correlation_id == "corr-from-request"


def test_explicit_correlation_id_wins_over_the_bound_one():
    def in_a_request() -> EventEnvelope:
        bind_correlation_id("corr-bound")
        return new_event(SAMPLES["user.erased"], correlation_id="corr-explicit")

    assert contextvars.copy_context().run(in_a_request).correlation_id == "corr-explicit"


def test_new_event_without_a_bound_correlation_id_has_none():
    envelope = contextvars.Context().run(new_event, SAMPLES["user.erased"])

    assert envelope.correlation_id is None


def test_new_event_rejects_data_that_is_not_in_the_catalog():
    class Stray(EventData):
        x: int

    with pytest.raises(UnknownEventType):
        new_event(Stray(x=1))


def test_parse_data_rejects_another_version():
    envelope = new_event(SAMPLES["consent.granted"]).model_copy(update={"version": 2})

    with pytest.raises(UnknownEventType, match="v2"):
        parse_data(envelope)


def test_parse_data_rejects_an_unknown_type():
    envelope = EventEnvelope(type="user.teleported", version=1, producer="auth", data={"user_id": "u1"})

    with pytest.raises(UnknownEventType, match=r"user\.teleported"):
        parse_data(envelope)
    with pytest.raises(UnknownEventType):
        spec_for("user.teleported")


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("user.registered", {"user_id": "u1", "roles": ["user"]}),  # missing registered_via
        ("user.registered", {"user_id": "u1", "roles": ["user"], "registered_via": "carrier-pigeon"}),
        (  # extra fields are forbidden
            "user.erased",
            {"subject": "3f2a", "requested_at": None, "completed_at": "2026-01-01T00:00:00Z", "extra": "f"},
        ),
        ("user.erased", {"user_id": "u1"}),  # v1's shape: v2 names only the pseudonym
        ("consent.revoked", {"user_id": "u1", "consent_id": "c1", "revoked_at": "yesterday"}),
        (
            "recommendation.reviewed",
            {"recommendation_id": "r", "user_id": "u", "decision": "maybe", "operator_id": "o"},
        ),
        ("upload.ingested", {"upload_id": "up", "user_ids": "u1", "bucket": "b", "keys": []}),
        (  # an override without its text
            "recommendation.reviewed",
            {"recommendation_id": "r", "user_id": "u", "decision": "overridden", "operator_id": "o"},
        ),
    ],
)
def test_parse_data_rejects_invalid_data(event_type, data):
    spec = CATALOG[event_type]
    envelope = EventEnvelope(type=event_type, version=spec.version, producer=spec.producer, data=data)

    with pytest.raises(ValidationError):
        parse_data(envelope)


@given(
    user_ids=st.lists(st.text(min_size=1), min_size=1, max_size=5),
    keys=st.lists(st.text(min_size=1), max_size=5),
    as_of=st.none() | st.dates(),
)
def test_upload_ingested_round_trips_through_json(user_ids, keys, as_of):
    data = UploadIngested(upload_id="up", user_ids=user_ids, bucket="data", keys=keys, as_of=as_of)

    assert parse_data(EventEnvelope.from_json(new_event(data).to_json())) == data


def test_events_doc_is_generated_from_the_catalog():
    doc = repo_root() / "docs" / "events.md"

    assert doc.exists(), "run `spendsense events docs`"
    assert doc.read_text() == render_markdown(), "docs/events.md is stale: run `spendsense events docs`"


def test_rendered_doc_lists_every_type_with_its_consumers():
    markdown = render_markdown()

    for spec in CATALOG.values():
        assert f"## `{spec.type}` v{spec.version}" in markdown
    for spec in CATALOG.values():
        consumers = [s for s, types in CONSUMES.items() if spec.type in types]
        assert (
            f"| `{spec.type}` | {spec.version} | {spec.producer} | {', '.join(consumers) or '—'} |"
            in markdown
        )
