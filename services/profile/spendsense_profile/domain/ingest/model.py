"""The result of parsing an upload: normalized tables, or the complete list of what is wrong with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa


@dataclass(frozen=True)
class Problem:
    """One reason an upload is rejected. ``path`` names the offending field, e.g.
    ``users[3].transactions[17].amount`` or ``transactions.csv:line 18.amount``; ``$`` is the whole upload."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class ParsedUpload:
    """What :func:`parse_upload` found.

    When ``ok`` is false the upload is rejected: ``problems`` lists everything wrong with it (up to
    ``max_errors``) and ``tables`` are empty on purpose, so that nothing from a rejected upload can be
    stored by mistake. The caller must not store anything from a rejected upload.
    """

    tables: dict[str, pa.Table]  # keys and schemas exactly spendsense_shared.dataset.TABLES
    user_ids: list[str]  # in order of first appearance
    problems: list[Problem]
    notes: list[str] = field(default_factory=list)  # non-fatal observations, for the uploader
    as_of: date | None = None  # latest posted (non-pending) transaction date
    format: str = ""  # json | jsonl | csv | zip
    # (user_id, transaction_id) removed by /transactions/sync and not in ``tables``: a transaction stored
    # by an earlier upload that the caller should delete. Plaid's "modified" needs nothing extra: the
    # transaction is in ``tables`` and replaces the stored one with the same transaction_id.
    removed_transaction_ids: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems
