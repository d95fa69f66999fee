"""Every validation rule of SPEC §3, each with the exact path it reports."""

from __future__ import annotations

from typing import Any

import pytest
from plaid_files import (
    account,
    card,
    credit,
    csv_files,
    deep,
    messages,
    parse,
    paths,
    to_json,
    to_jsonl,
    to_zip,
    tx,
    user,
)

from spendsense_shared.dataset import TABLES


def _problems_for(change: Any, **options: Any) -> list[str]:
    upload = user()
    change(upload)
    return messages(parse(to_json(upload), **options))


# -- required fields and types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("name", None, "accounts[0].name: required"),
        (
            "type",
            "other",
            "accounts[0].type: must be one of depository, credit, loan, investment (got 'other')",
        ),
        ("type", None, "accounts[0].type: required"),
        ("subtype", 3, "accounts[0].subtype: not a string"),
        (
            "holder_category",
            "family",
            "accounts[0].holder_category: must be one of individual, business (got 'family')",
        ),
        ("mask", 1234, "accounts[0].mask: not a string"),
        ("official_name", False, "accounts[0].official_name: not a string"),
        ("balances", None, "accounts[0].balances: required"),
        ("balances", [], "accounts[0].balances: not an object"),
    ],
)
def test_account_fields(field: str, value: Any, expected: str) -> None:
    # A rejected account still counts as known: its transactions are not also "unknown account".
    assert _problems_for(lambda u: u["accounts"][0].update({field: value})) == [expected]


@pytest.mark.parametrize(
    ("value", "reason"), [(None, "required"), (7, "not a string"), ("  ", "must not be empty")]
)
def test_account_id(value: Any, reason: str) -> None:
    # Without its id the account cannot be known, so its transaction's reference is unknown too.
    assert _problems_for(lambda u: u["accounts"][0].update(account_id=value)) == [
        f"accounts[0].account_id: {reason}",
        "transactions[0].account_id: unknown account 'acc_chk' (not among the upload's accounts)",
    ]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("current", "100", "accounts[0].balances.current: not a number"),
        ("available", True, "accounts[0].balances.available: not a number"),
        ("limit", {}, "accounts[0].balances.limit: not a number"),
        ("iso_currency_code", None, "accounts[0].balances.iso_currency_code: required"),
        ("iso_currency_code", 840, "accounts[0].balances.iso_currency_code: not a string"),
    ],
)
def test_account_balances(field: str, value: Any, expected: str) -> None:
    assert _problems_for(lambda u: u["accounts"][0]["balances"].update({field: value})) == [expected]


def test_balances_may_be_null_and_holder_category_defaults_to_individual() -> None:
    upload = user()
    upload["accounts"][0]["balances"] = {"available": None, "current": None, "iso_currency_code": "USD"}
    del upload["accounts"][0]["holder_category"]
    upload["accounts"][1]["holder_category"] = "personal"  # Plaid's word for an individual
    result = parse(to_json(upload))
    assert result.ok, messages(result)
    assert result.tables["accounts"].column("holder_category").to_pylist() == ["individual", "individual"]
    assert result.tables["accounts"].column("balance_current").to_pylist()[0] is None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("transaction_id", None, "transactions[1].transaction_id: required"),
        ("transaction_id", 17, "transactions[1].transaction_id: not a string"),
        ("amount", "12.50", "transactions[1].amount: not a number"),
        ("amount", None, "transactions[1].amount: required"),
        ("amount", True, "transactions[1].amount: not a number"),
        ("date", None, "transactions[1].date: required"),
        ("date", 20251001, "transactions[1].date: not a date (expected YYYY-MM-DD)"),
        ("date", "10/01/2025", "transactions[1].date: not a date (expected YYYY-MM-DD)"),
        ("date", "2025-10-01T10:00:00Z", "transactions[1].date: not a date (expected YYYY-MM-DD)"),
        ("authorized_date", "2025-13-01", "transactions[1].authorized_date: not a valid calendar date"),
        ("iso_currency_code", None, "transactions[1].iso_currency_code: required"),
        ("name", "", "transactions[1].name: must not be empty"),
        ("merchant_name", 5, "transactions[1].merchant_name: not a string"),
        ("merchant_entity_id", [], "transactions[1].merchant_entity_id: not a string"),
        (
            "payment_channel",
            "atm",
            "transactions[1].payment_channel: must be one of online, in store, other (got 'atm')",
        ),
        ("personal_finance_category", None, "transactions[1].personal_finance_category: required"),
        ("personal_finance_category", "FOOD", "transactions[1].personal_finance_category: not an object"),
        (
            "personal_finance_category",
            {"detailed": "X"},
            "transactions[1].personal_finance_category.primary: required",
        ),
        (
            "personal_finance_category",
            {"primary": "X", "detailed": 4},
            "transactions[1].personal_finance_category.detailed: not a string",
        ),
        ("pending", None, "transactions[1].pending: required"),
        ("pending", 0, "transactions[1].pending: not a boolean (true or false)"),
        ("pending", "false", "transactions[1].pending: not a boolean (true or false)"),
    ],
)
def test_transaction_fields(field: str, value: Any, expected: str) -> None:
    assert _problems_for(lambda u: u["transactions"][1].update({field: value})) == [expected]


def test_missing_keys_are_required() -> None:
    def drop(u: dict[str, Any]) -> None:
        for key in ("amount", "pending", "payment_channel"):
            del u["transactions"][0][key]

    assert _problems_for(drop) == [
        "transactions[0].amount: required",
        "transactions[0].payment_channel: required",
        "transactions[0].pending: required",
    ]


def test_non_finite_and_huge_numbers() -> None:
    # JSON has no NaN/Infinity, and ijson refuses numbers beyond 64-bit/double range: not JSON at all.
    nan = to_json(user()).replace(b'"amount": 12.5', b'"amount": NaN')
    assert paths(parse(nan)) == ["$"]
    huge = to_json(user()).replace(b'"amount": 12.5', b'"amount": ' + b"9" * 400)
    assert [p.reason.split(":")[0] for p in parse(huge).problems] == ["not valid JSON"]


def test_a_record_that_is_not_an_object() -> None:
    assert _problems_for(lambda u: u["transactions"].append("t3")) == ["transactions[2]: expected an object"]


def test_lists_that_are_not_lists() -> None:
    assert _problems_for(lambda u: u.update(transactions={"t1": tx("t1")})) == ["transactions: not a list"]


def test_user_id_must_be_a_string() -> None:
    assert _problems_for(lambda u: u.update(user_id=42)) == ["user_id: not a non-empty string"]


def test_csv_text_values_numbers_and_booleans() -> None:
    files = csv_files([user()])
    lines = files["transactions.csv"].splitlines()
    lines[1] = lines[1].replace("12.5", " 12.50 ").replace("false", "TRUE")
    files["transactions.csv"] = "\n".join(lines) + "\n"
    result = parse(to_zip(files))
    assert result.ok, messages(result)
    row = result.tables["transactions"].to_pylist()[0]
    assert (row["amount"], row["pending"]) == (12.5, True)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("amount", "12,50", "not a number"),
        ("amount", "nan", "not a number"),
        ("amount", "1e999", "not a finite number"),
        ("amount", "$5", "not a number"),
        ("pending", "yes", "not a boolean (true or false)"),
        ("pending", "1", "not a boolean (true or false)"),
        ("pending", "", "required"),
        ("date", "2025-02-30", "not a valid calendar date"),
        ("account_id", "", "required"),
    ],
)
def test_csv_cell_problems_name_file_line_and_column(column: str, value: str, reason: str) -> None:
    upload = user()
    upload["transactions"][1][column] = value
    files = csv_files([upload])
    assert messages(parse(to_zip(files))) == [f"transactions.csv:line 3.{column}: {reason}"]


def test_csv_problems_use_the_column_name_as_written() -> None:
    data = (
        "user_id,account_id,Account_Name,type,subtype,balance_current,currency\n"
        "u1,acc_chk,,depository,checking,ten,USD\n"
    )
    assert messages(parse(data.encode(), filename="accounts.csv")) == [
        "accounts.csv:line 2.account_name: required",
        "accounts.csv:line 2.balance_current: not a number",
    ]


def test_csv_missing_required_columns_are_reported_once() -> None:
    data = "user_id,transaction_id,account_id,date,iso_currency_code,name,payment_channel\nu1,t1,a,2025-01-01,USD,x,online\n"
    result = parse(data.encode(), filename="transactions.csv")
    assert paths(result) == [
        "transactions.csv:line 1.amount",
        "transactions.csv:line 1.personal_finance_category.primary",
        "transactions.csv:line 1.pending",
        "transactions.csv:line 2.account_id",  # unknown account: still reported for the rejected row
    ]


def test_csv_rows_with_the_wrong_number_of_fields_and_quoted_newlines() -> None:
    files = csv_files([user(transactions=[tx("t1", name="multi\nline"), tx("t2")])])
    files["transactions.csv"] += "u1,t3,acc_chk\n"
    result = parse(to_zip(files))
    # The first record spans lines 2-3, so the short row is on line 5.
    assert messages(result) == ["transactions.csv:line 5: has 3 fields, the header has 14"]


def test_csv_unknown_columns_are_noted_and_a_duplicate_column_is_a_problem() -> None:
    files = csv_files([user()])
    header, *rows = files["accounts.csv"].splitlines()
    files["accounts.csv"] = "\n".join([header + ",color", *[r + ",blue" for r in rows]]) + "\n"
    assert "ignored column 'color' in accounts.csv" in parse(to_zip(files)).notes
    clash = "user_id,account_id,name,type,account_type,iso_currency_code\n"
    assert paths(parse(clash.encode(), filename="accounts.csv")) == ["accounts.csv:line 1.account_type"]


def test_csv_that_is_not_utf8_or_has_an_unknown_header() -> None:
    assert messages(parse(b"user_id,name\nu1,\xff\xfe\n", filename="x.csv"))[0].startswith("x.csv")
    assert paths(parse(b"a,b,c\n1,2,3\n")) == ["upload.csv:line 1"]


# -- dates -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-02-30", "not a valid calendar date"),
        ("1969-12-31", "is before 1970"),
        ("2025-11-03", "is in the future"),
        ("2030-01-01", "is in the future"),
    ],
)
def test_impossible_dates(value: str, reason: str) -> None:
    # Today is 2025-11-01 (plaid_files.TODAY); one day ahead is tolerated (time zones, clock skew).
    assert _problems_for(lambda u: u["transactions"][0].update(date=value)) == [
        f"transactions[0].date: {reason}"
    ]


def test_dates_up_to_a_day_ahead_and_the_injectable_today() -> None:
    assert parse(to_json(user(transactions=[tx("t1", date="2025-11-02")]))).ok
    from datetime import date

    assert not parse(to_json(user(transactions=[tx("t1", date="2025-11-02")])), today=date(2025, 10, 1)).ok


def test_payment_due_dates_may_lie_in_the_future_but_not_statement_dates() -> None:
    problems = _problems_for(
        lambda u: u["liabilities"]["credit"][0].update(
            next_payment_due_date="2026-06-01", last_statement_issue_date="2026-06-01"
        )
    )
    assert problems == ["liabilities.credit[0].last_statement_issue_date: is in the future"]


# -- liabilities --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c.update(is_overdue="no"),
            "liabilities.credit[0].is_overdue: not a boolean (true or false)",
        ),
        (
            lambda c: c.update(minimum_payment_amount="35"),
            "liabilities.credit[0].minimum_payment_amount: not a number",
        ),
        (lambda c: c.update(aprs={}), "liabilities.credit[0].aprs: not a list"),
        (
            lambda c: c["aprs"][1].update(apr_percentage="x"),
            "liabilities.credit[0].aprs[1].apr_percentage: not a number",
        ),
        (lambda c: c["aprs"][0].update(apr_type=None), "liabilities.credit[0].aprs[0].apr_type: required"),
        (lambda c: c.pop("account_id"), "liabilities.credit[0].account_id: required"),
    ],
)
def test_credit_liability_fields(change: Any, expected: str) -> None:
    assert _problems_for(lambda u: change(u["liabilities"]["credit"][0])) == [expected]


def test_liabilities_shape_problems() -> None:
    assert _problems_for(lambda u: u["liabilities"].update(auto=[])) == [
        "liabilities.auto: unknown liability kind (expected credit, mortgage or student)"
    ]
    assert _problems_for(lambda u: u.update(liabilities="none")) == ["liabilities: not an object or a list"]
    assert _problems_for(lambda u: u["liabilities"].update(student={})) == ["liabilities.student: not a list"]


def test_card_without_a_purchase_apr_and_without_interest_data() -> None:
    upload = user(credit_cards=[credit(aprs=[{"apr_percentage": 10.0, "apr_type": "balance_transfer_apr"}])])
    row = parse(to_json(upload)).tables["credit_liabilities"].to_pylist()[0]
    assert (row["purchase_apr"], row["interest_charge_amount"]) == (None, None)


# -- references and duplicates -------------------------------------------------------------------------------


def test_unknown_account_referenced_by_a_transaction_even_before_the_accounts() -> None:
    upload = user(transactions=[tx("t1"), tx("t2", "acc_nope")])
    reordered = {
        "transactions": upload["transactions"],
        **{k: v for k, v in upload.items() if k != "transactions"},
    }
    assert messages(parse(to_json(reordered))) == [
        "transactions[1].account_id: unknown account 'acc_nope' (not among the upload's accounts)"
    ]


def test_unknown_account_referenced_by_liabilities() -> None:
    def change(u: dict[str, Any]) -> None:
        u["liabilities"]["credit"][0]["account_id"] = "acc_x"
        u["liabilities"]["student"] = [{"account_id": "acc_loan", "loan_name": "Stafford"}]

    assert _problems_for(change) == [
        "liabilities.credit[0].account_id: unknown account 'acc_x' (not among the upload's accounts)",
        "liabilities.student[0].account_id: unknown account 'acc_loan' (not among the upload's accounts)",
    ]


def test_accounts_belong_to_their_user() -> None:
    """Another user's account id does not count: references are per user."""
    other = user("u2", accounts=[account("acc_other")], transactions=[tx("x1", "acc_chk")], credit_cards=[])
    assert messages(parse(to_json({"users": [user("u1"), other]}))) == [
        "users[1].transactions[0].account_id: unknown account 'acc_chk' (not among the upload's accounts)"
    ]


def test_duplicate_transaction_ids_within_one_upload() -> None:
    upload = user(transactions=[tx("t1"), tx("t2"), tx("t1"), tx("t1")])
    assert messages(parse(to_json(upload))) == [
        "transactions[2].transaction_id: duplicate transaction 't1' (also at transactions[0])",
        "transactions[3].transaction_id: duplicate transaction 't1' (also at transactions[0])",
    ]


def test_duplicate_transaction_ids_across_users_and_in_csv() -> None:
    second = user("u2", transactions=[tx("t1")])
    assert messages(parse(to_jsonl([user("u1"), second]))) == [
        "users[1].transactions[0].transaction_id: duplicate transaction 't1' (also at users[0].transactions[0])"
    ]
    files = csv_files([user(transactions=[tx("t1"), tx("t1")])])
    assert messages(parse(to_zip(files))) == [
        "transactions.csv:line 3.transaction_id: duplicate transaction 't1' (also at transactions.csv:line 2)"
    ]


def test_duplicate_account_in_one_list_and_duplicate_users() -> None:
    assert _problems_for(lambda u: u["accounts"].append(account())) == [
        "accounts[2].account_id: duplicate account 'acc_chk' (also at accounts[0])"
    ]
    assert messages(parse(to_json({"users": [user("u1"), user("u1", transactions=[])]}))) == [
        "users[1].user_id: duplicate user 'u1' (also at users[0].user_id)"
    ]


# -- currencies -------------------------------------------------------------------------------------------


def test_non_usd_is_converted_with_the_rate_and_keeps_its_code() -> None:
    eur = {"available": 100.0, "current": 200.0, "limit": None, "iso_currency_code": "EUR"}
    upload = user(
        accounts=[account(balances=eur), card(balances={**eur, "limit": 1000.0})],
        transactions=[tx("t1", amount=10.0, iso_currency_code="EUR"), tx("t2", amount=-5.0)],
    )
    result = parse(to_json(upload), fx_rates={"eur": 1.25})
    assert result.ok, messages(result)
    rows = result.tables["transactions"].to_pylist()
    assert [(r["amount"], r["iso_currency_code"]) for r in rows] == [(12.5, "EUR"), (-5.0, "USD")]
    accounts = result.tables["accounts"].to_pylist()
    assert (accounts[0]["balance_current"], accounts[1]["balance_limit"]) == (250.0, 1250.0)
    liability = result.tables["credit_liabilities"].to_pylist()[0]
    assert liability["minimum_payment_amount"] == 43.75  # the card's currency
    assert liability["purchase_apr"] == 24.99  # a percentage, not money
    assert "converted 3 record(s) from EUR to USD at 1.25" in result.notes


def test_non_usd_without_a_rate_names_the_currency() -> None:
    assert _problems_for(lambda u: u["transactions"][0].update(iso_currency_code="GBP")) == [
        "transactions[0].iso_currency_code: no exchange rate from 'GBP' to USD (supply it in fx_rates)"
    ]


def test_unofficial_currency_code_is_used_when_there_is_no_iso_code() -> None:
    change = lambda u: u["transactions"][0].update(iso_currency_code=None, unofficial_currency_code="BTC")  # noqa: E731
    assert _problems_for(change) == [
        "transactions[0].unofficial_currency_code: no exchange rate from 'BTC' to USD (supply it in fx_rates)"
    ]
    assert _problems_for(change, fx_rates={"BTC": 60000.0}) == []


def test_invalid_fx_rates_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="fx_rates"):
        parse(to_json(user()), fx_rates={"EUR": -1.0})


# -- notes ---------------------------------------------------------------------------------------------------


def test_business_accounts_are_kept_and_noted_and_pending_counted() -> None:
    upload = user(transactions=[tx("t1", pending=True), tx("t2", date="2025-09-30")])
    upload["accounts"][1]["holder_category"] = "business"
    result = parse(to_json(upload))
    assert result.ok
    assert result.tables["accounts"].column("holder_category").to_pylist() == ["individual", "business"]
    assert "1 business account(s) kept but excluded from analysis: acc_card" in result.notes
    assert "1 pending transaction(s) kept; pending transactions are ignored for signals" in result.notes
    assert str(result.as_of) == "2025-09-30"  # the latest *posted* date


def test_unknown_fields_are_noted_not_rejected() -> None:
    result = parse(to_json({**user(), "nickname": "x"}))
    assert result.ok
    assert "ignored unknown field 'nickname'" in result.notes


# -- the whole upload ----------------------------------------------------------------------------------------


def test_every_problem_is_collected_and_nothing_partial_is_returned() -> None:
    upload = user()
    upload["accounts"][0]["type"] = "savings"
    upload["transactions"][0]["amount"] = "1"
    upload["transactions"][1]["date"] = "2026-02-30"
    upload["liabilities"]["credit"][0]["is_overdue"] = "false"
    result = parse(to_json(upload))
    assert not result.ok
    assert paths(result) == [
        "accounts[0].type",
        "transactions[0].amount",
        "transactions[1].date",
        "liabilities.credit[0].is_overdue",
    ]
    # The caller must store nothing: a rejected upload has no rows at all, not the valid ones.
    for name, schema in TABLES.items():
        assert result.tables[name].schema.equals(schema)
        assert result.tables[name].num_rows == 0
    assert result.as_of is None


def test_max_errors_keeps_the_first_problems_and_counts_the_rest() -> None:
    upload = user(transactions=[tx(f"t{i}", amount="x") for i in range(30)])
    result = parse(to_json(upload), max_errors=10)
    assert len(result.problems) == 11
    assert paths(result)[:2] == ["transactions[0].amount", "transactions[1].amount"]
    assert str(result.problems[-1]) == "$: …and 20 more"


def test_paths_are_prefixed_only_when_there_are_several_users() -> None:
    bad = user(transactions=[tx("t1", amount="x")])
    assert paths(parse(to_json(bad))) == ["transactions[0].amount"]
    assert paths(parse(to_jsonl([bad]))) == ["transactions[0].amount"]
    assert paths(parse(to_json({"users": [bad]}))) == ["users[0].transactions[0].amount"]  # the JSON path
    assert paths(parse(to_jsonl([user("u0", transactions=[tx("t0")]), bad]))) == [
        "users[1].transactions[0].amount"
    ]


def test_paths_inside_plaid_envelopes() -> None:
    envelope = {
        "user_id": "u1",
        "accounts_get": {"accounts": [account()]},
        "transactions_sync": [{"added": [tx("t1")]}, {"added": [tx("t2", date="2025-02-29")]}],
        "liabilities_get": {"liabilities": {"credit": [credit("acc_chk", is_overdue=1)]}},
    }
    assert messages(parse(to_json(envelope))) == [
        "transactions_sync[1].added[0].date: not a valid calendar date",
        "liabilities_get.liabilities.credit[0].is_overdue: not a boolean (true or false)",
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "$: the upload is empty"),
        (b"   \n", "$: the upload is empty"),
        (b"[1, 2]", "$: expected a JSON object"),
        (
            b"{}",
            "$: holds no user data (expected user_id, accounts, transactions, liabilities, a users list, or Plaid response bodies)",
        ),
        (b'{"users": 3}', "users: not a list"),
        (b'{"users": [1]}', "users[0]: expected an object"),
        (
            b'{"transactions_sync": 5}',
            "transactions_sync: expected a Plaid response body (an object) or a list of them",
        ),
        (b"PK\x03\x04 truncated", "$: not a valid zip archive: File is not a zip file"),
    ],
)
def test_malformed_uploads(data: bytes, expected: str) -> None:
    result = parse(data, default_user_id="u1")
    assert messages(result)[0] == expected


def test_truncated_json_is_reported_not_raised() -> None:
    data = to_json(user())[:-40]
    result = parse(data)
    assert paths(result)[-1] == "$"
    assert result.problems[-1].reason.startswith("not valid JSON")


def test_users_list_mixed_with_top_level_user_data() -> None:
    result = parse(to_json({"user_id": "u1", "users": [user("u2")]}))
    assert "$: mixes a 'users' list with top-level user data" in messages(result)


def test_deeply_nested_json_is_a_problem_not_a_crash() -> None:
    data = b'{"user_id": "u1", "extra": {"transactions": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    result = parse(data.replace(b'"extra": {"transactions": ', b'"liabilities": {"credit": '))
    assert not result.ok


def test_the_same_valid_data_in_csv_and_json_gives_no_problems() -> None:
    upload = deep(user())
    assert parse(to_zip(csv_files([upload]))).ok
    assert parse(to_json(upload)).ok
