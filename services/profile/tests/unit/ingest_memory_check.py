"""Throughput and peak memory of ``parse_upload`` on a large upload (not a test: nothing is asserted).

    .venv/bin/python services/profile/tests/unit/ingest_memory_check.py [transactions] [json|jsonl|zip]

Writes the upload to a temporary directory (streamed, so the generator itself stays small), parses it once
without tracing for throughput, then once under tracemalloc for the Python heap peak. Arrow's buffers are
not seen by tracemalloc, so its memory pool's peak and the process's maximum RSS are reported too.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import random
import resource
import sys
import tempfile
import time
import tracemalloc
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from spendsense_profile.domain.ingest import parse_file

TODAY = date(2026, 1, 1)
CATEGORIES = [
    ("FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE"),
    ("INCOME", "INCOME_SALARY"),
    ("GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES"),
    ("LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"),
]
TX_COLUMNS = [
    "user_id",
    "transaction_id",
    "account_id",
    "date",
    "amount",
    "iso_currency_code",
    "name",
    "merchant_name",
    "payment_channel",
    "category_primary",
    "category_detailed",
    "pending",
]


def _accounts() -> list[dict[str, Any]]:
    balances = {"available": 100.0, "current": 100.0, "limit": None, "iso_currency_code": "USD"}
    return [
        {
            "account_id": f"acc_{i}",
            "name": f"Account {i}",
            "type": "depository",
            "subtype": "checking",
            "balances": balances,
        }
        for i in range(4)
    ]


def _transaction(i: int, rnd: random.Random) -> dict[str, Any]:
    primary, detailed = CATEGORIES[i % 4]
    return {
        "transaction_id": f"tx_{i:09d}",
        "account_id": f"acc_{i % 4}",
        "date": (date(2024, 1, 1) + timedelta(days=i % 600)).isoformat(),
        "authorized_date": None,
        "amount": round(rnd.uniform(-500, 500), 2),
        "iso_currency_code": "USD",
        "name": "STARBUCKS STORE 1234",
        "merchant_name": "Starbucks",
        "merchant_entity_id": None,
        "payment_channel": "in store",
        "personal_finance_category": {"primary": primary, "detailed": detailed},
        "pending": i % 50 == 0,
    }


def write_json(path: Path, n: int) -> None:
    """One user holding all ``n`` transactions: the case that must not be loaded whole."""
    rnd = random.Random(1)
    with path.open("w") as f:
        f.write('{"user_id": "u1", "accounts": ' + json.dumps(_accounts()) + ', "transactions": [')
        for i in range(n):
            f.write(("," if i else "") + json.dumps(_transaction(i, rnd)))
        f.write("]}")


def write_jsonl(path: Path, n: int, per_user: int = 100) -> None:
    rnd = random.Random(1)
    with path.open("w") as f:
        for start in range(0, n, per_user):
            txs = [_transaction(i, rnd) for i in range(start, min(n, start + per_user))]
            f.write(json.dumps({"user_id": f"u{start}", "accounts": _accounts(), "transactions": txs}) + "\n")


def write_zip(path: Path, n: int) -> None:
    rnd = random.Random(1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("accounts.csv", "w") as raw, io.TextIOWrapper(raw, "utf-8", newline="") as text:
            writer = csv.writer(text)
            writer.writerow(
                ["user_id", "account_id", "name", "type", "subtype", "balance_current", "currency"]
            )
            writer.writerows(
                ["u1", a["account_id"], a["name"], "depository", "checking", "100", "USD"]
                for a in _accounts()
            )
        with (
            archive.open("transactions.csv", "w", force_zip64=True) as raw,
            io.TextIOWrapper(raw, "utf-8", newline="") as text,
        ):
            writer = csv.writer(text)
            writer.writerow(TX_COLUMNS)
            for i in range(n):
                t = _transaction(i, rnd)
                pfc = t["personal_finance_category"]
                pending = "true" if t["pending"] else "false"
                head = ["u1", t["transaction_id"], t["account_id"], t["date"], t["amount"], "USD", t["name"]]
                writer.writerow(
                    [
                        *head,
                        t["merchant_name"],
                        t["payment_channel"],
                        pfc["primary"],
                        pfc["detailed"],
                        pending,
                    ]
                )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    fmt = sys.argv[2] if len(sys.argv) > 2 else "json"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload.{fmt}"
        {"json": write_json, "jsonl": write_jsonl, "zip": write_zip}[fmt](path, n)
        gc.collect()
        started = time.perf_counter()
        result = parse_file(path, today=TODAY)
        elapsed = time.perf_counter() - started
        assert result.ok, result.problems[:5]
        pool_peak = pa.default_memory_pool().max_memory()
        del result
        gc.collect()
        tracemalloc.start()
        parse_file(path, today=TODAY)
        heap_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"{fmt}: {n:,} transactions, {path.stat().st_size / 1e6:.0f} MB file")
        print(f"  parse: {elapsed:.1f} s = {n / elapsed:,.0f} transactions/s")
        print(f"  Python heap peak (tracemalloc): {heap_peak / 1e6:.0f} MB")
        print(f"  Arrow memory pool peak: {pool_peak / 1e6:.0f} MB")
        print(f"  process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")


if __name__ == "__main__":
    main()
