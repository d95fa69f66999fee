"""Rows accumulate in bounded chunks and become Arrow record batches, so memory grows with the compact
Arrow data, not with millions of Python objects.

While parsing, each table carries bookkeeping columns the output does not have: ``_user`` (the user's
position; the id may only arrive later in a JSON object), ``_list``/``_loc`` (where the row came from, to
name it in problems found after the whole upload was read) and, for transactions, ``_seq`` (the order in
which Plaid /transactions/sync pages apply).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from spendsense_shared.dataset import ACCOUNTS, CREDIT_LIABILITIES, TRANSACTIONS

CHUNK_ROWS = 16_384

_WHERE = [pa.field("_list", pa.int32()), pa.field("_loc", pa.int64())]


def _internal(schema: pa.Schema, extra: list[pa.Field]) -> pa.Schema:
    data = [f for f in schema if f.name != "user_id"]
    return pa.schema([pa.field("_user", pa.int32()), *data, *_WHERE, *extra])


ACCOUNTS_INTERNAL = _internal(ACCOUNTS, [])
TRANSACTIONS_INTERNAL = _internal(TRANSACTIONS, [pa.field("_seq", pa.int64())])
CREDIT_INTERNAL = _internal(CREDIT_LIABILITIES, [])


class ChunkedTable:
    """Append row tuples (in the internal schema's column order); read the whole as one Arrow table."""

    def __init__(self, schema: pa.Schema, chunk_rows: int = CHUNK_ROWS) -> None:
        self.schema = schema
        self._chunk_rows = chunk_rows
        self._rows: list[tuple[Any, ...]] = []
        self._batches: list[pa.RecordBatch] = []
        self.count = 0

    def append(self, row: tuple[Any, ...]) -> None:
        self._rows.append(row)
        self.count += 1
        if len(self._rows) >= self._chunk_rows:
            self._flush()

    def append_batch(self, batch: pa.RecordBatch) -> None:
        """Rows already in Arrow (the fast readers), after any appended one at a time."""
        self._flush()
        self._batches.append(batch)
        self.count += batch.num_rows

    def _flush(self) -> None:
        if not self._rows:
            return
        columns = zip(*self._rows, strict=True)
        # list(), not the tuple zip() yields: pyarrow converts a tuple of strings ~200 times slower.
        arrays = [pa.array(list(values), type=f.type) for values, f in zip(columns, self.schema, strict=True)]
        self._batches.append(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self._rows = []

    def table(self) -> pa.Table:
        self._flush()
        return pa.Table.from_batches(self._batches, schema=self.schema)
