"""Entry points: detect the format, stream the upload through the right reader, finish the tables."""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

from .collector import Collector
from .csv_reader import read_csv, read_zip
from .detect import BOM, Upload, declared_format, detect_format
from .finalize import finalize
from .json_reader import read_json, read_json_lines
from .model import ParsedUpload
from .problems import DOCUMENT


def parse_upload(
    source: BinaryIO | bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    fx_rates: Mapping[str, float] | None = None,
    max_errors: int = 1000,
    default_user_id: str | None = None,
    today: date | None = None,
) -> ParsedUpload:
    """Parse and validate an upload (see the package docstring for formats and rules).

    ``fx_rates`` maps a currency code to its USD value (amount in USD = amount * rate). ``default_user_id``
    names the user of an upload that does not say (bare Plaid bodies); an id in the upload wins. ``today``
    bounds dates ("more than a day in the future"), UTC today by default. Never raises on bad input: every
    problem is in the result, and when ``result.ok`` is false nothing of it may be stored. (A negative or
    non-finite rate in ``fx_rates``, or ``max_errors`` < 1, is a programming error: ValueError.)
    """
    col = Collector(
        fx_rates=fx_rates,
        today=today or datetime.now(UTC).date(),
        max_errors=max_errors,
        default_user_id=default_user_id,
    )
    upload = Upload(source)
    fmt = detect_format(upload.head, declared_format(filename, content_type))
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
