"""The fast reader of CSV uploads: ``transactions.csv`` through ``pyarrow.csv``, checked per column.

A transactions file (alone, or the member of a zip) is cut into pieces of about ``BLOCK_BYTES`` at line
ends outside quoted fields, and ``pyarrow.csv`` parses ``PARSERS`` pieces at a time in threads (it works
without the GIL), every column as text (CSV cells are text: the same rules as the slow path then apply,
in :mod:`.columns`), while the main thread checks the pieces parsed before. A zip member is inflated by
another thread as the pieces are needed (a stored one is read in place from the archive's memory map).
At most ``AHEAD`` parsed pieces wait for the checks: memory follows the Arrow rows plus a few pieces, as
in the slow path. The header is read as the slow path reads it (same column names, aliases, notes about
ignored columns); accounts and liabilities files, a few rows per user, are read by the slow path's
reader into the same collector (in a zip on disk, while the first pieces of transactions are parsed).

``pyarrow.csv`` is more lenient than Python's ``csv`` in strict mode with malformed quoting (text after a
closing quote, an unterminated quoted field) and with fields longer than ``csv.field_size_limit()``, so
:class:`QuoteCheck` follows the quoting as the bytes go by (it also says where a line end is outside
quotes, i.e. where a piece may end), values are measured, and a file with too many quoted fields for
that check is read once by ``csv.reader`` (in C) and rejected if that fails. Anything else that is off
raises :class:`.columns.Rejected`, and the upload is read again by the slow path, which names every
problem.
"""

from __future__ import annotations

import contextlib
import csv
import io
import mmap
import queue
import struct
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from functools import partial
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

BLOCK_BYTES = 16 * 1024 * 1024  # the size of a piece (a piece is parsed by one thread, in one block)
PARSERS = 2  # pieces parsed at once
AHEAD = 3  # pieces parsed (or being parsed) ahead of the checks
ROWS_PER_CHECK = 65_536  # rows checked together when a file is streamed (see _Tail)
_INFLATE_INPUT = 4 * 1024 * 1024  # compressed bytes read from the archive at a time (one GIL wait each)
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
    with _TransactionsFile(_Mapped(whole.data, whole.start, whole.end), whole.stream, name, None) as rows:
        rows.check(col)


def read_zip_fast(file: IO[bytes], col: Collector) -> None:
    """A zip of accounts.csv / transactions.csv / liabilities.csv, as ``csv_reader.read_zip`` reads it."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Rejected(f"zip: {exc}") from exc
    with archive, _mapped(file) as mapped:
        members = _members(archive, col)
        if not members or sum(info.file_size for info in members.values()) > MAX_ZIP_UNCOMPRESSED:
            raise Rejected("zip: no members, or too large")
        with contextlib.ExitStack() as stack:
            # The transactions are cut and parsed in threads while the accounts are read (from a map
            # of the archive only: the threads must not move the position of the file zipfile reads).
            transactions = None
            if "transactions" in members:
                info = members["transactions"]
                source = _member(file, mapped, info)
                rows = _TransactionsFile(source, partial(archive.open, info), info.filename, "transactions")
                transactions = stack.enter_context(rows.started() if mapped is not None else rows)
            for kind, info in members.items():
                if kind == "transactions" and transactions is not None:
                    transactions.check(col)
                else:
                    _read_member(archive, info, kind, col)
                if col.log:
                    raise Rejected(f"{info.filename}: problems")


@contextlib.contextmanager
def _mapped(file: IO[bytes]) -> Iterator[mmap.mmap | None]:
    """The archive as a read-only memory map when it is a file on disk (a stored member is then read
    without a copy), else None (an upload held in memory is read through ``file``)."""
    try:
        fileno = None if isinstance(file, tempfile.SpooledTemporaryFile) else file.fileno()
    except (OSError, AttributeError, ValueError):
        fileno = None
    if fileno is None:
        yield None
        return
    try:
        mapped = mmap.mmap(fileno, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # an empty or unmappable file
        yield None
        return
    try:
        yield mapped
    finally:
        with contextlib.suppress(BufferError):  # a view still exported (a pending exception): GC closes it
            mapped.close()


def _member(file: IO[bytes], mapped: mmap.mmap | None, info: zipfile.ZipInfo) -> _Mapped | _Inflate:
    """The transactions member's bytes: in place when stored in a mapped archive (its CRC checked
    first), else inflated (or read) as the pieces are cut."""
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Rejected(f"{info.filename}: encrypted, or compressed with another method")
    begin = _data_offset(file, info)
    if mapped is None or info.compress_type != zipfile.ZIP_STORED:
        return _Inflate(mapped if mapped is not None else file, info, begin)
    end = begin + info.compress_size
    if info.compress_size != info.file_size or end > len(mapped):
        raise Rejected("zip member: size differs from the archive's directory")
    if zlib.crc32(memoryview(mapped)[begin:end]) != info.CRC:
        raise Rejected("zip member: CRC differs from the archive's directory")
    return _Mapped(mapped, begin, end)


def _data_offset(file: IO[bytes], info: zipfile.ZipInfo) -> int:
    """Where a member's data starts: after its local header, whose name and extra field lengths may
    differ from the central directory's (APPNOTE 4.3.7)."""
    try:
        file.seek(info.header_offset)
        header = file.read(_LOCAL_HEADER.size)
    except (OSError, ValueError) as exc:
        raise Rejected(f"{info.filename}: {exc}") from exc
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise Rejected(f"{info.filename}: bad local header")
    fields = _LOCAL_HEADER.unpack(header)  # the name's and the extra field's lengths come last
    return int(info.header_offset + _LOCAL_HEADER.size + fields[10] + fields[11])


# -- pieces -------------------------------------------------------------------------------------------------


@dataclass
class _Tail:
    """The rest of a file that could not be cut into pieces (the quote check gave up, or no line end
    outside quotes came for too long): pyarrow.csv's streaming reader reads it, ``csv.reader`` checks it."""

    stream: Any  # anything pyarrow reads from


Piece = memoryview | bytes | _Tail


class _Mapped:
    """A CSV file's bytes in memory (the upload's map, or a stored zip member in the archive's map):
    pieces are views of them, no copy."""

    def __init__(self, data: bytes | mmap.mmap, begin: int, end: int) -> None:
        self._data = data
        self._begin = begin
        self._end = end

    def head(self, size: int) -> bytes:
        return bytes(memoryview(self._data)[self._begin : min(self._end, self._begin + size)])

    def pieces(self, start: int, size: int, quotes: QuoteCheck) -> Iterator[Piece]:
        """The rows after ``start`` (the header's end) in pieces of about ``size`` bytes."""
        data, pos, end = self._data, self._begin + start, self._end
        quotes.feed(data, self._begin, pos)
        while pos < end:
            stop = _row_end(data, pos, end, size, quotes)
            if quotes.gave_up:
                yield _Tail(pa.BufferReader(pa.py_buffer(memoryview(data)[pos:end])))
                return
            yield memoryview(data)[pos:stop]
            pos = stop


def _row_end(data: Any, pos: int, end: int, size: int, quotes: QuoteCheck) -> int:
    """The end of the last row that starts within ``size`` bytes of ``pos`` (a line end outside quoted
    fields), with ``quotes`` fed up to it. Gives up (``quotes.gave_up``) past ``2 * size``."""
    if end - pos <= size:
        quotes.feed(data, pos, end)
        return end
    stop = data.rfind(b"\n", pos, pos + size) + 1 or data.find(b"\n", pos + size, end) + 1 or end
    quotes.feed(data, pos, stop)
    while quotes.inside and stop < end and not quotes.gave_up:  # that line end is inside a quoted field
        if stop - pos > 2 * size:
            quotes.gave_up = True
            break
        following = data.find(b"\n", stop, end) + 1 or end
        quotes.feed(data, stop, following)
        stop = following
    return stop


class _Inflate(io.RawIOBase):
    """A zip member's bytes, inflated in large steps by Arrow's zlib decompressor (without the GIL; about
    a third faster than Python's ``zlib`` here), or read as they are when stored. Checks the size and CRC
    the archive declares, as ``zipfile`` does. Its pieces are cut as the bytes come; a piece is the rows
    of one inflated step, with the partial row before it (copied once)."""

    def __init__(self, file: IO[bytes] | mmap.mmap, info: zipfile.ZipInfo, begin: int) -> None:
        self._file = file  # the archive: a map of it, or the file (then read by one thread at a time)
        self._pos = begin
        self._left = info.compress_size
        self._size = info.file_size
        self._expected_crc = info.CRC
        self._inflated: pa.CompressedInputStream | None = None
        if info.compress_type == zipfile.ZIP_DEFLATED:
            # Buffered: Arrow asks for 64 KB at a time, and each Python read waits for the GIL.
            frame = pa.BufferedInputStream(pa.PythonFile(_GzipFrame(self, info), mode="r"), _INFLATE_INPUT)
            self._inflated = pa.CompressedInputStream(frame, "gzip")
        self._made = 0
        self._crc = 0
        self._head = b""  # bytes to give back before inflating more (see ``read``)

    def readable(self) -> bool:
        return True

    def head(self, size: int) -> bytes:
        """The first ``size`` bytes (fewer if the member is shorter); ``pieces`` continues after them."""
        parts, got = [], 0
        while got < size:
            data = self.read(size - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        self._head = b"".join(parts)
        return self._head

    def pieces(self, start: int, size: int, quotes: QuoteCheck) -> Iterator[Piece]:
        head, self._head = self._head, b""
        quotes.feed(head, 0, start)
        carry, fed = head[start:], 0  # bytes after the last cut; carry[:fed] went through ``quotes``
        while True:
            chunk = self._count(self._next(size))
            if not chunk:
                break
            data = carry + memoryview(chunk)  # the one copy of the inflated bytes
            last = data.rfind(b"\n") + 1
            if last > fed:
                quotes.feed(data, fed, last)
                fed = last
            if last and not quotes.inside and not quotes.gave_up:
                yield memoryview(data)[:last]
                carry, fed = data[last:], 0
                continue
            carry = data
            if quotes.gave_up or len(carry) > 2 * size:
                quotes.gave_up = True
                self._head = carry  # ``read`` gives it back first: the streaming reader reads the rest
                yield _Tail(self)
                return
        if carry:
            quotes.feed(carry, fed, len(carry))
            yield carry

    def read(self, size: int | None = -1) -> bytes:
        want = size if size is not None and size > 0 else BLOCK_BYTES
        if self._head:
            data, self._head = self._head[:want], self._head[want:]
            return data
        return bytes(self._count(self._next(want)))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def raw(self, n: int) -> bytes:
        """The next ``n`` compressed (or stored) bytes at most; b"" at the member's end."""
        n = min(n, self._left)
        if n <= 0:
            return b""
        try:
            if isinstance(self._file, mmap.mmap):
                data = self._file[self._pos : self._pos + n]
            else:
                self._file.seek(self._pos)
                data = self._file.read(n)
        except (OSError, ValueError) as exc:
            raise Rejected(f"zip member: {exc}") from exc
        if not data:
            raise Rejected("zip member: truncated")
        self._pos += len(data)
        self._left -= len(data)
        return data

    def _next(self, want: int) -> bytes | pa.Buffer:
        if self._inflated is None:
            return self.raw(want)
        try:
            return self._inflated.read_buffer(want)
        except (OSError, pa.ArrowException) as exc:  # corrupt, truncated, or not the declared CRC or size
            raise Rejected(f"zip member: {exc}") from exc

    def _count(self, data: bytes | pa.Buffer) -> bytes | pa.Buffer:
        if not len(data):
            if self._made != self._size or (self._inflated is None and self._crc != self._expected_crc):
                raise Rejected("zip member: size or CRC differs from the archive's directory")
            return data
        self._made += len(data)
        if self._made > self._size:  # before inflating the rest: a member larger than declared stops here
            raise Rejected("zip member: larger than the archive's directory says")
        if self._inflated is None:  # (zlib checks an inflated member's CRC and size: see _GzipFrame)
            self._crc = zlib.crc32(data, self._crc)
        return data


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no name, no time, unknown OS


class _GzipFrame(io.RawIOBase):
    """A deflated member's compressed bytes framed as a gzip stream, for Arrow's decompressor: a fixed
    header before them, and after them the CRC and size the archive declares, which zlib checks against
    what it inflated ("incorrect data check"). Bytes after the deflate stream's end (zipfile ignores
    them) make it fail: the slow path reads such a member."""

    def __init__(self, member: _Inflate, info: zipfile.ZipInfo) -> None:
        self._member = member
        self._header = _GZIP_HEADER
        self._trailer = struct.pack("<2L", info.CRC, info.file_size & 0xFFFFFFFF)

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        want = size if size is not None and size > 0 else _INFLATE_INPUT
        if self._header:
            data, self._header = self._header, b""
            return data
        data = self._member.raw(want)
        if not data:
            data, self._trailer = self._trailer, b""
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# -- the transactions file ------------------------------------------------------------------------------


class _TransactionsFile:
    """A transactions file: ``source`` gives its bytes (see ``pieces``), ``open_text`` gives them to
    ``csv.reader`` if the quote check gives up. The header is read at once; the rows are cut and parsed
    from ``started`` (or ``check``) on, and checked into the collector by ``check``."""

    def __init__(self, source: _Mapped | _Inflate, open_text: Opener, name: str | None, kind: str | None):
        names, width, header_end = _header(source.head(HEADER_BYTES))
        if (kind or classify(names)) != "transactions":
            raise Rejected("csv: not a transactions file")
        self._where = name or "transactions.csv"
        # The columns, found without a note yet: ``check`` finds them again, when the slow path would.
        found = _columns(names, SPECS["transactions"], self._where, _scratch())
        if found is None or _missing_required(found, SPECS["transactions"]):
            raise Rejected(f"{self._where}: header")
        self._names = names
        self._open_text = open_text
        self._quotes = QuoteCheck()
        self._options = _Options(width, found, self._where)
        self._parsed = _Parsed(source.pieces(header_end, BLOCK_BYTES, self._quotes), self._options)

    def __enter__(self) -> _TransactionsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._parsed.stop()

    def started(self) -> _TransactionsFile:
        self._parsed.start()
        return self

    def check(self, col: Collector) -> None:
        found = _columns(self._names, SPECS["transactions"], self._where, col)
        if found is None or col.log:
            raise Rejected(f"{self._where}: header")
        rename = {field: self._names[i] for field, i in found.items()}
        ck = col.checker(self._where, csv=True, rename=rename)
        seq = col.new_batch() * 4 + ADDED
        rows = 0
        for table in self._parsed.start():
            self._options.measure(table)
            _append(table, found, col, ck.list_id, seq, rows)
            rows += table.num_rows
        self._quotes.finish()
        if self._quotes.gave_up:
            _check_quoting(self._open_text, rows)


def _scratch() -> Collector:
    """A collector whose notes and problems are dropped."""
    return Collector(fx_rates=None, today=date.min, max_errors=1, default_user_id=None)


class _Options:
    """How pyarrow.csv reads the rows: every column as text (dictionary-encoded where values repeat),
    named by position (the header was read already)."""

    def __init__(self, width: int, found: dict[str, int], where: str) -> None:
        names = [f"c{i}" for i in range(width)]
        coded = {found[field] for field in _FEW_VALUES if field in found}
        self.where = where
        self.parse = pcsv.ParseOptions(newlines_in_values=True)
        self.convert = pcsv.ConvertOptions(
            column_types={c: _DICTIONARY if i in coded else pa.string() for i, c in enumerate(names)},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        self.names = names

    def longest_row(self, at_least: int) -> int:
        """A block size for the streaming reader, whose rows must each fit in a block: room for the
        longest row ``csv.reader`` accepts (every field at its limit, 4 bytes a character)."""
        return max(at_least, len(self.names) * (4 * csv.field_size_limit() + 3))

    def read(self, block: int, *, threads: bool) -> pcsv.ReadOptions:
        return pcsv.ReadOptions(column_names=self.names, block_size=block, use_threads=threads)

    def rejected(self, exc: Exception) -> Rejected:
        return Rejected(f"{self.where}: pyarrow.csv: {exc}")

    def measure(self, table: pa.Table) -> None:
        """``csv.reader`` refuses a field longer than ``csv.field_size_limit()`` characters: so does this
        reader (by bytes, at least as many; the slow path then says which field)."""
        limit = csv.field_size_limit()
        for column in table.columns:
            for chunk in column.chunks:
                values = chunk.dictionary if isinstance(chunk, pa.DictionaryArray) else chunk
                if _longest(values) > limit:
                    raise Rejected(f"{self.where}: a field longer than {limit} bytes")


def _longest(values: pa.Array) -> int:
    """The longest value of a string array, in bytes (from its offsets)."""
    if len(values) == 0:
        return 0
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    return int(np.diff(offsets).max())


def _parse(piece: memoryview | bytes, options: _Options) -> pa.Table:
    """One piece, in one block on this thread (so each column is one chunk)."""
    try:
        return pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(piece)),
            read_options=options.read(len(piece) + 1, threads=False),
            parse_options=options.parse,
            convert_options=options.convert,
        )
    except pa.ArrowInvalid as exc:
        if str(exc).startswith("Empty CSV file"):  # only empty lines (or a header and no rows)
            return pa.table({n: pa.array([], t) for n, t in options.convert.column_types.items()})
        raise options.rejected(exc) from exc
    except (pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise options.rejected(exc) from exc


def _streamed(tail: _Tail, options: _Options) -> Iterator[pa.Table]:
    """A tail through pyarrow.csv's streaming reader, ``ROWS_PER_CHECK`` rows at a time."""
    try:
        reader = pcsv.open_csv(
            tail.stream,
            read_options=options.read(options.longest_row(4 * BLOCK_BYTES), threads=True),
            parse_options=options.parse,
            convert_options=options.convert,
        )
        pending: list[pa.RecordBatch] = []
        waiting = 0
        for batch in reader:
            pending.append(batch)
            waiting += batch.num_rows
            if waiting >= ROWS_PER_CHECK:
                yield _one(pending)
                pending, waiting = [], 0
        if pending:
            yield _one(pending)
    except pa.ArrowInvalid as exc:
        if not str(exc).startswith("Empty CSV file"):
            raise options.rejected(exc) from exc
    except (pa.ArrowNotImplementedError, UnicodeDecodeError) as exc:
        raise options.rejected(exc) from exc


def _one(batches: list[pa.RecordBatch]) -> pa.Table:
    """The batches as one table of single-chunk columns (dictionary columns are unified)."""
    table = pa.Table.from_batches(batches)
    return table if len(batches) == 1 else table.unify_dictionaries().combine_chunks()


class _Parsed:
    """The parsed pieces, in order: a thread cuts the pieces (inflating a zip member) and hands them to
    ``PARSERS`` parsing threads; at most ``AHEAD`` wait for the caller. ``stop`` stops the threads (after
    the piece at hand), also when the caller gave up early."""

    def __init__(self, pieces: Iterator[Piece], options: _Options) -> None:
        self._pieces = pieces
        self._options = options
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=AHEAD)
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=PARSERS, thread_name_prefix="csv-parse")
        self._cutter = threading.Thread(target=self._cut, name="csv-cut", daemon=True)

    def start(self) -> Iterator[pa.Table]:
        """The parsed pieces (the threads start on the first call)."""
        if self._cutter.ident is None:
            self._cutter.start()
        return self._tables()

    def stop(self) -> None:
        if self._cutter.ident is None:
            return
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:  # unblock the cutting thread
                self._queue.get_nowait()
        self._cutter.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _cut(self) -> None:
        try:
            for piece in self._pieces:
                if isinstance(piece, _Tail):
                    self._put(("tail", piece))
                    return
                if not self._put(("piece", self._pool.submit(_parse, piece, self._options))):
                    return
            self._put(("end", None))
        except BaseException as exc:  # handed to the caller, which raises it
            self._put(("error", exc))

    def _tables(self) -> Iterator[pa.Table]:
        while True:
            kind, item = self._queue.get()
            if kind == "piece":
                future: Future[pa.Table] = item
                yield future.result()
            elif kind == "tail":
                yield from _streamed(item, self._options)
                return
            elif kind == "error":
                raise item
            else:
                return


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
