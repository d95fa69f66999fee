"""Per-transaction classification: category flags, payroll names and merchant keys.

Everything here is computed on the *distinct* values of a column (a few dozen categories, a few
thousand names) and broadcast back with integer codes, so the cost per transaction is one array
lookup, not a string operation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CategoryFlags",
    "Coded",
    "codes",
    "merchant_keys",
    "normalize_merchant",
    "payroll_name_flags",
]

# Housing is never a subscription even though it is perfectly regular.
_HOUSING = ("RENT_AND_UTILITIES_RENT", "LOAN_PAYMENTS_MORTGAGE_PAYMENT")
# Income that is not a pay cheque (v1 names and their v2 spellings contain these words).
_NOT_PAYROLL = ("INTEREST", "DIVIDEND", "TAX_REFUND")
_PAYROLL_NAME = r"(?i)(payroll|direct\s*dep|dir\s*dep)"


def codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (-1 for null) and the distinct values, reusing a categorical's codes for free."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(np.int64), values.cat.categories.to_numpy(object)
    found, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(found, dtype=np.int64), np.asarray(uniques, dtype=object)


class Coded:
    """A column as integer codes plus its distinct values, so predicates run once per distinct value.

    ``rows`` restricts the codes to those row positions: factorizing the whole column and indexing the
    integer codes is much cheaper than first taking a subset of a large string column."""

    def __init__(self, values: pd.Series, rows: np.ndarray | None = None) -> None:
        self.codes, self.uniques = codes(values)
        if rows is not None:
            self.codes = self.codes[rows]

    def flag(self, predicate: Callable[[str], bool]) -> np.ndarray:
        """``predicate`` on each distinct non-null value, broadcast to every row (null → False)."""
        table = np.fromiter((predicate(str(u)) for u in self.uniques), dtype=bool, count=len(self.uniques))
        return np.append(table, False)[self.codes]  # code -1 (null) indexes the trailing False


class CategoryFlags:
    """Boolean arrays, one entry per transaction (of ``rows``), from the Plaid category columns."""

    def __init__(
        self, primary: pd.Series, detailed: pd.Series, raw: pd.Series, rows: np.ndarray | None = None
    ) -> None:
        prim, det, raw_coded = Coded(primary, rows), Coded(detailed, rows), Coded(raw, rows)

        def detail(predicate: Callable[[str], bool]) -> np.ndarray:
            # v2 detailed names are mapped to v1 by the parser; the raw name is checked too so a
            # subcategory that only v2 has (e.g. a new fee) is still recognized.
            return det.flag(predicate) | raw_coded.flag(predicate)

        self.primary_codes, self.primary_names = prim.codes, prim.uniques
        self.transfer = prim.flag(lambda c: c in ("TRANSFER_IN", "TRANSFER_OUT"))
        self.transfer_in = prim.flag(lambda c: c == "TRANSFER_IN")
        self.loan_payment = prim.flag(lambda c: c == "LOAN_PAYMENTS") | detail(
            lambda c: c.startswith("LOAN_PAYMENTS")
        )
        self.income = prim.flag(lambda c: c == "INCOME")
        self.not_payroll = detail(lambda c: any(word in c for word in _NOT_PAYROLL))
        self.fee = prim.flag(lambda c: c == "BANK_FEES")
        self.housing = detail(lambda c: c in _HOUSING or "MORTGAGE" in c or c.endswith("_RENT"))
        # token match: "NSF" must not match inside "TRANSFER"
        self.overdraft = detail(
            lambda c: "OVERDRAFT" in c or "INSUFFICIENT_FUNDS" in c or "NSF" in c.split("_")
        )
        self.interest_charge = detail(lambda c: "INTEREST_CHARGE" in c)
        self.card_payment = detail(lambda c: "CREDIT_CARD_PAYMENT" in c)


def payroll_name_flags(names: pd.Series) -> np.ndarray:
    """True where the description reads like a payroll / direct-deposit ACH credit."""
    found, uniques = codes(names)
    if len(uniques) == 0:
        return np.zeros(len(names), dtype=bool)
    hits = pc.match_substring_regex(pa.array(uniques.astype(str), pa.string()), _PAYROLL_NAME)
    table = np.append(hits.to_numpy(zero_copy_only=False).astype(bool), False)
    return table[found]


# Order matters: processor prefixes and domains go before digits and punctuation are stripped.
_MERCHANT_RULES: tuple[tuple[str, str], ...] = (
    (r"^(sq|tst|pp|sp|pos|ach|dd|ppd)\s*\*\s*", ""),  # card-processor prefixes ("SQ *COFFEE")
    (r"^paypal\s*\*\s*", ""),
    (r"\.(com|net|org|co|io|tv)\b", " "),  # "netflix.com" → "netflix"
    (r"\b(www|inc|llc|ltd|corp|co)\b", " "),
    (r"\b(store|str|shop|loc|location|no|num)\b", " "),  # "STORE #1234"
    (r"[0-9]+", " "),
    (r"[^a-z]+", " "),
    (r"\s+", " "),
)


def normalize_merchant(values: np.ndarray) -> np.ndarray:
    """Lowercase and strip digits, punctuation, store numbers and domains, so that "NETFLIX.COM 1234",
    "Netflix" and "netflix.com" share one key. Runs in Arrow's vectorized regex engine."""
    arr = pc.utf8_lower(pa.array(values.astype(str), pa.string()))
    for pattern, replacement in _MERCHANT_RULES:
        arr = pc.replace_substring_regex(arr, pattern=pattern, replacement=replacement)
    arr = pc.utf8_trim_whitespace(arr)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def merchant_keys(
    entity_id: pd.Series, merchant_name: pd.Series, name: pd.Series, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One integer per transaction (of ``rows``) identifying its merchant (-1 when nothing identifies
    it), and the text of each key (``labels[key]``: ``e:<entity id>`` or ``n:<normalized name>``).

    Prefers Plaid's ``merchant_entity_id``; otherwise the normalized ``merchant_name``, otherwise the
    normalized raw ``name``. Normalized names share one key space so a row with a merchant name and a
    row with only a description of the same merchant group together.
    """
    ent, mn, nm = Coded(entity_id, rows), Coded(merchant_name, rows), Coded(name, rows)
    ent_codes, ent_uniques = ent.codes, ent.uniques
    mn_codes, mn_uniques = mn.codes, mn.uniques
    nm_codes, nm_uniques = nm.codes, nm.uniques
    normalized = normalize_merchant(np.concatenate([mn_uniques, nm_uniques]))
    norm_codes, norm_uniques = pd.factorize(pd.Series(normalized, dtype=object))
    norm_codes = np.where(normalized == "", -1, norm_codes)
    keyed = np.where(norm_codes >= 0, norm_codes + len(ent_uniques), -1)
    # a trailing -1 so that a null code (-1) maps to "no key"
    mn_key = np.append(keyed[: len(mn_uniques)], -1)
    nm_key = np.append(keyed[len(mn_uniques) :], -1)
    by_name = np.where(mn_key[mn_codes] >= 0, mn_key[mn_codes], nm_key[nm_codes])
    labels = np.array(
        [f"e:{u}" for u in ent_uniques.tolist()] + [f"n:{u}" for u in np.asarray(norm_uniques).tolist()],
        dtype=object,
    )
    return np.where(ent_codes >= 0, ent_codes, by_name), labels
