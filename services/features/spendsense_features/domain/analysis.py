"""One entry point from normalized tables to the public analysis report: used by the worker (an
``upload.ingested`` event), by batch re-scoring and by ``spendsense analyze`` (which parses a file with
the profile service's parser first: the composition happens in the CLI, not here)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spendsense_features.domain.dataset import Dataset
from spendsense_features.domain.report import analysis_report
from spendsense_features.domain.rules import RuleSet, assign_personas
from spendsense_features.domain.signals import compute_signals


def analyze(
    tables: Mapping[str, pa.Table],
    rule_set: RuleSet,
    user_ids: Collection[str] | None = None,
    as_of: date | Mapping[str, date] | None = None,
) -> list[dict[str, Any]]:
    """Signals for both windows and personas, for every user in ``tables`` (or only ``user_ids``)."""
    if user_ids is not None:
        keep = pa.array(sorted(user_ids), type=pa.string())
        tables = {name: t.filter(pc.is_in(t["user_id"], value_set=keep)) for name, t in tables.items()}
    signals = compute_signals(Dataset.from_arrow(tables), as_of=as_of)
    return analysis_report(signals, assign_personas(signals, rule_set))


def render_table(reports: list[dict[str, Any]]) -> str:
    """A compact human view: one line per user and window."""
    header = f"{'user_id':<24}{'window':<8}{'persona':<26}{'util':>7}{'subs':>6}{'pay gap':>9}{'buffer':>8}"
    lines = [header, "-" * len(header)]
    for report in reports:
        for window, result in report["windows"].items():
            s = result["signals"]
            lines.append(
                f"{report['user_id']:<24}{window:<8}{result['persona']['primary']:<26}"
                f"{_fmt(s['credit']['max_utilization'], '{:.0%}'):>7}"
                f"{_fmt(s['subscriptions']['recurring_merchant_count'], '{}'):>6}"
                f"{_fmt(s['income']['median_pay_gap_days'], '{:.0f}d'):>9}"
                f"{_fmt(s['income']['cash_flow_buffer_months'], '{:.1f}m'):>8}"
            )
    return "\n".join(lines)


def _fmt(value: Any, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)
