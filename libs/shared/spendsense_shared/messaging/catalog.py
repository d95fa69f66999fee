"""Every event type, its version, producer and data schema, in one place (SPEC §2).

``docs/events.md`` is generated from this catalog (``spendsense events docs``) and a test keeps it current.
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spendsense_shared.correlation import current_correlation_id
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.messaging.contracts import ReviewItem
from spendsense_shared.messaging.envelope import EventEnvelope


class EventData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UserRegistered(EventData):
    user_id: str
    roles: list[str]
    registered_via: Literal["password", "phone", "oauth", "admin_bootstrap"]


class UserMerged(EventData):
    source_user_id: str = Field(description="The account merged away")
    target_user_id: str = Field(description="The account that remains")


class UserErased(EventData):
    """Every service has confirmed the erasure. Names only the pseudonym: the event outlives the user."""

    subject: str = Field(description="pseudonym(user_id)")
    requested_at: datetime | None
    completed_at: datetime


class ConsentGranted(EventData):
    user_id: str
    consent_id: str
    policy_version: str
    scopes: list[str]
    granted_at: datetime


class ConsentRevoked(EventData):
    user_id: str
    consent_id: str
    revoked_at: datetime


# An upload.ingested event names at most this many users (~16 KB with 36-character ids; 53 KB with ids of
# the longest a user id may be, 128 characters, still below 64 KB): the chunk features analyzes in one go.
# The chunk has fixed costs (the analysis's, the snapshot objects', the events'): 400 rather than 250 —
# every user of a 1,502-user import analyzed after 6.0 s (three runs) against 6.2-6.8 s, 4 chunks against 7 —
# and 250 rather than 100 before (12.3 s against 13.7 s, 7 chunks against 16).
USERS_PER_INGESTED_EVENT = 400


class UploadIngested(EventData):
    upload_id: str
    user_ids: list[str]
    bucket: str
    keys: list[str] = Field(description="S3 keys of the normalized Parquet files")
    as_of: date | None = None


class UploadStaged(UploadIngested):
    """A chunk's snapshots are written while the upload is still being merged: a hint, so features may
    analyze the chunk ahead of its ``upload.ingested``. The upload may still fail: nothing is stored or
    announced on it; a hint that is lost or not acted on only costs time."""


class UploadFailed(EventData):
    upload_id: str
    user_id: str
    stage: Literal["analysis"]
    reason: str = Field(description="A stable code, e.g. consent_required, no_transactions")
    detail: str | None = None


class UserErasureRequested(EventData):
    user_id: str
    requested_at: datetime


class PersonaAssigned(EventData):
    user_id: str
    upload_id: str | None
    as_of: date
    rule_set_version: str
    personas: dict[str, str] = Field(description="Primary persona per window, e.g. {'30d': ..., '180d': ...}")
    matched: dict[str, list[str]] = Field(
        default_factory=dict, description="Every matching persona per window"
    )
    reason: Literal["upload", "rescore"] = "upload"
    details: ClaimCheck = Field(
        description="Claim check of the PersonaDetails JSON (the analysis report and account kinds, "
        "for the recommender) in the data bucket"
    )


class PersonaAssignment(EventData):
    """One user's assignment within ``personas.assigned``: what ``persona.assigned`` carries per user."""

    user_id: str
    as_of: date
    personas: dict[str, str] = Field(description="Primary persona per window, e.g. {'30d': ..., '180d': ...}")
    matched: dict[str, list[str]] = Field(
        default_factory=dict, description="Every matching persona per window"
    )
    details: ClaimCheck = Field(
        description="Claim check of the user's PersonaDetails JSON in the data bucket (as"
        " persona.assigned's): the user's line of the batch's JSON Lines object"
    )


# A personas.assigned event carries at most this many assignments, and at most this many bytes of them
# (serialized, as the relay sends it): an assignment weighs ~0.46 KB with a 12-character user id and one or
# two personas matched per window (100 such users take one event), ~0.5 KB with a 36-character
# id, and up to ~2 KB with 128-character non-ASCII ids and every persona matched (then 22 per event).
ASSIGNMENTS_PER_EVENT_MAX = 100
ASSIGNMENTS_MAX_BYTES = 48 * 1024


class PersonasAssigned(EventData):
    """The assignments of a batch of users (a chunk of an upload, or of a re-score) in one event: one
    publish through the broker instead of one per user."""

    upload_id: str | None
    rule_set_version: str
    reason: Literal["upload", "rescore"]
    assignments: list[PersonaAssignment] = Field(
        description="PersonaAssignment per user: `user_id`, `as_of`, `personas`, `matched`, `details` (as"
        f" in `persona.assigned`); at most {ASSIGNMENTS_PER_EVENT_MAX} of them and"
        f" {ASSIGNMENTS_MAX_BYTES // 1024} KB serialized (a larger batch is split)"
    )

    def each(self) -> list[PersonaAssigned]:
        """Every assignment as the per-user ``persona.assigned`` data: what the consumers' per-user
        handling takes, whichever of the two events brought it."""
        shared = {
            "upload_id": self.upload_id,
            "rule_set_version": self.rule_set_version,
            "reason": self.reason,
        }
        return [PersonaAssigned(**a.model_dump(), **shared) for a in self.assignments]


class RescoreRequested(EventData):
    rule_set_version: str
    requested_by: str


# The review items travel inline up to this size (serialized), by claim check beyond it.
INLINE_ITEMS_MAX_BYTES = 48 * 1024


class RecommendationsGenerated(EventData):
    user_id: str
    upload_id: str | None = None
    recommendation_ids: list[str]
    persona: str
    items: list[ReviewItem] | None = Field(
        None,
        description="What a reviewer needs per recommendation (ReviewItem), inline while the serialized"
        f" list stays within {INLINE_ITEMS_MAX_BYTES // 1024} KB",
    )
    items_claim: ClaimCheck | None = Field(
        None, description="Claim check of the ReviewItems JSON in the data bucket, when the list is larger"
    )

    @model_validator(mode="after")
    def _items_one_way(self) -> RecommendationsGenerated:
        if self.items is not None and self.items_claim is not None:
            raise ValueError("items and items_claim are exclusive: the items travel one way")
        return self


class GeneratedForUser(EventData):
    """One user's recommendations within ``recommendations.batch_generated``: what
    ``recommendations.generated`` carries per user, the review items always by claim check."""

    user_id: str
    recommendation_ids: list[str]
    persona: str
    items_claim: ClaimCheck | None = Field(
        description="Claim check of the user's ReviewItems JSON: the user's line of the batch's JSON Lines"
        " object in the data bucket; null when the recommendations are announced again without their"
        " items (progress only)"
    )


# A recommendations.batch_generated event carries at most this many users' entries, and at most this many
# bytes of them (serialized, as the relay sends it): a larger batch is split.
GENERATED_PER_EVENT_MAX = 100
GENERATED_MAX_BYTES = 48 * 1024


class RecommendationsBatchGenerated(EventData):
    """The recommendations generated for a batch of users (a ``personas.assigned`` event's) in one event:
    one publish through the broker instead of one per user."""

    upload_id: str | None
    generated: list[GeneratedForUser] = Field(
        description="GeneratedForUser per user: `user_id`, `recommendation_ids`, `persona`, `items_claim`;"
        f" at most {GENERATED_PER_EVENT_MAX} of them and {GENERATED_MAX_BYTES // 1024} KB serialized"
        " (a larger batch is split)"
    )

    def each(self) -> list[RecommendationsGenerated]:
        """Every user's entry as the per-user ``recommendations.generated`` data: what the consumers'
        per-user handling takes, whichever of the two events brought it."""
        return [
            RecommendationsGenerated(
                user_id=g.user_id,
                upload_id=self.upload_id,
                recommendation_ids=g.recommendation_ids,
                persona=g.persona,
                items_claim=g.items_claim,
            )
            for g in self.generated
        ]


class OverrideText(BaseModel):
    """What an operator put in place of a recommendation's text: edited text, or another catalog item
    (one of the item's ``alternatives``), either way past every guardrail check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    body: str
    rationale: str
    disclosure: str
    catalog_item_id: str
    catalog_version: str
    source: Literal["edited", "catalog_item"]


class RecommendationReviewed(EventData):
    recommendation_id: str
    user_id: str
    decision: Literal["approved", "rejected", "overridden", "flagged"]
    operator_id: str
    reason: str | None = None
    override: OverrideText | None = Field(None, description="The text shown instead (decision overridden)")
    policy: str | None = Field(
        None, description="The auto-approval policy that decided (operator_id is then policy:<name>)"
    )

    @model_validator(mode="after")
    def _override_with_its_decision(self) -> RecommendationReviewed:
        if (self.decision == "overridden") != (self.override is not None):
            raise ValueError("override is given exactly when the decision is overridden")
        return self


class RecommendationsPublished(EventData):
    """Reviewed recommendations became visible to the user: their devices may be told."""

    user_id: str
    recommendation_ids: list[str]


class ErasureConfirmed(EventData):
    """A service has erased everything it held of a user. Carries only the pseudonym
    (``spendsense_shared.erasure.pseudonym``), so the confirmation itself names nobody. One event type
    per service (``<service>.user_erased``), since every type has one producer."""

    subject: str = Field(description="pseudonym(user_id)")
    erased_at: datetime


class ProfileUserErased(ErasureConfirmed):
    pass


class FeaturesUserErased(ErasureConfirmed):
    pass


class RecommenderUserErased(ErasureConfirmed):
    pass


class OperatorUserErased(ErasureConfirmed):
    pass


ERASURE_CONFIRMATIONS: dict[str, type[ErasureConfirmed]] = {
    "profile": ProfileUserErased,
    "features": FeaturesUserErased,
    "recommender": RecommenderUserErased,
    "operator": OperatorUserErased,
}


@dataclass(frozen=True)
class EventSpec:
    type: str
    version: int
    producer: str
    data: builtins.type[EventData]
    description: str


CATALOG: dict[str, EventSpec] = {
    spec.type: spec
    for spec in [
        EventSpec("user.registered", 1, "auth", UserRegistered, "A new account exists."),
        EventSpec("user.merged", 1, "auth", UserMerged, "Two accounts of one person were merged."),
        EventSpec(
            "user.erased",
            2,
            "auth",
            UserErased,
            "Every service confirmed the erasure of a user (v2: the pseudonym only, never the id).",
        ),
        EventSpec("consent.granted", 1, "profile", ConsentGranted, "The user consented to processing."),
        EventSpec("consent.revoked", 1, "profile", ConsentRevoked, "Consent withdrawn: stop all work."),
        EventSpec(
            "upload.staged",
            1,
            "profile",
            UploadStaged,
            "A chunk's snapshots are written while its upload is merged (a hint: analyze ahead).",
        ),
        EventSpec("upload.ingested", 1, "profile", UploadIngested, "Validated data is in S3 as Parquet."),
        EventSpec("user.erasure_requested", 1, "profile", UserErasureRequested, "Erase the user everywhere."),
        EventSpec(
            "persona.assigned",
            1,
            "features",
            PersonaAssigned,
            "Signals computed, persona chosen (one user; still handled, no longer published).",
        ),
        EventSpec(
            "personas.assigned",
            1,
            "features",
            PersonasAssigned,
            "Signals computed, personas chosen for a batch of users (one event per chunk).",
        ),
        EventSpec(
            "upload.failed", 1, "features", UploadFailed, "A stage could not process an upload's user."
        ),
        EventSpec(
            "personas.rescore_requested",
            1,
            "features",
            RescoreRequested,
            "A rule set was activated: re-score every consented user (batch).",
        ),
        EventSpec(
            "recommendations.generated",
            1,
            "recommender",
            RecommendationsGenerated,
            "New recommendations await review (one user; still handled, no longer published).",
        ),
        EventSpec(
            "recommendations.batch_generated",
            1,
            "recommender",
            RecommendationsBatchGenerated,
            "New recommendations await review, for a batch of users (one event per personas.assigned"
            " handled, split only to stay small).",
        ),
        EventSpec("recommendation.reviewed", 1, "operator", RecommendationReviewed, "An operator decided."),
        EventSpec(
            "recommendations.published",
            1,
            "recommender",
            RecommendationsPublished,
            "Reviewed recommendations are now visible to the user (push notification).",
        ),
        *(
            EventSpec(
                f"{service}.user_erased",
                1,
                service,
                confirmation,
                f"The {service} service erased everything it held of a user (auth tracks the progress).",
            )
            for service, confirmation in ERASURE_CONFIRMATIONS.items()
        ),
    ]
}

SERVICES = ("auth", "profile", "features", "recommender", "operator")

# Which event types each service consumes (SPEC §2). The bus topology derives from this and CATALOG.
CONSUMES: dict[str, tuple[str, ...]] = {
    "auth": (
        "user.erasure_requested",
        *(f"{service}.user_erased" for service in ERASURE_CONFIRMATIONS),
    ),
    # profile also follows the pipeline's progress to report each upload's status
    "profile": (
        "user.registered",
        "user.merged",
        "persona.assigned",
        "personas.assigned",
        "recommendations.generated",
        "recommendations.batch_generated",
        "upload.failed",
        "recommendations.published",
        "user.erased",
    ),
    # every service that keeps per-user data applies a merge of two accounts to it, erases the user, and
    # once the erasure is complete everywhere (user.erased) forgets the events it sent about them
    "features": (
        "upload.staged",
        "upload.ingested",
        "personas.rescore_requested",
        "consent.granted",
        "consent.revoked",
        "user.merged",
        "user.erasure_requested",
        "user.erased",
    ),
    "recommender": (
        "persona.assigned",
        "personas.assigned",
        "recommendation.reviewed",
        "consent.granted",
        "consent.revoked",
        "user.merged",
        "user.erasure_requested",
        "user.erased",
    ),
    "operator": (
        "recommendations.generated",
        "recommendations.batch_generated",
        "persona.assigned",
        "personas.assigned",
        "consent.granted",
        "consent.revoked",
        "user.merged",
        "user.erasure_requested",
        "user.erased",
    ),
}


class UnknownEventType(ValueError):
    pass


def spec_for(event_type: str) -> EventSpec:
    try:
        return CATALOG[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


def new_event(
    data: EventData,
    *,
    user_id: str | None = None,
    causation_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
) -> EventEnvelope:
    """Wrap ``data`` in an envelope; the correlation id defaults to the current request's."""
    spec = next((s for s in CATALOG.values() if isinstance(data, s.data)), None)
    if spec is None:
        raise UnknownEventType(f"{type(data).__name__} is not in the event catalog")
    return EventEnvelope(
        type=spec.type,
        version=spec.version,
        producer=spec.producer,
        correlation_id=correlation_id or current_correlation_id(),
        causation_id=causation_id,
        user_id=user_id,
        data=data.model_dump(mode="json"),
    )


def parse_data(envelope: EventEnvelope) -> EventData:
    """The envelope's data as its typed schema; raises if the type or the data is not valid."""
    spec = spec_for(envelope.type)
    if envelope.version != spec.version:
        raise UnknownEventType(f"{envelope.type} v{envelope.version} (catalog has v{spec.version})")
    return spec.data.model_validate(envelope.data)


MAX_EVENT_BYTES = 64 * 1024  # what any event may weigh on the wire (tests/integration/test_event_sizes.py)
SIZE_RULES = (
    "A payload that grows with the user's data travels by **claim check**: the producer writes it as an"
    " object in the data bucket and the event carries a `ClaimCheck` (`bucket`, `key`, `sha256`,"
    " `size_bytes`, `offset`); the consumer reads it and refuses it if its hash differs (dead-lettered:"
    " retrying cannot help). A claim with an `offset` names a part of a shared object (`size_bytes` and"
    " `sha256` are the part's): the `PersonaDetails` of a batch of users are one JSON Lines object (a line"
    f" per user, at most {ASSIGNMENTS_PER_EVENT_MAX} lines, one write), and a consumer of"
    " `personas.assigned` reads each object it names once for all its users; an erased user's line is"
    " overwritten with spaces, so the other lines keep their offsets and hashes. Without an `offset`"
    " (null) the claim names the whole object. Typed payloads live in `messaging/contracts.py`"
    " (`PersonaDetails`: the `AnalysisReport` and the account kinds; `ReviewItems`: what an operator"
    " reviews) and are parsed once, at the consumer's edge. `recommendations.batch_generated` carries"
    " each user's review items by claim check (`items_claim`): the `ReviewItems` of a batch's users are"
    " one JSON Lines object too (one write), and an erasure blanks the user's line alike."
    " `recommendations.generated` (no longer published) carried its review items inline up to"
    f" {INLINE_ITEMS_MAX_BYTES // 1024} KB (`items`), by claim check beyond (`items_claim`). A batch"
    f" import is announced in chunks of at most {USERS_PER_INGESTED_EVENT} users (`upload.ingested`),"
    " and so are its users'"
    f" personas (`personas.assigned`: at most {ASSIGNMENTS_PER_EVENT_MAX} assignments and"
    f" {ASSIGNMENTS_MAX_BYTES // 1024} KB of them per event) and their recommendations"
    f" (`recommendations.batch_generated`: at most {GENERATED_PER_EVENT_MAX} users and"
    f" {GENERATED_MAX_BYTES // 1024} KB of them per event)."
)


def _type_name(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    return str(prop.get("type", "?"))


def render_markdown() -> str:
    """The event catalog as documentation."""
    lines = [
        "# Event catalog",
        "",
        "Generated from `libs/shared/spendsense_shared/messaging/catalog.py` by `spendsense events docs`.",
        "Every event travels in the envelope `id, type, version, occurred_at, producer, correlation_id,"
        " causation_id, user_id, data`.",
        "",
        f"**Size.** An event stays under {MAX_EVENT_BYTES // 1024} KB (SNS and SQS take 256 KB). "
        + SIZE_RULES,
        "",
        "| type | version | producer | consumers | description |",
        "|---|---|---|---|---|",
    ]
    for spec in CATALOG.values():
        consumers = ", ".join(s for s, types in CONSUMES.items() if spec.type in types) or "—"
        lines.append(
            f"| `{spec.type}` | {spec.version} | {spec.producer} | {consumers} | {spec.description} |"
        )
    for spec in CATALOG.values():
        lines += ["", f"## `{spec.type}` v{spec.version}", "", "| field | type | required | description |"]
        lines.append("|---|---|---|---|")
        schema = spec.data.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            kind = (
                prop.get("type")
                or " | ".join(_type_name(p) for p in prop.get("anyOf", []))
                or _type_name(prop)
            )
            if prop.get("format"):
                kind = f"{kind} ({prop['format']})"
            if "enum" in prop:
                kind = " \\| ".join(prop["enum"])
            desc = prop.get("description", "")
            lines.append(f"| `{name}` | {kind} | {'yes' if name in required else 'no'} | {desc} |")
    return "\n".join(lines) + "\n"
