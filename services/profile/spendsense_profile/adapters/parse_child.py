"""What runs in the process that parses one upload (started by :mod:`spendsense_profile.adapters.parsing`).

The process limits itself before it reads a byte: ``RLIMIT_CPU`` at the CPU budget past what its
start-up used (the kernel stops it with SIGXCPU, whatever the parser is doing) and no core files. Then
it looks at the file:

* a gzip stream (by its magic bytes, whatever the name or type says) is inflated (ISA-L's inflate) into
  a file beside it, and stopped once it has produced more than the decompressed budget; a zip inside it is
  spooled to a temporary file first (within the same budget) and checked as below;
* a zip archive is checked before anything is inflated: the sizes its directory declares for its
  members must fit the decompressed budget (Python's ``zipfile`` never inflates a member beyond its
  declared size, so a lying directory cannot get past this);
* anything else is the plain upload: over the decompressed budget by its size alone.

A stream holding nothing but blanks is reported as such (:class:`BlankUpload`) without parsing. An upload
parsed whole sends its tables back as Arrow IPC files beside the upload (:class:`TablesOnDisk`), which the
worker maps without a copy, rather than pickled through the pipe (138 MB for 500,000 transactions: a
copy to pickle, two through the pipe and one to unpickle). The
parser is ``spendsense_profile.domain.ingest.parse_upload`` (or a stand-in with its signature, for
tests), called with the plain upload's file (which the fast reader maps: no copy), so problem paths and
line numbers are exactly what the parser reports for the same file uploaded uncompressed.
"""

from __future__ import annotations

import gzip
import io
import math
import resource
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import IO, Any, cast

import pyarrow as pa
from isal import igzip, isal_zlib

from spendsense_profile.domain.ingest import ParsedUpload, Problem, parse_upload
from spendsense_profile.domain.uploads import BlankUpload, BudgetExceeded, ParseOutcome, ParserCrashed
from spendsense_shared.processes import use_system_allocator

GZIP_MAGIC = b"\x1f\x8b"
# what a broken gzip stream raises (ISA-L's inflate errors are not zlib's; its stubs type the class as an
# instance, hence the cast)
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error, cast(type[Exception], isal_zlib.error))
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
GZIP_TYPES = {"application/gzip", "application/x-gzip", "application/x-gunzip", "application/gzip-compressed"}
BLANK = b" \t\r\n\x0b\x0c"
BOM = b"\xef\xbb\xbf"
READ_BYTES = 1024 * 1024
CPU_HARD_MARGIN_S = 5  # after the soft limit's SIGXCPU, SIGKILL this much later (if SIGXCPU were ignored)

Parse = Callable[..., Any]


class DecompressedBudgetExceeded(BaseException):
    """Raised by the meter from inside the parser's reads. A BaseException, so that no ``except
    Exception`` in a reader turns it into one more problem and reads on."""


class Meter(io.RawIOBase):
    """A readable stream that stops (and remembers it stopped) after ``limit`` bytes."""

    def __init__(self, inner: IO[bytes], limit: int):
        self.inner = inner
        self.limit = limit
        self.count = 0
        self.exceeded = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.exceeded:
            raise DecompressedBudgetExceeded
        n: int = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        self.count += n
        if self.count > self.limit:
            self.exceeded = True
            raise DecompressedBudgetExceeded
        return n


def main(
    sender: Any,
    path: str,
    filename: str | None,
    content_type: str | None,
    fx_rates: Mapping[str, float],
    default_user_id: str,
    cpu_seconds: int,
    decompressed_bytes: int,
    parse: Parse | None = None,
) -> None:
    """The process's entry point: parse, send the outcome back, exit."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    use_system_allocator()  # a one-shot process
    usage = resource.getrusage(resource.RUSAGE_SELF)  # the process's start-up is not the upload's to pay
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + CPU_HARD_MARGIN_S))
    options = {"fx_rates": dict(fx_rates), "default_user_id": default_user_id}
    try:
        outcome = parse_path(
            Path(path), filename, content_type, decompressed_bytes, parse or parse_upload, options
        )
    except Exception as exc:  # a bug in the parser: report it rather than die silently
        outcome = ParserCrashed(f"{type(exc).__name__}: {str(exc)[:500]}")
    sender.send(TablesOnDisk.write(outcome, Path(path).parent) if _has_tables(outcome) else outcome)
    sender.close()


@dataclass(frozen=True)
class TablesOnDisk:
    """A parsed upload whose tables wait in Arrow IPC files (``files``: table name → path)."""

    parsed: ParsedUpload  # its tables left out
    files: dict[str, str]

    @classmethod
    def write(cls, parsed: ParsedUpload, directory: Path) -> TablesOnDisk:
        files = {}
        for name, table in parsed.tables.items():
            files[name] = str(directory / f"parsed-{name}.arrow")
            with pa.OSFile(files[name], "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        return cls(replace(parsed, tables={}), files)

    def load(self) -> ParsedUpload:
        """The upload with its tables, mapped from the files (they stay readable once the files are
        removed, until the tables are freed)."""
        tables = {name: pa.ipc.open_file(pa.memory_map(path)).read_all() for name, path in self.files.items()}
        return replace(self.parsed, tables=tables)


def _has_tables(outcome: ParseOutcome) -> bool:
    return isinstance(outcome, ParsedUpload) and bool(outcome.tables)


def parse_path(
    path: Path,
    filename: str | None,
    content_type: str | None,
    limit: int,
    parse: Parse,
    options: dict[str, Any],
) -> ParseOutcome:
    with path.open("rb") as raw:
        head = raw.read(4)
        if head.startswith(ZIP_MAGIC):
            raw.seek(0)
            return _parse_zip(raw, filename, content_type, limit, parse, options)
    if head.startswith(GZIP_MAGIC):
        filename, content_type = _inner_name(filename), _inner_type(content_type)
        inflated = path.with_name(f"{path.name}.inflated")
        return _parse_stream(
            lambda: _gunzip(path, limit),
            lambda stream: _spooled(stream, inflated),
            filename,
            content_type,
            limit,
            parse,
            options,
        )
    return _parse_stream(
        lambda: _plain(path, limit),
        lambda _: _within(path, limit),
        filename,
        content_type,
        limit,
        parse,
        options,
    )


def _plain(path: Path, limit: int) -> tuple[io.BufferedReader, Meter]:
    meter = Meter(path.open("rb"), limit)
    return io.BufferedReader(meter, READ_BYTES), meter


def _gunzip(path: Path, limit: int) -> tuple[io.BufferedReader, Meter]:
    # ISA-L's inflate (``isal.igzip``, the ``gzip`` module's interface): a 15 MB gzip of 230 MB JSON Lines
    # inflates in 0.07 s against 0.21 s with zlib
    meter = Meter(igzip.GzipFile(filename=str(path), mode="rb"), limit)  # type: ignore[arg-type]
    return io.BufferedReader(meter, READ_BYTES), meter


def _within(path: Path, limit: int) -> Path:
    """The plain upload itself, if it fits the decompressed budget."""
    if path.stat().st_size > limit:
        raise DecompressedBudgetExceeded
    return path


def _spooled(stream: IO[bytes], target: Path) -> Path:
    """The stream (metered: it stops at the decompressed budget) written to ``target``."""
    with target.open("wb") as out:
        shutil.copyfileobj(stream, out, READ_BYTES)
    return target


def _parse_stream(
    open_stream: Callable[[], tuple[io.BufferedReader, Meter]],
    as_file: Callable[[io.BufferedReader], Path],
    filename: str | None,
    content_type: str | None,
    limit: int,
    parse: Parse,
    options: dict[str, Any],
) -> ParseOutcome:
    """Look at the stream (a zip inside it, nothing but blanks), then parse its bytes as a file
    (``as_file``: the upload itself, or the stream inflated beside it)."""
    meters: list[Meter] = []
    try:
        stream, meter = open_stream()
        meters.append(meter)
        with stream:
            if stream.peek(4)[:4].startswith(ZIP_MAGIC):  # a zip inside the gzip stream
                with tempfile.TemporaryFile() as spool:
                    shutil.copyfileobj(stream, spool, READ_BYTES)
                    spool.seek(0)
                    return _parse_zip(spool, filename, content_type, limit, parse, options)
            if _blank(stream):
                return BlankUpload()
        stream, meter = open_stream()  # from the first byte again: exact line numbers in problems
        meters.append(meter)
        with stream:
            plain = as_file(stream)
    except DecompressedBudgetExceeded:
        return BudgetExceeded("decompressed_bytes", limit)
    except GZIP_ERRORS as exc:  # raised by the gzip stream, not the parser
        if any(m.exceeded for m in meters):
            return BudgetExceeded("decompressed_bytes", limit)
        return _invalid(f"not a valid gzip stream ({exc})")
    if any(m.exceeded for m in meters):
        return BudgetExceeded("decompressed_bytes", limit)
    return _parse_file(plain, filename, content_type, parse, options)


def _parse_file(
    path: Path, filename: str | None, content_type: str | None, parse: Parse, options: dict[str, Any]
) -> ParseOutcome:
    """The upload's plain bytes, parsed from their file: the parser maps it rather than reading a copy."""
    with path.open("rb") as file:
        outcome: ParseOutcome = parse(file, filename=filename, content_type=content_type, **options)
        return outcome


def _invalid(reason: str) -> ParsedUpload:
    return ParsedUpload(tables={}, user_ids=[], problems=[Problem("$", reason)])


def _parse_zip(
    file: IO[bytes],
    filename: str | None,
    content_type: str | None,
    limit: int,
    parse: Parse,
    options: dict[str, Any],
) -> ParseOutcome:
    try:
        with zipfile.ZipFile(file) as archive:
            declared = sum(info.file_size for info in archive.infolist() if not info.is_dir())
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        declared = 0  # not a readable archive: the parser says what is wrong with it
    if declared > limit:
        return BudgetExceeded("decompressed_bytes", limit)
    file.seek(0)
    outcome: ParseOutcome = parse(file, filename=filename, content_type=content_type, **options)
    return outcome


def _blank(stream: IO[bytes]) -> bool:
    """Whether the stream holds nothing but blanks (and a byte-order mark); reads only up to the first
    byte that is not one."""
    first = True
    while chunk := stream.read(READ_BYTES):
        if first:
            chunk, first = chunk.removeprefix(BOM), False
        if chunk.strip(BLANK):
            return False
    return True


def _inner_name(filename: str | None) -> str | None:
    """``users.jsonl.gz`` → ``users.jsonl``: the name that tells the parser the format inside."""
    if filename and PurePath(filename).suffix.lower() in (".gz", ".gzip"):
        return str(PurePath(filename).with_suffix(""))
    return filename


def _inner_type(content_type: str | None) -> str | None:
    if content_type and content_type.split(";", 1)[0].strip().lower() in GZIP_TYPES:
        return None
    return content_type
