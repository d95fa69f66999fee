"""Field checks shared by every format.

A :class:`Checker` validates the fields of one record at a time and reports each bad field with its path.
The same checks serve JSON (typed values: a string amount is "not a number") and CSV (``text=True``: every
cell is text, so "12.50" is a number, "true" a boolean and an empty cell means "no value").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from .problems import ProblemLog

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Deliberately narrower than float(): no "nan", "inf", "1_000", thousands separators or currency signs.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_DATE_CACHE_LIMIT = 50_000


class Context:
    """Settings and caches shared by all checkers of one upload."""

    def __init__(self, *, today: date, fx_rates: Mapping[str, float] | None) -> None:
        self.max_day = (today + timedelta(days=1)).toordinal() - EPOCH_ORDINAL  # one day of clock skew
        self.rates: dict[str, float] = {"USD": 1.0}
        for code, rate in (fx_rates or {}).items():
            if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
                raise ValueError(f"fx_rates[{code!r}] must be a positive finite number")
            self.rates[code.upper()] = float(rate)
        self.converted: dict[str, int] = {}  # currency -> number of converted records, for the notes
        self._dates: dict[str, int | str] = {}

    def day(self, text: str) -> int | str:
        """Days since 1970-01-01, or why ``text`` is not a usable date. Cached: uploads repeat dates a lot."""
        found = self._dates.get(text)
        if found is None:
            found = _parse_day(text)
            if len(self._dates) >= _DATE_CACHE_LIMIT:
                self._dates.clear()
            self._dates[text] = found
        return found


def _parse_day(text: str) -> int | str:
    if not _DATE.fullmatch(text):
        return "not a date (expected YYYY-MM-DD)"
    try:
        day = date.fromisoformat(text).toordinal() - EPOCH_ORDINAL
    except ValueError:
        return "not a valid calendar date"
    return day if day >= 0 else "is before 1970"


@dataclass(frozen=True)
class Source:
    """Where the records of one list come from: a JSON array (``base[i]``) or a CSV file
    (``base:line n``; ``rename`` maps field names to the file's columns, so paths name them as written)."""

    base: str
    csv: bool = False
    rename: Mapping[str, str] = field(default_factory=dict)

    def path(self, loc: int, name: str = "") -> str:
        where = f"{self.base}:line {loc}" if self.csv else f"{self.base}[{loc}]"
        return f"{where}.{self.rename.get(name, name)}" if name else where


class Checker:
    """Checks the fields of records from one list (one JSON array or one CSV file).

    ``at(user, loc)`` moves it to a record; every check reports a bad field at ``<record path>.<field>``
    and counts it in ``errors``; the record is stored only if ``errors`` stays 0.
    """

    __slots__ = ("ctx", "errors", "list_id", "loc", "log", "source", "suppress", "text", "user")

    def __init__(
        self,
        log: ProblemLog,
        ctx: Context,
        source: Source,
        list_id: int,
        suppress: frozenset[str] = frozenset(),
    ) -> None:
        self.log = log
        self.ctx = ctx
        self.source = source
        self.list_id = list_id
        self.text = source.csv  # CSV cells are text: "12.50" is a number there, and "" is no value
        self.suppress = suppress  # fields already reported once for the whole file (missing column)
        self.user: int | None = None
        self.loc = 0
        self.errors = 0

    def at(self, user: int | None, loc: int) -> None:
        self.user = user
        self.loc = loc
        self.errors = 0

    def report(self, field: str, reason: str) -> None:
        self.errors += 1
        if field in self.suppress:
            return
        if self.log.full:  # only counted from here on: skip composing the path
            self.log.dropped += 1
            return
        self.log.add(self.user, self.source.path(self.loc, field), reason)

    # -- values -------------------------------------------------------------------------------------------

    def _missing(self, value: Any) -> bool:
        return value is None or (self.text and type(value) is str and not value.strip())

    def string(self, value: Any, field: str) -> str | None:
        """A required, non-empty string."""
        if type(value) is str and not self.text and value.strip():  # the common case first (hot path)
            return value
        if self._missing(value):
            self.report(field, "required")
            return None
        if type(value) is not str:
            self.report(field, "not a string")
            return None
        if not value.strip():
            self.report(field, "must not be empty")
            return None
        return value

    def optional_string(self, value: Any, field: str) -> str | None:
        """A string or nothing; an empty string means nothing (CSV cannot tell the two apart)."""
        if value is None or value == "":
            return None
        if type(value) is not str:
            self.report(field, "not a string")
            return None
        return value

    def number(self, value: Any, field: str, *, required: bool = False) -> float | None:
        if self._missing(value):
            if required:
                self.report(field, "required")
            return None
        kind = type(value)
        if kind is float:
            number: float = value
        elif kind is int:  # bool is a subclass of int but not this exact type, so true/false are rejected
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
        elif kind is str and self.text and _NUMBER.fullmatch(value.strip()):
            number = float(value)
        else:
            self.report(field, "not a number")
            return None
        if not math.isfinite(number):
            self.report(field, "not a finite number")
            return None
        return number

    def boolean(self, value: Any, field: str, *, required: bool = False) -> bool | None:
        if value is True or value is False:
            return value
        if self._missing(value):
            if required:
                self.report(field, "required")
            return None
        if self.text and type(value) is str:
            word = value.strip().lower()
            if word in ("true", "false"):
                return word == "true"
        self.report(field, "not a boolean (true or false)")
        return None

    def day(self, value: Any, field: str, *, required: bool = False, future_ok: bool = False) -> int | None:
        """A calendar date as days since 1970-01-01 (Arrow's date32)."""
        if self._missing(value):
            if required:
                self.report(field, "required")
            return None
        if type(value) is not str:
            self.report(field, "not a date (expected YYYY-MM-DD)")
            return None
        found = self.ctx.day(value.strip() if self.text else value)
        if type(found) is str:
            self.report(field, found)
            return None
        assert isinstance(found, int)
        if not future_ok and found > self.ctx.max_day:
            self.report(field, "is in the future")
            return None
        return found

    def choice(
        self, value: Any, field: str, choices: Mapping[str, str], default: str | None = None
    ) -> str | None:
        """One of ``choices`` (keys are accepted spellings, lower case; values the stored name)."""
        if self._missing(value):
            if default is None:
                self.report(field, "required")
            return default
        if type(value) is not str:
            self.report(field, "not a string")
            return None
        found = choices.get(value.strip().lower())
        if found is None:
            allowed = ", ".join(dict.fromkeys(choices.values()))
            self.report(field, f"must be one of {allowed} (got {_short(value)})")
        return found

    def mapping(self, value: Any, field: str, *, required: bool = True) -> dict[str, Any] | None:
        if value is None:
            if required:
                self.report(field, "required")
            return None
        if type(value) is not dict:
            self.report(field, "not an object")
            return None
        return value

    def currency(self, holder: dict[str, Any], prefix: str) -> tuple[str, float] | None:
        """(currency code, rate to USD) from Plaid's iso_currency_code, else unofficial_currency_code."""
        before = self.errors
        field = prefix + "iso_currency_code"
        code = self.optional_string(holder.get("iso_currency_code"), field)
        if code is None and self.errors == before:
            field = prefix + "unofficial_currency_code"
            code = self.optional_string(holder.get("unofficial_currency_code"), field)
            if code is None and self.errors == before:
                self.report(prefix + "iso_currency_code", "required")
        if code is None:
            return None
        code = code.strip().upper()
        rate = self.ctx.rates.get(code)
        if rate is None:
            self.report(field, f"no exchange rate from {_short(code)} to USD (supply it in fx_rates)")
            return None
        return code, rate


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")
