"""Text the database can store: no value longer than its column, no NUL character (PostgreSQL's text
cannot hold one). Checked once over the collected tables (vectorized, whichever reader filled them),
each bad value reported at its record's path, so such an upload is refused (``invalid_upload``, with
the field paths) instead of failing when stored.

The limits are the column sizes of ``adapters/orm.py`` (a unit test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .collector import Collector

NUL = "\x00"
USER_ID_MAX = 128

# (column of the collected table, field as the upload names it, longest value; None: any length)
TextColumn = tuple[str, str, int | None]
ACCOUNT_TEXT: tuple[TextColumn, ...] = (
    ("account_id", "account_id", 128),
    ("name", "name", None),
    ("official_name", "official_name", None),
    ("subtype", "subtype", 64),
    ("mask", "mask", 8),
)
TRANSACTION_TEXT: tuple[TextColumn, ...] = (
    ("transaction_id", "transaction_id", 128),
    ("account_id", "account_id", 128),
    ("name", "name", None),
    ("merchant_name", "merchant_name", None),
    ("merchant_entity_id", "merchant_entity_id", 128),
    ("category_primary", "personal_finance_category.primary", 64),
    ("category_detailed_raw", "personal_finance_category.detailed", 96),
)
CREDIT_TEXT: tuple[TextColumn, ...] = (("account_id", "account_id", 128),)


def problem_with(value: str, limit: int | None) -> str | None:
    """Why ``value`` cannot be stored in a column of ``limit`` characters, or None."""
    if NUL in value:
        return "must not contain a NUL character"
    if limit is not None and len(value) > limit:
        return f"longer than {limit} characters ({len(value)})"
    return None


def check_stored_text(
    col: Collector, user_ids: Iterable[str | None], tables: Iterable[tuple[pa.Table, tuple[TextColumn, ...]]]
) -> None:
    """Reports every value of ``tables`` (collected, with ``_user``/``_list``/``_loc``) and every user id
    the database could not store."""
    for index, user_id in enumerate(user_ids):
        reason = user_id and problem_with(user_id, USER_ID_MAX)
        if reason:
            col.problem(index, "user_id", reason)
    for table, columns in tables:
        for column, field, limit in columns:
            _check_column(col, table, column, field, limit)
    for transaction_id, _, user in col.removals:
        reason = problem_with(transaction_id, 128)
        if reason:
            col.problem(user, "removed.transaction_id", reason)


def _check_column(col: Collector, table: pa.Table, column: str, field: str, limit: int | None) -> None:
    values = table[column]
    if all(_plainly_storable(chunk, limit) for chunk in values.chunks):
        return
    bad = pc.match_substring(values, NUL)
    if limit is not None:
        bad = pc.or_(bad, pc.greater(pc.utf8_length(values), limit))
    bad = pc.fill_null(bad, False)
    if not pc.any(bad).as_py():
        return
    rows = table.filter(bad).select(["_user", column, "_list", "_loc"]).to_pydict()
    for user, value, list_id, loc in zip(*rows.values(), strict=True):
        reason = problem_with(value, limit) or "cannot be stored"
        col.problem(user, col.sources[list_id].path(loc, field), reason)


def _plainly_storable(array: pa.Array, limit: int | None) -> bool:
    """True when the array's bytes show at once that every value can be stored: no zero byte among
    them (in UTF-8 only U+0000 encodes to one) and none longer than ``limit`` bytes (a character is at
    least a byte). Reads the offsets and the character data in place, so the usual clean column costs
    a scan of its bytes instead of a kernel call per value; False sends the column to the exact check."""
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return False
    n = len(array)
    if n == 0:
        return True
    _, offsets_buffer, data_buffer = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=width)[array.offset : array.offset + n + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    if last > first:
        data = np.frombuffer(data_buffer, dtype=np.uint8)[first:last]
        if np.count_nonzero(data) != len(data):
            return False
    return limit is None or int(np.diff(offsets).max()) <= limit
