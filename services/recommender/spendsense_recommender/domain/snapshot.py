"""The part of the features service's analysis report that the recommender uses, as a typed snapshot.

The report (``spendsense_features.domain.report``) is ``{"user_id", "as_of", "windows": {"30d": {...},
"180d": {...}}}``. Parsing keeps only what selection and rationales need and drops identifiers
(account ids, transaction ids, streams): the snapshot is stored in every decision trace and is what a
replay recomputes from, so it must be compact, stable and free of anything the LLM must not see.

Window choice: the 180-day window's persona and signals (SPEC §6, the longer view); when that window
is missing or has no persona, the 30-day window. Personas matched only in the other window are kept
as ``recent_matched`` and weigh less in selection.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, field_validator

from spendsense_shared.messaging.contracts import (
    AnalysisReport,
    CardFields,
    CashFlowFields,
    CreditFields,
    IncomeFields,
    MerchantFields,
    PriceChangeFields,
    SavingsFields,
    SubscriptionFields,
)

from .vocabulary import GENERAL_WELLNESS, PERSONA_IDS

__all__ = ["ReportLike", "UserSnapshot", "WindowSignals", "as_snapshot", "parse_report", "snapshot_of"]

PREFERRED_WINDOWS = ("180d", "30d")


class _Model(BaseModel):
    # Reports carry more keys than we use; ignore them rather than fail (extend, don't break).
    model_config = ConfigDict(extra="ignore", frozen=True)


class Card(CardFields, _Model):
    pass


class PriceChange(PriceChangeFields, _Model):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Merchant(MerchantFields, _Model):
    price_change: PriceChange | None = None


class Credit(CreditFields, _Model):
    cards: list[Card] = []


class Subscriptions(SubscriptionFields, _Model):
    recurring_merchants: list[Merchant] = []


class Savings(SavingsFields, _Model):
    pass


class Income(IncomeFields, _Model):
    pass


class CashFlow(CashFlowFields, _Model):
    pass


class WindowSignals(_Model):
    window_days: int | None = None
    credit: Credit = Credit()
    subscriptions: Subscriptions = Subscriptions()
    savings: Savings = Savings()
    income: Income = Income()
    cash_flow: CashFlow = CashFlow()


class PersonaMatch(_Model):
    id: str
    criteria: list[str] = []

    @field_validator("id")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PERSONA_IDS:
            raise ValueError(f"unknown persona id {value!r}")
        return value


class UserSnapshot(_Model):
    """What the recommender knows about one user for one decision (stored in the trace)."""

    user_id: str
    as_of: date | None = None
    window: str
    window_days: int
    primary_persona: str
    matched: list[PersonaMatch] = []
    recent_matched: list[PersonaMatch] = []
    signals: WindowSignals

    @property
    def persona_ids(self) -> list[str]:
        """Primary first, then the other personas matched in the chosen window (priority order)."""
        ids = [self.primary_persona]
        ids += [m.id for m in self.matched if m.id not in ids]
        return ids

    @property
    def criteria_fired(self) -> dict[str, list[str]]:
        return {m.id: list(m.criteria) for m in self.matched}


def _window_days(name: str, signals: dict[str, Any]) -> int:
    declared = signals.get("window_days")
    if isinstance(declared, int | float) and declared > 0:
        return int(declared)
    return int(name.rstrip("d")) if name.rstrip("d").isdigit() else 0


def _persona(result: dict[str, Any]) -> tuple[str | None, list[PersonaMatch]]:
    persona = result.get("persona") or {}
    primary = persona.get("primary")
    matched = [PersonaMatch.model_validate(m) for m in persona.get("matched") or []]
    if primary is not None and primary not in PERSONA_IDS:
        raise ValueError(f"unknown persona id {primary!r}")
    return primary, matched


def _choose_window(windows: dict[str, Any]) -> str:
    """The 180-day window when it has a persona, else the first window (30-day preferred) that does."""
    for name in PREFERRED_WINDOWS:
        if name in windows and (windows[name].get("persona") or {}).get("primary"):
            return name
    for name in (*PREFERRED_WINDOWS, *sorted(windows)):
        if name in windows:
            return name
    raise ValueError("the analysis report has no windows")


def snapshot_of(report: AnalysisReport) -> UserSnapshot:
    """The snapshot of a typed analysis report (what the service receives, validated at the edge)."""
    return parse_report(report.model_dump(by_alias=True))


ReportLike: TypeAlias = UserSnapshot | AnalysisReport | Mapping[str, Any]


def as_snapshot(report: ReportLike) -> UserSnapshot:
    """A snapshot as is; a report (typed, or its JSON object) parsed into one."""
    if isinstance(report, UserSnapshot):
        return report
    if isinstance(report, AnalysisReport):
        return snapshot_of(report)
    return parse_report(dict(report))


def parse_report(report: dict[str, Any]) -> UserSnapshot:
    """The snapshot of a features analysis report's JSON object (raises ValueError on an unusable one)."""
    windows = report.get("windows") or {}
    if not isinstance(windows, dict) or not windows:
        raise ValueError("the analysis report has no windows")
    if not report.get("user_id"):
        raise ValueError("the analysis report has no user_id")
    chosen = _choose_window(windows)
    result = windows[chosen]
    primary, matched = _persona(result)
    others = sorted(w for w in windows if w != chosen)
    recent: list[PersonaMatch] = []
    for name in others:
        _, other_matched = _persona(windows[name])
        recent += [m for m in other_matched if m.id not in {x.id for x in matched + recent}]
    raw_signals = dict(result.get("signals") or {})
    days = _window_days(chosen, raw_signals)
    return UserSnapshot(
        user_id=str(report["user_id"]),
        as_of=report.get("as_of"),
        window=chosen,
        window_days=days,
        primary_persona=primary or GENERAL_WELLNESS,
        matched=matched,
        recent_matched=recent,
        signals=WindowSignals.model_validate({**raw_signals, "window_days": days}),
    )
