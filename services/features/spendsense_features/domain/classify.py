"""Per-transaction classification: category class bits, payroll names and merchant keys.

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
    "codes_at",
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
        return values.cat.codes.to_numpy().astype(np.int64), values.cat.categories.to_numpy(object)
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

    def table(self, predicate: Callable[[str], bool]) -> np.ndarray:
        """``predicate`` per distinct value, plus a trailing False that code -1 (null) indexes."""
        values = (predicate(str(u)) for u in self.uniques)
        return np.append(np.fromiter(values, dtype=bool, count=len(self.uniques)), False)


# Transaction classes from the category columns, one bit each.
(
    TRANSFER,
    TRANSFER_IN,
    LOAN_PAYMENT,
    INCOME,
    NOT_PAYROLL,
    FEE,
    HOUSING,
    OVERDRAFT,
    INTEREST_CHARGE,
    CARD_PAYMENT,
) = (1 << i for i in range(10))
_PRIMARY_RULES: tuple[tuple[int, Callable[[str], bool]], ...] = (
    (TRANSFER, lambda c: c in ("TRANSFER_IN", "TRANSFER_OUT")),
    (TRANSFER_IN, lambda c: c == "TRANSFER_IN"),
    (LOAN_PAYMENT, lambda c: c == "LOAN_PAYMENTS"),
    (INCOME, lambda c: c == "INCOME"),
    (FEE, lambda c: c == "BANK_FEES"),
)
# Checked on the detailed name and on the raw (as uploaded) one: the parser maps v2 names to v1, and
# a subcategory that only v2 has (a new fee, say) is still recognized by its raw name.
_DETAIL_RULES: tuple[tuple[int, Callable[[str], bool]], ...] = (
    (LOAN_PAYMENT, lambda c: c.startswith("LOAN_PAYMENTS")),
    (NOT_PAYROLL, lambda c: any(word in c for word in _NOT_PAYROLL)),
    (HOUSING, lambda c: c in _HOUSING or "MORTGAGE" in c or c.endswith("_RENT")),
    # token match for NSF: it must not match inside "TRANSFER"
    (OVERDRAFT, lambda c: "OVERDRAFT" in c or "INSUFFICIENT_FUNDS" in c or "NSF" in c.split("_")),
    (INTEREST_CHARGE, lambda c: "INTEREST_CHARGE" in c),
    (CARD_PAYMENT, lambda c: "CREDIT_CARD_PAYMENT" in c),
)


def _bits(coded: Coded, rules: tuple[tuple[int, Callable[[str], bool]], ...]) -> np.ndarray:
    table = np.zeros(len(coded.uniques) + 1, dtype=np.uint16)
    for bit, predicate in rules:
        table[coded.table(predicate)] |= bit
    return table[coded.codes]


class CategoryFlags:
    """The class bits of every transaction (of ``rows``): one uint16 per row, built with three
    lookups, so a class test is one bitwise AND."""

    def __init__(
        self, primary: pd.Series, detailed: pd.Series, raw: pd.Series, rows: np.ndarray | None = None
    ) -> None:
        prim = Coded(primary, rows)
        self.primary_codes, self.primary_names = prim.codes, prim.uniques
        self.bits = (
            _bits(prim, _PRIMARY_RULES)
            | _bits(Coded(detailed, rows), _DETAIL_RULES)
            | _bits(Coded(raw, rows), _DETAIL_RULES)
        )

    def has(self, bits: int) -> np.ndarray:
        """True where the transaction is in any of the classes in ``bits``."""
        return (self.bits & bits) != 0


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


# Merchant text → its key, kept across batches: the worker analyzes an upload a chunk of users at a time, and
# the same few thousand merchant names come back in every batch (eight regex passes each, a tenth of the
# analysis). Bounded; cleared when full.
_NORMALIZED: dict[str, str] = {}
_NORMALIZED_MAX = 200_000


def normalize_merchant(values: np.ndarray) -> np.ndarray:
    """Lowercase and strip digits, punctuation, store numbers and domains, so that "NETFLIX.COM 1234",
    "Netflix" and "netflix.com" share one key. Texts not seen before run through Arrow's vectorized
    regex engine (:func:`_normalized`)."""
    texts = values.astype(str).tolist()
    found = {text: _NORMALIZED.get(text) for text in texts}
    new = [text for text, key in found.items() if key is None]
    if new:
        if len(_NORMALIZED) + len(new) > _NORMALIZED_MAX:
            _NORMALIZED.clear()
        keys = dict(zip(new, _normalized(new), strict=True))
        _NORMALIZED.update(keys)
        found.update(keys)
    return np.array([found[text] for text in texts], dtype=object)


def _normalized(texts: list[str]) -> list[str]:
    arr = pc.utf8_lower(pa.array(texts, pa.string()))
    for pattern, replacement in _MERCHANT_RULES:
        arr = pc.replace_substring_regex(arr, pattern=pattern, replacement=replacement)
    return pc.utf8_trim_whitespace(arr).to_pylist()


def codes_at(values: pd.Series, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes of ``values`` at ``positions``: factorize the whole column and index the codes when most
    rows are wanted (or the column is categorical), else factorize just the wanted rows."""
    if isinstance(values.dtype, pd.CategoricalDtype) or positions.size * 4 > len(values):
        found, uniques = codes(values)
        return found[positions], uniques
    return codes(values.iloc[positions])


def merchant_keys(
    entity_id: pd.Series, merchant_name: pd.Series, name: pd.Series, rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One integer per transaction (of ``rows``) identifying its merchant (-1 when nothing identifies
    it), and the text of each key (``labels[key]``: ``e:<entity id>`` or ``n:<normalized name>``).

    Prefers Plaid's ``merchant_entity_id``; otherwise the normalized ``merchant_name``, otherwise the
    normalized raw ``name``. Normalized names share one key space so a row with a merchant name and a
    row with only a description of the same merchant group together. Each fallback column is only
    read for the rows that need it.
    """
    rows = np.arange(len(entity_id)) if rows is None else rows
    keys, ent_uniques = codes_at(entity_id, rows)
    need_merchant = np.flatnonzero(keys < 0)
    mn_codes, mn_uniques = codes_at(merchant_name, rows[need_merchant])
    normalized = normalize_merchant(mn_uniques)
    # merchant names that normalize to nothing ("#123") fall back to the description too
    mn_empty = np.append(normalized == "", True)[mn_codes]
    need_name = need_merchant[mn_empty]
    nm_codes, nm_uniques = codes_at(name, rows[need_name])
    normalized = np.concatenate([normalized, normalize_merchant(nm_uniques)])
    norm_codes, norm_uniques = pd.factorize(pd.Series(normalized, dtype=object))
    keyed = np.where(normalized == "", -1, norm_codes + len(ent_uniques))
    # a trailing -1 so that a null code (-1) maps to "no key"
    mn_key = np.append(keyed[: len(mn_uniques)], -1)
    nm_key = np.append(keyed[len(mn_uniques) :], -1)
    keys[need_merchant] = mn_key[mn_codes]
    keys[need_name] = nm_key[nm_codes]
    labels = np.array(
        [f"e:{u}" for u in ent_uniques.tolist()] + [f"n:{u}" for u in np.asarray(norm_uniques).tolist()],
        dtype=object,
    )
    # Number the keys in the order of their text, not of first appearance: a user's streams then come
    # out in the same order whichever other users are analyzed with them (``spendsense analyze`` splits
    # the users between processes; the worker analyzes whatever batch arrived).
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order) + 1, dtype=keys.dtype)
    rank[order] = np.arange(len(order), dtype=keys.dtype)
    rank[-1] = -1  # "no key" stays -1
    return rank[keys], labels[order]
