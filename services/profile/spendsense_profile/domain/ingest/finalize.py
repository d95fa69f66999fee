"""Checks that need the whole upload, then the normalized tables.

Run once everything was read: duplicate ids, /transactions/sync changes applied in order, references to
accounts that the upload does not contain (a transaction may come before its account in a JSON object),
currency conversion of card liabilities (their currency is their account's) and the notes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spendsense_shared.dataset import TABLES

from . import stored_text
from .collector import ADDED, MODIFIED, Collector
from .columns import string_parts
from .model import ParsedUpload
from .records import CREDIT_AMOUNT_FIELDS

_ORDER_SHIFT = 1 << 32  # _order = _seq * 2**32 + row: the sync order first, then the position in the upload
_LISTED_IDS = 5


def finalize(col: Collector, fmt: str) -> ParsedUpload:
    user_ids = _user_ids(col)
    accounts = _dedupe(_numbered(col.accounts.table()), col, "account_id", "account")
    transactions = _transactions(_numbered(col.transactions.table()), col)
    credit = _dedupe(_numbered(col.credit.table()), col, "account_id", "credit liability for account")
    stored_text.check_stored_text(
        col,
        user_ids,
        [
            (accounts, stored_text.ACCOUNT_TEXT),
            (transactions, stored_text.TRANSACTION_TEXT),
            (credit, stored_text.CREDIT_TEXT),
        ],
    )
    known = _known_accounts(accounts, col)
    _unknown_accounts(transactions, known, col)
    _unknown_accounts(credit, known, col)
    _unknown_loose_refs(known, col)
    credit = _convert_credit(credit, accounts, col.ctx.rates)
    _notes(accounts, transactions, col)
    problems = col.log.render([user.prefix if col.prefix_users else "" for user in col.users])
    if problems:  # nothing partial: a rejected upload yields no rows at all
        empty = {name: schema.empty_table() for name, schema in TABLES.items()}
        return ParsedUpload(empty, user_ids, problems, col.notes.render(), None, fmt)
    ids = pa.array(user_ids, pa.string())
    tables = {
        "accounts": _output(accounts, "accounts", ids),
        "transactions": _output(transactions, "transactions", ids),
        "credit_liabilities": _output(credit, "credit_liabilities", ids),
    }
    removed = _removed(transactions, col, user_ids)
    return ParsedUpload(tables, user_ids, [], col.notes.render(), _as_of(transactions), fmt, removed)


# -- users --------------------------------------------------------------------------------------------------


def _user_ids(col: Collector) -> list[str]:
    """Every user's id; a single user without one takes ``default_user_id`` (bare Plaid bodies)."""
    users = col.users
    if len(users) == 1 and users[0].user_id is None and col.default_user_id:
        users[0].user_id = col.default_user_id
    seen: dict[str, int] = {}
    for index, user in enumerate(users):
        if user.user_id is None and user.id_given:
            continue
        if user.user_id is None:
            hint = "" if len(users) > 1 else " (or pass default_user_id)"
            col.problem(index, "user_id", f"required{hint}")
        elif user.user_id in seen:
            first = col.full_path(seen[user.user_id], "user_id")
            col.problem(index, "user_id", f"duplicate user {user.user_id!r} (also at {first})")
        else:
            seen[user.user_id] = index
    return [user.user_id for user in users if user.user_id is not None]


# -- tables -------------------------------------------------------------------------------------------------


def _numbered(table: pa.Table) -> pa.Table:
    return table.append_column("_row", pa.array(np.arange(table.num_rows, dtype=np.int64)))


def _dedupe(table: pa.Table, col: Collector, key: str, what: str) -> pa.Table:
    """One row per (user, key): the same id twice in one list is a problem; across lists (the accounts of
    several Plaid bodies) the last copy wins."""
    last = _last_of_each(table, key)
    if last is None:
        return table
    firsts: dict[tuple[int, str, int], int] = {}
    columns = table.select(["_user", key, "_list", "_loc"]).to_pydict()
    for user, value, list_id, loc in zip(*columns.values(), strict=True):
        first = firsts.setdefault((user, value, list_id), loc)
        if first != loc:
            also = col.full_path(user, col.sources[list_id].path(first))
            reason = f"duplicate {what} {value!r} (also at {also})"
            col.problem(user, col.sources[list_id].path(loc, key), reason)
    return table.filter(last)


def _last_of_each(table: pa.Table, key: str) -> np.ndarray | None:
    """Which rows are the last of their (``_user``, ``key``) (a null key is a key as any other), or None
    when no pair is given twice. Integer keys and numpy, not ``Table.group_by``: its module
    (``pyarrow.acero``, with ``pyarrow.dataset``) costs more to import than this whole step."""
    values = table[key]
    index = pc.index_in(values, value_set=pc.unique(values)).to_numpy(zero_copy_only=False)
    users = table["_user"].to_numpy().astype(np.int64)
    pairs = users * (len(index) + 1) + index.astype(np.int64)
    _, first_from_end = np.unique(pairs[::-1], return_index=True)
    if len(first_from_end) == len(pairs):
        return None
    last = np.zeros(len(pairs), dtype=bool)
    last[len(pairs) - 1 - first_from_end] = True
    return last


def _transactions(table: pa.Table, col: Collector) -> pa.Table:
    """Report duplicate ids among added transactions, then apply sync's modified and removed."""
    phase = pc.bit_wise_and(table["_seq"], 3)
    has_changes = col.modified > 0 or bool(col.removals)
    added = table.select(["_user", "transaction_id", "_list", "_loc", "_row"])  # no copy of the other columns
    if has_changes:
        added = added.filter(pc.equal(phase, ADDED))
    _duplicate_transactions(added, col)
    if not has_changes:
        return table
    order = pc.add(pc.multiply(table["_seq"], _ORDER_SHIFT), table["_row"])
    table = table.append_column("_order", order)
    modified_ids = table["transaction_id"].filter(pc.equal(phase, MODIFIED))
    new = pc.sum(pc.invert(pc.is_in(modified_ids, value_set=added["transaction_id"]))).as_py() or 0
    if new:
        col.note(f"{new} modified transaction(s) were not added earlier in the upload; kept as new")
    latest = table.group_by("transaction_id").aggregate([("_order", "max")])["_order_max"]
    if len(latest) < table.num_rows:  # some were modified: keep each transaction's last version
        table = table.filter(pc.is_in(table["_order"], value_set=latest))
    return _apply_removals(table, col)


def _duplicate_transactions(added: pa.Table, col: Collector) -> None:
    if _all_distinct(added["transaction_id"]):  # the usual case, cheaply
        return
    counts = pc.value_counts(added["transaction_id"])
    duplicated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(duplicated) == 0:
        return
    rows = added.filter(pc.is_in(added["transaction_id"], value_set=duplicated))
    rows = rows.sort_by("_row").select(["_user", "transaction_id", "_list", "_loc"]).to_pydict()
    firsts: dict[str, tuple[int, int, int]] = {}
    for user, tid, list_id, loc in zip(*rows.values(), strict=True):
        first = firsts.setdefault(tid, (user, list_id, loc))
        if first != (user, list_id, loc):
            also = col.full_path(first[0], col.sources[first[1]].path(first[2]))
            reason = f"duplicate transaction {tid!r} (also at {also})"
            col.problem(user, col.sources[list_id].path(loc, "transaction_id"), reason)


def _all_distinct(values: pa.ChunkedArray) -> bool:
    """No value twice. Ids all of one length (Plaid's usually are) are hashed to 64 bits where they lie
    and the hashes sorted: no two hashes alike means no two ids alike (about half the time of ``unique``,
    which decides otherwise; ``unique`` costs about two thirds of ``count_distinct`` over many chunks)."""
    hashes = same_length_hashes(values)
    if hashes is not None:
        hashes.sort()
        if not np.any(hashes[1:] == hashes[:-1]):
            return True
    return len(pc.unique(values)) == len(values)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def same_length_hashes(values: pa.ChunkedArray) -> np.ndarray | None:
    """A 64-bit hash of each value when all are strings of one length, at least 8 bytes (None else): the
    value's bytes as overlapping 8-byte words, mixed by multiplication."""
    hashes, width = [], None
    for chunk in values.chunks:
        if len(chunk) == 0:
            continue
        parts = string_parts(chunk) if not chunk.null_count else None
        if parts is None:
            return None
        offsets, data = parts
        width = width if width is not None else int(offsets[1] - offsets[0])
        if width < 8 or len(data) != width * len(chunk) or np.any(np.diff(offsets) != width):
            return None
        rows = data.reshape(len(chunk), width)
        mixed = np.zeros(len(chunk), dtype=np.uint64)
        for start in range(0, width, 8):
            word = np.ascontiguousarray(rows[:, min(start, width - 8) :][:, :8]).view(np.uint64).ravel()
            mixed = (mixed ^ word) * _MIX
            mixed ^= mixed >> np.uint64(29)
        hashes.append(mixed)
    return np.concatenate(hashes) if hashes else None


def _apply_removals(table: pa.Table, col: Collector) -> pa.Table:
    if not col.removals:
        return table
    removed_at: dict[str, int] = {}
    for tid, seq, _ in col.removals:
        removed_at[tid] = max(removed_at.get(tid, 0), seq * _ORDER_SHIFT)
    ids = pa.array(list(removed_at), pa.string())
    hits = table.filter(pc.is_in(table["transaction_id"], value_set=ids)).select(["transaction_id", "_order"])
    drop = [order for tid, order in zip(*hits.to_pydict().values(), strict=True) if removed_at[tid] > order]
    unmatched = len(removed_at) - len(set(hits["transaction_id"].to_pylist()))
    if drop:
        col.note(f"/transactions/sync: {len(drop)} removed transaction(s) applied")
    if unmatched:
        col.note(f"/transactions/sync: {unmatched} removed transaction id(s) were not in the upload")
    if not drop:
        return table
    return table.filter(pc.invert(pc.is_in(table["_order"], value_set=pa.array(drop, pa.int64()))))


def _removed(transactions: pa.Table, col: Collector, user_ids: list[str]) -> list[tuple[str, str]]:
    """(user_id, transaction_id) of every sync removal not undone later in the upload: what the caller
    must delete from data stored by earlier uploads."""
    if not col.removals:
        return []
    ids = pa.array([tid for tid, _, _ in col.removals], pa.string())
    kept = set(
        transactions["transaction_id"]
        .filter(pc.is_in(transactions["transaction_id"], value_set=ids))
        .to_pylist()
    )
    removed = {(user_ids[user], tid): None for tid, _, user in col.removals if tid not in kept}
    return list(removed)


def _known_accounts(accounts: pa.Table, col: Collector) -> pa.Table:
    known = accounts.select(["_user", "account_id"])
    if not col.rejected_accounts:
        return known
    users, ids = zip(*col.rejected_accounts, strict=True)
    rejected = pa.table({"_user": pa.array(users, pa.int32()), "account_id": pa.array(ids, pa.string())})
    return pa.concat_tables([known, rejected])


def _unknown_accounts(table: pa.Table, known: pa.Table, col: Collector) -> None:
    columns = ["_user", "account_id", "_list", "_loc", "_row"]
    orphans = table.select(columns).filter(pc.invert(_among(table, known)))
    if orphans.num_rows == 0:
        return
    rows = orphans.sort_by("_row").to_pydict()
    for user, account_id, list_id, loc, _ in zip(*rows.values(), strict=True):
        path = col.sources[list_id].path(loc, "account_id")
        col.problem(user, path, f"unknown account {account_id!r} (not among the upload's accounts)")


def _among(table: pa.Table, known: pa.Table) -> pa.Array:
    """Whether each row's (``_user``, ``account_id``) is a row of ``known`` (never for a null), as one
    integer key per pair: no hash join, whose module (``pyarrow.acero``, with ``pyarrow.dataset``) costs
    more to import than the join itself."""
    ids = pc.unique(known["account_id"])
    width = len(ids) + 1

    def keys(t: pa.Table) -> pa.ChunkedArray:
        index = pc.cast(pc.index_in(t["account_id"], value_set=ids, skip_nulls=True), pa.int64())
        return pc.add(pc.multiply(pc.cast(t["_user"], pa.int64()), width), index)

    return pc.is_in(keys(table), value_set=keys(known).combine_chunks(), skip_nulls=True)


def _unknown_loose_refs(known: pa.Table, col: Collector) -> None:
    if not col.loose_refs:
        return
    keys = set(zip(*known.to_pydict().values(), strict=True))
    for user, account_id, list_id, loc in col.loose_refs:
        if (user, account_id) not in keys:
            path = col.sources[list_id].path(loc, "account_id")
            col.problem(user, path, f"unknown account {account_id!r} (not among the upload's accounts)")


def _convert_credit(credit: pa.Table, accounts: pa.Table, rates: dict[str, float]) -> pa.Table:
    """Card liabilities are in their account's currency: convert with the account's rate. (An account
    whose currency has no rate was already reported; its liability is left as is, the upload is rejected.)"""
    foreign = accounts.filter(pc.not_equal(accounts["iso_currency_code"], "USD"))
    if credit.num_rows == 0 or foreign.num_rows == 0:
        return credit
    keys = zip(foreign["_user"].to_pylist(), foreign["account_id"].to_pylist(), strict=True)
    currency = dict(zip(keys, foreign["iso_currency_code"].to_pylist(), strict=True))
    owners = zip(credit["_user"].to_pylist(), credit["account_id"].to_pylist(), strict=True)
    factors = pa.array([rates.get(currency.get(key, "USD"), 1.0) for key in owners], pa.float64())
    for name in CREDIT_AMOUNT_FIELDS:
        index = credit.schema.get_field_index(name)
        credit = credit.set_column(index, name, pc.multiply(credit[name], factors))
    return credit


# -- notes and output ---------------------------------------------------------------------------------------


def _notes(accounts: pa.Table, transactions: pa.Table, col: Collector) -> None:
    business = accounts.filter(pc.equal(accounts["holder_category"], "business"))
    if business.num_rows:
        col.note(
            f"{business.num_rows} business account(s) kept but excluded from analysis: "
            + _listing(business["account_id"].to_pylist())
        )
    pending = pc.sum(transactions["pending"]).as_py() or 0
    if pending:
        col.note(f"{pending} pending transaction(s) kept; pending transactions are ignored for signals")
    for code, count in sorted(col.ctx.converted.items()):
        col.note(f"converted {count} record(s) from {code} to USD at {col.ctx.rates[code]}")
    for kind, count in sorted(col.uncounted_kinds.items()):
        col.note(f"{count} {kind} liability entr{'y' if count == 1 else 'ies'} checked but not stored")
    if col.modified:
        col.note(f"/transactions/sync: {col.modified} modified transaction(s) applied")


def _listing(values: Iterable[Any]) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:_LISTED_IDS])
    return shown + (f" and {len(values) - _LISTED_IDS} more" if len(values) > _LISTED_IDS else "")


def _as_of(transactions: pa.Table) -> date | None:
    # Mask the one column rather than filter the table: a filtered table would be a full copy.
    posted = pc.if_else(transactions["pending"], pa.scalar(None, pa.date32()), transactions["date"])
    latest = pc.max(posted).as_py()
    return latest if isinstance(latest, date) else None


def _output(table: pa.Table, name: str, user_ids: pa.Array) -> pa.Table:
    schema = TABLES[name]
    columns = [pc.take(user_ids, table["_user"]) if f.name == "user_id" else table[f.name] for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)
