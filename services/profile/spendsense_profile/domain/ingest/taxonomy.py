"""Plaid personal-finance-category (PFC) taxonomy: v2 names mapped to v1-compatible names.

The signal code speaks v1 (e.g. INCOME / INCOME_WAGES). Plaid's PFC v2 (December 2025) splits income into
finer names, adds LOAN_DISBURSEMENTS as a primary category (v1 filed loan proceeds under TRANSFER_IN) and
adds loan-payment and bank-fee subcategories. Each v2 detailed name that has no identical v1 name is mapped
here to the v1 pair with the same meaning for our signals; v1 names, and names unknown to this table, pass
through unchanged (the detailed name as uploaded is always kept in ``category_detailed_raw``).

Source: Plaid's published taxonomy file (https://plaid.com/documents/pfc-taxonomy-all.csv, v1 and v2 rows)
and the v2 names as they appear in Plaid's Transactions/Enrich documentation and in public integrations that
consume them. Rows marked "(unverified)" are v2 names seen in public integrations but not confirmed against
Plaid's file; mapping them is harmless (the raw name is kept) and they fall back sensibly if Plaid never
emits them. Review this table whenever Plaid publishes a taxonomy change.
"""

from __future__ import annotations

from functools import lru_cache

# (v2 detailed, v1 primary, v1 detailed)
V2_TO_V1: tuple[tuple[str, str, str], ...] = (
    # Income: earned income becomes INCOME_WAGES, which the payroll signal reads. Gig and contractor pay is
    # earned income too, even if less regular; the raw name keeps the distinction.
    ("INCOME_SALARY", "INCOME", "INCOME_WAGES"),
    ("INCOME_GIG_ECONOMY", "INCOME", "INCOME_WAGES"),
    ("INCOME_CONTRACTOR", "INCOME", "INCOME_WAGES"),  # (unverified)
    ("INCOME_RETIREMENT", "INCOME", "INCOME_RETIREMENT_PENSION"),
    ("INCOME_RETIREMENT_PENSION", "INCOME", "INCOME_RETIREMENT_PENSION"),
    # Benefits and other unearned income: v1 had no finer names, so they are "other income". Military
    # means veterans' benefits in Plaid's income categories (pay for serving is SALARY).
    ("INCOME_MILITARY", "INCOME", "INCOME_OTHER_INCOME"),
    ("INCOME_LONG_TERM_DISABILITY", "INCOME", "INCOME_OTHER_INCOME"),
    ("INCOME_CHILD_SUPPORT", "INCOME", "INCOME_OTHER_INCOME"),
    ("INCOME_RENTAL", "INCOME", "INCOME_OTHER_INCOME"),
    ("INCOME_OTHER", "INCOME", "INCOME_OTHER_INCOME"),
    # Loan proceeds: v1's TRANSFER_IN_CASH_ADVANCES_AND_LOANS. They are money in, never income.
    ("LOAN_DISBURSEMENTS_AUTO", "TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
    ("LOAN_DISBURSEMENTS_BNPL", "TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
    ("LOAN_DISBURSEMENTS_CASH_ADVANCES", "TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
    ("LOAN_DISBURSEMENTS_EWA", "TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
    ("LOAN_DISBURSEMENTS_MORTGAGE", "TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
    ("LOAN_DISBURSEMENTS_PERSONAL", "TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
    ("LOAN_DISBURSEMENTS_STUDENT", "TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
    ("LOAN_DISBURSEMENTS_OTHER_DISBURSEMENT", "TRANSFER_IN", "TRANSFER_IN_CASH_ADVANCES_AND_LOANS"),
    # New loan repayments: v1 filed them as "other payment" (still a loan payment, never spending).
    ("LOAN_PAYMENTS_BNPL", "LOAN_PAYMENTS", "LOAN_PAYMENTS_OTHER_PAYMENT"),
    ("LOAN_PAYMENTS_CASH_ADVANCES", "LOAN_PAYMENTS", "LOAN_PAYMENTS_OTHER_PAYMENT"),
    ("LOAN_PAYMENTS_EWA", "LOAN_PAYMENTS", "LOAN_PAYMENTS_OTHER_PAYMENT"),
    # New fees: v1 "other bank fees" (overdraft, NSF and interest keep their v1 names in v2).
    ("BANK_FEES_LATE_FEES", "BANK_FEES", "BANK_FEES_OTHER_BANK_FEES"),
    ("BANK_FEES_CASH_ADVANCE", "BANK_FEES", "BANK_FEES_OTHER_BANK_FEES"),
    # Transfers with new channels (unverified): "other" in v1; own-account transfers keep their v1 names.
    ("TRANSFER_IN_WIRE", "TRANSFER_IN", "TRANSFER_IN_OTHER_TRANSFER_IN"),
    ("TRANSFER_IN_TRANSFER_IN_FROM_APPS", "TRANSFER_IN", "TRANSFER_IN_OTHER_TRANSFER_IN"),
    ("TRANSFER_OUT_WIRE", "TRANSFER_OUT", "TRANSFER_OUT_OTHER_TRANSFER_OUT"),
    ("TRANSFER_OUT_CRYPTO", "TRANSFER_OUT", "TRANSFER_OUT_OTHER_TRANSFER_OUT"),
    ("TRANSFER_OUT_TRANSFER_OUT_FROM_APPS", "TRANSFER_OUT", "TRANSFER_OUT_OTHER_TRANSFER_OUT"),
)

# v2 primary categories with no v1 counterpart, for detailed names this table does not know.
V2_PRIMARY_TO_V1: dict[str, str] = {"LOAN_DISBURSEMENTS": "TRANSFER_IN"}

_DETAILED = {v2: (primary, detailed) for v2, primary, detailed in V2_TO_V1}


@lru_cache(maxsize=4096)
def normalize_category(primary: str, detailed: str | None) -> tuple[str, str | None]:
    """(category_primary, category_detailed) in v1-compatible names. Unknown names are kept as uploaded."""
    if detailed is not None:
        mapped = _DETAILED.get(detailed)
        if mapped is not None:
            return mapped
    return V2_PRIMARY_TO_V1.get(primary, primary), detailed
