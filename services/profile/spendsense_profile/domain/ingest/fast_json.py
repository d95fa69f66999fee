"""The fast reader of JSON and JSON Lines uploads: ``msgspec`` for the structure, ``pyarrow.json`` for the
transactions, :mod:`.columns` for their checks.

It reads the plain shapes only — one user ``{"user_id", "accounts", "transactions", "liabilities"}``, a
``{"users": [...]}`` document of them, or JSON Lines of them — and rejects (:class:`.columns.Rejected`)
anything else: Plaid bodies and envelopes, unknown keys (the slow path notes them), malformed JSON, and
any value the slow path would report. The caller then reads the upload again with the slow path, so
every problem is named exactly as before.

How: a typed ``msgspec`` decoder walks each user object in C, keeping its transactions as raw bytes
(``msgspec.Raw``: syntax-checked, not built); the user's accounts and liabilities, a few per user, go
through the record-at-a-time checks of the :class:`.collector.Collector` as before. Whole user objects,
one per line, then go to ``pyarrow.json`` by chunks of about ``CHUNK_BYTES`` with an explicit schema: it
builds the transaction columns in C++ (on every core), rejecting any value of the wrong JSON type, and
:mod:`.columns` checks and normalizes them per column. A user too large for one chunk has its
transactions read ``TRANSACTIONS_PER_CHUNK`` at a time. Memory: the upload is a memory map (or the bytes
given), one chunk of users is copied at a time, and the rows accumulate as Arrow record batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .collector import ADDED, Collector
from .columns import Rejected, TransactionColumns, transaction_batch
from .detect import BOM, Whole

CHUNK_BYTES = 32 * 1024 * 1024  # users are handed to pyarrow.json by chunks of about this size
BLOCK_BYTES = 4 * 1024 * 1024  # pyarrow.json's block (its unit of parallel work), unless a line is longer
TRANSACTIONS_PER_CHUNK = 65_536  # for a user too large for one chunk

_STRING = pa.string()
_TX_FIELDS = [
    ("transaction_id", _STRING),
    ("account_id", _STRING),
    ("date", _STRING),
    ("authorized_date", _STRING),
    ("amount", pa.float64()),
    ("iso_currency_code", _STRING),
    ("unofficial_currency_code", _STRING),
    ("name", _STRING),
    ("merchant_name", _STRING),
    ("merchant_entity_id", _STRING),
    ("payment_channel", _STRING),
    ("personal_finance_category", pa.struct([("primary", _STRING), ("detailed", _STRING)])),
    ("pending", pa.bool_()),
]
_TX = pa.struct(_TX_FIELDS)
_NOTHING = pa.struct([])  # parsed (so a key given twice is caught) but nothing kept
# One user a line. Declaring user_id, accounts and liabilities (they are read by msgspec) makes
# pyarrow.json refuse a key given twice, which msgspec would silently take the last of.
_USER_LINE = pa.schema(
    [
        ("user_id", _STRING),
        ("accounts", pa.list_(_NOTHING)),
        ("liabilities", _NOTHING),
        ("transactions", pa.list_(_TX)),
    ]
)
_USER_KEYS = pa.schema(
    [*(f for f in _USER_LINE if f.name != "transactions"), ("transactions", pa.list_(_NOTHING))]
)
_TX_LINE = pa.schema(_TX_FIELDS)  # one transaction a line (a user too large for one chunk)


class _User(msgspec.Struct, forbid_unknown_fields=True):
    """A user object: any other key (envelopes, Plaid bodies, unknown fields) is for the slow path."""

    user_id: Any = msgspec.UNSET
    accounts: Any = msgspec.UNSET
    liabilities: Any = msgspec.UNSET
    transactions: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class _Document(_User, forbid_unknown_fields=True):
    """A whole JSON document: one user, or ``{"users": [...]}``."""

    users: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET


class _LargeUser(msgspec.Struct):
    transactions: list[msgspec.Raw] | msgspec.UnsetType | None = msgspec.UNSET


_USER = msgspec.json.Decoder(_User)
_DOCUMENT = msgspec.json.Decoder(_Document)
_LARGE_USER = msgspec.json.Decoder(_LargeUser)


@dataclass
class _Line:
    """A user waiting for its chunk: where its object is, and the bookkeeping of its transactions."""

    begin: int
    end: int
    user: int
    list_id: int  # -1: no transactions list
    seq: int
    compact: bytes | None = None  # the object without line breaks, when it had some


def read_json_fast(whole: Whole, col: Collector) -> None:
    """A JSON document: one user or a ``users`` list of them."""
    reader = _Reader(whole, col, contiguous=False)
    begin = _skip_bom(whole)
    try:
        doc = _DOCUMENT.decode(whole.view(begin, whole.end))
    except msgspec.DecodeError as exc:
        if "trailing characters" in str(exc):  # several values (one user each): JSON Lines, if a line each
            read_json_lines_fast(whole, col)
            return
        raise Rejected(f"document: {exc}") from exc
    except msgspec.ValidationError as exc:
        raise Rejected(f"document: {exc}") from exc
    if doc.users is msgspec.UNSET:
        if all(getattr(doc, f) is msgspec.UNSET for f in _User.__struct_fields__):
            raise Rejected("document: no user data")
        reader.user(begin, whole.end, "users[0].", doc)
    else:
        if any(getattr(doc, f) is not msgspec.UNSET for f in _User.__struct_fields__) or not doc.users:
            raise Rejected("document: a users list with other data, or an empty one")
        col.prefix_users = True
        spans = _spans(whole, doc.users)
        del doc
        _check_single_users_key(whole, begin, spans)
        for k, (first, last) in enumerate(spans):
            reader.user(first, last, f"users[{k}].", None)
    reader.flush()


def read_json_lines_fast(whole: Whole, col: Collector) -> None:
    """JSON Lines: one user object a line."""
    reader = _Reader(whole, col, contiguous=True)
    pos, end, count = _skip_bom(whole), whole.end, 0
    while pos < end:
        newline = whole.find(b"\n", pos, end)
        stop = end if newline < 0 else newline + 1
        if _blank(whole, pos, stop):  # as the slow path: a line of whitespace is skipped
            pos = stop
            continue
        reader.user(pos, stop, f"users[{count}].", None)
        count += 1
        pos = stop
    if count == 0:
        raise Rejected("no lines")
    col.prefix_users = count > 1
    reader.flush()


def _blank(whole: Whole, begin: int, end: int) -> bool:
    if bytes(whole.view(begin, min(end, begin + 64))).strip():
        return False
    return end - begin <= 64 or not bytes(whole.view(begin, end)).strip()


def _skip_bom(whole: Whole) -> int:
    return (
        whole.start + len(BOM)
        if bytes(whole.view(whole.start, whole.start + len(BOM))) == BOM
        else whole.start
    )


def _spans(whole: Whole, raws: list[msgspec.Raw]) -> list[tuple[int, int]]:
    """Where each raw value lies in the upload (msgspec's Raw values are views of its buffer)."""
    base = pa.py_buffer(whole.data).address
    spans = []
    for raw in raws:
        address = pa.py_buffer(raw).address - base
        spans.append((address, address + len(raw)))
    return spans


def _check_single_users_key(whole: Whole, begin: int, spans: list[tuple[int, int]]) -> None:
    """A second "users" key (msgspec keeps the last) would be outside the list it decoded."""
    head = bytes(whole.view(begin, spans[0][0]))
    tail = bytes(whole.view(spans[-1][1], whole.end))
    if head.count(b'"users"') != 1 or b'"users"' in tail:
        raise Rejected("document: users given twice")


class _Reader:
    def __init__(self, whole: Whole, col: Collector, *, contiguous: bool) -> None:
        self.whole = whole
        self.col = col
        self.contiguous = contiguous  # JSON Lines: the users of a chunk are one slice of the upload
        self.pending: list[_Line] = []
        self.pending_bytes = 0

    # -- one user ---------------------------------------------------------------------------------------

    def user(self, begin: int, end: int, prefix: str, decoded: _User | None) -> None:
        whole, col = self.whole, self.col
        if decoded is None:
            try:
                decoded = _USER.decode(whole.view(begin, end))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise Rejected(f"{prefix}: {exc}") from exc
        user = col.new_user(prefix)
        batch = col.new_batch()
        if decoded.user_id is not msgspec.UNSET:
            col.set_user_id(user, decoded.user_id, "user_id")
        accounts = decoded.accounts
        if accounts is not msgspec.UNSET and accounts is not None:
            if type(accounts) is not list:
                raise Rejected(f"{prefix}accounts: not a list")
            ck = col.checker("accounts")
            for i, record in enumerate(accounts):
                col.account(ck, user, i, record)
        if decoded.liabilities is not msgspec.UNSET:
            col.liabilities(user, decoded.liabilities, "liabilities")
        list_id = -1
        raw = decoded.transactions
        if raw is not msgspec.UNSET and not (len(raw) == 4 and bytes(raw) == b"null"):
            list_id = col.checker("transactions").list_id
        del decoded, raw
        if col.log:  # the slow path will say what
            raise Rejected(f"{prefix}: problems in accounts or liabilities")
        line = _Line(begin, end, user, list_id, batch * 4 + ADDED)
        if end - begin > CHUNK_BYTES:
            self.flush()
            self._large_user(line)
            return
        if self._has_line_breaks(begin, end):
            line.compact = msgspec.json.format(whole.view(begin, end), indent=-1)
        self.pending.append(line)
        self.pending_bytes += end - begin
        if self.pending_bytes >= CHUNK_BYTES:
            self.flush()

    def _has_line_breaks(self, begin: int, end: int) -> bool:
        if self.contiguous:  # a JSON line has none inside (a trailing CR is harmless)
            return False
        return self.whole.find(b"\n", begin, end) >= 0 or self.whole.find(b"\r", begin, end) >= 0

    # -- chunks of users --------------------------------------------------------------------------------

    def flush(self) -> None:
        lines, self.pending, self.pending_bytes = self.pending, [], 0
        if not lines:
            return
        longest = max(len(x.compact) if x.compact is not None else x.end - x.begin for x in lines)
        if self.contiguous:
            data: Any = self.whole.view(lines[0].begin, lines[-1].end)
        else:
            data = b"\n".join(
                x.compact if x.compact is not None else self.whole.view(x.begin, x.end) for x in lines
            )
        table = _read(data, _USER_LINE, longest)
        if table.num_rows != len(lines):
            raise Rejected("users: not one object a line")
        transactions = table.column("transactions")
        lengths = _lengths(transactions)
        values = transactions.combine_chunks().flatten() if transactions.num_chunks else None
        del table, data
        if values is None or len(values) == 0:
            return
        if values.null_count:
            raise Rejected("transactions: an entry is null")
        per_line = np.array([(x.user, x.list_id, x.seq) for x in lines], dtype=np.int64)
        self._append(values, per_line, lengths)

    def _append(self, values: pa.StructArray, per_line: np.ndarray, lengths: np.ndarray) -> None:
        user = np.repeat(per_line[:, 0], lengths)
        list_id = np.repeat(per_line[:, 1], lengths)
        seq = np.repeat(per_line[:, 2], lengths)
        starts = np.cumsum(lengths) - lengths
        loc = np.arange(len(user), dtype=np.int64) - np.repeat(starts, lengths)
        cols = _columns(values)
        batch = transaction_batch(cols, self.col.ctx, user=user, list_id=list_id, loc=loc, seq=seq)
        self.col.transactions.append_batch(batch)

    def _large_user(self, line: _Line) -> None:
        """A user larger than a chunk: its transactions, ``TRANSACTIONS_PER_CHUNK`` at a time."""
        view = self.whole.view(line.begin, line.end)
        breaks = (
            self.whole.find(b"\n", line.begin, line.end) >= 0
            or self.whole.find(b"\r", line.begin, line.end) >= 0
        )
        keys = _read(view, _USER_KEYS, line.end - line.begin, multiline=breaks)
        if keys.num_rows != 1:
            raise Rejected("a user: not one object")
        del keys
        try:
            raws = _LARGE_USER.decode(view).transactions
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise Rejected(f"transactions: {exc}") from exc
        if raws is msgspec.UNSET or raws is None:
            return
        done = 0
        for first in range(0, len(raws), TRANSACTIONS_PER_CHUNK):
            part = raws[first : first + TRANSACTIONS_PER_CHUNK]
            if any(memoryview(r)[:1] != b"{" for r in part):
                raise Rejected("transactions: an entry is not an object")
            longest = max(len(r) for r in part)
            table = _read(b"\n".join(part), _TX_LINE, longest, multiline=breaks)
            if table.num_rows != len(part):
                raise Rejected("transactions: not one object a line")
            values = pa.StructArray.from_arrays(
                [table.column(i).combine_chunks() for i in range(table.num_columns)], names=table.column_names
            )
            n = len(part)
            batch = transaction_batch(
                _columns(values),
                self.col.ctx,
                user=np.full(n, line.user, dtype=np.int64),
                list_id=np.full(n, line.list_id, dtype=np.int64),
                loc=np.arange(done, done + n, dtype=np.int64),
                seq=np.full(n, line.seq, dtype=np.int64),
            )
            self.col.transactions.append_batch(batch)
            done += n


def _lengths(lists: pa.ChunkedArray) -> np.ndarray:
    """Entries per list (a missing or null list has none)."""
    return np.asarray(pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)


def _read(data: Any, schema: pa.Schema, longest: int, *, multiline: bool = False) -> pa.Table:
    block = max(BLOCK_BYTES, longest + 2)
    if multiline:  # pretty-printed objects cannot be split at line breaks: one block
        block = max(block, len(data) + 2)
    options = pj.ParseOptions(
        explicit_schema=schema, unexpected_field_behavior="ignore", newlines_in_values=multiline
    )
    try:
        return pj.read_json(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=pj.ReadOptions(use_threads=True, block_size=block),
            parse_options=options,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Rejected(f"pyarrow.json: {exc}") from exc


def _columns(values: pa.StructArray) -> TransactionColumns:
    fields = dict(zip([f.name for f in values.type], values.flatten(), strict=True))
    category = fields["personal_finance_category"]
    primary, detailed = category.flatten()
    return TransactionColumns(
        transaction_id=fields["transaction_id"],
        account_id=fields["account_id"],
        date=fields["date"],
        authorized_date=fields["authorized_date"],
        amount=fields["amount"],
        iso_currency_code=fields["iso_currency_code"],
        unofficial_currency_code=fields["unofficial_currency_code"],
        name=fields["name"],
        merchant_name=fields["merchant_name"],
        merchant_entity_id=fields["merchant_entity_id"],
        payment_channel=fields["payment_channel"],
        primary=primary,
        detailed=detailed,
        pending=fields["pending"],
    )
