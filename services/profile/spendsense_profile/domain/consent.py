"""Consent rules, free of I/O. A user has at most one current consent; every grant and revocation is
kept as history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

CURRENT_POLICY_VERSION = "2026-01"
KNOWN_SCOPES = frozenset({"analysis", "recommendations", "operator_review"})
DEFAULT_SCOPES = ("analysis", "recommendations", "operator_review")


class ConsentError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Consent:
    consent_id: str
    user_id: str
    policy_version: str
    scopes: tuple[str, ...]
    granted_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_current(self) -> bool:
        return self.revoked_at is None


def grant(user_id: str, policy_version: str | None, scopes: list[str] | None, now: datetime) -> Consent:
    chosen = tuple(sorted(set(scopes))) if scopes else DEFAULT_SCOPES
    unknown = sorted(set(chosen) - KNOWN_SCOPES)
    if unknown:
        raise ConsentError("invalid_scope", f"scopes: unknown scope(s) {', '.join(unknown)}")
    if "analysis" not in chosen:
        raise ConsentError("invalid_scope", "scopes: 'analysis' is required to process any data")
    return Consent(
        consent_id=uuid.uuid4().hex,
        user_id=user_id,
        policy_version=policy_version or CURRENT_POLICY_VERSION,
        scopes=chosen,
        granted_at=now,
    )


def renews(current: Consent | None, requested: Consent) -> bool:
    """A grant identical to the current consent (same policy version and scopes) changes nothing: granting
    twice (a double click, an app that grants at every start) neither adds history nor announces a change."""
    return (
        current is not None
        and current.is_current
        and (current.policy_version, current.scopes) == (requested.policy_version, requested.scopes)
    )


def revoke(current: Consent | None, now: datetime) -> Consent:
    if current is None or not current.is_current:
        raise ConsentError("no_current_consent", "there is no current consent to revoke")
    return replace(current, revoked_at=now)


def superseded_by_merge(source: Consent | None, target: Consent | None, at: datetime) -> Consent | None:
    """When the source account is merged into the target, its consent records become the target's and the
    target's current consent stays current: if both have one, the source's is revoked at the merge time
    (never before it was granted), since a user has at most one current consent. The revoked consent to
    store, or None when nothing needs revoking."""
    if source is None or target is None or not source.is_current or not target.is_current:
        return None
    return revoke(source, max(at, source.granted_at))


@dataclass(frozen=True)
class ErasureRequested:
    """What an erasure did here: whether a current consent was revoked, when it was requested, and how
    many of the user's objects were deleted from the data bucket."""

    user_id: str
    requested_at: datetime
    consent_revoked: bool
    objects_deleted: int
