"""A table split by chunk of users in one pass holds, for each chunk, exactly the rows a filter by that
chunk's users gives, in the same order."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_profile.handlers.snapshots import by_chunk

USERS = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(USERS, st.none()), max_size=40),
    st.lists(st.lists(USERS, unique=True, max_size=3), max_size=4),
)
def test_each_chunk_holds_the_rows_a_filter_by_its_users_gives(
    rows: list[str | None], chunks: list[list[str]]
) -> None:
    _assert_split_as_a_filter(rows, _each_user_once(chunks))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(USERS, unique=True, min_size=1, max_size=3), max_size=4), st.data())
def test_rows_in_the_order_of_their_chunks_are_split_alike(
    chunks: list[list[str]], data: st.DataObject
) -> None:
    """The upload's usual order (its users listed in the chunks' order): split without a copy, the same."""
    chunks = _each_user_once(chunks)
    rows = [
        user for chunk in chunks if chunk for user in data.draw(st.lists(st.sampled_from(chunk), max_size=5))
    ]
    _assert_split_as_a_filter(rows, chunks)


def _each_user_once(chunks: list[list[str]]) -> list[list[str]]:
    seen: set[str] = set()
    return [[u for u in chunk if not (u in seen or seen.add(u))] for chunk in chunks]


def _assert_split_as_a_filter(rows: list[str | None], chunks: list[list[str]]) -> None:
    table = pa.table({"user_id": pa.array(rows, pa.string()), "row": pa.array(range(len(rows)))})
    parts = by_chunk(table, chunks)
    assert len(parts) == len(chunks)
    for part, users in zip(parts, chunks, strict=True):
        expected = table.filter(pc.is_in(table["user_id"], value_set=pa.array(users, pa.string())))
        assert part.to_pylist() == expected.to_pylist()


def test_a_table_of_several_chunks_of_arrow_data() -> None:
    table = pa.concat_tables([pa.table({"user_id": ["a", "b"]}), pa.table({"user_id": ["a", "c"]})])
    assert [p["user_id"].to_pylist() for p in by_chunk(table, [["a"], ["c", "b"]])] == [
        ["a", "a"],
        ["b", "c"],
    ]
