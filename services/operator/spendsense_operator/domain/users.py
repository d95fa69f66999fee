"""What the operator keeps of a user's analysis (its projection of ``persona.assigned``) and the user
detail operators read: the latest signals per window, the persona history, the user's recommendations in
the review queue. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from spendsense_operator.domain.model import QueuedItem
from spendsense_shared.messaging.catalog import PersonaAssigned
from spendsense_shared.messaging.contracts import AnalysisReport

PERSONA_HISTORY_MAX = 50  # assignments a user detail shows (newest first)
USER_RECOMMENDATIONS_MAX = 200  # review items a user detail shows (newest first)
WINDOWS = ("30d", "180d")


@dataclass(frozen=True)
class PersonaRecord:
    """One window's persona assignment (history keeps every one, with its rule-set version)."""

    user_id: str
    window: str
    persona: str
    matched: list[str]
    rule_set_version: str
    as_of: date
    upload_id: str | None
    reason: str  # upload or rescore
    assigned_at: datetime  # when the features service assigned it (the event's time)
    event_id: str  # the persona.assigned event it came from


@dataclass(frozen=True)
class WindowSignals:
    """A window's signals from the latest analysis report (newer as_of, then newer assignment, wins)."""

    user_id: str
    window: str
    signals: dict[str, Any]
    as_of: date
    rule_set_version: str
    upload_id: str | None
    assigned_at: datetime


def assignment_key(record: PersonaRecord) -> tuple[str, str, str, date, str, str] | None:
    """What makes two history rows the same assignment although they came in different events: the user,
    upload, window, as-of date, rule-set version and persona. The features service analyzes a user once per
    upload, and publishes that analysis again (a new event) when what followed it was lost; the projection
    records it once. A re-score (no upload) has no such key: each re-score event is an assignment of its
    own."""
    if record.upload_id is None:
        return None
    return (
        record.user_id,
        record.upload_id,
        record.window,
        record.as_of,
        record.rule_set_version,
        record.persona,
    )


class ReportMismatch(ValueError):
    """The analysis report behind a persona.assigned names another user."""


def projection_of(
    data: PersonaAssigned, report: AnalysisReport, *, event_id: str, assigned_at: datetime
) -> tuple[list[PersonaRecord], list[WindowSignals]]:
    """The history rows (one per window with a persona) and the signals (one per window of the report)
    an assignment adds."""
    if report.user_id != data.user_id:
        raise ReportMismatch(
            f"the report is of another user than the persona.assigned event ({data.user_id})"
        )
    history = [
        PersonaRecord(
            user_id=data.user_id,
            window=window,
            persona=persona,
            matched=list(data.matched.get(window, [])),
            rule_set_version=data.rule_set_version,
            as_of=data.as_of,
            upload_id=data.upload_id,
            reason=data.reason,
            assigned_at=assigned_at,
            event_id=event_id,
        )
        for window, persona in sorted(data.personas.items())
    ]
    signals = [
        WindowSignals(
            user_id=data.user_id,
            window=window,
            signals=windowed.signals.model_dump(mode="json", by_alias=True),
            as_of=report.as_of or data.as_of,
            rule_set_version=data.rule_set_version,
            upload_id=data.upload_id,
            assigned_at=assigned_at,
        )
        for window, windowed in sorted(report.windows.items())
    ]
    return history, signals


def newer(candidate: WindowSignals, current: WindowSignals | None) -> bool:
    """Whether ``candidate`` replaces ``current`` (events may arrive out of order)."""
    return current is None or (candidate.as_of, candidate.assigned_at) >= (current.as_of, current.assigned_at)


@dataclass(frozen=True)
class UserDetail:
    user_id: str
    signals: dict[str, WindowSignals]  # by window
    personas: list[PersonaRecord]  # newest first, at most PERSONA_HISTORY_MAX
    more_personas: bool
    recommendations: list[QueuedItem]  # newest first, at most USER_RECOMMENDATIONS_MAX
    more_recommendations: bool
    counts: dict[str, int] = field(default_factory=dict)  # the user's review items per status

    @property
    def knows_nothing(self) -> bool:
        return not self.signals and not self.personas and not self.recommendations
