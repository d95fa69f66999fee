"""Plaid PFC v1 and v2 categories reach the signal code under the same v1-compatible names."""

from __future__ import annotations

import pytest
from plaid_files import messages, parse, to_json, tx, user

from spendsense_profile.domain.ingest import normalize_category
from spendsense_profile.domain.ingest.taxonomy import V2_PRIMARY_TO_V1, V2_TO_V1

# v1 detailed names the mapping may target (from Plaid's v1 taxonomy).
V1_TARGETS = {
    "INCOME_WAGES",
    "INCOME_OTHER_INCOME",
    "INCOME_RETIREMENT_PENSION",
    "TRANSFER_IN_CASH_ADVANCES_AND_LOANS",
    "TRANSFER_IN_OTHER_TRANSFER_IN",
    "TRANSFER_OUT_OTHER_TRANSFER_OUT",
    "LOAN_PAYMENTS_OTHER_PAYMENT",
    "BANK_FEES_OTHER_BANK_FEES",
}


def _categories(*pfcs: tuple[str, str | None]) -> list[tuple[str, str | None, str | None]]:
    transactions = [
        tx(f"t{i}", personal_finance_category={"primary": p, "detailed": d}) for i, (p, d) in enumerate(pfcs)
    ]
    result = parse(to_json(user(transactions=transactions)))
    assert result.ok, messages(result)
    table = result.tables["transactions"]
    columns = ("category_primary", "category_detailed", "category_detailed_raw")
    return list(zip(*(table.column(c).to_pylist() for c in columns), strict=True))


@pytest.mark.parametrize(
    ("v1", "v2"),
    [
        (("INCOME", "INCOME_WAGES"), ("INCOME", "INCOME_SALARY")),
        (("INCOME", "INCOME_WAGES"), ("INCOME", "INCOME_GIG_ECONOMY")),  # gig pay is earned income
        (("INCOME", "INCOME_RETIREMENT_PENSION"), ("INCOME", "INCOME_RETIREMENT")),
        (("INCOME", "INCOME_OTHER_INCOME"), ("INCOME", "INCOME_OTHER")),
        (
            ("TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
            ("LOAN_DISBURSEMENTS", "LOAN_DISBURSEMENTS_PERSONAL"),
        ),
        (("LOAN_PAYMENTS", "LOAN_PAYMENTS_OTHER_PAYMENT"), ("LOAN_PAYMENTS", "LOAN_PAYMENTS_BNPL")),
        (("BANK_FEES", "BANK_FEES_OTHER_BANK_FEES"), ("BANK_FEES", "BANK_FEES_LATE_FEES")),
        (("BANK_FEES", "BANK_FEES_OVERDRAFT_FEES"), ("BANK_FEES", "BANK_FEES_OVERDRAFT_FEES")),
        (
            ("LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"),
            ("LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"),
        ),
    ],
)
def test_v1_and_v2_map_to_the_same_output_and_keep_the_raw_name(
    v1: tuple[str, str], v2: tuple[str, str]
) -> None:
    from_v1, from_v2 = _categories(v1, v2)
    assert from_v1[:2] == from_v2[:2] == v1
    assert (from_v1[2], from_v2[2]) == (v1[1], v2[1])


def test_unknown_categories_are_kept_as_uploaded() -> None:
    assert _categories(("SPACE_TRAVEL", "SPACE_TRAVEL_ORBIT"), ("OTHER", None)) == [
        ("SPACE_TRAVEL", "SPACE_TRAVEL_ORBIT", "SPACE_TRAVEL_ORBIT"),
        ("OTHER", None, None),
    ]


def test_a_new_v2_primary_with_an_unknown_detailed_name_gets_its_v1_primary() -> None:
    assert normalize_category("LOAN_DISBURSEMENTS", "LOAN_DISBURSEMENTS_SOMETHING_NEW") == (
        "TRANSFER_IN",
        "LOAN_DISBURSEMENTS_SOMETHING_NEW",
    )


def test_the_mapping_table_is_consistent() -> None:
    v2_names = [v2 for v2, _, _ in V2_TO_V1]
    assert len(v2_names) == len(set(v2_names)), "each v2 name is mapped once"
    for v2, primary, detailed in V2_TO_V1:
        assert detailed in V1_TARGETS, v2
        assert detailed.startswith(primary + "_"), v2  # a v1 detailed name starts with its primary
        assert v2 not in V1_TARGETS or v2 == detailed, "a v1 name maps to itself"
    assert set(V2_PRIMARY_TO_V1.values()) <= {p for _, p, _ in V2_TO_V1}
