"""The public per-user analysis document (signals and personas for both windows), JSON-ready."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["REQUIRED_SIGNALS", "analysis_report", "json_safe"]

# Keys every report carries per signal group (extra keys in a group are allowed, missing ones never).
REQUIRED_SIGNALS: dict[str, tuple[str, ...]] = {
    "credit": ("max_utilization", "cards", "interest_charges", "minimum_payment_only", "overdue"),
    "subscriptions": (
        "recurring_merchants",
        "recurring_merchant_count",
        "monthly_recurring_spend",
        "subscription_share",
    ),
    "savings": ("net_inflow", "net_inflow_monthly", "growth_rate", "emergency_fund_months"),
    "income": (
        "pay_frequency",
        "median_pay_gap_days",
        "cash_flow_buffer_months",
        "income_total",
        "variability",
    ),
    "cash_flow": ("income", "spending", "overdraft_fee_count"),
}
_COUNTS = frozenset(
    {"subscriptions.recurring_merchant_count", "cash_flow.overdraft_fee_count", "credit.card_count"}
)


def json_safe(value: Any) -> Any:
    """Plain JSON types: NaN/NaT → None, numpy scalars → Python, dates → ISO strings (recursively)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_safe(v) for v in value]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, pd.Timestamp | datetime):
        return None if pd.isna(value) else value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is pd.NaT or value is pd.NA:
        return None
    return value


def _signal_groups(row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {group: {} for group in REQUIRED_SIGNALS}
    for key, value in row.items():
        group, _, name = key.partition(".")
        if not name:
            continue
        if key in _COUNTS and isinstance(value, float) and math.isfinite(value):
            value = int(value)
        groups.setdefault(group, {})[name] = json_safe(value)
    for group, required in REQUIRED_SIGNALS.items():
        missing = [name for name in required if name not in groups[group]]
        if missing:
            raise ValueError(f"signals lack {group}.{missing[0]}: not a compute_signals() frame")
    return groups


def analysis_report(signals: pd.DataFrame, personas: pd.DataFrame) -> list[dict[str, Any]]:
    """One document per user, in the public shape::

    {"user_id", "as_of", "windows": {"30d": {"persona": {"primary", "matched"},
                                              "signals": {"credit": {...}, ...}}, "180d": {...}}}
    """
    persona_by_key = {
        (str(u), str(w)): (p, m)
        for u, w, p, m in zip(
            personas["user_id"], personas["window"], personas["primary"], personas["matched"], strict=True
        )
    }
    reports: dict[str, dict[str, Any]] = {}
    for row in signals.to_dict(orient="records"):
        user_id, window = str(row["user_id"]), str(row["window"])
        report = reports.setdefault(user_id, {"user_id": user_id, "as_of": None, "windows": {}})
        if report["as_of"] is None:
            report["as_of"] = json_safe(row.get("as_of"))
        primary, matched = persona_by_key.get((user_id, window), (None, []))
        report["windows"][window] = {
            "persona": {"primary": primary, "matched": json_safe(matched)},
            "signals": _signal_groups(row),
        }
    return list(reports.values())
