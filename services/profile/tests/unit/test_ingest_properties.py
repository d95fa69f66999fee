"""Property tests: (a) valid users round-trip through every format to the same tables; (b) corrupting any
single field of a valid upload yields a problem that names that field, and never an exception."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plaid_files import (
    TODAY,
    csv_files,
    deep,
    messages,
    parse,
    sorted_tables,
    to_json,
    to_jsonl,
    to_zip,
    tx,
    user,
)

from spendsense_shared.dataset import TABLES

FX = {"EUR": 1.1, "JPY": 0.0067}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=10)
_chars = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from([",", '"', "\n", "\r", " "])
texts = st.text(alphabet=_chars, min_size=1, max_size=16).filter(lambda s: s.strip())
single_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=16
).filter(lambda s: s.strip())
# Money has cents: a subnormal float (5e-324) times an FX rate underflows to 0.0, which no bank sends.
amounts = st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False).map(
    lambda x: round(x, 2)
) | st.integers(-(10**6), 10**6)
maybe_amount = st.none() | amounts
days = st.dates(date(1970, 1, 1), TODAY).map(date.isoformat)
CATEGORIES = [
    ("INCOME", "INCOME_WAGES"),
    ("INCOME", "INCOME_SALARY"),
    ("INCOME", "INCOME_GIG_ECONOMY"),
    ("LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"),
    ("LOAN_DISBURSEMENTS", "LOAN_DISBURSEMENTS_STUDENT"),
    ("TRANSFER_OUT", "TRANSFER_OUT_SAVINGS"),
    ("BANK_FEES", "BANK_FEES_OVERDRAFT_FEES"),
    ("FOOD_AND_DRINK", None),
]
categories = st.sampled_from(CATEGORIES) | st.tuples(ids.map(str.upper), st.none() | ids.map(str.upper))


@st.composite
def accounts(draw: st.DrawFn, text: st.SearchStrategy[str]) -> list[dict[str, Any]]:
    out = []
    for account_id in draw(st.lists(ids, min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(["depository", "credit", "loan", "investment"]))
        out.append(
            {
                "account_id": account_id,
                "name": draw(text),
                "official_name": draw(st.none() | text),
                "type": kind,
                "subtype": draw(st.none() | st.sampled_from(["checking", "savings", "credit card", "hsa"])),
                "holder_category": draw(st.sampled_from([None, "individual", "business", "personal"])),
                "balances": {
                    "available": draw(maybe_amount),
                    "current": draw(maybe_amount),
                    "limit": draw(maybe_amount),
                    "iso_currency_code": draw(st.sampled_from(["USD", "USD", "EUR"])),
                },
                "mask": draw(st.none() | st.text("0123456789", min_size=4, max_size=4)),
            }
        )
    return out


@st.composite
def transaction(
    draw: st.DrawFn, transaction_id: str, account_ids: list[str], text: st.SearchStrategy[str]
) -> dict[str, Any]:
    primary, detailed = draw(categories)
    return {
        "transaction_id": transaction_id,
        "account_id": draw(st.sampled_from(account_ids)),
        "date": draw(days),
        "authorized_date": draw(st.none() | days),
        "amount": draw(amounts),
        "iso_currency_code": draw(st.sampled_from(["USD", "USD", "EUR", "JPY"])),
        "name": draw(text),
        "merchant_name": draw(st.none() | text),
        "merchant_entity_id": draw(st.none() | ids),
        "payment_channel": draw(st.sampled_from(["online", "in store", "other"])),
        "personal_finance_category": {"primary": primary, "detailed": detailed},
        "pending": draw(st.booleans()),
    }


@st.composite
def card_liability(draw: st.DrawFn, account_id: str) -> dict[str, Any]:
    aprs = [
        {
            "apr_percentage": draw(st.floats(0, 99, allow_nan=False)),
            "apr_type": draw(st.sampled_from(["purchase_apr", "cash_apr", "balance_transfer_apr"])),
            "balance_subject_to_apr": draw(maybe_amount),
            "interest_charge_amount": draw(maybe_amount),
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    return {
        "account_id": account_id,
        "aprs": aprs,
        "is_overdue": draw(st.none() | st.booleans()),
        "last_payment_amount": draw(maybe_amount),
        "last_payment_date": draw(st.none() | days),
        "last_statement_balance": draw(maybe_amount),
        "last_statement_issue_date": draw(st.none() | days),
        "minimum_payment_amount": draw(maybe_amount),
        "next_payment_due_date": draw(
            st.none() | st.dates(date(2000, 1, 1), date(2030, 1, 1)).map(date.isoformat)
        ),
    }


@st.composite
def users(draw: st.DrawFn, text: st.SearchStrategy[str] = texts, max_users: int = 3) -> list[dict[str, Any]]:
    out = []
    for u, user_id in enumerate(draw(st.lists(ids, min_size=1, max_size=max_users, unique=True))):
        accs = draw(accounts(text))
        account_ids = [a["account_id"] for a in accs]
        tx_ids = draw(st.lists(ids, max_size=6, unique=True))
        txs = [draw(transaction(f"u{u}-{t}", account_ids, text)) for t in tx_ids]
        cards = [
            draw(card_liability(a["account_id"]))
            for a in accs
            if a["type"] == "credit" and draw(st.booleans())
        ]
        out.append(
            {"user_id": user_id, "accounts": accs, "transactions": txs, "liabilities": {"credit": cards}}
        )
    return out


# -- (a) round trip ------------------------------------------------------------------------------------------


@SETTINGS
@given(users())
def test_valid_users_round_trip_through_json_jsonl_and_csv(generated: list[dict[str, Any]]) -> None:
    results = {
        "json": parse(to_json({"users": generated}), fx_rates=FX),
        "jsonl": parse(to_jsonl(generated), fx_rates=FX),
        "csv": parse(to_zip(csv_files(generated)), fx_rates=FX),
    }
    if len(generated) == 1:
        results["json-single"] = parse(to_json(generated[0]), fx_rates=FX)
    for fmt, result in results.items():
        assert result.ok, (fmt, messages(result))
        assert result.user_ids == [u["user_id"] for u in generated], fmt
    expected = sorted_tables(results["json"])
    for fmt, result in results.items():
        got = sorted_tables(result)
        for name in TABLES:
            assert got[name].equals(expected[name]), (fmt, name)
    _check_against_input(generated, results["json"])


def _check_against_input(generated: list[dict[str, Any]], result: Any) -> None:
    """The tables hold what was uploaded: same ids, signs kept, amounts in USD."""
    rows = {r["transaction_id"]: r for r in result.tables["transactions"].to_pylist()}
    uploaded = [t for u in generated for t in u["transactions"]]
    assert set(rows) == {t["transaction_id"] for t in uploaded}
    for t in uploaded:
        row = rows[t["transaction_id"]]
        rate = 1.0 if t["iso_currency_code"] == "USD" else FX[t["iso_currency_code"]]
        assert row["amount"] == t["amount"] * rate
        assert (row["amount"] > 0) == (t["amount"] > 0)  # Plaid's sign convention is preserved
        assert row["iso_currency_code"] == t["iso_currency_code"]
        assert row["category_detailed_raw"] == t["personal_finance_category"]["detailed"]
    assert result.tables["accounts"].num_rows == sum(len(u["accounts"]) for u in generated)


# -- (b) corrupting one field ----------------------------------------------------------------------------------

_REQUIRED_STRING: list[Any] = [None, 5, "", "  ", [], {"a": 1}]
_OPTIONAL_STRING = [5, True, ["x"], {"a": 1}]
_OPTIONAL_NUMBER = ["1.5", False, [1], {"a": 1}]
_NUMBER = [*_OPTIONAL_NUMBER, None]
_OPTIONAL_DATE = ["2025-02-30", "1969-12-31", "2099-01-01", "01/02/2025", 20250101]
_DUE_DATE = ["2025-02-30", "1969-12-31", "tomorrow", 3]
_OPTIONAL_BOOL = ["false", 1, 0]
_ACCOUNT_REF = ["no-such-account", None, 5]
_CURRENCY = [None, "XYZ", 5]
_OBJECT = [None, "x", [1]]

ACCOUNT_FIELDS: dict[tuple[str, ...], list[Any]] = {
    ("account_id",): _REQUIRED_STRING,
    ("name",): _REQUIRED_STRING,
    ("official_name",): _OPTIONAL_STRING,
    ("type",): ["savings", 3, None],
    ("subtype",): _OPTIONAL_STRING,
    ("holder_category",): ["family", 3],
    ("mask",): _OPTIONAL_STRING,
    ("balances",): _OBJECT,
    ("balances", "available"): _OPTIONAL_NUMBER,
    ("balances", "current"): _OPTIONAL_NUMBER,
    ("balances", "limit"): _OPTIONAL_NUMBER,
    ("balances", "iso_currency_code"): _CURRENCY,
}
TRANSACTION_FIELDS: dict[tuple[str, ...], list[Any]] = {
    ("transaction_id",): _REQUIRED_STRING,
    ("account_id",): _ACCOUNT_REF,
    ("date",): [*_OPTIONAL_DATE, None],
    ("authorized_date",): _OPTIONAL_DATE,
    ("amount",): _NUMBER,
    ("iso_currency_code",): _CURRENCY,
    ("name",): _REQUIRED_STRING,
    ("merchant_name",): _OPTIONAL_STRING,
    ("merchant_entity_id",): _OPTIONAL_STRING,
    ("payment_channel",): ["atm", 1, None],
    ("personal_finance_category",): _OBJECT,
    ("personal_finance_category", "primary"): _REQUIRED_STRING,
    ("personal_finance_category", "detailed"): _OPTIONAL_STRING,
    ("pending",): [*_OPTIONAL_BOOL, None],
}
CREDIT_FIELDS: dict[tuple[str, ...], list[Any]] = {
    ("account_id",): _ACCOUNT_REF,
    ("aprs",): ["x", {"a": 1}, 5],
    ("is_overdue",): _OPTIONAL_BOOL,
    ("last_payment_amount",): _OPTIONAL_NUMBER,
    ("last_payment_date",): _OPTIONAL_DATE,
    ("last_statement_balance",): _OPTIONAL_NUMBER,
    ("last_statement_issue_date",): _OPTIONAL_DATE,
    ("minimum_payment_amount",): _OPTIONAL_NUMBER,
    ("next_payment_due_date",): _DUE_DATE,
}
APR_FIELDS: dict[tuple[str, ...], list[Any]] = {
    ("apr_percentage",): _NUMBER,
    ("apr_type",): _REQUIRED_STRING,
    ("balance_subject_to_apr",): _OPTIONAL_NUMBER,
    ("interest_charge_amount",): _OPTIONAL_NUMBER,
}


def _locations(u: dict[str, Any]) -> list[tuple[tuple[Any, ...], list[Any]]]:
    """Every corruptible field of a user, as (path of keys and indexes, bad values for it)."""
    out: list[tuple[tuple[Any, ...], list[Any]]] = [(("user_id",), [5, "", None])]
    for i, _ in enumerate(u["accounts"]):
        out += [(("accounts", i, *f), bad) for f, bad in ACCOUNT_FIELDS.items()]
    for i, _ in enumerate(u["transactions"]):
        out += [(("transactions", i, *f), bad) for f, bad in TRANSACTION_FIELDS.items()]
    for i, card in enumerate(u["liabilities"]["credit"]):
        out += [(("liabilities", "credit", i, *f), bad) for f, bad in CREDIT_FIELDS.items()]
        for j, _ in enumerate(card["aprs"]):
            out += [(("liabilities", "credit", i, "aprs", j, *f), bad) for f, bad in APR_FIELDS.items()]
    return out


def _json_path(location: tuple[Any, ...]) -> str:
    path = ""
    for step in location:
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else step)
    return path


def _set(obj: Any, location: tuple[Any, ...], value: Any) -> None:
    for step in location[:-1]:
        obj = obj[step]
    obj[location[-1]] = value


@SETTINGS
@given(users(max_users=1), st.data())
def test_corrupting_any_field_names_it(generated: list[dict[str, Any]], data: st.DataObject) -> None:
    upload = deep(generated[0])
    location, bad_values = data.draw(st.sampled_from(_locations(upload)), label="field")
    bad = data.draw(st.sampled_from(bad_values), label="value")
    _set(upload, location, bad)
    result = parse(to_json(upload), fx_rates=FX)
    expected = _json_path(location)
    assert not result.ok
    assert expected in [p.path for p in result.problems], (expected, messages(result))


def test_corrupting_a_duplicate_transaction_id_names_the_later_one() -> None:
    result = parse(to_json(user(transactions=[tx("a"), tx("b"), tx("a")])))
    assert [p.path for p in result.problems] == ["transactions[2].transaction_id"]


# CSV: every cell is text, so corruptions are text too.
CSV_BAD_TEXT = {
    "number": ["abc", "1,5", "nan", "$3"],
    "bool": ["yes", "2", "T"],
    "date": ["2025-02-30", "1969-12-31", "2099-01-01", "1/2/2025"],
}
CSV_COLUMNS: dict[str, dict[str, list[str]]] = {
    "accounts.csv": {
        "user_id": [""],
        "account_id": [""],
        "name": [""],
        "type": ["savings"],
        "holder_category": ["family"],
        "balances.available": CSV_BAD_TEXT["number"],
        "balances.current": CSV_BAD_TEXT["number"],
        "balances.limit": CSV_BAD_TEXT["number"],
        "balances.iso_currency_code": ["", "XYZ"],
    },
    "transactions.csv": {
        "user_id": [""],
        "transaction_id": [""],
        "account_id": ["", "no-such-account"],
        "date": ["", *CSV_BAD_TEXT["date"]],
        "authorized_date": CSV_BAD_TEXT["date"],
        "amount": ["", *CSV_BAD_TEXT["number"]],
        "iso_currency_code": ["", "XYZ"],
        "name": [""],
        "payment_channel": ["", "atm"],
        "personal_finance_category.primary": [""],
        "pending": ["", *CSV_BAD_TEXT["bool"]],
    },
    "liabilities.csv": {
        "user_id": [""],
        "account_id": ["", "no-such-account"],
        "purchase_apr": CSV_BAD_TEXT["number"],
        "interest_charge_amount": CSV_BAD_TEXT["number"],
        "is_overdue": CSV_BAD_TEXT["bool"],
        "last_payment_amount": CSV_BAD_TEXT["number"],
        "last_payment_date": CSV_BAD_TEXT["date"],
        "minimum_payment_amount": CSV_BAD_TEXT["number"],
        "next_payment_due_date": ["2025-02-30", "x"],
    },
}


@SETTINGS
@given(users(text=single_line), st.data())
def test_corrupting_any_csv_cell_names_file_line_and_column(
    generated: list[dict[str, Any]], data: st.DataObject
) -> None:
    files = csv_files(generated)
    tables = {name: list(csv.reader(io.StringIO(text))) for name, text in files.items()}
    cells = [
        (name, row, column)
        for name, rows in tables.items()
        for row in range(1, len(rows))
        for column in CSV_COLUMNS[name]
    ]
    name, row, column = data.draw(st.sampled_from(cells), label="cell")
    bad = data.draw(st.sampled_from(CSV_COLUMNS[name][column]), label="value")
    rows = tables[name]
    rows[row][rows[0].index(column)] = bad
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    files[name] = buffer.getvalue()
    result = parse(to_zip(files), fx_rates=FX)
    expected = f"{name}:line {row + 1}.{column}"  # single-line values: row r is on line r + 1
    assert not result.ok
    assert expected in [p.path for p in result.problems], (expected, messages(result))


# -- never an exception ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@SETTINGS
@given(users(max_users=1), st.data())
def test_any_value_anywhere_never_raises(generated: list[dict[str, Any]], data: st.DataObject) -> None:
    upload = deep(generated[0])
    location, _ = data.draw(st.sampled_from(_locations(upload)), label="field")
    _set(upload, location, data.draw(json_values, label="value"))
    result = parse(json.dumps(upload).encode(), fx_rates=FX)
    assert result.ok or result.problems


@SETTINGS
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    result = parse(data, default_user_id="u1")
    for name, table in result.tables.items():
        assert table.schema.equals(TABLES[name])
