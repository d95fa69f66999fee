"""Plaid-shaped records (dicts) to normalized rows, per SPEC §3.

Each function checks one record with a :class:`Checker`, reports every bad field, and returns the row's
values in the order of the internal table (see ``tables.py``), or ``None`` when anything was wrong.
Amounts keep Plaid's sign (positive = money out) and are converted to USD with the record's rate.
"""

from __future__ import annotations

from typing import Any

from .checks import Checker
from .taxonomy import normalize_category

ACCOUNT_TYPES = {
    "depository": "depository",
    "credit": "credit",
    "loan": "loan",
    "investment": "investment",
    "brokerage": "investment",  # Plaid's older name for investment accounts
}
# Plaid reports "personal"/"unrecognized"; SPEC §3 speaks of individual. Only business is set apart.
HOLDER_CATEGORIES = {
    "individual": "individual",
    "personal": "individual",
    "unrecognized": "individual",
    "business": "business",
}
PAYMENT_CHANNELS = {"online": "online", "in store": "in store", "other": "other"}
LIABILITY_KINDS = {"credit": "credit", "mortgage": "mortgage", "student": "student"}
CREDIT_AMOUNT_FIELDS = (
    "interest_charge_amount",
    "last_payment_amount",
    "last_statement_balance",
    "minimum_payment_amount",
)

Row = tuple[Any, ...]


def _is_object(record: Any, ck: Checker) -> bool:
    if type(record) is dict:
        return True
    ck.report("", "expected an object")
    return False


def account_row(record: Any, ck: Checker) -> Row | None:
    if not _is_object(record, ck):
        return None
    get = record.get
    account_id = ck.string(get("account_id"), "account_id")
    name = ck.string(get("name"), "name")
    official_name = ck.optional_string(get("official_name"), "official_name")
    kind = ck.choice(get("type"), "type", ACCOUNT_TYPES)
    subtype = ck.optional_string(get("subtype"), "subtype")  # Plaid allows null
    holder = ck.choice(get("holder_category"), "holder_category", HOLDER_CATEGORIES, default="individual")
    mask = ck.optional_string(get("mask"), "mask")
    balances = ck.mapping(get("balances"), "balances")
    if balances is None:
        return None
    available = ck.number(balances.get("available"), "balances.available")
    current = ck.number(balances.get("current"), "balances.current")
    limit = ck.number(balances.get("limit"), "balances.limit")
    currency = ck.currency(balances, "balances.")
    if ck.errors or currency is None:
        return None
    code, rate = currency
    if rate != 1.0:
        available, current, limit = (_times(v, rate) for v in (available, current, limit))
        ck.ctx.converted[code] = ck.ctx.converted.get(code, 0) + 1
    return (account_id, name, official_name, kind, subtype, holder, available, current, limit, code, mask)


def transaction_row(record: Any, ck: Checker) -> Row | None:
    if not _is_object(record, ck):
        return None
    get = record.get
    transaction_id = ck.string(get("transaction_id"), "transaction_id")
    account_id = ck.string(get("account_id"), "account_id")
    day = ck.day(get("date"), "date", required=True)
    authorized = ck.day(get("authorized_date"), "authorized_date")
    amount = ck.number(get("amount"), "amount", required=True)
    currency = ck.currency(record, "")
    name = ck.string(get("name"), "name")
    merchant_name = ck.optional_string(get("merchant_name"), "merchant_name")
    merchant_entity_id = ck.optional_string(get("merchant_entity_id"), "merchant_entity_id")
    channel = ck.choice(get("payment_channel"), "payment_channel", PAYMENT_CHANNELS)
    category = _category(get("personal_finance_category"), ck)
    pending = ck.boolean(get("pending"), "pending", required=True)
    if ck.errors or currency is None or category is None or amount is None:
        return None
    code, rate = currency
    if rate != 1.0:
        amount *= rate
        ck.ctx.converted[code] = ck.ctx.converted.get(code, 0) + 1
    primary, detailed, raw = category
    return (
        transaction_id,
        account_id,
        day,
        authorized,
        amount,
        code,
        name,
        merchant_name,
        merchant_entity_id,
        channel,
        primary,
        detailed,
        raw,
        pending,
    )


def _category(value: Any, ck: Checker) -> tuple[str, str | None, str | None] | None:
    field = "personal_finance_category"
    pfc = ck.mapping(value, field)
    if pfc is None:
        return None
    primary = ck.string(pfc.get("primary"), field + ".primary")
    detailed = ck.optional_string(pfc.get("detailed"), field + ".detailed")
    if primary is None:
        return None
    mapped_primary, mapped_detailed = normalize_category(primary, detailed)
    return mapped_primary, mapped_detailed, detailed


def credit_row(record: dict[str, Any], ck: Checker) -> Row | None:
    """A credit-card liability. APRs come as Plaid's ``aprs`` list, or already flattened (CSV, flat
    lists) as ``purchase_apr`` and ``interest_charge_amount``. Amounts are converted later, with the
    currency of the account they belong to."""
    get = record.get
    account_id = ck.string(get("account_id"), "account_id")
    if "aprs" in record:
        purchase_apr, interest = _aprs(get("aprs"), ck)
    else:
        purchase_apr = ck.number(get("purchase_apr"), "purchase_apr")
        interest = ck.number(get("interest_charge_amount"), "interest_charge_amount")
    row = (
        account_id,
        purchase_apr,
        interest,
        ck.boolean(get("is_overdue"), "is_overdue"),
        ck.number(get("last_payment_amount"), "last_payment_amount"),
        ck.day(get("last_payment_date"), "last_payment_date"),
        ck.number(get("last_statement_balance"), "last_statement_balance"),
        ck.day(get("last_statement_issue_date"), "last_statement_issue_date"),
        ck.number(get("minimum_payment_amount"), "minimum_payment_amount"),
        ck.day(get("next_payment_due_date"), "next_payment_due_date", future_ok=True),  # due dates lie ahead
    )
    return None if ck.errors else row


def _aprs(value: Any, ck: Checker) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    if type(value) is not list:
        ck.report("aprs", "not a list")
        return None, None
    purchase_apr: float | None = None
    interest: float | None = None
    for i, apr in enumerate(value):
        field = f"aprs[{i}]"
        entry = ck.mapping(apr, field)
        if entry is None:
            continue
        percentage = ck.number(entry.get("apr_percentage"), field + ".apr_percentage", required=True)
        apr_type = ck.string(entry.get("apr_type"), field + ".apr_type")
        ck.number(entry.get("balance_subject_to_apr"), field + ".balance_subject_to_apr")
        charged = ck.number(entry.get("interest_charge_amount"), field + ".interest_charge_amount")
        if apr_type == "purchase_apr" and purchase_apr is None:
            purchase_apr = percentage
        if charged is not None:
            interest = (interest or 0.0) + charged
    return purchase_apr, interest


def liability_kind(record: dict[str, Any], ck: Checker) -> str | None:
    """Kind of an entry of a flat liabilities list: its ``type`` if given, else guessed from Plaid's
    fields; credit (the only kind we store) when nothing says otherwise."""
    field = "liability_type" if "liability_type" in record else "type"
    explicit = record.get(field)
    if explicit is not None and explicit != "":  # an empty CSV cell says nothing
        return ck.choice(explicit, field, LIABILITY_KINDS)
    if "aprs" in record:
        return "credit"
    if record.keys() & {"property_address", "loan_term", "maturity_date", "next_monthly_payment"}:
        return "mortgage"
    if record.keys() & {"loan_name", "expected_payoff_date", "guarantor", "repayment_plan"}:
        return "student"
    return "credit"


def removal_id(record: Any, ck: Checker) -> str | None:
    """A /transactions/sync ``removed`` entry: ``{"transaction_id": ...}`` (a bare id is accepted too)."""
    if type(record) is str:
        return ck.string(record, "")
    if not _is_object(record, ck):
        return None
    return ck.string(record.get("transaction_id"), "transaction_id")


def _times(value: float | None, rate: float) -> float | None:
    return None if value is None else value * rate
