"""Entry points: detect the format, read the upload with the fast reader (or the streaming one when the fast
reader rejects it, to name every problem), finish the tables."""

from __future__ import annotations

import io
import mmap
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

from spendsense_shared.dataset import TABLES

from .collector import Collector
from .columns import Rejected
from .csv_reader import read_csv, read_zip
from .detect import BOM, Upload, Whole, declared_format, detect_format
from .fast_csv import read_csv_fast, read_zip_fast
from .fast_json import read_json_fast, read_json_lines_fast
from .finalize import finalize
from .json_reader import read_json, read_json_lines
from .model import ParsedUpload, Problem
from .problems import DOCUMENT

Reader = Literal["auto", "fast", "slow"]


def parse_upload(
    source: BinaryIO | bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    fx_rates: Mapping[str, float] | None = None,
    max_errors: int = 1000,
    default_user_id: str | None = None,
    today: date | None = None,
    reader: Reader = "auto",
) -> ParsedUpload:
    """Parse and validate an upload (see the package docstring for formats and rules).

    ``fx_rates`` maps a currency code to its USD value (amount in USD = amount * rate). ``default_user_id``
    names the user of an upload that does not say (bare Plaid bodies); an id in the upload wins. ``today``
    bounds dates ("more than a day in the future"), UTC today by default. Never raises on bad input: every
    problem is in the result, and when ``result.ok`` is false nothing of it may be stored. (A negative or
    non-finite rate in ``fx_rates``, or ``max_errors`` < 1, is a programming error: ValueError.)

    ``reader``: ``"auto"`` reads with the fast reader and, if it rejects the upload, reads it again with
    the streaming reader, which names every problem (the result is the same either way); ``"slow"`` uses
    the streaming reader only; ``"fast"`` the fast reader only, and a rejected upload then has a single
    problem at ``$`` saying what the fast reader did not accept (for tests and benchmarks).
    """
    settings = {
        "fx_rates": fx_rates,
        "today": today or datetime.now(UTC).date(),
        "max_errors": max_errors,
        "default_user_id": default_user_id,
    }
    col = Collector(**settings)  # type: ignore[arg-type]  # a bad fx_rates or max_errors raises here
    upload = Upload(source)
    fmt = detect_format(upload.head, declared_format(filename, content_type))
    if reader == "slow" or not upload.head.removeprefix(BOM).strip():
        return _slow(upload, fmt, filename, col)
    if fmt == "zip":
        file = upload.seekable()
        start = file.tell()
        fast = _fast(lambda c: read_zip_fast(file, c), fmt, settings, reader)
        if fast is not None:
            return fast
        file.seek(start)
        return _slow(Upload(file), fmt, filename, Collector(**settings))  # type: ignore[arg-type]
    whole = upload.whole()
    try:
        if fmt == "csv":
            fast = _fast(lambda c: read_csv_fast(whole, _csv_name(filename), c), fmt, settings, reader)
        elif fmt == "jsonl":
            fast = _fast(lambda c: read_json_lines_fast(whole, c), fmt, settings, reader)
        else:
            fast = _fast(lambda c: read_json_fast(whole, c), fmt, settings, reader)
        if fast is not None:
            return fast
        return _slow(Upload(whole.stream()), fmt, filename, Collector(**settings))  # type: ignore[arg-type]
    finally:
        whole.close()


def parse_span(
    data: bytes | mmap.mmap, start: int, stop: int, fmt: str, *, today: date | None = None
) -> ParsedUpload:
    """The fast reader alone (as ``reader="fast"``) over bytes ``start:stop`` of ``data`` in ``fmt``
    ("json", "jsonl" or "csv"), read in place: a memory-mapped file's part is parsed without a copy.
    For ``spendsense analyze``'s pieces, which fall back to :func:`parse_upload` of the whole file."""
    readers: dict[str, Callable[[Collector], None]] = {
        "json": lambda c: read_json_fast(whole, c),
        "jsonl": lambda c: read_json_lines_fast(whole, c),
        "csv": lambda c: read_csv_fast(whole, None, c),
    }
    if fmt not in readers or not 0 <= start <= stop <= len(data):
        raise ValueError(f"no span {start}:{stop} of {len(data)} bytes in {fmt!r}")
    settings = {"fx_rates": None, "today": today or datetime.now(UTC).date(), "max_errors": 1000}
    whole = Whole(data, start, end=stop)
    parsed = _fast(readers[fmt], fmt, {**settings, "default_user_id": None}, "fast")
    assert parsed is not None  # the fast reader alone always answers
    return parsed


def _fast(
    read: Callable[[Collector], None], fmt: str, settings: dict[str, Any], reader: Reader
) -> ParsedUpload | None:
    """The fast reader's result; None when it rejected the upload (``reader="auto"``: read it again)."""
    col = Collector(**settings)
    try:
        read(col)
        result = finalize(col, fmt)
        if not result.ok:
            raise Rejected(f"{len(result.problems)} problem(s) across the upload")
        return result
    except Rejected as exc:
        reason = str(exc)
    except Exception as exc:  # anything unforeseen: the streaming reader is the reference
        if reader == "fast":
            raise
        reason = f"{type(exc).__name__}: {exc}"
    if reader == "fast":
        empty = {name: schema.empty_table() for name, schema in TABLES.items()}
        return ParsedUpload(
            empty, [], [Problem(DOCUMENT, f"rejected by the fast reader: {reason}")], [], None, fmt
        )
    return None


def _slow(upload: Upload, fmt: str, filename: str | None, col: Collector) -> ParsedUpload:
    """The streaming reader (ijson, csv): record by record, every problem with its path."""
    if not upload.head.removeprefix(BOM).strip():
        col.problem(None, DOCUMENT, "the upload is empty")
    elif fmt == "zip":
        read_zip(upload.seekable(), col)
    elif fmt == "csv":
        read_csv(_text(upload), _csv_name(filename), col)
    elif fmt == "jsonl":
        read_json_lines(upload.stream(skip_bom=True), col)
    else:
        read_json(upload.stream(skip_bom=True), col)
    return finalize(col, fmt)


def parse_file(path: Path, **options: Any) -> ParsedUpload:
    """:func:`parse_upload` for a file on disk (the file name informs format detection)."""
    options.setdefault("filename", path.name)
    with path.open("rb") as file:
        return parse_upload(file, **options)


def _text(upload: Upload) -> io.TextIOWrapper:
    return io.TextIOWrapper(upload.stream(), encoding="utf-8-sig", newline="")


def _csv_name(filename: str | None) -> str | None:
    return Path(filename).name if filename else None
