"""Receives records from the format readers, checks them and accumulates the rows of one upload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from .checks import Checker, Context, Source
from .problems import Notes, ProblemLog
from .records import (
    LIABILITY_KINDS,
    account_row,
    credit_row,
    liability_kind,
    removal_id,
    transaction_row,
)
from .tables import ACCOUNTS_INTERNAL, CREDIT_INTERNAL, TRANSACTIONS_INTERNAL, ChunkedTable

# A transaction's _seq is batch * 4 + phase: within one /transactions/sync page Plaid's changes apply as
# added, then modified, then removed, whatever the order of the keys in the body.
ADDED, MODIFIED, REMOVED = 0, 1, 2
MAX_USER_ID_LENGTH = 256


@dataclass
class User:
    prefix: str  # "users[3]." when the upload holds several users, else ""
    user_id: str | None = None
    id_given: bool = False  # an id was given, valid or not (an invalid one was reported already)


class Collector:
    def __init__(
        self,
        *,
        fx_rates: Mapping[str, float] | None,
        today: date,
        max_errors: int,
        default_user_id: str | None,
    ) -> None:
        self.log = ProblemLog(max_errors)
        self.notes = Notes()
        self.ctx = Context(today=today, fx_rates=fx_rates)
        self.default_user_id = default_user_id
        self.users: list[User] = []
        self.prefix_users = False  # set by the readers: a "users" list, or several JSON values
        self._csv_users: dict[str, int] = {}
        self.sources: list[Source] = []
        self.accounts = ChunkedTable(ACCOUNTS_INTERNAL)
        self.transactions = ChunkedTable(TRANSACTIONS_INTERNAL)
        self.credit = ChunkedTable(CREDIT_INTERNAL)
        # Account references of records that are not stored (mortgage and student liabilities, rejected
        # rows), checked at the end like the stored ones so every problem of a record is reported at once.
        self.loose_refs: list[tuple[int, str, int, int]] = []  # (user, account_id, list, loc)
        self._max_loose_refs = max_errors
        # Accounts that were rejected but have an id: references to them are not "unknown" (that would
        # only repeat the account's own problem).
        self.rejected_accounts: set[tuple[int, str]] = set()
        self.removals: list[tuple[str, int, int]] = []  # (transaction_id, seq, user)
        self.modified = 0
        self.uncounted_kinds: dict[str, int] = {}  # mortgage/student liabilities seen (not stored)
        self._batches = 0

    # -- problems and notes -----------------------------------------------------------------------------

    def problem(self, user: int | None, path: str, reason: str) -> None:
        self.log.add(user, path, reason)

    def note(self, text: str) -> None:
        self.notes.add(text)

    def full_path(self, user: int | None, path: str) -> str:
        """A path as the uploader will see it (for problems that point at another place)."""
        if user is None or not self.prefix_users:
            return path
        return self.users[user].prefix + path

    # -- users ------------------------------------------------------------------------------------------

    def new_user(self, prefix: str = "") -> int:
        self.users.append(User(prefix))
        return len(self.users) - 1

    def set_user_id(self, user: int, value: Any, path: str) -> None:
        self.users[user].id_given = True
        if type(value) is not str or not value.strip():
            self.problem(user, path, "not a non-empty string")
        elif len(value) > MAX_USER_ID_LENGTH:
            self.problem(user, path, f"longer than {MAX_USER_ID_LENGTH} characters")
        else:
            self.users[user].user_id = value

    def csv_user(self, ck: Checker, value: Any) -> int | None:
        """The user of a CSV row, by its user_id column (rows of one user may be spread over files)."""
        user_id = ck.string(value, "user_id")
        if user_id is None:
            return None
        return self.csv_user_index(user_id)

    def csv_user_index(self, user_id: str) -> int:
        """The position of the CSV user with this (valid) id; a new user on its first appearance."""
        found = self._csv_users.get(user_id)
        if found is None:
            found = self._csv_users[user_id] = self.new_user()
            self.users[found].user_id = user_id
        return found

    # -- lists of records ---------------------------------------------------------------------------------

    def checker(
        self,
        base: str,
        *,
        csv: bool = False,
        rename: Mapping[str, str] | None = None,
        suppress: frozenset[str] = frozenset(),
    ) -> Checker:
        """A checker for a new list of records; the list is registered so later checks can name its rows."""
        source = Source(base, csv, rename or {})
        self.sources.append(source)
        return Checker(self.log, self.ctx, source, len(self.sources) - 1, suppress)

    def new_batch(self) -> int:
        """A new position in the order in which transaction lists and sync pages apply."""
        self._batches += 1
        return self._batches

    # -- records ----------------------------------------------------------------------------------------

    def _rejected(self, ck: Checker, user: int | None, loc: int, record: Any) -> None:
        """Keep the account reference of a rejected record (bounded: the upload is rejected anyway)."""
        if user is None or type(record) is not dict or len(self.loose_refs) >= self._max_loose_refs:
            return
        account_id = record.get("account_id")
        if type(account_id) is str and account_id.strip():
            self.loose_refs.append((user, account_id, ck.list_id, loc))

    def account(self, ck: Checker, user: int, loc: int, record: Any) -> None:
        ck.at(user, loc)
        row = account_row(record, ck)
        if row is not None:
            self.accounts.append((user, *row, ck.list_id, loc))
        else:
            self._rejected_account(user, record)

    def _rejected_account(self, user: int | None, record: Any) -> None:
        if user is None or type(record) is not dict or len(self.rejected_accounts) >= self._max_loose_refs:
            return
        account_id = record.get("account_id")
        if type(account_id) is str:
            self.rejected_accounts.add((user, account_id))

    def transaction(self, ck: Checker, user: int, loc: int, record: Any, seq: int) -> None:
        ck.at(user, loc)
        row = transaction_row(record, ck)
        if row is not None:
            self.transactions.append((user, *row, ck.list_id, loc, seq))
        else:
            self._rejected(ck, user, loc, record)

    def removal(self, ck: Checker, user: int, loc: int, record: Any, seq: int) -> None:
        ck.at(user, loc)
        transaction_id = removal_id(record, ck)
        if transaction_id is not None:
            self.removals.append((transaction_id, seq, user))

    def liability(self, ck: Checker, user: int, loc: int, record: Any, kind: str | None) -> None:
        """One liability; ``kind`` None means an entry of a flat list, whose kind is read from the entry."""
        ck.at(user, loc)
        if type(record) is not dict:
            ck.report("", "expected an object")
            return
        self._liability(ck, user, loc, record, kind or liability_kind(record, ck))

    def _liability(
        self, ck: Checker, user: int | None, loc: int, record: dict[str, Any], kind: str | None
    ) -> None:
        if kind == "credit":
            row = credit_row(record, ck)
            if row is not None and user is not None:
                self.credit.append((user, *row, ck.list_id, loc))
            else:
                self._rejected(ck, user, loc, record)
        elif kind is not None:
            # Mortgage and student loans have no table yet; their account references are still checked.
            self.uncounted_kinds[kind] = self.uncounted_kinds.get(kind, 0) + 1
            account_id = ck.string(record.get("account_id"), "account_id")
            if account_id is not None and user is not None and not ck.errors:
                self.loose_refs.append((user, account_id, ck.list_id, loc))

    def csv_record(self, kind: str, ck: Checker, line: int, record: dict[str, Any], seq: int) -> None:
        """One CSV row. The row is checked in full even when its user_id is bad, to report everything."""
        ck.at(None, line)
        user = self.csv_user(ck, record.get("user_id"))
        if kind == "accounts":
            row = account_row(record, ck)
            if row is not None and user is not None:
                self.accounts.append((user, *row, ck.list_id, line))
            else:
                self._rejected_account(user, record)
        elif kind == "transactions":
            row = transaction_row(record, ck)
            if row is not None and user is not None:
                self.transactions.append((user, *row, ck.list_id, line, seq))
            else:
                self._rejected(ck, user, line, record)
        else:
            self._liability(ck, user, line, record, liability_kind(record, ck))

    def liabilities(self, user: int, value: Any, path: str) -> None:
        """Plaid's ``{"credit": [...], "mortgage": [...], "student": [...]}`` or a flat list."""
        if value is None:
            return
        if type(value) is list:
            self._liability_list(user, value, path, None)
        elif type(value) is dict:
            for key, entries in value.items():
                kind = LIABILITY_KINDS.get(key)
                if kind is None:
                    reason = "unknown liability kind (expected credit, mortgage or student)"
                    self.problem(user, f"{path}.{key}", reason)
                elif entries is not None:
                    self._liability_list(user, entries, f"{path}.{key}", kind)
        else:
            self.problem(user, path, "not an object or a list")

    def _liability_list(self, user: int, entries: Any, path: str, kind: str | None) -> None:
        if type(entries) is not list:
            self.problem(user, path, "not a list")
            return
        ck = self.checker(path)
        for i, entry in enumerate(entries):
            self.liability(ck, user, i, entry, kind)
