"""Snapshot objects decode to the tables they hold: concatenated per table, only the named users' rows with
``users_of``, and text plain (not dictionary-encoded: see the module's docstring for why)."""

from __future__ import annotations

import pyarrow as pa

from spendsense_features.domain.snapshots import Snapshots
from spendsense_shared.dataset import TABLES


def _accounts(*users: str) -> pa.Table:
    rows = [{"user_id": u, "account_id": f"a-{u}", "type": "depository"} for u in users]
    return pa.Table.from_pylist(rows, schema=TABLES["accounts"])


def test_objects_decode_to_their_tables_concatenated_per_table() -> None:
    first = Snapshots.of_tables({"accounts": _accounts("u1", "u2")}, prefix="c0")
    second = Snapshots.of_tables({"accounts": _accounts("u3")}, prefix="c1")
    tables = Snapshots(first.bodies + second.bodies).tables()
    assert tables["accounts"].to_pylist() == _accounts("u1", "u2", "u3").to_pylist()
    assert tables["accounts"].schema == TABLES["accounts"]  # text plain, as written


def test_users_of_keeps_only_the_named_users_rows_of_each_object() -> None:
    both = Snapshots.of_tables({"accounts": _accounts("u1", "u2")}, prefix="c0")
    [(key, _)] = both.bodies
    tables = Snapshots(both.bodies, users_of={key: {"u2"}}).tables()
    assert tables["accounts"]["user_id"].to_pylist() == ["u2"]
