"""A chunk's reports do not depend on the order of its users: the profile writes new users' snapshots
with each user's rows in the upload's order and the users as the upload lists them, a re-upload's as
PostgreSQL reads them back (by user id)."""

from __future__ import annotations

import json
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_cli.synthetic import build_user
from spendsense_features.domain.publication import score_chunk
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload

RULES = load_rule_set()
USERS = [build_user(k, seed=21, as_of=date(2026, 10, 31))[0] for k in range(5)]
TABLES = parse_upload(
    "".join(json.dumps(u) + "\n" for u in USERS).encode(), filename="u.jsonl", today=date(2026, 11, 1)
).tables
IDS = sorted(u["user_id"] for u in USERS)
EXPECTED = score_chunk(TABLES, RULES, IDS)


def _users_in_order(table: pa.Table, order: list[str]) -> pa.Table:
    """The table's rows, user by user in ``order``, each user's rows in their order."""
    return pa.concat_tables([table.filter(pc.equal(table["user_id"], user)) for user in order])


@settings(max_examples=10, deadline=None)
@given(st.permutations(IDS))
def test_the_reports_are_the_same_whatever_the_order_of_the_users(order: list[str]) -> None:
    reordered = {name: _users_in_order(table, order) for name, table in TABLES.items()}
    assert score_chunk(reordered, RULES, IDS) == EXPECTED
