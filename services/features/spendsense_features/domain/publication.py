"""What the worker stores and announces of each analyzed user, made where the analysis runs (a process
of the worker's pool, :mod:`spendsense_features.adapters.analysis_pool`): the report checked against the
public contract and the ``PersonaDetails`` line the recommender redeems by claim. On the worker's own
event loop that work took a third of its CPU for an upload; in the pool it runs on every core."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import orjson
import pyarrow as pa

from spendsense_features.domain.analysis import analyze_encoded
from spendsense_features.domain.rules import RuleSet
from spendsense_features.domain.snapshots import Snapshots
from spendsense_shared.messaging.contracts import AccountKind, AnalysisReport, PersonaDetails

ACCOUNT_FIELDS = ("type", "subtype", "name", "official_name", "holder_category")


@dataclass(frozen=True, slots=True)
class ScoredUser:
    """One analyzed user: the report as JSON (checked against :class:`AnalysisReport`) and the canonical
    details line (:func:`details_line`)."""

    user_id: str
    report: bytes
    details: bytes


def score_chunk(
    tables: Mapping[str, pa.Table], rule_set: RuleSet, user_ids: Collection[str]
) -> list[ScoredUser]:
    """The reports of ``user_ids`` (by user id) with their details lines; a user without a posted
    transaction (no as-of date, nothing to analyze) is left out."""
    accounts = account_kinds(tables.get("accounts"))
    scored = []
    for user_id, body in analyze_encoded(tables, rule_set, user_ids):
        report = AnalysisReport.model_validate_json(body)  # the public shape, checked at the edge
        if report.as_of is None:
            continue
        details = PersonaDetails(report=report, accounts=accounts.get(user_id, []))
        scored.append(ScoredUser(user_id, body, details_line(details)))
    return scored


def score_snapshots(snapshots: Snapshots, rule_set: RuleSet, user_ids: Collection[str]) -> list[ScoredUser]:
    """:func:`score_chunk` of the snapshots, decoded here (in the pool's process)."""
    return score_chunk(snapshots.tables(), rule_set, user_ids)


def account_kinds(accounts: pa.Table | None) -> dict[str, list[AccountKind]]:
    """What offer eligibility needs about each user's accounts: kinds and names, never numbers or ids."""
    grouped: dict[str, list[AccountKind]] = {}
    if accounts is None:
        return grouped
    for row in accounts.select(["user_id", *ACCOUNT_FIELDS]).to_pylist():
        grouped.setdefault(str(row.pop("user_id")), []).append(AccountKind(**row))
    return grouped


def details_line(details: PersonaDetails) -> bytes:
    # Canonical JSON (sorted keys): the same details give the same bytes, hence the same claim, when
    # published again from the stored analysis (PostgreSQL's JSONB does not keep key order). One line:
    # orjson escapes every newline within a string (and is a fifth of json.dumps' time here).
    return orjson.dumps(details.model_dump(mode="json", by_alias=True), option=orjson.OPT_SORT_KEYS)
