"""The fast reader of CSV uploads: ``transactions.csv`` through ``pyarrow.csv``, checked per column.

A transactions file (alone, or the member of a zip) is read by ``pyarrow.csv``'s streaming reader, every
column as text (CSV cells are text: the same rules as the slow path then apply, in :mod:`.columns`), in
blocks of ``BLOCK_BYTES``: memory follows the Arrow rows plus a block, as in the slow path. The header is
read as the slow path reads it (same column names, aliases, notes about ignored columns); accounts and
liabilities files, a few rows per user, are read by the slow path's reader into the same collector.

``pyarrow.csv`` is more lenient than Python's ``csv`` in strict mode with malformed quoting (text after a
closing quote, an unterminated quoted field), so a file holding any quote character is also read once by
``csv.reader`` (in C) and rejected if that fails. Anything else that is off raises
:class:`.columns.Rejected`, and the upload is read again by the slow path, which names every problem.
"""

from __future__ import annotations

import csv
import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from .collector import ADDED, Collector
from .columns import Rejected, TransactionColumns, _encoded, transaction_batch
from .csv_reader import (
    MAX_ZIP_UNCOMPRESSED,
    SPECS,
    _columns,
    _members,
    _missing_required,
    _read_member,
    classify,
)
from .detect import BOM, Whole

BLOCK_BYTES = 16 * 1024 * 1024
ROWS_PER_CHECK = 65_536  # rows checked together (per-column work has a fixed cost per call)
_INFLATE_INPUT = 1024 * 1024  # compressed bytes handed to zlib at a time
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip member's local file header (APPNOTE 4.3.7)
HEADER_BYTES = 64 * 1024
_CANONICAL = {
    "transaction_id": "transaction_id",
    "account_id": "account_id",
    "date": "date",
    "authorized_date": "authorized_date",
    "amount": "amount",
    "iso_currency_code": "iso_currency_code",
    "unofficial_currency_code": "unofficial_currency_code",
    "name": "name",
    "merchant_name": "merchant_name",
    "merchant_entity_id": "merchant_entity_id",
    "payment_channel": "payment_channel",
    "primary": "personal_finance_category.primary",
    "detailed": "personal_finance_category.detailed",
    "pending": "pending",
}

Opener = Callable[[], IO[bytes]]
# Columns of few distinct values, read dictionary-encoded: their rules run once per distinct value.
_FEW_VALUES = (
    "user_id",
    "date",
    "authorized_date",
    "iso_currency_code",
    "unofficial_currency_code",
    "payment_channel",
    "personal_finance_category.primary",
    "personal_finance_category.detailed",
    "pending",
)
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def read_csv_fast(whole: Whole, name: str | None, col: Collector) -> None:
    """A lone CSV file: only a transactions file is read here (accounts or liabilities alone are small:
    the slow path reads them)."""
    view = whole.view(whole.start, whole.end)
    quotes = QuoteCheck()
    quotes.feed(whole.data, whole.start, whole.end)
    _transactions(lambda: pa.BufferReader(pa.py_buffer(view)), whole.stream, quotes, name, col, None)


def read_zip_fast(file: IO[bytes], col: Collector) -> None:
    """A zip of accounts.csv / transactions.csv / liabilities.csv, as ``csv_reader.read_zip`` reads it."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Rejected(f"zip: {exc}") from exc
    with archive:
        members = _members(archive, col)
        if not members or sum(info.file_size for info in members.values()) > MAX_ZIP_UNCOMPRESSED:
            raise Rejected("zip: no members, or too large")
        for kind, info in members.items():
            if kind == "transactions":
                inflate = _Inflate(file, info)
                _transactions(
                    lambda: io.BufferedReader(inflate, BLOCK_BYTES),  # noqa: B023 - used at once
                    lambda: archive.open(info),  # noqa: B023
                    inflate.quotes,
                    info.filename,
                    col,
                    kind,
                )
            else:
                _read_member(archive, info, kind, col)
            if col.log:
                raise Rejected(f"{info.filename}: problems")


class _Inflate(io.RawIOBase):
    """A zip member's bytes, inflated in large steps: zlib works without the GIL, so pyarrow's reading
    thread and the main thread do not queue for it as they would behind ``ZipExtFile``'s 4 KB reads.
    Checks the size and CRC the archive declares, as ``zipfile`` does, and the quoting
    (:class:`QuoteCheck`)."""

    def __init__(self, file: IO[bytes], info: zipfile.ZipInfo) -> None:
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Rejected(f"{info.filename}: encrypted, or compressed with another method")
        file.seek(info.header_offset)
        header = file.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise Rejected(f"{info.filename}: bad local header")
        fields = _LOCAL_HEADER.unpack(header)  # the name's and the extra field's lengths come last
        self._file = file
        self._pos = info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11]
        self._left = info.compress_size
        self._size = info.file_size
        self._expected_crc = info.CRC
        self._z = zlib.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
        self._made = 0
        self._crc = 0
        self.quotes = QuoteCheck()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._next(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def _raw(self, n: int) -> bytes:
        self._file.seek(self._pos)
        data = self._file.read(n)
        if not data:
            raise Rejected("zip member: truncated")
        self._pos += len(data)
        self._left -= len(data)
        return data

    def _next(self, want: int) -> bytes:
        z = self._z
        while True:
            if z is None:
                data = self._raw(min(want, self._left)) if self._left else b""
            elif z.unconsumed_tail:
                data = z.decompress(z.unconsumed_tail, want)
            elif self._left:
                data = z.decompress(self._raw(min(_INFLATE_INPUT, self._left)), want)
            elif not z.eof:
                raise Rejected("zip member: truncated deflate stream")
            else:
                data = b""
            more = self._left or (z is not None and z.unconsumed_tail)
            if data or not more:
                return self._count(data)

    def _count(self, data: bytes) -> bytes:
        if not data:
            if self._made != self._size or self._crc != self._expected_crc:
                raise Rejected("zip member: size or CRC differs from the archive's directory")
            return data
        self._made += len(data)
        if self._made > self._size:
            raise Rejected("zip member: larger than the archive's directory says")
        self._crc = zlib.crc32(data, self._crc)
        self.quotes.feed(data)
        return data


def _transactions(
    open_rows: Callable[[], Any],
    open_text: Opener,
    quotes: QuoteCheck,
    name: str | None,
    col: Collector,
    kind: str | None,
) -> None:
    """A transactions file: ``open_rows`` gives its bytes to pyarrow; ``quotes`` sees them too (fed by the
    caller), and ``open_text`` gives them to ``csv.reader`` if that check gave up."""
    stream = open_rows()
    try:
        head = stream.read(HEADER_BYTES)
        head = head.to_pybytes() if isinstance(head, pa.Buffer) else bytes(head)
        names, width, header_end = _header(head)
        if (kind or classify(names)) != "transactions":
            raise Rejected("csv: not a transactions file")
        where = name or "transactions.csv"
        spec = SPECS["transactions"]
        found = _columns(names, spec, where, col)
        if found is None or _missing_required(found, spec) or col.log:
            raise Rejected(f"{where}: header")
        rename = {field: names[i] for field, i in found.items()}
        ck = col.checker(where, csv=True, rename=rename)
        seq = col.new_batch() * 4 + ADDED
        rows = _rows(_Replay(head[header_end:], stream), width, found, col, ck.list_id, seq, where)
    finally:
        stream.close()
    quotes.finish()
    if quotes.gave_up:
        _check_quoting(open_text, rows)


def _rows(
    raw: io.RawIOBase, width: int, found: dict[str, int], col: Collector, list_id: int, seq: int, where: str
) -> int:
    """Stream the rows through pyarrow.csv (every column as text) and the column checks."""
    names = [f"c{i}" for i in range(width)]
    coded = {found[field] for field in _FEW_VALUES if field in found}
    rows = 0
    try:
        reader = pcsv.open_csv(
            io.BufferedReader(raw, BLOCK_BYTES),
            read_options=pcsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES),
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types={c: _DICTIONARY if i in coded else pa.string() for i, c in enumerate(names)},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        pending: list[pa.RecordBatch] = []
        waiting = 0
        for batch in reader:
            pending.append(batch)
            waiting += batch.num_rows
            if waiting >= ROWS_PER_CHECK:
                _append(_one(pending), found, col, list_id, seq, rows)
                rows += waiting
                pending, waiting = [], 0
        if pending:
            _append(_one(pending), found, col, list_id, seq, rows)
            rows += waiting
    except pa.ArrowInvalid as exc:
        if rows == 0 and str(exc).startswith("Empty CSV file"):  # a header and no rows
            return 0
        raise Rejected(f"{where}: pyarrow.csv: {exc}") from exc
    except (pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise Rejected(f"{where}: pyarrow.csv: {exc}") from exc
    return rows


def _one(batches: list[pa.RecordBatch]) -> pa.Table:
    """The batches as one table of single-chunk columns (dictionary columns are unified)."""
    table = pa.Table.from_batches(batches)
    return table if len(batches) == 1 else table.unify_dictionaries().combine_chunks()


def _header(head: bytes) -> tuple[list[str], int, int]:
    """The header's names (stripped, lower case, as the slow path has them), its width, and where the
    rows start. A header with quotes or without a line end is left to the slow path."""
    start = len(BOM) if head.startswith(BOM) else 0
    end = head.find(b"\n", start)
    if end < 0:
        raise Rejected("csv: no header line")
    line = head[start:end]
    if b'"' in line or b"\r" in line[:-1]:
        raise Rejected("csv: quoted header")
    try:
        text = line.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise Rejected("csv: header is not UTF-8") from exc
    header = text.split(",")
    return [column.strip().lower() for column in header], len(header), end + 1


class _Replay(io.RawIOBase):
    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = memoryview(head)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_QUOTE = ord('"')
_FIELD_START = frozenset(b",\r\n")
_FIELD_END = frozenset(b",\r\n")
MAX_QUOTE_RUNS = 500_000


class QuoteCheck:
    """Python's ``csv.reader`` in strict mode, as far as quotes go, over the bytes as they stream by.

    ``pyarrow.csv`` and ``csv.reader`` split well-quoted CSV the same way; they differ where ``csv.reader``
    (the slow path) fails: text after a closing quote (``"ab"c``) and a quoted field still open at the end
    of the file. Only the runs of quote characters matter for that, with the character before and after
    each: a run at the start of a field opens a quoted field (one quote) and escapes pairs; inside a
    quoted field an odd run closes it, and what follows must end the field. A quote inside an unquoted
    field is plain text for both. Past ``MAX_QUOTE_RUNS`` runs (every field quoted) this gives up and
    ``csv.reader`` itself reads the file afterwards."""

    def __init__(self) -> None:
        self.inside = False
        self.before = ord("\n")  # the start of the file is the start of a field
        self.held = b""  # quotes at the end of a chunk: what follows them is not known yet
        self.runs = 0
        self.gave_up = False

    def feed(self, data: Any, begin: int = 0, end: int | None = None) -> None:
        """Check ``data[begin:end]`` (bytes, or a memory map: anything with ``find``), the next bytes."""
        end = len(data) if end is None else end
        if self.gave_up or begin >= end:
            return
        if self.held:
            data, begin, end = self.held + bytes(data[begin:end]), 0, len(self.held) + end - begin
            self.held = b""
        stop = end
        while stop > begin and data[stop - 1] == _QUOTE:
            stop -= 1
        if stop < end:
            self.held = bytes(data[stop:end])
        if stop > begin:
            self._runs(data, begin, stop)
            self.before = data[stop - 1]

    def _runs(self, data: Any, begin: int, end: int) -> None:
        inside = self.inside
        find = data.find
        at = find(b'"', begin, end)
        while at >= 0:
            stop = at + 1
            while stop < end and data[stop] == _QUOTE:
                stop += 1
            run = stop - at
            if not inside:
                before = data[at - 1] if at > begin else self.before
                if before not in _FIELD_START:
                    at = find(b'"', stop, end)
                    continue  # quotes inside an unquoted field: text
                inside, run = True, run - 1  # an opening quote
            if run % 2:  # pairs are quotes inside the field; the odd one closes it
                inside = False
                if stop < end and data[stop] not in _FIELD_END:
                    raise Rejected("csv: text after a closing quote")
            self.runs += 1
            if self.runs > MAX_QUOTE_RUNS:
                self.gave_up = True
                return
            at = find(b'"', stop, end)
        self.inside = inside

    def finish(self) -> None:
        if self.gave_up:
            return
        if self.held:  # quotes at the very end of the file: nothing follows
            held, self.held = self.held, b""
            self._runs(held + b"\n", 0, len(held) + 1)
        if self.inside:
            raise Rejected("csv: a quoted field is still open at the end of the file")


def _check_quoting(open_stream: Opener, rows: int) -> None:
    """Python's csv module in strict mode (the slow path's reader) must accept the file too, with as
    many rows (when :class:`QuoteCheck` gave up)."""
    count = 0
    with open_stream() as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        try:
            for row in csv.reader(text, strict=True):
                if row:
                    count += 1
        except (csv.Error, UnicodeDecodeError) as exc:
            raise Rejected(f"csv: {exc}") from exc
    if count != rows + 1:  # the header, then the rows
        raise Rejected("csv: pyarrow.csv and csv.reader disagree on the rows")


def _append(
    batch: pa.Table, found: dict[str, int], col: Collector, list_id: int, seq: int, before: int
) -> None:
    n = batch.num_rows
    if n == 0:
        return

    def column(field: str) -> pa.Array | None:
        index = found.get(field)
        return None if index is None else batch.column(index).chunk(0)

    encoded = _encoded(batch.column(found["user_id"]).chunk(0))
    ids = []
    for user_id in encoded.dictionary.to_pylist():
        if not user_id.strip():
            raise Rejected("user_id: blank values")
        ids.append(col.csv_user_index(user_id))
    user = np.asarray(ids, dtype=np.int64)[encoded.indices.to_numpy(zero_copy_only=False)]
    cols = TransactionColumns(
        **{key: column(field) for key, field in _CANONICAL.items()},
        text=True,
    )
    out = transaction_batch(
        cols,
        col.ctx,
        user=user,
        list_id=np.full(n, list_id, dtype=np.int64),
        loc=np.arange(before + 2, before + 2 + n, dtype=np.int64),  # the line when no row spans lines
        seq=np.full(n, seq, dtype=np.int64),
    )
    col.transactions.append_batch(out)
