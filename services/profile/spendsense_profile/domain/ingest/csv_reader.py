"""CSV uploads: accounts, transactions and liabilities files with a user_id column, alone or in a zip.

Rows are read one at a time with the csv module and turned into the same Plaid-shaped records the JSON
reader produces (``balances.current`` becomes ``{"balances": {"current": ...}}``), so one set of checks
serves both. Columns may use Plaid's dotted names or common flat spellings (``balance_current``,
``category_primary``, …); problems name the column as it is written in the file.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO, Any, TextIO

from .collector import ADDED, Collector
from .problems import DOCUMENT

KINDS = ("accounts", "transactions", "liabilities")
MAX_ZIP_UNCOMPRESSED = 2 * 1024**3  # refuse archives that would inflate beyond this (zip bombs)


@dataclass(frozen=True)
class CsvSpec:
    columns: dict[str, tuple[str, ...]]  # canonical field -> accepted header spellings (lower case)
    required: tuple[tuple[str, ...], ...]  # each entry: at least one of these fields must have a column
    nested: tuple[str, ...] = ()  # objects the record always has, even with none of their columns


def _same(*names: str) -> dict[str, tuple[str, ...]]:
    return {name: (name,) for name in names}


ACCOUNTS_CSV = CsvSpec(
    columns={
        **_same("user_id", "account_id", "official_name", "holder_category", "mask"),
        "name": ("name", "account_name"),
        "type": ("type", "account_type"),
        "subtype": ("subtype", "account_subtype"),
        "balances.available": ("balances.available", "balance_available", "available_balance"),
        "balances.current": ("balances.current", "balance_current", "current_balance"),
        "balances.limit": ("balances.limit", "balance_limit", "credit_limit"),
        "balances.iso_currency_code": ("balances.iso_currency_code", "iso_currency_code", "currency"),
        "balances.unofficial_currency_code": (
            "balances.unofficial_currency_code",
            "unofficial_currency_code",
        ),
    },
    required=(
        ("user_id",),
        ("account_id",),
        ("name",),
        ("type",),
        ("balances.iso_currency_code", "balances.unofficial_currency_code"),
    ),
    nested=("balances",),
)

TRANSACTIONS_CSV = CsvSpec(
    columns={
        **_same(
            "user_id",
            "transaction_id",
            "account_id",
            "date",
            "authorized_date",
            "amount",
            "unofficial_currency_code",
            "name",
            "merchant_name",
            "merchant_entity_id",
            "payment_channel",
            "pending",
        ),
        "iso_currency_code": ("iso_currency_code", "currency"),
        "personal_finance_category.primary": (
            "personal_finance_category.primary",
            "personal_finance_category_primary",
            "category_primary",
            "pfc_primary",
        ),
        "personal_finance_category.detailed": (
            "personal_finance_category.detailed",
            "personal_finance_category_detailed",
            "category_detailed",
            "pfc_detailed",
        ),
    },
    required=(
        ("user_id",),
        ("transaction_id",),
        ("account_id",),
        ("date",),
        ("amount",),
        ("iso_currency_code", "unofficial_currency_code"),
        ("name",),
        ("payment_channel",),
        ("personal_finance_category.primary",),
        ("pending",),
    ),
    nested=("personal_finance_category",),
)

LIABILITIES_CSV = CsvSpec(
    columns={
        **_same(
            "user_id",
            "account_id",
            "interest_charge_amount",
            "is_overdue",
            "last_payment_amount",
            "last_payment_date",
            "last_statement_balance",
            "last_statement_issue_date",
            "minimum_payment_amount",
            "next_payment_due_date",
        ),
        "liability_type": ("liability_type", "type"),
        "purchase_apr": ("purchase_apr", "apr_percentage"),
    },
    required=(("user_id",), ("account_id",)),
)

SPECS = {"accounts": ACCOUNTS_CSV, "transactions": TRANSACTIONS_CSV, "liabilities": LIABILITIES_CSV}

_LIABILITY_MARKERS = frozenset(
    {"purchase_apr", "apr_percentage", "minimum_payment_amount", "is_overdue", "next_payment_due_date"}
)


_ACCOUNT_MARKERS = frozenset({"type", "account_type", "subtype", "balance_current", "balances.current"})


def classify(header: list[str]) -> str | None:
    """Which file a lone CSV upload is, from its (lower-cased) header."""
    names = set(header)
    if "transaction_id" in names:
        return "transactions"
    if names & _LIABILITY_MARKERS:
        return "liabilities"
    if "account_id" in names and names & _ACCOUNT_MARKERS:
        return "accounts"
    return None


@dataclass(frozen=True)
class _Plan:
    """How to turn a row into a record: top-level fields and nested ones, by column index."""

    top: tuple[tuple[str, int], ...]
    nested: tuple[tuple[str, str, int], ...]
    objects: tuple[str, ...]

    def record(self, row: list[str]) -> dict[str, Any]:
        record: dict[str, Any] = {key: row[i] for key, i in self.top}
        for outer in self.objects:
            record[outer] = {}
        for outer, inner, i in self.nested:
            record[outer][inner] = row[i]
        return record


def read_csv(text: TextIO, name: str | None, col: Collector, kind: str | None = None) -> None:
    """Read one CSV file; ``kind`` is known for zip members (by file name), else read from the header.
    Problems are named after ``name``, or after the kind (``transactions.csv``) when there is no name."""
    reader = csv.reader(text, strict=True)
    where = name or "upload.csv"
    try:
        header = next(reader, None)
        if header is None:
            col.problem(None, where, "the file is empty")
            return
        names = [column.strip().lower() for column in header]
        kind = kind or classify(names)
        if kind is None:
            reason = "unrecognized header (expected accounts, transactions or liabilities columns)"
            col.problem(None, f"{where}:line 1", reason)
            return
        where = name or f"{kind}.csv"
        _read_rows(reader, names, where, kind, col)
    except csv.Error as exc:
        col.problem(None, f"{where}:line {reader.line_num}", f"not valid CSV: {exc}")
    except UnicodeDecodeError:
        col.problem(None, where, "not valid UTF-8 text")


def _read_rows(reader: Any, names: list[str], name: str, kind: str, col: Collector) -> None:
    spec = SPECS[kind]
    found = _columns(names, spec, name, col)
    if found is None:
        return
    missing = _missing_required(found, spec)
    for field in missing:
        col.problem(None, f"{name}:line 1.{field}", "required column is missing")
    plan = _plan(found, spec)
    rename = {field: names[i] for field, i in found.items()}
    ck = col.checker(name, csv=True, rename=rename, suppress=frozenset(missing))
    seq = col.new_batch() * 4 + ADDED
    width = len(names)
    last = reader.line_num
    for row in reader:
        line, last = last + 1, reader.line_num  # a quoted field may span lines: name the first one
        if not row:
            continue
        if len(row) != width:
            col.problem(None, f"{name}:line {line}", f"has {len(row)} fields, the header has {width}")
            continue
        col.csv_record(kind, ck, line, plan.record(row), seq)


def _columns(names: list[str], spec: CsvSpec, name: str, col: Collector) -> dict[str, int] | None:
    """Canonical field -> column index; None when the header is ambiguous."""
    spelling = {alias: field for field, aliases in spec.columns.items() for alias in aliases}
    found: dict[str, int] = {}
    ok = True
    for i, column in enumerate(names):
        field = spelling.get(column)
        if field is None:
            col.note(f"ignored column {column!r} in {name}")
        elif field in found:
            col.problem(None, f"{name}:line 1.{column}", f"a second column for {field}")
            ok = False
        else:
            found[field] = i
    return found if ok else None


def _missing_required(found: dict[str, int], spec: CsvSpec) -> list[str]:
    return [fields[0] for fields in spec.required if not any(f in found for f in fields)]


def _plan(found: dict[str, int], spec: CsvSpec) -> _Plan:
    top: list[tuple[str, int]] = []
    nested: list[tuple[str, str, int]] = []
    for field, i in found.items():
        outer, dot, inner = field.partition(".")
        if dot:
            nested.append((outer, inner, i))
        else:
            top.append((field, i))
    return _Plan(tuple(top), tuple(nested), spec.nested)


def read_zip(file: IO[bytes], col: Collector) -> None:
    """A zip of accounts.csv / transactions.csv / liabilities.csv (any subset; matched by file stem,
    case-insensitively, in any folder)."""
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as exc:
        col.problem(None, DOCUMENT, f"not a valid zip archive: {exc}")
        return
    with archive:
        members = _members(archive, col)
        if not members:
            reason = "the zip archive holds no accounts.csv, transactions.csv or liabilities.csv"
            col.problem(None, DOCUMENT, reason)
            return
        if sum(info.file_size for info in members.values()) > MAX_ZIP_UNCOMPRESSED:
            col.problem(None, DOCUMENT, "the zip archive is too large once uncompressed")
            return
        for kind, info in members.items():
            _read_member(archive, info, kind, col)


def _members(archive: zipfile.ZipFile, col: Collector) -> dict[str, zipfile.ZipInfo]:
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if info.is_dir():
            continue
        path = PurePosixPath(info.filename)
        kind = path.stem.lower()
        if path.suffix.lower() != ".csv" or kind not in KINDS:
            col.note(f"ignored {info.filename!r} in the zip archive")
        elif kind in members:
            reason = f"a second {kind} file in the archive (also {members[kind].filename})"
            col.problem(None, info.filename, reason)
        else:
            members[kind] = info
    # Accounts first, so problems read in a natural order.
    return {kind: members[kind] for kind in KINDS if kind in members}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, kind: str, col: Collector) -> None:
    try:
        with archive.open(info) as raw:
            read_csv(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""), info.filename, col, kind)
    except (zipfile.BadZipFile, zlib.error, RuntimeError, OSError, EOFError) as exc:  # corrupt, encrypted
        col.problem(None, info.filename, f"could not be read from the archive: {exc}")
