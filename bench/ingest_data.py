"""Upload files for bench/ingest.py: synthetic users (``spendsense_cli.synthetic.build_user``) written as a
``{"users": [...]}`` JSON document, as JSON Lines and as a zip of accounts/transactions/liabilities CSV.

Users are built on every core and written once per (transactions, seed) into a cache folder, so a second
run of the benchmark starts at once. Nothing here is timed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spendsense_cli.synthetic import build_user

Json = dict[str, Any]

ACCOUNT_COLUMNS = [
    "user_id",
    "account_id",
    "name",
    "official_name",
    "type",
    "subtype",
    "holder_category",
    "balances.available",
    "balances.current",
    "balances.limit",
    "balances.iso_currency_code",
    "mask",
]
TRANSACTION_COLUMNS = [
    "user_id",
    "transaction_id",
    "account_id",
    "date",
    "authorized_date",
    "amount",
    "iso_currency_code",
    "name",
    "merchant_name",
    "merchant_entity_id",
    "payment_channel",
    "personal_finance_category.primary",
    "personal_finance_category.detailed",
    "pending",
]
LIABILITY_COLUMNS = [
    "user_id",
    "account_id",
    "purchase_apr",
    "interest_charge_amount",
    "is_overdue",
    "last_payment_amount",
    "last_payment_date",
    "last_statement_balance",
    "last_statement_issue_date",
    "minimum_payment_amount",
    "next_payment_due_date",
]
_BATCH = 50  # users per task of the process pool


@dataclass(frozen=True)
class Files:
    users: int
    transactions: int
    json: Path
    jsonl: Path
    csv_zip: Path


def _build(first: int, count: int, seed: int) -> list[bytes]:
    return [
        json.dumps(build_user(i, seed)[0], separators=(",", ":")).encode()
        for i in range(first, first + count)
    ]


def _lines(users: int, seed: int) -> Iterator[bytes]:
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        starts = range(0, users, _BATCH)
        futures = [pool.submit(_build, s, min(_BATCH, users - s), seed) for s in starts]
        for future in futures:
            yield from future.result()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _flat(record: Json) -> Json:
    out: Json = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            out[key] = value
    return out


def _card(entry: Json) -> Json:
    aprs = entry.get("aprs") or []
    out = {k: v for k, v in entry.items() if k != "aprs"}
    out["purchase_apr"] = next((a["apr_percentage"] for a in aprs if a["apr_type"] == "purchase_apr"), None)
    total = None
    for apr in aprs:
        if apr.get("interest_charge_amount") is not None:
            total = (total or 0.0) + apr["interest_charge_amount"]
    out["interest_charge_amount"] = total
    return out


class _CsvMember:
    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer)
        self.writer.writerow(columns)

    def add(self, user_id: str, record: Json) -> None:
        row = {"user_id": user_id, **record}
        self.writer.writerow([_cell(row.get(c)) for c in self.columns])


def transactions_for(target: int) -> int:
    """How many users make about ``target`` transactions (the generator's users hold ~333 each)."""
    return max(1, round(target / 333))


def ensure(users: int, seed: int = 0, folder: Path | None = None) -> Files:
    """The three files for ``users`` synthetic users, written if not cached yet."""
    folder = folder or Path(__file__).parent / "results" / "ingest-data"
    base = folder / f"users-{users}-seed-{seed}"
    files = Files(0, 0, base.with_suffix(".json"), base.with_suffix(".jsonl"), base.with_suffix(".csv.zip"))
    meta = base.with_suffix(".meta.json")
    if meta.exists() and all(p.exists() for p in (files.json, files.jsonl, files.csv_zip)):
        counts = json.loads(meta.read_text())
        return Files(counts["users"], counts["transactions"], files.json, files.jsonl, files.csv_zip)
    folder.mkdir(parents=True, exist_ok=True)
    members = {
        "accounts.csv": _CsvMember(ACCOUNT_COLUMNS),
        "transactions.csv": _CsvMember(TRANSACTION_COLUMNS),
        "liabilities.csv": _CsvMember(LIABILITY_COLUMNS),
    }
    transactions = 0
    with files.json.open("wb") as doc, files.jsonl.open("wb") as lines:
        doc.write(b'{"users":[')
        for i, line in enumerate(_lines(users, seed)):
            doc.write(line if i == 0 else b"," + line)
            lines.write(line + b"\n")
            user = json.loads(line)
            uid = user["user_id"]
            for account in user["accounts"]:
                members["accounts.csv"].add(uid, _flat(account))
            for txn in user["transactions"]:
                members["transactions.csv"].add(uid, _flat(txn))
            for entry in user["liabilities"]["credit"]:
                members["liabilities.csv"].add(uid, _card(entry))
            transactions += len(user["transactions"])
        doc.write(b"]}")
    with zipfile.ZipFile(files.csv_zip, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, member in members.items():
            archive.writestr(name, member.buffer.getvalue())
    meta.write_text(json.dumps({"users": users, "transactions": transactions}))
    return Files(users, transactions, files.json, files.jsonl, files.csv_zip)
