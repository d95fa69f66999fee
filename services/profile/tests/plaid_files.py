"""Builders for Plaid-shaped test uploads, and serializers to every upload format."""

from __future__ import annotations

import copy
import csv
import io
import json
import zipfile
from collections.abc import Iterable
from datetime import date
from typing import Any

import pyarrow as pa

from spendsense_profile.domain.ingest import ParsedUpload, parse_upload

TODAY = date(2025, 11, 1)


def account(account_id: str = "acc_chk", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "account_id": account_id,
        "name": "Everyday Checking",
        "official_name": None,
        "type": "depository",
        "subtype": "checking",
        "holder_category": "individual",
        "balances": {"available": 950.0, "current": 1000.0, "limit": None, "iso_currency_code": "USD"},
        "mask": "0000",
    }
    base.update(fields)
    return base


def card(account_id: str = "acc_card", **fields: Any) -> dict[str, Any]:
    balances = {"available": 700.0, "current": 300.0, "limit": 1000.0, "iso_currency_code": "USD"}
    defaults: dict[str, Any] = {
        "name": "Rewards Card",
        "type": "credit",
        "subtype": "credit card",
        "balances": balances,
    }
    return account(account_id, **{**defaults, **fields})


def tx(transaction_id: str, account_id: str = "acc_chk", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "transaction_id": transaction_id,
        "account_id": account_id,
        "date": "2025-10-01",
        "authorized_date": None,
        "amount": 12.5,
        "iso_currency_code": "USD",
        "name": "STARBUCKS 1234",
        "merchant_name": "Starbucks",
        "merchant_entity_id": None,
        "payment_channel": "in store",
        "personal_finance_category": {"primary": "FOOD_AND_DRINK", "detailed": "FOOD_AND_DRINK_COFFEE"},
        "pending": False,
    }
    base.update(fields)
    return base


def credit(account_id: str = "acc_card", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "account_id": account_id,
        "aprs": [
            {
                "apr_percentage": 24.99,
                "apr_type": "purchase_apr",
                "balance_subject_to_apr": 300.0,
                "interest_charge_amount": 6.25,
            },
            {
                "apr_percentage": 29.99,
                "apr_type": "cash_apr",
                "balance_subject_to_apr": 20.0,
                "interest_charge_amount": 0.5,
            },
        ],
        "is_overdue": False,
        "last_payment_amount": 35.0,
        "last_payment_date": "2025-10-05",
        "last_statement_balance": 300.0,
        "last_statement_issue_date": "2025-09-28",
        "minimum_payment_amount": 35.0,
        "next_payment_due_date": "2025-11-25",
    }
    base.update(fields)
    return base


def user(
    user_id: str | None = "u1",
    *,
    accounts: list[dict[str, Any]] | None = None,
    transactions: list[dict[str, Any]] | None = None,
    credit_cards: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A valid user: a checking account, a card, two transactions and the card's liability by default."""
    out: dict[str, Any] = {} if user_id is None else {"user_id": user_id}
    out["accounts"] = [account(), card()] if accounts is None else accounts
    out["transactions"] = (
        [tx("t1"), tx("t2", "acc_card", amount=-40.0)] if transactions is None else transactions
    )
    out["liabilities"] = {
        "credit": [credit()] if credit_cards is None else credit_cards,
        "mortgage": [],
        "student": [],
    }
    return out


def parse(data: bytes, **options: Any) -> ParsedUpload:
    options.setdefault("today", TODAY)
    return parse_upload(data, **options)


def paths(result: ParsedUpload) -> list[str]:
    return [p.path for p in result.problems]


def messages(result: ParsedUpload) -> list[str]:
    return [str(p) for p in result.problems]


def deep(obj: Any) -> Any:
    return copy.deepcopy(obj)


# -- serializers ----------------------------------------------------------------------------------------------


def to_json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def to_jsonl(users: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(u).encode() + b"\n" for u in users)


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


def cell(value: Any) -> str:
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            out.update({f"{key}.{inner}": v for inner, v in value.items()})
        else:
            out[key] = value
    return out


def _flat_credit(entry: dict[str, Any]) -> dict[str, Any]:
    """What a CSV holds for a card: the purchase APR and the interest over all APRs."""
    out = {k: v for k, v in entry.items() if k != "aprs"}
    aprs = entry.get("aprs") or []
    out["purchase_apr"] = next((a["apr_percentage"] for a in aprs if a["apr_type"] == "purchase_apr"), None)
    charged = [a["interest_charge_amount"] for a in aprs if a.get("interest_charge_amount") is not None]
    total = None
    for amount in charged:
        total = (total or 0.0) + amount
    out["interest_charge_amount"] = total
    return out


def write_csv(columns: list[str], rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def csv_files(users: Iterable[dict[str, Any]]) -> dict[str, str]:
    accounts, transactions, liabilities = [], [], []
    for u in users:
        uid = {"user_id": u["user_id"]}
        accounts += [{**uid, **_flat(a)} for a in u.get("accounts", [])]
        transactions += [{**uid, **_flat(t)} for t in u.get("transactions", [])]
        liabilities += [{**uid, **_flat_credit(c)} for c in (u.get("liabilities") or {}).get("credit", [])]
    return {
        "accounts.csv": write_csv(ACCOUNT_COLUMNS, accounts),
        "transactions.csv": write_csv(TRANSACTION_COLUMNS, transactions),
        "liabilities.csv": write_csv(LIABILITY_COLUMNS, liabilities),
    }


def to_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def sorted_tables(result: ParsedUpload) -> dict[str, pa.Table]:
    """The tables in a canonical row order, to compare uploads of the same data in different formats."""
    keys = {
        "accounts": ["user_id", "account_id"],
        "transactions": ["user_id", "transaction_id"],
        "credit_liabilities": ["user_id", "account_id"],
    }
    return {
        name: table.sort_by([(k, "ascending") for k in keys[name]]).combine_chunks()
        for name, table in result.tables.items()
    }
