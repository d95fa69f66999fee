"""Every upload format reaches the same normalized tables (SPEC §3)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from plaid_files import (
    TODAY,
    account,
    card,
    credit,
    csv_files,
    deep,
    messages,
    parse,
    paths,
    sorted_tables,
    to_json,
    to_jsonl,
    to_zip,
    tx,
    user,
)

from spendsense_profile.domain.ingest import parse_file
from spendsense_shared.dataset import TABLES


def _transaction_ids(result: Any) -> list[str]:
    return result.tables["transactions"].column("transaction_id").to_pylist()


def test_single_user_json_gives_tables_exactly_in_the_dataset_schema() -> None:
    result = parse(to_json(user()))
    assert result.ok, messages(result)
    assert result.format == "json"
    assert result.user_ids == ["u1"]
    assert set(result.tables) == set(TABLES)
    for name, schema in TABLES.items():
        assert result.tables[name].schema.equals(schema, check_metadata=True), name
    assert result.tables["accounts"].num_rows == 2
    assert _transaction_ids(result) == ["t1", "t2"]
    assert str(result.as_of) == "2025-10-01"


def test_normalized_values_of_a_transaction() -> None:
    result = parse(to_json(user()))
    row = result.tables["transactions"].to_pylist()[0]
    assert row == {
        "user_id": "u1",
        "transaction_id": "t1",
        "account_id": "acc_chk",
        "date": TODAY.replace(month=10, day=1),
        "authorized_date": None,
        "amount": 12.5,
        "iso_currency_code": "USD",
        "name": "STARBUCKS 1234",
        "merchant_name": "Starbucks",
        "merchant_entity_id": None,
        "payment_channel": "in store",
        "category_primary": "FOOD_AND_DRINK",
        "category_detailed": "FOOD_AND_DRINK_COFFEE",
        "category_detailed_raw": "FOOD_AND_DRINK_COFFEE",
        "pending": False,
    }


def test_sign_convention_is_preserved() -> None:
    """Plaid: positive = money out, negative = money in; the parser never flips a sign."""
    upload = user(transactions=[tx("out", amount=42.0), tx("in", amount=-2500.0), tx("zero", amount=0)])
    amounts = dict(
        zip(
            *[
                parse(to_json(upload)).tables["transactions"].column(c).to_pylist()
                for c in ("transaction_id", "amount")
            ],
            strict=True,
        )
    )
    assert amounts == {"out": 42.0, "in": -2500.0, "zero": 0.0}


def test_credit_liability_is_flattened_to_purchase_apr_and_total_interest() -> None:
    row = parse(to_json(user())).tables["credit_liabilities"].to_pylist()[0]
    assert row["account_id"] == "acc_card"
    assert row["purchase_apr"] == 24.99
    assert row["interest_charge_amount"] == pytest.approx(6.75)
    assert row["minimum_payment_amount"] == 35.0
    assert str(row["next_payment_due_date"]) == "2025-11-25"


def test_users_document_and_json_lines_and_csv_zip_agree() -> None:
    users = [user("u1"), _other_user("u2")]
    from_users = parse(to_json({"users": users}))
    from_lines = parse(to_jsonl(users))
    from_csv = parse(to_zip(csv_files(users)))
    assert (from_users.format, from_lines.format, from_csv.format) == ("json", "jsonl", "zip")
    for result in (from_users, from_lines, from_csv):
        assert result.ok, messages(result)
        assert result.user_ids == ["u1", "u2"]
    expected = sorted_tables(from_users)
    for result in (from_lines, from_csv):
        got = sorted_tables(result)
        for name in TABLES:
            assert got[name].equals(expected[name]), name


def _other_user(user_id: str) -> dict[str, Any]:
    return user(
        user_id,
        accounts=[account("acc_b", subtype="savings")],
        transactions=[tx("b1", "acc_b", amount=-100.0), tx("b2", "acc_b", pending=True)],
        credit_cards=[],
    )


def test_json_lines_is_recognized_without_a_file_name_and_with_a_content_type() -> None:
    data = to_jsonl([user("u1"), _other_user("u2")])
    assert parse(data).format == "jsonl"
    assert parse(data, content_type="application/x-ndjson").format == "jsonl"
    assert parse(data, filename="export.jsonl").ok


def test_json_lines_reports_a_bad_line_and_reads_the_others() -> None:
    data = to_jsonl([user("u1")]) + b"{not json\n" + to_jsonl([_other_user("u2")])
    result = parse(data, filename="users.jsonl")
    assert not result.ok
    assert paths(result) == ["line 2"]
    assert result.problems[0].reason.startswith("not valid JSON")


def test_concatenated_json_values_are_users_too() -> None:
    data = json.dumps(user("u1")).encode() + b" " + json.dumps(_other_user("u2")).encode()
    result = parse(data, filename="two.json")
    assert result.ok, messages(result)
    assert result.user_ids == ["u1", "u2"]


@pytest.mark.parametrize("name", ["transactions.csv", None])
def test_a_single_csv_is_identified_by_its_header(name: str | None) -> None:
    files = csv_files([user(transactions=[tx("t1")])])
    result = parse(files["transactions.csv"].encode(), filename=name)
    assert result.format == "csv"
    # Only transactions: their account is unknown, which names the file and line.
    assert messages(result) == [
        "transactions.csv:line 2.account_id: unknown account 'acc_chk' (not among the upload's accounts)"
    ]


def test_single_csv_accounts_and_liabilities_files() -> None:
    files = csv_files([user()])
    accounts = parse(files["accounts.csv"].encode(), content_type="text/csv")
    assert accounts.ok
    assert accounts.tables["accounts"].num_rows == 2
    liabilities = parse(files["liabilities.csv"].encode(), filename="cards.csv")
    assert paths(liabilities) == ["cards.csv:line 2.account_id"]


def test_csv_accepts_common_flat_column_names() -> None:
    data = (
        "user_id,account_id,name,account_type,subtype,balance_current,currency\n"
        "u1,acc_chk,Checking,depository,checking,10.5,USD\n"
    )
    result = parse(data.encode())
    assert result.ok, messages(result)
    assert result.tables["accounts"].column("balance_current").to_pylist() == [10.5]


def test_zip_members_are_matched_by_stem_case_insensitively_and_may_be_a_subset() -> None:
    files = csv_files([user(transactions=[], credit_cards=[])])
    data = to_zip({"export/ACCOUNTS.CSV": files["accounts.csv"], "notes.txt": "hello"})
    result = parse(data, filename="upload.zip")
    assert result.ok, messages(result)
    assert result.tables["accounts"].num_rows == 2
    assert "ignored 'notes.txt' in the zip archive" in result.notes


def test_zip_problems_name_the_member_and_line() -> None:
    files = csv_files([user()])
    files["transactions.csv"] = files["transactions.csv"].replace("12.5", "twelve", 1)
    result = parse(to_zip(files))
    assert messages(result) == ["transactions.csv:line 2.amount: not a number"]


def test_zip_without_known_members_is_rejected() -> None:
    result = parse(to_zip({"other.csv": "a,b\n1,2\n"}))
    assert paths(result) == ["$"]


def test_zip_with_two_transactions_files_is_rejected() -> None:
    files = csv_files([user()])
    data = to_zip({**files, "copy/Transactions.csv": files["transactions.csv"]})
    assert "copy/Transactions.csv" in paths(parse(data))


def test_csv_rows_of_one_user_may_span_files_and_users_are_in_order_of_appearance() -> None:
    result = parse(to_zip(csv_files([_other_user("u2"), user("u1")])))
    assert result.ok, messages(result)
    assert result.user_ids == ["u2", "u1"]


def test_binary_stream_sources_and_parse_file(tmp_path: Path) -> None:
    data = to_zip(csv_files([user()]))

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def readinto(self, buffer: Any) -> int:
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    assert parse(Unseekable()).ok
    assert parse(io.BytesIO(to_json(user()))).ok
    path = tmp_path / "upload.jsonl"
    path.write_bytes(to_jsonl([user()]))
    result = parse_file(path, today=TODAY)
    assert result.ok
    assert result.format == "jsonl"


def test_utf8_byte_order_mark_is_accepted() -> None:
    assert parse(b"\xef\xbb\xbf" + to_json(user())).ok
    assert parse(b"\xef\xbb\xbf" + csv_files([user()])["accounts.csv"].encode()).ok


# -- Plaid API response bodies -------------------------------------------------------------------------------

ITEM = {"item_id": "item-1", "institution_id": "ins_1"}


def accounts_get() -> dict[str, Any]:
    return {"accounts": [account(), card()], "item": ITEM, "request_id": "req-1"}


def transactions_get(transactions: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    total = len(transactions) if total is None else total
    return {
        "accounts": [account(), card()],
        "transactions": transactions,
        "total_transactions": total,
        "item": ITEM,
    }


def liabilities_get() -> dict[str, Any]:
    return {
        "accounts": [account(), card()],
        "liabilities": {"credit": [credit()], "mortgage": None, "student": None},
        "item": ITEM,
        "request_id": "req-3",
    }


def sync_page(
    added: Sequence[Any] = (), modified: Sequence[Any] = (), removed: Sequence[Any] = (), more: bool = False
) -> dict[str, Any]:
    return {
        "added": list(added),
        "modified": list(modified),
        "removed": list(removed),
        "next_cursor": "cursor",
        "has_more": more,
        "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE",
        "accounts": [account(), card()],
        "request_id": "req-2",
    }


def test_bare_accounts_get_body_with_default_user_id() -> None:
    result = parse(to_json(accounts_get()), default_user_id="u7")
    assert result.ok, messages(result)
    assert result.user_ids == ["u7"]
    assert result.tables["accounts"].num_rows == 2


def test_bare_body_without_any_user_id_is_rejected() -> None:
    result = parse(to_json(accounts_get()))
    assert messages(result) == ["user_id: required (or pass default_user_id)"]


def test_an_id_in_the_upload_wins_over_default_user_id() -> None:
    result = parse(to_json({"user_id": "u1", **accounts_get()}), default_user_id="u7")
    assert result.user_ids == ["u1"]


def test_bare_transactions_get_body() -> None:
    result = parse(to_json(transactions_get([tx("t1"), tx("t2")])), default_user_id="u1")
    assert result.ok, messages(result)
    assert _transaction_ids(result) == ["t1", "t2"]


def test_transactions_get_with_missing_pages_is_noted() -> None:
    result = parse(to_json(transactions_get([tx("t1")], total=3)), default_user_id="u1")
    assert result.ok
    assert any("1 of 3 transactions" in note for note in result.notes)


def test_bare_liabilities_get_body() -> None:
    result = parse(to_json(liabilities_get()), default_user_id="u1")
    assert result.ok, messages(result)
    assert result.tables["credit_liabilities"].column("account_id").to_pylist() == ["acc_card"]


def test_bare_sync_body_adds() -> None:
    result = parse(to_json(sync_page(added=[tx("t1"), tx("t2")])), default_user_id="u1")
    assert result.ok, messages(result)
    assert _transaction_ids(result) == ["t1", "t2"]


def test_sync_pages_apply_added_modified_removed_in_order() -> None:
    pages = [
        sync_page(added=[tx("t1", amount=10.0), tx("t2"), tx("t3")], more=True),
        sync_page(
            added=[tx("t4")],
            modified=[tx("t1", amount=11.0, pending=False)],
            removed=[{"transaction_id": "t2"}],
            more=True,
        ),
        sync_page(
            modified=[tx("t1", amount=12.0)], removed=[{"transaction_id": "t3", "account_id": "acc_chk"}]
        ),
    ]
    envelope = {"user_id": "u1", "accounts_get": accounts_get(), "transactions_sync": pages}
    result = parse(to_json(envelope))
    assert result.ok, messages(result)
    rows = {r["transaction_id"]: r["amount"] for r in result.tables["transactions"].to_pylist()}
    assert rows == {"t1": 12.0, "t4": 12.5}
    assert result.removed_transaction_ids == [("u1", "t2"), ("u1", "t3")]


def test_sync_modified_is_an_update_not_a_duplicate_even_within_one_page() -> None:
    page = sync_page(added=[tx("t1", amount=1.0)], modified=[tx("t1", amount=2.0)])
    result = parse(to_json({"user_id": "u1", "transactions_sync": page, "accounts_get": accounts_get()}))
    assert result.ok, messages(result)
    assert result.tables["transactions"].column("amount").to_pylist() == [2.0]


def test_sync_applies_removed_after_added_within_a_page_whatever_the_key_order() -> None:
    page = {"removed": [{"transaction_id": "t1"}], "added": [tx("t1"), tx("t2")], "modified": []}
    result = parse(to_json({"user_id": "u1", "accounts": [account()], "transactions_sync": [page]}))
    assert result.ok, messages(result)
    assert _transaction_ids(result) == ["t2"]


def test_sync_removal_in_an_earlier_page_does_not_delete_a_later_add() -> None:
    pages = [sync_page(removed=[{"transaction_id": "t1"}]), sync_page(added=[tx("t1")])]
    result = parse(to_json({"user_id": "u1", "transactions_sync": pages, "accounts": [account(), card()]}))
    assert _transaction_ids(result) == ["t1"]
    assert result.removed_transaction_ids == []


def test_sync_notes_unknown_removals_modified_without_add_and_has_more() -> None:
    pages = [sync_page(modified=[tx("t9")], removed=[{"transaction_id": "gone"}], more=True)]
    result = parse(to_json({"user_id": "u1", "transactions_sync": pages, "accounts": [account()]}))
    assert result.ok, messages(result)
    assert _transaction_ids(result) == ["t9"]
    notes = " | ".join(result.notes)
    assert "1 removed transaction id(s) were not in the upload" in notes
    assert "1 modified transaction(s) were not added earlier" in notes
    assert "has_more=true" in notes
    # A removal of a transaction from an earlier upload: the caller deletes it from what it stored.
    assert result.removed_transaction_ids == [("u1", "gone")]


def test_all_plaid_bodies_together_in_the_envelope() -> None:
    envelope = {
        "user_id": "u1",
        "accounts_get": accounts_get(),
        "transactions_get": [transactions_get([tx("g1")], total=2), transactions_get([tx("g2")], total=2)],
        "transactions_sync": [sync_page(added=[tx("s1")]), sync_page(removed=["s1"], added=[tx("s2")])],
        "liabilities_get": liabilities_get(),
    }
    result = parse(to_json(envelope))
    assert result.ok, messages(result)
    assert result.tables["accounts"].num_rows == 2  # every body repeats the accounts: one account each
    assert sorted(_transaction_ids(result)) == ["g1", "g2", "s2"]
    assert result.tables["credit_liabilities"].num_rows == 1
    assert not any("of 2 transactions" in n for n in result.notes)


def test_envelopes_as_users_of_a_users_document_and_as_json_lines() -> None:
    envelope = {
        "user_id": "u1",
        "accounts_get": accounts_get(),
        "transactions_sync": sync_page(added=[tx("t1")]),
    }
    other = {
        "user_id": "u2",
        "accounts_get": {"accounts": [account("acc_x")]},
        "transactions_get": transactions_get([]),
    }
    for data in (to_json({"users": [envelope, other]}), to_jsonl([envelope, other])):
        result = parse(data)
        assert result.ok, messages(result)
        assert result.user_ids == ["u1", "u2"]
        assert result.tables["accounts"].num_rows == 5  # u2's transactions_get body repeats two accounts


def test_plain_fields_and_plaid_bodies_mix_in_one_user() -> None:
    upload: dict[str, Any] = {
        "user_id": "u1",
        "accounts": [account()],
        "transactions_sync": sync_page(added=[tx("t1")]),
    }
    upload["transactions_sync"]["accounts"] = []
    result = parse(to_json(upload))
    assert result.ok, messages(result)


def test_liabilities_as_a_flat_list_keyed_by_account_id() -> None:
    upload = user(credit_cards=[])
    mortgage = {
        "account_id": "acc_home",
        "interest_rate": {"percentage": 6.1, "type": "fixed"},
        "loan_term": "30 year",
    }
    upload["accounts"].append(account("acc_home", type="loan", subtype="mortgage"))
    upload["liabilities"] = [
        credit(),
        mortgage,
        {"account_id": "acc_card", "type": "credit", "purchase_apr": 20.0},
    ]
    result = parse(to_json(upload))
    assert messages(result) == [
        "liabilities[2].account_id: duplicate credit liability for account 'acc_card' (also at liabilities[0])"
    ]
    upload["liabilities"] = [credit(), mortgage]
    result = parse(to_json(upload))
    assert result.ok, messages(result)
    assert result.tables["credit_liabilities"].num_rows == 1
    assert "1 mortgage liability entry checked but not stored" in result.notes


def test_duplicate_account_across_plaid_bodies_keeps_the_last_copy() -> None:
    later = deep(accounts_get())
    later["accounts"][0]["balances"]["current"] = 5.0
    result = parse(to_json({"user_id": "u1", "accounts_get": [accounts_get(), later]}))
    assert result.ok
    balances = dict(
        zip(
            *[result.tables["accounts"].column(c).to_pylist() for c in ("account_id", "balance_current")],
            strict=True,
        )
    )
    assert balances["acc_chk"] == 5.0


@pytest.mark.parametrize(
    ("filename", "content_type", "start", "expected"),
    [
        ("a.json", None, b"{", "json"),
        (None, "application/json; charset=utf-8", b"{", "json"),
        ("a.ndjson", None, b"{", "jsonl"),
        ("a.csv", None, b"user_id", "csv"),
        (None, None, b"user_id", "csv"),
        (None, None, b"[", "json"),
        ("a.json", None, b"PK\x03\x04", "zip"),
    ],
)
def test_format_detection(
    filename: str | None, content_type: str | None, start: bytes, expected: str
) -> None:
    assert parse(start + b"\n", filename=filename, content_type=content_type).format == expected
