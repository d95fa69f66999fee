"""Streams JSON and JSON Lines uploads with ijson.

The reader walks ijson's event stream itself, so that it knows at every point which user and which list it
is in, and builds Python objects only for one record at a time (an account, a transaction, a liabilities
object): a document with a million transactions never exists as Python objects all at once.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, BinaryIO, Protocol

import ijson

from .checks import Checker
from .collector import ADDED, MODIFIED, REMOVED, Collector
from .problems import DOCUMENT

Event = tuple[str, Any]
Next = Callable[[], Event]


class Handler(Protocol):
    def __call__(self, ck: Checker, *, loc: int, record: Any) -> None: ...


_EOF: Event = ("eof", None)
_SCALARS = frozenset({"string", "number", "boolean", "null"})

ENVELOPE_KEYS = frozenset({"accounts_get", "transactions_get", "transactions_sync", "liabilities_get"})
# Plaid response fields that carry no data we keep.
_PLAID_METADATA = frozenset({"item", "request_id", "next_cursor", "transactions_update_status", "warnings"})


class MalformedJSON(Exception):
    """The event stream ended or nested unexpectedly (ijson validates syntax, so this is defensive)."""


# -- building values from events --------------------------------------------------------------------------


def build_map(nxt: Next) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    while True:
        event, key = nxt()
        if event == "end_map":
            return obj
        if event != "map_key":
            raise MalformedJSON(event)
        event, value = nxt()
        if event in _SCALARS:  # the common case first: this loop runs for every field of every record
            obj[key] = value
        elif event == "start_map":
            obj[key] = build_map(nxt)
        elif event == "start_array":
            obj[key] = build_array(nxt)
        else:
            raise MalformedJSON(event)


def build_array(nxt: Next) -> list[Any]:
    items: list[Any] = []
    while True:
        event, value = nxt()
        if event == "end_array":
            return items
        items.append(build_value(event, value, nxt))


def build_value(event: str, value: Any, nxt: Next) -> Any:
    if event == "start_map":
        return build_map(nxt)
    if event == "start_array":
        return build_array(nxt)
    if event not in _SCALARS:
        raise MalformedJSON(event)
    return value


def skip_value(event: str, nxt: Next) -> None:
    """Consume a value without building it (unknown keys may hold anything, of any size)."""
    depth = 1 if event in ("start_map", "start_array") else 0
    while depth:
        event, _ = nxt()
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
        elif event == "eof":
            raise MalformedJSON(event)


# -- the reader ---------------------------------------------------------------------------------------------


class _UserStats:
    """Per-user facts from Plaid metadata, for notes about incomplete pagination."""

    def __init__(self) -> None:
        self.total_transactions: int | None = None
        self.get_received = 0
        self.has_more: bool | None = None


class JsonReader:
    def __init__(self, col: Collector, nxt: Next) -> None:
        self.col = col
        self.nxt = nxt
        self.saw_users_list = False

    def document(self, index: int) -> bool:
        """Read one top-level value (the ``index``-th); False when there is none left."""
        event, _ = self.nxt()
        if event == "eof":
            return False
        if event != "start_map":
            self.col.problem(None, DOCUMENT if index == 0 else f"users[{index}]", "expected a JSON object")
            skip_value(event, self.nxt)
            return True
        self._top_object(index)
        return True

    def _keys(self) -> Iterator[str]:
        """Keys of the object just opened; the caller consumes each key's value before asking for the next."""
        while True:
            event, key = self.nxt()
            if event == "end_map":
                return
            if event != "map_key":
                raise MalformedJSON(event)
            yield key

    def _top_object(self, index: int) -> None:
        user: int | None = None
        stats = _UserStats()
        for key in self._keys():
            if key == "users":
                self._users_list(user)
                continue
            if user is None:
                prefix = "" if self.saw_users_list else f"users[{index}]."
                user = self.col.new_user(prefix)
                batch = self.col.new_batch()
            self._user_key(user, key, "", batch, stats, in_body=False)
        if user is not None:
            self._finish_user(user, stats)
            if self.saw_users_list:
                self.col.problem(None, DOCUMENT, "mixes a 'users' list with top-level user data")
        elif not self.saw_users_list:
            self.col.problem(
                None,
                DOCUMENT,
                "holds no user data (expected user_id, accounts, transactions, "
                "liabilities, a users list, or Plaid response bodies)",
            )

    def _users_list(self, implicit_user: int | None) -> None:
        self.saw_users_list = True
        self.col.prefix_users = True  # paths inside a users list are named users[k].…
        if implicit_user is not None:
            self.col.users[implicit_user].prefix = ""
        event, _ = self.nxt()
        if event != "start_array":
            self.col.problem(None, "users", "not a list")
            skip_value(event, self.nxt)
            return
        k = 0
        while True:
            event, _ = self.nxt()
            if event == "end_array":
                return
            if event == "start_map":
                self._user_object(f"users[{k}].")
            else:
                self.col.problem(None, f"users[{k}]", "expected an object")
                skip_value(event, self.nxt)
            k += 1

    def _user_object(self, prefix: str) -> None:
        user = self.col.new_user(prefix)
        batch = self.col.new_batch()
        stats = _UserStats()
        for key in self._keys():
            if key == "users":
                self.col.problem(user, "users", "a users list cannot be nested in a user")
                skip_value(self.nxt()[0], self.nxt)
            else:
                self._user_key(user, key, "", batch, stats, in_body=False)
        self._finish_user(user, stats)

    def _user_key(
        self, user: int, key: str, base: str, batch: int, stats: _UserStats, *, in_body: bool
    ) -> None:
        """One key of a user object or of a Plaid response body (``in_body``; ``base`` is its path)."""
        col, nxt, path = self.col, self.nxt, base + key
        if key in ("accounts", "transactions", "added", "modified", "removed"):
            count = self._stream(user, path, self._handler(key, user, batch))
            if key == "modified":
                col.modified += count
            if key == "transactions":
                stats.get_received += count
        elif key == "liabilities":
            event, value = nxt()
            col.liabilities(user, build_value(event, value, nxt), path)
        elif key == "user_id" and not in_body:
            event, value = nxt()
            col.set_user_id(user, build_value(event, value, nxt), path)
        elif key in ENVELOPE_KEYS and not in_body:
            self._bodies(user, key, stats)
        elif key in ("total_transactions", "has_more"):
            event, value = nxt()
            self._metadata(key, build_value(event, value, nxt), stats)
        else:
            skip_value(nxt()[0], nxt)
            if key not in _PLAID_METADATA:
                col.note(f"ignored unknown field {key!r}")

    def _handler(self, key: str, user: int, batch: int) -> Handler:
        col = self.col
        if key == "accounts":
            return partial(col.account, user=user)
        if key == "removed":
            return partial(col.removal, user=user, seq=batch * 4 + REMOVED)
        phase = MODIFIED if key == "modified" else ADDED
        return partial(col.transaction, user=user, seq=batch * 4 + phase)

    def _stream(self, user: int, path: str, handle: Handler) -> int:
        """Feed the records of the list at ``path`` to ``handle`` one at a time; returns how many."""
        nxt = self.nxt
        event, _ = nxt()
        if event == "null":
            return 0
        if event != "start_array":
            self.col.problem(user, path, "not a list")
            skip_value(event, nxt)
            return 0
        ck = self.col.checker(path)
        loc = 0
        while True:
            event, value = nxt()
            if event == "end_array":
                return loc
            record = build_map(nxt) if event == "start_map" else build_value(event, value, nxt)
            handle(ck, loc=loc, record=record)
            loc += 1

    def _bodies(self, user: int, key: str, stats: _UserStats) -> None:
        """An envelope key: one Plaid response body, or a list of them (pages, in the order they apply)."""
        event, _ = self.nxt()
        if event == "start_map":
            self._body(user, f"{key}.", stats)
        elif event == "start_array":
            i = 0
            while True:
                event, _ = self.nxt()
                if event == "end_array":
                    break
                if event == "start_map":
                    self._body(user, f"{key}[{i}].", stats)
                else:
                    self.col.problem(user, f"{key}[{i}]", "expected a Plaid response body (an object)")
                    skip_value(event, self.nxt)
                i += 1
        elif event != "null":
            self.col.problem(user, key, "expected a Plaid response body (an object) or a list of them")
            skip_value(event, self.nxt)

    def _body(self, user: int, base: str, stats: _UserStats) -> None:
        batch = self.col.new_batch()
        for key in self._keys():
            self._user_key(user, key, base, batch, stats, in_body=True)

    def _metadata(self, key: str, value: Any, stats: _UserStats) -> None:
        if key == "total_transactions" and type(value) is int:
            stats.total_transactions = max(value, stats.total_transactions or 0)
        elif key == "has_more" and type(value) is bool:
            stats.has_more = value  # the last page's value is the one that counts

    def _finish_user(self, user: int, stats: _UserStats) -> None:
        who = self.col.users[user].user_id or self.col.default_user_id or "a user"
        if stats.total_transactions is not None and stats.get_received < stats.total_transactions:
            self.col.note(
                f"/transactions/get for {who}: {stats.get_received} of {stats.total_transactions} "
                "transactions were included (missing pages?)"
            )
        if stats.has_more:
            self.col.note(
                f"/transactions/sync for {who}: the last page has has_more=true; later changes are missing"
            )


# -- entry points -------------------------------------------------------------------------------------------


def read_json(stream: BinaryIO, col: Collector) -> None:
    """A JSON document: one user, ``{"users": [...]}``, Plaid bodies or an envelope. Several concatenated
    top-level values are read as one user each (JSON Lines without the line discipline)."""
    events = ijson.basic_parse(stream, use_float=True, multiple_values=True)
    reader = JsonReader(col, partial(next, events, _EOF))
    count = 0
    try:
        while reader.document(count):
            count += 1
    except (ijson.JSONError, MalformedJSON) as exc:
        col.problem(None, DOCUMENT, f"not valid JSON: {_message(exc)}")
    except RecursionError:
        col.problem(None, DOCUMENT, "nested too deeply")
    if count == 0 and not col.log:
        col.problem(None, DOCUMENT, "the upload is empty")
    if count > 1:
        col.prefix_users = True
        if reader.saw_users_list:
            col.problem(None, DOCUMENT, "a document with a 'users' list must be the only JSON value")


def read_json_lines(stream: BinaryIO, col: Collector) -> None:
    """JSON Lines: one user object per line. A bad line is reported and the next line is read."""
    count = 0
    for line_number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        events = ijson.basic_parse(io.BytesIO(line), use_float=True)
        reader = JsonReader(col, partial(next, events, _EOF))
        try:
            reader.document(count)
            if reader.saw_users_list:
                col.problem(None, f"line {line_number}", "a users list is not allowed in JSON Lines")
            if reader.nxt() != _EOF:
                raise MalformedJSON("more than one value on the line")
        except (ijson.JSONError, MalformedJSON) as exc:
            col.problem(None, f"line {line_number}", f"not valid JSON: {_message(exc)}")
        except RecursionError:
            col.problem(None, f"line {line_number}", "nested too deeply")
        count += 1
    if count == 0:
        col.problem(None, DOCUMENT, "the upload is empty")
    col.prefix_users = count > 1


def _message(exc: Exception) -> str:
    """ijson's messages span lines (with a caret under the error); keep them on one line."""
    return re.sub(r"\s+", " ", str(exc)).strip()[:300] or type(exc).__name__
