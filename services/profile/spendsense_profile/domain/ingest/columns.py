"""The checks of ``records.transaction_row``, on whole columns at once (the fast readers).

The fast readers decode many transactions into Arrow columns in C (``pyarrow.json``, ``pyarrow.csv``) and
hand them here. Every rule of the record-at-a-time path holds for each value, and so does every
normalization (currency conversion, category mapping, dates as days since 1970), so a valid upload gives
exactly the rows the slow path gives. Values of few distinct kinds (dates, channels, currencies,
categories, CSV booleans) are checked once per distinct value, in Python, by the same rules; the rest
(required strings, numbers) by Arrow kernels whose definitions match Python's.

Nothing here says *what* is wrong: a column that breaks a rule raises :class:`Rejected`, and the upload is
read again by the slow path, which names every problem with its path. So the checks only need to be
exact in one direction: whatever passes here would pass there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .checks import _NUMBER, Context
from .records import PAYMENT_CHANNELS
from .tables import TRANSACTIONS_INTERNAL
from .taxonomy import normalize_category


class Rejected(Exception):
    """The fast reader found something it does not accept: the slow path reads the upload again."""


# Python's str.strip() and str.isspace() whitespace, as an RE2 character class and as trim characters:
# "blank" and "stripped" must mean exactly what they mean in checks.py.
# (Every code point c with chr(c).isspace(); tests check the list against Python's.)
_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS_CLASS = "[" + "".join(f"\\x{{{ord(c):04x}}}" for c in _WHITESPACE) + "]"
_BLANK = f"^{_WS_CLASS}*$"
# checks._NUMBER applied to the stripped text, i.e. the text with any Python whitespace around it.
_NUMBER_TEXT = f"^{_WS_CLASS}*{_NUMBER.pattern}{_WS_CLASS}*$"
assert _NUMBER.pattern == r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"

_DATE32 = pa.date32()


@dataclass
class TransactionColumns:
    """One batch of transactions as decoded, before any check. JSON gives typed columns (``amount``
    float64, ``pending`` bool); CSV gives text for every column (``text=True``). A column the upload
    does not have at all is None."""

    transaction_id: pa.Array | None
    account_id: pa.Array | None
    date: pa.Array | None
    authorized_date: pa.Array | None
    amount: pa.Array | None
    iso_currency_code: pa.Array | None
    unofficial_currency_code: pa.Array | None
    name: pa.Array | None
    merchant_name: pa.Array | None
    merchant_entity_id: pa.Array | None
    payment_channel: pa.Array | None
    primary: pa.Array | None
    detailed: pa.Array | None
    pending: pa.Array | None
    text: bool = False


def transaction_batch(
    cols: TransactionColumns,
    ctx: Context,
    *,
    user: np.ndarray,
    list_id: np.ndarray,
    loc: np.ndarray,
    seq: np.ndarray,
) -> pa.RecordBatch:
    """The internal-schema batch (``tables.TRANSACTIONS_INTERNAL``) for ``cols``, or :class:`Rejected`.
    ``user``, ``list_id``, ``loc`` and ``seq`` are the bookkeeping columns, one value per row."""
    n = len(user)
    transaction_id = _required_string(cols.transaction_id, n, "transaction_id")
    account_id = _required_string(cols.account_id, n, "account_id")
    day = _days(cols.date, n, ctx, text=cols.text, required=True, name="date")
    authorized = _days(cols.authorized_date, n, ctx, text=cols.text, required=False, name="authorized_date")
    amount = _amounts(cols.amount, n, text=cols.text)
    code, rate = _currencies(cols.iso_currency_code, cols.unofficial_currency_code, n, ctx)
    name = _required_string(cols.name, n, "name")
    merchant_name = _optional_string(cols.merchant_name, n)
    merchant_entity_id = _optional_string(cols.merchant_entity_id, n)
    channel = _choice(cols.payment_channel, n, PAYMENT_CHANNELS, text=cols.text, name="payment_channel")
    primary, detailed, raw = _categories(cols.primary, cols.detailed, n)
    pending = _booleans(cols.pending, n, text=cols.text)
    amount = pc.multiply(amount, rate) if rate is not None else amount
    arrays = [
        pa.array(user, pa.int32()),
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
        pa.array(list_id, pa.int32()),
        pa.array(loc, pa.int64()),
        pa.array(seq, pa.int64()),
    ]
    return pa.RecordBatch.from_arrays([_plain(a) for a in arrays], schema=TRANSACTIONS_INTERNAL)


# -- columns ------------------------------------------------------------------------------------------------


def _plain(array: Any) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _present(array: pa.Array | None, name: str) -> pa.Array:
    """A required column: there, and without a missing value."""
    if array is None or array.null_count:
        raise Rejected(f"{name}: missing values")
    return array


def _required_string(array: pa.Array | None, n: int, name: str) -> pa.Array:
    """``Checker.string``: a non-blank string, kept as it is (JSON and CSV alike)."""
    array = _present(array, name)
    if n and _any_blank(array):
        raise Rejected(f"{name}: blank values")
    return array


def _any_blank(array: pa.Array) -> bool:
    """Whether a value (none missing) is empty or only whitespace. A value whose first byte is an ASCII
    character other than whitespace is not blank: that is read from the offsets and the character data
    in place (every ASCII whitespace character is at most 0x20); only the others go through the regular
    expression, a kernel call per value."""
    parts = string_parts(array)
    if parts is None:
        return bool(pc.any(pc.match_substring_regex(array, _BLANK)).as_py())
    offsets, data = parts
    starts, lengths = offsets[:-1], np.diff(offsets)
    if not lengths.all():
        return True
    first = data[starts - offsets[0]]
    unsure = (first <= 0x20) | (first >= 0x80)
    if not unsure.any():
        return False
    return bool(pc.any(pc.match_substring_regex(array.filter(pa.array(unsure)), _BLANK)).as_py())


def string_parts(array: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """A string array's offsets and character data (its slice of them), read in place as numpy arrays;
    None for another type."""
    if not pa.types.is_string(array.type) or len(array) == 0:
        return None
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    if data_buffer is None or offsets[-1] == offsets[0]:
        return offsets, np.zeros(0, dtype=np.uint8)
    return offsets, np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]


def _optional_string(array: pa.Array | None, n: int) -> pa.Array:
    """``Checker.optional_string``: an empty string means no value."""
    if array is None:
        return pa.nulls(n, pa.string())
    parts = string_parts(array) if not array.null_count else None
    if parts is not None and np.diff(parts[0]).all():  # no empty value, read from the offsets
        return array
    empty = pc.equal(array, "")
    if not pc.any(empty).as_py():
        return array
    return pc.if_else(empty, pa.scalar(None, pa.string()), array)


def _amounts(array: pa.Array | None, n: int, *, text: bool) -> pa.Array:
    """``Checker.number(required=True)``: JSON numbers as decoded; CSV text by ``checks._NUMBER``."""
    array = _present(array, "amount")
    if text:
        array = _numbers(array, n)
    if n and not pc.all(pc.is_finite(array)).as_py():
        raise Rejected("amount: not finite")
    return array


def _numbers(array: pa.Array, n: int) -> pa.Array:
    """CSV text as numbers, as ``Checker.number`` reads it. Arrow's cast reads exactly the finite numbers
    ``checks._NUMBER`` matches, and else only spellings of NaN and infinity, which the caller rejects as
    not finite (a test holds the two grammars together): so the cast alone decides the common case, and
    the regular expression (per value) and the stripping only run for a column the cast refuses, e.g.
    one with spaces around a number."""
    try:
        return pc.cast(array, pa.float64())
    except pa.ArrowInvalid:
        pass
    if n and not pc.all(pc.match_substring_regex(array, _NUMBER_TEXT)).as_py():
        raise Rejected("amount: not numbers")
    return pc.cast(pc.utf8_trim(array, characters=_WHITESPACE), pa.float64())


def _distinct(arrays: Sequence[pa.Array], n: int) -> tuple[list[tuple[Any, ...]], pa.Array]:
    """The distinct tuples of values across ``arrays`` (nulls included) and, per row, the index of its
    tuple: the way to run a per-value Python rule over a million rows of a few hundred values."""
    if n == 0:
        return [], pa.array([], pa.int32())
    encoded = [_encoded(a) for a in arrays]
    if len(encoded) == 1:
        return [(v,) for v in encoded[0].dictionary.to_pylist()], encoded[0].indices
    key = np.zeros(n, dtype=np.int64)
    for e in encoded:
        key = key * len(e.dictionary) + e.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    combined = pc.dictionary_encode(pa.array(key))
    codes = combined.dictionary.to_numpy()
    values = [e.dictionary.to_pylist() for e in encoded]
    tuples = []
    for code in codes.tolist():
        parts = []
        for e, vals in zip(reversed(encoded), reversed(values), strict=True):
            code, i = divmod(code, len(e.dictionary))
            parts.append(vals[i])
        tuples.append(tuple(reversed(parts)))
    return tuples, combined.indices


def _encoded(array: pa.Array) -> pa.DictionaryArray:
    """The array dictionary-encoded, nulls included as a value (pyarrow.csv may have done it already)."""
    if pa.types.is_dictionary(array.type) and not array.null_count:
        return array
    return pc.dictionary_encode(array, null_encoding="encode")


def _per_value(
    arrays: Sequence[pa.Array], n: int, rule: Callable[..., Any], types: Sequence[pa.DataType]
) -> list[pa.Array]:
    """Apply ``rule`` once per distinct tuple of values; it returns one output per type (a tuple when
    there are several) or raises :class:`Rejected`. The outputs, spread back over the rows."""
    tuples, indices = _distinct(arrays, n)
    results = [rule(*t) for t in tuples]
    if len(types) == 1:
        results = [(r,) for r in results]
    columns = zip(*results, strict=True) if results else [() for _ in types]
    return [pc.take(pa.array(list(values), t), indices) for values, t in zip(columns, types, strict=True)]


def _days(array: pa.Array | None, n: int, ctx: Context, *, text: bool, required: bool, name: str) -> pa.Array:
    """``Checker.day``: YYYY-MM-DD, a real date from 1970 to tomorrow; CSV text is stripped and a blank
    cell means no value."""
    if array is None:
        if required:
            raise Rejected(f"{name}: missing")
        return pa.nulls(n, _DATE32)

    def rule(value: str | None) -> int | None:
        if value is None or (text and not value.strip()):
            if required:
                raise Rejected(f"{name}: missing values")
            return None
        found = ctx.day(value.strip() if text else value)
        if type(found) is str or found > ctx.max_day:  # type: ignore[operator]
            raise Rejected(f"{name}: {found if type(found) is str else 'in the future'}")
        return found  # type: ignore[return-value]

    (days,) = _per_value([array], n, rule, [pa.int32()])
    return days.cast(_DATE32)


def _currencies(
    iso: pa.Array | None, unofficial: pa.Array | None, n: int, ctx: Context
) -> tuple[pa.Array, pa.Array | None]:
    """``Checker.currency``: the ISO code, else the unofficial one; stripped, upper case, with a rate.
    Returns the codes and the rates (None when every rate is 1: nothing to multiply)."""
    iso = iso if iso is not None else pa.nulls(n, pa.string())
    unofficial = unofficial if unofficial is not None else pa.nulls(n, pa.string())

    def rule(iso_code: str | None, other: str | None) -> tuple[str, float]:
        code = iso_code if iso_code not in (None, "") else other
        if code in (None, ""):
            raise Rejected("iso_currency_code: missing values")
        assert code is not None
        code = code.strip().upper()
        rate = ctx.rates.get(code)
        if rate is None:
            raise Rejected(f"no exchange rate for {code!r}")
        return code, rate

    tuples, indices = _distinct([iso, unofficial], n)
    results = [rule(*t) for t in tuples]
    codes = pc.take(pa.array([c for c, _ in results], pa.string()), indices)
    if all(rate == 1.0 for _, rate in results):
        return codes, None
    rates = pc.take(pa.array([r for _, r in results], pa.float64()), indices)
    counts = np.bincount(np.asarray(indices.to_numpy(zero_copy_only=False)), minlength=len(results))
    for (code, rate), count in zip(results, counts.tolist(), strict=True):
        if rate != 1.0 and count:
            ctx.converted[code] = ctx.converted.get(code, 0) + count
    return codes, rates


def _choice(array: pa.Array | None, n: int, choices: dict[str, str], *, text: bool, name: str) -> pa.Array:
    """``Checker.choice`` without a default: required, matched stripped and lower-cased."""
    array = _present(array, name)

    def rule(value: str) -> str:
        if text and not value.strip():
            raise Rejected(f"{name}: missing values")
        found = choices.get(value.strip().lower())
        if found is None:
            raise Rejected(f"{name}: not one of the choices")
        return found

    (mapped,) = _per_value([array], n, rule, [pa.string()])
    return mapped


def _categories(
    primary: pa.Array | None, detailed: pa.Array | None, n: int
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``records._category``: a non-blank primary name and an optional detailed one, mapped to v1 names;
    the detailed name as uploaded is kept."""
    primary = _present(primary, "personal_finance_category.primary")
    detailed = detailed if detailed is not None else pa.nulls(n, pa.string())

    def rule(p: str, d: str | None) -> tuple[str, str | None, str | None]:
        if not p.strip():
            raise Rejected("personal_finance_category.primary: blank values")
        d = None if d == "" else d
        mapped_primary, mapped_detailed = normalize_category(p, d)
        return mapped_primary, mapped_detailed, d

    out = _per_value([primary, detailed], n, rule, [pa.string(), pa.string(), pa.string()])
    return out[0], out[1], out[2]


_TRUTH = {"true": True, "false": False}


def _booleans(array: pa.Array | None, n: int, *, text: bool) -> pa.Array:
    """``Checker.boolean(required=True)``: JSON true/false; CSV "true"/"false" in any case."""
    array = _present(array, "pending")
    if not text:
        return array

    def rule(value: str) -> bool:
        found = _TRUTH.get(value.strip().lower())
        if found is None:
            raise Rejected("pending: not booleans")
        return found

    (flags,) = _per_value([array], n, rule, [pa.bool_()])
    return flags
